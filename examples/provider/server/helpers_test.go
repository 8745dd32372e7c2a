package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	xhtml "golang.org/x/net/html"
	"golang.org/x/net/html/atom"
	"golang.org/x/oauth2"

	"github.com/sspr-go/sspr/examples/provider/server"
	"github.com/sspr-go/sspr/plugin/plugintest"
)

// testRedirectURI is demo-app's redirect URI in these tests; nothing listens
// there, the client stops at the redirect.
const testRedirectURI = "http://localhost:9999/callback"

type fixture struct {
	srv    *server.Server
	ts     *httptest.Server
	issuer string
}

type fixtureOption func(*server.Config)

// newFixture starts the provider on an httptest server whose URL is the
// issuer, and runs its background work until the test ends.
func newFixture(t *testing.T, opts ...fixtureOption) *fixture {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String()
	cfg := server.Config{
		Issuer:       issuer,
		DataDir:      t.TempDir(),
		RedirectURIs: []string{testRedirectURI},
		Logger:       slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := server.New(t.Context(), cfg)
	if err != nil {
		ts.Close()
		t.Fatalf("server.New: %v", err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()

	done := make(chan error, 1)
	go func() { done <- srv.Run(t.Context()) }()
	t.Cleanup(func() {
		// t.Context is cancelled before cleanups run, so Run returns.
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		ts.Close()
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &fixture{srv: srv, ts: ts, issuer: issuer}
}

// newBrowser returns a cookie-keeping client that stops at redirects to
// stopAt (the relying party's callback) instead of following them.
func newBrowser(t *testing.T, stopAt string) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if stopAt != "" && strings.HasPrefix(req.URL.String(), stopAt) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

// rp is what a relying party keeps during one authorization.
type rp struct {
	provider *oidc.Provider
	oauth    oauth2.Config
	state    string
	nonce    string
	verifier string
}

func newRP(t *testing.T, issuer string) *rp {
	t.Helper()
	p, err := oidc.NewProvider(t.Context(), issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return &rp{
		provider: p,
		oauth: oauth2.Config{
			ClientID: server.ClientID, ClientSecret: server.ClientSecret,
			Endpoint: p.Endpoint(), RedirectURL: testRedirectURI,
			Scopes: []string{oidc.ScopeOpenID, "email", "profile"},
		},
		state:    oauth2.GenerateVerifier(),
		nonce:    oauth2.GenerateVerifier(),
		verifier: oauth2.GenerateVerifier(),
	}
}

func (r *rp) authURL() string {
	return r.oauth.AuthCodeURL(r.state, oidc.Nonce(r.nonce), oauth2.S256ChallengeOption(r.verifier))
}

// page is a fetched HTML page.
type page struct {
	resp *http.Response
	body string
}

func get(t *testing.T, c *http.Client, u string) page {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, c, req)
}

func postForm(t *testing.T, c *http.Client, u string, form url.Values, header http.Header) page {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	return do(t, c, req)
}

func do(t *testing.T, c *http.Client, req *http.Request) page {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page{resp: resp, body: string(b)}
}

// doc parses the page's HTML.
func (p page) doc(t *testing.T) *xhtml.Node {
	t.Helper()
	n, err := xhtml.Parse(strings.NewReader(p.body))
	if err != nil {
		t.Fatalf("parse %s: %v", p.resp.Request.URL, err)
	}
	return n
}

// hiddenFields returns the hidden inputs of a page.
func (p page) hiddenFields() url.Values {
	v := url.Values{}
	n, err := xhtml.Parse(strings.NewReader(p.body))
	if err != nil {
		return v
	}
	plugintest.Walk(n, func(n *xhtml.Node) bool {
		// The first of a name wins: the page's main form comes first, and a
		// later form (another method's button) has fields of the same name.
		if name := plugintest.Attr(n, "name"); n.DataAtom == atom.Input && plugintest.Attr(n, "type") == "hidden" && name != "" && !v.Has(name) {
			v.Set(name, plugintest.Attr(n, "value"))
		}
		return true
	})
	return v
}

// signIn submits the sign-in form of a login page and returns the answer.
func signIn(t *testing.T, c *http.Client, issuer string, login page, identifier, password string) page {
	t.Helper()
	form := login.hiddenFields()
	if form.Get("authRequestID") == "" || form.Get("csrf") == "" {
		t.Fatalf("login page has no authRequestID/csrf fields:\n%s", login.body)
	}
	form.Set("identifier", identifier)
	form.Set("password", password)
	return postForm(t, c, issuer+"/login", form, http.Header{"Origin": {issuer}})
}

// authorize runs the whole code flow as demo-app with PKCE and returns the
// verified ID token and the token response.
func authorize(t *testing.T, f *fixture, identifier, password string) (*oidc.IDToken, *oauth2.Token) {
	t.Helper()
	r := newRP(t, f.issuer)
	c := newBrowser(t, testRedirectURI)
	login := get(t, c, r.authURL())
	if login.resp.StatusCode != http.StatusOK || !strings.HasPrefix(login.resp.Request.URL.String(), f.issuer+"/login?authRequestID=") {
		t.Fatalf("authorize: landed on %s (%d), want the login page", login.resp.Request.URL, login.resp.StatusCode)
	}
	return r.finish(t, c, f.issuer, login, identifier, password)
}

// finish signs in on a login page and redeems the code.
func (r *rp) finish(t *testing.T, c *http.Client, issuer string, login page, identifier, password string) (*oidc.IDToken, *oauth2.Token) {
	t.Helper()
	return r.redeem(t, signIn(t, c, issuer, login, identifier, password))
}

// redeem takes the redirect to the client (res, a 302 the browser did not
// follow), checks its state, exchanges its code and verifies the ID token
// and its nonce.
func (r *rp) redeem(t *testing.T, res page) (*oidc.IDToken, *oauth2.Token) {
	t.Helper()
	if res.resp.StatusCode != http.StatusFound {
		t.Fatalf("sign in: status %d, want 302 to the client; body:\n%s", res.resp.StatusCode, res.body)
	}
	loc, err := url.Parse(res.resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Query().Get("state"); got != r.state {
		t.Fatalf("state = %q, want %q", got, r.state)
	}
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in %s", loc)
	}
	tok, err := r.oauth.Exchange(t.Context(), code, oauth2.VerifierOption(r.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := r.provider.Verifier(&oidc.Config{ClientID: server.ClientID}).Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("verify id token: %v", err)
	}
	if idt.Nonce != r.nonce {
		t.Fatalf("nonce = %q, want %q", idt.Nonce, r.nonce)
	}
	return idt, tok
}

// userinfo calls the userinfo endpoint with an access token.
func userinfo(ctx context.Context, f *fixture, tok *oauth2.Token) (*oidc.UserInfo, error) {
	p, err := oidc.NewProvider(ctx, f.issuer)
	if err != nil {
		return nil, err
	}
	return p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
}

// submit posts the first form of p with its hidden fields plus fields.
func submit(t *testing.T, c *http.Client, issuer string, p page, fields url.Values) page {
	t.Helper()
	var raw string
	found := false
	plugintest.Walk(p.doc(t), func(n *xhtml.Node) bool {
		if !found && n.DataAtom == atom.Form && strings.EqualFold(plugintest.Attr(n, "method"), "post") {
			raw, found = plugintest.Attr(n, "action"), true
		}
		return !found
	})
	if !found {
		t.Fatalf("no form on %s:\n%s", p.resp.Request.URL, p.body)
	}
	action, err := p.resp.Request.URL.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	form := p.hiddenFields()
	for k, v := range fields {
		form[k] = v
	}
	return postForm(t, c, action.String(), form, http.Header{"Origin": {issuer}})
}

// link returns the absolute URL of the link with the given text on p.
func (p page) link(t *testing.T, text string) string {
	t.Helper()
	var href string
	plugintest.Walk(p.doc(t), func(n *xhtml.Node) bool {
		if href == "" && n.DataAtom == atom.A && textOf(n) == text {
			href = plugintest.Attr(n, "href")
		}
		return href == ""
	})
	if href != "" {
		u, err := p.resp.Request.URL.Parse(href)
		if err != nil {
			t.Fatal(err)
		}
		return u.String()
	}
	t.Fatalf("no link %q on %s:\n%s", text, p.resp.Request.URL, p.body)
	return ""
}

// textOf returns the text inside n, whitespace collapsed.
func textOf(n *xhtml.Node) string {
	var sb strings.Builder
	plugintest.Walk(n, func(c *xhtml.Node) bool {
		if c.Type == xhtml.TextNode {
			sb.WriteString(c.Data)
		}
		return true
	})
	return strings.Join(strings.Fields(sb.String()), " ")
}
