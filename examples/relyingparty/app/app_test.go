package app_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	xhtml "golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/sspr-go/sspr/examples/provider/server"
	"github.com/sspr-go/sspr/examples/relyingparty/app"
	"github.com/sspr-go/sspr/plugin/plugintest"
)

type env struct {
	issuer, appURL string
}

// start runs the provider and the app on two httptest servers.
func start(t *testing.T) env {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	provTS := httptest.NewUnstartedServer(nil)
	appTS := httptest.NewUnstartedServer(nil)
	e := env{issuer: "http://" + provTS.Listener.Addr().String(), appURL: "http://" + appTS.Listener.Addr().String()}

	srv, err := server.New(t.Context(), server.Config{
		Issuer: e.issuer, DataDir: t.TempDir(), RedirectURIs: []string{e.appURL + "/callback"}, Logger: logger,
	})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	a, err := app.New(t.Context(), app.Config{
		URL: e.appURL, Issuer: e.issuer, ClientID: server.ClientID, ClientSecret: server.ClientSecret, Logger: logger,
	})
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	provTS.Config.Handler = srv.Handler()
	appTS.Config.Handler = a.Handler()
	provTS.Start()
	appTS.Start()
	t.Cleanup(func() {
		appTS.Close()
		provTS.Close()
		srv.Close()
	})
	return e
}

func newBrowser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

func do(t *testing.T, c *http.Client, method, u string, form url.Values, header http.Header) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(t.Context(), method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// hiddenFields returns the hidden inputs of an HTML page.
func hiddenFields(t *testing.T, body string) url.Values {
	t.Helper()
	doc, err := xhtml.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	v := url.Values{}
	plugintest.Walk(doc, func(n *xhtml.Node) bool {
		if n.DataAtom == atom.Input && plugintest.Attr(n, "type") == "hidden" {
			v.Set(plugintest.Attr(n, "name"), plugintest.Attr(n, "value"))
		}
		return true
	})
	return v
}

func TestSignInShowsClaims(t *testing.T) {
	e := start(t)
	c := newBrowser(t)

	resp, body := do(t, c, http.MethodGet, e.appURL+"/", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `action="/signin"`) {
		t.Fatalf("home: status %d, body:\n%s", resp.StatusCode, body)
	}

	// Sign in: the app redirects to the provider, which shows its login page.
	resp, body = do(t, c, http.MethodGet, e.appURL+"/signin", nil, nil)
	if !strings.HasPrefix(resp.Request.URL.String(), e.issuer+"/login?") {
		t.Fatalf("sign in landed on %s, want the provider's login page", resp.Request.URL)
	}
	form := hiddenFields(t, body)
	form.Set("identifier", server.DemoUsername)
	form.Set("password", server.DemoPassword)

	// Log in: provider → /authorize/callback → the app's /callback.
	resp, body = do(t, c, http.MethodPost, e.issuer+"/login", form, http.Header{"Origin": {e.issuer}})
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/callback" {
		t.Fatalf("after login: %d at %s, body:\n%s", resp.StatusCode, resp.Request.URL, body)
	}
	for _, want := range []string{server.DemoEmail, "<code>" + server.DemoUserID + "</code>", server.DemoDisplayName, "<code>pwd</code>", "<dt>auth_time</dt><dd><time"} {
		if !strings.Contains(body, want) {
			t.Errorf("claims page lacks %q:\n%s", want, body)
		}
	}

	// The sign-in cookie was single use: replaying the callback fails.
	resp, _ = do(t, c, http.MethodGet, resp.Request.URL.String(), nil, nil)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("replayed callback: status %d, want 400", resp.StatusCode)
	}
}

func TestCallbackRefusesForeignState(t *testing.T) {
	e := start(t)
	c := newBrowser(t)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, _ := do(t, c, http.MethodGet, e.appURL+"/signin", nil, nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("signin: status %d, want 302", resp.StatusCode)
	}
	resp, body := do(t, c, http.MethodGet, e.appURL+"/callback?code=x&state=forged", nil, nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Sign-in expired") {
		t.Errorf("forged state: status %d, body:\n%s", resp.StatusCode, body)
	}
}

func TestStartsBeforeProvider(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	issuer := down.URL
	down.Close() // nothing listens there any more

	a, err := app.New(t.Context(), app.Config{
		URL: "http://localhost:9999", Issuer: issuer, ClientID: "demo-app", ClientSecret: "demo-secret",
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("New must not contact the provider: %v", err)
	}
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/signin", nil))
	if rec.Code != http.StatusBadGateway || !strings.Contains(rec.Body.String(), "The provider is not reachable") {
		t.Errorf("status %d, body:\n%s", rec.Code, rec.Body.String())
	}
}
