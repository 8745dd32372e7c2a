package server_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sspr-go/sspr/examples/provider/server"
	"github.com/sspr-go/sspr/plugin"
	"github.com/sspr-go/sspr/plugin/notify"
)

func TestLoginCodeFlow(t *testing.T) {
	f := newFixture(t)
	before := time.Now().Add(-time.Second)
	idt, tok := authorize(t, f, server.DemoEmail, server.DemoPassword)

	var claims struct {
		AuthTime          int64    `json:"auth_time"`
		AMR               []string `json:"amr"`
		Email             string   `json:"email"`
		EmailVerified     bool     `json:"email_verified"`
		Name              string   `json:"name"`
		PreferredUsername string   `json:"preferred_username"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != server.DemoUserID {
		t.Errorf("sub = %q, want %q", idt.Subject, server.DemoUserID)
	}
	if idt.Issuer != f.issuer {
		t.Errorf("iss = %q, want %q", idt.Issuer, f.issuer)
	}
	if !slices.Contains(claims.AMR, "pwd") {
		t.Errorf("amr = %v, want it to contain pwd", claims.AMR)
	}
	if at := time.Unix(claims.AuthTime, 0); at.Before(before.Truncate(time.Second)) || at.After(time.Now()) {
		t.Errorf("auth_time = %v, want about now", at)
	}
	if claims.Email != server.DemoEmail || !claims.EmailVerified || claims.Name != server.DemoDisplayName || claims.PreferredUsername != server.DemoUsername {
		t.Errorf("claims = %+v, want alice's email (verified), name and username", claims)
	}

	info, err := userinfo(t.Context(), f, tok)
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if info.Subject != server.DemoUserID || info.Email != server.DemoEmail {
		t.Errorf("userinfo = %s %s, want alice", info.Subject, info.Email)
	}
}

func TestLoginByUsernameAnyCase(t *testing.T) {
	f := newFixture(t)
	idt, _ := authorize(t, f, "  ALICE ", server.DemoPassword)
	if idt.Subject != server.DemoUserID {
		t.Errorf("sub = %q, want %q", idt.Subject, server.DemoUserID)
	}
}

func TestLoginPage(t *testing.T) {
	f := newFixture(t)
	r := newRP(t, f.issuer)
	login := get(t, newBrowser(t, testRedirectURI), r.authURL())
	if login.resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", login.resp.StatusCode)
	}
	id := login.hiddenFields().Get("authRequestID")
	loginURL := f.issuer + "/login?authRequestID=" + url.QueryEscape(id)
	forgot := `href="/recovery/?return_to=` + url.QueryEscape(loginURL) + `"`
	for _, want := range []string{
		`<label for="identifier">Email or username</label>`,
		`autocomplete="username"`,
		`<label for="password">Password</label>`,
		`autocomplete="current-password"`,
		`name="csrf"`,
		forgot,
		`>Forgot password?</a>`,
	} {
		if !strings.Contains(login.body, strings.ReplaceAll(want, "&", "&amp;")) {
			t.Errorf("login page lacks %s", want)
		}
	}
	checkPageHeaders(t, login.resp.Header)
	if strings.Contains(login.body, "<script") || strings.Contains(login.body, "style=") {
		t.Error("login page has inline script or style")
	}
}

func checkPageHeaders(t *testing.T, h http.Header) {
	t.Helper()
	for k, v := range map[string]string{
		"Cache-Control":           "no-store",
		"Referrer-Policy":         "no-referrer",
		"Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
		"X-Content-Type-Options":  "nosniff",
	} {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func TestLoginFailuresLookAlike(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, identifier, password string
	}{
		{"wrong password", server.DemoEmail, "not-the-password"},
		{"unknown user", "nobody@example.com", "not-the-password"},
		{"empty", "", ""},
	}
	var bodies []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRP(t, f.issuer)
			c := newBrowser(t, testRedirectURI)
			login := get(t, c, r.authURL())
			res := signIn(t, c, f.issuer, login, tt.identifier, tt.password)
			if res.resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200 (the form again)", res.resp.StatusCode)
			}
			if !strings.Contains(res.body, `<p id="login-error" class="alert" role="alert">Wrong email/username or password.</p>`) {
				t.Errorf("no generic error in:\n%s", res.body)
			}
			if n := strings.Count(res.body, `aria-describedby="login-error"`); n != 2 {
				t.Errorf("%d inputs point at the error, want 2", n)
			}
			checkPageHeaders(t, res.resp.Header)
			// Apart from the echoed identifier and the form's tokens, the
			// pages are the same.
			body := res.body
			for k, v := range res.hiddenFields() {
				body = strings.ReplaceAll(body, v[0], "<"+k+">")
			}
			body = strings.Replace(body, `value="`+tt.identifier+`"`, `value="<identifier>"`, 1)
			bodies = append(bodies, body)
		})
	}
	for i := 1; i < len(bodies); i++ {
		if bodies[i] != bodies[0] {
			t.Errorf("failure page %q differs from %q", tests[i].name, tests[0].name)
		}
	}
}

func TestLoginRefusesForgedPosts(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		mutate func(form url.Values, h http.Header)
	}{
		{"no csrf token", func(form url.Values, _ http.Header) { form.Del("csrf") }},
		{"wrong csrf token", func(form url.Values, _ http.Header) { form.Set("csrf", "AAAA") }},
		{"foreign origin", func(_ url.Values, h http.Header) { h.Set("Origin", "https://evil.example") }},
		{"null origin from another site", func(_ url.Values, h http.Header) {
			h.Set("Origin", "null")
			h.Set("Sec-Fetch-Site", "cross-site")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRP(t, f.issuer)
			c := newBrowser(t, testRedirectURI)
			login := get(t, c, r.authURL())
			form := login.hiddenFields()
			form.Set("identifier", server.DemoEmail)
			form.Set("password", server.DemoPassword)
			h := http.Header{"Origin": {f.issuer}}
			tt.mutate(form, h)
			res := postForm(t, c, f.issuer+"/login", form, h)
			if res.resp.StatusCode != http.StatusForbidden {
				t.Errorf("status %d, want 403", res.resp.StatusCode)
			}
		})
	}
}

// TestLoginAcceptsNullOriginFromTheSameSite: with Referrer-Policy
// no-referrer, browsers post the sign-in form with "Origin: null" and
// "Sec-Fetch-Site: same-origin"; that is a sign-in, not a forgery.
func TestLoginAcceptsNullOriginFromTheSameSite(t *testing.T) {
	f := newFixture(t)
	r := newRP(t, f.issuer)
	c := newBrowser(t, testRedirectURI)
	login := get(t, c, r.authURL())
	form := login.hiddenFields()
	form.Set("identifier", server.DemoEmail)
	form.Set("password", server.DemoPassword)
	res := postForm(t, c, f.issuer+"/login", form, http.Header{"Origin": {"null"}, "Sec-Fetch-Site": {"same-origin"}})
	r.redeem(t, res)
}

func TestLoginUnknownRequest(t *testing.T) {
	f := newFixture(t)
	res := get(t, newBrowser(t, ""), f.issuer+"/login?authRequestID=nope")
	if res.resp.StatusCode != http.StatusBadRequest || !strings.Contains(res.body, "This sign-in has expired") {
		t.Errorf("status %d, body:\n%s", res.resp.StatusCode, res.body)
	}
}

func TestDirectoryFindUser(t *testing.T) {
	f := newFixture(t)
	dir := f.srv.Directory()
	tests := []struct {
		name, identifier string
		wantErr          error
	}{
		{"email", "alice@example.com", nil},
		{"username", "alice", nil},
		{"email upper case", "Alice@Example.COM", nil},
		{"username with spaces", "  ALICE\t", nil},
		{"unknown", "carol@example.com", plugin.ErrUserNotFound},
		{"empty", "  ", plugin.ErrUserNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := dir.FindUser(t.Context(), tt.identifier)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("FindUser(%q) error = %v, want %v", tt.identifier, err, tt.wantErr)
			}
			if tt.wantErr == nil {
				want := plugin.User{ID: server.DemoUserID, Username: server.DemoUsername, Email: server.DemoEmail, DisplayName: server.DemoDisplayName}
				if u != want {
					t.Errorf("FindUser(%q) = %+v, want %+v", tt.identifier, u, want)
				}
			}
		})
	}

	if _, err := dir.User(t.Context(), server.DemoUserID); err != nil {
		t.Errorf("User(alice): %v", err)
	}
	if _, err := dir.User(t.Context(), "mallory"); !errors.Is(err, plugin.ErrUserNotFound) {
		t.Errorf("User(mallory) error = %v, want ErrUserNotFound", err)
	}
	if err := dir.SetPassword(t.Context(), "mallory", "whatever-password"); !errors.Is(err, plugin.ErrUserNotFound) {
		t.Errorf("SetPassword(mallory) error = %v, want ErrUserNotFound", err)
	}
}

func TestDirectorySetPassword(t *testing.T) {
	f := newFixture(t)
	const newPassword = "down-the-rabbit-hole-42"
	if err := f.srv.Directory().SetPassword(t.Context(), server.DemoUserID, newPassword); err != nil {
		t.Fatal(err)
	}
	authorize(t, f, server.DemoUsername, newPassword)

	r := newRP(t, f.issuer)
	c := newBrowser(t, testRedirectURI)
	res := signIn(t, c, f.issuer, get(t, c, r.authURL()), server.DemoUsername, server.DemoPassword)
	if res.resp.StatusCode != http.StatusOK || !strings.Contains(res.body, "Wrong email/username or password.") {
		t.Errorf("old password: status %d, want the form with the error", res.resp.StatusCode)
	}
}

func TestRevokeSessions(t *testing.T) {
	f := newFixture(t)
	_, tok := authorize(t, f, server.DemoEmail, server.DemoPassword)
	if _, err := userinfo(t.Context(), f, tok); err != nil {
		t.Fatalf("userinfo before revocation: %v", err)
	}
	var revoker plugin.SessionRevoker = f.srv.Directory()
	if err := revoker.RevokeSessions(t.Context(), server.DemoUserID); err != nil {
		t.Fatal(err)
	}
	if _, err := userinfo(t.Context(), f, tok); err == nil {
		t.Error("userinfo works after RevokeSessions")
	}
}

func TestMailboxPages(t *testing.T) {
	f := newFixture(t)
	mb := f.srv.Mailbox()
	if mb == nil {
		t.Fatal("no mailbox without SMTP")
	}
	err := mb.Send(t.Context(), notify.Message{
		Channel: "email", To: "alice@example.com", Subject: "Reset <your> password",
		Text: "Open https://login.example/recovery/link?t=abc&x=1. Code: 12345678 <b>",
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, remote string
		header             string // a proxy's header, "Name: value"
		wantStatus         int
		wantBody           string
	}{
		{"page remote", "/dev/mailbox", "203.0.113.7:40000", "", http.StatusForbidden, ""},
		// A reverse proxy on this machine: local address, forwarded client.
		{"page via a local proxy", "/dev/mailbox", "127.0.0.1:40000", "X-Forwarded-For: 203.0.113.7", http.StatusForbidden, ""},
		{"json via a local proxy", "/dev/mailbox.json", "[::1]:40000", "Forwarded: for=203.0.113.7", http.StatusForbidden, ""},
		{"audit via a local proxy", "/dev/audit", "127.0.0.1:40000", "X-Real-IP: 203.0.113.7", http.StatusForbidden, ""},
		{"json remote", "/dev/mailbox.json", "[2001:db8::1]:40000", "", http.StatusForbidden, ""},
		{"page local", "/dev/mailbox", "127.0.0.1:40000", "", http.StatusOK,
			`Open <a href="https://login.example/recovery/link?t=abc&amp;x=1" rel="noreferrer">https://login.example/recovery/link?t=abc&amp;x=1</a>. Code: 12345678 &lt;b&gt;`},
		{"json local v6", "/dev/mailbox.json", "[::1]:40000", "", http.StatusOK, `"subject":"Reset \u003cyour\u003e password"`},
		{"json local, the issuer's host", "/dev/mailbox.json", "127.0.0.1:40000", "Host: " + f.srv.Issuer()[len("http://"):], http.StatusOK, `"subject"`},
		// Another site's page whose name now points at 127.0.0.1 (DNS
		// rebinding): a local connection that names a foreign host.
		{"json via DNS rebinding", "/dev/mailbox.json", "127.0.0.1:40000", "Host: attacker.example:9998", http.StatusForbidden, ""},
		{"audit via DNS rebinding", "/dev/audit", "[::1]:40000", "Host: attacker.example", http.StatusForbidden, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, tt.path, nil)
			req.RemoteAddr = tt.remote
			req.Host = "localhost:9998"
			if name, value, ok := strings.Cut(tt.header, ": "); ok && name == "Host" {
				req.Host = value
			} else if ok {
				req.Header.Set(name, value)
			}
			rec := httptest.NewRecorder()
			f.srv.Handler().ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			if !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("body lacks %s:\n%s", tt.wantBody, rec.Body.String())
			}
			if strings.Contains(rec.Body.String(), "<b>") {
				t.Error("message text is not escaped")
			}
		})
	}
}

func TestMailboxNeverLogsTheText(t *testing.T) {
	var log strings.Builder
	mb := server.NewMailbox(slog.New(slog.NewTextHandler(&log, nil)), nil)
	m := notify.Message{Channel: "email", To: "alice@example.com", Subject: "Reset your password",
		Text: "Your code: 48151623\nhttp://localhost:9998/recovery/link?token=SECRET-TOKEN", HTML: "<p>48151623</p>"}
	if err := mb.Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	got := log.String()
	if !strings.Contains(got, "Reset your password") {
		t.Fatalf("the log does not say what arrived: %q", got)
	}
	if strings.Contains(got, "48151623") || strings.Contains(got, "SECRET-TOKEN") || strings.Contains(got, "alice@") {
		t.Fatalf("the log keeps the message's code, link or recipient: %q", got)
	}
	if ms := mb.Messages(); len(ms) != 1 || ms[0].Text != m.Text {
		t.Fatalf("the mailbox lost the text: %+v", ms)
	}
}

func TestMailboxWait(t *testing.T) {
	mb := server.NewMailbox(slog.New(slog.DiscardHandler), nil)

	// A message that arrived before Wait is returned.
	first := notify.Message{Channel: "email", To: "alice@example.com", Subject: "first"}
	if err := mb.Send(t.Context(), notify.Message{To: "bob@example.com", Subject: "other"}); err != nil {
		t.Fatal(err)
	}
	if err := mb.Send(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	got, err := mb.Wait(t.Context(), "Alice@Example.com")
	if err != nil || got != first {
		t.Fatalf("Wait = %+v, %v; want %+v", got, err, first)
	}

	// A message that arrives while Wait blocks is returned.
	second := notify.Message{Channel: "email", To: "alice@example.com", Subject: "second"}
	waited := make(chan notify.Message, 1)
	go func() {
		m, err := mb.Wait(t.Context(), "alice@example.com")
		if err != nil {
			t.Errorf("Wait: %v", err)
		}
		waited <- m
	}()
	if err := mb.Send(t.Context(), second); err != nil {
		t.Fatal(err)
	}
	if got := <-waited; got != second {
		t.Errorf("Wait = %+v, want %+v", got, second)
	}

	// Nothing left: Wait ends with the context.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := mb.Wait(ctx, "alice@example.com"); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait on an empty mailbox = %v, want context.Canceled", err)
	}

	if msgs := mb.Messages(); len(msgs) != 3 || msgs[0].Subject != "second" {
		t.Errorf("Messages() = %d, newest %q; want 3, newest second", len(msgs), msgs[0].Subject)
	}
}

func TestRestartKeepsDataAndKeys(t *testing.T) {
	dir := t.TempDir()
	cfg := server.Config{Issuer: "http://127.0.0.1:1", DataDir: dir, Logger: slog.New(slog.DiscardHandler)}
	keys := func() string {
		s, err := server.New(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/keys", nil))
		if _, err := s.Directory().FindUser(t.Context(), server.DemoEmail); err != nil {
			t.Errorf("FindUser after start: %v", err)
		}
		return rec.Body.String()
	}
	first, second := keys(), keys()
	if first == "" || first != second {
		t.Errorf("signing keys differ across restarts:\n%s\n%s", first, second)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  server.Config
		want string
	}{
		{"plain http off loopback", server.Config{Issuer: "http://login.example", DataDir: "x"},
			"server: config: field 'Issuer': must be https (plain http is allowed only for loopback hosts)"},
		{"issuer with path", server.Config{Issuer: "https://login.example/idp", DataDir: "x"},
			"server: config: field 'Issuer': must have no path, query, fragment or user info"},
		{"no data dir", server.Config{Issuer: "http://localhost:9998"},
			"server: config: field 'DataDir': is required"},
		{"bad smtp", server.Config{Issuer: "http://localhost:9998", DataDir: "x", SMTP: "mail.example:25"},
			`server: config: field 'SMTP': must look like "smtp://host:port"`},
		{"everything at once", server.Config{Issuer: "ftp://x", SMTP: "http://mail.example"},
			"server: config: field 'Issuer': must be an absolute http(s) URL\n" +
				"server: config: field 'DataDir': is required\n" +
				`server: config: field 'SMTP': must look like "smtp://host:port"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := server.New(t.Context(), tt.cfg)
			if err == nil || err.Error() != tt.want {
				t.Errorf("New error = %v, want %s", err, tt.want)
			}
		})
	}
}
