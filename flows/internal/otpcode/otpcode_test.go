package otpcode

import (
	"strings"
	"testing"
)

func TestRandom(t *testing.T) {
	for _, n := range []int{1, 6, 8, 10, 18} {
		seen := map[string]bool{}
		for range 200 {
			c, err := Random(n)
			if err != nil {
				t.Fatal(err)
			}
			if len(c) != n || strings.Trim(c, "0123456789") != "" {
				t.Fatalf("Random(%d) = %q", n, c)
			}
			seen[c] = true
		}
		if n >= 6 && len(seen) < 190 {
			t.Fatalf("Random(%d): only %d distinct codes of 200", n, len(seen))
		}
	}
	for _, n := range []int{0, -1, 19} {
		if _, err := Random(n); err == nil {
			t.Fatalf("Random(%d) gave no error", n)
		}
	}
}

func TestRandomUsesEveryDigit(t *testing.T) {
	// Each position is uniform: 2,000 codes of 8 digits hold every digit
	// in every position (a missing one has probability < 1e-80).
	var seen [8][10]bool
	for range 2000 {
		c, err := Random(8)
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range c {
			seen[i][d-'0'] = true
		}
	}
	for i, ds := range seen {
		for d, ok := range ds {
			if !ok {
				t.Fatalf("digit %d never appeared in position %d", d, i)
			}
		}
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		name, in string
		n        int
		want     string
		ok       bool
	}{
		{"plain", "12345678", 8, "12345678", true},
		{"grouped", "1234 5678", 8, "12345678", true},
		{"dashed", "1234-5678", 8, "12345678", true},
		{"tabs", "\t123456\t", 6, "123456", true},
		{"short", "1234567", 8, "", false},
		{"long", "123456789", 8, "", false},
		{"letter", "1234567a", 8, "", false},
		{"fullwidth", "１２３４５６７８", 8, "", false},
		{"too long to read", strings.Repeat(" ", 30) + "12", 8, "", false},
		{"empty", "", 6, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Normalize(tt.in, tt.n)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("Normalize(%q, %d) = %q, %v; want %q, %v", tt.in, tt.n, got, ok, tt.want, tt.ok)
			}
		})
	}
}
