package password

import (
	"testing"
)

func TestDefaultBlocklist(t *testing.T) {
	b, err := DefaultBlocklist()
	if err != nil {
		t.Fatalf("DefaultBlocklist: %v", err)
	}
	// 49,233 entries in @zxcvbn-ts/language-common 4.1.3; a few fold together.
	if got := b.Len(); got < 40000 || got > 49233 {
		t.Errorf("Len() = %d, want between 40000 and 49233", got)
	}
	b2, err := DefaultBlocklist()
	if err != nil {
		t.Fatalf("DefaultBlocklist (second call): %v", err)
	}
	if b == b2 {
		t.Error("DefaultBlocklist returned the same *Blocklist twice; want a new one per call")
	}
}

func TestBlocklistContainsDefault(t *testing.T) {
	b, err := DefaultBlocklist()
	if err != nil {
		t.Fatalf("DefaultBlocklist: %v", err)
	}
	tests := []struct {
		name     string
		password string
		want     bool
	}{
		{"exact entry", "password", true},
		{"case and substitutions and trailing digits and symbols", "P@ssw0rd2024!", true},
		{"substitution and trailing symbol", "Passw0rd!", true},
		{"trailing digits", "qwerty123", true},
		{"leading symbols and trailing digits", "!!Dragon99", true},
		{"leading substitution kept, trailing digits stripped", "@dmin123", true},
		{"upper case", "LETMEIN", true},
		{"all digits", "123456", true},
		{"all digits, longer entry", "11111111", true},
		{"entry with inner digits, trailing symbol", "1qaz2wsx!", true},
		{"pipe and plus substitutions", "|l0vey0u", true},
		{"full-width letters (NFKC)", "ｐａｓｓｗｏｒｄ", true},
		{"surrounding spaces", "  monkey  ", true},
		{"passphrase", "correct-horse-battery-staple-42", false},
		{"three words", "wonderland-tea-party", false},
		{"common word inside a longer phrase", "Tr0ub4dor&3xyzzy-plane", false},
		{"entry as a substring only", "password-for-the-garden-shed", false},
		{"empty", "", false},
		{"digits only, not an entry", "90817263544536", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := b.Contains(tt.password); got != tt.want {
				t.Errorf("Contains(%q) = %v, want %v", tt.password, got, tt.want)
			}
		})
	}
}

func TestBlocklistShortEntries(t *testing.T) {
	// "abc123" strips to "abc" and "a1b" to "a": too short to be compared
	// stripped, so they ban only themselves (after normalisation).
	b := NewBlocklist([]string{"abc123", "a1b", "xyz", ""})
	if got := b.Len(); got != 3 {
		t.Errorf("Len() = %d, want 3", got)
	}
	tests := []struct {
		password string
		want     bool
	}{
		{"abc123", true},
		{"ABC123", true},
		{"@bc123", true},
		{"alb", true}, // "a1b" normalised
		{"xyz", true},
		{"abc", false},
		{"abc!!!!!!!!!!!!!", false},
		{"2024abc2024", false},
		{"abcdefgh-abc123-xyz", false},
		{"xyz-and-more-words", false},
	}
	for _, tt := range tests {
		if got := b.Contains(tt.password); got != tt.want {
			t.Errorf("Contains(%q) = %v, want %v", tt.password, got, tt.want)
		}
	}
}

func TestBlocklistStrippedEntries(t *testing.T) {
	// An entry with digits around a word bans the word with any padding.
	b := NewBlocklist([]string{"2000dragon99"})
	for _, pw := range []string{"2000dragon99", "dragon", "Dr@gon!", "1dragon", "#dragon#2025"} {
		if !b.Contains(pw) {
			t.Errorf("Contains(%q) = false, want true", pw)
		}
	}
	for _, pw := range []string{"dragons", "dragon-fly", "snapdragon"} {
		if b.Contains(pw) {
			t.Errorf("Contains(%q) = true, want false", pw)
		}
	}
}

func TestBlocklistEmpty(t *testing.T) {
	for name, b := range map[string]*Blocklist{"nil": nil, "zero": {}, "no words": NewBlocklist(nil)} {
		if b.Contains("password") {
			t.Errorf("%s: Contains(password) = true, want false", name)
		}
		if b.Len() != 0 {
			t.Errorf("%s: Len() = %d, want 0", name, b.Len())
		}
	}
}

func TestNewBlocklistFolds(t *testing.T) {
	// "Passw0rd" and "password" normalise to the same entry.
	b := NewBlocklist([]string{"password", "Passw0rd", "p@ssword"})
	if got := b.Len(); got != 1 {
		t.Errorf("Len() = %d, want 1", got)
	}
}

func BenchmarkDefaultBlocklist(b *testing.B) {
	for b.Loop() {
		if _, err := DefaultBlocklist(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBlocklistContains(b *testing.B) {
	bl, err := DefaultBlocklist()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		bl.Contains("P@ssw0rd2024!")
		bl.Contains("correct-horse-battery-staple-42")
	}
}
