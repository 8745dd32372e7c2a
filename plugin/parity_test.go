package plugin_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/email"
	"github.com/sspr-go/sspr/flows/sms"
	"github.com/sspr-go/sspr/plugin"
	"github.com/sspr-go/sspr/plugin/plugintest"
	"github.com/sspr-go/sspr/plugin/store"
	"github.com/sspr-go/sspr/plugin/store/postgres"
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

// contactsFailFor is a directory whose Contacts fails for IDs it does not
// know, as a host with typed IDs (a UUID column) may.
type contactsFailFor struct{ *directory }

func (d contactsFailFor) Contacts(ctx context.Context, id string) ([]plugin.Contact, error) {
	d.mu.Lock()
	_, ok := d.users[id]
	d.mu.Unlock()
	if !ok {
		return nil, errors.New("invalid input syntax for type uuid")
	}
	return d.directory.Contacts(ctx, id)
}

// TestDecoyHostErrorsDoNotShow: a host that fails for the decoy's user ID
// does not make an unknown identifier's start fail where a known one's
// succeeds.
func TestDecoyHostErrorsDoNotShow(t *testing.T) {
	h := newHarness(t, func(c *plugin.Config) { c.Directory = contactsFailFor{c.Directory.(*directory)} })
	for _, id := range []string{"alice@example.com", "nobody@example.com"} {
		if p := h.start(plugintest.NewBrowser(t), id); p.Status != http.StatusSeeOther {
			t.Fatalf("start for %s: status %d", id, p.Status)
		}
	}
}

// TestUnknownIdentifierOnPostgresWithSMS: on PostgreSQL, whose text
// columns refuse some bytes, a start for an unknown identifier answers as
// a known one's with email and SMS configured (the decoy's reads use a
// user ID any store takes).
func TestUnknownIdentifierOnPostgresWithSMS(t *testing.T) {
	st, err := postgres.Config{URL: pgSchemaURL(t)}.Open(t.Context(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := newHarness(t, func(c *plugin.Config) {
		c.Store = st
		c.Flows = emailAndSMS(t, st, c.Now)
	})
	for _, id := range []string{"alice@example.com", "nobody@example.com"} {
		b := plugintest.NewBrowser(t)
		if p := h.start(b, id); p.Status != http.StatusSeeOther {
			t.Fatalf("start for %s: status %d", id, p.Status)
		}
		if p := b.Get(h.base + "/verify"); p.Status != http.StatusOK {
			t.Fatalf("check page for %s: status %d", id, p.Status)
		}
	}
}

// decoyFailingStore fails every read of DecoyUserID's factors, as a store
// might for a user ID it never saw.
type decoyFailingStore struct{ store.Store }

func (s decoyFailingStore) Factors(ctx context.Context, userID, flow string) ([]store.Factor, error) {
	if userID == plugin.DecoyUserID {
		return nil, errors.New("no such user")
	}
	return s.Store.Factors(ctx, userID, flow)
}

// TestDecoyOptionsErrorsDoNotShow: a start for an unknown identifier asks
// every channel for DecoyUserID's options and throws the answer away, an
// error included: it answers as a known user's start does.
func TestDecoyOptionsErrorsDoNotShow(t *testing.T) {
	h := newHarness(t, func(c *plugin.Config) {
		c.Flows = emailAndSMS(t, decoyFailingStore{c.Store}, c.Now)
	})
	for _, id := range []string{"alice@example.com", "nobody@example.com"} {
		b := plugintest.NewBrowser(t)
		if p := h.start(b, id); p.Status != http.StatusSeeOther {
			t.Fatalf("start for %s: status %d", id, p.Status)
		}
	}
}

// emailAndSMS returns the email flow and an SMS flow on st.
func emailAndSMS(t *testing.T, st store.Store, now func() time.Time) []flows.Flow {
	t.Helper()
	mail, err := email.New(email.Config{})
	if err != nil {
		t.Fatal(err)
	}
	text, err := sms.New(sms.Config{Store: st, Keys: [][]byte{[]byte("sms test key, exactly 32 bytes!!")}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return []flows.Flow{mail, text}
}
