package plugin_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/sessions"
	"golang.org/x/net/html"

	"github.com/sspr-go/sspr/plugin"
	"github.com/sspr-go/sspr/plugin/plugintest"
)

// hostSession is the host login session of the tests: a gorilla cookie
// store, plus a /test-login endpoint that signs a user in with a given age
// and AMR.
func hostSession(t *testing.T) plugin.GorillaSession {
	t.Helper()
	cs := sessions.NewCookieStore([]byte("host session hash key, 32 bytes!"), []byte("host session block key 32 bytes!"))
	cs.Options = &sessions.Options{Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: 3600}
	return plugin.GorillaSession{Store: cs, Name: "host"}
}

func signInAs(t *testing.T, h *harness, b *plugintest.Browser, uid string, age time.Duration, amr string) {
	t.Helper()
	p := b.Get(h.srv.URL + "/test-login?" + "uid=" + uid + "&age=" + strconv.Itoa(int(age.Seconds())) + "&amr=" + url.QueryEscape(amr))
	if p.Status != http.StatusOK {
		t.Fatalf("test login: %d", p.Status)
	}
}

// stepUpHarness is an MFA harness with a host session and its test login.
func stepUpHarness(t *testing.T) (*harness, plugin.GorillaSession, *fixedFactor) {
	t.Helper()
	gs := hostSession(t)
	h, key, _ := mfaHarness(t, func(c *plugin.Config) {
		c.Sessions = gs
		c.AccountURL = "http://127.0.0.1/account"
	})
	h.mux.HandleFunc("/test-login", func(w http.ResponseWriter, r *http.Request) {
		age, _ := strconv.Atoi(r.URL.Query().Get("age"))
		err := gs.RaiseSession(w, r, plugin.Session{UserID: r.URL.Query().Get("uid"),
			AuthTime: h.clock.Now().Add(-time.Duration(age) * time.Second), AMR: strings.Fields(r.URL.Query().Get("amr"))})
		if err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	return h, gs, key
}

// pressStepUp opens path (under the plugin), checks that it asks to
// confirm it's you, and presses the button: it returns the answer to that
// POST (a redirect into the step-up).
func pressStepUp(t *testing.T, h *harness, b *plugintest.Browser, path string) *plugintest.Page {
	t.Helper()
	p := b.Get(h.base + path)
	if p.Status != http.StatusOK || !strings.Contains(p.Text(), "Confirm it's you") {
		t.Fatalf("%s: no step-up page: %d %s", path, p.Status, p.Text())
	}
	return b.Submit(p, "/recovery"+path, nil)
}

func TestChangePasswordNeedsSignIn(t *testing.T) {
	h, _, _ := stepUpHarness(t)
	p := plugintest.NewBrowser(t).Get(h.base + "/account/password")
	if p.Status != http.StatusUnauthorized || !strings.Contains(p.Text(), "Sign in first") {
		t.Fatalf("anonymous change page: %d %s", p.Status, p.Text())
	}
}

func TestChangePasswordAfterInProcessStepUp(t *testing.T) {
	h, gs, key := stepUpHarness(t)
	b := plugintest.NewBrowser(t)
	// Signed in 10 minutes ago with a password only: a step-up is needed.
	signInAs(t, h, b, "u-alice", 10*time.Minute, "pwd")
	if key.begins != 0 {
		t.Fatal("a GET started a step-up")
	}
	p := pressStepUp(t, h, b, "/account/password")
	if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/recovery/verify" {
		t.Fatalf("stale session: %d %q", p.Status, p.Header.Get("Location"))
	}
	step := b.Follow(p)
	if !strings.Contains(step.Text(), "Enter your key code") || key.begins != 1 {
		t.Fatalf("step-up page: %s", step.Text())
	}
	// The password form can't be posted before the step-up.
	_, v := step.Form("/recovery/verify")
	v.Set("password", "orange-kite-42")
	v.Set("confirm", "orange-kite-42")
	if p := b.Post(h.base+"/account/password", v); p.Status == http.StatusOK || h.dir.password("u-alice") != "" {
		t.Fatalf("change before step-up: %d", p.Status)
	}
	bad := b.Submit(step, "/recovery/verify", map[string]string{"code": "000000"})
	if !strings.Contains(bad.Text(), "4 tries left") {
		t.Fatalf("wrong step-up code: %s", bad.Text())
	}
	back := b.Submit(bad, "/recovery/verify", map[string]string{"code": "246810"})
	if back.Status != http.StatusSeeOther || back.Header.Get("Location") != h.base+"/account/password" {
		t.Fatalf("after step-up: %d %q", back.Status, back.Header.Get("Location"))
	}
	// The host session was raised: fresh, with a second factor.
	req, _ := http.NewRequest(http.MethodGet, h.base+"/", nil)
	for _, c := range back.Header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "host=") {
			req.Header.Add("Cookie", strings.SplitN(c, ";", 2)[0])
		}
	}
	sess, err := gs.Session(req)
	if err != nil || !sess.AuthTime.Equal(h.clock.Now().Truncate(time.Second)) || !strings.Contains(strings.Join(sess.AMR, " "), "mfa") {
		t.Fatalf("raised session: %+v %v", sess, err)
	}
	form := b.Follow(back)
	if !strings.Contains(form.Text(), "Change your password") {
		t.Fatalf("change form: %s", form.Text())
	}
	weak := b.Submit(form, "/recovery/account/password", map[string]string{"password": "password", "confirm": "password"})
	if weak.Status != http.StatusBadRequest || !strings.Contains(weak.Text(), "too common") {
		t.Fatalf("weak password: %d %s", weak.Status, weak.Text())
	}
	done := b.Submit(form, "/recovery/account/password", map[string]string{"password": "orange-kite-42", "confirm": "orange-kite-42"})
	if done.Status != http.StatusOK || !strings.Contains(done.Text(), "Your password was changed") {
		t.Fatalf("change: %d %s", done.Status, done.Text())
	}
	if h.dir.password("u-alice") != "orange-kite-42" || h.dir.revoked["u-alice"] != 1 {
		t.Fatalf("directory: password %q revoked %d", h.dir.password("u-alice"), h.dir.revoked["u-alice"])
	}
	h.deliver()
	if msgs := h.mail.to("alice@example.com"); len(msgs) == 0 || !strings.Contains(msgs[len(msgs)-1].Subject, "was changed") {
		t.Fatalf("no change notice: %+v", msgs)
	}
	if got := h.audit("password.change.signed-in"); len(got) != 1 || got[0].Outcome != "ok" {
		t.Fatalf("audit: %+v", got)
	}
	// Six minutes later the step-up is too old: the page asks again.
	h.clock.Advance(6 * time.Minute)
	if p := pressStepUp(t, h, b, "/account/password"); p.Header.Get("Location") != "/recovery/verify" {
		t.Fatalf("after StepUpMaxAge: %d %q", p.Status, p.Header.Get("Location"))
	}
}

func TestFreshMFASessionNeedsNoStepUp(t *testing.T) {
	h, _, key := stepUpHarness(t)
	b := plugintest.NewBrowser(t)
	signInAs(t, h, b, "u-alice", time.Minute, "pwd otp mfa")
	p := b.Get(h.base + "/account/password")
	if p.Status != http.StatusOK || !strings.Contains(p.Text(), "Change your password") || key.begins != 0 {
		t.Fatalf("fresh MFA session: %d %s", p.Status, p.Text())
	}
	// A fresh session with a password only is not enough for an MFA user.
	b2 := plugintest.NewBrowser(t)
	signInAs(t, h, b2, "u-alice", time.Minute, "pwd")
	if p := b2.Get(h.base + "/account/password"); !strings.Contains(p.Text(), "Confirm it's you") {
		t.Fatalf("fresh password-only session of an MFA user: %d %s", p.Status, p.Text())
	}
}

func TestStepUpOfAnotherUserDoesNotCount(t *testing.T) {
	h, _, _ := stepUpHarness(t)
	b := plugintest.NewBrowser(t)
	signInAs(t, h, b, "u-alice", 10*time.Minute, "pwd")
	step := b.Follow(pressStepUp(t, h, b, "/account/password"))
	back := b.Submit(step, "/recovery/verify", map[string]string{"code": "246810"})
	if back.Status != http.StatusSeeOther {
		t.Fatalf("step-up: %d", back.Status)
	}
	// Another user signs in in the same browser: alice's step-up is not his.
	signInAs(t, h, b, "u-carol", 10*time.Minute, "pwd")
	if p := b.Get(h.base + "/account/password"); strings.Contains(p.Text(), "Change your password") {
		t.Fatalf("carol used alice's step-up: %s", p.Text())
	}
}

// verifyingDirectory also checks current passwords (PasswordVerifier).
type verifyingDirectory struct {
	*directory
	current map[string]string
}

func (d verifyingDirectory) VerifyPassword(_ context.Context, id, pw string) error {
	if cur, ok := d.current[id]; ok && cur == pw {
		return nil
	}
	return fmt.Errorf("test directory: %w", plugin.ErrWrongPassword)
}

// TestChangePasswordAsksForTheCurrentOne (ASVS V6.2.3): with a
// PasswordVerifier, the signed-in change asks for the current password as
// well as the fresh step-up; a wrong one changes nothing, is audited and
// counts against the account's failure limit.
func TestChangePasswordAsksForTheCurrentOne(t *testing.T) {
	gs := hostSession(t)
	base := newDirectory()
	dir := verifyingDirectory{directory: base, current: map[string]string{"u-alice": "old-and-trusted-passphrase"}}
	h, _, _ := mfaHarness(t, func(c *plugin.Config) {
		c.Sessions = gs
		c.Directory = dir
		c.Limits.FailuresPerAccount = plugin.Limit{N: 2, Window: time.Hour}
	})
	h.dir = base
	h.mux.HandleFunc("/test-login", func(w http.ResponseWriter, r *http.Request) {
		_ = gs.RaiseSession(w, r, plugin.Session{UserID: "u-alice", AuthTime: h.clock.Now().Add(-time.Minute), AMR: []string{"pwd", "otp", "mfa"}})
	})
	b := plugintest.NewBrowser(t)
	b.Get(h.srv.URL + "/test-login")
	page := b.Get(h.base + "/account/password")
	current := page.Find(func(n *html.Node) bool { return plugintest.Attr(n, "id") == "current" })
	if len(current) != 1 || plugintest.Attr(current[0], "autocomplete") != "current-password" || !hasAttr(current[0], "autofocus") {
		t.Fatalf("no current-password field with focus: %s", page.Body)
	}
	for i := range 2 {
		bad := b.Submit(page, "/recovery/account/password", map[string]string{"current": "guess", "password": newPassword, "confirm": newPassword})
		if bad.Status != http.StatusBadRequest || !strings.Contains(bad.Text(), "That isn't your current password") || h.dir.password("u-alice") != "" {
			t.Fatalf("wrong current password %d: %d %s", i, bad.Status, bad.Text())
		}
	}
	// Over the account's failure limit even the right one waits.
	if p := b.Submit(page, "/recovery/account/password", map[string]string{"current": "old-and-trusted-passphrase", "password": newPassword, "confirm": newPassword}); p.Status != http.StatusTooManyRequests || h.dir.password("u-alice") != "" {
		t.Fatalf("over the failure limit: %d %s", p.Status, p.Text())
	}
	if evs := h.audit("password.change.signed-in"); len(evs) != 2 || evs[0].Outcome != "failed" {
		t.Fatalf("audit: %+v", evs)
	}
	h.clock.Advance(2 * time.Hour)
	b.Get(h.srv.URL + "/test-login")
	page = b.Get(h.base + "/account/password")
	ok := b.Submit(page, "/recovery/account/password", map[string]string{"current": "old-and-trusted-passphrase", "password": newPassword, "confirm": newPassword})
	if ok.Status != http.StatusOK || h.dir.password("u-alice") != newPassword {
		t.Fatalf("right current password: %d %s", ok.Status, ok.Text())
	}
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}
