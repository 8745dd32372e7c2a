package main

import (
	"strings"
	"testing"

	"github.com/sspr-go/sspr/examples/provider/server"
	"github.com/sspr-go/sspr/plugin/password"
)

// TestNewPasswordAccepted checks that the completions' new passwords pass
// sspr's default policy for every load-test user they may be used for, and
// are unique.
func TestNewPasswordAccepted(t *testing.T) {
	p, err := password.NewPolicy(password.PolicyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// A five-digit name read as letters is five letters of "oalestbg2"…
	for _, w := range passwordWords {
		run := 0
		for _, r := range w {
			if strings.ContainsRune("oalestbg", r) {
				run++
			} else {
				run = 0
			}
			if run >= 5 {
				t.Errorf("password word %q could spell a user's digits", w)
			}
		}
	}
	seen := map[string]bool{}
	for n := range 3000 {
		pw := newPassword(n)
		if seen[pw] {
			t.Fatalf("newPassword(%d) = %q repeats", n, pw)
		}
		seen[pw] = true
		// Completions use the last users of the seeded range.
		for _, user := range []int{9999 - n, 89999 - n, n, (n * 7919) % 100000} {
			name := server.LoadTestUsername(user)
			ids := []string{name, server.LoadTestEmail(user), "Load Test " + name[len("user"):]}
			if probs := p.Check(password.Input{Password: pw, Identifiers: ids}); len(probs) > 0 {
				t.Fatalf("newPassword(%d) = %q refused for %s: %v", n, pw, name, probs)
			}
		}
	}
}
