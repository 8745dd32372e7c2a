package browsertest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/sspr-go/sspr/examples/provider/server"
	"github.com/sspr-go/sspr/examples/relyingparty/app"
	"github.com/sspr-go/sspr/plugin/notify"
)

// Bounds of every wait. A step is one browser action and the page load it
// causes; under -race on two cores a step takes well under a second (a
// few on a machine loaded many times over), so these only stop a hung test.
const (
	stepTimeout = 30 * time.Second
	mailTimeout = 30 * time.Second
	// browserStartTimeout bounds the start of Chromium and its first tab.
	browserStartTimeout = 30 * time.Second
)

// Environment variables of the suite (see doc.go).
const (
	envScreenshots = "SSPR_SCREENSHOTS"
	envAxe         = "SSPR_AXE_JS"
)

// defaultAxePath is where axe-core is looked for when SSPR_AXE_JS is unset,
// relative to this package's folder (go test's working directory).
var defaultAxePath = filepath.Join("node_modules", "axe-core", "axe.min.js")

// axeInstall tells a developer how to get axe-core.
const axeInstall = "install it with\n\tnpm install --prefix examples/browsertest --no-save --no-package-lock --no-audit --no-fund axe-core@4.14.1\n" +
	"(from the repository root), or point " + envAxe + " at an axe.min.js"

// viewport is a browser window size the suite renders pages at.
type viewport struct {
	name          string
	width, height int64
	mobile        bool
}

func desktopViewport() viewport { return viewport{name: "desktop", width: 1280, height: 800} }
func mobileViewport() viewport {
	return viewport{name: "mobile", width: 375, height: 812, mobile: true}
}

func (v viewport) emulate() chromedp.Action[chromedp.Void] {
	if v.mobile {
		return chromedp.EmulateViewport(v.width, v.height, chromedp.EmulatePortrait, chromedp.EmulateMobile)
	}
	return chromedp.EmulateViewport(v.width, v.height)
}

// chromiumPath returns the Chromium (or Chrome) binary to drive, or "".
func chromiumPath() string {
	if fi, err := os.Stat("/usr/bin/chromium"); err == nil && !fi.IsDir() {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// requireChromium skips the test when no browser is installed.
func requireChromium(t *testing.T) string {
	t.Helper()
	p := chromiumPath()
	if p == "" {
		t.Skip("browsertest: no Chromium found (looked for /usr/bin/chromium, and chromium, chromium-browser, google-chrome on PATH); install it with apt-get install chromium to run the browser journeys")
	}
	return p
}

// loadAxe reads axe-core's source. With a browser present, a missing axe is
// a failure, not a skip: the accessibility check must not vanish quietly.
func loadAxe(t *testing.T) string {
	t.Helper()
	path := os.Getenv(envAxe)
	if path == "" {
		path = defaultAxePath
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("browsertest: axe-core is needed for the accessibility check but %s cannot be read (%v);\n%s", path, err, axeInstall)
	}
	if !bytes.Contains(b[:min(len(b), 200)], []byte("axe")) {
		t.Fatalf("browsertest: %s does not look like axe-core", path)
	}
	return string(b)
}

// screenshotDir returns (and creates) the folder for screenshots.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(envScreenshots)
	if dir == "" {
		dir = "screenshots"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("browsertest: screenshot folder: %v", err)
	}
	return dir
}

// clock is the provider's and the app's clock: real time plus an offset a
// test moves forward (the tokens' signatures use real time, so offsets stay
// well under their lifetime).
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// logBuffer collects the servers' logs, shown when a test fails.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// stack is the example provider (sspr at /recovery, dev mailbox) and the
// demo relying party, both on localhost: passkeys need a relying-party ID
// that is a domain name, and http://localhost is a secure context.
type stack struct {
	srv    *server.Server
	clock  *clock
	issuer string // http://localhost:PORT
	appURL string // http://localhost:PORT
}

func startStack(t *testing.T) *stack {
	t.Helper()
	logs := &logBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs)
		}
	})
	provTS := httptest.NewUnstartedServer(nil)
	appTS := httptest.NewUnstartedServer(nil)
	st := &stack{
		clock:  &clock{},
		issuer: "http://localhost:" + port(t, provTS),
		appURL: "http://localhost:" + port(t, appTS),
	}
	srv, err := server.New(t.Context(), server.Config{
		Issuer:       st.issuer,
		DataDir:      t.TempDir(),
		RedirectURIs: []string{st.appURL + "/callback"},
		Logger:       logger,
		Now:          st.clock.Now,
	})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	st.srv = srv
	if srv.Passkeys() == nil || srv.Mailbox() == nil {
		t.Fatal("the provider has no passkeys or no dev mailbox")
	}
	a, err := app.New(t.Context(), app.Config{
		URL: st.appURL, Issuer: st.issuer, ClientID: server.ClientID, ClientSecret: server.ClientSecret,
		Logger: logger, Now: st.clock.Now,
	})
	if err != nil {
		srv.Close()
		t.Fatalf("app.New: %v", err)
	}
	provTS.Config.Handler = srv.Handler()
	appTS.Config.Handler = a.Handler()
	provTS.Start()
	appTS.Start()
	done := make(chan error, 1)
	go func() { done <- srv.Run(t.Context()) }()
	t.Cleanup(func() {
		// t.Context is cancelled before cleanups run, so Run returns.
		if err := <-done; err != nil {
			t.Errorf("provider Run: %v", err)
		}
		appTS.Close()
		provTS.Close()
		if err := srv.Close(); err != nil {
			t.Errorf("provider Close: %v", err)
		}
	})
	return st
}

func port(t *testing.T, ts *httptest.Server) string {
	t.Helper()
	_, p, err := net.SplitHostPort(ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The code and the link in a reset email, whatever its language: the
// code ends the line after a colon ("Or enter this code there: 12345678").
// A text message ends with the line "@host #12345678" (origin-bound
// one-time codes, https://wicg.github.io/sms-one-time-codes/).
var (
	mailCode = regexp.MustCompile(`(?m):[ \t]*(\d{6,10})[ \t]*$`)
	mailLink = regexp.MustCompile(`https?://\S+/recovery/link\?token=[A-Za-z0-9_-]+`)
	textCode = regexp.MustCompile(`(?m)^@(\S+) #(\d{6,10})$`)
)

// nextMessage waits for the next message in the dev mailbox to `to` (an
// email address or, for a text message, an E.164 number) that want
// accepts; the others to `to` are skipped.
func (s *stack) nextMessage(t *testing.T, what, to string, want func(notify.Message) bool) notify.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), mailTimeout)
	defer cancel()
	for {
		m, err := s.srv.Mailbox().Wait(ctx, to)
		if err != nil {
			t.Fatalf("no %s to %s: %v", what, to, err)
		}
		if want(m) {
			return m
		}
	}
}

// resetMail waits for the next password-reset email to `to` and returns
// its code and link. Other messages to `to` (a "password changed" notice)
// are skipped.
func (s *stack) resetMail(t *testing.T, to string) (code, link string) {
	t.Helper()
	m := s.nextMessage(t, "reset email", to, func(m notify.Message) bool {
		return mailLink.MatchString(m.Text) && mailCode.MatchString(m.Text)
	})
	return mailCode.FindStringSubmatch(m.Text)[1], mailLink.FindString(m.Text)
}

// mailedCode waits for the next email with a code to `to`, a reset email
// or a step-up's confirmation code, and returns the code. Other messages
// to `to` (a notice of a change) are skipped.
func (s *stack) mailedCode(t *testing.T, to string) string {
	t.Helper()
	m := s.nextMessage(t, "email with a code", to, func(m notify.Message) bool {
		return m.Channel == "email" && mailCode.MatchString(m.Text)
	})
	return mailCode.FindStringSubmatch(m.Text)[1]
}

// textedCode waits for the next text message with a code to the phone
// number `to` (E.164) and returns the code. Its "@host #code" line must
// name the provider's host, so that a browser offers to fill the code in
// there. Other text messages (a "password changed" notice) are skipped.
func (s *stack) textedCode(t *testing.T, to string) string {
	t.Helper()
	m := s.nextMessage(t, "text message with a code", to, func(m notify.Message) bool {
		return m.Channel == "sms" && textCode.MatchString(m.Text)
	})
	c := textCode.FindStringSubmatch(m.Text)
	if u, err := url.Parse(s.issuer); err != nil || c[1] != u.Hostname() {
		t.Errorf("the text message binds its code to @%s, want the provider's host name (%s):\n%s", c[1], s.issuer, m.Text)
	}
	return c[2]
}

// totpCode is bob's current authenticator-app code at the servers' time.
func (s *stack) totpCode(t *testing.T) string {
	t.Helper()
	code, err := totp.GenerateCode(server.BobTOTPSecret, s.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// nextTOTPStep moves the clock to a later 30-second step, so that a new
// code is not rejected as a replay of one already used.
func (s *stack) nextTOTPStep() { s.clock.Advance(31 * time.Second) }

// tab is one Chromium tab of a journey. Every page the journey reaches is
// checked (one h1, labelled inputs, axe-core), and shot at both viewports.
type tab struct {
	t       *testing.T
	ctx     context.Context
	journey string
	view    viewport // the journey's own viewport
	axe     string
	shots   string
	pages   int
	audited map[string]bool // pages axe already checked, by path, h1, error state, language and width
	// strictAxe makes axe-core violations of any impact fail the test,
	// not only serious and critical ones.
	strictAxe bool
}

// chromium is a started browser and its first tab.
type chromium struct {
	ctx         context.Context
	cancel      context.CancelFunc // closes the tab and the browser
	cancelAlloc context.CancelFunc // waits for the browser process to end
	err         error
}

func (c chromium) close() {
	c.cancel()
	c.cancelAlloc()
}

// launch starts Chromium at exe with a fresh profile in dataDir. It never
// calls t.Fatal, so it may run on its own goroutine.
func launch(exe, dataDir string, v viewport) chromium {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(dataDir),
		chromedp.WindowSize(int(v.width), int(v.height)),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("lang", "en-US"),
	)
	// The browser lives until the test's cleanup closes it (not until
	// t.Context ends), so that it is gone before its profile folder is
	// removed.
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	c := chromium{ctx: ctx, cancel: cancel, cancelAlloc: cancelAlloc}
	// The first Run owns the browser and must have no deadline; a timer
	// stops a start that hangs.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	timer := time.NewTimer(browserStartTimeout)
	defer timer.Stop()
	select {
	case c.err = <-started:
	case <-timer.C:
		c.err = fmt.Errorf("no answer within %v", browserStartTimeout)
		cancel()
		<-started
	}
	if c.err != nil {
		c.err = fmt.Errorf("start Chromium %s: %w", exe, c.err)
	}
	return c
}

// newJourney starts what a journey needs: the provider and the app, and a
// Chromium of its own (one browser process per test, a fresh profile)
// whose first tab is at viewport v. The two start side by side.
func newJourney(t *testing.T, journey string, v viewport) (*tab, *stack) {
	t.Helper()
	exe := requireChromium(t)
	axe := loadAxe(t)
	shots := screenshotDir(t)
	dataDir := t.TempDir() // removed after the cleanup below closed the browser
	launched := make(chan chromium, 1)
	go func() { launched <- launch(exe, dataDir, v) }()
	var br chromium
	ready := false
	t.Cleanup(func() {
		if !ready { // startStack failed first
			br = <-launched
		}
		br.close()
	})
	s := startStack(t)
	br, ready = <-launched, true
	if br.err != nil {
		t.Fatal(br.err)
	}
	b := &tab{t: t, ctx: br.ctx, journey: journey, view: v, axe: axe, shots: shots, audited: map[string]bool{}}
	b.setup()
	t.Cleanup(func() { t.Logf("[%s] %d pages checked and shot into %s", journey, b.pages, shots) })
	return b, s
}

// newTab starts a Chromium of its own for t, without the servers.
func newTab(t *testing.T, exe, journey string, v viewport) *tab {
	t.Helper()
	axe := loadAxe(t)
	br := launch(exe, t.TempDir(), v)
	t.Cleanup(br.close)
	if br.err != nil {
		t.Fatal(br.err)
	}
	b := &tab{t: t, ctx: br.ctx, journey: journey, view: v, axe: axe, audited: map[string]bool{}}
	b.setup()
	return b
}

func (b *tab) setup() {
	b.t.Helper()
	b.do("set up the tab",
		b.view.emulate(),
		// A headless tab is never the focused window; emulate focus so
		// that autofocus and document.activeElement behave as for a
		// person.
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Call(ctx, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true})
			return err
		}),
	)
}

// step returns a context bounded by stepTimeout.
func (b *tab) step() (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, stepTimeout)
}

// do runs actions that cause no navigation.
func (b *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fatalf("%s: %v", what, err)
	}
}

// navigate loads u as if typed into the address bar.
func (b *tab) navigate(u string) {
	b.t.Helper()
	b.do("open "+u, chromedp.Navigate(u))
}

// click clicks the element that sel matches and waits for the page it
// leads to (through any redirects) to load.
func (b *tab) click(sel string) {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		b.fatalf("click %s: %v", sel, err)
	}
}

// press clicks the element that sel matches when the click does not load
// a page (a button of the page's script).
func (b *tab) press(sel string) {
	b.t.Helper()
	b.do("press "+sel, chromedp.Click(chromedp.CSS(sel)))
}

// fill types v into the (cleared) field sel, as a person would.
func (b *tab) fill(sel, v string) {
	b.t.Helper()
	b.do("type into "+sel, chromedp.Clear(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), v))
}

// text returns the visible text of the first element sel matches.
func (b *tab) text(sel string) string {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.fatalf("text of %s: %v", sel, err)
	}
	return strings.Join(strings.Fields(s), " ")
}

// eval evaluates a JavaScript expression through the DevTools protocol
// (Runtime.evaluate, not subject to the pages' CSP) into a T.
func eval[T any](b *tab, what, expr string, opts ...chromedp.EvaluateOption) T {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		b.fatalf("%s: %v", what, err)
	}
	return v
}

// location returns the current URL.
func (b *tab) location() string {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	u, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		b.fatalf("location: %v", err)
	}
	return u
}

func (b *tab) fatalf(format string, args ...any) {
	b.t.Helper()
	msg := fmt.Sprintf(format, args...)
	if errors.Is(b.ctx.Err(), context.Canceled) {
		b.t.Fatalf("[%s] %s", b.journey, msg)
	}
	// Say where the browser was, if it still answers.
	ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
	defer cancel()
	if u, err := chromedp.Run(ctx, chromedp.Location()); err == nil {
		msg += "\n\tat " + u
		if body, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`)); err == nil {
			msg += "\n\tpage text: " + strings.Join(strings.Fields(body), " ")
		}
	}
	b.t.Fatalf("[%s] %s", b.journey, msg)
}

// page asserts that the tab shows a page whose h1 contains heading and
// whose URL path starts with pathPrefix, then checks it and takes its
// screenshots under name.
func (b *tab) page(name, pathPrefix, heading string) {
	b.t.Helper()
	b.do("wait for the page "+name, chromedp.WaitReady(chromedp.CSS("body")), chromedp.WaitVisible(chromedp.CSS("h1")))
	u := b.location()
	if pathPrefix != "" && !strings.Contains(u, pathPrefix) {
		b.fatalf("page %s: at %s, want a URL with %s", name, u, pathPrefix)
	}
	if got := b.text("h1"); !strings.Contains(got, heading) {
		b.fatalf("page %s: h1 %q, want %q", name, got, heading)
	}
	b.pages++
	b.checkStructure(name)
	b.checkAxe(name)
	b.screenshots(name)
}

// screenshots writes full-page PNGs of the current page at the desktop
// and the mobile viewport, the journey's own last so it stays in effect.
func (b *tab) screenshots(name string) {
	b.t.Helper()
	views := []viewport{mobileViewport(), desktopViewport()}
	if b.view.mobile {
		views = []viewport{desktopViewport(), mobileViewport()}
	}
	for _, v := range views {
		ctx, cancel := b.step()
		err := chromedp.Do(ctx, v.emulate())
		var buf []byte
		if err == nil {
			buf, err = chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
		}
		cancel()
		if err != nil {
			b.fatalf("screenshot %s (%s): %v", name, v.name, err)
		}
		file := filepath.Join(b.shots, fmt.Sprintf("%02d-%s-%s-%s.png", b.pages, b.journey, name, v.name))
		if err := os.WriteFile(file, buf, 0o644); err != nil {
			b.t.Fatalf("write screenshot: %v", err)
		}
	}
}
