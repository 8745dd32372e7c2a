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

// TestDecoyJourneyAsksTheHostAlike: after the start, a decoy journey's
// pages (the check page, a wrong code, a resend) make the same directory
// calls as a known user's journey, so that their timing does not tell them
// apart either.
func TestDecoyJourneyAsksTheHostAlike(t *testing.T) {
	h := newHarness(t)
	calls := func() (users, contacts int) {
		h.dir.mu.Lock()
		defer h.dir.mu.Unlock()
		return h.dir.userCalls, h.dir.contactCalls
	}
	walk := func(identifier string) (users, contacts int) {
		b := plugintest.NewBrowser(t)
		h.start(b, identifier)
		u0, c0 := calls()
		page := b.Get(h.base + "/verify")
		b.Submit(page, "/recovery/verify", map[string]string{"code": "00000000"})
		page = b.Get(h.base + "/verify")
		b.Submit(page, "/recovery/verify/resend", nil)
		u1, c1 := calls()
		return u1 - u0, c1 - c0
	}
	ku, kc := walk("alice@example.com")
	du, dc := walk("nobody@example.com")
	if ku == 0 || kc == 0 || du != ku || dc != kc {
		t.Fatalf("directory calls after the start: known %d User + %d Contacts, decoy %d + %d; want equal and not zero", ku, kc, du, dc)
	}
}
