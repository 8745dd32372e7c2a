package questions

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// MaxAnswerBytes bounds an answer as typed, in bytes of UTF-8. A longer
// answer is refused at enrolment and is simply wrong at verification.
const MaxAnswerBytes = 256

// maxRounds bounds the passes [normalize] makes to reach a fixed point;
// two suffice for everything the fuzzer found, the rest is margin.
const maxRounds = 8

// Normalize returns the form in which an answer is hashed and compared:
// Unicode NFKC (full-width and compatibility characters become their
// plain forms, and "é" typed as one or as two code points is the same),
// case folding, punctuation, symbols and invisible control and format
// characters removed (so "O'Brien" is "obrien"), and runs of white space
// collapsed to one space, trimmed. Letters keep their accents ("Müller"
// and "Muller" differ) and digits are kept.
//
// An answer longer than [MaxAnswerBytes] bytes, or one whose normal form
// would be, normalizes to "" (which is never a right answer). Normalize
// is idempotent: Normalize(Normalize(s)) == Normalize(s) for every s,
// and its result is valid UTF-8.
func Normalize(answer string) string {
	if len(answer) > MaxAnswerBytes {
		return ""
	}
	s, ok := normalize(answer)
	if !ok || len(s) > MaxAnswerBytes {
		return ""
	}
	return s
}

// normalize applies [normalizeOnce] until nothing changes, and reports
// whether it got there (a normal form that is a fixed point, which makes
// Normalize idempotent). It does not bound the input: question texts
// pass through it too.
func normalize(s string) (string, bool) {
	for range maxRounds {
		next := normalizeOnce(s)
		if next == s {
			return s, true
		}
		s = next
	}
	return "", false
}

// normalizeOnce is one pass: NFKC, case folding, NFKC again (folding does
// not keep a normal form), then the filter. Removing a character can
// bring two others together that NFKC composes, hence the fixed point in
// [normalize].
func normalizeOnce(s string) string {
	s = norm.NFKC.String(s)
	s = cases.Fold().String(s) // a Caser is stateful: one per call
	s = norm.NFKC.String(s)
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
		case r == utf8.RuneError, unicode.In(r, unicode.P, unicode.S, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs):
			// Dropped: punctuation, symbols, invalid UTF-8 and invisible
			// characters.
		default:
			if space {
				b.WriteByte(' ')
				space = false
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

// words returns a question key or text as normalized words, for the check
// that an answer does not repeat its question: a key's separators
// ("questions.q.first_teacher") count as spaces.
func words(text string) []string {
	text = strings.NewReplacer(".", " ", "_", " ", "-", " ").Replace(text)
	s, _ := normalize(text)
	return strings.Fields(s)
}

// repeats reports whether the normalized answer equals text or appears in
// it as a run of whole words, also when spaces are ignored ("firstteacher"
// against "first teacher").
func repeats(answer string, text []string) bool {
	a := strings.Fields(answer)
	if len(a) == 0 {
		return false
	}
	joined := strings.Join(a, "")
	for i := range text {
		for j := i + 1; j <= len(text); j++ {
			if strings.Join(text[i:j], "") == joined {
				return true
			}
		}
	}
	return false
}
