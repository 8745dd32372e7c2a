package plugin_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sspr-go/sspr/plugin/plugintest"
)

func TestAuditAPI(t *testing.T) {
	h := newHarness(t)
	b := plugintest.NewBrowser(t)
	check := b.Follow(h.start(b, "alice"))
	b.Submit(check, "/recovery/verify", map[string]string{"code": "00000000"})
	h.start(plugintest.NewBrowser(t), "nobody@example.com")

	api := httptest.NewServer(h.p.AuditHandler())
	t.Cleanup(api.Close)
	get := func(q string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Get(api.URL + "/?" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	status, body := get("user=u-alice")
	evs, _ := body["events"].([]any)
	if status != 200 || len(evs) != 2 {
		t.Fatalf("alice's events: %d %v", status, body)
	}
	first := evs[0].(map[string]any)
	if first["event"] != "verify.email" || first["outcome"] != "failed" || first["ip"] != "127.0.0.1" {
		t.Fatalf("newest event: %v", first)
	}
	if status, body := get("event=journey.start&limit=1"); status != 200 || len(body["events"].([]any)) != 1 {
		t.Fatalf("limit: %d %v", status, body)
	}
	for _, q := range []string{"limit=0", "limit=x", "since=yesterday"} {
		if status, body := get(q); status != 400 || body["error"] == "" {
			t.Errorf("%s: %d %v", q, status, body)
		}
	}
	resp, err := http.Post(api.URL, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
}

func TestMetricsMove(t *testing.T) {
	h := newHarness(t)
	b := plugintest.NewBrowser(t)
	check := b.Follow(h.start(b, "alice"))
	b.Submit(check, "/recovery/verify", map[string]string{"code": "00000000"})
	h.deliver()
	srv := httptest.NewServer(h.p.MetricsHandler())
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	text := string(raw)
	for _, want := range []string{
		`sspr_events_total{event="journey.start",outcome="ok"} 1`,
		`sspr_events_total{event="verify.email",outcome="failed"} 1`,
		`sspr_outbox_delay_seconds_count 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
