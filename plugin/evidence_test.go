package plugin_test

// Tests that close the gaps listed in EVIDENCE.md: the password page's
// inputs, what an email step-up adds to the host session, removing a
// passkey, codes bound to their journey, key rotation, the password
// history and the policy options.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/net/html"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/email"
	"github.com/sspr-go/sspr/flows/sms"
	"github.com/sspr-go/sspr/plugin"
	"github.com/sspr-go/sspr/plugin/notify"
	"github.com/sspr-go/sspr/plugin/password"
	"github.com/sspr-go/sspr/plugin/plugintest"
	"github.com/sspr-go/sspr/plugin/store"
)

// pasteBlockers are what a script needs to get in the way of pasting or of
// a password manager: clipboard and drop events, cancelling input, or
// changing the inputs' autocomplete, readonly or maxlength.
var pasteBlockers = regexp.MustCompile(`(?i)paste|clipboard|\bcopy\b|\bcut\b|drop|preventDefault|returnValue|keydown|keypress|beforeinput|autocomplete|readonly|maxlength|maxLength`)

// checkPasswordInputs asserts ASVS V6.2.6, V6.2.7 and V6.2.8 on a page
// with a new-password form: both inputs are type=password with
// autocomplete=new-password and no maxlength below the server's limit (in
// UTF-16 code units, which browsers count), a username field tells password
// managers whose password it is, no inline script or event handler is on
// the page, and no script it loads handles paste, drop, clipboard or
// keystrokes.
func checkPasswordInputs(t *testing.T, b *plugintest.Browser, page *plugintest.Page, username string) {
	t.Helper()
	if page.Status != http.StatusOK {
		t.Fatalf("password page: %d %s", page.Status, page.Text())
	}
	for _, name := range []string{"password", "confirm"} {
		in := page.Find(func(n *html.Node) bool { return n.Data == "input" && plugintest.Attr(n, "name") == name })
		if len(in) != 1 {
			t.Fatalf("%d inputs named %q", len(in), name)
		}
		if got := plugintest.Attr(in[0], "type"); got != "password" {
			t.Errorf("%s: type=%q, want password (V6.2.6)", name, got)
		}
		if got := plugintest.Attr(in[0], "autocomplete"); got != "new-password" {
			t.Errorf("%s: autocomplete=%q, want new-password (V6.2.7)", name, got)
		}
		if hasAttr(in[0], "maxlength") {
			// A maxlength must let through MaxLength code points of any
			// plane: 2 UTF-16 code units each.
			if n, err := strconv.Atoi(plugintest.Attr(in[0], "maxlength")); err != nil || n < 2*password.DefaultMaxLength {
				t.Errorf("%s: maxlength=%q cuts pasted passwords the server accepts (V6.2.8)", name, plugintest.Attr(in[0], "maxlength"))
			}
		}
		for _, a := range []string{"readonly", "onpaste", "oncopy", "ondrop", "onkeydown", "oninput"} {
			if hasAttr(in[0], a) {
				t.Errorf("%s: has %s", name, a)
			}
		}
	}
	user := page.Find(func(n *html.Node) bool {
		return n.Data == "input" && plugintest.Attr(n, "autocomplete") == "username"
	})
	if len(user) != 1 || plugintest.Attr(user[0], "value") != username {
		t.Errorf("no username field with %q for password managers", username)
	}
	var srcs []string
	for _, n := range page.Find(func(*html.Node) bool { return true }) {
		for _, a := range n.Attr {
			if strings.HasPrefix(strings.ToLower(a.Key), "on") {
				t.Errorf("<%s> has an event handler attribute %s", n.Data, a.Key)
			}
		}
		if n.Data != "script" {
			continue
		}
		if plugintest.Attr(n, "src") == "" {
			t.Errorf("inline script on the password page")
			continue
		}
		srcs = append(srcs, plugintest.Attr(n, "src"))
	}
	for _, src := range srcs {
		u, err := page.URL.Parse(src)
		if err != nil {
			t.Fatal(err)
		}
		js := b.Get(u.String())
		if js.Status != http.StatusOK || len(js.Body) == 0 {
			t.Fatalf("script %s: %d", src, js.Status)
		}
		if m := pasteBlockers.FindString(string(js.Body)); m != "" {
			t.Errorf("script %s mentions %q: it may block pasting or password managers", src, m)
		}
	}
}

// TestPasswordInputsAllowPasteAndManagers (ASVS V6.2.6, V6.2.7, V6.2.8):
// the reset's and the signed-in change's password pages, and a password of
// exactly MaxLength code points (emoji, spaces at both ends) pasted into
// the reset form is set as received.
func TestPasswordInputsAllowPasteAndManagers(t *testing.T) {
	t.Run("reset", func(t *testing.T) {
		h := newHarness(t)
		b := plugintest.NewBrowser(t)
		check := b.Follow(h.start(b, "alice"))
		h.deliver()
		_, code := h.resetMail("alice@example.com")
		page := b.Follow(b.Submit(check, "/recovery/verify", map[string]string{"code": code}))
		checkPasswordInputs(t, b, page, "alice")

		long := " Zebra 🦓 crossing grün dusk, Kite 🪁 over the harbour; "
		for utf8.RuneCountInString(long) < password.DefaultMaxLength {
			long += string([]rune(" lantern 🏮 moss")[utf8.RuneCountInString(long)%15])
		}
		if utf8.RuneCountInString(long) != password.DefaultMaxLength {
			t.Fatalf("test password has %d code points", utf8.RuneCountInString(long))
		}
		done := b.Submit(page, "/recovery/password", map[string]string{"password": long, "confirm": long})
		if done.Header.Get("Location") != "/recovery/done" || h.dir.password("u-alice") != long {
			t.Fatalf("a %d-code-point password was not set as received: %d %s; got %q", password.DefaultMaxLength, done.Status, done.Text(), h.dir.password("u-alice"))
		}
	})
	t.Run("signed-in change", func(t *testing.T) {
		h, _, _ := stepUpHarness(t)
		b := plugintest.NewBrowser(t)
		signInAs(t, h, b, "u-alice", time.Minute, "pwd otp mfa")
		checkPasswordInputs(t, b, b.Get(h.base+"/account/password"), "alice")
	})
}

// raiseRecorder is the host session of the tests that also records what
// sspr writes into it.
type raiseRecorder struct {
	plugin.GorillaSession
	mu     sync.Mutex
	raised []plugin.Session
}

func (r *raiseRecorder) RaiseSession(w http.ResponseWriter, req *http.Request, s plugin.Session) error {
	r.mu.Lock()
	r.raised = append(r.raised, s)
	r.mu.Unlock()
	return r.GorillaSession.RaiseSession(w, req, s)
}

func (r *raiseRecorder) calls() []plugin.Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.raised)
}

// TestEmailStepUpAddsNoAMR (DESIGN "email is a recovery channel, not an
// authenticator"; ASVS V6.3.6): a user without MFA who confirms a change
// with an emailed code gets a fresh auth_time in the host session, and no
// "amr" value: not "otp", not "mfa".
func TestEmailStepUpAddsNoAMR(t *testing.T) {
	rec := &raiseRecorder{GorillaSession: hostSession(t)}
	h := newHarness(t, func(c *plugin.Config) { c.Sessions = rec })
	h.mux.HandleFunc("/test-login", func(w http.ResponseWriter, r *http.Request) {
		_ = rec.GorillaSession.RaiseSession(w, r, plugin.Session{UserID: "u-alice", AuthTime: h.clock.Now().Add(-time.Hour), AMR: []string{"pwd"}})
	})
	b := plugintest.NewBrowser(t)
	b.Get(h.srv.URL + "/test-login")
	step := b.Follow(pressStepUp(t, h, b, "/account/password"))
	if !strings.Contains(step.Text(), "Check your email") {
		t.Fatalf("step-up of a user without MFA: %s", step.Text())
	}
	h.clock.Advance(time.Minute)
	h.deliver()
	back := b.Submit(step, "/recovery/verify", map[string]string{"code": h.stepUpMail("alice@example.com")})
	if back.Status != http.StatusSeeOther || back.Header.Get("Location") != h.base+"/account/password" {
		t.Fatalf("after the email step-up: %d %q %s", back.Status, back.Header.Get("Location"), back.Text())
	}
	calls := rec.calls()
	if len(calls) != 1 {
		t.Fatalf("RaiseSession called %d times, want 1", len(calls))
	}
	got := calls[0]
	if got.UserID != "u-alice" || !got.AuthTime.Equal(h.clock.Now()) || !slices.Equal(got.AMR, []string{"pwd"}) {
		t.Fatalf("raised session: %+v, want u-alice, auth_time now, amr [pwd] only", got)
	}
	// The change page now opens, and the change keeps the session as it is.
	form := b.Follow(back)
	if !strings.Contains(form.Text(), "Change your password") {
		t.Fatalf("change page after the step-up: %s", form.Text())
	}
	done := b.Submit(form, "/recovery/account/password", map[string]string{"password": "quiet-river-stone-path", "confirm": "quiet-river-stone-path"})
	if done.Status != http.StatusOK || h.dir.password("u-alice") != "quiet-river-stone-path" {
		t.Fatalf("change: %d %s", done.Status, done.Text())
	}
	for i, s := range rec.calls() {
		if !slices.Equal(s.AMR, []string{"pwd"}) {
			t.Fatalf("RaiseSession call %d: amr %v", i, s.AMR)
		}
	}
}

// TestRemovePasskey (ASVS V6.5.6): a passkey is removed on the
// security-info page after a fresh step-up (with the passkey itself); it
// is gone from the page and the store, a reset no longer asks for it, the
// user is told at every address and the change is audited.
func TestRemovePasskey(t *testing.T) {
	h, a := passkeyHarness(t)
	b := plugintest.NewBrowser(t)
	b.Get(h.srv.URL + "/test-login?uid=u-alice") // an hour old: stale
	list := b.Get(h.base + "/account/security")
	if s := sectionText(list, "webauthn"); !strings.Contains(s, "Laptop") {
		t.Fatalf("passkey section: %s", s)
	}
	// A stale session: the removal asks to confirm it's you first, and
	// removes nothing.
	action, v := list.Form("/recovery/account/security/webauthn/remove")
	ask := b.Post(action, v)
	if !strings.Contains(ask.Text(), "Confirm it's you") {
		t.Fatalf("stale removal: %d %s", ask.Status, ask.Text())
	}
	if fs, err := h.store.Factors(t.Context(), "u-alice", "webauthn"); err != nil || len(fs) != 1 {
		t.Fatalf("factors after a stale removal: %d %v", len(fs), err)
	}
	started := b.Submit(ask, "/recovery/account/security", nil)
	if started.Status != http.StatusSeeOther || started.Header.Get("Location") != "/recovery/verify" {
		t.Fatalf("step-up button of a stale removal: %d %q %s", started.Status, started.Header.Get("Location"), started.Text())
	}
	step := b.Follow(started)
	back := usePasskey(t, b, step, a)
	if back.Header.Get("Location") != h.base+"/account/security" {
		t.Fatalf("after the passkey step-up: %d %q %s", back.Status, back.Header.Get("Location"), back.Text())
	}
	list = b.Follow(back)
	action, v = list.Form("/recovery/account/security/webauthn/remove")
	removed := b.Post(action, v)
	if removed.Status != http.StatusSeeOther || removed.Header.Get("Location") != "/recovery/account/security?done=removed" {
		t.Fatalf("remove: %d %q %s", removed.Status, removed.Header.Get("Location"), removed.Text())
	}
	if s := sectionText(b.Follow(removed), "webauthn"); !strings.Contains(s, "None yet") || strings.Contains(s, "Laptop") {
		t.Fatalf("passkey section after removal: %s", s)
	}
	if fs, err := h.store.Factors(t.Context(), "u-alice", "webauthn"); err != nil || len(fs) != 0 {
		t.Fatalf("factors after removal: %d %v", len(fs), err)
	}
	h.deliver()
	for _, addr := range []string{"alice@example.com", "alice.backup@example.org"} {
		n := 0
		for _, m := range h.mail.to(addr) {
			if strings.Contains(m.Subject, "was removed") && strings.Contains(m.Text, "Passkey") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s got %d removal notices, want 1", addr, n)
		}
	}
	if evs := h.audit("factor.removed"); len(evs) != 1 || evs[0].UserID != "u-alice" || evs[0].Detail != "webauthn" || evs[0].Outcome != "ok" {
		t.Fatalf("audit: %+v", evs)
	}
	// A reset no longer asks for the passkey: email alone is enough now.
	b2 := plugintest.NewBrowser(t)
	if after := h.emailStep(b2, "alice", "alice@example.com"); after.Header.Get("Location") != "/recovery/password" {
		t.Fatalf("reset after removing the passkey: %d %q", after.Status, after.Header.Get("Location"))
	}
}

// TestEmailCodeBoundToItsJourney (ASVS V6.6.2): the code mailed for
// journey A is refused in journey B of the same user, counted there as a
// wrong code, and still works in A; B's own code works in B.
func TestEmailCodeBoundToItsJourney(t *testing.T) {
	h := newHarness(t)
	a, bb := plugintest.NewBrowser(t), plugintest.NewBrowser(t)
	pageA := a.Follow(h.start(a, "alice"))
	h.deliver()
	_, codeA := h.resetMail("alice@example.com")
	pageB := bb.Follow(h.start(bb, "alice"))
	h.deliver()
	_, codeB := h.resetMail("alice@example.com")
	if codeA == codeB {
		t.Skip("the two journeys drew the same code (1 in 10^8)")
	}
	wrong := bb.Submit(pageB, "/recovery/verify", map[string]string{"code": codeA})
	if wrong.Status != http.StatusBadRequest || !strings.Contains(wrong.Text(), "You have 4 tries left.") {
		t.Fatalf("A's code in B: %d %s", wrong.Status, wrong.Text())
	}
	if evs := h.audit("verify.email"); len(evs) != 1 || evs[0].Outcome != "failed" {
		t.Fatalf("audit of A's code in B: %+v", evs)
	}
	if ok := a.Submit(pageA, "/recovery/verify", map[string]string{"code": codeA}); ok.Header.Get("Location") != "/recovery/password" {
		t.Fatalf("A's code in A: %d %s", ok.Status, ok.Text())
	}
	// B counted the try: its own code works, with one try fewer left
	// before.
	if ok := bb.Submit(wrong, "/recovery/verify", map[string]string{"code": codeB}); ok.Header.Get("Location") != "/recovery/password" {
		t.Fatalf("B's code in B: %d %s", ok.Status, ok.Text())
	}
}

var smsCodeRE = regexp.MustCompile(`\b(\d{8})\b`)

// smsHarness is a harness with the email and SMS flows; alice's host
// directory also lists a mobile number.
func smsHarness(t *testing.T, mutate ...func(*plugin.Config)) *harness {
	t.Helper()
	h := newHarness(t, append([]func(*plugin.Config){func(c *plugin.Config) {
		mail, _ := email.New(email.Config{})
		text, err := sms.New(sms.Config{Store: c.Store, Keys: [][]byte{[]byte("sms test key, exactly 32 bytes!!")}})
		if err != nil {
			t.Fatal(err)
		}
		c.Flows = []flows.Flow{mail, text}
	}}, mutate...)...)
	h.dir.users["u-alice"].phones = []string{"+491701234567"}
	return h
}

// secondStep proves alice's email in a new browser and returns the page
// that follows.
func secondStep(t *testing.T, h *harness) (*plugintest.Browser, *plugintest.Page) {
	t.Helper()
	b := plugintest.NewBrowser(t)
	return b, b.Follow(h.emailStep(b, "alice", "alice@example.com"))
}

// TestRequireDifferentKinds: with two methods required, a second contact
// channel (a text message after the email) counts unless
// RequireDifferentKinds is set; then it is neither offered nor accepted,
// and a user with no other kind of method is sent to the helpdesk.
func TestRequireDifferentKinds(t *testing.T) {
	t.Run("same kind counts without the option", func(t *testing.T) {
		h := smsHarness(t, func(c *plugin.Config) { c.MethodsRequired = 2 })
		b, code := secondStep(t, h)
		if !strings.Contains(code.Text(), "Enter the code we texted you") {
			t.Fatalf("second method: %s", code.Text())
		}
		h.deliver()
		msgs := h.mail.to("+491701234567")
		if len(msgs) != 1 {
			t.Fatalf("text messages: %d", len(msgs))
		}
		m := smsCodeRE.FindStringSubmatch(msgs[0].Text)
		if m == nil {
			t.Fatalf("no code in %q", msgs[0].Text)
		}
		if ok := b.Submit(code, "/recovery/verify", map[string]string{"code": m[1]}); ok.Header.Get("Location") != "/recovery/password" {
			t.Fatalf("email and SMS with two methods required: %d %q %s", ok.Status, ok.Header.Get("Location"), ok.Text())
		}
	})
	t.Run("same kind refused with the option", func(t *testing.T) {
		h := smsHarness(t, func(c *plugin.Config) {
			c.MethodsRequired = 2
			c.RequireDifferentKinds = true
			c.HelpURL = "https://help.example/reset"
		})
		b := plugintest.NewBrowser(t)
		check := b.Follow(h.start(b, "alice"))
		h.deliver()
		_, code := h.resetMail("alice@example.com")
		page := b.Follow(b.Submit(check, "/recovery/verify", map[string]string{"code": code}))
		if strings.Contains(page.Text(), "Text message") || !strings.Contains(page.Text(), "Contact your helpdesk") {
			t.Fatalf("second method of the same kind offered: %s", page.Text())
		}
		// Asking for it anyway (with a CSRF token of this journey) begins
		// nothing and opens nothing.
		_, v := check.Form("/recovery/verify")
		v.Set("flow", "sms")
		b.Follow(b.Post(h.base+"/verify/method", v))
		h.deliver()
		if n := len(h.mail.to("+491701234567")); n != 0 {
			t.Fatalf("a text message was sent: %d", n)
		}
		if p := b.Get(h.base + "/verify?flow=sms"); strings.Contains(p.Text(), "Enter the code we texted you") {
			t.Fatalf("SMS page by URL: %s", p.Text())
		}
		if p := b.Get(h.base + "/password"); p.Header.Get("Location") != "/recovery/verify" {
			t.Fatalf("password page after two channels: %d", p.Status)
		}
	})
	t.Run("different kinds satisfy the option", func(t *testing.T) {
		h, _, _ := mfaHarness(t, func(c *plugin.Config) {
			c.MethodsRequired = 2
			c.RequireDifferentKinds = true
		})
		b, page := secondStep(t, h)
		if ok := b.Submit(page, "/recovery/verify", map[string]string{"code": "246810"}); ok.Header.Get("Location") != "/recovery/password" {
			t.Fatalf("email and a bound factor: %d %s", ok.Status, ok.Text())
		}
	})
}

// TestAdministratorsNeedDifferentKinds: an administrator always needs two
// methods of different kinds, even when the configuration asks for one:
// email and a text message are not enough.
func TestAdministratorsNeedDifferentKinds(t *testing.T) {
	dir := adminDirectory{directory: newDirectory(), admins: map[string]bool{"u-alice": true}}
	h := smsHarness(t, func(c *plugin.Config) { c.Directory = dir })
	h.dir = dir.directory
	h.dir.users["u-alice"].phones = []string{"+491701234567"}
	_, page := secondStep(t, h)
	if strings.Contains(page.Text(), "Text message") || !strings.Contains(page.Text(), "Contact your helpdesk") {
		t.Fatalf("administrator after email, with a phone: %s", page.Text())
	}
	// A user who is not an administrator needs only the email.
	delete(dir.admins, "u-alice")
	b := plugintest.NewBrowser(t)
	if after := h.emailStep(b, "alice", "alice@example.com"); after.Header.Get("Location") != "/recovery/password" {
		t.Fatalf("non-administrator after email: %d %q", after.Status, after.Header.Get("Location"))
	}
}

// resetAliceTo runs a whole reset of alice's password to pw, a day after
// the previous one (so that no limit interferes), and returns the answer
// to the password form.
func resetAliceTo(t *testing.T, h *harness, pw string) *plugintest.Page {
	t.Helper()
	h.clock.Advance(24 * time.Hour)
	b := plugintest.NewBrowser(t)
	page := b.Follow(h.emailStep(b, "alice", "alice@example.com"))
	if !strings.Contains(page.Text(), "Choose a new password") {
		t.Fatalf("password page: %s", page.Text())
	}
	return b.Submit(page, "/recovery/password", map[string]string{"password": pw, "confirm": pw})
}

// TestPasswordHistoryKeepsFive (DESIGN "the last 5 passwords"): each
// completed reset records its password; a reset to any of the last five is
// refused with its reason, the sixth one back is accepted again. The
// history keys share one salt per user (one argon2id per check).
func TestPasswordHistoryKeepsFive(t *testing.T) {
	h := newHarness(t)
	pws := []string{"first-amber-meadow-walk", "second-amber-meadow-walk", "third-amber-meadow-walk",
		"fourth-amber-meadow-walk", "fifth-amber-meadow-walk", "sixth-amber-meadow-walk"}
	for i, pw := range pws[:5] {
		if p := resetAliceTo(t, h, pw); p.Header.Get("Location") != "/recovery/done" {
			t.Fatalf("reset %d: %d %s", i, p.Status, p.Text())
		}
		hist, err := h.store.PasswordHistory(t.Context(), "u-alice")
		if err != nil || len(hist.Keys) != i+1 {
			t.Fatalf("history after reset %d: %d keys, %v", i, len(hist.Keys), err)
		}
	}
	// The newest and the oldest of the five are refused.
	for _, pw := range []string{pws[4], pws[0]} {
		p := resetAliceTo(t, h, pw)
		if p.Status != http.StatusBadRequest || !strings.Contains(p.Text(), "used this password recently") {
			t.Fatalf("reuse of %q: %d %s", pw, p.Status, p.Text())
		}
	}
	if p := resetAliceTo(t, h, pws[5]); p.Header.Get("Location") != "/recovery/done" {
		t.Fatalf("sixth reset: %d %s", p.Status, p.Text())
	}
	hist, err := h.store.PasswordHistory(t.Context(), "u-alice")
	if err != nil || len(hist.Keys) != password.DefaultHistorySize {
		t.Fatalf("history: %d keys, %v", len(hist.Keys), err)
	}
	// pws[0] is now six passwords back: allowed again. pws[1] is not.
	if p := resetAliceTo(t, h, pws[1]); p.Status != http.StatusBadRequest {
		t.Fatalf("fifth previous password: %d %s", p.Status, p.Text())
	}
	if p := resetAliceTo(t, h, pws[0]); p.Header.Get("Location") != "/recovery/done" || h.dir.password("u-alice") != pws[0] {
		t.Fatalf("sixth previous password: %d %s", p.Status, p.Text())
	}
}

// callLog records store calls as "Method qualifier" lines.
type callLog struct {
	mu    sync.Mutex
	calls []string
	on    bool
}

func (l *callLog) add(call string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.on {
		l.calls = append(l.calls, call)
	}
}

// record runs fn and returns the calls it made, sorted.
func (l *callLog) record(fn func()) []string {
	l.mu.Lock()
	l.calls, l.on = nil, true
	l.mu.Unlock()
	fn()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.on = false
	out := slices.Clone(l.calls)
	slices.Sort(out)
	return out
}

// limitScope strips the keyed hash from a rate-limit key, leaving its
// scope ("start-ip", "dest:email").
func limitScope(key string) string {
	if i := strings.LastIndexByte(key, ':'); i >= 0 {
		return key[:i]
	}
	return key
}

// recordingTx records every call that writes to the store, with what it
// writes (a counter's scope, an audit event's name, a message's channel, a
// challenge's flow), and the reads.
type recordingTx struct {
	store.Tx
	log *callLog
}

func (r recordingTx) CreateJourney(ctx context.Context, j store.Journey) error {
	r.log.add("CreateJourney " + j.Kind)
	return r.Tx.CreateJourney(ctx, j)
}

func (r recordingTx) UpdateJourney(ctx context.Context, j store.Journey) error {
	r.log.add("UpdateJourney")
	return r.Tx.UpdateJourney(ctx, j)
}

func (r recordingTx) CompleteJourney(ctx context.Context, id string, now time.Time) error {
	r.log.add("CompleteJourney")
	return r.Tx.CompleteJourney(ctx, id, now)
}

func (r recordingTx) CreateChallenge(ctx context.Context, c store.Challenge) error {
	r.log.add("CreateChallenge " + c.Flow)
	return r.Tx.CreateChallenge(ctx, c)
}

func (r recordingTx) ConsumeToken(ctx context.Context, h []byte, now time.Time) (store.Challenge, error) {
	r.log.add("ConsumeToken")
	return r.Tx.ConsumeToken(ctx, h, now)
}

func (r recordingTx) ConsumeCode(ctx context.Context, id string, h []byte, now time.Time) (store.Challenge, error) {
	r.log.add("ConsumeCode")
	return r.Tx.ConsumeCode(ctx, id, h, now)
}

func (r recordingTx) ReissueChallenge(ctx context.Context, id string, th, ch []byte, exp time.Time, max int) (store.Challenge, error) {
	r.log.add("ReissueChallenge")
	return r.Tx.ReissueChallenge(ctx, id, th, ch, exp, max)
}

func (r recordingTx) Hit(ctx context.Context, key string, start time.Time, w time.Duration) (int64, int64, error) {
	r.log.add("Hit " + limitScope(key))
	return r.Tx.Hit(ctx, key, start, w)
}

func (r recordingTx) Enqueue(ctx context.Context, m store.Message) (int64, error) {
	r.log.add("Enqueue " + m.Channel)
	return r.Tx.Enqueue(ctx, m)
}

func (r recordingTx) MarkSent(ctx context.Context, id int64, now time.Time) error {
	r.log.add("MarkSent")
	return r.Tx.MarkSent(ctx, id, now)
}

func (r recordingTx) MarkFailed(ctx context.Context, id int64, next time.Time, lastError string, dead bool) error {
	r.log.add("MarkFailed")
	return r.Tx.MarkFailed(ctx, id, next, lastError, dead)
}

func (r recordingTx) AppendAudit(ctx context.Context, e store.AuditEvent) (int64, error) {
	r.log.add("AppendAudit " + e.Event)
	return r.Tx.AppendAudit(ctx, e)
}

func (r recordingTx) SaveHistory(ctx context.Context, h store.History) error {
	r.log.add("SaveHistory")
	return r.Tx.SaveHistory(ctx, h)
}

func (r recordingTx) CreateFactor(ctx context.Context, f store.Factor) error {
	r.log.add("CreateFactor")
	return r.Tx.CreateFactor(ctx, f)
}

func (r recordingTx) UpdateFactor(ctx context.Context, f store.Factor) error {
	r.log.add("UpdateFactor")
	return r.Tx.UpdateFactor(ctx, f)
}

func (r recordingTx) AdvanceCounter(ctx context.Context, id string, v int64, now time.Time) error {
	r.log.add("AdvanceCounter")
	return r.Tx.AdvanceCounter(ctx, id, v, now)
}

func (r recordingTx) ConsumeFactor(ctx context.Context, userID, flow string, secret []byte) (store.Factor, error) {
	r.log.add("ConsumeFactor")
	return r.Tx.ConsumeFactor(ctx, userID, flow, secret)
}

func (r recordingTx) DeleteFactor(ctx context.Context, userID, id string) error {
	r.log.add("DeleteFactor")
	return r.Tx.DeleteFactor(ctx, userID, id)
}

func (r recordingTx) DeleteFactors(ctx context.Context, userID, flow string) (int64, error) {
	r.log.add("DeleteFactors")
	return r.Tx.DeleteFactors(ctx, userID, flow)
}

func (r recordingTx) Journey(ctx context.Context, id string) (store.Journey, error) {
	r.log.add("read Journey")
	return r.Tx.Journey(ctx, id)
}

func (r recordingTx) LatestChallenge(ctx context.Context, journeyID, flow string) (store.Challenge, error) {
	r.log.add("read LatestChallenge " + flow)
	return r.Tx.LatestChallenge(ctx, journeyID, flow)
}

func (r recordingTx) Count(ctx context.Context, key string, start time.Time, w time.Duration) (int64, int64, error) {
	r.log.add("read Count " + limitScope(key))
	return r.Tx.Count(ctx, key, start, w)
}

func (r recordingTx) Factors(ctx context.Context, userID, flow string) ([]store.Factor, error) {
	r.log.add("read Factors " + flow)
	return r.Tx.Factors(ctx, userID, flow)
}

func (r recordingTx) PasswordHistory(ctx context.Context, userID string) (store.History, error) {
	r.log.add("read PasswordHistory")
	return r.Tx.PasswordHistory(ctx, userID)
}

// recordingStore records the calls of recordingTx, in transactions and
// out of them, and each transaction.
type recordingStore struct {
	recordingTx
	st store.Store
}

func (s recordingStore) Atomic(ctx context.Context, fn func(tx store.Tx) error) error {
	s.log.add("Atomic")
	return s.st.Atomic(ctx, func(tx store.Tx) error { return fn(recordingTx{Tx: tx, log: s.log}) })
}

func (s recordingStore) Close() error { return s.st.Close() }

// TestStartDoesTheSameStoreWork (DESIGN "account enumeration: same store
// work"): a reset start for a known user, an unknown identifier, a user
// without an email address and a user over the per-account limit makes
// the same store calls: the same transactions, writes of the same kinds
// and numbers (counters of the same scopes, a journey, an email
// challenge, one email in the outbox, one audit event) and the same
// recorded reads.
func TestStartDoesTheSameStoreWork(t *testing.T) {
	log := &callLog{}
	h := newHarness(t, func(c *plugin.Config) {
		c.Store = recordingStore{recordingTx: recordingTx{Tx: c.Store, log: log}, st: c.Store}
		c.Limits.StartsPerAccount = plugin.Limit{N: 1, Window: time.Hour}
	})
	start := func(identifier string) []string {
		b := plugintest.NewBrowser(t)
		page := b.Get(h.base + "/")
		return log.record(func() {
			if p := b.Submit(page, "/recovery/", map[string]string{"identifier": identifier}); p.Status != http.StatusSeeOther {
				t.Fatalf("start %q: %d", identifier, p.Status)
			}
		})
	}
	known := start("alice")
	t.Logf("store calls of a start: %q", known)
	if !slices.Contains(known, "CreateJourney ") || !slices.Contains(known, "Enqueue email") || !slices.Contains(known, "AppendAudit journey.start") {
		t.Fatalf("a known user's start: %q", known)
	}
	for _, id := range []string{"nobody@example.com", "carol", "alice"} {
		if got := start(id); !slices.Equal(got, known) {
			t.Errorf("start for %q differs from a known user's:\n got %q\nwant %q", id, got, known)
		}
	}
	// The second alice was over her account limit: nothing went out to her.
	h.deliver()
	if n := len(h.mail.to("alice@example.com")); n != 1 {
		t.Fatalf("mails to alice: %d, want 1", n)
	}
	if evs := h.audit("journey.start"); len(evs) != 4 {
		t.Fatalf("journey.start events: %d", len(evs))
	}
}

// blockingSender blocks every Send until released (or until the worker
// gives up on it), and counts the Sends that returned.
type blockingSender struct {
	entered  chan notify.Message
	release  chan struct{}
	returned atomic.Int32
}

func (s *blockingSender) Send(ctx context.Context, m notify.Message) error {
	defer s.returned.Add(1)
	select {
	case s.entered <- m:
	default:
	}
	select {
	case <-s.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestBlockedSenderDoesNotDelayStarts (DESIGN "the HTTP response never
// waits for SMTP or an SMS gateway"): with the outbox worker running and
// its Sender stuck, reset starts (and their next pages) still answer;
// their messages wait in the outbox and go out once the Sender returns.
func TestBlockedSenderDoesNotDelayStarts(t *testing.T) {
	s := &blockingSender{entered: make(chan notify.Message, 16), release: make(chan struct{})}
	h := newHarness(t, func(c *plugin.Config) { c.Sender = s })
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- h.p.Run(ctx) }()
	released := false
	defer func() {
		if !released {
			close(s.release)
		}
		cancel()
		<-ran
	}()
	b := plugintest.NewBrowser(t)
	// A response that waited for the Sender would wait forever: the
	// client's timeout turns that into a failure.
	b.Client.Timeout = time.Minute
	if p := b.Follow(h.start(b, "alice")); p.Status != http.StatusOK || !strings.Contains(p.Text(), "Check your email") {
		t.Fatalf("first start: %d %s", p.Status, p.Text())
	}
	if n := s.returned.Load(); n != 0 {
		t.Fatalf("the first start answered only after %d Send(s) returned", n)
	}
	var first notify.Message
	select {
	case first = <-s.entered:
	case <-time.After(time.Minute):
		t.Fatal("the worker never called the Sender")
	}
	if first.To != "alice@example.com" {
		t.Fatalf("first message to %q", first.To)
	}
	// The Sender is now stuck inside Send: more starts still answer, and
	// answer while it is stuck (a response that waited until the worker
	// gave up on the Sender would come after a Send returned).
	for _, id := range []string{"alice", "nobody@example.com", "carol"} {
		b := plugintest.NewBrowser(t)
		b.Client.Timeout = time.Minute
		if p := b.Follow(h.start(b, id)); p.Status != http.StatusOK || !strings.Contains(p.Text(), "Check your email") {
			t.Fatalf("start %q while the Sender is blocked: %d %s", id, p.Status, p.Text())
		}
		if n := s.returned.Load(); n != 0 {
			t.Fatalf("start %q answered only after %d Send(s) returned", id, n)
		}
	}
	close(s.release)
	released = true
	// The waiting message to alice goes out after the first.
	select {
	case m := <-s.entered:
		if m.To != "alice@example.com" {
			t.Fatalf("next message to %q", m.To)
		}
	case <-time.After(time.Minute):
		t.Fatal("the queued messages were not sent once the Sender returned")
	}
}

// TestRetryAfterIsHonest: a client over the per-IP start limit that waits
// exactly the Retry-After it was given is let through.
func TestRetryAfterIsHonest(t *testing.T) {
	h := newHarness(t, func(c *plugin.Config) {
		c.Limits.StartsPerIP = plugin.Limit{N: 4, Window: time.Minute}
	})
	b := plugintest.NewBrowser(t)
	for i := range 4 {
		if p := h.start(b, "nobody"); p.Status != http.StatusSeeOther {
			t.Fatalf("start %d: %d", i, p.Status)
		}
	}
	p := h.start(b, "nobody")
	secs, err := strconv.Atoi(p.Header.Get("Retry-After"))
	if p.Status != http.StatusTooManyRequests || err != nil || secs < 1 {
		t.Fatalf("over the limit: %d Retry-After %q", p.Status, p.Header.Get("Retry-After"))
	}
	h.clock.Advance(time.Duration(secs) * time.Second)
	if p := h.start(b, "nobody"); p.Status != http.StatusSeeOther {
		t.Fatalf("after waiting Retry-After (%ds): %d Retry-After %q", secs, p.Status, p.Header.Get("Retry-After"))
	}
}

// hashingDirectory is the test directory of a host that keeps argon2id
// hashes of its passwords, with sspr's own Hasher (one computation per
// SetPassword).
type hashingDirectory struct {
	*directory
	hasher *password.Hasher
}

func (d hashingDirectory) SetPassword(ctx context.Context, id, pw string) error {
	if _, err := d.hasher.Hash(ctx, pw); err != nil {
		return err
	}
	return d.directory.SetPassword(ctx, id, pw)
}

// historyReads counts the password-history reads: sspr derives one
// argon2id history key after each.
type historyReads struct {
	store.Store
	n *atomic.Int32
}

func (s historyReads) PasswordHistory(ctx context.Context, userID string) (store.History, error) {
	s.n.Add(1)
	return s.Store.PasswordHistory(ctx, userID)
}

// argon2idRuns runs fn and returns how many argon2id computations of the
// default cost (19 MiB each) it did, from the bytes it allocated: every
// computation allocates its whole memory cost, and the rest of a request
// allocates far less than one. No test of this package runs in parallel.
func argon2idRuns(t *testing.T, fn func()) int {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	per := uint64(password.DefaultMemory) * 1024
	n := (after.TotalAlloc - before.TotalAlloc) / per
	t.Logf("allocated %.1f MiB: %d argon2id run(s)", float64(after.TotalAlloc-before.TotalAlloc)/(1<<20), n)
	return int(n)
}

// TestCompletionArgon2idBudget (DESIGN performance targets: "at most two
// argon2id computations, the password-history check included"): a
// completion by code costs one argon2id in sspr (the history key, checked
// against every kept password and then recorded) plus the host's own hash
// of the new password; a password the history refuses costs one, and one
// the cheap rules refuse costs none.
func TestCompletionArgon2idBudget(t *testing.T) {
	reads := &atomic.Int32{}
	dir := newDirectory()
	hasher, err := password.NewHasher(password.HasherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c *plugin.Config) {
		c.Directory = hashingDirectory{directory: dir, hasher: hasher}
		c.Store = historyReads{Store: c.Store, n: reads}
		c.Hasher = hasher
	})
	h.dir = dir
	for _, old := range []string{"older-willow-branch-song", "old-willow-branch-song"} {
		if err := h.p.RecordPassword(t.Context(), "u-alice", old); err != nil {
			t.Fatal(err)
		}
	}
	b := plugintest.NewBrowser(t)
	page := b.Follow(h.emailStep(b, "alice", "alice@example.com"))
	reads.Store(0)
	tests := []struct {
		name     string
		password string
		status   int
		runs     int
		reads    int32
	}{
		{"too short", "short", http.StatusBadRequest, 0, 0},
		{"too common", "P@ssw0rd2024!", http.StatusBadRequest, 0, 0},
		{"used before", "older-willow-branch-song", http.StatusBadRequest, 1, 1},
		{"accepted", newPassword, http.StatusSeeOther, 2, 1},
	}
	for _, tt := range tests {
		var p *plugintest.Page
		reads.Store(0)
		runs := argon2idRuns(t, func() {
			p = b.Submit(page, "/recovery/password", map[string]string{"password": tt.password, "confirm": tt.password})
		})
		if p.Status != tt.status {
			t.Fatalf("%s: %d %s", tt.name, p.Status, p.Text())
		}
		if runs != tt.runs || reads.Load() != tt.reads {
			t.Errorf("%s: %d argon2id computations and %d history reads, want %d and %d", tt.name, runs, reads.Load(), tt.runs, tt.reads)
		}
	}
	if h.dir.password("u-alice") != newPassword {
		t.Fatal("password not set")
	}
	hist, err := h.store.PasswordHistory(t.Context(), "u-alice")
	if err != nil || len(hist.Keys) != 3 {
		t.Fatalf("history after the completion: %d keys, %v", len(hist.Keys), err)
	}
}

// TestKeyRotation: Config.Keys rotate without cutting off journeys that
// are under way. A plugin rebuilt with [K2, K1] reads the cookies and
// accepts the CSRF tokens that K1 made (a start form, a journey's resend
// form, a journey's cookie for its link), and the outbox opens what K1
// sealed; with [K2] alone those cookies are ignored and the tokens refused.
func TestKeyRotation(t *testing.T) {
	k1 := []byte("first plugin key, 32 bytes long!")
	k2 := []byte("second plugin key, 32 bytes long")
	var cur atomic.Pointer[plugin.Plugin]
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { cur.Load().ServeHTTP(w, r) }))
	t.Cleanup(front.Close)
	h := newHarness(t, func(c *plugin.Config) {
		c.BaseURL = front.URL + "/recovery"
		c.Keys = [][]byte{k1}
	})
	h.base = front.URL + "/recovery"
	cur.Store(h.p)
	rebuild := func(keys ...[]byte) {
		t.Helper()
		cfg := h.config()
		cfg.BaseURL, cfg.Keys = h.base, keys
		p, err := plugin.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		h.p = p
		cur.Store(p)
	}

	// Under K1: a start page, and three journeys at the code step.
	bStart := plugintest.NewBrowser(t)
	startPage := bStart.Get(h.base + "/")
	journey := func() (*plugintest.Browser, *plugintest.Page, string) {
		b := plugintest.NewBrowser(t)
		check := b.Follow(h.start(b, "alice"))
		h.deliver()
		link, _ := h.resetMail("alice@example.com")
		return b, check, link
	}
	bResend, resendPage, _ := journey()
	bLink, _, link := journey()
	bDead, deadPage, deadLink := journey()
	// One more message sealed under K1, delivered after the rotation.
	bLate := plugintest.NewBrowser(t)
	bLate.Follow(h.start(bLate, "alice"))
	mails := len(h.mail.to("alice@example.com"))

	rebuild(k2, k1)
	h.deliver()
	if n := len(h.mail.to("alice@example.com")); n != mails+1 {
		t.Fatalf("the message sealed under K1 was not delivered after the rotation: %d mails, want %d", n, mails+1)
	}
	// The start form of K1 (its cookie and CSRF token) still starts.
	if p := bStart.Submit(startPage, "/recovery/", map[string]string{"identifier": "nobody"}); p.Status != http.StatusSeeOther {
		t.Fatalf("K1 start form after rotation: %d %s", p.Status, p.Text())
	}
	// A journey's K1 form asks for a new code, which then works.
	sent := bResend.Submit(resendPage, "/recovery/verify/resend", nil)
	if sent.Status != http.StatusSeeOther {
		t.Fatalf("K1 resend form after rotation: %d %s", sent.Status, sent.Text())
	}
	page := bResend.Follow(sent)
	h.deliver()
	_, code := h.resetMail("alice@example.com")
	pw := bResend.Submit(page, "/recovery/verify", map[string]string{"code": code})
	if pw.Header.Get("Location") != "/recovery/password" {
		t.Fatalf("code after rotation: %d %s", pw.Status, pw.Text())
	}
	// The K1 cookie of a journey makes its link this browser's.
	confirm := bLink.Get(link)
	ok := bLink.Submit(confirm, "/recovery/link", nil)
	if ok.Header.Get("Location") != "/recovery/password" {
		t.Fatalf("link in its own browser after rotation: %d %q %s", ok.Status, ok.Header.Get("Location"), ok.Text())
	}
	done := bLink.Submit(bLink.Follow(ok), "/recovery/password", map[string]string{"password": newPassword, "confirm": newPassword})
	if done.Header.Get("Location") != "/recovery/done" || h.dir.password("u-alice") != newPassword {
		t.Fatalf("password after rotation: %d %s", done.Status, done.Text())
	}

	// K1 retired: its cookies no longer name a journey or a browser, so
	// its forms are refused and its link counts as opened elsewhere.
	bStart2 := plugintest.NewBrowser(t)
	rebuild(k1)
	startPage2 := bStart2.Get(h.base + "/")
	rebuild(k2)
	if p := bStart2.Submit(startPage2, "/recovery/", map[string]string{"identifier": "nobody"}); p.Status != http.StatusForbidden {
		t.Fatalf("K1 start form under K2 alone: %d %s", p.Status, p.Text())
	}
	if p := bDead.Get(h.base + "/verify"); !strings.Contains(p.Text(), "Your reset session has ended") {
		t.Fatalf("K1 journey under K2 alone: %d %s", p.Status, p.Text())
	}
	h.deliver() // the notice of the change above
	mails = len(h.mail.to("alice@example.com"))
	if p := bDead.Submit(deadPage, "/recovery/verify/resend", nil); !strings.Contains(p.Text(), "Your reset session has ended") {
		t.Fatalf("K1 resend form under K2 alone: %d %s", p.Status, p.Text())
	}
	h.deliver()
	if n := len(h.mail.to("alice@example.com")); n != mails {
		t.Fatalf("a K1 form under K2 alone sent %d mail(s)", n-mails)
	}
	if p := bDead.Get(deadLink); !strings.Contains(p.Text(), "Use the code instead") || len(p.Find(func(n *html.Node) bool { return n.Data == "form" })) != 0 {
		t.Fatalf("K1 link under K2 alone: %d %s", p.Status, p.Text())
	}
}

// TestMethodsRequiredIsOneOrTwo: New accepts 1 and 2 methods (0 means 1)
// and refuses anything else, naming the field.
func TestMethodsRequiredIsOneOrTwo(t *testing.T) {
	h := newHarness(t)
	for _, n := range []int{-1, 3} {
		cfg := h.config()
		cfg.MethodsRequired = n
		if _, err := plugin.New(cfg); err == nil || err.Error() != "sspr: config: field 'MethodsRequired': must be 1 or 2" {
			t.Errorf("MethodsRequired %d: %v", n, err)
		}
	}
	for _, n := range []int{0, 1, 2} {
		cfg := h.config()
		cfg.MethodsRequired = n
		if _, err := plugin.New(cfg); err != nil {
			t.Errorf("MethodsRequired %d: %v", n, err)
		}
	}
}
