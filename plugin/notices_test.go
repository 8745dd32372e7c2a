package plugin_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/email"
	"github.com/sspr-go/sspr/plugin"
	"github.com/sspr-go/sspr/plugin/plugintest"
)

func subjects(h *harness, addr string) []string {
	var out []string
	for _, m := range h.mail.to(addr) {
		out = append(out, m.Subject)
	}
	return out
}

// TestMessagesPerDestinationLimit: over the limit the code is not sent,
// the journey answers as usual, and the drop is audited.
func TestMessagesPerDestinationLimit(t *testing.T) {
	h := newHarness(t, func(c *plugin.Config) {
		c.Limits.MessagesPerDestination = plugin.Limit{N: 2, Window: time.Hour}
		c.Limits.StartsPerAccount = plugin.Limit{N: 100, Window: time.Hour}
	})
	var locations []string
	for range 3 {
		b := plugintest.NewBrowser(t)
		p := h.start(b, "alice")
		locations = append(locations, p.Header.Get("Location"))
		if p.Status != http.StatusSeeOther {
			t.Fatalf("start: %d", p.Status)
		}
	}
	h.deliver()
	if got := subjects(h, "alice@example.com"); len(got) != 2 {
		t.Fatalf("messages to alice: %v, want 2 (the third dropped)", got)
	}
	if evs := h.audit("message.limited"); len(evs) != 1 || evs[0].Outcome != "limited" || !strings.Contains(evs[0].Detail, "email reset") {
		t.Fatalf("audit: %+v", evs)
	}
	if locations[2] != locations[0] {
		t.Fatalf("the limited start answered differently: %v", locations)
	}
	// Another address is not affected.
	h.dir.users["u-dave"] = &dirUser{User: plugin.User{ID: "u-dave", Username: "dave", Email: "dave@example.com"}}
	h.start(plugintest.NewBrowser(t), "dave")
	h.deliver()
	if len(h.mail.to("dave@example.com")) != 1 || len(h.mail.to("alice@example.com")) != 2 || len(h.audit("message.limited")) != 1 {
		t.Fatal("the limit of one address reached another")
	}
}

// TestNotifyResetRequests tells the user's other addresses that someone
// asked for a reset; unknown identifiers cause nothing.
func TestNotifyResetRequests(t *testing.T) {
	h := newHarness(t, func(c *plugin.Config) { c.NotifyResetRequests = true })
	h.start(plugintest.NewBrowser(t), "alice")
	h.start(plugintest.NewBrowser(t), "nobody@example.com")
	h.deliver()
	main, backup := subjects(h, "alice@example.com"), subjects(h, "alice.backup@example.org")
	if len(main) != 1 || !strings.Contains(main[0], "Reset your") {
		t.Fatalf("to the code's address: %v", main)
	}
	if len(backup) != 1 || !strings.Contains(backup[0], "Someone asked to reset") {
		t.Fatalf("to the other address: %v", backup)
	}
	if n := len(h.mail.all()); n != 2 {
		t.Fatalf("%d messages, want 2", n)
	}

	// Off by default.
	h = newHarness(t)
	h.start(plugintest.NewBrowser(t), "alice")
	h.deliver()
	if got := subjects(h, "alice.backup@example.org"); len(got) != 0 {
		t.Fatalf("notice sent without NotifyResetRequests: %v", got)
	}
}

// adminListDirectory lists its administrators too.
type adminListDirectory struct {
	adminDirectory
}

func (d adminListDirectory) Admins(_ context.Context) ([]plugin.User, error) {
	var out []plugin.User
	for id := range d.admins {
		if u, err := d.User(context.Background(), id); err == nil {
			out = append(out, u)
		}
	}
	return out, nil
}

// TestOtherAdministratorsAreTold: when an administrator resets their
// password, the other administrators get an email; a user's reset tells
// nobody else.
func TestOtherAdministratorsAreTold(t *testing.T) {
	base := newDirectory()
	base.users["u-dave"] = &dirUser{User: plugin.User{ID: "u-dave", Username: "dave", Email: "dave@example.com"}}
	base.users["u-erin"] = &dirUser{User: plugin.User{ID: "u-erin", Username: "erin", Email: "erin@example.com"}}
	dir := adminListDirectory{adminDirectory{directory: base, admins: map[string]bool{"u-alice": true, "u-dave": true}}}
	key := &fixedFactor{id: "key", enrolled: map[string]bool{"u-alice": true}}
	h := newHarness(t, func(c *plugin.Config) {
		c.Directory = dir
		mail, _ := email.New(email.Config{})
		c.Flows = []flows.Flow{mail, key}
	})
	h.dir = base

	b := plugintest.NewBrowser(t)
	page := b.Follow(h.emailStep(b, "alice", "alice@example.com"))
	pw := b.Follow(b.Submit(page, "/recovery/verify", map[string]string{"code": "246810"}))
	if done := b.Submit(pw, "/recovery/password", map[string]string{"password": newPassword, "confirm": newPassword}); done.Status != http.StatusSeeOther {
		t.Fatalf("admin reset: %d %s", done.Status, done.Text())
	}
	h.deliver()
	dave := h.mail.to("dave@example.com")
	if len(dave) != 1 || !strings.Contains(dave[0].Subject, "administrator") || !strings.Contains(dave[0].Text, "Alice Liddell") ||
		!strings.Contains(dave[0].Text, "self-service") {
		t.Fatalf("to the other administrator: %+v", dave)
	}
	for _, m := range h.mail.all() {
		if strings.Contains(m.Subject, "administrator") && m.To != "dave@example.com" {
			t.Fatalf("admin notice to %s", m.To)
		}
	}

	// erin is no administrator: her reset tells nobody else.
	before := len(h.mail.all())
	b = plugintest.NewBrowser(t)
	pw = b.Follow(h.emailStep(b, "erin", "erin@example.com"))
	b.Submit(pw, "/recovery/password", map[string]string{"password": newPassword, "confirm": newPassword})
	h.deliver()
	for _, m := range h.mail.all()[before:] {
		if m.To != "erin@example.com" {
			t.Fatalf("a user's reset told %s: %s", m.To, m.Subject)
		}
	}
}
