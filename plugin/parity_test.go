package plugin_test

import (
	"testing"

	"github.com/sspr-go/sspr/plugin/plugintest"
)

// TestUnknownIdentifierAsksTheHostAlike: a start for an unknown identifier
// makes the same directory calls as one for a known user (the contact
// lookup included), so that it costs the host the same time.
func TestUnknownIdentifierAsksTheHostAlike(t *testing.T) {
	h := newHarness(t)
	calls := func(identifier string) int {
		h.dir.mu.Lock()
		before := h.dir.contactCalls
		h.dir.mu.Unlock()
		h.start(plugintest.NewBrowser(t), identifier)
		h.dir.mu.Lock()
		defer h.dir.mu.Unlock()
		return h.dir.contactCalls - before
	}
	known, unknown := calls("alice@example.com"), calls("nobody@example.com")
	if known != 1 || unknown != known {
		t.Fatalf("contact lookups: known %d, unknown %d; want 1 each", known, unknown)
	}
}
