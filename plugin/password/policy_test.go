package password

import (
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// defaultPolicy loads the embedded list once for the tests of this file.
var defaultPolicy = sync.OnceValues(func() (*Policy, error) {
	return NewPolicy(PolicyConfig{})
})

func mustDefaultPolicy(tb testing.TB) *Policy {
	tb.Helper()
	p, err := defaultPolicy()
	if err != nil {
		tb.Fatalf("NewPolicy: %v", err)
	}
	return p
}

func TestNewPolicyDefaults(t *testing.T) {
	p := mustDefaultPolicy(t)
	if got := p.MinLength(true); got != 8 {
		t.Errorf("MinLength(true) = %d, want 8", got)
	}
	if got := p.MinLength(false); got != 15 {
		t.Errorf("MinLength(false) = %d, want 15", got)
	}
	if got := p.MaxLength(); got != 128 {
		t.Errorf("MaxLength() = %d, want 128", got)
	}
	if got := p.HistorySize(); got != 5 {
		t.Errorf("HistorySize() = %d, want 5", got)
	}
	if got := p.Blocklist().Len(); got < 40000 {
		t.Errorf("Blocklist().Len() = %d, want >= 40000", got)
	}
}

func TestNewPolicySettings(t *testing.T) {
	tiny := NewBlocklist([]string{"password"})
	tests := []struct {
		name                         string
		cfg                          PolicyConfig
		minMFA, minSingle, max, hist int
	}{
		{"lengths", PolicyConfig{MinLength: 10, MinLengthSingleFactor: 16, MaxLength: 64, HistorySize: 24, Blocklist: tiny}, 10, 16, 64, 24},
		{"single factor follows a larger MinLength", PolicyConfig{MinLength: 20, Blocklist: tiny}, 20, 20, 128, 5},
		{"single factor equal to MinLength", PolicyConfig{MinLength: 12, MinLengthSingleFactor: 12, Blocklist: tiny}, 12, 12, 128, 5},
		{"history of one", PolicyConfig{HistorySize: 1, Blocklist: tiny}, 8, 15, 128, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPolicy(tt.cfg)
			if err != nil {
				t.Fatalf("NewPolicy: %v", err)
			}
			got := []int{p.MinLength(true), p.MinLength(false), p.MaxLength(), p.HistorySize()}
			want := []int{tt.minMFA, tt.minSingle, tt.max, tt.hist}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("MinLength(true), MinLength(false), MaxLength, HistorySize = %v, want %v", got, want)
			}
			if p.Blocklist() != tiny {
				t.Error("Blocklist() is not the configured list")
			}
		})
	}
}

func TestNewPolicyErrors(t *testing.T) {
	tiny := NewBlocklist([]string{"password"})
	tests := []struct {
		name string
		cfg  PolicyConfig
		want string
	}{
		{"MinLength below 8", PolicyConfig{MinLength: 7, Blocklist: tiny},
			"password: config: field 'MinLength': must be at least 8"},
		{"MinLength negative", PolicyConfig{MinLength: -1, Blocklist: tiny},
			"password: config: field 'MinLength': must be at least 8"},
		{"MinLengthSingleFactor below MinLength", PolicyConfig{MinLength: 12, MinLengthSingleFactor: 10, Blocklist: tiny},
			"password: config: field 'MinLengthSingleFactor': must be at least MinLength (12)"},
		{"MinLengthSingleFactor below default MinLength", PolicyConfig{MinLengthSingleFactor: 7, Blocklist: tiny},
			"password: config: field 'MinLengthSingleFactor': must be at least MinLength (8)"},
		{"MaxLength below 64", PolicyConfig{MaxLength: 63, Blocklist: tiny},
			"password: config: field 'MaxLength': must be at least 64"},
		{"MaxLength negative", PolicyConfig{MaxLength: -128, Blocklist: tiny},
			"password: config: field 'MaxLength': must be at least 64"},
		{"MaxLength below MinLengthSingleFactor", PolicyConfig{MinLengthSingleFactor: 100, MaxLength: 64, Blocklist: tiny},
			"password: config: field 'MaxLength': must be at least MinLengthSingleFactor (100)"},
		{"default MaxLength below MinLength", PolicyConfig{MinLength: 200, Blocklist: tiny},
			"password: config: field 'MaxLength': must be at least MinLengthSingleFactor (200)"},
		{"HistorySize above 24", PolicyConfig{HistorySize: 25, Blocklist: tiny},
			"password: config: field 'HistorySize': must be between 1 and 24"},
		{"HistorySize negative", PolicyConfig{HistorySize: -1, Blocklist: tiny},
			"password: config: field 'HistorySize': must be between 1 and 24"},
		{"empty Blocklist", PolicyConfig{Blocklist: NewBlocklist(nil)},
			"password: config: field 'Blocklist': must not be empty"},
		{"zero Blocklist", PolicyConfig{Blocklist: &Blocklist{}},
			"password: config: field 'Blocklist': must not be empty"},
		{"every problem at once", PolicyConfig{MinLength: 4, MaxLength: 32, HistorySize: 99, Blocklist: &Blocklist{}},
			"password: config: field 'MinLength': must be at least 8\n" +
				"password: config: field 'MaxLength': must be at least 64\n" +
				"password: config: field 'HistorySize': must be between 1 and 24\n" +
				"password: config: field 'Blocklist': must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPolicy(tt.cfg)
			if err == nil {
				t.Fatalf("NewPolicy(%+v) = %v, nil; want error %q", tt.cfg, p, tt.want)
			}
			if p != nil {
				t.Errorf("NewPolicy returned a policy with the error")
			}
			if err.Error() != tt.want {
				t.Errorf("error = %q\nwant    %q", err, tt.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	p := mustDefaultPolicy(t)
	alice := []string{"alice", "alice@example.com", "Alice Liddell"}

	tooShort := func(n int) Problem {
		return Problem{RuleTooShort, "Use at least " + strconv.Itoa(n) + " characters."}
	}
	tooLong := Problem{RuleTooLong, "Use at most 128 characters."}
	common := Problem{RuleCommon, "This password is too common. Choose something less predictable."}
	identifier := Problem{RuleIdentifier, "Don't use your username or email address in your password."}

	tests := []struct {
		name string
		in   Input
		want []Problem
	}{
		// Length.
		{"empty", Input{Password: "", HasMFA: true}, []Problem{tooShort(8)}},
		{"7 characters with MFA", Input{Password: "kx7-pvq", HasMFA: true}, []Problem{tooShort(8)}},
		{"8 characters with MFA", Input{Password: "kx7-pvqz", HasMFA: true}, nil},
		{"8 characters without MFA", Input{Password: "kx7-pvqz"}, []Problem{tooShort(15)}},
		{"14 characters without MFA", Input{Password: "kx7-pvqz-mrt2w"}, []Problem{tooShort(15)}},
		{"15 characters without MFA", Input{Password: "kx7-pvqz-mrt2wy"}, nil},
		{"128 characters", Input{Password: strings.Repeat("kx7-pvqz", 16)}, nil},
		{"129 characters", Input{Password: strings.Repeat("kx7-pvqz", 16) + "!"}, []Problem{tooLong}},
		{"long input is never truncated", Input{Password: strings.Repeat("kx7-pvqz", 1000)}, []Problem{tooLong}},
		{"length counts code points, not bytes", Input{Password: strings.Repeat("ü", 15)}, nil},
		{"length counts after NFC", Input{Password: strings.Repeat("u\u0308", 10), HasMFA: true}, nil},
		{"NFC: 10 composed characters are under 15", Input{Password: strings.Repeat("u\u0308", 10)}, []Problem{tooShort(15)}},
		{"NFC: 129 composed characters are too long", Input{Password: strings.Repeat("u\u0308", 129)}, []Problem{tooLong}},
		{"emoji count once", Input{Password: strings.Repeat("🔑", 15)}, nil},
		{"spaces count", Input{Password: "my cat is called Felix"}, nil},

		// Common passwords.
		{"common", Input{Password: "password", HasMFA: true}, []Problem{common}},
		{"common and short", Input{Password: "P@ssw0rd2024!"}, []Problem{tooShort(15), common}},
		{"common with substitutions", Input{Password: "P@ssw0rd2024!", HasMFA: true}, []Problem{common}},
		{"common with padding", Input{Password: "!!!!Dragon99999999"}, []Problem{common}},
		{"passphrase is not common", Input{Password: "correct-horse-battery-staple-42"}, nil},
		{"words are not common", Input{Password: "wonderland-tea-party"}, nil},
		{"common word inside is not common", Input{Password: "Tr0ub4dor&3xyzzy-plane"}, nil},

		// Identifiers.
		{"username inside", Input{Password: "alice-in-wonderland-2024", Identifiers: alice}, []Problem{identifier}},
		{"username with substitutions", Input{Password: "@L!CE-in-wonderland-2024", Identifiers: alice}, []Problem{identifier}},
		{"upper case username", Input{Password: "ALICE-IN-WONDERLAND-2024", Identifiers: alice}, []Problem{identifier}},
		{"display-name word", Input{Password: "liddell-house-oxford-1865", Identifiers: alice}, []Problem{identifier}},
		{"email address", Input{Password: "bob@example.org-is-me!", Identifiers: []string{"bob@example.org"}}, []Problem{identifier}},
		{"email local part", Input{Password: "j.smith-was-here-today", Identifiers: []string{"j.smith@example.com"}}, []Problem{identifier}},
		{"word of the email local part", Input{Password: "smithereens-and-glass", Identifiers: []string{"j.smith@example.com"}}, []Problem{identifier}},
		{"username with trailing digits", Input{Password: "wonderland-alice-tea", Identifiers: []string{"alice1984"}}, []Problem{identifier}},
		{"identifier and common and short", Input{Password: "alice", Identifiers: alice, HasMFA: true}, []Problem{tooShort(8), common, identifier}},
		{"email domain is not an identifier", Input{Password: "an-example-of-a-good-one", Identifiers: alice}, nil},
		{"tokens under 4 characters are ignored", Input{Password: "bobsled-racing-team", Identifiers: []string{"bob", "bob@ex.io", "Bob Li"}}, nil},
		{"empty identifiers are ignored", Input{Password: "kx7-pvqz-mrt2wy", Identifiers: []string{"", "  "}}, nil},
		{"unrelated identifiers", Input{Password: "correct-horse-battery-staple-42", Identifiers: alice}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.Check(tt.in)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Check(%q) = %#v\nwant %#v", tt.in.Password, got, tt.want)
			}
		})
	}
}

func TestCheckCustomLengths(t *testing.T) {
	p, err := NewPolicy(PolicyConfig{MinLength: 10, MinLengthSingleFactor: 20, MaxLength: 64, Blocklist: NewBlocklist([]string{"password"})})
	if err != nil {
		t.Fatalf("NewPolicy: %v", err)
	}
	tests := []struct {
		password string
		hasMFA   bool
		want     string
	}{
		{strings.Repeat("x", 9), true, "Use at least 10 characters."},
		{strings.Repeat("x", 19), false, "Use at least 20 characters."},
		{strings.Repeat("x", 65), false, "Use at most 64 characters."},
		{strings.Repeat("x", 64), false, ""},
	}
	for _, tt := range tests {
		got := p.Check(Input{Password: tt.password, HasMFA: tt.hasMFA})
		var msg string
		if len(got) > 0 {
			msg = got[0].Message
		}
		if msg != tt.want {
			t.Errorf("Check(%d chars, mfa=%v) = %v, want message %q", len(tt.password), tt.hasMFA, got, tt.want)
		}
	}
}

func TestCheckMessagesNeverContainThePassword(t *testing.T) {
	p := mustDefaultPolicy(t)
	for _, pw := range []string{"Passw0rd!", "alice-in-wonderland-2024", "x", strings.Repeat("secretword", 20)} {
		for _, pr := range p.Check(Input{Password: pw, Identifiers: []string{"alice"}}) {
			if strings.Contains(strings.ToLower(pr.Message), strings.ToLower(pw)) {
				t.Errorf("message %q contains the password", pr.Message)
			}
		}
	}
}

func TestIdentifierTokens(t *testing.T) {
	got := identifierTokens([]string{"Alice", "alice.Liddell99@Example.com", "Dr. Jean-Luc Picard", "bob"})
	want := []string{"alice", "alice.liddellggaexample.com", "alice.liddellgg", "alice.liddell", "liddellgg", "liddell", "dr. jean-luc picard", "jean", "picard"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("identifierTokens = %q\nwant %q", got, want)
	}
}

func BenchmarkCheck(b *testing.B) {
	p := mustDefaultPolicy(b)
	alice := []string{"alice", "alice@example.com", "Alice Liddell"}
	inputs := []struct {
		name string
		in   Input
	}{
		{"accepted", Input{Password: "correct-horse-battery-staple-42", Identifiers: alice}},
		{"common", Input{Password: "P@ssw0rd2024!", Identifiers: alice}},
		{"identifier", Input{Password: "alice-in-wonderland-2024", Identifiers: alice, HasMFA: true}},
		{"too_long", Input{Password: strings.Repeat("kx7-pvqz", 17), Identifiers: alice}},
	}
	for _, tt := range inputs {
		b.Run(tt.name, func(b *testing.B) {
			for b.Loop() {
				p.Check(tt.in)
			}
		})
	}
}

// TestContextWords (ASVS V6.2.11): names of the service are refused like
// the user's identifiers, substitutions and case included.
func TestContextWords(t *testing.T) {
	p, err := NewPolicy(PolicyConfig{ContextWords: []string{"Wonderland Bank", "wonderland-bank.example"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{
		{"my wonderland savings are safe", true},
		{"W0nderl@nd and tea every day", true},
		{"WonderlandBank is where I save", true},
		{"a long passphrase at wonderland-bank.example", true},
		// "bank" is an everyday word, not the name: "Wonderland Bank" does
		// not take it from every customer.
		{"BANKING on a long passphrase here", false},
		{"a long passphrase about tea cups", false},
	} {
		got := false
		for _, prob := range p.Check(Input{Password: tc.pw, HasMFA: true}) {
			if prob.Rule == RuleContext {
				got = true
			}
		}
		if got != tc.want {
			t.Errorf("%q: context problem %v, want %v", tc.pw, got, tc.want)
		}
	}
}
