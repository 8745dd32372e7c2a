package password

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// minCoreLength is the fewest code points a form with its leading or
// trailing digits and symbols removed must keep to be compared at all. It
// stops a list entry such as "abc123" (core "abc") from refusing every
// password that is "abc" plus a run of digits and symbols, and it is the
// shortest identifier token looked for inside a password.
const minCoreLength = 4

// lowerNFKC folds compatibility forms (full-width letters, ligatures) and
// case. It is the first step of every comparison; the password's length is
// counted separately, on its NFC form.
func lowerNFKC(s string) string {
	return strings.ToLower(norm.NFKC.String(s))
}

// substitute undoes the common character substitutions ("leetspeak").
func substitute(r rune) rune {
	switch r {
	case '0':
		return 'o'
	case '@', '4':
		return 'a'
	case '1':
		return 'l'
	case '!', '|':
		return 'i'
	case '3':
		return 'e'
	case '$', '5':
		return 's'
	case '7', '+':
		return 't'
	case '8':
		return 'b'
	case '9':
		return 'g'
	}
	return r
}

// notLetter reports whether r is a digit, symbol, punctuation or space: the
// characters stripped from both ends of a password.
func notLetter(r rune) bool {
	return !unicode.IsLetter(r) && !unicode.IsMark(r)
}

// notWordRune separates the words of an identifier.
func notWordRune(r rune) bool {
	return !unicode.IsLetter(r) && !unicode.IsMark(r) && !unicode.IsDigit(r)
}

// fold returns the normalised form of an already lowered string: its
// substitutions undone, nothing stripped.
func fold(lower string) string {
	return strings.Map(substitute, lower)
}

// core returns the normalised form of lower with its leading and trailing
// digits and symbols removed, and false when that leaves fewer than
// minCoreLength code points.
func core(lower string) (string, bool) {
	return longEnough(strings.TrimFunc(lower, notLetter))
}

func longEnough(lower string) (string, bool) {
	if utf8.RuneCountInString(lower) < minCoreLength {
		return "", false
	}
	return fold(lower), true
}

// passwordForms calls yield with every normalised form of a lowered
// password that is looked up in a [Blocklist]: the whole password, and the
// password with its trailing run, its leading run, or both runs of digits
// and symbols removed (each only when it keeps minCoreLength code points).
// Stripping one side alone catches "@dmin123", whose leading "@" stands for
// a letter while the trailing "123" is padding.
func passwordForms(lower string, yield func(string) bool) {
	if !yield(fold(lower)) {
		return
	}
	right := strings.TrimRightFunc(lower, notLetter)
	both := strings.TrimLeftFunc(right, notLetter)
	left := strings.TrimLeftFunc(lower, notLetter)
	forms := [...]string{right, left, both}
next:
	for i, s := range forms {
		if s == lower {
			continue
		}
		for _, earlier := range forms[:i] {
			if s == earlier {
				continue next
			}
		}
		if f, ok := longEnough(s); ok && !yield(f) {
			return
		}
	}
}

// identifierTokens returns the normalised tokens of the user's identifiers
// that a password must not contain: each identifier whole, the local part of
// an email address, and each word (letters and digits) of a username,
// display name or local part, every one also with its leading and trailing
// digits and symbols removed. Tokens shorter than minCoreLength code points
// are dropped. The domain of an email address is not split into words.
func identifierTokens(ids []string) []string {
	var tokens []string
	seen := make(map[string]struct{})
	add := func(lower string) {
		for _, s := range [...]string{lower, strings.TrimFunc(lower, notLetter)} {
			f, ok := longEnough(s)
			if !ok {
				continue
			}
			if _, dup := seen[f]; dup {
				continue
			}
			seen[f] = struct{}{}
			tokens = append(tokens, f)
		}
	}
	for _, id := range ids {
		lower := lowerNFKC(strings.TrimSpace(id))
		if lower == "" {
			continue
		}
		add(lower)
		words := lower
		if at := strings.LastIndexByte(lower, '@'); at > 0 {
			words = lower[:at]
			add(words)
		}
		for _, w := range strings.FieldsFunc(words, notWordRune) {
			add(w)
		}
	}
	return tokens
}
