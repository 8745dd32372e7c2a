package questions_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sspr-go/sspr/flows/questions"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"case", "PaRiS", "paris"},
		{"full width", "ＰＡＲＩＳ　１２", "paris 12"},
		{"ligature", "ﬁrst", "first"},
		{"sharp s folds to ss", "Straße", "strasse"},
		{"capital sharp s", "STRASSE", "strasse"},
		{"accents are kept", "Müller", "müller"},
		{"accent typed as two code points", "Mu\u0308ller", "müller"},
		{"accent typed upper case", "MÜLLER", "müller"},
		{"apostrophe", "O'Brien", "obrien"},
		{"typographic apostrophe", "O’Brien", "obrien"},
		{"punctuation", "St. Louis!", "st louis"},
		{"hyphen", "Jean-Luc", "jeanluc"},
		{"symbols", "AC/DC + €5 ♥", "acdc 5"},
		{"emoji", "Teddy 🧸", "teddy"},
		{"spaces collapse and trim", "  new \t york\r\n ", "new york"},
		{"no-break and ideographic spaces", "new\u00a0york\u3000city", "new york city"},
		{"invisible characters", "ab\u200bc\u00ad\u200dd", "abcd"},
		{"control characters", "ab\x00c\x7f", "abc"},
		{"invalid UTF-8 is dropped", "ab\xffc", "abc"},
		{"combining mark freed by a removed symbol composes", "e\u2022\u0301", "é"},
		{"digits stay", "Route 66", "route 66"},
		{"only punctuation", "?!… —", ""},
		{"empty", "", ""},
		{"at the bound", strings.Repeat("a", questions.MaxAnswerBytes), strings.Repeat("a", questions.MaxAnswerBytes)},
		{"over the bound", strings.Repeat("a", questions.MaxAnswerBytes+1), ""},
		{"normal form over the bound", strings.Repeat("\ufdfa", 80), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := questions.Normalize(tc.in)
			if got != tc.want {
				t.Fatalf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if again := questions.Normalize(got); again != got {
				t.Fatalf("not idempotent: %q -> %q", got, again)
			}
		})
	}
	if questions.Normalize("Muller") == questions.Normalize("Müller") {
		t.Fatal("an accent does not matter")
	}
}

func ExampleNormalize() {
	fmt.Printf("%q\n", questions.Normalize("  Mr. O’BRIEN,  Ｄｕｂｌｉｎ! "))
	// Output: "mr obrien dublin"
}
