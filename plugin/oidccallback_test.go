package plugin_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sspr-go/sspr/plugin/plugintest"
	"github.com/sspr-go/sspr/plugin/store"
)

// TestOIDCStepUpCallbackWithoutStepUpJourney opens a good callback (the
// fake provider's code and state for browser a's step-up) where there is
// no usable step-up journey: the answer is the "session ended" page as a
// 400, nothing is redeemed, and one "stepup.oidc" event says why, without
// the code or the state.
func TestOIDCStepUpCallbackWithoutStepUpJourney(t *testing.T) {
	tests := []struct {
		name string
		// browser returns the browser that opens a's callback and the
		// journey ID and user ID the audit event must name.
		browser func(t *testing.T, e *oidcEnv, a *plugintest.Browser) (b *plugintest.Browser, journey, user string)
		detail  string
		// aFinishes: a's step-up is still alive, and the same callback
		// then counts in a.
		aFinishes bool
	}{
		{name: "no cookie", detail: "no step-up journey: no journey cookie", aFinishes: true,
			browser: func(t *testing.T, e *oidcEnv, a *plugintest.Browser) (*plugintest.Browser, string, string) {
				return plugintest.NewBrowser(t), "", ""
			}},
		{name: "signed in, no journey", detail: "no step-up journey: no journey cookie", aFinishes: true,
			browser: func(t *testing.T, e *oidcEnv, a *plugintest.Browser) (*plugintest.Browser, string, string) {
				return e.browser(t), "", ""
			}},
		{name: "unknown journey", detail: "no step-up journey: unknown journey", aFinishes: true,
			browser: func(t *testing.T, e *oidcEnv, a *plugintest.Browser) (*plugintest.Browser, string, string) {
				// The start page gives the browser a cookie whose ID no
				// journey has (nothing is stored until the form is posted).
				b := plugintest.NewBrowser(t)
				if p := b.Get(e.h.base + "/"); p.Status != http.StatusOK {
					t.Fatalf("start page: %d", p.Status)
				}
				return b, "", ""
			}},
		{name: "password-reset journey", detail: "no step-up journey: not a step-up journey", aFinishes: true,
			browser: func(t *testing.T, e *oidcEnv, a *plugintest.Browser) (*plugintest.Browser, string, string) {
				b := plugintest.NewBrowser(t)
				if p := e.h.start(b, "alice"); p.Status != http.StatusSeeOther {
					t.Fatalf("start a reset: %d", p.Status)
				}
				// The reset's journey is named, not its user: the callback
				// was not for them.
				return b, onlyEvent(t, e.h, "journey.start").JourneyID, ""
			}},
		{name: "step-up journey expired", detail: "no step-up journey: journey expired",
			browser: func(t *testing.T, e *oidcEnv, a *plugintest.Browser) (*plugintest.Browser, string, string) {
				e.h.clock.Advance(16 * time.Minute) // JourneyTTL is 15 minutes
				return a, onlyEvent(t, e.h, "stepup.start").JourneyID, "u-alice"
			}},
		{name: "step-up journey ended", detail: "no step-up journey: journey ended",
			browser: func(t *testing.T, e *oidcEnv, a *plugintest.Browser) (*plugintest.Browser, string, string) {
				id := onlyEvent(t, e.h, "stepup.start").JourneyID
				if err := e.h.store.CompleteJourney(t.Context(), id, e.h.clock.Now()); err != nil {
					t.Fatal(err)
				}
				return a, id, "u-alice"
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newOIDCEnv(t)
			a := e.browser(t)
			cb := e.authorize(t, a)
			b, journey, user := tt.browser(t, e, a)

			res := b.Get(cb.String())
			if res.Status != http.StatusBadRequest || !strings.Contains(res.Text(), "session has ended") ||
				strings.Contains(res.Text(), "Change your password") || res.Header.Get("Location") != "" {
				t.Fatalf("callback: want 400 and the session-ended page, got %d %q %s", res.Status, res.Header.Get("Location"), res.Text())
			}
			noLeak(t, res, "")
			if n := e.op.calls(); n != 0 {
				t.Errorf("token requests: %d, want 0", n)
			}

			ev := onlyEvent(t, e.h, "stepup.oidc")
			if ev.Outcome != "failed" || ev.Detail != tt.detail || ev.JourneyID != journey || ev.UserID != user {
				t.Errorf("stepup.oidc event: outcome %q detail %q journey %q user %q; want failed %q %q %q",
					ev.Outcome, ev.Detail, ev.JourneyID, ev.UserID, tt.detail, journey, user)
			}
			code, state := cb.Query().Get("code"), cb.Query().Get("state")
			for _, f := range []string{ev.Detail, ev.JourneyID, ev.UserID, ev.UserAgent, ev.IP} {
				if strings.Contains(f, code) || strings.Contains(f, state) {
					t.Errorf("stepup.oidc event holds the callback's code or state: %+v", ev)
				}
			}
			// A refusal without a journey is no stepup.verify event.
			e.wantAudit(t)

			if tt.aFinishes {
				e.accepted(t, a, a.Get(cb.String()))
				e.wantAudit(t, "ok: oidc")
			} else {
				e.stillAsks(t, a)
			}
		})
	}
}

// onlyEvent returns the one audit event named event, failing the test when
// there is not exactly one.
func onlyEvent(t *testing.T, h *harness, event string) store.AuditEvent {
	t.Helper()
	evs := h.audit(event)
	if len(evs) != 1 {
		t.Fatalf("%s events: %d, want 1: %+v", event, len(evs), evs)
	}
	return evs[0]
}
