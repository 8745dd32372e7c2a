package server_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sspr-go/sspr/examples/provider/server"
	"github.com/sspr-go/sspr/flows/flowtest"
	"github.com/sspr-go/sspr/flows/recoverycodes"
	"github.com/sspr-go/sspr/plugin/notify/smtptest"
	"github.com/sspr-go/sspr/plugin/store"
)

// These tests are issue 3's journeys against the example provider: a
// reset that never bypasses MFA, and a signed-in password change after a
// step-up through the provider (OIDC) or on sspr's own pages.

// testClock is the provider's and sspr's clock: real time plus an offset
// the test moves forward (ID tokens are signed with real time, so offsets
// stay small).
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

func TestEndToEndBobResetNeedsTOTP(t *testing.T) {
	mail := smtptest.NewServer(t)
	clk := &testClock{}
	f := newFixture(t, func(c *server.Config) { c.SMTP = mail.URL(); c.Now = clk.Now })
	c := newBrowser(t, testRedirectURI)
	r, loginURL, check := forgot(t, f, c, server.BobEmail)

	second := submit(t, c, f.issuer, check, url.Values{"code": {mailedCode(t, mail, server.BobEmail, 1)}})
	if second.resp.Request.URL.Path != "/recovery/verify" || !strings.Contains(second.body, "Enter a code from your authenticator app") {
		t.Fatalf("after the email code: %s\n%s", second.resp.Request.URL, second.body)
	}
	// Email alone cannot set bob's password, not even by a direct POST.
	form := second.hiddenFields()
	form.Set("password", "stolen-inbox-password")
	form.Set("confirm", "stolen-inbox-password")
	direct := postForm(t, newBrowserSharing(t, c), f.issuer+"/recovery/password", form, http.Header{"Origin": {f.issuer}})
	if strings.Contains(direct.body, "Your password was changed") {
		t.Fatal("a direct POST set the password after the email step alone")
	}
	// A wrong TOTP code is refused and counted.
	wrong := submit(t, c, f.issuer, second, url.Values{"code": {wrongBobCode(t)}})
	if wrong.resp.StatusCode != http.StatusBadRequest || !strings.Contains(wrong.body, "4 tries left") {
		t.Fatalf("wrong TOTP code: %d\n%s", wrong.resp.StatusCode, wrong.body)
	}
	// The right code, from the documented secret, leads to the new password.
	choose := submit(t, c, f.issuer, second, url.Values{"code": {bobCode(t, clk.Now())}})
	if choose.resp.Request.URL.Path != "/recovery/password" || !strings.Contains(choose.body, "at least 8 characters") {
		t.Fatalf("after TOTP: %s\n%s", choose.resp.Request.URL, choose.body)
	}
	const newPassword = "bricks-and-mortar-77"
	done := submit(t, c, f.issuer, choose, url.Values{"password": {newPassword}, "confirm": {newPassword}})
	if !strings.Contains(done.body, "Your password was changed") {
		t.Fatalf("done page:\n%s", done.body)
	}
	// Signing in afterwards needs the new password and TOTP (a later step:
	// the one used in the reset is spent).
	clk.Advance(time.Minute)
	back := get(t, c, done.link(t, "Sign in"))
	if back.resp.Request.URL.String() != loginURL {
		t.Fatalf("done page led to %s", back.resp.Request.URL)
	}
	codePage := signIn(t, c, f.issuer, back, server.BobEmail, newPassword)
	if codePage.resp.Request.URL.Path != "/login/totp" {
		t.Fatalf("after the new password: %s\n%s", codePage.resp.Request.URL, codePage.body)
	}
	idt, _ := r.redeem(t, submit(t, c, f.issuer, codePage, url.Values{"code": {bobCode(t, clk.Now())}}))
	if cl := claimsOf(t, idt); idt.Subject != server.BobUserID || !slices.Contains(cl.AMR, "otp") || !slices.Contains(cl.AMR, "mfa") {
		t.Fatalf("ID token after the reset: sub %q amr %v", idt.Subject, cl.AMR)
	}
}

// newBrowserSharing returns a client with c's cookies that follows no
// redirects.
func newBrowserSharing(t *testing.T, c *http.Client) *http.Client {
	t.Helper()
	return &http.Client{Jar: c.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// signedInAs signs c in at the provider (demo-app authorization) and
// returns the relying party of that sign-in.
func signedInAs(t *testing.T, f *fixture, c *http.Client, identifier, password string, code func() string) {
	t.Helper()
	r := newRP(t, f.issuer)
	login := get(t, c, r.authURL())
	res := signIn(t, c, f.issuer, login, identifier, password)
	if code != nil {
		res = submit(t, c, f.issuer, res, url.Values{"code": {code()}})
	}
	r.redeem(t, res)
}

// changeViaProvider opens sspr's change-password page, follows the
// step-up to the provider's sign-in page and signs in there as who.
func changeViaProvider(t *testing.T, f *fixture, c *http.Client, identifier, password string, code func() string) page {
	t.Helper()
	login := confirmItsYou(t, f, c)
	if !strings.HasPrefix(login.resp.Request.URL.String(), f.issuer+"/login?authRequestID=") {
		t.Fatalf("step-up did not lead to the provider's sign-in: %s\n%s", login.resp.Request.URL, login.body)
	}
	res := signIn(t, c, f.issuer, login, identifier, password)
	if code != nil && res.resp.Request.URL.Path == "/login/totp" {
		res = submit(t, c, f.issuer, res, url.Values{"code": {code()}})
	}
	return res
}

func TestEndToEndOIDCStepUp(t *testing.T) {
	mail := smtptest.NewServer(t)
	clk := &testClock{}
	f := newFixture(t, func(c *server.Config) { c.SMTP = mail.URL(); c.Now = clk.Now; c.StepUp = "oidc" })
	bobNow := func() string { return bobCode(t, clk.Now()) }

	t.Run("fresh otp is allowed and the change goes through", func(t *testing.T) {
		c := newBrowser(t, testRedirectURI)
		signedInAs(t, f, c, server.BobEmail, server.BobPassword, bobNow)
		clk.Advance(6 * time.Minute) // the sign-in is now older than StepUpMaxAge
		res := changeViaProvider(t, f, c, server.BobEmail, server.BobPassword, bobNow)
		if res.resp.Request.URL.Path != "/recovery/account/password" || !strings.Contains(res.body, "Change your password") {
			t.Fatalf("after the step-up: %s (%d)\n%s", res.resp.Request.URL, res.resp.StatusCode, res.body)
		}
		const newPassword = "scaffold-and-crane-12"
		// The current password is asked for too (the directory verifies it).
		if wrong := submit(t, c, f.issuer, res, url.Values{"current": {"not-my-password"}, "password": {newPassword}, "confirm": {newPassword}}); !strings.Contains(wrong.body, "That isn&#39;t your current password") {
			t.Fatalf("wrong current password:\n%s", wrong.body)
		}
		done := submit(t, c, f.issuer, res, url.Values{"current": {server.BobPassword}, "password": {newPassword}, "confirm": {newPassword}})
		if !strings.Contains(done.body, "Your password was changed") {
			t.Fatalf("change:\n%s", done.body)
		}
		// The browser stays signed in; the old password no longer works.
		if acct := get(t, c, f.issuer+"/account"); !strings.Contains(acct.body, server.BobEmail) {
			t.Fatalf("account page after the change:\n%s", acct.body)
		}
		if _, err := f.srv.Directory().FindUser(t.Context(), server.BobEmail); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
		c2 := newBrowser(t, testRedirectURI)
		r2 := newRP(t, f.issuer)
		login := get(t, c2, r2.authURL())
		if res := signIn(t, c2, f.issuer, login, server.BobEmail, server.BobPassword); !strings.Contains(res.body, "Wrong email/username or password.") {
			t.Fatal("the old password still works")
		}
		if _, err := mail.Wait(t.Context(), server.BobEmail, 1); err != nil {
			t.Fatalf("no change notice: %v", err)
		}
	})

	t.Run("another user's sub is refused", func(t *testing.T) {
		clk.Advance(time.Minute)
		c := newBrowser(t, testRedirectURI)
		signedInAs(t, f, c, server.DemoEmail, server.DemoPassword, nil)
		clk.Advance(6 * time.Minute)
		// At the provider, someone signs in as bob instead of alice.
		res := changeViaProvider(t, f, c, server.BobEmail, "scaffold-and-crane-12", bobNow)
		if res.resp.StatusCode != http.StatusForbidden || !strings.Contains(res.body, "We couldn&#39;t confirm it&#39;s you") {
			t.Fatalf("step-up as another user: %d\n%s", res.resp.StatusCode, res.body)
		}
	})

	t.Run("stale auth_time is refused", func(t *testing.T) {
		// A provider (or a proxy) that drops prompt=login and max_age
		// answers from bob's old session: its auth_time is older than the
		// step-up.
		clk.Advance(time.Minute)
		c := newBrowser(t, testRedirectURI)
		signedInAs(t, f, c, server.BobEmail, "scaffold-and-crane-12", bobNow)
		clk.Advance(6 * time.Minute)
		page := get(t, c, f.issuer+"/recovery/account/password")
		form := page.hiddenFields()
		first := postForm(t, newBrowserSharing(t, c), f.issuer+"/recovery/account/password", form, http.Header{"Origin": {f.issuer}})
		authz, err := url.Parse(first.resp.Header.Get("Location"))
		if err != nil || authz.Query().Get("prompt") != "login" || authz.Query().Get("max_age") != "0" {
			t.Fatalf("step-up authorize URL: %v %q", err, first.resp.Header.Get("Location"))
		}
		q := authz.Query()
		q.Del("prompt")
		q.Del("max_age")
		authz.RawQuery = q.Encode()
		res := get(t, c, authz.String())
		if res.resp.StatusCode != http.StatusForbidden || !strings.Contains(res.body, "We couldn&#39;t confirm it&#39;s you") {
			t.Fatalf("stale step-up: %d at %s\n%s", res.resp.StatusCode, res.resp.Request.URL, res.body)
		}
		if a := auditOf(t, f.srv.SSPRStore(), "stepup.verify"); len(a) == 0 || a[0].Detail != "authentication not fresh" {
			t.Fatalf("audit: %+v", a)
		}
	})

	t.Run("pwd only is refused for a user with MFA", func(t *testing.T) {
		// alice gets recovery codes in sspr: she now has MFA, but the
		// provider's sign-in asks her for a password only.
		st := f.srv.SSPRStore()
		rc, err := recoverycodes.New(recoverycodes.Config{Store: st})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rc.Generate(t.Context(), st, flowtest.NewEnv(clk.Now()), server.DemoUserID); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
		c := newBrowser(t, testRedirectURI)
		signedInAs(t, f, c, server.DemoEmail, server.DemoPassword, nil)
		res := changeViaProvider(t, f, c, server.DemoEmail, server.DemoPassword, nil)
		if res.resp.StatusCode != http.StatusForbidden {
			t.Fatalf("password-only step-up of an MFA user: %d\n%s", res.resp.StatusCode, res.body)
		}
		audit := auditOf(t, st, "stepup.verify")
		if len(audit) == 0 || audit[0].Outcome != "failed" || audit[0].Detail != "no second factor" {
			t.Fatalf("audit: %+v", audit)
		}
	})
}

// auditOf lists audit events of one kind, newest first.
func auditOf(t *testing.T, st store.Store, event string) []store.AuditEvent {
	t.Helper()
	evs, err := st.Audit(context.Background(), store.AuditFilter{Event: event})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestEndToEndInProcessStepUp(t *testing.T) {
	mail := smtptest.NewServer(t)
	clk := &testClock{}
	f := newFixture(t, func(c *server.Config) { c.SMTP = mail.URL(); c.Now = clk.Now })
	c := newBrowser(t, testRedirectURI)
	signedInAs(t, f, c, server.BobEmail, server.BobPassword, func() string { return bobCode(t, clk.Now()) })
	clk.Advance(6 * time.Minute)

	// sspr asks for bob's TOTP on its own page...
	step := confirmItsYou(t, f, c)
	if step.resp.Request.URL.Path != "/recovery/verify" || !strings.Contains(step.body, "Enter a code from your authenticator app") {
		t.Fatalf("step-up page: %s\n%s", step.resp.Request.URL, step.body)
	}
	clk.Advance(time.Minute) // a new TOTP step: the sign-in's code is spent
	form := submit(t, c, f.issuer, step, url.Values{"code": {bobCode(t, clk.Now())}})
	if form.resp.Request.URL.Path != "/recovery/account/password" || !strings.Contains(form.body, "Change your password") {
		t.Fatalf("after the step-up: %s\n%s", form.resp.Request.URL, form.body)
	}
	// ...and raises the provider's session: a new authorization that asks
	// for a second factor within a minute completes without a sign-in page.
	r := newRP(t, f.issuer)
	idt, _ := r.redeem(t, get(t, c, r.authURLWith("max_age", "60")))
	cl := claimsOf(t, idt)
	if d := clk.Now().Sub(time.Unix(cl.AuthTime, 0)); !slices.Contains(cl.AMR, "otp") || d < 0 || d > 5*time.Second {
		t.Fatalf("ID token from the raised session: amr %v auth_time %v (now %v)", cl.AMR, time.Unix(cl.AuthTime, 0), clk.Now())
	}
	const newPassword = "spirit-level-and-plumb"
	done := submit(t, c, f.issuer, form, url.Values{"current": {server.BobPassword}, "password": {newPassword}, "confirm": {newPassword}})
	if !strings.Contains(done.body, "Your password was changed") {
		t.Fatalf("change:\n%s", done.body)
	}
}

// confirmItsYou opens sspr's change-password page, which asks to confirm
// it's you, and presses its button; it returns where that leads.
func confirmItsYou(t *testing.T, f *fixture, c *http.Client) page {
	t.Helper()
	p := get(t, c, f.issuer+"/recovery/account/password")
	if !strings.Contains(p.body, "Confirm it&#39;s you") {
		t.Fatalf("no step-up page:\n%s", p.body)
	}
	return submit(t, c, f.issuer, p, nil)
}
