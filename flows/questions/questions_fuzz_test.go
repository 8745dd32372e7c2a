package questions_test

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/sspr-go/sspr/flows/questions"
)

// FuzzNormalize checks that Normalize never panics, is idempotent, and
// returns valid UTF-8 of at most MaxAnswerBytes bytes without punctuation,
// symbols, control or format characters, or stray white space.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"PaRiS", "ＰＡＲＩＳ", "O'Brien", "Straße", "Mu\u0308ller", "  new \t york ", "ab\xffc", "e\u2022\u0301",
		strings.Repeat("\ufdfa", 20), strings.Repeat("\u0301", 40), "\u0130stanbul", "\u0345\u0399"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := questions.Normalize(s)
		if again := questions.Normalize(got); again != got {
			t.Fatalf("Normalize(%q) = %q, but Normalize(%q) = %q", s, got, got, again)
		}
		if !utf8.ValidString(got) || len(got) > questions.MaxAnswerBytes {
			t.Fatalf("Normalize(%q) = %q: invalid UTF-8 or too long", s, got)
		}
		if len(s) > questions.MaxAnswerBytes && got != "" {
			t.Fatalf("over-long input %q normalizes to %q", s, got)
		}
		if got != strings.Join(strings.Fields(got), " ") || strings.ContainsFunc(got, func(r rune) bool { return unicode.IsSpace(r) && r != ' ' }) {
			t.Fatalf("Normalize(%q) = %q: white space not collapsed", s, got)
		}
		if i := strings.IndexFunc(got, func(r rune) bool {
			return unicode.In(r, unicode.P, unicode.S, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs)
		}); i >= 0 {
			t.Fatalf("Normalize(%q) = %q keeps %q", s, got, got[i:])
		}
	})
}
