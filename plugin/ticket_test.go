package plugin_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sspr-go/sspr/plugin"
	"github.com/sspr-go/sspr/plugin/plugintest"
)

func TestTicketJourney(t *testing.T) {
	h := newHarness(t)
	tk, err := h.p.IssueTicket(t.Context(), plugin.TicketRequest{UserID: "u-alice", TTL: 2 * time.Hour, IssuedBy: "admin@example.com"})
	if err != nil || !strings.HasPrefix(tk.URL, h.base+"/ticket?token=") || !tk.ExpiresAt.Equal(h.clock.Now().Add(2*time.Hour)) {
		t.Fatalf("ticket: %+v %v", tk, err)
	}
	// Opened later, in any browser; GET never consumes it.
	h.clock.Advance(90 * time.Minute)
	b := plugintest.NewBrowser(t)
	var page *plugintest.Page
	for range 2 {
		page = b.Get(tk.URL)
		if page.Status != http.StatusOK || !strings.Contains(page.Text(), "Your administrator sent you this link") {
			t.Fatalf("ticket page: %d %s", page.Status, page.Text())
		}
	}
	next := b.Submit(page, "/recovery/ticket", nil)
	if next.Header.Get("Location") != "/recovery/verify" {
		t.Fatalf("redeem: %d %q %s", next.Status, next.Header.Get("Location"), next.Text())
	}
	// The user still proves the contact channel: whoever holds only the
	// link (the administrator) cannot set a password.
	check := b.Follow(next)
	if p := b.Get(h.base + "/password"); p.Header.Get("Location") != "/recovery/verify" {
		t.Fatal("the ticket alone opened the password form")
	}
	h.deliver()
	_, code := h.resetMail("alice@example.com")
	next = b.Submit(check, "/recovery/verify", map[string]string{"code": code})
	pw := b.Follow(next)
	done := b.Submit(pw, "/recovery/password", map[string]string{"password": newPassword, "confirm": newPassword})
	if done.Header.Get("Location") != "/recovery/done" || h.dir.password("u-alice") != newPassword {
		t.Fatalf("set password: %d %s", done.Status, done.Text())
	}
	if p := plugintest.NewBrowser(t).Get(tk.URL); !strings.Contains(p.Text(), "already used") {
		t.Fatalf("used ticket: %s", p.Text())
	}
	if evs := h.audit("ticket.issue"); len(evs) != 1 || evs[0].Detail != "by admin@example.com" {
		t.Fatalf("audit: %+v", evs)
	}
}

func TestTicketStandsInForLostFactors(t *testing.T) {
	h, key, _ := mfaHarness(t)
	tk, err := h.p.IssueTicket(t.Context(), plugin.TicketRequest{UserID: "u-alice", Email: true})
	if err != nil || tk.URL != "" || !tk.Emailed {
		t.Fatalf("emailed ticket: %+v %v", tk, err)
	}
	h.deliver()
	msgs := h.mail.to("alice@example.com")
	if len(msgs) != 1 || !strings.Contains(msgs[0].Subject, "administrator") {
		t.Fatalf("ticket email: %+v", msgs)
	}
	link := msgs[0].Text[strings.Index(msgs[0].Text, "http"):]
	link = link[:strings.IndexAny(link, "\n ")]
	// alice lost her key: the ticket replaces it, the email code does not.
	b := plugintest.NewBrowser(t)
	check := b.Follow(b.Submit(b.Get(link), "/recovery/ticket", nil))
	if !strings.Contains(check.Text(), "Check your email") || key.begins != 0 {
		t.Fatalf("after a ticket: %s", check.Text())
	}
	h.deliver()
	_, code := h.resetMail("alice@example.com")
	if ok := b.Submit(check, "/recovery/verify", map[string]string{"code": code}); ok.Header.Get("Location") != "/recovery/password" {
		t.Fatalf("ticket + email code: %d %s", ok.Status, ok.Text())
	}
}

func TestTicketExpiresAndValidates(t *testing.T) {
	h := newHarness(t)
	tk, err := h.p.IssueTicket(t.Context(), plugin.TicketRequest{UserID: "u-alice"})
	if err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(61 * time.Minute)
	if p := plugintest.NewBrowser(t).Get(tk.URL); !strings.Contains(p.Text(), "This link has expired") {
		t.Fatalf("expired ticket: %s", p.Text())
	}
	for _, req := range []plugin.TicketRequest{
		{},
		{UserID: "nobody"},
		{UserID: "u-alice", TTL: 25 * time.Hour},
		{UserID: "u-carol", Email: true}, // no address
	} {
		if _, err := h.p.IssueTicket(t.Context(), req); !errors.Is(err, plugin.ErrBadTicketRequest) {
			t.Errorf("%+v: %v", req, err)
		}
	}
}

func TestTicketAPI(t *testing.T) {
	h := newHarness(t)
	api := httptest.NewServer(h.p.TicketHandler())
	t.Cleanup(api.Close)
	post := func(body string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Post(api.URL, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if status, out := post(`{"user_id":"u-alice","ttl":"3h","issued_by":"root"}`); status != 201 || !strings.Contains(out["url"].(string), "/recovery/ticket?token=") {
		t.Fatalf("issue: %d %v", status, out)
	}
	for _, body := range []string{`{`, `{"user_id":"u-alice","ttl":"forever"}`, `{"user_id":"u-alice","password":"x"}`, `{"user_id":"nobody"}`} {
		if status, out := post(body); status != 400 || out["error"] == "" {
			t.Errorf("%s: %d %v", body, status, out)
		}
	}
	resp, err := http.Get(api.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
}
