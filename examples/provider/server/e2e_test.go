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

// These tests are the forgot-password journey as a user and their tools
// meet it: an OIDC authorization by demo-app, "Forgot password?" on the
// provider's login page, an email received by a real SMTP server, a new
// password, and a sign-in whose ID token go-oidc verifies.

var resetCode = regexp.MustCompile(`enter this code there: (\d{8})`)

// mailedCode waits for the n-th message to addr on the SMTP server and
// returns the reset code in it.
func mailedCode(t *testing.T, mail *smtptest.Server, addr string, n int) string {
	t.Helper()
	msg, err := mail.Wait(t.Context(), addr, n)
	if err != nil {
		t.Fatal(err)
	}
	m := resetCode.FindStringSubmatch(msg.Text)
	if m == nil {
		t.Fatalf("no code in:\n%s", msg.Text)
	}
	return m[1]
}

// forgot starts an authorization as demo-app and follows "Forgot
// password?" to sspr, submitting identifier. It returns the relying party,
// the login URL and the page after the identifier.
func forgot(t *testing.T, f *fixture, c *http.Client, identifier string) (*rp, string, page) {
	t.Helper()
	r := newRP(t, f.issuer)
	login := get(t, c, r.authURL())
	loginURL := login.resp.Request.URL.String()
	if !strings.HasPrefix(loginURL, f.issuer+"/login?authRequestID=") {
		t.Fatalf("authorize landed on %s", loginURL)
	}
	start := get(t, c, login.link(t, "Forgot password?"))
	if start.resp.StatusCode != http.StatusOK || !strings.Contains(start.body, "Reset your password") {
		t.Fatalf("start page: %d\n%s", start.resp.StatusCode, start.body)
	}
	check := submit(t, c, f.issuer, start, url.Values{"identifier": {identifier}})
	if check.resp.StatusCode != http.StatusOK || check.resp.Request.URL.Path != "/recovery/verify" {
		t.Fatalf("after identifier: %d at %s", check.resp.StatusCode, check.resp.Request.URL)
	}
	return r, loginURL, check
}

// signInAgain follows the done page's "Sign in" link back to the same
// login, checks that the old password is refused, signs in with the new
// one and verifies the ID token.
func signInAgain(t *testing.T, f *fixture, c *http.Client, r *rp, loginURL string, done page, newPassword string) {
	t.Helper()
	if !strings.Contains(done.body, "Your password was changed") {
		t.Fatalf("done page:\n%s", done.body)
	}
	back := get(t, c, done.link(t, "Sign in"))
	if back.resp.Request.URL.String() != loginURL {
		t.Fatalf("done page led to %s, want %s", back.resp.Request.URL, loginURL)
	}
	refused := signIn(t, c, f.issuer, back, server.DemoEmail, server.DemoPassword)
	if !strings.Contains(refused.body, "Wrong email/username or password.") {
		t.Fatalf("the old password was not refused: %d", refused.resp.StatusCode)
	}
	idt, _ := r.finish(t, c, f.issuer, back, server.DemoEmail, newPassword)
	var claims struct {
		Email string   `json:"email"`
		AMR   []string `json:"amr"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != server.DemoUserID || claims.Email != server.DemoEmail {
		t.Fatalf("ID token sub=%q email=%q", idt.Subject, claims.Email)
	}
}

func TestEndToEndResetByEmailLink(t *testing.T) {
	mail := smtptest.NewServer(t)
	f := newFixture(t, func(c *server.Config) { c.SMTP = mail.URL() })
	c := newBrowser(t, testRedirectURI)
	r, loginURL, _ := forgot(t, f, c, server.DemoEmail)

	msg, err := mail.Wait(t.Context(), server.DemoEmail, 1)
	if err != nil {
		t.Fatal(err)
	}
	link := resetLink.FindString(msg.Text)
	if !strings.HasPrefix(link, f.issuer+"/recovery/link?token=") || !strings.Contains(msg.HTML, "Reset my password") {
		t.Fatalf("reset email:\n%s\n%s", msg.Text, msg.HTML)
	}
	// GET twice, as a mail scanner and then the user would: nothing is used.
	var confirm page
	for range 2 {
		confirm = get(t, c, link)
		if confirm.resp.StatusCode != http.StatusOK || !strings.Contains(confirm.body, "Continue your password reset") {
			t.Fatalf("link page: %d\n%s", confirm.resp.StatusCode, confirm.body)
		}
	}
	choose := submit(t, c, f.issuer, confirm, nil)
	if choose.resp.Request.URL.Path != "/recovery/password" {
		t.Fatalf("after the link: %s\n%s", choose.resp.Request.URL, choose.body)
	}
	const newPassword = "marmalade-rabbit-hole-falling"
	done := submit(t, c, f.issuer, choose, url.Values{"password": {newPassword}, "confirm": {newPassword}})
	signInAgain(t, f, c, r, loginURL, done, newPassword)

	// The used link is refused, in this browser and in any other.
	for _, b := range []*http.Client{c, newBrowser(t, "")} {
		if p := get(t, b, link); !strings.Contains(p.body, "This link was already used") {
			t.Fatalf("used link:\n%s", p.body)
		}
	}
	// And a "password changed" email followed.
	changed, err := mail.Wait(t.Context(), server.DemoEmail, 2)
	if err != nil || !strings.Contains(changed.Subject, "password was changed") {
		t.Fatalf("change notice: %v %q", err, changed.Subject)
	}
}

func TestEndToEndResetByCode(t *testing.T) {
	mail := smtptest.NewServer(t)
	f := newFixture(t, func(c *server.Config) { c.SMTP = mail.URL() })
	c := newBrowser(t, testRedirectURI)
	r, loginURL, check := forgot(t, f, c, server.DemoUsername)

	code := mailedCode(t, mail, server.DemoEmail, 1)
	wrong := "00000000"
	if wrong == code {
		wrong = "11111111"
	}
	// A wrong code is refused and counted.
	for i, left := range []string{"4 tries left", "3 tries left"} {
		p := submit(t, c, f.issuer, check, url.Values{"code": {wrong}})
		if p.resp.StatusCode != http.StatusBadRequest || !strings.Contains(p.body, left) {
			t.Fatalf("wrong code %d: %d\n%s", i, p.resp.StatusCode, p.body)
		}
	}
	choose := submit(t, c, f.issuer, check, url.Values{"code": {code}})
	if choose.resp.Request.URL.Path != "/recovery/password" {
		t.Fatalf("after the code: %s\n%s", choose.resp.Request.URL, choose.body)
	}
	// A weak password is refused with its reason, next to the field.
	weak := submit(t, c, f.issuer, choose, url.Values{"password": {"P@ssw0rd2024!"}, "confirm": {"P@ssw0rd2024!"}})
	if weak.resp.StatusCode != http.StatusBadRequest || !strings.Contains(weak.body, "too common") || !strings.Contains(weak.body, `aria-describedby="password-hint password-error"`) {
		t.Fatalf("weak password: %d\n%s", weak.resp.StatusCode, weak.body)
	}
	const newPassword = "tea-with-the-mad-hatter"
	done := submit(t, c, f.issuer, choose, url.Values{"password": {newPassword}, "confirm": {newPassword}})
	signInAgain(t, f, c, r, loginURL, done, newPassword)
	// The used code is refused: the journey is over.
	if p := submit(t, c, f.issuer, check, url.Values{"code": {code}}); strings.Contains(p.body, "Choose a new password") {
		t.Fatal("the used code led to the password form again")
	}
}

func TestEndToEndUnknownIdentifier(t *testing.T) {
	mail := smtptest.NewServer(t)
	f := newFixture(t, func(c *server.Config) { c.SMTP = mail.URL() })
	csrf := regexp.MustCompile(`name="csrf" value="[^"]*"`)

	// The unknown identifier goes first: the outbox delivers in order, so
	// once alice's email has arrived the decoy has been handled too.
	_, _, unknown := forgot(t, f, newBrowser(t, testRedirectURI), "nobody@example.com")
	_, _, known := forgot(t, f, newBrowser(t, testRedirectURI), server.DemoEmail)
	if unknown.resp.StatusCode != known.resp.StatusCode {
		t.Fatalf("status %d vs %d", unknown.resp.StatusCode, known.resp.StatusCode)
	}
	if a, b := csrf.ReplaceAllString(unknown.body, ""), csrf.ReplaceAllString(known.body, ""); a != b {
		t.Fatalf("pages differ:\n%s\n---\n%s", a, b)
	}
	if _, err := mail.Wait(t.Context(), server.DemoEmail, 1); err != nil {
		t.Fatal(err)
	}
	for _, m := range mail.Messages() {
		if len(m.To) != 1 || m.To[0] != server.DemoEmail {
			t.Fatalf("a message went to %v", m.To)
		}
	}
}
