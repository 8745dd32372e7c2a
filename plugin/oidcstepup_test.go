package plugin_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	opstorage "github.com/zitadel/oidc/v3/example/server/storage"

	"github.com/sspr-go/sspr/plugin"
	"github.com/sspr-go/sspr/plugin/plugintest"
)

// The OIDC step-up against zitadel's own example provider (a provider
// sspr's code never saw): its users sign in with a password only (amr
// ["pwd"]), which is enough for users without MFA when auth_time is fresh.
// The example provider of this repository covers the MFA cases.

// oidcHarness runs zitadel's example OP and a plugin whose step-up goes
// through it; the host session says user id1 signed in an hour ago.
func oidcHarness(t *testing.T) (*harness, *httptest.Server) {
	t.Helper()
	op := httptest.NewUnstartedServer(nil)
	issuer := "http://" + op.Listener.Addr().String()
	gs := hostSession(t)
	var base string
	h := newHarness(t, func(c *plugin.Config) {
		base = c.BaseURL
		c.Sessions = gs
		c.StepUp = &plugin.OIDCStepUp{Issuer: issuer, ClientID: "sspr-test", ClientSecret: "sspr-test-secret"}
	})
	opstorage.RegisterClients(opstorage.WebClient("sspr-test", "sspr-test-secret", base+"/stepup/callback"))
	st := opstorage.NewStorage(opstorage.NewUserStore(issuer))
	op.Config.Handler = exampleop.SetupServer(issuer, st, slog.New(slog.NewTextHandler(io.Discard, nil)), false)
	op.Start()
	t.Cleanup(op.Close)
	for _, id := range []string{"id1", "id2"} {
		h.dir.users[id] = &dirUser{User: plugin.User{ID: id, Username: "test-" + id, Email: id + "@example.com"}}
	}
	h.mux.HandleFunc("/test-login", func(w http.ResponseWriter, r *http.Request) {
		_ = gs.RaiseSession(w, r, plugin.Session{UserID: r.URL.Query().Get("uid"), AuthTime: h.clock.Now().Add(-time.Hour), AMR: []string{"pwd"}})
	})
	return h, op
}

// stepUpAt opens the change-password page signed in as uid, signs in at the
// provider as who, and returns the page sspr answers with.
func stepUpAt(t *testing.T, h *harness, op *httptest.Server, uid, who string) *plugintest.Page {
	t.Helper()
	b := plugintest.NewBrowser(t)
	b.Get(h.srv.URL + "/test-login?uid=" + uid)
	p := pressStepUp(t, h, b, "/account/password")
	loc := p.Header.Get("Location")
	for _, want := range []string{"prompt=login", "max_age=0", "nonce=", "code_challenge=", "code_challenge_method=S256", "state=", "login_hint=test-" + uid} {
		if !strings.Contains(loc, want) {
			t.Fatalf("authorize URL %q lacks %s", loc, want)
		}
	}
	login := b.Follow(p) // the provider's login page
	res := b.Follow(b.Submit(login, "/login/username", map[string]string{"username": who, "password": "verysecure"}))
	return res
}

func TestOIDCStepUpChecks(t *testing.T) {
	h, op := oidcHarness(t)
	host := strings.TrimPrefix(op.URL, "http://")
	host = host[:strings.IndexByte(host, ':')]

	t.Run("fresh sign-in of the same user", func(t *testing.T) {
		h.clock.Set(time.Now())
		res := stepUpAt(t, h, op, "id1", "test-user@"+host)
		if res.Status != http.StatusOK || !strings.Contains(res.Text(), "Change your password") {
			t.Fatalf("fresh step-up: %d %s", res.Status, res.Text())
		}
	})
	t.Run("another user's sub", func(t *testing.T) {
		h.clock.Set(time.Now())
		res := stepUpAt(t, h, op, "id1", "test-user2")
		if res.Status != http.StatusForbidden || strings.Contains(res.Text(), "Change your password") {
			t.Fatalf("step-up as id2 for id1: %d %s", res.Status, res.Text())
		}
	})
	t.Run("stale auth_time", func(t *testing.T) {
		// sspr's clock runs 3 minutes ahead: the provider's auth_time is
		// older than the step-up's start minus the 1-minute skew.
		h.clock.Set(time.Now().Add(3 * time.Minute))
		res := stepUpAt(t, h, op, "id1", "test-user@"+host)
		if res.Status != http.StatusForbidden {
			t.Fatalf("stale step-up: %d %s", res.Status, res.Text())
		}
	})
	reasons := map[string]bool{}
	for _, e := range h.audit("stepup.verify") {
		reasons[e.Outcome+": "+e.Detail] = true
	}
	for _, want := range []string{"ok: oidc", "failed: ID token of another user", "failed: authentication not fresh"} {
		if !reasons[want] {
			t.Errorf("audit lacks %q: %v", want, reasons)
		}
	}
}

// TestOIDCStepUpCannotBeDoneOnSSPRsPages: with Config.StepUp, a step-up
// journey offers none of sspr's own methods: a user who does not follow
// the redirect to the provider cannot prove an email code instead and get
// the change-password form.
func TestOIDCStepUpCannotBeDoneOnSSPRsPages(t *testing.T) {
	h, _ := oidcHarness(t)
	b := plugintest.NewBrowser(t)
	b.Get(h.srv.URL + "/test-login?uid=u-alice")
	pressStepUp(t, h, b, "/account/password") // not followed to the provider
	v := b.Get(h.base + "/verify")
	if strings.Contains(v.Text(), "Check your email") {
		t.Fatalf("sspr's own email step offered during an OIDC step-up: %s", v.Text())
	}
	if strings.Contains(string(v.Body), "/verify/method") || strings.Contains(string(v.Body), `name="code"`) {
		t.Fatalf("a method of sspr's own offered during an OIDC step-up: %s", v.Text())
	}
	h.deliver()
	if msgs := h.mail.to("alice@example.com"); len(msgs) != 0 {
		t.Fatalf("a code was sent during an OIDC step-up: %q", msgs[0].Subject)
	}
	if p := b.Get(h.base + "/account/password"); !strings.Contains(p.Text(), "Confirm it's you") {
		t.Fatalf("change-password page without the provider's step-up: %s", p.Text())
	}
}
