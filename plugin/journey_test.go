package plugin_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/email"
	"github.com/sspr-go/sspr/flows/sms"
	"github.com/sspr-go/sspr/plugin"
	"github.com/sspr-go/sspr/plugin/password"
	"github.com/sspr-go/sspr/plugin/plugintest"
)

const newPassword = "glass-onion-harbor-lantern"

func TestResetByCode(t *testing.T) {
	h := newHarness(t)
	b := plugintest.NewBrowser(t)
	page := h.start(b, "Alice@Example.com ")
	if page.Status != http.StatusSeeOther || page.Header.Get("Location") != "/recovery/verify" {
		t.Fatalf("start: status %d location %q", page.Status, page.Header.Get("Location"))
	}
	check := b.Follow(page)
	if !strings.Contains(check.Text(), "Check your email") {
		t.Fatalf("check page: %s", check.Text())
	}
	h.deliver()
	_, code := h.resetMail("alice@example.com")

	// A wrong code is refused and counted.
	wrong := "00000000"
	if wrong == code {
		wrong = "11111111"
	}
	bad := b.Submit(check, "/recovery/verify", map[string]string{"code": wrong})
	if bad.Status != http.StatusBadRequest || !strings.Contains(bad.Text(), "You have 4 tries left") {
		t.Fatalf("wrong code: status %d, %s", bad.Status, bad.Text())
	}
	if got := h.audit("verify.email"); len(got) != 1 || got[0].Outcome != "failed" {
		t.Fatalf("audit after wrong code: %+v", got)
	}
	// Malformed input is explained and not counted.
	bad = b.Submit(check, "/recovery/verify", map[string]string{"code": "12ab"})
	if !strings.Contains(bad.Text(), "Enter the 8-digit code") {
		t.Fatalf("malformed code: %s", bad.Text())
	}

	// The right code (typed with a space) leads to the new password.
	ok := b.Submit(bad, "/recovery/verify", map[string]string{"code": code[:4] + " " + code[4:]})
	if ok.Status != http.StatusSeeOther || ok.Header.Get("Location") != "/recovery/password" {
		t.Fatalf("right code: status %d location %q body %s", ok.Status, ok.Header.Get("Location"), ok.Body)
	}
	pw := b.Follow(ok)
	done := b.Submit(pw, "/recovery/password", map[string]string{"password": newPassword, "confirm": newPassword})
	if done.Status != http.StatusSeeOther || done.Header.Get("Location") != "/recovery/done" {
		t.Fatalf("set password: status %d, %s", done.Status, done.Body)
	}
	if got := h.dir.password("u-alice"); got != newPassword {
		t.Fatalf("directory password = %q", got)
	}
	if h.dir.revoked["u-alice"] != 1 {
		t.Fatalf("sessions revoked %d times, want 1", h.dir.revoked["u-alice"])
	}
	donePage := b.Follow(done)
	if !strings.Contains(donePage.Text(), "Your password was changed") {
		t.Fatalf("done page: %s", donePage.Text())
	}
	signIn := donePage.Find(func(n *html.Node) bool { return plugintest.Attr(n, "class") == "button" })
	if len(signIn) != 1 || plugintest.Attr(signIn[0], "href") != h.srv.URL+"/signin" {
		t.Fatalf("done page sign-in link: %v", signIn)
	}

	// "Your password was changed" goes to every contact address.
	h.deliver()
	for _, addr := range []string{"alice@example.com", "alice.backup@example.org"} {
		msgs := h.mail.to(addr)
		if len(msgs) == 0 || !strings.Contains(msgs[len(msgs)-1].Subject, "password was changed") {
			t.Errorf("no change notice to %s: %+v", addr, msgs)
		}
	}
	for _, ev := range []string{"journey.start", "password.change", "sessions.revoke"} {
		if got := h.audit(ev); len(got) != 1 || got[0].Outcome != "ok" || got[0].UserID != "u-alice" {
			t.Errorf("audit %s: %+v", ev, got)
		}
	}
	// The journey is over: the password page no longer works.
	again := b.Get(h.base + "/password")
	if !strings.Contains(again.Text(), "Your reset session has ended") {
		t.Fatalf("password page after done: %s", again.Text())
	}
}

func TestResetByLink(t *testing.T) {
	h := newHarness(t)
	b := plugintest.NewBrowser(t)
	b.Follow(h.start(b, "alice"))
	h.deliver()
	link, _ := h.resetMail("alice@example.com")
	if !strings.HasPrefix(link, h.base+"/link?token=") {
		t.Fatalf("link %q is not under BaseURL", link)
	}
	// GET twice (a mail scanner, then the user): nothing is consumed.
	for i := range 2 {
		p := b.Get(link)
		if p.Status != http.StatusOK || !strings.Contains(p.Text(), "Continue your password reset") {
			t.Fatalf("GET %d of link: %d %s", i, p.Status, p.Text())
		}
	}
	confirm := b.Get(link)
	next := b.Submit(confirm, "/recovery/link", nil)
	if next.Status != http.StatusSeeOther || next.Header.Get("Location") != "/recovery/password" {
		t.Fatalf("confirm link: %d %q %s", next.Status, next.Header.Get("Location"), next.Body)
	}
	// The used link is refused, on GET and on POST.
	if p := b.Get(link); !strings.Contains(p.Text(), "already used") {
		t.Fatalf("used link GET: %s", p.Text())
	}
	if p := b.Submit(confirm, "/recovery/link", nil); !strings.Contains(p.Text(), "already used") {
		t.Fatalf("used link POST: %s", p.Text())
	}
	pw := b.Follow(next)
	done := b.Submit(pw, "/recovery/password", map[string]string{"password": newPassword, "confirm": newPassword})
	if done.Status != http.StatusSeeOther {
		t.Fatalf("set password: %d %s", done.Status, done.Body)
	}
	if h.dir.password("u-alice") != newPassword {
		t.Fatal("password not set")
	}
}

func TestLinkInOtherBrowserAsksForCode(t *testing.T) {
	h := newHarness(t)
	b := plugintest.NewBrowser(t)
	check := b.Follow(h.start(b, "alice"))
	h.deliver()
	link, code := h.resetMail("alice@example.com")

	other := plugintest.NewBrowser(t)
	p := other.Get(link)
	if !strings.Contains(p.Text(), "enter the code from the same email") {
		t.Fatalf("other browser GET: %s", p.Text())
	}
	if len(p.Find(func(n *html.Node) bool { return n.Data == "form" })) != 0 {
		t.Fatal("other browser got a form that could consume the link")
	}
	// A forged POST from the other browser (CSRF token of its own binding
	// is impossible; try with the token alone) consumes nothing.
	post := other.Post(h.base+"/link", url.Values{"token": {strings.SplitN(link, "token=", 2)[1]}})
	if post.Status != http.StatusForbidden {
		t.Fatalf("other browser POST: %d", post.Status)
	}
	// The code still works in the first browser.
	ok := b.Submit(check, "/recovery/verify", map[string]string{"code": code})
	if ok.Header.Get("Location") != "/recovery/password" {
		t.Fatalf("code after foreign link visit: %d %s", ok.Status, ok.Body)
	}
}

func TestExpiredLinkAndCode(t *testing.T) {
	h := newHarness(t)
	b := plugintest.NewBrowser(t)
	check := b.Follow(h.start(b, "alice"))
	h.deliver()
	link, code := h.resetMail("alice@example.com")
	h.clock.Advance(10*time.Minute + time.Second)
	if p := b.Get(link); !strings.Contains(p.Text(), "This link has expired") {
		t.Fatalf("expired link: %s", p.Text())
	}
	p := b.Submit(check, "/recovery/verify", map[string]string{"code": code})
	if !strings.Contains(p.Text(), "This code has expired") {
		t.Fatalf("expired code: %s", p.Text())
	}
	// A new email brings a new code that works, with the old one dead.
	sent := b.Follow(b.Submit(p, "/recovery/verify/resend", nil))
	if !strings.Contains(sent.Text(), "We sent a new email") {
		t.Fatalf("resend: %s", sent.Text())
	}
	h.deliver()
	_, code2 := h.resetMail("alice@example.com")
	if code2 == code {
		t.Fatal("resend reused the code")
	}
	ok := b.Submit(sent, "/recovery/verify", map[string]string{"code": code2})
	if ok.Header.Get("Location") != "/recovery/password" {
		t.Fatalf("new code: %d %s", ok.Status, ok.Body)
	}
	// The journey itself expires after 15 minutes.
	h.clock.Advance(5 * time.Minute)
	if p := b.Get(h.base + "/password"); !strings.Contains(p.Text(), "Your reset session has ended") {
		t.Fatalf("expired journey: %s", p.Text())
	}
}

func TestFiveWrongCodesKillTheCode(t *testing.T) {
	h := newHarness(t)
	b := plugintest.NewBrowser(t)
	page := b.Follow(h.start(b, "alice"))
	h.deliver()
	link, code := h.resetMail("alice@example.com")
	wrong := "12345678"
	if wrong == code {
		wrong = "87654321"
	}
	for i := range 5 {
		page = b.Submit(page, "/recovery/verify", map[string]string{"code": wrong})
		if page.Status != http.StatusBadRequest {
			t.Fatalf("wrong code %d: %d", i, page.Status)
		}
	}
	if !strings.Contains(page.Text(), "Too many wrong codes") {
		t.Fatalf("after 5 wrong codes: %s", page.Text())
	}
	page = b.Submit(page, "/recovery/verify", map[string]string{"code": code})
	if page.Status == http.StatusSeeOther || !strings.Contains(page.Text(), "Too many wrong codes") {
		t.Fatalf("right code after 5 wrong ones: %d %s", page.Status, page.Text())
	}
	if p := b.Get(link); !strings.Contains(p.Text(), "expired") {
		t.Fatalf("link after 5 wrong codes: %s", p.Text())
	}
	// A resend does not revive the counter.
	page = b.Follow(b.Submit(page, "/recovery/verify/resend", nil))
	h.deliver()
	_, code2 := h.resetMail("alice@example.com")
	page = b.Submit(page, "/recovery/verify", map[string]string{"code": code2})
	if page.Status == http.StatusSeeOther {
		t.Fatal("resend reset the attempt counter")
	}
}

// normalizeTokens blanks per-request tokens so that pages can be compared.
var tokenRE = regexp.MustCompile(`name="csrf" value="[^"]*"`)

func TestUnknownIdentifierLooksTheSame(t *testing.T) {
	h := newHarness(t)
	type result struct {
		start, check *plugintest.Page
	}
	run := func(identifier string) result {
		b := plugintest.NewBrowser(t)
		p := h.start(b, identifier)
		return result{start: p, check: b.Follow(p)}
	}
	known := run("alice@example.com")
	unknown := run("nobody@example.com")
	noEmail := run("carol") // known, but no address to send to
	for _, other := range []result{unknown, noEmail} {
		if known.start.Status != other.start.Status || known.check.Status != other.check.Status {
			t.Fatalf("status differs: %d/%d vs %d/%d", known.start.Status, known.check.Status, other.start.Status, other.check.Status)
		}
		if a, b := headerShape(known.start.Header), headerShape(other.start.Header); a != b {
			t.Fatalf("start headers differ:\n%s\n%s", a, b)
		}
		if a, b := headerShape(known.check.Header), headerShape(other.check.Header); a != b {
			t.Fatalf("check headers differ:\n%s\n%s", a, b)
		}
		if a, b := tokenRE.ReplaceAllString(string(known.check.Body), ""), tokenRE.ReplaceAllString(string(other.check.Body), ""); a != b {
			t.Fatalf("check bodies differ:\n%s\n---\n%s", a, b)
		}
	}
	h.deliver()
	all := h.mail.all()
	if len(all) != 1 || all[0].To != "alice@example.com" {
		t.Fatalf("messages sent: %+v", all)
	}
	// The unknown identifier did the same store work: a journey, a
	// challenge and a (dropped) outbox message.
	starts := h.audit("journey.start")
	outcomes := map[string]int{}
	for _, e := range starts {
		outcomes[e.Outcome]++
		if e.Detail != "" && strings.Contains(e.Detail, "nobody") {
			t.Fatalf("audit leaks the identifier: %+v", e)
		}
	}
	if outcomes["ok"] != 1 || outcomes["decoy"] != 2 {
		t.Fatalf("start outcomes: %v", outcomes)
	}
	// A decoy journey can never set a password, whatever is posted.
	b := plugintest.NewBrowser(t)
	check := b.Follow(h.start(b, "nobody@example.com"))
	for _, code := range []string{"00000000", "12345678"} {
		if p := b.Submit(check, "/recovery/verify", map[string]string{"code": code}); p.Status == http.StatusSeeOther {
			t.Fatalf("decoy accepted code %s", code)
		}
	}
}

// headerShape lists header names and values, with Set-Cookie and
// Content-Length values blanked (their values differ per request).
func headerShape(h http.Header) string {
	var lines []string
	for k, vs := range h {
		switch k {
		case "Set-Cookie", "Date", "Content-Length":
			lines = append(lines, k)
			continue
		}
		lines = append(lines, k+": "+strings.Join(vs, ","))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// TestRedirectsSayTheyHaveNoBody: the start flushes its redirect before
// its last steps (waking the outbox); without a length the answer went out
// in chunks, and the client waited for the closing chunk until those steps
// were done.
func TestRedirectsSayTheyHaveNoBody(t *testing.T) {
	h := newHarness(t)
	b := plugintest.NewBrowser(t)
	for _, id := range []string{"alice", "nobody@example.com"} {
		p := h.start(b, id)
		if p.Status != http.StatusSeeOther {
			t.Fatalf("start %s: status %d, want 303", id, p.Status)
		}
		if got := p.Header.Get("Content-Length"); got != "0" || len(p.Body) != 0 {
			t.Errorf("start %s: Content-Length %q, body %d bytes; want 0 and none", id, got, len(p.Body))
		}
	}
}

func TestSecurityHeadersOnEveryPage(t *testing.T) {
	h := newHarness(t)
	b := plugintest.NewBrowser(t)
	pages := []*plugintest.Page{
		b.Get(h.base + "/"),
		h.start(b, "alice"),
		b.Get(h.base + "/verify"),
		b.Get(h.base + "/password"),
		b.Get(h.base + "/link?token=nonsense"),
		b.Get(h.base + "/nope"),
		b.Post(h.base+"/verify", nil),
	}
	for _, p := range pages {
		hd := p.Header
		if hd.Get("Cache-Control") != "no-store" || hd.Get("Referrer-Policy") != "no-referrer" ||
			hd.Get("X-Content-Type-Options") != "nosniff" ||
			!strings.Contains(hd.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
			strings.Contains(hd.Get("Content-Security-Policy"), "unsafe-inline") {
			t.Errorf("%s: missing security headers: %v", p.URL.Path, hd)
		}
		if strings.Contains(string(p.Body), "<script") || strings.Contains(string(p.Body), " style=") {
			t.Errorf("%s: inline script or style", p.URL.Path)
		}
		if strings.Contains(strings.ToLower(string(p.Body)), "goroutine") || strings.Contains(string(p.Body), ".go:") {
			t.Errorf("%s: looks like a stack trace", p.URL.Path)
		}
	}
	// Cookie attributes.
	p := plugintest.NewBrowser(t).Get(h.base + "/")
	c := p.Header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Lax", "Path=/recovery/", "Max-Age=900"} {
		if !strings.Contains(c, want) {
			t.Errorf("cookie %q lacks %s", c, want)
		}
	}
}

func TestCSRFAndOrigin(t *testing.T) {
	h := newHarness(t)

	tests := []struct {
		name   string
		mutate func(url.Values, http.Header)
		want   int
	}{
		{"no token", func(v url.Values, _ http.Header) { v.Del("csrf") }, http.StatusForbidden},
		{"altered token", func(v url.Values, _ http.Header) {
			tok := []byte(v.Get("csrf"))
			tok[len(tok)/2] ^= 1 // a different base64url letter: the MAC no longer matches
			v.Set("csrf", string(tok))
		}, http.StatusForbidden},
		{"cross-site origin", func(_ url.Values, hd http.Header) { hd.Set("Origin", "https://evil.example") }, http.StatusForbidden},
		{"cross-site fetch", func(_ url.Values, hd http.Header) { hd.Set("Sec-Fetch-Site", "cross-site") }, http.StatusForbidden},
		{"null origin, same-origin fetch", func(_ url.Values, hd http.Header) {
			hd.Set("Origin", "null")
			hd.Set("Sec-Fetch-Site", "same-origin")
		}, http.StatusSeeOther},
		{"own origin", func(_ url.Values, hd http.Header) { hd.Set("Origin", h.srv.URL) }, http.StatusSeeOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := plugintest.NewBrowser(t)
			action, v := b.Get(h.base + "/").Form("/recovery/")
			v.Set("identifier", "alice")
			tt.mutate(v, b.Header)
			p := b.Post(action, v)
			if p.Status != tt.want {
				t.Fatalf("status %d, want %d: %s", p.Status, tt.want, p.Text())
			}
		})
	}
	// A token from another browser does not work either.
	action, values := plugintest.NewBrowser(t).Get(h.base + "/").Form("/recovery/")
	values.Set("identifier", "alice")
	other := plugintest.NewBrowser(t)
	other.Get(h.base + "/")
	if p := other.Post(action, values); p.Status != http.StatusForbidden {
		t.Fatalf("foreign token: %d", p.Status)
	}
}

func TestRateLimits(t *testing.T) {
	h := newHarness(t, func(c *plugin.Config) {
		c.Limits.StartsPerIP = plugin.Limit{N: 4, Window: time.Minute}
		c.Limits.StartsPerAccount = plugin.Limit{N: 2, Window: time.Hour}
	})
	b := plugintest.NewBrowser(t)
	for i := range 4 {
		if p := h.start(b, "alice"); p.Status != http.StatusSeeOther {
			t.Fatalf("start %d: %d", i, p.Status)
		}
	}
	// Per account: the third and fourth start answered like success but
	// sent nothing.
	h.deliver()
	if n := len(h.mail.to("alice@example.com")); n != 2 {
		t.Fatalf("messages after account limit: %d, want 2", n)
	}
	// Per IP: 429 with Retry-After.
	p := h.start(b, "alice")
	if p.Status != http.StatusTooManyRequests || p.Header.Get("Retry-After") == "" {
		t.Fatalf("over IP limit: %d Retry-After %q", p.Status, p.Header.Get("Retry-After"))
	}
	if !strings.Contains(p.Text(), "Too many attempts") {
		t.Fatalf("limit page: %s", p.Text())
	}
	// The window slides: two minutes later it works again.
	h.clock.Advance(2 * time.Minute)
	if p := h.start(b, "nobody"); p.Status != http.StatusSeeOther {
		t.Fatalf("after window: %d", p.Status)
	}
}

func TestPasswordStepGuarded(t *testing.T) {
	h := newHarness(t)
	b := plugintest.NewBrowser(t)
	check := b.Follow(h.start(b, "alice"))
	// The password form can't be reached, or posted to, before verifying.
	if p := b.Get(h.base + "/password"); p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/recovery/verify" {
		t.Fatalf("GET password early: %d %q", p.Status, p.Header.Get("Location"))
	}
	_, v := check.Form("/recovery/verify")
	v.Set("password", newPassword)
	v.Set("confirm", newPassword)
	if p := b.Post(h.base+"/password", v); p.Status != http.StatusSeeOther {
		t.Fatalf("POST password early: %d", p.Status)
	}
	if h.dir.password("u-alice") != "" {
		t.Fatal("password set without verification")
	}
}

func TestPasswordPolicyOnThePage(t *testing.T) {
	h := newHarness(t)
	if err := h.p.RecordPassword(t.Context(), "u-alice", "previous-winter-garden-gate"); err != nil {
		t.Fatal(err)
	}
	b := plugintest.NewBrowser(t)
	check := b.Follow(h.start(b, "alice"))
	h.deliver()
	_, code := h.resetMail("alice@example.com")
	pw := b.Follow(b.Submit(check, "/recovery/verify", map[string]string{"code": code}))
	tests := []struct {
		password, confirm, want string
	}{
		{"short", "short", "at least 15 characters"},
		{"P@ssw0rd2024!", "P@ssw0rd2024!", "too common"},
		{"alice-in-wonderland-2024", "alice-in-wonderland-2024", "username or email"},
		{"previous-winter-garden-gate", "previous-winter-garden-gate", "used this password recently"},
		{newPassword, newPassword + "x", "don't match"},
	}
	for _, tt := range tests {
		p := b.Submit(pw, "/recovery/password", map[string]string{"password": tt.password, "confirm": tt.confirm})
		if p.Status != http.StatusBadRequest || !strings.Contains(p.Text(), tt.want) {
			t.Errorf("%q: status %d, text %s", tt.password, p.Status, p.Text())
		}
		// The reason is tied to the field.
		inputs := p.Find(func(n *html.Node) bool { return plugintest.Attr(n, "aria-invalid") == "true" })
		if len(inputs) == 0 {
			t.Errorf("%q: no input marked invalid", tt.password)
		}
	}
	if h.dir.password("u-alice") != "" {
		t.Fatal("a refused password was set")
	}
	if p := b.Submit(pw, "/recovery/password", map[string]string{"password": newPassword, "confirm": newPassword}); p.Status != http.StatusSeeOther {
		t.Fatalf("good password: %d %s", p.Status, p.Text())
	}
}

func TestDirectoryFailureChangesNothingVisible(t *testing.T) {
	h := newHarness(t)
	h.dir.setErr = fmt.Errorf("ldap down: %w", plugin.ErrPasswordRejected)
	b := plugintest.NewBrowser(t)
	check := b.Follow(h.start(b, "alice"))
	h.deliver()
	_, code := h.resetMail("alice@example.com")
	pw := b.Follow(b.Submit(check, "/recovery/verify", map[string]string{"code": code}))
	p := b.Submit(pw, "/recovery/password", map[string]string{"password": newPassword, "confirm": newPassword})
	if p.Status != http.StatusInternalServerError || !strings.Contains(p.Text(), "old password still works") {
		t.Fatalf("directory failure: %d %s", p.Status, p.Text())
	}
	if strings.Contains(p.Text(), "ldap") {
		t.Fatal("internal error text reached the page")
	}
	h.clock.Advance(time.Minute) // past the completion hold
	h.deliver()
	for _, m := range h.mail.all() {
		if strings.Contains(m.Subject, "was changed") {
			t.Fatal("change notice sent although nothing changed")
		}
	}
	if h.dir.revoked["u-alice"] != 0 {
		t.Fatal("sessions revoked although nothing changed")
	}
}

func TestLinksIgnoreHostHeader(t *testing.T) {
	h := newHarness(t)
	b := plugintest.NewBrowser(t)
	page := b.Get(h.base + "/")
	action, values := page.Form("/recovery/")
	values.Set("identifier", "alice")
	req, err := http.NewRequest(http.MethodPost, action, strings.NewReader(values.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Host = "evil.example"
	req.Header.Set("X-Forwarded-Host", "evil.example")
	// The client would look cookies up for the Host header; send them by hand.
	for _, c := range b.Client.Jar.Cookies(req.URL) {
		req.AddCookie(c)
	}
	resp, err := (&http.Client{CheckRedirect: b.Client.CheckRedirect}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("start with foreign Host: %d", resp.StatusCode)
	}
	h.deliver()
	link, _ := h.resetMail("alice@example.com")
	if !strings.HasPrefix(link, h.base) || strings.Contains(link, "evil") {
		t.Fatalf("link %q built from the request", link)
	}
}

func TestReturnToAllowList(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		returnTo string
		want     string
	}{
		{h.srv.URL + "/login?authRequestID=42", h.srv.URL + "/login?authRequestID=42"},
		{"https://evil.example/login", h.srv.URL + "/signin"},
		{h.srv.URL + "/loginx", h.srv.URL + "/signin"},
		{h.srv.URL + "/login/../admin", h.srv.URL + "/signin"},
		{"javascript:alert(1)", h.srv.URL + "/signin"},
	}
	for _, tt := range tests {
		b := plugintest.NewBrowser(t)
		p := b.Get(h.base + "/?return_to=" + url.QueryEscape(tt.returnTo))
		links := p.Find(func(n *html.Node) bool { return n.Data == "a" && strings.Contains(plugintest.Attr(n, "href"), "/") })
		found := false
		for _, l := range links {
			if plugintest.Attr(l, "href") == tt.want {
				found = true
			}
			if strings.Contains(plugintest.Attr(l, "href"), "evil") || strings.HasPrefix(plugintest.Attr(l, "href"), "javascript") {
				t.Fatalf("%q: page links to %q", tt.returnTo, plugintest.Attr(l, "href"))
			}
		}
		if !found {
			t.Errorf("%q: no link to %q", tt.returnTo, tt.want)
		}
	}
}

func TestStoreKeepsNoSecrets(t *testing.T) {
	h := newHarness(t)
	b := plugintest.NewBrowser(t)
	check := b.Follow(h.start(b, "alice"))
	h.deliver()
	link, code := h.resetMail("alice@example.com")
	token := strings.SplitN(link, "token=", 2)[1]
	pw := b.Follow(b.Submit(check, "/recovery/verify", map[string]string{"code": code}))
	b.Submit(pw, "/recovery/password", map[string]string{"password": newPassword, "confirm": newPassword})
	// Neither the link token, the code nor the password is in any file of
	// the database (the database, its WAL and shared memory).
	files, err := filepath.Glob(filepath.Join(filepath.Dir(h.dbPath), "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("database files: %v %v", files, err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{token, code, newPassword} {
			if bytes.Contains(raw, []byte(secret)) {
				t.Errorf("%s holds a secret in clear (%d bytes)", filepath.Base(f), len(secret))
			}
		}
	}
}

func TestAccountFailureLimitLooksLikeAWrongCode(t *testing.T) {
	h := newHarness(t, func(c *plugin.Config) {
		c.Limits.FailuresPerAccount = plugin.Limit{N: 3, Window: 24 * time.Hour}
	})
	// Three wrong codes for alice in one journey reach her daily limit.
	b := plugintest.NewBrowser(t)
	page := b.Follow(h.start(b, "alice"))
	for range 3 {
		page = b.Submit(page, "/recovery/verify", map[string]string{"code": "00000000"})
	}
	// A new journey: even the right code is now answered exactly like a
	// wrong one, as for an identifier that matches nobody.
	b2 := plugintest.NewBrowser(t)
	check := b2.Follow(h.start(b2, "alice"))
	h.deliver()
	_, code := h.resetMail("alice@example.com")
	known := b2.Submit(check, "/recovery/verify", map[string]string{"code": code})
	b3 := plugintest.NewBrowser(t)
	unknown := b3.Submit(b3.Follow(h.start(b3, "nobody@example.com")), "/recovery/verify", map[string]string{"code": "12345678"})
	if known.Status != unknown.Status || known.Text() != unknown.Text() || !strings.Contains(known.Text(), "4 tries left") {
		t.Fatalf("limited account:\n%d %s\nunknown:\n%d %s", known.Status, known.Text(), unknown.Status, unknown.Text())
	}
	if h.dir.password("u-alice") != "" || strings.Contains(known.Text(), "today") {
		t.Fatal("the limit was bypassed or revealed")
	}
	limited := 0
	for _, e := range h.audit("verify.email") {
		if e.UserID == "u-alice" && e.Outcome == "limited" {
			limited++
		}
	}
	if limited != 1 {
		t.Fatalf("limited verifications in the audit trail: %d, want 1", limited)
	}
}

// TestVerifiesPerIPLimit: code submissions from one address are limited
// (429 with Retry-After, nothing counted against the code), links too, and
// the window slides.
func TestVerifiesPerIPLimit(t *testing.T) {
	h := newHarness(t, func(c *plugin.Config) {
		c.Limits.VerifiesPerIP = plugin.Limit{N: 3, Window: time.Minute}
	})
	b := plugintest.NewBrowser(t)
	check := b.Follow(h.start(b, "alice"))
	h.deliver()
	link, code := h.resetMail("alice@example.com")
	wrong := "00000000"
	if wrong == code {
		wrong = "11111111"
	}
	for i := range 3 {
		if p := b.Submit(check, "/recovery/verify", map[string]string{"code": wrong}); p.Status != http.StatusBadRequest {
			t.Fatalf("wrong code %d: %d", i, p.Status)
		}
	}
	// The fourth submission from this address, even the right code, is refused.
	p := b.Submit(check, "/recovery/verify", map[string]string{"code": code})
	if p.Status != http.StatusTooManyRequests || p.Header.Get("Retry-After") == "" || !strings.Contains(p.Text(), "Too many attempts") {
		t.Fatalf("over the verify limit: %d Retry-After %q %s", p.Status, p.Header.Get("Retry-After"), p.Text())
	}
	// A link posted from the same address is limited too.
	confirm := b.Get(link)
	if r := b.Submit(confirm, "/recovery/link", nil); r.Status != http.StatusTooManyRequests {
		t.Fatalf("link over the verify limit: %d %s", r.Status, r.Text())
	}
	// The refused tries were not counted against the code: after the window
	// one more wrong code leaves exactly 1 try, and the right code works.
	h.clock.Advance(2 * time.Minute)
	if p := b.Submit(check, "/recovery/verify", map[string]string{"code": wrong}); !strings.Contains(p.Text(), "You have 1 try left.") {
		t.Fatalf("tries after the limited ones: %s", p.Text())
	}
	ok := b.Submit(check, "/recovery/verify", map[string]string{"code": code})
	if ok.Status != http.StatusSeeOther || ok.Header.Get("Location") != "/recovery/password" {
		t.Fatalf("right code after the window: %d %q %s", ok.Status, ok.Header.Get("Location"), ok.Text())
	}
}

// TestBreachedPasswordRefused: with a breach checker (Password.Breach) a
// breached password is refused with its reason; a checker that fails
// refuses too (fail-closed) unless BreachFailOpen; a password the local
// rules refuse is never sent to the checker.
func TestBreachedPasswordRefused(t *testing.T) {
	var asked atomic.Int32
	var fail atomic.Bool
	checker := password.BreachCheckerFunc(func(_ context.Context, pw string) (bool, error) {
		asked.Add(1)
		if fail.Load() {
			return false, errors.New("range API down")
		}
		return pw == "correct horse battery staple", nil
	})
	run := func(failOpen bool) (*harness, *plugintest.Browser, *plugintest.Page) {
		h := newHarness(t, func(c *plugin.Config) {
			c.Password.Breach = checker
			c.Password.BreachFailOpen = failOpen
		})
		b := plugintest.NewBrowser(t)
		return h, b, b.Follow(h.emailStep(b, "alice", "alice@example.com"))
	}
	h, b, pw := run(false)
	short := b.Submit(pw, "/recovery/password", map[string]string{"password": "short", "confirm": "short"})
	if short.Status != http.StatusBadRequest || asked.Load() != 0 {
		t.Fatalf("too short: %d, checker asked %d times", short.Status, asked.Load())
	}
	bad := b.Submit(pw, "/recovery/password", map[string]string{"password": "correct horse battery staple", "confirm": "correct horse battery staple"})
	if bad.Status != http.StatusBadRequest || !strings.Contains(bad.Text(), "appeared in a data breach") || h.dir.password("u-alice") != "" {
		t.Fatalf("breached password: %d %s", bad.Status, bad.Text())
	}
	fail.Store(true)
	down := b.Submit(pw, "/recovery/password", map[string]string{"password": newPassword, "confirm": newPassword})
	if down.Status != http.StatusBadRequest || !strings.Contains(down.Text(), "can't check new passwords") || h.dir.password("u-alice") != "" {
		t.Fatalf("checker down, fail-closed: %d %s", down.Status, down.Text())
	}
	h, b, pw = run(true)
	ok := b.Submit(pw, "/recovery/password", map[string]string{"password": newPassword, "confirm": newPassword})
	if ok.Status != http.StatusSeeOther || h.dir.password("u-alice") != newPassword {
		t.Fatalf("checker down, fail-open: %d %s", ok.Status, ok.Text())
	}
}

// TestProductNameIsAContextWord: a password with the product's name in it
// is refused (ASVS V6.2.11).
func TestProductNameIsAContextWord(t *testing.T) {
	h := newHarness(t, func(c *plugin.Config) { c.ProductName = "Wonderland Bank" })
	b := plugintest.NewBrowser(t)
	pw := b.Follow(h.emailStep(b, "alice", "alice@example.com"))
	bad := b.Submit(pw, "/recovery/password", map[string]string{"password": "my-w0nderland-savings-forever", "confirm": "my-w0nderland-savings-forever"})
	if bad.Status != http.StatusBadRequest || !strings.Contains(bad.Text(), "name of this service or company") || h.dir.password("u-alice") != "" {
		t.Fatalf("product name in the password: %d %s", bad.Status, bad.Text())
	}
}

// TestPostsToADeadCodeDoNotCountForTheAccount: once a code is exhausted,
// further posts to it check nothing and count nowhere, so they cannot use
// up the account's daily failure budget and lock its owner out.
func TestPostsToADeadCodeDoNotCountForTheAccount(t *testing.T) {
	h := newHarness(t, func(c *plugin.Config) {
		c.Limits.FailuresPerAccount = plugin.Limit{N: 8, Window: 24 * time.Hour}
	})
	b := plugintest.NewBrowser(t)
	check := b.Follow(h.start(b, "alice"))
	for range 5 + 10 { // five wrong codes kill it; ten more hit a dead code
		b.Submit(check, "/recovery/verify", map[string]string{"code": "00000000"})
	}
	if evs := h.audit("verify.email"); len(evs) != 15 || evs[0].Detail != "challenge not usable" {
		t.Fatalf("audit: %d events, newest %+v", len(evs), evs[0])
	}
	// A new journey: the right code still works (5 of 8 failures used).
	b = plugintest.NewBrowser(t)
	if ok := h.emailStep(b, "alice", "alice@example.com"); ok.Header.Get("Location") != "/recovery/password" {
		t.Fatalf("the owner's right code after posts to a dead one: %d %s", ok.Status, ok.Text())
	}
}

// TestChannelStepLooksTheSameForEveryone: with email and SMS configured,
// the page after the start is the same for a user with both, a user with a
// phone only, and an unknown identifier: the first configured channel,
// with every other one offered; choosing SMS looks the same too, and only
// the real number gets a text.
func TestChannelStepLooksTheSameForEveryone(t *testing.T) {
	h := newHarness(t, func(c *plugin.Config) {
		mail, _ := email.New(email.Config{})
		text, err := sms.New(sms.Config{Store: c.Store, Keys: [][]byte{[]byte("sms test key, exactly 32 bytes!!")}})
		if err != nil {
			t.Fatal(err)
		}
		c.Flows = []flows.Flow{mail, text}
	})
	h.dir.users["u-alice"].phones = []string{"+447400123456"}
	h.dir.users["u-carol"].phones = []string{"+447400654321"}
	type result struct{ check, chosen *plugintest.Page }
	run := func(identifier string) result {
		b := plugintest.NewBrowser(t)
		check := b.Follow(h.start(b, identifier))
		return result{check: check, chosen: b.Follow(b.Submit(check, "/recovery/verify/method", map[string]string{"flow": "sms"}))}
	}
	both, phoneOnly, unknown := run("alice"), run("carol"), run("nobody@example.com")
	for name, other := range map[string]result{"phone only": phoneOnly, "unknown": unknown} {
		for step, pages := range map[string][2]*plugintest.Page{"check": {both.check, other.check}, "sms": {both.chosen, other.chosen}} {
			a, b := tokenRE.ReplaceAllString(string(pages[0].Body), ""), tokenRE.ReplaceAllString(string(pages[1].Body), "")
			if pages[0].Status != pages[1].Status || a != b {
				t.Fatalf("%s page of %s differs from a user with both channels:\n%s\n---\n%s", step, name, a, b)
			}
		}
	}
	if !strings.Contains(both.check.Text(), "Check your email") || !strings.Contains(both.check.Text(), "Text message") ||
		!strings.Contains(both.chosen.Text(), "Enter the code we texted you") {
		t.Fatalf("pages: %s\n%s", both.check.Text(), both.chosen.Text())
	}
	h.deliver()
	var to []string
	for _, m := range h.mail.all() {
		to = append(to, m.Channel+":"+m.To)
	}
	slices.Sort(to)
	if want := []string{"email:alice@example.com", "sms:+447400123456", "sms:+447400654321"}; !slices.Equal(to, want) {
		t.Fatalf("messages sent to %v, want %v", to, want)
	}
}
