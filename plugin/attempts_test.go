package plugin_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sspr-go/sspr/plugin/plugintest"
)

// TestExhaustedCheckTellsTheUser (ASVS V6.3.5): when the last try of a
// check goes wrong, every contact address of the user hears of it, once;
// the same for an unknown identifier sends nothing and answers alike.
func TestExhaustedCheckTellsTheUser(t *testing.T) {
	h := newHarness(t)
	const subject = "Wrong codes were entered"
	exhaust := func(identifier string) *plugintest.Page {
		b := plugintest.NewBrowser(t)
		page := b.Follow(h.start(b, identifier))
		h.deliver()
		for i := range 6 { // five tries, then one at a dead code
			page = b.Submit(page, "/recovery/verify", map[string]string{"code": "00000001"})
			if page.Status != http.StatusBadRequest {
				t.Fatalf("%s, wrong code %d: status %d", identifier, i+1, page.Status)
			}
		}
		h.deliver()
		return page
	}
	known := exhaust("alice@example.com")
	for _, addr := range []string{"alice@example.com", "alice.backup@example.org"} {
		n := 0
		for _, m := range h.mail.to(addr) {
			if strings.Contains(m.Subject, subject) {
				n++
				if !strings.Contains(m.Text, "has not changed") || strings.Contains(m.Text, "00000001") {
					t.Errorf("%s: notice text %q", addr, m.Text)
				}
			}
		}
		if n != 1 {
			t.Fatalf("%s: %d notices after the tries ran out, want 1", addr, n)
		}
	}
	before := len(h.mail.all())
	unknown := exhaust("nobody@example.com")
	if n := len(h.mail.all()); n != before {
		t.Fatalf("an unknown identifier's exhausted code sent %d messages", n-before)
	}
	if known.Status != unknown.Status || known.Text() != unknown.Text() {
		t.Fatalf("the last page differs: known %d %q, unknown %d %q", known.Status, known.Text(), unknown.Status, unknown.Text())
	}
}
