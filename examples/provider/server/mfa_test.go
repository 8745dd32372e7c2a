package server_test

import (
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	pqtotp "github.com/pquerna/otp/totp"
	"golang.org/x/oauth2"

	"github.com/sspr-go/sspr/examples/provider/server"
	"github.com/sspr-go/sspr/plugin"
)

// authClaims are the claims that say how the user signed in.
type authClaims struct {
	AuthTime int64    `json:"auth_time"`
	AMR      []string `json:"amr"`
	ACR      string   `json:"acr"`
}

func claimsOf(t *testing.T, idt *oidc.IDToken) authClaims {
	t.Helper()
	var c authClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// bobCode is the code bob's authenticator app shows at now.
func bobCode(t *testing.T, now time.Time) string {
	t.Helper()
	code, err := pqtotp.GenerateCode(server.BobTOTPSecret, now)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// wrongBobCode is a code that is wrong for bob around now, whatever step
// the server is at when it checks.
func wrongBobCode(t *testing.T) string {
	t.Helper()
	now := time.Now()
	right := map[string]bool{}
	for d := -2; d <= 2; d++ {
		right[bobCode(t, now.Add(time.Duration(d)*30*time.Second))] = true
	}
	for i := 0; ; i++ {
		if c := fmt.Sprintf("%06d", i); !right[c] {
			return c
		}
	}
}

// authURLWith is the authorization URL with extra parameters.
func (r *rp) authURLWith(params ...string) string {
	opts := []oauth2.AuthCodeOption{oidc.Nonce(r.nonce), oauth2.S256ChallengeOption(r.verifier)}
	for i := 0; i+1 < len(params); i += 2 {
		opts = append(opts, oauth2.SetAuthURLParam(params[i], params[i+1]))
	}
	return r.oauth.AuthCodeURL(r.state, opts...)
}

// onLoginPage fails unless p is the provider's sign-in page.
func onLoginPage(t *testing.T, f *fixture, p page) {
	t.Helper()
	if p.resp.StatusCode != http.StatusOK || !strings.HasPrefix(p.resp.Request.URL.String(), f.issuer+"/login?authRequestID=") {
		t.Fatalf("landed on %s (%d), want the sign-in page:\n%s", p.resp.Request.URL, p.resp.StatusCode, p.body)
	}
}

// bobToCodePage starts an authorization (with the given extra parameters)
// in c and signs in as bob with his password; it returns the code page.
func bobToCodePage(t *testing.T, f *fixture, c *http.Client, r *rp, params ...string) page {
	t.Helper()
	login := get(t, c, r.authURLWith(params...))
	onLoginPage(t, f, login)
	p := signIn(t, c, f.issuer, login, server.BobEmail, server.BobPassword)
	if p.resp.StatusCode != http.StatusOK || p.resp.Request.URL.Path != "/login/totp" {
		t.Fatalf("after bob's password: %s (%d), want the code page:\n%s", p.resp.Request.URL, p.resp.StatusCode, p.body)
	}
	return p
}

func TestTOTPLogin(t *testing.T) {
	f := newFixture(t)
	r := newRP(t, f.issuer)
	c := newBrowser(t, testRedirectURI)
	before := time.Now().Add(-time.Second).Truncate(time.Second)
	codePage := bobToCodePage(t, f, c, r)

	for _, want := range []string{
		`<label for="code">6-digit code</label>`,
		`autocomplete="one-time-code"`,
		`inputmode="numeric"`,
		`name="csrf"`,
		`action="/login/totp"`,
	} {
		if !strings.Contains(codePage.body, want) {
			t.Errorf("code page lacks %s", want)
		}
	}
	if strings.Contains(codePage.body, "<script") || strings.Contains(codePage.body, "style=") {
		t.Error("code page has inline script or style")
	}
	checkPageHeaders(t, codePage.resp.Header)

	// Wrong and malformed codes are refused; only the wrong ones count.
	wrong := wrongBobCode(t)
	tests := []struct {
		name, code, want string
	}{
		{"wrong", wrong, "That code did not work. Enter the code your authenticator app shows now for Demo Provider. 4 tries left."},
		{"malformed", "12ab56", "Enter the 6-digit code your authenticator app shows."},
		{"empty", "", "Enter the 6-digit code your authenticator app shows."},
		{"wrong again", wrong, "3 tries left."},
	}
	for _, tt := range tests {
		res := submit(t, c, f.issuer, codePage, url.Values{"code": {tt.code}})
		if res.resp.StatusCode != http.StatusOK || !strings.Contains(res.body, tt.want) {
			t.Fatalf("%s code: status %d, want 200 with %q:\n%s", tt.name, res.resp.StatusCode, tt.want, res.body)
		}
		if !strings.Contains(res.body, `aria-invalid="true"`) || !strings.Contains(res.body, `aria-describedby="code-hint code-error"`) {
			t.Errorf("%s code: the field does not point at the error", tt.name)
		}
	}

	// The right code completes the sign-in.
	code := bobCode(t, time.Now())
	idt, _ := r.redeem(t, submit(t, c, f.issuer, codePage, url.Values{"code": {code}}))
	claims := claimsOf(t, idt)
	if idt.Subject != server.BobUserID {
		t.Errorf("sub = %q, want %q", idt.Subject, server.BobUserID)
	}
	if !slices.Equal(claims.AMR, []string{"pwd", "otp", "mfa"}) {
		t.Errorf("amr = %v, want [pwd otp mfa]", claims.AMR)
	}
	if claims.ACR != server.ACRMFA {
		t.Errorf("acr = %q, want %q", claims.ACR, server.ACRMFA)
	}
	if at := time.Unix(claims.AuthTime, 0); at.Before(before) || at.After(time.Now()) {
		t.Errorf("auth_time = %v, want about now", at)
	}

	// The same code is refused on a new sign-in, in a browser without a
	// session.
	c2 := newBrowser(t, testRedirectURI)
	replay := submit(t, c2, f.issuer, bobToCodePage(t, f, c2, newRP(t, f.issuer)), url.Values{"code": {code}})
	if replay.resp.StatusCode != http.StatusOK || !strings.Contains(replay.body, "That code did not work.") {
		t.Fatalf("replayed code: status %d, want the code page with an error:\n%s", replay.resp.StatusCode, replay.body)
	}
}

func TestTOTPLoginLocksAfterFiveWrongCodes(t *testing.T) {
	f := newFixture(t)
	r := newRP(t, f.issuer)
	c := newBrowser(t, testRedirectURI)
	codePage := bobToCodePage(t, f, c, r)
	wrong := wrongBobCode(t)
	for i := range 4 {
		res := submit(t, c, f.issuer, codePage, url.Values{"code": {wrong}})
		if want := fmt.Sprintf("%d tr", 4-i); res.resp.StatusCode != http.StatusOK || !strings.Contains(res.body, want) {
			t.Fatalf("wrong code %d: status %d, want %q:\n%s", i+1, res.resp.StatusCode, want, res.body)
		}
	}
	locked := submit(t, c, f.issuer, codePage, url.Values{"code": {wrong}})
	if locked.resp.StatusCode != http.StatusForbidden || !strings.Contains(locked.body, "Too many wrong codes") {
		t.Fatalf("5th wrong code: status %d:\n%s", locked.resp.StatusCode, locked.body)
	}

	// Nothing brings this sign-in back: not the right code, not the
	// sign-in page, not the password again.
	loginURL := f.issuer + "/login?authRequestID=" + url.QueryEscape(codePage.hiddenFields().Get("authRequestID"))
	for name, res := range map[string]page{
		"right code": submit(t, c, f.issuer, codePage, url.Values{"code": {bobCode(t, time.Now())}}),
		"login page": get(t, c, loginURL),
		"code page":  get(t, c, codePage.resp.Request.URL.String()),
		"password": postForm(t, c, f.issuer+"/login", url.Values{
			"authRequestID": {codePage.hiddenFields().Get("authRequestID")}, "csrf": {codePage.hiddenFields().Get("csrf")},
			"identifier": {server.BobEmail}, "password": {server.BobPassword},
		}, http.Header{"Origin": {f.issuer}}),
	} {
		if res.resp.StatusCode != http.StatusForbidden || !strings.Contains(res.body, "Too many wrong codes") {
			t.Errorf("%s after the lock: status %d:\n%s", name, res.resp.StatusCode, res.body)
		}
	}

	// A new sign-in starts afresh.
	fresh := bobToCodePage(t, f, c, newRP(t, f.issuer))
	res := submit(t, c, f.issuer, fresh, url.Values{"code": {wrong}})
	if !strings.Contains(res.body, "4 tries left.") {
		t.Errorf("new sign-in after a lock:\n%s", res.body)
	}
}

func TestTOTPLimitPerAccount(t *testing.T) {
	f := newFixture(t)
	c := newBrowser(t, testRedirectURI)
	wrong := wrongBobCode(t)
	// 4 sign-ins of 5 wrong codes each use up the account's 20 an hour.
	for range 4 {
		codePage := bobToCodePage(t, f, c, newRP(t, f.issuer))
		for range 5 {
			submit(t, c, f.issuer, codePage, url.Values{"code": {wrong}})
		}
	}
	codePage := bobToCodePage(t, f, c, newRP(t, f.issuer))
	res := submit(t, c, f.issuer, codePage, url.Values{"code": {bobCode(t, time.Now())}})
	if res.resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(res.body, "Too many wrong codes were entered for this account") {
		t.Fatalf("right code over the account limit: status %d:\n%s", res.resp.StatusCode, res.body)
	}
}

func TestPasswordOnlyClaims(t *testing.T) {
	f := newFixture(t)
	idt, _ := authorize(t, f, server.DemoEmail, server.DemoPassword)
	claims := claimsOf(t, idt)
	if !slices.Equal(claims.AMR, []string{"pwd"}) {
		t.Errorf("amr = %v, want [pwd]", claims.AMR)
	}
	if claims.ACR != server.ACRPassword {
		t.Errorf("acr = %q, want %q", claims.ACR, server.ACRPassword)
	}
}

func TestACRValuesMFA(t *testing.T) {
	f := newFixture(t)

	// alice has no authenticator app: she cannot satisfy the request.
	c := newBrowser(t, testRedirectURI)
	login := get(t, c, newRP(t, f.issuer).authURLWith("acr_values", server.ACRMFA))
	onLoginPage(t, f, login)
	res := signIn(t, c, f.issuer, login, server.DemoEmail, server.DemoPassword)
	if res.resp.StatusCode != http.StatusForbidden || !strings.Contains(res.body, "Two-step verification required") {
		t.Fatalf("alice with acr_values mfa: status %d:\n%s", res.resp.StatusCode, res.body)
	}

	// Her password-only session does not satisfy it either.
	r0 := newRP(t, f.issuer)
	r0.finish(t, c, f.issuer, get(t, c, r0.authURL()), server.DemoEmail, server.DemoPassword)
	onLoginPage(t, f, get(t, c, newRP(t, f.issuer).authURLWith("acr_values", server.ACRMFA)))

	// bob gives his code and gets the mfa acr.
	r := newRP(t, f.issuer)
	cb := newBrowser(t, testRedirectURI)
	codePage := bobToCodePage(t, f, cb, r, "acr_values", server.ACRMFA+" "+server.ACRPassword)
	idt, _ := r.redeem(t, submit(t, cb, f.issuer, codePage, url.Values{"code": {bobCode(t, time.Now())}}))
	if got := claimsOf(t, idt).ACR; got != server.ACRMFA {
		t.Errorf("acr = %q, want %q", got, server.ACRMFA)
	}
}

// TestSingleSignOn signs bob in once, then checks which authorizations
// the browser's session completes without the sign-in page.
func TestSingleSignOn(t *testing.T) {
	f := newFixture(t)
	c := newBrowser(t, testRedirectURI)
	r := newRP(t, f.issuer)
	first, _ := r.redeem(t, submit(t, c, f.issuer, bobToCodePage(t, f, c, r), url.Values{"code": {bobCode(t, time.Now())}}))
	want := claimsOf(t, first)

	tests := []struct {
		name   string
		params []string
		sso    bool
	}{
		{"plain", nil, true},
		{"max_age long enough", []string{"max_age", "3600"}, true},
		{"acr_values mfa", []string{"acr_values", server.ACRMFA}, true},
		{"login_hint of the user", []string{"login_hint", server.BobUsername}, true},
		{"prompt=none", []string{"prompt", "none"}, true},
		{"prompt=login", []string{"prompt", "login"}, false},
		{"prompt=select_account", []string{"prompt", "select_account"}, false},
		{"max_age=0", []string{"max_age", "0"}, false},
		{"login_hint of someone else", []string{"login_hint", server.DemoEmail}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRP(t, f.issuer)
			p := get(t, c, r.authURLWith(tt.params...))
			if !tt.sso {
				onLoginPage(t, f, p)
				return
			}
			idt, _ := r.redeem(t, p)
			if got := claimsOf(t, idt); idt.Subject != server.BobUserID || !slices.Equal(got.AMR, want.AMR) ||
				got.AuthTime != want.AuthTime || got.ACR != server.ACRMFA {
				t.Errorf("sub %q, claims %+v; want bob and the first sign-in's %+v", idt.Subject, got, want)
			}
		})
	}

	// Another browser has no session: prompt=none answers login_required.
	r2 := newRP(t, f.issuer)
	none := get(t, newBrowser(t, testRedirectURI), r2.authURLWith("prompt", "none"))
	loginRequired(t, none, r2.state)

	// Ending bob's sessions ends this browser's session too.
	var revoker plugin.SessionRevoker = f.srv.Directory()
	if err := revoker.RevokeSessions(t.Context(), server.BobUserID); err != nil {
		t.Fatal(err)
	}
	onLoginPage(t, f, get(t, c, newRP(t, f.issuer).authURL()))
	r3 := newRP(t, f.issuer)
	loginRequired(t, get(t, c, r3.authURLWith("prompt", "none")), r3.state)
	if p := get(t, c, f.issuer+"/account"); !strings.HasPrefix(p.resp.Request.URL.String(), f.issuer+"/login?") {
		t.Errorf("/account after RevokeSessions led to %s", p.resp.Request.URL)
	}
}

// loginRequired checks that p is the redirect to the client with the
// error login_required.
func loginRequired(t *testing.T, p page, state string) {
	t.Helper()
	loc, err := url.Parse(p.resp.Header.Get("Location"))
	if err != nil || p.resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), testRedirectURI) {
		t.Fatalf("prompt=none without session: status %d, Location %q", p.resp.StatusCode, p.resp.Header.Get("Location"))
	}
	if q := loc.Query(); q.Get("error") != "login_required" || q.Get("state") != state || q.Has("code") {
		t.Errorf("prompt=none without session: redirect %s, want error=login_required and the state", loc)
	}
}

func TestSessionCookie(t *testing.T) {
	f := newFixture(t)
	c := newBrowser(t, testRedirectURI)
	login := get(t, c, newRP(t, f.issuer).authURL())
	noFollow := &http.Client{Jar: c.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res := signIn(t, noFollow, f.issuer, login, server.DemoEmail, server.DemoPassword)
	if res.resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: status %d", res.resp.StatusCode)
	}
	var session *http.Cookie
	for _, ck := range res.resp.Cookies() {
		if ck.Name == "provider_session" {
			session = ck
		}
	}
	if session == nil {
		t.Fatalf("no provider_session cookie in %v", res.resp.Header["Set-Cookie"])
	}
	if !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Path != "/" || session.MaxAge != 8*60*60 || session.Secure {
		t.Errorf("session cookie %s: want HttpOnly, SameSite=Lax, Path=/, Max-Age=28800 and no Secure on http", session)
	}
	if strings.Contains(session.Value, server.DemoUserID) {
		t.Error("the session cookie shows the user ID in clear")
	}
}

func TestAccountPage(t *testing.T) {
	f := newFixture(t)
	c := newBrowser(t, testRedirectURI)

	// Without a session, /account asks to sign in and comes back.
	login := get(t, c, f.issuer+"/account")
	onLoginPage(t, f, login)
	acct := signIn(t, c, f.issuer, login, server.DemoUsername, server.DemoPassword)
	if acct.resp.StatusCode != http.StatusOK || acct.resp.Request.URL.String() != f.issuer+"/account" {
		t.Fatalf("after sign-in: %s (%d):\n%s", acct.resp.Request.URL, acct.resp.StatusCode, acct.body)
	}
	for _, want := range []string{server.DemoDisplayName, server.DemoEmail, `href="/recovery/account/password"`, `action="/account/signout"`, "with your password"} {
		if !strings.Contains(acct.body, want) {
			t.Errorf("account page lacks %s:\n%s", want, acct.body)
		}
	}
	checkPageHeaders(t, acct.resp.Header)

	// That sign-in was the provider's own: op's callback does not know it.
	id := login.hiddenFields().Get("authRequestID")
	if p := get(t, newBrowser(t, testRedirectURI), f.issuer+"/authorize/callback?id="+url.QueryEscape(id)); p.resp.StatusCode == http.StatusFound {
		t.Errorf("op's callback answered a local sign-in with a redirect to %s", p.resp.Header.Get("Location"))
	}

	// Sign out needs the page's CSRF token.
	forged := postForm(t, c, f.issuer+"/account/signout", url.Values{"csrf": {"AAAA"}}, http.Header{"Origin": {f.issuer}})
	if forged.resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-out with a wrong token: status %d, want 403", forged.resp.StatusCode)
	}
	if p := get(t, c, f.issuer+"/account"); p.resp.Request.URL.Path != "/account" {
		t.Fatalf("the forged sign-out ended the session")
	}
	out := submit(t, c, f.issuer, acct, nil)
	if out.resp.StatusCode != http.StatusOK || !strings.Contains(out.body, "You are signed out") {
		t.Fatalf("sign out: status %d:\n%s", out.resp.StatusCode, out.body)
	}
	onLoginPage(t, f, get(t, c, f.issuer+"/account"))
	onLoginPage(t, f, get(t, c, newRP(t, f.issuer).authURL()))
}

func TestAccountPageWithTOTP(t *testing.T) {
	f := newFixture(t)
	c := newBrowser(t, testRedirectURI)
	login := get(t, c, f.issuer+"/account")
	onLoginPage(t, f, login)
	codePage := signIn(t, c, f.issuer, login, server.BobEmail, server.BobPassword)
	if codePage.resp.Request.URL.Path != "/login/totp" {
		t.Fatalf("after bob's password: %s", codePage.resp.Request.URL)
	}
	acct := submit(t, c, f.issuer, codePage, url.Values{"code": {bobCode(t, time.Now())}})
	if acct.resp.Request.URL.Path != "/account" || !strings.Contains(acct.body, server.BobDisplayName) ||
		!strings.Contains(acct.body, "a code from your authenticator app") {
		t.Fatalf("account page after bob's code: %s:\n%s", acct.resp.Request.URL, acct.body)
	}
	// The session serves apps too, with the second factor.
	r := newRP(t, f.issuer)
	idt, _ := r.redeem(t, get(t, c, r.authURL()))
	if got := claimsOf(t, idt); got.ACR != server.ACRMFA {
		t.Errorf("acr = %q, want %q", got.ACR, server.ACRMFA)
	}
}

// TestOldUsersTableIsUpgraded starts the provider on a provider.db made
// before sign-in sessions existed (no session_epoch column).
func TestOldUsersTableIsUpgraded(t *testing.T) {
	dir := t.TempDir()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "provider.db"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.ExecContext(t.Context(), `CREATE TABLE users (
		id TEXT PRIMARY KEY, username TEXT NOT NULL, username_key TEXT NOT NULL UNIQUE,
		email TEXT NOT NULL, email_key TEXT NOT NULL UNIQUE, display_name TEXT NOT NULL,
		password_hash TEXT NOT NULL, password_changed_at INTEGER NOT NULL, created_at INTEGER NOT NULL) STRICT`)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second start finds the column
		f := newFixture(t, func(c *server.Config) { c.DataDir = dir })
		if err := f.srv.Directory().RevokeSessions(t.Context(), server.BobUserID); err != nil {
			t.Fatalf("RevokeSessions: %v", err)
		}
		if _, err := f.srv.Directory().FindUser(t.Context(), server.BobEmail); err != nil {
			t.Fatalf("bob was not seeded: %v", err)
		}
	}
}
