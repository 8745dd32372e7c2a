package plugin_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/email"
	"github.com/sspr-go/sspr/plugin"
	"github.com/sspr-go/sspr/plugin/plugintest"
	"github.com/sspr-go/sspr/plugin/store"
)

// fixedFactor is a bound test flow: users listed in enrolled have a factor
// whose code is "246810". It follows the attempt-counting pattern of real
// bound flows (a challenge per journey, five attempts).
type fixedFactor struct {
	id       string
	mu       sync.Mutex
	enrolled map[string]bool
	begins   int
}

func (f *fixedFactor) ID() string       { return f.id }
func (f *fixedFactor) Kind() flows.Kind { return flows.KindBound }

func (f *fixedFactor) Options(_ context.Context, s flows.Subject) ([]flows.Option, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.enrolled[s.UserID] {
		return nil, nil
	}
	return []flows.Option{{Flow: f.id, Hint: "Test key " + f.id}}, nil
}

func (f *fixedFactor) AuthMethod() string { return "otp" }

func (f *fixedFactor) Prompt() flows.Prompt {
	return flows.Prompt{Page: "code", Heading: "Enter your " + f.id + " code", Label: "Test code", InputMode: "numeric",
		Autocomplete: "one-time-code", MaxLength: 6, Choice: "Test " + f.id}
}

func (f *fixedFactor) Begin(ctx context.Context, r flows.BeginRequest) error {
	f.mu.Lock()
	f.begins++
	f.mu.Unlock()
	handle := make([]byte, 32)
	_, _ = rand.Read(handle)
	now := r.Env.Now()
	return r.Tx.CreateChallenge(ctx, store.Challenge{ID: f.id + "-" + r.JourneyID, JourneyID: r.JourneyID, Flow: f.id,
		CodeHash: handle, MaxAttempts: 5, CreatedAt: now, ExpiresAt: now.Add(5 * time.Minute)})
}

func (f *fixedFactor) Verify(ctx context.Context, r flows.VerifyRequest) error {
	c, err := r.Tx.LatestChallenge(ctx, r.JourneyID, f.id)
	if err != nil {
		return flows.ErrNoChallenge
	}
	attempt := bytes.Repeat([]byte{0}, 32)
	if r.Subject.UserID != "" && r.Form.Get("code") == "246810" {
		attempt = c.CodeHash
	}
	c, err = r.Tx.ConsumeCode(ctx, c.ID, attempt, r.Env.Now())
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrMismatch):
		if c.Attempts >= c.MaxAttempts {
			return &flows.VerifyError{Err: flows.ErrExhausted}
		}
		return &flows.VerifyError{Err: flows.ErrWrongResponse, AttemptsLeft: c.MaxAttempts - c.Attempts}
	case errors.Is(err, store.ErrExhausted):
		return flows.ErrExhausted
	}
	return err
}

// admins makes the test directory an AdminChecker.
type adminDirectory struct {
	*directory
	admins map[string]bool
}

func (d adminDirectory) IsAdmin(_ context.Context, id string) (bool, error) { return d.admins[id], nil }

// mfaHarness is a harness whose alice has two bound test factors.
func mfaHarness(t *testing.T, mutate ...func(*plugin.Config)) (*harness, *fixedFactor, *fixedFactor) {
	t.Helper()
	key := &fixedFactor{id: "key", enrolled: map[string]bool{"u-alice": true}}
	spare := &fixedFactor{id: "spare", enrolled: map[string]bool{"u-alice": true}}
	mail, err := email.New(email.Config{})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, append([]func(*plugin.Config){func(c *plugin.Config) {
		c.Flows = []flows.Flow{mail, key, spare}
	}}, mutate...)...)
	return h, key, spare
}

// emailStep starts a journey for identifier and proves the email code.
func (h *harness) emailStep(b *plugintest.Browser, identifier, addr string) *plugintest.Page {
	h.t.Helper()
	check := b.Follow(h.start(b, identifier))
	h.deliver()
	_, code := h.resetMail(addr)
	return b.Submit(check, "/recovery/verify", map[string]string{"code": code})
}

func TestResetNeverBypassesMFA(t *testing.T) {
	h, key, spare := mfaHarness(t)
	b := plugintest.NewBrowser(t)
	after := h.emailStep(b, "alice", "alice@example.com")
	if after.Status != http.StatusSeeOther || after.Header.Get("Location") != "/recovery/verify" {
		t.Fatalf("after email: %d %q", after.Status, after.Header.Get("Location"))
	}
	page := b.Follow(after)
	if !strings.Contains(page.Text(), "Enter your key code") || !strings.Contains(page.Text(), "Test spare") {
		t.Fatalf("second step page: %s", page.Text())
	}
	if key.begins != 1 || spare.begins != 0 {
		t.Fatalf("begins: key %d spare %d", key.begins, spare.begins)
	}
	// Email alone cannot set a password: not by the page, not by a direct POST.
	if p := b.Get(h.base + "/password"); p.Header.Get("Location") != "/recovery/verify" {
		t.Fatalf("password page after email only: %d %q", p.Status, p.Header.Get("Location"))
	}
	_, v := page.Form("/recovery/verify")
	v.Set("password", newPassword)
	v.Set("confirm", newPassword)
	if p := b.Post(h.base+"/password", v); p.Status != http.StatusSeeOther || h.dir.password("u-alice") != "" {
		t.Fatalf("direct POST after email only: %d, password %q", p.Status, h.dir.password("u-alice"))
	}
	// A wrong second-factor code is refused and counted.
	bad := b.Submit(page, "/recovery/verify", map[string]string{"code": "000000"})
	if bad.Status != http.StatusBadRequest || !strings.Contains(bad.Text(), "4 tries left") {
		t.Fatalf("wrong factor code: %d %s", bad.Status, bad.Text())
	}
	ok := b.Submit(bad, "/recovery/verify", map[string]string{"code": "246810"})
	if ok.Header.Get("Location") != "/recovery/password" {
		t.Fatalf("right factor code: %d %q %s", ok.Status, ok.Header.Get("Location"), ok.Text())
	}
	pw := b.Follow(ok)
	// With MFA the minimum length is 8, not 15.
	if !strings.Contains(pw.Text(), "at least 8 characters") {
		t.Fatalf("password page for an MFA user: %s", pw.Text())
	}
	done := b.Submit(pw, "/recovery/password", map[string]string{"password": "lemon-tree-7", "confirm": "lemon-tree-7"})
	if done.Header.Get("Location") != "/recovery/done" || h.dir.password("u-alice") != "lemon-tree-7" {
		t.Fatalf("set password: %d %s", done.Status, done.Text())
	}
}

func TestLostFactorPointsToTheHelpdesk(t *testing.T) {
	h, _, _ := mfaHarness(t, func(c *plugin.Config) { c.HelpURL = "https://help.example/lost" })
	b := plugintest.NewBrowser(t)
	page := b.Follow(h.emailStep(b, "alice", "alice@example.com"))
	links := page.Find(func(n *html.Node) bool { return plugintest.Attr(n, "href") == "https://help.example/lost" })
	if len(links) != 1 || !strings.Contains(page.Text(), "helpdesk") {
		t.Fatalf("second-factor page without a helpdesk link: %s", page.Text())
	}
}

func TestSwitchingMethodsGrantsNoFreshAttempts(t *testing.T) {
	h, key, spare := mfaHarness(t)
	b := plugintest.NewBrowser(t)
	page := b.Follow(h.emailStep(b, "alice", "alice@example.com"))
	for range 4 {
		page = b.Submit(page, "/recovery/verify", map[string]string{"code": "000000"})
	}
	// Switch to the spare, then back to the key: the key's challenge is
	// reused, so one try is left.
	page = b.Follow(b.Submit(page, "/recovery/verify/method", map[string]string{"flow": "spare"}))
	if !strings.Contains(page.Text(), "Enter your spare code") {
		t.Fatalf("after switching: %s", page.Text())
	}
	page = b.Follow(b.Submit(page, "/recovery/verify/method", map[string]string{"flow": "key"}))
	page = b.Submit(page, "/recovery/verify", map[string]string{"code": "000000"})
	if !strings.Contains(page.Text(), "Too many wrong attempts") {
		t.Fatalf("fifth wrong key code: %s", page.Text())
	}
	if key.begins != 1 || spare.begins != 1 {
		t.Fatalf("begins: key %d spare %d", key.begins, spare.begins)
	}
	// The spare still works.
	page = b.Follow(b.Submit(page, "/recovery/verify/method", map[string]string{"flow": "spare"}))
	if ok := b.Submit(page, "/recovery/verify", map[string]string{"code": "246810"}); ok.Header.Get("Location") != "/recovery/password" {
		t.Fatalf("spare code: %d %s", ok.Status, ok.Text())
	}
}

func TestMethodChoiceIsLimitedToTheUsersMethods(t *testing.T) {
	h, _, spare := mfaHarness(t)
	spare.enrolled = map[string]bool{} // alice has only the key
	b := plugintest.NewBrowser(t)
	page := b.Follow(h.emailStep(b, "alice", "alice@example.com"))
	if strings.Contains(page.Text(), "Test spare") {
		t.Fatalf("offered a method alice does not have: %s", page.Text())
	}
	// Asking for it anyway changes nothing.
	_, v := page.Form("/recovery/verify")
	v.Set("flow", "spare")
	p := b.Follow(b.Post(h.base+"/verify/method", v))
	if !strings.Contains(p.Text(), "Enter your key code") || spare.begins != 0 {
		t.Fatalf("forged method choice: %s", p.Text())
	}
}

func TestAdministratorsNeedTwoMethods(t *testing.T) {
	spare := &fixedFactor{id: "spare", enrolled: map[string]bool{}}
	dir := adminDirectory{directory: newDirectory(), admins: map[string]bool{"u-alice": true}}
	h := newHarness(t, func(c *plugin.Config) {
		c.Directory = dir
		c.HelpURL = "https://help.example/reset"
		mail, _ := email.New(email.Config{})
		c.Flows = []flows.Flow{mail, spare}
	})
	h.dir = dir.directory
	// An administrator with only an email address cannot reset here.
	b := plugintest.NewBrowser(t)
	page := b.Follow(h.emailStep(b, "alice", "alice@example.com"))
	if !strings.Contains(page.Text(), "Contact your helpdesk") {
		t.Fatalf("admin without a second factor: %s", page.Text())
	}
	if len(page.Find(func(n *html.Node) bool { return plugintest.Attr(n, "href") == "https://help.example/reset" })) != 1 {
		t.Fatal("no link to the helpdesk")
	}
	if p := b.Get(h.base + "/password"); p.Header.Get("Location") != "/recovery/verify" {
		t.Fatalf("admin reached the password page: %d", p.Status)
	}
	// With a bound factor the administrator gets through with two methods.
	spare.mu.Lock()
	spare.enrolled["u-alice"] = true
	spare.mu.Unlock()
	b = plugintest.NewBrowser(t)
	page = b.Follow(h.emailStep(b, "alice", "alice@example.com"))
	if ok := b.Submit(page, "/recovery/verify", map[string]string{"code": "246810"}); ok.Header.Get("Location") != "/recovery/password" {
		t.Fatalf("admin with two methods: %d %s", ok.Status, ok.Text())
	}
}

func TestMethodsRequiredTwoWithoutSecondMethod(t *testing.T) {
	h := newHarness(t, func(c *plugin.Config) { c.MethodsRequired = 2 })
	b := plugintest.NewBrowser(t)
	page := b.Follow(h.emailStep(b, "alice", "alice@example.com"))
	if !strings.Contains(page.Text(), "Contact your helpdesk") {
		t.Fatalf("two methods required, one available: %s", page.Text())
	}
}
