package plugin_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/sessions"
	"golang.org/x/net/html"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/email"
	"github.com/sspr-go/sspr/flows/recoverycodes"
	"github.com/sspr-go/sspr/flows/totp"
	"github.com/sspr-go/sspr/plugin"
	"github.com/sspr-go/sspr/plugin/notify"
	"github.com/sspr-go/sspr/plugin/password"
	"github.com/sspr-go/sspr/plugin/store"
	"github.com/sspr-go/sspr/plugin/store/sqlite"
)

// The fuzz targets of this file drive a real plugin (SQLite store, the
// email, TOTP and recovery-code flows, a host session) through ServeHTTP
// with arbitrary requests. Their setup is their own (fz… names), so that
// they do not depend on the other tests' harness.

const (
	fzBase      = "https://id.example/recovery"
	fzOrigin    = "https://id.example"
	fzBasePath  = "/recovery"
	fzSignIn    = "https://app.example/signin"
	fzAccount   = "https://app.example/account"
	fzHelp      = "https://help.example/recovery"
	fzAllowed   = "https://app.example/login"
	fzBobSecret = "JBSWY3DPEHPK3PXP"
)

// fzReturnToAllowed is the allow-list rule of DESIGN.md, written out
// independently of the plugin: an absolute https URL on app.example whose
// path is /login or under /login/, without user info, fragment or "..".
func fzReturnToAllowed(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host != "app.example" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return false
	}
	return !strings.Contains(u.Path, "..") && (u.Path == "/login" || strings.HasPrefix(u.Path, "/login/"))
}

// fzDirectory is an in-memory host directory.
type fzDirectory struct {
	mu    sync.Mutex
	users map[string]plugin.User
}

func (d *fzDirectory) FindUser(_ context.Context, id string) (plugin.User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, u := range d.users {
		if strings.EqualFold(u.Username, id) || strings.EqualFold(u.Email, id) {
			return u, nil
		}
	}
	return plugin.User{}, plugin.ErrUserNotFound
}

func (d *fzDirectory) User(_ context.Context, id string) (plugin.User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if u, ok := d.users[id]; ok {
		return u, nil
	}
	return plugin.User{}, plugin.ErrUserNotFound
}

func (d *fzDirectory) SetPassword(context.Context, string, string) error { return nil }

func (d *fzDirectory) RevokeSessions(context.Context, string) error { return nil }

// fzSender keeps the messages delivered.
type fzSender struct {
	mu   sync.Mutex
	msgs []notify.Message
}

func (s *fzSender) Send(_ context.Context, m notify.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	if len(s.msgs) > 64 {
		s.msgs = s.msgs[len(s.msgs)-64:]
	}
	return nil
}

func (s *fzSender) last(to string) notify.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.msgs) - 1; i >= 0; i-- {
		if s.msgs[i].To == to {
			return s.msgs[i]
		}
	}
	return notify.Message{}
}

// fzClock is a settable clock.
type fzClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fzClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fzClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fzCounting counts every call that can change the store. Read-only calls
// pass through (by embedding).
type fzCounting struct {
	store.Tx
	n *atomic.Int64
}

func (c fzCounting) CreateJourney(ctx context.Context, j store.Journey) error {
	c.n.Add(1)
	return c.Tx.CreateJourney(ctx, j)
}

func (c fzCounting) UpdateJourney(ctx context.Context, j store.Journey) error {
	c.n.Add(1)
	return c.Tx.UpdateJourney(ctx, j)
}

func (c fzCounting) CompleteJourney(ctx context.Context, id string, now time.Time) error {
	c.n.Add(1)
	return c.Tx.CompleteJourney(ctx, id, now)
}

func (c fzCounting) CreateChallenge(ctx context.Context, ch store.Challenge) error {
	c.n.Add(1)
	return c.Tx.CreateChallenge(ctx, ch)
}

func (c fzCounting) ConsumeToken(ctx context.Context, h []byte, now time.Time) (store.Challenge, error) {
	c.n.Add(1)
	return c.Tx.ConsumeToken(ctx, h, now)
}

func (c fzCounting) ConsumeCode(ctx context.Context, id string, h []byte, now time.Time) (store.Challenge, error) {
	c.n.Add(1)
	return c.Tx.ConsumeCode(ctx, id, h, now)
}

func (c fzCounting) ReissueChallenge(ctx context.Context, id string, th, ch []byte, exp time.Time, max int) (store.Challenge, error) {
	c.n.Add(1)
	return c.Tx.ReissueChallenge(ctx, id, th, ch, exp, max)
}

func (c fzCounting) Hit(ctx context.Context, key string, start time.Time, w time.Duration) (int64, int64, error) {
	c.n.Add(1)
	return c.Tx.Hit(ctx, key, start, w)
}

func (c fzCounting) Enqueue(ctx context.Context, m store.Message) (int64, error) {
	c.n.Add(1)
	return c.Tx.Enqueue(ctx, m)
}

func (c fzCounting) AppendAudit(ctx context.Context, e store.AuditEvent) (int64, error) {
	c.n.Add(1)
	return c.Tx.AppendAudit(ctx, e)
}

func (c fzCounting) SaveHistory(ctx context.Context, h store.History) error {
	c.n.Add(1)
	return c.Tx.SaveHistory(ctx, h)
}

func (c fzCounting) CreateFactor(ctx context.Context, f store.Factor) error {
	c.n.Add(1)
	return c.Tx.CreateFactor(ctx, f)
}

func (c fzCounting) UpdateFactor(ctx context.Context, f store.Factor) error {
	c.n.Add(1)
	return c.Tx.UpdateFactor(ctx, f)
}

func (c fzCounting) AdvanceCounter(ctx context.Context, id string, v int64, now time.Time) error {
	c.n.Add(1)
	return c.Tx.AdvanceCounter(ctx, id, v, now)
}

func (c fzCounting) ConsumeFactor(ctx context.Context, userID, flow string, secret []byte) (store.Factor, error) {
	c.n.Add(1)
	return c.Tx.ConsumeFactor(ctx, userID, flow, secret)
}

func (c fzCounting) DeleteFactor(ctx context.Context, userID, id string) error {
	c.n.Add(1)
	return c.Tx.DeleteFactor(ctx, userID, id)
}

func (c fzCounting) DeleteFactors(ctx context.Context, userID, flow string) (int64, error) {
	c.n.Add(1)
	return c.Tx.DeleteFactors(ctx, userID, flow)
}

// fzStore is a store.Store whose writes, in and out of transactions, are
// counted.
type fzStore struct {
	fzCounting
	st store.Store
}

func (s fzStore) Atomic(ctx context.Context, fn func(tx store.Tx) error) error {
	return s.st.Atomic(ctx, func(tx store.Tx) error { return fn(fzCounting{Tx: tx, n: s.n}) })
}

func (s fzStore) Close() error { return s.st.Close() }

// fzPlugin is a plugin with the fixtures a fuzz input can pick: cookies of
// a fresh browser, of journeys, and of host sessions, with CSRF tokens
// minted by the plugin's own pages.
type fzPlugin struct {
	tb     testing.TB
	p      *plugin.Plugin
	st     store.Store // the real store, for reads outside the count
	writes *atomic.Int64
	clock  *fzClock
	mail   *fzSender
	hosts  sessions.Store

	// cookies and tokens, refreshed now and then
	browser, alice, decoy, bob           string // sspr_journey cookies
	browserCSRF, aliceCSRF, decoyCSRF    string
	bobCSRF, linkCSRF, accountCSRF, link string
	staleCSRF                            string // Alice's signed-in pages
	hostBob, hostAlice                   string // host session cookies
	minted                               []string
	runs                                 int
}

var fzCSRFRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func fzNewPlugin(tb testing.TB, mutate func(*plugin.Config)) *fzPlugin {
	tb.Helper()
	ctx := context.Background()
	real, err := sqlite.Config{Path: filepath.Join(tb.TempDir(), "fuzz.db")}.Open(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { real.Close() })
	writes := &atomic.Int64{}
	st := fzStore{fzCounting: fzCounting{Tx: real, n: writes}, st: real}
	clock := &fzClock{now: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}

	em, err := email.New(email.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	tf, err := totp.New(totp.Config{Store: st, Keys: [][]byte{[]byte("fuzz totp key, 32 bytes, fixed!!")}, Now: clock.Now})
	if err != nil {
		tb.Fatal(err)
	}
	rc, err := recoverycodes.New(recoverycodes.Config{Store: st})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := tf.AddSecret(ctx, real, "u-bob", "Phone", fzBobSecret); err != nil {
		tb.Fatal(err)
	}
	hosts := sessions.NewCookieStore([]byte("fuzz host session hash key 32 b!"), []byte("fuzz host session block key 32b!"))
	hosts.Options = &sessions.Options{Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: 3600}
	hasher, err := password.NewHasher(password.HasherConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	mail := &fzSender{}
	cfg := plugin.Config{
		BaseURL: fzBase,
		Directory: &fzDirectory{users: map[string]plugin.User{
			"u-alice": {ID: "u-alice", Username: "alice", Email: "alice@example.com", DisplayName: "Alice Liddell"},
			"u-bob":   {ID: "u-bob", Username: "bob", Email: "bob@example.com"},
		}},
		Store:             st,
		Flows:             []flows.Flow{em, tf, rc},
		Sender:            mail,
		Keys:              [][]byte{[]byte("fuzz plugin key, 32 bytes long!!")},
		Sessions:          plugin.GorillaSession{Store: hosts, Name: "host"},
		SignInURL:         fzSignIn,
		AccountURL:        fzAccount,
		HelpURL:           fzHelp,
		ReturnToAllowList: []string{fzAllowed},
		Hasher:            hasher,
		Limits:            plugin.Limits{StartsPerAccount: plugin.Limit{N: 1000, Window: time.Hour}},
		// Bob's host session (a minute old at each refresh) stays fresh and
		// Alice's (two hours old) stale between refreshes, so that whether
		// a signed-in request needs a step-up does not depend on how many
		// inputs ran before it.
		StepUpMaxAge: time.Hour,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:          clock.Now,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	p, err := plugin.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return &fzPlugin{tb: tb, p: p, st: real, writes: writes, clock: clock, mail: mail, hosts: hosts}
}

// do serves one request from the fixtures' address and returns the
// recorded response.
func (z *fzPlugin) do(method, target, cookie string, form url.Values) *httptest.ResponseRecorder {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, fzOrigin+target, body)
	r.RemoteAddr = "198.51.100.1:1234"
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Origin", fzOrigin)
	}
	if cookie != "" {
		r.Header.Set("Cookie", cookie)
	}
	w := httptest.NewRecorder()
	z.p.ServeHTTP(w, r)
	return w
}

func fzCookie(w *httptest.ResponseRecorder, name string) string {
	for _, c := range w.Result().Cookies() {
		if c.Name == name && c.Value != "" {
			return name + "=" + c.Value
		}
	}
	return ""
}

func fzToken(w *httptest.ResponseRecorder) string {
	m := fzCSRFRE.FindSubmatch(w.Body.Bytes())
	if m == nil {
		return ""
	}
	return html.UnescapeString(string(m[1]))
}

// journey starts a journey for identifier and returns its cookie and the
// CSRF token of its verification page.
func (z *fzPlugin) journey(identifier string) (cookie, csrf string) {
	w := z.do("GET", fzBasePath+"/", "", nil)
	browser, tok := fzCookie(w, "sspr_journey"), fzToken(w)
	w = z.do("POST", fzBasePath+"/", browser, url.Values{"csrf": {tok}, "identifier": {identifier}})
	cookie = fzCookie(w, "sspr_journey")
	if w.Code != http.StatusSeeOther || cookie == "" {
		z.tb.Fatalf("fuzz fixture: start for %q: %d", identifier, w.Code)
	}
	return cookie, fzToken(z.do("GET", fzBasePath+"/verify", cookie, nil))
}

// hostCookie signs a user in at the host, authTime ago.
func (z *fzPlugin) hostCookie(userID string, ago time.Duration, amr string) string {
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", fzOrigin+"/", nil)
	err := plugin.GorillaSession{Store: z.hosts, Name: "host"}.RaiseSession(w, r,
		plugin.Session{UserID: userID, AuthTime: z.clock.Now().Add(-ago), AMR: strings.Fields(amr)})
	if err != nil {
		z.tb.Fatal(err)
	}
	return fzCookie(w, "host")
}

// refresh makes new journeys, tokens and sessions for the fixtures.
func (z *fzPlugin) refresh() {
	w := z.do("GET", fzBasePath+"/", "", nil)
	z.browser, z.browserCSRF = fzCookie(w, "sspr_journey"), fzToken(w)
	z.alice, z.aliceCSRF = z.journey("alice")
	z.decoy, z.decoyCSRF = z.journey("nobody@example.org")
	z.bob, z.bobCSRF = z.journey("BOB@example.com")
	if _, err := z.p.Deliver(context.Background()); err != nil {
		z.tb.Fatal(err)
	}
	z.link = ""
	if m := regexp.MustCompile(`/link\?token=([A-Za-z0-9_-]+)`).FindStringSubmatch(z.mail.last("alice@example.com").Text); m != nil {
		z.link = m[1]
	}
	z.linkCSRF = fzToken(z.do("GET", fzBasePath+"/link?token="+z.link, z.alice, nil))
	z.hostBob = z.hostCookie("u-bob", time.Minute, "pwd otp")
	z.hostAlice = z.hostCookie("u-alice", 2*time.Hour, "pwd")
	z.accountCSRF = fzToken(z.do("GET", fzBasePath+"/account/security", z.hostBob, nil))
	z.staleCSRF = fzToken(z.do("GET", fzBasePath+"/account/password", z.hostAlice, nil))
	z.minted = nil
	for _, t := range []string{z.browserCSRF, z.aliceCSRF, z.decoyCSRF, z.bobCSRF, z.linkCSRF, z.accountCSRF, z.staleCSRF} {
		if t != "" {
			z.minted = append(z.minted, t)
		}
	}
}

// fzMarkers are what a stack trace or a Go error would show.
var fzMarkers = []string{"goroutine", ".go:", "panic"}

// fzURLAttrs are the attributes that hold URLs.
var fzURLAttrs = map[string]bool{"href": true, "src": true, "action": true, "formaction": true, "poster": true, "cite": true}

// fzCheckPage checks an HTML page: no inline executable script, and every
// URL it links to or posts to is the plugin's own, one from its
// configuration or an allow-listed return_to.
func fzCheckPage(t testing.TB, body []byte) {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("page does not parse: %v", err)
	}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			attrs := map[string]string{}
			for _, a := range n.Attr {
				attrs[a.Key] = a.Val
				if strings.HasPrefix(a.Key, "on") {
					t.Fatalf("event handler attribute %s=%q on <%s>", a.Key, a.Val, n.Data)
				}
				if fzURLAttrs[a.Key] || (a.Key == "value" && n.Data == "input" && fzAttrName(n) == "return_to") {
					fzCheckURL(t, n.Data+" "+a.Key, a.Val)
				}
			}
			if n.Data == "script" && attrs["src"] == "" && attrs["type"] != "application/json" {
				t.Fatalf("inline script: %s", body)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
}

func fzAttrName(n *html.Node) string {
	for _, a := range n.Attr {
		if a.Key == "name" {
			return a.Val
		}
	}
	return ""
}

// fzCheckURL fails unless raw is a URL a page may lead to.
func fzCheckURL(t testing.TB, where, raw string) {
	t.Helper()
	u, err := url.Parse(strings.TrimSpace(raw))
	switch {
	case err != nil:
		t.Fatalf("%s: %q is not a URL", where, raw)
	case u.Scheme == "" && u.Host == "":
		if !strings.HasPrefix(u.Path, fzBasePath+"/") && u.Path != fzBasePath && raw != "#" && !strings.HasPrefix(raw, "#") {
			t.Fatalf("%s: relative URL %q outside the plugin", where, raw)
		}
	case u.Scheme == "data" || u.Scheme == "otpauth":
		// The TOTP enrolment page's QR code and app link.
	case raw == fzSignIn, raw == fzAccount, raw == fzHelp,
		strings.HasPrefix(raw, fzBase+"/") || raw == fzBase,
		fzReturnToAllowed(raw):
	default:
		t.Fatalf("%s: page leads to %q, which is neither the plugin's, configured nor allow-listed", where, raw)
	}
}

// FuzzHandler sends arbitrary requests to a real plugin: any method, path,
// query (return_to, token, flow, …), form body, Origin, Sec-Fetch-Site,
// Cookie and Accept-Language header. The bits of sel pick fixtures the
// fuzzer cannot make itself: cookies (bits 0-2: a fresh browser, journeys,
// signed-in host sessions), a CSRF token the plugin minted (3-5), a
// same-origin Origin (6), the client address (7-8), whether "TOKEN" in the
// query or body becomes a live link token (9), a common method instead of
// the fuzzed one (10-12) and a route the fuzzed path is appended to
// (13-15). It checks that
// no response is a 5xx or shows a stack trace, that the security headers
// are on every response, that pages run no inline script and lead only to
// the plugin, configured URLs or allow-listed return_to URLs (never to a
// return_to outside the list), and that only a POST with a CSRF token the
// plugin minted ever changes the store (a GET, even on a signed-in page
// that needs a step-up, changes nothing).
func FuzzHandler(f *testing.F) {
	z := fzNewPlugin(f, nil)
	z.refresh()
	if len(z.minted) != 7 || z.link == "" || z.hostBob == "" || z.hostAlice == "" {
		f.Fatalf("fuzz fixtures incomplete: %d CSRF tokens, link %q", len(z.minted), z.link)
	}
	type seed struct {
		method, path, query, body, contentType, origin, fetchSite, cookie, lang string
		sel                                                                     uint16
	}
	const form = "application/x-www-form-urlencoded"
	for _, s := range []seed{
		{"GET", "/recovery/", "return_to=https://app.example/login/next", "", "", "", "", "", "de", 0},
		{"GET", "/recovery/", "return_to=https://evil.example/login", "", "", "", "", "", "", 0},
		{"GET", "/recovery/", "return_to=https://app.example/login/../admin", "", "", "", "", "", "", 0},
		{"GET", "/recovery/", "return_to=javascript:alert(1)", "", "", "", "", "", "", 0},
		{"POST", "/recovery/", "", "identifier=alice&return_to=https%3A%2F%2Fevil.example%2F", form, "", "same-origin", "", "", 1 | 1<<3},
		{"POST", "/recovery/", "", "identifier=%3Cscript%3Ealert(1)%3C%2Fscript%3E%01", form, "https://id.example", "", "", "", 1 | 1<<3 | 1<<6},
		{"POST", "/recovery/", "", "identifier=alice", form, "https://evil.example", "cross-site", "", "", 1 | 1<<3},
		{"POST", "/recovery/", "", "identifier=alice", form, "", "", "", "", 1},
		{"GET", "/recovery/verify", "flow=totp", "", "", "", "", "", "", 2},
		{"GET", "/recovery/verify", "flow=../../etc", "", "", "", "", "", "", 4},
		{"POST", "/recovery/verify", "", "code=12345678&flow=email", form, "null", "same-origin", "", "", 2 | 2<<3},
		{"POST", "/recovery/verify", "", "code=abc", form, "", "", "", "", 3 | 3<<3},
		{"POST", "/recovery/verify/method", "", "flow=recovery-codes", form, "", "", "", "", 4 | 4<<3},
		{"POST", "/recovery/verify/resend", "", "flow=email", form, "", "", "", "", 2 | 2<<3},
		{"GET", "/recovery/link", "token=TOKEN", "", "", "", "", "", "", 2 | 1<<9},
		{"GET", "/recovery/link", "token=TOKEN", "", "", "", "", "", "", 0 | 1<<9},
		{"POST", "/recovery/link", "", "token=TOKEN", form, "", "", "", "", 2 | 5<<3 | 1<<9},
		{"POST", "/recovery/link", "", "token=TOKEN", form, "", "", "", "", 2 | 1<<9},
		{"GET", "/recovery/link", "token=%0A%0A", "", "", "", "", "", "", 2},
		{"POST", "/recovery/password", "", "password=correct-horse&confirm=correct-horse", form, "", "", "", "", 2 | 2<<3},
		{"GET", "/recovery/done", "", "", "", "", "", "", "", 2},
		{"GET", "/recovery/account/password", "", "", "", "", "", "", "", 6},
		{"GET", "/recovery/account/password", "", "", "", "", "", "", "", 7},
		{"POST", "/recovery/account/password", "", "stepup=1", form, "", "", "", "", 7 | 7<<3},
		{"POST", "/recovery/account/security/totp/add", "", "stepup=1", form, "", "", "", "", 7},
		{"GET", "/recovery/account/security", "done=added", "", "", "", "", "", "", 6},
		{"GET", "/recovery/account/security/totp/add", "", "", "", "", "", "", "", 6},
		{"POST", "/recovery/account/security/totp/add", "", "state=AAAA&code=123456&name=x", form, "", "", "", "", 6 | 6<<3},
		{"POST", "/recovery/account/security/recovery-codes/remove", "", "factor=x", form, "", "", "", "", 6 | 6<<3},
		{"POST", "/recovery/account/security/totp/remove", "", "factor=x", form, "", "", "", "", 6},
		{"GET", "/recovery/stepup/callback", "state=x&code=y", "", "", "", "", "", "", 5},
		{"GET", "/recovery/static/style.css", "", "", "", "", "", "", "", 0},
		{"GET", "/recovery/static/../../x.js", "", "", "", "", "", "", "", 0},
		{"PUT", "/recovery/verify", "", "", "", "", "", "", "", 2},
		{"HEAD", "/recovery/", "", "", "", "", "", "", "", 0},
		{"GET", "/recoveryx", "", "", "", "", "", "", "", 0},
		{"GET", "/", "", "", "", "", "", "sspr_journey=garbage; host=garbage", "", 0},
		{"POST", "/recovery/", "a=%zz", "a=%zz", form, "", "", "", "", 1 | 1<<3},
		{"POST", "/recovery/", "", strings.Repeat("a=b&", 5000), form, "", "", "", "", 1 | 1<<3},
		{"POST", "/recovery/", "", "--x\r\nContent-Disposition: form-data; name=\"identifier\"\r\n\r\nalice\r\n--x--\r\n", "multipart/form-data; boundary=x", "", "", "", "", 1 | 1<<3},
		{"GET", "/recovery/", "", "", "", "", "", "", "xx-ZZ;q=0.1, *;q=0.5, de-CH-1996;q=abc", 0},
	} {
		f.Add(s.method, s.path, s.query, s.body, s.contentType, s.origin, s.fetchSite, s.cookie, s.lang, s.sel)
	}

	f.Fuzz(func(t *testing.T, method, path, query, body, contentType, origin, fetchSite, cookie, lang string, sel uint16) {
		if len(method)+len(path)+len(query)+len(body)+len(contentType)+len(origin)+len(fetchSite)+len(cookie)+len(lang) > 64<<10 {
			return // beyond what servers accept in headers; bodies over 16 KiB are refused (seeded)
		}
		z.runs++
		z.clock.Advance(time.Second)
		if z.runs%400 == 0 {
			z.refresh()
		}
		if sel&(1<<9) != 0 {
			query = strings.ReplaceAll(query, "TOKEN", z.link)
			body = strings.ReplaceAll(body, "TOKEN", z.link)
		}
		var cookies []string
		switch sel & 7 {
		case 1:
			cookies = append(cookies, z.browser)
		case 2:
			cookies = append(cookies, z.alice)
		case 3:
			cookies = append(cookies, z.decoy)
		case 4:
			cookies = append(cookies, z.bob)
		case 5:
			cookies = append(cookies, z.alice, z.hostBob)
		case 6:
			cookies = append(cookies, z.hostBob)
		case 7:
			cookies = append(cookies, z.hostAlice)
		}
		if cookie != "" {
			cookies = append(cookies, cookie)
		}
		csrf := [...]string{"", z.browserCSRF, z.aliceCSRF, z.decoyCSRF, z.bobCSRF, z.linkCSRF, z.accountCSRF, z.staleCSRF}[sel>>3&7]
		if csrf != "" {
			body = "csrf=" + url.QueryEscape(csrf) + "&" + body
		}
		if sel&(1<<6) != 0 {
			origin = fzOrigin
		}
		if m := sel >> 10 & 7; m != 0 {
			method = [...]string{"", "GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"}[m]
		}
		if method == "" {
			method = "GET"
		}
		if route := sel >> 13 & 7; route != 0 {
			path = fzBasePath + [...]string{"", "/", "/verify", "/link", "/password", "/account/password", "/account/security", "/account/security/totp/"}[route] + path
		}
		if path == "" || path[0] != '/' {
			path = "/" + path
		}
		r := &http.Request{
			Method:     method,
			URL:        &url.URL{Path: path, RawQuery: query},
			Proto:      "HTTP/1.1",
			ProtoMajor: 1,
			ProtoMinor: 1,
			Header:     http.Header{},
			Body:       io.NopCloser(strings.NewReader(body)),
			Host:       "id.example",
			RemoteAddr: [...]string{"192.0.2.1:1000", "192.0.2.2:1000", "[2001:db8::1]:1000", "garbage"}[sel>>7&3],
		}
		r.ContentLength = int64(len(body))
		r.RequestURI = r.URL.RequestURI()
		for k, v := range map[string]string{"Content-Type": contentType, "Origin": origin, "Sec-Fetch-Site": fetchSite,
			"Cookie": strings.Join(cookies, "; "), "Accept-Language": lang} {
			if v != "" {
				r.Header.Set(k, v)
			}
		}
		r = r.WithContext(context.Background())

		before := z.writes.Load()
		w := httptest.NewRecorder()
		z.p.ServeHTTP(w, r)
		wrote := z.writes.Load() - before
		res := w.Result()

		if res.StatusCode >= 500 {
			t.Fatalf("%s %s?%s: status %d: %s", method, path, query, res.StatusCode, w.Body.String())
		}
		inputs := strings.ToLower(strings.Join([]string{method, path, query, body, cookie, lang, origin, fetchSite}, "\x00"))
		if q, err := url.QueryUnescape(inputs); err == nil {
			inputs += "\x00" + q
		}
		if q, err := url.PathUnescape(inputs); err == nil {
			inputs += "\x00" + q
		}
		shown := strings.ToLower(w.Body.String())
		if strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
			shown = strings.ToLower(fzVisible(t, w.Body.Bytes()))
		}
		for _, m := range fzMarkers {
			if strings.Contains(shown, m) && !strings.Contains(inputs, m) {
				t.Fatalf("%s %s: the response shows %q: %s", method, path, m, w.Body.String())
			}
		}
		h := res.Header
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" ||
			!strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Fatalf("%s %s: security headers missing: %v", method, path, h)
		}
		ct := h.Get("Content-Type")
		static := strings.HasPrefix(ct, "text/css") || strings.HasPrefix(ct, "text/javascript")
		if !static && h.Get("Cache-Control") != "no-store" {
			t.Fatalf("%s %s: Cache-Control %q", method, path, h.Get("Cache-Control"))
		}
		if loc := h.Get("Location"); loc != "" {
			fzCheckURL(t, "Location", loc)
		}
		if strings.HasPrefix(ct, "text/html") {
			fzCheckPage(t, w.Body.Bytes())
		}
		for _, vals := range []url.Values{r.URL.Query(), r.PostForm} {
			for _, rt := range vals["return_to"] {
				urlish := strings.Contains(rt, "://") || strings.HasPrefix(rt, "//")
				configured := strings.Contains(fzSignIn+fzAccount+fzHelp+fzBase, rt)
				if urlish && !configured && !fzReturnToAllowed(rt) && (strings.Contains(w.Body.String(), rt) || strings.Contains(h.Get("Location"), rt)) {
					t.Fatalf("return_to %q outside the allow-list appears in the response", rt)
				}
			}
		}

		if wrote > 0 {
			post := method == http.MethodPost
			minted := false
			for _, tok := range z.minted {
				minted = minted || strings.Contains(body, url.QueryEscape(tok))
			}
			if !post || !minted {
				t.Fatalf("%s %s?%s without a CSRF token of the plugin made %d store writes (status %d)", method, path, query, wrote, res.StatusCode)
			}
		}
	})
}

// fzVisible returns a page's text and attribute values, without the random
// values a page carries (hidden inputs: CSRF tokens, sealed state; data:
// URLs: the QR code), in which a stack-trace marker could appear by chance.
func fzVisible(t testing.TB, body []byte) string {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("page does not parse: %v", err)
	}
	var b strings.Builder
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		switch n.Type {
		case html.TextNode, html.CommentNode:
			b.WriteString(n.Data + "\x00")
		case html.ElementNode:
			hidden := false
			for _, a := range n.Attr {
				hidden = hidden || (a.Key == "type" && a.Val == "hidden")
			}
			for _, a := range n.Attr {
				if (hidden && a.Key == "value") || strings.HasPrefix(a.Val, "data:") {
					continue
				}
				b.WriteString(a.Val + "\x00")
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return b.String()
}

// fzShape is a page's structure: every element with its attributes, in
// document order, with the values of the given attributes left out.
func fzShape(t testing.TB, body []byte, skip func(n *html.Node, key string) bool) []string {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("page does not parse: %v", err)
	}
	var out []string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			s := "<" + n.Data
			for _, a := range n.Attr {
				s += " " + a.Key
				if !skip(n, a.Key) {
					s += "=" + a.Val
				}
			}
			out = append(out, s+">")
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return out
}

// fzIdentifierValue returns the value of the identifier field.
func fzIdentifierValue(body []byte) (string, bool) {
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		return "", false
	}
	var val string
	var found bool
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "input" && fzAttrName(n) == "identifier" {
			for _, a := range n.Attr {
				if a.Key == "value" {
					val, found = a.Val, true
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return val, found
}

// fzParsed is what an HTML parser makes of text written into a quoted
// attribute value: it reads CR LF and CR as LF and NUL as U+FFFD.
func fzParsed(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// FuzzStartIdentifier posts arbitrary identifiers to the start page with a
// valid CSRF token. The per-IP start limit is 1, so after the first start
// every identifier is echoed back: on the 400 page (an invalid one: empty,
// too long or with control characters) or on the 429 page (a valid one).
// Every echo must be escaped: the page parses to exactly the elements and
// attributes of the same page for a harmless identifier, and the field's
// value is the identifier (trimmed) as typed.
func FuzzStartIdentifier(f *testing.F) {
	z := fzNewPlugin(f, func(c *plugin.Config) {
		c.Limits.StartsPerIP = plugin.Limit{N: 1, Window: time.Hour}
	})
	w := z.do("GET", fzBasePath+"/", "", nil)
	browser, tok := fzCookie(w, "sspr_journey"), fzToken(w)
	post := func(identifier string) *httptest.ResponseRecorder {
		return z.do("POST", fzBasePath+"/", browser, url.Values{"csrf": {tok}, "identifier": {identifier}})
	}
	if w := post("first"); w.Code != http.StatusSeeOther {
		f.Fatalf("first start: %d", w.Code)
	}
	skip := func(n *html.Node, key string) bool {
		name := fzAttrName(n)
		return key == "value" && (name == "identifier" || name == "csrf")
	}
	shapes := map[int][]string{}
	for _, id := range []string{"baseline", "\x01"} {
		w := post(id)
		if w.Code != http.StatusTooManyRequests && w.Code != http.StatusBadRequest {
			f.Fatalf("baseline %q: %d", id, w.Code)
		}
		shapes[w.Code] = fzShape(f, w.Body.Bytes(), skip)
	}
	for _, s := range []string{"alice", `"><script>alert(1)</script>`, "' onfocus='alert(1)' autofocus='", "</textarea><img src=x onerror=alert(1)>",
		"<!--", "]]><svg/onload=alert(1)>", "alice\x00", "a\r\nb", "\xff\xfe<b>", "&lt;b&gt;", "{{.CSRF}}", "{csrf}", "  spaced  ",
		strings.Repeat("<i>", 100), "x\u2028y", "\u202e<script>", strings.Repeat("x", 17<<10)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, identifier string) {
		if len(url.Values{"csrf": {tok}, "identifier": {identifier}}.Encode()) > 16<<10 {
			// Over the plugin's form limit: refused before the page.
			if w := post(identifier); w.Code != http.StatusBadRequest {
				t.Fatalf("a %d-byte form: status %d", len(identifier), w.Code)
			}
			return
		}
		w := post(identifier)
		switch w.Code {
		case http.StatusSeeOther:
			t.Fatalf("a start past the per-IP limit went through for %q", identifier)
		case http.StatusBadRequest, http.StatusTooManyRequests:
		default:
			t.Fatalf("identifier %q: status %d", identifier, w.Code)
		}
		got := fzShape(t, w.Body.Bytes(), skip)
		want := shapes[w.Code]
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("identifier %q changed the page's elements or attributes:\n got %q\nwant %q", identifier, got, want)
		}
		val, ok := fzIdentifierValue(w.Body.Bytes())
		if want := fzParsed(strings.TrimSpace(identifier)); !ok || val != want {
			t.Fatalf("identifier %q echoed as %q, want %q", identifier, val, want)
		}
	})
}
