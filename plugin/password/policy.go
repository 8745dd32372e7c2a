package password

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Policy defaults and bounds.
const (
	// DefaultMinLength is the least length of a password for an account
	// with a second factor, and the lowest MinLength accepted (NIST SP
	// 800-63B: at least 8).
	DefaultMinLength = 8
	// DefaultMinLengthSingleFactor is the least length of a password for
	// an account without a second factor (NIST SP 800-63B rev. 4: 15 when
	// the password is the only factor).
	DefaultMinLengthSingleFactor = 15
	// DefaultMaxLength is the greatest length of a password.
	DefaultMaxLength = 128
	// MinMaxLength is the lowest MaxLength accepted (NIST SP 800-63B: allow
	// at least 64).
	MinMaxLength = 64
	// DefaultHistorySize is how many previous passwords may not be reused.
	DefaultHistorySize = 5
	// MaxHistorySize is the greatest HistorySize accepted.
	MaxHistorySize = 24
)

// Rules reported in [Problem.Rule].
const (
	RuleTooShort   = "too_short"
	RuleTooLong    = "too_long"
	RuleCommon     = "common"
	RuleIdentifier = "identifier"
	// RuleContext: the password contains a name of the service's context
	// or a distinctive word of one, or is mostly a short one
	// ([PolicyConfig.ContextWords]: the product, the company).
	RuleContext = "context"
)

// PolicyConfig configures a [Policy]. The zero value takes every default.
// There are no composition rules (no "one digit, one symbol"): NIST SP
// 800-63B advises against them.
type PolicyConfig struct {
	// MinLength is the least number of characters (Unicode code points
	// after NFC normalisation) of a password for an account with a second
	// factor. Default: 8; must be at least 8 (NIST SP 800-63B).
	MinLength int

	// MinLengthSingleFactor is the least number of characters of a
	// password for an account without a second factor. Default: 15, or
	// MinLength when that is larger; must be at least MinLength.
	MinLengthSingleFactor int

	// MaxLength is the greatest number of characters of a password. A
	// longer password is refused, never truncated. Default: 128; must be at
	// least 64 and at least MinLengthSingleFactor.
	MaxLength int

	// HistorySize is how many of the user's previous passwords may not be
	// reused. Default: 5 (also when 0); must be between 1 and 24.
	HistorySize int

	// ContextWords are names of this service that a password may not
	// contain (ASVS V6.2.11): the product's and the company's names, the
	// domain. They are compared after folding case and undoing common
	// substitutions, like the user's identifiers, inside a word of the
	// password or spelled by consecutive whole words ("Account Center"
	// refuses "AccountCenter!", "acc0unt-center" and "my account center"),
	// never across a word boundary ("Atlas" does not refuse "great
	// lasagna"). For each entry the password may not contain:
	//
	//   - the whole entry, when it has 4 or more letters and digits; a
	//     shorter one (an acronym such as "XYZ") is refused only when the
	//     password is mostly that word: when it stands as a word of its own
	//     (no letter just before or after it) and what remains without it
	//     is shorter than the minimum length ("xyz12345" is refused;
	//     "xyz-kept-my-old-tea-mug" is not, nor "SAP" in "sapphire-blue");
	//   - the entry without its leading and trailing digits and symbols, when
	//     it is a single word ("Contoso365" refuses "contoso");
	//   - each distinctive word of an entry of several words: 4 or more
	//     letters and not a generic word of product names such as "account",
	//     "center", "bank", "verify", "service", "portal", "login", "cloud"
	//     or "secure" ("Contoso Account Center" refuses "contoso", not
	//     "account"; "Acme Bank" refuses "acme", not "bank");
	//   - for a domain name (no spaces, with a dot; the part after the "@"
	//     of an email address), each of its labels but
	//     the last, as an entry of its own, except generic ones such as
	//     "www", "login" or "co" ("login.acme.co.uk" refuses "acme").
	//
	// List each name to refuse on its own: a company's name, its acronym,
	// its domain. Default: none.
	ContextWords []string

	// Blocklist holds the banned common passwords. Default: the embedded
	// list, [DefaultBlocklist]; a list given here must not be empty.
	Blocklist *Blocklist

	// Breach tells whether a password has appeared in a data breach, for
	// [Policy.CheckBreached]; [PwnedRange] asks the Have I Been Pwned range
	// API with k-anonymity. It must be safe for concurrent use. Default:
	// nil, no breach check (nothing leaves the process unless a checker is
	// set here).
	Breach BreachChecker

	// BreachFailOpen accepts a password when the Breach checker fails (an
	// outage, a timeout, a malformed answer); [Policy.CheckBreached] then
	// returns an error wrapping [ErrBreachCheckSkipped] for the caller to
	// log. Default: false, fail closed: no password is accepted while the
	// check fails. Setting it without Breach is an error.
	BreachFailOpen bool
}

// Policy decides whether a new password is acceptable. Create it with
// [NewPolicy]; it is immutable and safe for concurrent use.
type Policy struct {
	minLength             int
	minLengthSingleFactor int
	maxLength             int
	historySize           int
	blocklist             *Blocklist
	breach                BreachChecker
	breachFailOpen        bool
	context               []string // tokens of ContextWords, refused anywhere
	contextShort          []string // short ContextWords, refused when the password is mostly one
}

// Input is a candidate password with what the policy needs to know about
// its user.
type Input struct {
	// Password is the new password, exactly as typed.
	Password string
	// Identifiers are the user's username, email addresses and display
	// name; the password may not contain any of them (nor the local part of
	// an email address, nor a word of 4 or more characters of a name).
	Identifiers []string
	// HasMFA reports whether the account has a second factor enrolled;
	// without one the longer MinLengthSingleFactor applies.
	HasMFA bool
}

// Problem is one reason a password was refused.
type Problem struct {
	// Rule is a stable identifier: [RuleTooShort], [RuleTooLong],
	// [RuleCommon], [RuleIdentifier] or [RuleContext] from [Policy.Check], or
	// [RuleBreached] from [Policy.CheckBreached].
	Rule string
	// Message is a plain sentence to show the user, such as "Use at least
	// 15 characters.". It never contains the password.
	Message string
}

func configError(field, format string, args ...any) error {
	return fmt.Errorf("password: config: field '%s': %s", field, fmt.Sprintf(format, args...))
}

// NewPolicy copies cfg, fills its defaults and validates every field. The
// error names each bad field, for example
// "password: config: field 'MaxLength': must be at least 64"; several are
// joined with [errors.Join]. When cfg.Blocklist is nil it loads
// [DefaultBlocklist].
func NewPolicy(cfg PolicyConfig) (*Policy, error) {
	var errs []error
	p := &Policy{
		minLength:             cfg.MinLength,
		minLengthSingleFactor: cfg.MinLengthSingleFactor,
		maxLength:             cfg.MaxLength,
		historySize:           cfg.HistorySize,
		blocklist:             cfg.Blocklist,
		breach:                cfg.Breach,
		breachFailOpen:        cfg.BreachFailOpen,
	}
	p.context, p.contextShort = contextTokens(cfg.ContextWords)

	switch {
	case p.minLength == 0:
		p.minLength = DefaultMinLength
	case p.minLength < DefaultMinLength:
		errs = append(errs, configError("MinLength", "must be at least %d", DefaultMinLength))
	}

	switch {
	case p.minLengthSingleFactor == 0:
		p.minLengthSingleFactor = max(DefaultMinLengthSingleFactor, p.minLength)
	case p.minLengthSingleFactor < p.minLength:
		errs = append(errs, configError("MinLengthSingleFactor", "must be at least MinLength (%d)", p.minLength))
	}

	switch {
	case p.maxLength == 0:
		p.maxLength = DefaultMaxLength
		if p.maxLength < p.minLengthSingleFactor {
			errs = append(errs, configError("MaxLength", "must be at least MinLengthSingleFactor (%d)", p.minLengthSingleFactor))
		}
	case p.maxLength < MinMaxLength:
		errs = append(errs, configError("MaxLength", "must be at least %d", MinMaxLength))
	case p.maxLength < p.minLengthSingleFactor:
		errs = append(errs, configError("MaxLength", "must be at least MinLengthSingleFactor (%d)", p.minLengthSingleFactor))
	}

	switch {
	case p.historySize == 0:
		p.historySize = DefaultHistorySize
	case p.historySize < 1 || p.historySize > MaxHistorySize:
		errs = append(errs, configError("HistorySize", "must be between 1 and %d", MaxHistorySize))
	}

	if p.blocklist == nil {
		b, err := DefaultBlocklist()
		if err != nil {
			errs = append(errs, fmt.Errorf("password: config: field 'Blocklist': %w", err))
		}
		p.blocklist = b
	} else if p.blocklist.Len() == 0 {
		errs = append(errs, configError("Blocklist", "must not be empty"))
	}

	if p.breachFailOpen && p.breach == nil {
		errs = append(errs, configError("BreachFailOpen", "needs a Breach checker"))
	}

	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

// MinLength returns the least number of characters of a password: the
// MinLength setting when hasMFA, else MinLengthSingleFactor.
func (p *Policy) MinLength(hasMFA bool) int {
	if hasMFA {
		return p.minLength
	}
	return p.minLengthSingleFactor
}

// MaxLength returns the greatest number of characters of a password.
func (p *Policy) MaxLength() int { return p.maxLength }

// HistorySize returns how many previous passwords may not be reused.
func (p *Policy) HistorySize() int { return p.historySize }

// Blocklist returns the list of banned common passwords.
func (p *Policy) Blocklist() *Blocklist { return p.blocklist }

// Check returns every problem with in.Password, in the order length,
// common, identifier, context, or nil when the password is acceptable. It does no
// hashing and no I/O: password history and the breach check
// ([Policy.CheckBreached]) are separate steps. Length is
// counted in Unicode code points after NFC normalisation, so "é" typed as
// one or two code points counts once.
func (p *Policy) Check(in Input) []Problem {
	var problems []Problem

	n := utf8.RuneCountInString(norm.NFC.String(in.Password))
	if minLen := p.MinLength(in.HasMFA); n < minLen {
		problems = append(problems, Problem{
			Rule:    RuleTooShort,
			Message: fmt.Sprintf("Use at least %d characters.", minLen),
		})
	} else if n > p.maxLength {
		problems = append(problems, Problem{
			Rule:    RuleTooLong,
			Message: fmt.Sprintf("Use at most %d characters.", p.maxLength),
		})
	}

	lower := lowerNFKC(in.Password)
	if p.blocklist.containsLower(lower) {
		problems = append(problems, Problem{
			Rule:    RuleCommon,
			Message: "This password is too common. Choose something less predictable.",
		})
	}

	if len(in.Identifiers) > 0 || len(p.context) > 0 || len(p.contextShort) > 0 {
		folded := fold(lower)
		for _, tok := range identifierTokens(in.Identifiers) {
			if strings.Contains(folded, tok) {
				problems = append(problems, Problem{
					Rule:    RuleIdentifier,
					Message: "Don't use your username or email address in your password.",
				})
				break
			}
		}
		if p.hasContext(lower, folded, p.MinLength(in.HasMFA)) {
			problems = append(problems, Problem{
				Rule:    RuleContext,
				Message: "Don't use the name of this service or company in your password.",
			})
		}
	}
	return problems
}

// hasContext reports whether a password, lowered and folded, contains a
// context token (see containsContext), or is mostly a short context word.
func (p *Policy) hasContext(lower, folded string, minLength int) bool {
	if len(p.context) > 0 {
		words := strings.FieldsFunc(folded, notWordRune)
		for _, tok := range p.context {
			if containsContext(words, tok) {
				return true
			}
		}
	}
	for _, w := range p.contextShort {
		if mostly(lower, folded, w, minLength) {
			return true
		}
	}
	return false
}

// containsContext reports whether the words of a password (folded, split
// at spaces, punctuation and symbols) hold tok inside one word
// ("myAtlas2024"), or spell it from the start of a word on through whole
// words ("account center", "account-center2024" for "accountcenter"). A
// token that only appears across a word boundary does not count: "great
// lasagna" does not hold "atlas".
func containsContext(words []string, tok string) bool {
	for i, w := range words {
		if strings.Contains(w, tok) {
			return true
		}
		if !strings.HasPrefix(tok, w) {
			continue
		}
		run := w
		for _, next := range words[i+1:] {
			run += next
			if strings.HasPrefix(run, tok) {
				return true
			}
			if !strings.HasPrefix(tok, run) {
				break
			}
		}
	}
	return false
}

// mostly reports whether a password, lowered and folded, holds the short
// word w as a word of its own (no letter of lower just before or after it:
// "sap" in "SAP2024!", not in "sapphire") and, without those occurrences,
// has fewer than minLength code points left.
func mostly(lower, folded, w string, minLength int) bool {
	if w == "" {
		return false
	}
	if len(lower) != len(folded) {
		// fold maps ASCII to ASCII, so the two align byte for byte; should
		// they not, look for w's boundaries in folded alone.
		lower = folded
	}
	left, found := utf8.RuneCountInString(folded), false
	for i := 0; i < len(folded); {
		j := strings.Index(folded[i:], w)
		if j < 0 {
			break
		}
		start, end := i+j, i+j+len(w)
		before, _ := utf8.DecodeLastRuneInString(lower[:start])
		after, _ := utf8.DecodeRuneInString(lower[end:])
		if unicode.IsLetter(before) || unicode.IsLetter(after) {
			_, size := utf8.DecodeRuneInString(folded[start:])
			i = start + size
			continue
		}
		left -= utf8.RuneCountInString(w)
		found = true
		i = end
	}
	return found && left < minLength
}

// minDistinctiveLength is the fewest letters and digits a word of a
// context entry of several words must have to be refused on its own
// ("acme" of "Acme Bank"); everyday words of product names ("bank",
// "verify", "mail") are never refused on their own (genericContextWord).
const minDistinctiveLength = 4

// genericContextWord reports whether w, a lowered word of a product name
// or a domain, is generic: it says what the product is, not whose, and is
// never refused on its own.
func genericContextWord(w string) bool {
	switch w {
	case "access", "account", "accounts", "admin", "apps", "auth", "auto",
		"bank", "banking", "capital", "card", "care", "center", "centre",
		"city", "cloud", "club", "co", "com", "corp", "data", "desk",
		"digital", "direct", "easy", "email", "energy", "fast", "finance",
		"first", "food", "global", "gmbh", "group", "health", "help", "home",
		"hub", "identity", "inc", "insurance", "labs", "life", "link", "live",
		"login", "mail", "manager", "media", "mobile", "money", "my", "net",
		"news", "online", "org", "password", "portal", "plus", "recovery",
		"reset", "secure", "security", "service", "services", "shop",
		"signin", "smart", "solutions", "store", "support", "system",
		"systems", "team", "tech", "trust", "verify", "wallet", "work", "www":
		return true
	}
	return false
}

// compact drops the spaces, punctuation and symbols left in a folded
// string, so that "account center" and "account-center" both become
// "accountcenter".
func compact(folded string) string {
	return strings.Map(func(r rune) rune {
		if notWordRune(r) {
			return -1
		}
		return r
	}, folded)
}

// contextTokens returns the normalised forms of the context words (see
// [PolicyConfig.ContextWords]): tokens to refuse anywhere in a password,
// compacted, and short words to refuse when the password is mostly one of
// them, with only their leading and trailing punctuation removed. Both are
// folded.
func contextTokens(words []string) (tokens, short []string) {
	seen := make(map[string]bool)
	keep := func(list *[]string, s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			*list = append(*list, s)
		}
	}
	// whole adds an entry as a whole: a token (compacted), or a short word
	// (as written, so that its boundaries can be found in a password).
	whole := func(lower string) {
		f := fold(lower)
		if c := compact(f); utf8.RuneCountInString(c) >= minCoreLength {
			keep(&tokens, c)
		} else if c != "" {
			keep(&short, strings.TrimFunc(f, notWordRune))
		}
	}
	// name adds a name: whole, without its leading and trailing digits and
	// symbols when one word, and its distinctive words when several.
	name := func(lower string) {
		whole(lower)
		words := strings.FieldsFunc(lower, notWordRune)
		if len(words) == 1 {
			if t := compact(fold(strings.TrimFunc(lower, notLetter))); utf8.RuneCountInString(t) >= minCoreLength {
				keep(&tokens, t)
			}
			return
		}
		for _, w := range words {
			w = strings.TrimFunc(w, notLetter)
			if utf8.RuneCountInString(w) >= minDistinctiveLength && !genericContextWord(w) {
				keep(&tokens, fold(w))
			}
		}
	}
	for _, w := range words {
		lower := lowerNFKC(strings.TrimSpace(w))
		if lower == "" {
			continue
		}
		if strings.ContainsFunc(lower, unicode.IsSpace) || !strings.Contains(lower, ".") {
			name(lower)
			continue
		}
		// A domain name, or an address: whole, and the labels of the
		// domain but the last, each a name.
		whole(lower)
		labels := strings.Split(lower[strings.LastIndexByte(lower, '@')+1:], ".")
		for _, l := range labels[:len(labels)-1] {
			if l != "" && !genericContextWord(l) {
				name(l)
			}
		}
	}
	return tokens, short
}
