package plugin_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/email"
	"github.com/sspr-go/sspr/flows/webauthn"
	"github.com/sspr-go/sspr/flows/webauthn/webauthntest"
	"github.com/sspr-go/sspr/plugin"
	"github.com/sspr-go/sspr/plugin/plugintest"
)

// The origin the simulated browser reports; the flow is configured for it.
const passkeyOrigin = "http://localhost:8443"

// passkeyHarness is a harness whose flows are email and passkeys, with a
// host session, and whose alice has enrolled a passkey held by the
// returned software authenticator.
func passkeyHarness(t *testing.T) (*harness, *webauthntest.Authenticator) {
	t.Helper()
	var pk *webauthn.Flow
	gs := hostSession(t)
	h := newHarness(t, func(c *plugin.Config) {
		var err error
		pk, err = webauthn.New(webauthn.Config{Store: c.Store, RPID: "localhost", RPOrigins: []string{passkeyOrigin}, Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		mail, _ := email.New(email.Config{})
		c.Flows = []flows.Flow{mail, pk}
		c.Sessions = gs
	})
	h.mux.HandleFunc("/test-login", func(w http.ResponseWriter, r *http.Request) {
		_ = gs.RaiseSession(w, r, plugin.Session{UserID: r.URL.Query().Get("uid"), AuthTime: h.clock.Now().Add(-time.Hour), AMR: []string{"pwd"}})
	})
	// Enrol alice's passkey (what the security-info page will do).
	a := webauthntest.New(passkeyOrigin)
	opts, sess, err := pk.BeginRegistration(t.Context(), "u-alice", "alice@example.com", "Alice")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.Create(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pk.FinishRegistration(t.Context(), h.store, "u-alice", sess, resp, "Laptop", h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	return h, a
}

// usePasskey answers the passkey page with the authenticator, as the
// page's script does, and returns the answer page.
func usePasskey(t *testing.T, b *plugintest.Browser, page *plugintest.Page, a *webauthntest.Authenticator, opts ...webauthntest.Option) *plugintest.Page {
	t.Helper()
	nodes := page.Find(func(n *html.Node) bool { return plugintest.Attr(n, "id") == "webauthn-options" })
	if len(nodes) != 1 || nodes[0].FirstChild == nil {
		t.Fatalf("no passkey options on the page: %s", page.Text())
	}
	assertion, err := a.Get([]byte(nodes[0].FirstChild.Data), opts...)
	if err != nil {
		t.Fatalf("authenticator: %v", err)
	}
	return b.Submit(page, "/recovery/verify", map[string]string{"assertion": string(assertion)})
}

func TestPasskeyForRecovery(t *testing.T) {
	h, a := passkeyHarness(t)
	b := plugintest.NewBrowser(t)
	page := b.Follow(h.emailStep(b, "alice", "alice@example.com"))
	if !strings.Contains(page.Text(), "Use your passkey") {
		t.Fatalf("passkey page: %s", page.Text())
	}
	scripts := page.Find(func(n *html.Node) bool { return n.Data == "script" && plugintest.Attr(n, "src") != "" })
	if len(scripts) != 1 || b.Get(h.srv.URL+plugintest.Attr(scripts[0], "src")).Status != http.StatusOK {
		t.Fatal("the page's script is not served")
	}
	// Without user verification the passkey is refused, and counted.
	bad := usePasskey(t, b, page, a, webauthntest.WithoutUV())
	if bad.Status != http.StatusBadRequest || !strings.Contains(bad.Text(), "4 tries left") {
		t.Fatalf("passkey without UV: %d %s", bad.Status, bad.Text())
	}
	ok := usePasskey(t, b, bad, a)
	if ok.Header.Get("Location") != "/recovery/password" {
		t.Fatalf("passkey: %d %s", ok.Status, ok.Text())
	}
	pw := b.Follow(ok)
	if p := b.Submit(pw, "/recovery/password", map[string]string{"password": "violet-hour-9", "confirm": "violet-hour-9"}); p.Header.Get("Location") != "/recovery/done" {
		t.Fatalf("set password: %d %s", p.Status, p.Text())
	}
	if h.dir.password("u-alice") != "violet-hour-9" {
		t.Fatal("password not set")
	}
}

func TestPasskeyForStepUp(t *testing.T) {
	h, a := passkeyHarness(t)
	b := plugintest.NewBrowser(t)
	if p := b.Get(h.srv.URL + "/test-login?uid=u-alice"); p.Status != http.StatusOK {
		t.Fatal("test login")
	}
	step := b.Follow(pressStepUp(t, h, b, "/account/password"))
	if !strings.Contains(step.Text(), "Use your passkey") {
		t.Fatalf("step-up page: %s", step.Text())
	}
	back := usePasskey(t, b, step, a)
	if back.Header.Get("Location") != h.base+"/account/password" {
		t.Fatalf("after passkey step-up: %d %q %s", back.Status, back.Header.Get("Location"), back.Text())
	}
	form := b.Follow(back)
	done := b.Submit(form, "/recovery/account/password", map[string]string{"password": "amber-lantern-5", "confirm": "amber-lantern-5"})
	if done.Status != http.StatusOK || h.dir.password("u-alice") != "amber-lantern-5" {
		t.Fatalf("change after passkey step-up: %d %s", done.Status, done.Text())
	}
}

func TestPasskeyCloneRefused(t *testing.T) {
	h, a := passkeyHarness(t)
	b := plugintest.NewBrowser(t)
	page := b.Follow(h.emailStep(b, "alice", "alice@example.com"))
	// The first use records the count; a second journey presenting an
	// older count (a cloned key) is refused.
	ok := usePasskey(t, b, page, a)
	if ok.Header.Get("Location") != "/recovery/password" {
		t.Fatalf("first use: %d %s", ok.Status, ok.Text())
	}
	b2 := plugintest.NewBrowser(t)
	page2 := b2.Follow(h.emailStep(b2, "alice", "alice@example.com"))
	if p := usePasskey(t, b2, page2, a, webauthntest.WithSignCount(1)); p.Status != http.StatusBadRequest || !strings.Contains(p.Text(), "couldn't verify your passkey") {
		t.Fatalf("cloned key: %d %s", p.Status, p.Text())
	}
}
