package plugin_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	pqtotp "github.com/pquerna/otp/totp"
	"golang.org/x/net/html"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/email"
	"github.com/sspr-go/sspr/flows/recoverycodes"
	"github.com/sspr-go/sspr/flows/totp"
	"github.com/sspr-go/sspr/flows/webauthn"
	"github.com/sspr-go/sspr/flows/webauthn/webauthntest"
	"github.com/sspr-go/sspr/plugin"
	"github.com/sspr-go/sspr/plugin/plugintest"
)

// securityHarness has the real bound flows and a host session; alice has
// no factor yet.
func securityHarness(t *testing.T, mutate ...func(*plugin.Config)) *harness {
	t.Helper()
	gs := hostSession(t)
	h := newHarness(t, func(c *plugin.Config) {
		for _, m := range mutate {
			m(c)
		}
		mail, _ := email.New(email.Config{})
		tf, err := totp.New(totp.Config{Store: c.Store, Keys: [][]byte{[]byte("totp test key, exactly 32 bytes!")}, Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		rc, err := recoverycodes.New(recoverycodes.Config{Store: c.Store})
		if err != nil {
			t.Fatal(err)
		}
		pk, err := webauthn.New(webauthn.Config{Store: c.Store, RPID: "localhost", RPOrigins: []string{passkeyOrigin}, Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		c.Flows = []flows.Flow{mail, tf, rc, pk}
		c.Sessions = gs
	})
	h.mux.HandleFunc("/test-login", func(w http.ResponseWriter, r *http.Request) {
		age := time.Minute
		if r.URL.Query().Get("stale") != "" {
			age = time.Hour
		}
		_ = gs.RaiseSession(w, r, plugin.Session{UserID: "u-alice", AuthTime: h.clock.Now().Add(-age), AMR: strings.Fields("pwd " + r.URL.Query().Get("amr"))})
	})
	return h
}

func sectionText(p *plugintest.Page, id string) string {
	for _, n := range p.Find(func(n *html.Node) bool {
		return n.Data == "section" && plugintest.Attr(n, "aria-labelledby") == "h-"+id
	}) {
		var sb strings.Builder
		plugintest.Walk(n, func(c *html.Node) bool {
			if c.Type == html.TextNode {
				sb.WriteString(c.Data + " ")
			}
			return true
		})
		return strings.Join(strings.Fields(sb.String()), " ")
	}
	return ""
}

func TestSecurityInfoAddAndRemove(t *testing.T) {
	h := securityHarness(t)
	b := plugintest.NewBrowser(t)
	b.Get(h.srv.URL + "/test-login?stale=1")

	list := b.Get(h.base + "/account/security")
	if list.Status != http.StatusOK || !strings.Contains(sectionText(list, "totp"), "None yet") {
		t.Fatalf("security page: %d %s", list.Status, list.Text())
	}
	// Adding needs a fresh step-up: alice has no factor, so her email.
	step := b.Follow(pressStepUp(t, h, b, "/account/security/totp/add"))
	if !strings.Contains(step.Text(), "Check your email") || !strings.Contains(step.Text(), "to confirm it's you") || strings.Contains(step.Text(), "match an account") {
		t.Fatalf("step-up before adding: %s", step.Text())
	}
	h.deliver()
	code := h.stepUpMail("alice@example.com")
	add := b.Follow(b.Submit(step, "/recovery/verify", map[string]string{"code": code}))
	if !strings.Contains(add.Text(), "Add an authenticator app") {
		t.Fatalf("add page after step-up: %s", add.Text())
	}
	secret := ""
	for _, n := range add.Find(func(n *html.Node) bool { return plugintest.Attr(n, "class") == "secret" }) {
		secret = n.FirstChild.Data
	}
	imgs := add.Find(func(n *html.Node) bool { return plugintest.Attr(n, "class") == "qr" })
	if secret == "" || len(imgs) != 1 || !strings.HasPrefix(plugintest.Attr(imgs[0], "src"), "data:image/png;base64,") {
		t.Fatalf("add page shows no secret or QR code: %s", add.Text())
	}
	// A wrong code is refused, and the same secret stays on the page.
	bad := b.Submit(add, "/recovery/account/security/totp/add", map[string]string{"code": "000000", "name": "Phone"})
	if bad.Status != http.StatusBadRequest || !strings.Contains(bad.Text(), "didn't work") || !strings.Contains(bad.Text(), secret) {
		t.Fatalf("wrong enrolment code: %d %s", bad.Status, bad.Text())
	}
	right, err := pqtotp.GenerateCode(secret, h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	ok := b.Submit(bad, "/recovery/account/security/totp/add", map[string]string{"code": right, "name": "Phone"})
	if ok.Status != http.StatusOK || !strings.Contains(ok.Text(), "Authenticator app added") {
		t.Fatalf("enrolment: %d %s", ok.Status, ok.Text())
	}
	list = b.Get(h.base + "/account/security")
	if s := sectionText(list, "totp"); !strings.Contains(s, "Phone") {
		t.Fatalf("totp section after adding: %s", s)
	}
	// alice has MFA now: the email step-up no longer counts, the next
	// change asks for the app (a later code: the enrolment spent this one).
	step = b.Follow(pressStepUp(t, h, b, "/account/security/recovery-codes/add"))
	if !strings.Contains(step.Text(), "authenticator app") {
		t.Fatalf("step-up of an MFA user: %s", step.Text())
	}
	h.clock.Advance(30 * time.Second)
	next, err := pqtotp.GenerateCode(secret, h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Recovery codes: shown once, ten of them.
	conf := b.Follow(b.Submit(step, "/recovery/verify", map[string]string{"code": next}))
	codes := b.Submit(conf, "/recovery/account/security/recovery-codes/add", nil)
	if n := len(codes.Find(func(n *html.Node) bool { return n.Data == "code" })); n != 10 {
		t.Fatalf("recovery codes shown: %d\n%s", n, codes.Text())
	}
	if s := sectionText(b.Get(h.base+"/account/security"), "recovery-codes"); !strings.Contains(s, "10 left") {
		t.Fatalf("recovery codes section: %s", s)
	}
	// A passkey, with the software authenticator.
	pk := b.Get(h.base + "/account/security/webauthn/add")
	opts := pk.Find(func(n *html.Node) bool { return plugintest.Attr(n, "id") == "webauthn-options" })
	if len(opts) != 1 {
		t.Fatalf("passkey page: %s", pk.Text())
	}
	att, err := webauthntest.New(passkeyOrigin).Create([]byte(opts[0].FirstChild.Data))
	if err != nil {
		t.Fatal(err)
	}
	if p := b.Submit(pk, "/recovery/account/security/webauthn/add", map[string]string{"attestation": string(att), "name": "Laptop"}); !strings.Contains(p.Text(), "Passkey added") {
		t.Fatalf("passkey enrolment: %d %s", p.Status, p.Text())
	}
	// Removing the app.
	list = b.Get(h.base + "/account/security")
	_, v := list.Form("/recovery/account/security/totp/remove")
	if p := b.Post(h.base+"/account/security/totp/remove", v); p.Header.Get("Location") != "/recovery/account/security?done=removed" {
		t.Fatalf("remove: %d %s", p.Status, p.Text())
	}
	if s := sectionText(b.Get(h.base+"/account/security"), "totp"); !strings.Contains(s, "None yet") {
		t.Fatalf("after removing: %s", s)
	}
	// Every change was emailed and audited.
	h.deliver()
	var subjects []string
	for _, m := range h.mail.to("alice@example.com") {
		subjects = append(subjects, m.Subject)
	}
	all := strings.Join(subjects, "\n")
	if strings.Count(all, "was added") != 3 || strings.Count(all, "was removed") != 1 {
		t.Fatalf("notices: %s", all)
	}
	if len(h.audit("factor.added")) != 3 || len(h.audit("factor.removed")) != 1 {
		t.Fatal("audit trail of the changes is incomplete")
	}
}

func TestSecurityChangesNeedFreshStepUpAndCSRF(t *testing.T) {
	h := securityHarness(t)
	b := plugintest.NewBrowser(t)
	b.Get(h.srv.URL + "/test-login")
	// Fresh session: add recovery codes.
	conf := b.Get(h.base + "/account/security/recovery-codes/add")
	b.Submit(conf, "/recovery/account/security/recovery-codes/add", nil)
	list := b.Get(h.base + "/account/security")
	action, v := list.Form("/recovery/account/security/recovery-codes/remove")
	// No CSRF token: refused.
	bad := v
	bad.Del("csrf")
	if p := b.Post(action, bad); p.Status != http.StatusForbidden {
		t.Fatalf("remove without CSRF: %d", p.Status)
	}
	// Six minutes later the step-up is too old: nothing is removed.
	h.clock.Advance(6 * time.Minute)
	_, v = list.Form("/recovery/account/security/recovery-codes/remove")
	if p := b.Post(action, v); !strings.Contains(p.Text(), "Confirm it's you") {
		t.Fatalf("stale remove: %d %s", p.Status, p.Text())
	}
	if s := sectionText(b.Get(h.base+"/account/security"), "recovery-codes"); !strings.Contains(s, "10 left") {
		t.Fatalf("codes after a stale remove: %s", s)
	}
	// Another user's factor can't be removed (the ID is checked).
	b.Get(h.srv.URL + "/test-login?amr=otp+mfa")
	list = b.Get(h.base + "/account/security")
	_, v = list.Form("/recovery/account/security/recovery-codes/remove")
	v.Set("factor", "somebody-else")
	if p := b.Post(action, v); p.Status != http.StatusNotFound {
		t.Fatalf("foreign factor: %d", p.Status)
	}
	// Signed out: no page at all.
	if p := plugintest.NewBrowser(t).Get(h.base + "/account/security"); p.Status != http.StatusUnauthorized {
		t.Fatalf("anonymous: %d", p.Status)
	}
}

// TestSignOutEverywhereElse (ASVS V7.4.3): the security-info page offers to
// end the user's other sessions, first thing after a change of a method;
// the POST needs CSRF, revokes through the host, keeps this browser signed
// in and is audited.
func TestSignOutEverywhereElse(t *testing.T) {
	h := securityHarness(t)
	b := plugintest.NewBrowser(t)
	b.Get(h.srv.URL + "/test-login?stale=1")
	page := b.Get(h.base + "/account/security")
	if !strings.Contains(sectionText(page, "sessions"), "Sign out everywhere else") {
		t.Fatalf("no offer to sign out elsewhere: %s", page.Text())
	}
	for _, done := range []string{"removed", "added"} {
		after := b.Get(h.base + "/account/security?done=" + done)
		if !strings.Contains(sectionText(after, "sessions"), "You changed how you prove it's you") {
			t.Fatalf("after a method was %s: %s", done, sectionText(after, "sessions"))
		}
		// Put first: before the list of methods.
		if i, j := strings.Index(string(after.Body), `aria-labelledby="h-sessions"`), strings.Index(string(after.Body), `aria-labelledby="h-totp"`); i < 0 || i > j {
			t.Fatalf("after a method was %s the offer to sign out elsewhere is not first", done)
		}
	}
	// Without a CSRF token nothing happens.
	if p := b.Post(h.base+"/account/security/signout-others", nil); p.Status != http.StatusForbidden || h.dir.revocations("u-alice") != 0 {
		t.Fatalf("POST without CSRF: %d, revocations %d", p.Status, h.dir.revocations("u-alice"))
	}
	done := b.Submit(page, "/recovery/account/security/signout-others", nil)
	if done.Status != http.StatusSeeOther || h.dir.revocations("u-alice") != 1 {
		t.Fatalf("sign out elsewhere: %d, revocations %d", done.Status, h.dir.revocations("u-alice"))
	}
	back := b.Follow(done)
	if back.Status != http.StatusOK || !strings.Contains(back.Text(), "You were signed out everywhere except here") {
		t.Fatalf("this browser after signing out the others: %d %s", back.Status, back.Text())
	}
	if evs := h.audit("sessions.revoke"); len(evs) != 1 || evs[0].Outcome != "ok" || !strings.Contains(evs[0].Detail, "other sessions") {
		t.Fatalf("audit: %+v", evs)
	}
}
