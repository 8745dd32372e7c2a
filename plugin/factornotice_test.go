package plugin_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/sspr-go/sspr/plugin"
	"github.com/sspr-go/sspr/plugin/plugintest"
	"github.com/sspr-go/sspr/plugin/store"
)

// failFactorAudit is a store whose transactions fail, while armed, when
// they write a factor.* audit event: the record of a factor change fails
// after the change itself was made (as if the process died there).
type failFactorAudit struct {
	store.Store
	armed atomic.Bool
}

func (f *failFactorAudit) Atomic(ctx context.Context, fn func(tx store.Tx) error) error {
	return f.Store.Atomic(ctx, func(tx store.Tx) error { return fn(failFactorAuditTx{Tx: tx, f: f}) })
}

type failFactorAuditTx struct {
	store.Tx
	f *failFactorAudit
}

func (t failFactorAuditTx) AppendAudit(ctx context.Context, e store.AuditEvent) (int64, error) {
	if t.f.armed.Load() && strings.HasPrefix(e.Event, "factor.") {
		return 0, errors.New("audit trail unavailable")
	}
	return t.Tx.AppendAudit(ctx, e)
}

// count returns how many messages to addr have a subject containing sub.
func countMail(h *harness, addr, sub string) int {
	n := 0
	for _, m := range h.mail.to(addr) {
		if strings.Contains(m.Subject, sub) {
			n++
		}
	}
	return n
}

// TestFactorNoticeSurvivesAFailedRecord: the "method added" notices are
// queued (held) before the change, so a change whose record fails
// afterwards still reaches every address once the hold ends; a removal
// that removed nothing tells nobody, not even after the hold.
func TestFactorNoticeSurvivesAFailedRecord(t *testing.T) {
	var fs *failFactorAudit
	log := &syncBuffer{}
	h := securityHarness(t, func(c *plugin.Config) {
		fs = &failFactorAudit{Store: c.Store}
		c.Store = fs
		c.Logger = slog.New(slog.NewTextHandler(log, nil))
	})
	b := plugintest.NewBrowser(t)
	b.Get(h.srv.URL + "/test-login?stale=1")
	step := b.Follow(pressStepUp(t, h, b, "/account/security/recovery-codes/add"))
	h.deliver()
	conf := b.Follow(b.Submit(step, "/recovery/verify", map[string]string{"code": h.stepUpMail("alice@example.com")}))

	fs.armed.Store(true)
	codes := b.Submit(conf, "/recovery/account/security/recovery-codes/add", nil)
	if !strings.Contains(codes.Text(), "recovery codes") || len(codes.Find(func(n *html.Node) bool { return n.Data == "code" })) != 10 {
		t.Fatalf("codes page: %d %s", codes.Status, codes.Text())
	}
	fs.armed.Store(false)
	h.deliver()
	if n := countMail(h, "alice@example.com", "was added"); n != 0 {
		t.Fatalf("%d notices before the hold ended", n)
	}
	if len(h.audit("factor.added")) != 0 {
		t.Fatal("the failed record was written")
	}
	// The log still tells of the change, marked as not stored.
	if log.count("audit.event=factor.added") != 1 || log.count("not stored") != 1 {
		t.Fatal("the change whose record failed is missing from the log")
	}
	h.clock.Advance(31 * time.Second)
	h.deliver()
	for _, addr := range []string{"alice@example.com", "alice.backup@example.org"} {
		if n := countMail(h, addr, "was added"); n != 1 {
			t.Fatalf("%s: %d notices after the hold, want 1", addr, n)
		}
	}

	// Removing a factor that is not there changes nothing: no notice. (A
	// fresh step-up first, now with one of the new recovery codes.)
	var shown []string
	for _, n := range codes.Find(func(n *html.Node) bool { return n.Data == "code" }) {
		shown = append(shown, n.FirstChild.Data)
	}
	step = b.Follow(pressStepUp(t, h, b, "/account/security/totp/add"))
	if add := b.Follow(b.Submit(step, "/recovery/verify", map[string]string{"code": shown[0]})); !strings.Contains(add.Text(), "Add an authenticator app") {
		t.Fatalf("step-up with a recovery code: %s", add.Text())
	}
	list := b.Get(h.base + "/account/security")
	_, v := list.Form("/recovery/account/security/recovery-codes/remove")
	if v == nil {
		t.Fatalf("no remove form: %s", list.Text())
	}
	v.Set("factor", "no-such-factor")
	if p := b.Post(h.base+"/account/security/recovery-codes/remove", v); p.Status != 404 {
		t.Fatalf("removing nothing: %d %s", p.Status, p.Text())
	}
	h.clock.Advance(31 * time.Second)
	h.deliver()
	if n := countMail(h, "alice@example.com", "was removed"); n != 0 {
		t.Fatalf("%d notices for a removal that removed nothing", n)
	}
}
