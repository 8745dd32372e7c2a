package server_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	xhtml "golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/sspr-go/sspr/examples/provider/server"
	"github.com/sspr-go/sspr/flows/webauthn/webauthntest"
	"github.com/sspr-go/sspr/plugin/plugintest"
)

// newPasskeyFixture starts the provider with its issuer on the host name
// localhost instead of 127.0.0.1, so that passkeys are on (relying-party
// ID "localhost", a secure context over plain http).
func newPasskeyFixture(t *testing.T, opts ...fixtureOption) *fixture {
	t.Helper()
	onLocalhost := func(c *server.Config) {
		u, err := url.Parse(c.Issuer)
		if err != nil {
			t.Fatal(err)
		}
		u.Host = "localhost:" + u.Port()
		c.Issuer = u.String()
	}
	f := newFixture(t, append([]fixtureOption{onLocalhost}, opts...)...)
	f.issuer = f.srv.Issuer()
	if f.srv.Passkeys() == nil {
		t.Fatalf("passkeys are off for the issuer %s", f.issuer)
	}
	return f
}

// enrolPasskey registers a passkey of a new software authenticator for
// userID, as sspr's security-info page does, and returns the
// authenticator.
func enrolPasskey(t *testing.T, f *fixture, userID string) *webauthntest.Authenticator {
	t.Helper()
	pk := f.srv.Passkeys()
	a := webauthntest.New(f.issuer)
	opts, session, err := pk.BeginRegistration(t.Context(), userID, userID, "")
	if err != nil {
		t.Fatalf("begin registration: %v", err)
	}
	resp, err := a.Create(opts)
	if err != nil {
		t.Fatalf("authenticator: %v", err)
	}
	if _, err := pk.FinishRegistration(t.Context(), f.srv.SSPRStore(), userID, session, resp, "Test passkey", time.Now()); err != nil {
		t.Fatalf("finish registration: %v", err)
	}
	return a
}

// toPasskeyPage starts an authorization (with extra parameters) in c and
// gives the password; it returns the passkey page that follows.
func toPasskeyPage(t *testing.T, f *fixture, c *http.Client, r *rp, identifier, password string, params ...string) page {
	t.Helper()
	login := get(t, c, r.authURLWith(params...))
	onLoginPage(t, f, login)
	p := signIn(t, c, f.issuer, login, identifier, password)
	onPasskeyPage(t, p)
	return p
}

// onPasskeyPage fails unless p is the passkey page.
func onPasskeyPage(t *testing.T, p page) {
	t.Helper()
	if p.resp.StatusCode != http.StatusOK || p.resp.Request.URL.Path != "/login/passkey" {
		t.Fatalf("landed on %s (%d), want the passkey page:\n%s", p.resp.Request.URL, p.resp.StatusCode, p.body)
	}
}

// passkeyAnswer answers the options of passkey page p with a, as sspr's
// page script does with the browser's passkey.
func passkeyAnswer(t *testing.T, p page, a *webauthntest.Authenticator, opts ...webauthntest.Option) string {
	t.Helper()
	var options string
	found := 0
	plugintest.Walk(p.doc(t), func(n *xhtml.Node) bool {
		if n.DataAtom == atom.Script && plugintest.Attr(n, "id") == "webauthn-options" {
			found++
			if n.FirstChild != nil {
				options = n.FirstChild.Data
			}
		}
		return true
	})
	if found != 1 || options == "" {
		t.Fatalf("no passkey options on %s:\n%s", p.resp.Request.URL, p.body)
	}
	answer, err := a.Get([]byte(options), opts...)
	if err != nil {
		t.Fatalf("authenticator: %v", err)
	}
	return string(answer)
}

// usePasskey posts the answer of a to passkey page p.
func usePasskey(t *testing.T, f *fixture, c *http.Client, p page, a *webauthntest.Authenticator, opts ...webauthntest.Option) page {
	t.Helper()
	return submit(t, c, f.issuer, p, url.Values{"assertion": {passkeyAnswer(t, p, a, opts...)}})
}

// wantPasskeyError fails unless p is the passkey page showing want.
func wantPasskeyError(t *testing.T, what string, p page, want string) {
	t.Helper()
	if p.resp.StatusCode != http.StatusOK || p.resp.Request.URL.Path != "/login/passkey" || !strings.Contains(p.body, want) {
		t.Fatalf("%s: %s (%d), want the passkey page with %q:\n%s", what, p.resp.Request.URL, p.resp.StatusCode, want, p.body)
	}
}

func TestPasskeyLogin(t *testing.T) {
	f := newPasskeyFixture(t)
	a := enrolPasskey(t, f, server.DemoUserID)
	r := newRP(t, f.issuer)
	c := newBrowser(t, testRedirectURI)
	before := time.Now().Add(-time.Second).Truncate(time.Second)
	p1 := toPasskeyPage(t, f, c, r, server.DemoEmail, server.DemoPassword)

	// The page: the options, sspr's script, a form that posts the answer,
	// no inline script, and no authenticator app to offer alice.
	for _, want := range []string{
		`<script type="application/json" id="webauthn-options">{`,
		`<form method="post" action="/login/passkey" id="webauthn-form" data-ceremony="get">`,
		`<input type="hidden" name="assertion" value="">`,
		`name="csrf"`,
		`<script src="/recovery/static/webauthn.js" defer></script>`,
		`id="webauthn-unsupported"`,
		"<noscript>",
	} {
		if !strings.Contains(p1.body, want) {
			t.Errorf("passkey page lacks %s", want)
		}
	}
	plugintest.Walk(p1.doc(t), func(n *xhtml.Node) bool {
		if n.DataAtom == atom.Script && plugintest.Attr(n, "src") == "" && plugintest.Attr(n, "type") != "application/json" {
			t.Errorf("passkey page has an inline script: %s", textOf(n))
		}
		return true
	})
	if strings.Contains(p1.body, "style=") || strings.Contains(p1.body, "authenticator app") {
		t.Error("passkey page has inline style or offers alice an authenticator app")
	}
	checkPageHeaders(t, p1.resp.Header)
	if js := get(t, c, f.issuer+"/recovery/static/webauthn.js"); js.resp.StatusCode != http.StatusOK ||
		!strings.Contains(js.resp.Header.Get("Content-Type"), "javascript") {
		t.Fatalf("webauthn.js: status %d, type %q", js.resp.StatusCode, js.resp.Header.Get("Content-Type"))
	}

	// An answer to p1's ceremony, kept for later.
	stale := passkeyAnswer(t, p1, a)

	// Without user verification the passkey is refused, and counted.
	p2 := usePasskey(t, f, c, p1, a, webauthntest.WithoutUV())
	wantPasskeyError(t, "answer without UV", p2, "That passkey did not work. Use a passkey you added to your Demo Provider account. 4 tries left.")
	if !strings.Contains(p2.body, `role="alert"`) {
		t.Error("the error is not announced")
	}

	// p1's ceremony is gone with that answer: its right answer is refused
	// now (p2 began a new one).
	p3 := submit(t, c, f.issuer, p2, url.Values{"assertion": {stale}})
	wantPasskeyError(t, "answer to a used ceremony", p3, "3 tries left.")

	// A browser without passkeys (or JavaScript) sends nothing: the page
	// says what is needed, and nothing is counted.
	p4 := submit(t, c, f.issuer, p3, url.Values{"assertion": {""}})
	wantPasskeyError(t, "no answer", p4, "needs a browser that supports passkeys")

	// The right answer completes the sign-in with the passkey.
	answer := passkeyAnswer(t, p4, a)
	done := submit(t, c, f.issuer, p4, url.Values{"assertion": {answer}})
	idt, _ := r.redeem(t, done)
	claims := claimsOf(t, idt)
	if idt.Subject != server.DemoUserID {
		t.Errorf("sub = %q, want %q", idt.Subject, server.DemoUserID)
	}
	if !slices.Equal(claims.AMR, []string{"pwd", "hwk", "mfa"}) {
		t.Errorf("amr = %v, want [pwd hwk mfa]", claims.AMR)
	}
	if claims.ACR != server.ACRMFA {
		t.Errorf("acr = %q, want %q", claims.ACR, server.ACRMFA)
	}
	if at := time.Unix(claims.AuthTime, 0); at.Before(before) || at.After(time.Now()) {
		t.Errorf("auth_time = %v, want about now", at)
	}

	// The same answer again: refused on the same sign-in, which is over,
	// and on a new one in another browser.
	if again := submit(t, c, f.issuer, p4, url.Values{"assertion": {answer}}); again.resp.StatusCode == http.StatusFound {
		t.Fatalf("replayed answer on the finished sign-in: redirect to %s", again.resp.Header.Get("Location"))
	}
	c2 := newBrowser(t, testRedirectURI)
	other := toPasskeyPage(t, f, c2, newRP(t, f.issuer), server.DemoUsername, server.DemoPassword)
	replay := submit(t, c2, f.issuer, other, url.Values{"assertion": {answer}})
	wantPasskeyError(t, "replayed answer on a new sign-in", replay, "That passkey did not work.")

	// Single sign-on: the session has the passkey, for apps and for
	// acr_values asking for a second factor.
	for _, params := range [][]string{nil, {"acr_values", server.ACRMFA}} {
		r := newRP(t, f.issuer)
		idt, _ := r.redeem(t, get(t, c, r.authURLWith(params...)))
		if got := claimsOf(t, idt); idt.Subject != server.DemoUserID || !slices.Equal(got.AMR, claims.AMR) ||
			got.AuthTime != claims.AuthTime || got.ACR != server.ACRMFA {
			t.Errorf("SSO %v: sub %q, claims %+v; want alice and the sign-in's %+v", params, idt.Subject, got, claims)
		}
	}
	if acct := get(t, c, f.issuer+"/account"); acct.resp.Request.URL.Path != "/account" || !strings.Contains(acct.body, "with your password and a passkey") {
		t.Errorf("account page: %s:\n%s", acct.resp.Request.URL, acct.body)
	}
}

// TestPasskeyAnswerIsSingleUse posts one right answer twice at once:
// only one completes the sign-in.
func TestPasskeyAnswerIsSingleUse(t *testing.T) {
	f := newPasskeyFixture(t)
	a := enrolPasskey(t, f, server.DemoUserID)
	c := newBrowser(t, testRedirectURI)
	p := toPasskeyPage(t, f, c, newRP(t, f.issuer), server.DemoEmail, server.DemoPassword)
	form := p.hiddenFields()
	form.Set("assertion", passkeyAnswer(t, p, a))

	const n = 2
	var wg sync.WaitGroup
	statuses := make([]int, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, f.issuer+"/login/passkey", strings.NewReader(form.Encode()))
			if err != nil {
				errs[i] = err
				return
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", f.issuer)
			resp, err := c.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if found := slices.Index(statuses, http.StatusFound); found < 0 || slices.Index(statuses[found+1:], http.StatusFound) >= 0 {
		t.Fatalf("statuses %v, want exactly one redirect to the client", statuses)
	}
}

func TestPasskeyLoginLocksAfterFiveRefusals(t *testing.T) {
	f := newPasskeyFixture(t)
	a := enrolPasskey(t, f, server.DemoUserID)
	c := newBrowser(t, testRedirectURI)
	p := toPasskeyPage(t, f, c, newRP(t, f.issuer), server.DemoEmail, server.DemoPassword)
	for i := range 4 {
		p = usePasskey(t, f, c, p, a, webauthntest.WithoutUV())
		wantPasskeyError(t, "refused answer", p, []string{"4 tries", "3 tries", "2 tries", "1 try"}[i])
	}
	locked := usePasskey(t, f, c, p, a, webauthntest.WithoutUV())
	if locked.resp.StatusCode != http.StatusForbidden || !strings.Contains(locked.body, "Too many failed attempts") {
		t.Fatalf("5th refused answer: status %d:\n%s", locked.resp.StatusCode, locked.body)
	}
	// Neither the right answer nor the page brings this sign-in back.
	for name, res := range map[string]page{
		"right answer": submit(t, c, f.issuer, p, url.Values{"assertion": {passkeyAnswer(t, p, a)}}),
		"passkey page": get(t, c, f.issuer+"/login/passkey?authRequestID="+url.QueryEscape(p.hiddenFields().Get("authRequestID"))),
	} {
		if res.resp.StatusCode != http.StatusForbidden || !strings.Contains(res.body, "Too many failed attempts") {
			t.Errorf("%s after the lock: status %d:\n%s", name, res.resp.StatusCode, res.body)
		}
	}
}

// TestPasskeyIsASecondFactor checks that a user whose only second factor
// is a passkey needs it wherever a second factor is required.
func TestPasskeyIsASecondFactor(t *testing.T) {
	f := newPasskeyFixture(t)

	// Before the passkey, alice's password-only session serves apps, but
	// not acr_values asking for a second factor, which she cannot give.
	c := newBrowser(t, testRedirectURI)
	authorizeIn := func(c *http.Client) {
		r := newRP(t, f.issuer)
		r.finish(t, c, f.issuer, get(t, c, r.authURL()), server.DemoEmail, server.DemoPassword)
	}
	authorizeIn(c)
	r0 := newRP(t, f.issuer)
	r0.redeem(t, get(t, c, r0.authURL()))
	c0 := newBrowser(t, testRedirectURI)
	login := get(t, c0, newRP(t, f.issuer).authURLWith("acr_values", server.ACRMFA))
	if res := signIn(t, c0, f.issuer, login, server.DemoEmail, server.DemoPassword); res.resp.StatusCode != http.StatusForbidden ||
		!strings.Contains(res.body, "a code from an authenticator app or a passkey") {
		t.Fatalf("acr_values mfa without a second factor: status %d:\n%s", res.resp.StatusCode, res.body)
	}

	a := enrolPasskey(t, f, server.DemoUserID)

	// Now that session no longer serves her, nor does it open /account.
	onLoginPage(t, f, get(t, c, newRP(t, f.issuer).authURL()))
	onLoginPage(t, f, get(t, c, f.issuer+"/account"))
	r1 := newRP(t, f.issuer)
	loginRequired(t, get(t, c, r1.authURLWith("prompt", "none")), r1.state)

	// acr_values asking for a second factor get the passkey.
	r := newRP(t, f.issuer)
	c2 := newBrowser(t, testRedirectURI)
	p := toPasskeyPage(t, f, c2, r, server.DemoEmail, server.DemoPassword, "acr_values", server.ACRMFA)
	idt, _ := r.redeem(t, usePasskey(t, f, c2, p, a))
	if got := claimsOf(t, idt); got.ACR != server.ACRMFA || !slices.Contains(got.AMR, "hwk") {
		t.Errorf("claims %+v, want acr %q and amr with hwk", got, server.ACRMFA)
	}

	// The code page is no way around the passkey for a user without an
	// authenticator app.
	c3 := newBrowser(t, testRedirectURI)
	p3 := toPasskeyPage(t, f, c3, newRP(t, f.issuer), server.DemoEmail, server.DemoPassword)
	id := p3.hiddenFields().Get("authRequestID")
	onPasskeyPage(t, get(t, c3, f.issuer+"/login/totp?authRequestID="+url.QueryEscape(id)))
}

// TestPasskeyAndTOTP gives bob a passkey next to his authenticator app:
// he gets the passkey page and may switch to the code page and back.
func TestPasskeyAndTOTP(t *testing.T) {
	f := newPasskeyFixture(t)
	a := enrolPasskey(t, f, server.BobUserID)

	c := newBrowser(t, testRedirectURI)
	r := newRP(t, f.issuer)
	pk := toPasskeyPage(t, f, c, r, server.BobEmail, server.BobPassword)
	if !strings.Contains(pk.body, "You can use your authenticator app instead.") {
		t.Error("the passkey page does not tell bob without JavaScript about his authenticator app")
	}
	code := get(t, c, pk.link(t, "Use your authenticator app instead"))
	if code.resp.StatusCode != http.StatusOK || code.resp.Request.URL.Path != "/login/totp" {
		t.Fatalf("authenticator app link: %s (%d)", code.resp.Request.URL, code.resp.StatusCode)
	}
	back := get(t, c, code.link(t, "Use your passkey instead"))
	onPasskeyPage(t, back)
	idt, _ := r.redeem(t, submit(t, c, f.issuer, code, url.Values{"code": {bobCode(t, time.Now())}}))
	if got := claimsOf(t, idt).AMR; !slices.Equal(got, []string{"pwd", "otp", "mfa"}) {
		t.Errorf("amr with the code = %v, want [pwd otp mfa]", got)
	}

	c2 := newBrowser(t, testRedirectURI)
	r2 := newRP(t, f.issuer)
	idt, _ = r2.redeem(t, usePasskey(t, f, c2, toPasskeyPage(t, f, c2, r2, server.BobEmail, server.BobPassword), a))
	if got := claimsOf(t, idt).AMR; !slices.Equal(got, []string{"pwd", "hwk", "mfa"}) {
		t.Errorf("amr with the passkey = %v, want [pwd hwk mfa]", got)
	}
}

// TestPasskeyFailuresShareTheLimits checks that refused passkey answers
// and wrong codes count against the same limits: per sign-in and per
// account.
func TestPasskeyFailuresShareTheLimits(t *testing.T) {
	f := newPasskeyFixture(t)
	a := enrolPasskey(t, f, server.BobUserID)
	c := newBrowser(t, testRedirectURI)
	wrong := wrongBobCode(t)

	// One sign-in: 3 refused passkeys leave 2 codes.
	p := toPasskeyPage(t, f, c, newRP(t, f.issuer), server.BobEmail, server.BobPassword)
	for range 3 {
		p = usePasskey(t, f, c, p, a, webauthntest.WithoutUV())
	}
	codePage := get(t, c, p.link(t, "Use your authenticator app instead"))
	if res := submit(t, c, f.issuer, codePage, url.Values{"code": {wrong}}); !strings.Contains(res.body, "1 try left.") {
		t.Fatalf("wrong code after 3 refused passkeys:\n%s", res.body)
	}
	submit(t, c, f.issuer, codePage, url.Values{"code": {wrong}})

	// The account: 15 more wrong codes in 3 sign-ins make 20.
	for range 3 {
		p := toPasskeyPage(t, f, c, newRP(t, f.issuer), server.BobEmail, server.BobPassword)
		codePage := get(t, c, p.link(t, "Use your authenticator app instead"))
		for range 5 {
			submit(t, c, f.issuer, codePage, url.Values{"code": {wrong}})
		}
	}
	p = toPasskeyPage(t, f, c, newRP(t, f.issuer), server.BobEmail, server.BobPassword)
	res := usePasskey(t, f, c, p, a)
	if res.resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(res.body, "Too many failed attempts") {
		t.Fatalf("right passkey over the account limit: status %d:\n%s", res.resp.StatusCode, res.body)
	}
}

// TestPasskeyCeremonyExpires answers a passkey page after the ceremony's
// 5 minutes: the answer is refused without being counted.
func TestPasskeyCeremonyExpires(t *testing.T) {
	var mu sync.Mutex
	var offset time.Duration
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return time.Now().Add(offset)
	}
	f := newPasskeyFixture(t, func(c *server.Config) { c.Now = now })
	a := enrolPasskey(t, f, server.DemoUserID)
	c := newBrowser(t, testRedirectURI)
	p := toPasskeyPage(t, f, c, newRP(t, f.issuer), server.DemoEmail, server.DemoPassword)

	mu.Lock()
	offset += 5*time.Minute + time.Second
	mu.Unlock()
	late := usePasskey(t, f, c, p, a)
	wantPasskeyError(t, "late answer", late, "That passkey request expired or was already used. Try again.")
	if strings.Contains(late.body, "tries left") || strings.Contains(late.body, "try left") {
		t.Errorf("the late answer was counted:\n%s", late.body)
	}
	// The page shown with the error began a new ceremony.
	if next := usePasskey(t, f, c, late, a, webauthntest.WithoutUV()); !strings.Contains(next.body, "4 tries left.") {
		t.Errorf("refused answer after a late one:\n%s", next.body)
	}
}
