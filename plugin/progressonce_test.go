package plugin_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sspr-go/sspr/plugin/plugintest"
)

// userCallCount returns how many times the directory's User was called.
func (d *directory) userCallCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.userCalls
}

// userCallsOf runs do and returns its page and how many directory User
// calls it caused. Each read of the journey's progress (the policy's
// standing of the user: User, contacts, every flow's options) makes one.
func userCallsOf(h *harness, do func() *plugintest.Page) (*plugintest.Page, int) {
	before := h.dir.userCallCount()
	p := do()
	return p, h.dir.userCallCount() - before
}

// wrongCode returns an 8-digit code that is not code.
func wrongCode(code string) string {
	if code == "12345678" {
		return "87654321"
	}
	return "12345678"
}

// TestProgressReadOncePerRequest checks that a request reads the user's
// standing once, where it used to read it two or three times: the verify
// POST (the progress before and after the proof), a refused resend, and
// the signed-in pages (the account's progress and that of its step-up
// journey).
func TestProgressReadOncePerRequest(t *testing.T) {
	t.Run("verify POST, wrong email code", func(t *testing.T) {
		h := newHarness(t)
		b := plugintest.NewBrowser(t)
		check := b.Follow(h.start(b, "alice"))
		h.deliver()
		_, code := h.resetMail("alice@example.com")
		p, n := userCallsOf(h, func() *plugintest.Page {
			return b.Submit(check, "/recovery/verify", map[string]string{"code": wrongCode(code)})
		})
		if p.Status != http.StatusBadRequest || !strings.Contains(p.Text(), "tries left") {
			t.Fatalf("wrong code: %d %s", p.Status, p.Text())
		}
		if n != 1 {
			t.Errorf("directory User calls: %d, want 1", n)
		}
	})

	t.Run("verify POST, right email code, then the bound factor", func(t *testing.T) {
		h, key, _ := mfaHarness(t)
		b := plugintest.NewBrowser(t)
		check := b.Follow(h.start(b, "alice"))
		h.deliver()
		_, code := h.resetMail("alice@example.com")
		p, n := userCallsOf(h, func() *plugintest.Page {
			return b.Submit(check, "/recovery/verify", map[string]string{"code": code})
		})
		if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/recovery/verify" || key.begins != 1 {
			t.Fatalf("right email code: %d %q, key begun %d times", p.Status, p.Header.Get("Location"), key.begins)
		}
		if n != 1 {
			t.Errorf("directory User calls (right email code): %d, want 1", n)
		}
		step := b.Follow(p)
		p, n = userCallsOf(h, func() *plugintest.Page {
			return b.Submit(step, "/recovery/verify", map[string]string{"code": "000000"})
		})
		if p.Status != http.StatusBadRequest || !strings.Contains(p.Text(), "Test spare") {
			t.Fatalf("wrong key code: %d %s", p.Status, p.Text())
		}
		if n != 1 {
			t.Errorf("directory User calls (wrong key code): %d, want 1", n)
		}
		p, n = userCallsOf(h, func() *plugintest.Page {
			return b.Submit(p, "/recovery/verify", map[string]string{"code": "246810"})
		})
		if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/recovery/password" {
			t.Fatalf("right key code: %d %q", p.Status, p.Header.Get("Location"))
		}
		if n != 1 {
			t.Errorf("directory User calls (right key code): %d, want 1", n)
		}
	})

	t.Run("refused resend of an exhausted code", func(t *testing.T) {
		h := newHarness(t)
		b := plugintest.NewBrowser(t)
		page := b.Follow(h.start(b, "alice"))
		h.deliver()
		_, code := h.resetMail("alice@example.com")
		for range 5 {
			page = b.Submit(page, "/recovery/verify", map[string]string{"code": wrongCode(code)})
		}
		p, n := userCallsOf(h, func() *plugintest.Page {
			return b.Submit(page, "/recovery/verify/resend", nil)
		})
		if p.Status != http.StatusTooManyRequests {
			t.Fatalf("resend of an exhausted code: %d %s", p.Status, p.Text())
		}
		if n != 1 {
			t.Errorf("directory User calls: %d, want 1", n)
		}
	})

	t.Run("in-process step-up: start and verify", func(t *testing.T) {
		h, _, key := stepUpHarness(t)
		b := plugintest.NewBrowser(t)
		signInAs(t, h, b, "u-alice", 10*time.Minute, "pwd")
		ask := b.Get(h.base + "/account/password")
		p, n := userCallsOf(h, func() *plugintest.Page {
			return b.Submit(ask, "/recovery/account/password", nil)
		})
		if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/recovery/verify" || key.begins != 1 {
			t.Fatalf("step-up start: %d %q, key begun %d times", p.Status, p.Header.Get("Location"), key.begins)
		}
		if n != 1 {
			t.Errorf("directory User calls (step-up start): %d, want 1", n)
		}
		step := b.Follow(p)
		p, n = userCallsOf(h, func() *plugintest.Page {
			return b.Submit(step, "/recovery/verify", map[string]string{"code": "000000"})
		})
		if p.Status != http.StatusBadRequest {
			t.Fatalf("wrong step-up code: %d %s", p.Status, p.Text())
		}
		if n != 1 {
			t.Errorf("directory User calls (wrong step-up code): %d, want 1", n)
		}
		p, n = userCallsOf(h, func() *plugintest.Page {
			return b.Submit(p, "/recovery/verify", map[string]string{"code": "246810"})
		})
		if p.Status != http.StatusSeeOther || p.Header.Get("Location") != h.base+"/account/password" {
			t.Fatalf("right step-up code: %d %q", p.Status, p.Header.Get("Location"))
		}
		if n != 1 {
			t.Errorf("directory User calls (right step-up code): %d, want 1", n)
		}
	})

	t.Run("signed-in page after an OIDC step-up", func(t *testing.T) {
		// The provider's step-up does not raise the host session: the page
		// is fresh by the step-up journey, whose progress is derived from
		// the account's.
		e := newOIDCEnv(t)
		b := e.browser(t)
		res := b.Get(e.authorize(t, b).String())
		if res.Status != http.StatusSeeOther {
			t.Fatalf("callback: %d %s", res.Status, res.Text())
		}
		p, n := userCallsOf(e.h, func() *plugintest.Page { return b.Follow(res) })
		if p.Status != http.StatusOK || !strings.Contains(p.Text(), "Change your password") {
			t.Fatalf("after the step-up: %d %s", p.Status, p.Text())
		}
		if n != 1 {
			t.Errorf("directory User calls: %d, want 1", n)
		}
	})
}
