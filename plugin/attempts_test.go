package plugin_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sspr-go/sspr/plugin"
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

// TestExhaustedCheckDoesTheSameStoreWork (DESIGN "account enumeration:
// same store work"): the wrong tries that run a check out make the same
// store calls for a known user (who is told) and an unknown identifier
// (who is not): one job in the outbox, whose addresses the worker looks
// up later.
func TestExhaustedCheckDoesTheSameStoreWork(t *testing.T) {
	log := &callLog{}
	h := newHarness(t, func(c *plugin.Config) {
		c.Store = recordingStore{recordingTx: recordingTx{Tx: c.Store, log: log}, st: c.Store}
	})
	tries := func(identifier string) []string {
		b := plugintest.NewBrowser(t)
		page := b.Follow(h.start(b, identifier))
		h.deliver()
		return log.record(func() {
			for range 5 {
				page = b.Submit(page, "/recovery/verify", map[string]string{"code": "00000001"})
			}
		})
	}
	known := tries("alice@example.com")
	if !slices.Contains(known, "Enqueue sspr-attempts") {
		t.Fatalf("the tries that ran the check out queued no job: %q", known)
	}
	if unknown := tries("nobody@example.com"); !slices.Equal(unknown, known) {
		t.Errorf("an unknown identifier's tries differ from a known user's:\n got %q\nwant %q", unknown, known)
	}
}

// TestAttemptsNoticesAreLimited: someone who knows only an identifier
// cannot have the user's addresses told (texted) at will: past
// Limits.MessagesPerDestination jobs per user and window, nothing more
// goes out, and that is audited.
func TestAttemptsNoticesAreLimited(t *testing.T) {
	h := newHarness(t, func(c *plugin.Config) {
		c.Limits.MessagesPerDestination = plugin.Limit{N: 1, Window: time.Hour}
	})
	const subject = "Wrong codes were entered"
	for range 3 {
		b := plugintest.NewBrowser(t)
		page := b.Follow(h.start(b, "alice@example.com"))
		h.deliver()
		for range 5 {
			page = b.Submit(page, "/recovery/verify", map[string]string{"code": "00000001"})
		}
		h.deliver()
		h.clock.Advance(time.Minute)
	}
	n := 0
	for _, m := range h.mail.to("alice@example.com") {
		if strings.Contains(m.Subject, subject) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d attempts notices to alice after three runs, want 1", n)
	}
	limited := 0
	for _, e := range h.audit("message.limited") {
		if strings.Contains(e.Detail, "attempts notices") {
			limited++
		}
	}
	if limited != 2 {
		t.Fatalf("attempts jobs audited as limited: %d, want 2", limited)
	}
}
