package server_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/sspr-go/sspr/examples/provider/server"
	"github.com/sspr-go/sspr/plugin/notify/smtptest"
)

// resetLink finds the link to sspr in a message body.
var resetLink = regexp.MustCompile(`https?://\S+/recovery/link\?token=[A-Za-z0-9_-]+`)

// TestForgotPasswordJourney walks the whole story through the real pages:
// "Forgot password?" on the sign-in page, sspr's email (caught by the dev
// mailbox), a new password, back to the same sign-in, and a login with the
// new password. It also checks that sspr ended the tokens issued before.
func TestForgotPasswordJourney(t *testing.T) {
	f := newFixture(t)
	mb := f.srv.Mailbox()
	_, oldTok := authorize(t, f, server.DemoEmail, server.DemoPassword)

	r := newRP(t, f.issuer)
	c := newBrowser(t, testRedirectURI)
	login := get(t, c, r.authURL())
	loginURL := login.resp.Request.URL.String()

	start := get(t, c, login.link(t, "Forgot password?"))
	if start.resp.StatusCode != http.StatusOK {
		t.Fatalf("start page: status %d:\n%s", start.resp.StatusCode, start.body)
	}
	if got := start.hiddenFields().Get("return_to"); got != loginURL {
		t.Errorf("return_to = %q, want the login page %q", got, loginURL)
	}
	check := submit(t, c, f.issuer, start, url.Values{"identifier": {server.DemoUsername}})
	if check.resp.StatusCode != http.StatusOK {
		t.Fatalf("after identify: status %d:\n%s", check.resp.StatusCode, check.body)
	}

	msg, err := mb.Wait(t.Context(), server.DemoEmail)
	if err != nil {
		t.Fatal(err)
	}
	link := resetLink.FindString(msg.Text)
	if !strings.HasPrefix(link, f.issuer+"/recovery/link?token=") {
		t.Fatalf("no reset link under %s/recovery in:\n%s", f.issuer, msg.Text)
	}
	confirm := get(t, c, link)
	choose := submit(t, c, f.issuer, confirm, nil)
	const newPassword = "a quiet violet harbour at dusk"
	done := submit(t, c, f.issuer, choose, url.Values{"password": {newPassword}, "confirm": {newPassword}})
	if done.resp.StatusCode != http.StatusOK {
		t.Fatalf("after new password: status %d:\n%s", done.resp.StatusCode, done.body)
	}
	if _, err := userinfo(t.Context(), f, oldTok); err == nil {
		t.Error("a token issued before the reset still works")
	}

	// Back to the same sign-in, which now takes the new password only.
	back := get(t, c, done.link(t, "Sign in"))
	if back.resp.Request.URL.String() != loginURL {
		t.Fatalf("done page led to %s, want %s", back.resp.Request.URL, loginURL)
	}
	res := signIn(t, c, f.issuer, back, server.DemoEmail, server.DemoPassword)
	if !strings.Contains(res.body, "Wrong email/username or password.") {
		t.Errorf("the old password still works")
	}
	idt, _ := r.finish(t, c, f.issuer, res, server.DemoEmail, newPassword)
	if idt.Subject != server.DemoUserID {
		t.Errorf("sub = %q, want %q", idt.Subject, server.DemoUserID)
	}
}

// TestResetMailOverSMTP checks the SMTP wiring: with Config.SMTP set there
// is no dev mailbox, and sspr's message reaches the SMTP server.
func TestResetMailOverSMTP(t *testing.T) {
	mail := smtptest.NewServer(t)
	f := newFixture(t, func(c *server.Config) { c.SMTP = mail.URL() })
	if f.srv.Mailbox() != nil {
		t.Error("Mailbox() is not nil with SMTP set")
	}
	c := newBrowser(t, "")
	if res := get(t, c, f.issuer+"/dev/mailbox"); res.resp.StatusCode != http.StatusNotFound {
		t.Errorf("/dev/mailbox with SMTP: status %d, want 404", res.resp.StatusCode)
	}

	start := get(t, c, f.issuer+"/recovery/")
	if start.resp.StatusCode != http.StatusOK {
		t.Fatalf("start page: status %d", start.resp.StatusCode)
	}
	submit(t, c, f.issuer, start, url.Values{"identifier": {server.DemoEmail}})
	msg, err := mail.Wait(t.Context(), server.DemoEmail, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !resetLink.MatchString(msg.Text) {
		t.Errorf("no reset link in:\n%s", msg.Text)
	}
	if want := "no-reply@127.0.0.1"; msg.From != want {
		t.Errorf("envelope sender = %q, want %q", msg.From, want)
	}
}
