package password

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// hasContextProblem reports whether p refuses in for a context word.
func hasContextProblem(p *Policy, in Input) bool {
	for _, prob := range p.Check(in) {
		if prob.Rule == RuleContext {
			return true
		}
	}
	return false
}

// TestContextWordsAreNamesNotEverydayWords: a product name is refused
// whole (spaces and punctuation ignored) and by its distinctive words, but
// its generic or short words are not, so "Account Center" does not ban
// "account". A short word the host lists, such as an acronym, is refused
// when the password is mostly that word. A domain's labels (but the last)
// are names of their own.
func TestContextWordsAreNamesNotEverydayWords(t *testing.T) {
	tests := []struct {
		name  string
		words []string
		pw    string
		mfa   bool
		want  bool
	}{
		// The whole name.
		{"whole name", []string{"Account Center"}, "AccountCenter2024!", true, true},
		{"whole name with a space", []string{"Account Center"}, "my account center passphrase", false, true},
		{"whole name with substitutions", []string{"Account Center"}, "Acc0unt-Cent3r is home", false, true},
		{"generic words of the name", []string{"Account Center"}, "an account of our purple giraffe trip", false, false},
		{"generic words apart", []string{"Account Center"}, "centered on accounts of giraffes", false, false},
		// Distinctive words.
		{"distinctive word", []string{"Contoso Account Center"}, "contoso-purple-giraffe", false, true},
		{"generic word beside a distinctive one", []string{"Contoso Account Center"}, "account of a purple giraffe", false, false},
		{"everyday word of the name", []string{"Wonderland Bank"}, "bank on a purple giraffe", false, false},
		{"4-letter distinctive word", []string{"Acme Bank"}, "acme-rocket-launch", false, true},
		{"4-letter distinctive word, generic one beside", []string{"Okta Verify"}, "okta-2024-spring!", false, true},
		{"generic word of the name", []string{"Okta Verify"}, "please verify my horse", false, false},
		// Across word boundaries a name does not count.
		{"across words", []string{"Atlas"}, "great lasagna recipe", false, false},
		{"across words again", []string{"Atlas"}, "what last summer", false, false},
		{"across words, another", []string{"Orion"}, "color ion battery pack", false, false},
		{"inside a word", []string{"Atlas"}, "myAtlas2024 giraffe", false, true},
		{"whole name running on", []string{"Account Center"}, "account center2024 giraffes", false, true},
		{"one word listed is refused whole", []string{"Account"}, "account of a purple giraffe", false, true},
		{"one word without its digits", []string{"Contoso365"}, "contoso-purple-giraffe", false, true},
		// Short words: refused when the password is mostly one.
		{"acronym and digits", []string{"XYZ"}, "xyz12345", true, true},
		{"acronym and symbols", []string{"XYZ"}, "XYZ-2024!", true, true},
		{"acronym, single factor", []string{"XYZ"}, "xyz-purple-cat1", false, true},
		{"acronym twice", []string{"XYZ"}, "xyz-xyz-xyz-xyz", false, true},
		{"acronym in a long password", []string{"XYZ"}, "xyz-kept-my-old-tea-mug", false, false},
		{"acronym in a long password with MFA", []string{"XYZ"}, "xyz-purple-cat1", true, false},
		{"acronym inside a word", []string{"SAP"}, "sapphire-cloud-9", false, false},
		{"acronym substituted", []string{"SAP"}, "$@P-2024-12-31!", false, true},
		{"acronym of a domain", []string{"ibm.com"}, "IBM-1234", true, true},
		{"acronym with a space", []string{"3 M"}, "3 M 12345", true, true},
		// Domains.
		{"whole domain", []string{"wonderland-bank.example"}, "wonderland-bank.example", true, true},
		{"label of a domain", []string{"login.acme.co.uk"}, "acme-purple-giraffe", false, true},
		{"generic label", []string{"login.acme.co.uk"}, "login-purple-giraffe", false, false},
		{"top-level domain", []string{"wonderland-bank.example"}, "example of a purple giraffe", false, false},
		{"everyday word of a label", []string{"wonderland-bank.example"}, "bank on a purple giraffe", false, false},
		{"domain of an address", []string{"support@acme.com"}, "acme-purple-giraffe", false, true},
		{"local part of an address", []string{"support@acme.com"}, "support the purple giraffe", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPolicy(PolicyConfig{ContextWords: tt.words, Blocklist: NewBlocklist([]string{"password"})})
			if err != nil {
				t.Fatal(err)
			}
			if got := hasContextProblem(p, Input{Password: tt.pw, HasMFA: tt.mfa}); got != tt.want {
				t.Errorf("ContextWords %q, password %q (MFA %v): context problem %v, want %v", tt.words, tt.pw, tt.mfa, got, tt.want)
			}
		})
	}
}

// TestAccountCenterAcceptsAccount: a host whose product is "Account Center"
// does not refuse an otherwise strong passphrase with "account" in it, but
// still refuses the product's name.
func TestAccountCenterAcceptsAccount(t *testing.T) {
	p, err := NewPolicy(PolicyConfig{ContextWords: []string{"Account Center"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Check(Input{Password: "my savings account holds purple giraffes"}); got != nil {
		t.Errorf("passphrase with \"account\": %v, want no problem", got)
	}
	if !hasContextProblem(p, Input{Password: "my account center holds purple giraffes"}) {
		t.Error("passphrase with the product's name: no context problem")
	}
}

func TestContextTokens(t *testing.T) {
	tokens, short := contextTokens([]string{
		"Contoso Account Center", "Contoso365", "XYZ", " ", "login.Acme-Bank.co.uk", "support@ibm.com",
	})
	wantTokens := []string{
		"contosoaccountcenter", "contoso", "contosoe6s",
		"loginacmebankcouk", "acmebank", "acme",
		"supportaibmcom",
	}
	wantShort := []string{"xyz", "ibm"}
	if !reflect.DeepEqual(tokens, wantTokens) || !reflect.DeepEqual(short, wantShort) {
		t.Errorf("contextTokens = %q, %q\nwant %q, %q", tokens, short, wantTokens, wantShort)
	}
}

// FuzzContextWords: Check ends on any context word and password, and a
// password that is exactly a context word with a letter or digit in it is
// refused for it.
func FuzzContextWords(f *testing.F) {
	for _, s := range [][2]string{
		{"Account Center", "account-center"}, {"XYZ", "xyz12345"}, {"SAP", "sapphire"},
		{"login.acme.co.uk", "acme"}, {"support@ibm.com", "IBM1"}, {"a", "aaaa"}, {"\xff", "\xff\xfe"}, {"0 0", "0 0"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, word, pw string) {
		if len(word)+len(pw) > fuzzMaxInput {
			return
		}
		p, err := NewPolicy(PolicyConfig{ContextWords: []string{word}, Blocklist: NewBlocklist([]string{"password"})})
		if err != nil {
			t.Fatal(err)
		}
		hasContextProblem(p, Input{Password: pw})
		c := compact(fold(lowerNFKC(strings.TrimSpace(word))))
		long := utf8.RuneCountInString(c) >= minCoreLength
		// A short word is refused when the rest is short: check words that
		// are short as a whole.
		if (long || c != "" && utf8.RuneCountInString(word) < DefaultMinLength) && !hasContextProblem(p, Input{Password: word, HasMFA: true}) {
			t.Errorf("password %q equal to the context word: not refused", word)
		}
	})
}
