package plugin_test

import (
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
	"testing"
	"time"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/email"
	"github.com/sspr-go/sspr/plugin"
	"github.com/sspr-go/sspr/plugin/notify"
	"github.com/sspr-go/sspr/plugin/password"
	"github.com/sspr-go/sspr/plugin/plugintest"
	"github.com/sspr-go/sspr/plugin/store"
	"github.com/sspr-go/sspr/plugin/store/sqlite"
)

// directory is an in-memory host directory with every optional capability.
type directory struct {
	mu        sync.Mutex
	users     map[string]*dirUser
	revoked   map[string]int
	setErr    error
	passwords map[string]string
	// afterSet, when set, runs after SetPassword stored a password.
	afterSet func()
	// revokeErr, when set, makes RevokeSessions fail.
	revokeErr error
	// contactCalls counts Contacts calls.
	contactCalls int
	// userCalls counts User calls.
	userCalls int
}

type dirUser struct {
	plugin.User
	extra  []string
	phones []string
}

func newDirectory() *directory {
	return &directory{
		users: map[string]*dirUser{
			"u-alice": {User: plugin.User{ID: "u-alice", Username: "alice", Email: "alice@example.com", DisplayName: "Alice Liddell"},
				extra: []string{"alice.backup@example.org"}},
			"u-carol": {User: plugin.User{ID: "u-carol", Username: "carol"}}, // no email at all
		},
		revoked:   map[string]int{},
		passwords: map[string]string{},
	}
}

func (d *directory) FindUser(_ context.Context, id string) (plugin.User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, u := range d.users {
		if strings.EqualFold(u.Username, id) || (u.Email != "" && strings.EqualFold(u.Email, id)) {
			return u.User, nil
		}
	}
	return plugin.User{}, plugin.ErrUserNotFound
}

func (d *directory) User(_ context.Context, id string) (plugin.User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.userCalls++
	if u, ok := d.users[id]; ok {
		return u.User, nil
	}
	return plugin.User{}, plugin.ErrUserNotFound
}

func (d *directory) SetPassword(_ context.Context, id, pw string) error {
	d.mu.Lock()
	if d.setErr != nil {
		d.mu.Unlock()
		return d.setErr
	}
	d.passwords[id] = pw
	after := d.afterSet
	d.mu.Unlock()
	if after != nil {
		after()
	}
	return nil
}

func (d *directory) RevokeSessions(_ context.Context, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.revokeErr != nil {
		return d.revokeErr
	}
	d.revoked[id]++
	return nil
}

func (d *directory) revocations(id string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.revoked[id]
}

func (d *directory) Contacts(_ context.Context, id string) ([]plugin.Contact, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.contactCalls++
	var cs []plugin.Contact
	if u, ok := d.users[id]; ok {
		for _, a := range u.extra {
			cs = append(cs, plugin.Contact{Channel: "email", Address: a})
		}
		for _, a := range u.phones {
			cs = append(cs, plugin.Contact{Channel: "sms", Address: a})
		}
	}
	return cs, nil
}

func (d *directory) password(id string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.passwords[id]
}

// mailbox records delivered messages.
type mailbox struct {
	mu   sync.Mutex
	msgs []notify.Message
	fail error
}

func (m *mailbox) Send(_ context.Context, msg notify.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.msgs = append(m.msgs, msg)
	return nil
}

func (m *mailbox) all() []notify.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]notify.Message(nil), m.msgs...)
}

func (m *mailbox) to(addr string) []notify.Message {
	var out []notify.Message
	for _, msg := range m.all() {
		if msg.To == addr {
			out = append(out, msg)
		}
	}
	return out
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// harness is one plugin on a real SQLite store behind a real HTTP server.
type harness struct {
	t     testing.TB
	p     *plugin.Plugin
	srv   *httptest.Server
	base  string
	dir   *directory
	mail  *mailbox
	clock *clock
	store store.Store
	// dbPath is the SQLite file.
	dbPath string
	cfg    plugin.Config
	mux    *http.ServeMux
}

// config returns a copy of the harness's base configuration.
func (h *harness) config() plugin.Config {
	c := h.cfg
	c.Keys = append([][]byte(nil), c.Keys...)
	return c
}

func newHarness(t testing.TB, mutate ...func(*plugin.Config)) *harness {
	t.Helper()
	dbPath := filepath.Join(t.TempDir(), "sspr.db")
	st, err := sqlite.Config{Path: dbPath}.Open(t.Context(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	f, err := email.New(email.Config{})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, dir: newDirectory(), mail: &mailbox{}, clock: &clock{now: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}, store: st, dbPath: dbPath}
	mux := http.NewServeMux()
	h.mux = mux
	h.srv = httptest.NewServer(mux)
	t.Cleanup(h.srv.Close)
	h.base = h.srv.URL + "/recovery"
	hasher, err := password.NewHasher(password.HasherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := plugin.Config{
		BaseURL:           h.base,
		Directory:         h.dir,
		Store:             st,
		Flows:             []flows.Flow{f},
		Sender:            h.mail,
		Keys:              [][]byte{[]byte("0123456789abcdef0123456789abcdef")},
		SignInURL:         h.srv.URL + "/signin",
		ReturnToAllowList: []string{h.srv.URL + "/login"},
		Hasher:            hasher,
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:               h.clock.Now,
	}
	h.cfg = cfg
	for _, m := range mutate {
		m(&cfg)
	}
	h.p, err = plugin.New(cfg)
	if err != nil {
		t.Fatalf("plugin.New: %v", err)
	}
	mux.Handle("/recovery/", h.p)
	return h
}

// deliver runs the outbox once.
func (h *harness) deliver() {
	h.t.Helper()
	for {
		n, err := h.p.Deliver(h.t.Context())
		if err != nil {
			h.t.Fatalf("deliver: %v", err)
		}
		if n == 0 {
			return
		}
	}
}

// start opens the start page in b and submits identifier.
func (h *harness) start(b *plugintest.Browser, identifier string) *plugintest.Page {
	h.t.Helper()
	page := b.Get(h.base + "/")
	if page.Status != http.StatusOK {
		h.t.Fatalf("start page: status %d", page.Status)
	}
	return b.Submit(page, "/recovery/", map[string]string{"identifier": identifier})
}

var (
	linkRE = regexp.MustCompile(`https?://\S+/link\?token=[A-Za-z0-9_-]+`)
	codeRE = regexp.MustCompile(`code there: (\d{8})`)
)

// resetMail returns the link and code of the newest reset message to addr.
func (h *harness) resetMail(addr string) (link, code string) {
	h.t.Helper()
	msgs := h.mail.to(addr)
	for i := len(msgs) - 1; i >= 0; i-- {
		if m := linkRE.FindString(msgs[i].Text); m != "" {
			c := codeRE.FindStringSubmatch(msgs[i].Text)
			if c == nil {
				h.t.Fatalf("reset mail without code: %q", msgs[i].Text)
			}
			return m, c[1]
		}
	}
	h.t.Fatalf("no reset mail to %s among %d messages", addr, len(msgs))
	return "", ""
}

var stepUpCodeRE = regexp.MustCompile(`Your code: (\d{8})`)

// stepUpMail returns the code of the newest step-up message to addr (a
// code, no link: it confirms a signed-in user, it resets nothing).
func (h *harness) stepUpMail(addr string) string {
	h.t.Helper()
	msgs := h.mail.to(addr)
	for i := len(msgs) - 1; i >= 0; i-- {
		if m := stepUpCodeRE.FindStringSubmatch(msgs[i].Text); m != nil {
			if strings.Contains(msgs[i].Text, "/link?token=") || strings.Contains(msgs[i].Subject, "Reset") {
				h.t.Fatalf("step-up mail reads like a reset: %q\n%s", msgs[i].Subject, msgs[i].Text)
			}
			return m[1]
		}
	}
	h.t.Fatalf("no step-up mail to %s among %d messages", addr, len(msgs))
	return ""
}

func (h *harness) audit(event string) []store.AuditEvent {
	h.t.Helper()
	evs, err := h.store.Audit(h.t.Context(), store.AuditFilter{Event: event, Limit: 1000})
	if err != nil {
		h.t.Fatal(err)
	}
	return evs
}

func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}
