package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sspr-go/sspr/examples/provider/server"
	"github.com/sspr-go/sspr/plugin/notify"
	"github.com/sspr-go/sspr/plugin/notify/smtptest"
)

// gateway is a local SMS gateway: it takes sspr's signed webhook requests,
// refuses any whose signature does not verify, and keeps the messages.
type gateway struct {
	t       *testing.T
	secret  []byte
	mu      sync.Mutex
	msgs    []notify.Message
	refused int
	arrived chan struct{}
}

func newGateway(t *testing.T) (*gateway, *httptest.Server) {
	g := &gateway{t: t, secret: []byte("a-gateway-secret-of-at-least-32-bytes"), arrived: make(chan struct{}, 100)}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err == nil {
			err = notify.VerifyWebhook(g.secret, r.Header, body, time.Now(), 0)
		}
		var m notify.Message
		if err == nil {
			err = json.Unmarshal(body, &m)
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		if err != nil {
			g.refused++
			http.Error(w, "refused", http.StatusUnauthorized)
			return
		}
		g.msgs = append(g.msgs, m)
		w.WriteHeader(http.StatusAccepted)
		g.arrived <- struct{}{}
	}))
	t.Cleanup(ts.Close)
	return g, ts
}

// wait returns the n-th message (1-based) to number, waiting for it.
func (g *gateway) wait(number string, n int) notify.Message {
	g.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		g.mu.Lock()
		var mine []notify.Message
		for _, m := range g.msgs {
			if m.To == number {
				mine = append(mine, m)
			}
		}
		g.mu.Unlock()
		if len(mine) >= n {
			return mine[n-1]
		}
		select {
		case <-g.arrived:
		case <-deadline:
			g.t.Fatalf("no text message %d to %s (have %d)", n, number, len(mine))
		}
	}
}

var smsCode = regexp.MustCompile(`#(\d{8})`)

// TestEndToEndResetBySMS is carol's journey: she has no email address,
// only a phone number, so the code comes by text message through a local
// gateway. The audit trail lists the journey's events and the metrics
// move.
func TestEndToEndResetBySMS(t *testing.T) {
	mail := smtptest.NewServer(t)
	gw, gts := newGateway(t)
	f := newFixture(t, func(c *server.Config) {
		c.SMTP = mail.URL()
		c.SMSWebhook = gts.URL
		c.SMSSecret = gw.secret
	})
	c := newBrowser(t, testRedirectURI)
	r := newRP(t, f.issuer)
	login := get(t, c, r.authURL())
	loginURL := login.resp.Request.URL.String()
	start := get(t, c, login.link(t, "Forgot password?"))
	// Every reset begins with the first channel (email), whoever asks, so
	// the page tells nobody whether carol exists; she switches to a text.
	first := submit(t, c, f.issuer, start, url.Values{"identifier": {server.CarolUsername}})
	if !strings.Contains(first.body, "Check your email") || !strings.Contains(first.body, "Text message") {
		t.Fatalf("first page: %d\n%s", first.resp.StatusCode, first.body)
	}
	check := postForm(t, c, f.issuer+"/recovery/verify/method", url.Values{"csrf": first.hiddenFields()["csrf"], "flow": {"sms"}},
		http.Header{"Origin": {f.issuer}})
	if check.resp.StatusCode != http.StatusOK || !strings.Contains(check.body, "Enter the code we texted you") {
		t.Fatalf("code page: %d\n%s", check.resp.StatusCode, check.body)
	}

	text := gw.wait(server.CarolPhone, 1)
	m := smsCode.FindStringSubmatch(text.Text)
	if text.Channel != "sms" || m == nil || !strings.Contains(text.Text, "Demo Provider reset code: "+m[1]) {
		t.Fatalf("text message: %+v", text)
	}
	if len(text.Text) > 160 {
		t.Fatalf("text message of %d characters, more than one segment:\n%s", len(text.Text), text.Text)
	}
	code := m[1]
	wrong := "00000000"
	if wrong == code {
		wrong = "11111111"
	}
	p := submit(t, c, f.issuer, check, url.Values{"code": {wrong}})
	if p.resp.StatusCode != http.StatusBadRequest || !strings.Contains(p.body, "4 tries left") {
		t.Fatalf("wrong code: %d\n%s", p.resp.StatusCode, p.body)
	}
	// A new code replaces the old one, and the count stays.
	resent := postForm(t, c, f.issuer+"/recovery/verify/resend", p.hiddenFields(), http.Header{"Origin": {f.issuer}})
	if !strings.Contains(resent.body, "We sent a new code") {
		t.Fatalf("resend: %d\n%s", resent.resp.StatusCode, resent.body)
	}
	second := smsCode.FindStringSubmatch(gw.wait(server.CarolPhone, 2).Text)
	if p := submit(t, c, f.issuer, resent, url.Values{"code": {code}}); !strings.Contains(p.body, "3 tries left") {
		t.Fatalf("the replaced code: %d\n%s", p.resp.StatusCode, p.body)
	}
	choose := submit(t, c, f.issuer, resent, url.Values{"code": {second[1]}})
	if choose.resp.Request.URL.Path != "/recovery/password" {
		t.Fatalf("after the right code: %s\n%s", choose.resp.Request.URL, choose.body)
	}
	const newPassword = "hedgehog-croquet-mallet-flamingo"
	done := submit(t, c, f.issuer, choose, url.Values{"password": {newPassword}, "confirm": {newPassword}})
	if !strings.Contains(done.body, "Your password was changed") {
		t.Fatalf("done page:\n%s", done.body)
	}
	back := get(t, c, done.link(t, "Sign in"))
	if back.resp.Request.URL.String() != loginURL {
		t.Fatalf("done page led to %s", back.resp.Request.URL)
	}
	idt, _ := r.finish(t, c, f.issuer, back, server.CarolUsername, newPassword)
	if idt.Subject != server.CarolUserID {
		t.Fatalf("ID token sub %q", idt.Subject)
	}
	if n := gw.wait(server.CarolPhone, 3); !strings.Contains(n.Text, "password was changed") {
		t.Fatalf("change notice by text message: %q", n.Text)
	}
	gw.mu.Lock()
	refused := gw.refused
	gw.mu.Unlock()
	if refused != 0 {
		t.Fatalf("the gateway refused %d requests", refused)
	}

	// The audit trail lists the journey's events, oldest last.
	local := newBrowser(t, "")
	var trail struct {
		Events []struct {
			Event, Outcome, IP, Detail string
			Journey                    string `json:"journey_id"`
		}
	}
	// The worker records a delivery after the gateway answered: poll
	// until both are in.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		a := get(t, local, f.issuer+"/dev/audit?user="+server.CarolUserID)
		if err := json.Unmarshal([]byte(a.body), &trail); err != nil {
			t.Fatalf("audit: %v\n%s", err, a.body)
		}
		if strings.Count(a.body, `"message.sent"`) >= 2 {
			break
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("deliveries not in the audit trail:\n%s", a.body)
		}
	}
	var got []string
	sent := 0
	for i := len(trail.Events) - 1; i >= 0; i-- {
		e := trail.Events[i]
		if e.Event == "message.sent" {
			// Written by the outbox worker when the gateway took the text,
			// so its place among the page's events may vary.
			if e.Outcome != "ok" || e.Detail != "sms code" || e.Journey == "" {
				t.Errorf("delivery event: %+v", e)
			}
			sent++
			continue
		}
		got = append(got, e.Event+" "+e.Outcome)
		if e.IP == "" {
			t.Errorf("audit event %s without IP", e.Event)
		}
	}
	if sent != 2 {
		t.Errorf("%d message.sent events, want 2 (the code and the new code)", sent)
	}
	want := []string{"journey.start ok", "method.begin ok", "verify.sms failed", "resend.sms ok", "verify.sms failed", "verify.sms ok", "password.change ok", "sessions.revoke ok"}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Fatalf("audit trail:\n got %v\nwant %v", got, want)
	}
	// And the metrics moved.
	metrics := get(t, local, f.issuer+"/dev/metrics").body
	for _, line := range []string{
		`sspr_events_total{event="verify.sms",outcome="failed"} 2`,
		`sspr_events_total{event="verify.sms",outcome="ok"} 1`,
		`sspr_events_total{event="password.change",outcome="ok"} 1`,
	} {
		if !strings.Contains(metrics, line) {
			t.Errorf("metrics lack %s", line)
		}
	}
	if !strings.Contains(metrics, "sspr_outbox_delay_seconds_count") {
		t.Error("metrics lack the outbox delay")
	}
}
