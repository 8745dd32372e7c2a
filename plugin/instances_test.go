package plugin_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/email"
	"github.com/sspr-go/sspr/plugin"
	"github.com/sspr-go/sspr/plugin/notify"
	"github.com/sspr-go/sspr/plugin/plugintest"
	"github.com/sspr-go/sspr/plugin/store/postgres"
)

// Two sspr instances behind one URL (as behind a load balancer) on one
// PostgreSQL: journeys, limits and the outbox are shared.

// pgSchemaURL returns a URL for a fresh schema of the test database, or
// skips when SSPR_TEST_POSTGRES_URL is unset (CI always sets it).
func pgSchemaURL(t *testing.T) string {
	t.Helper()
	base := os.Getenv("SSPR_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("SSPR_TEST_POSTGRES_URL is not set: the PostgreSQL tests need a server (.ci/run starts one)")
	}
	buf := make([]byte, 6)
	_, _ = rand.Read(buf)
	schema := "sspr_it_" + hex.EncodeToString(buf)
	conn, err := pgx.Connect(t.Context(), base)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	if _, err := conn.Exec(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	conn.Close(t.Context())
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err == nil {
			_, _ = c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			c.Close(context.Background())
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// countingSender counts deliveries per message body across instances.
type countingSender struct {
	mu   sync.Mutex
	seen map[string]int
	got  chan struct{}
}

func (s *countingSender) Send(_ context.Context, m notify.Message) error {
	s.mu.Lock()
	s.seen[m.To+"\x00"+m.Text]++
	s.mu.Unlock()
	s.got <- struct{}{}
	return nil
}

func TestTwoInstancesOnPostgres(t *testing.T) {
	dsn := pgSchemaURL(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := newDirectory()
	sender := &countingSender{seen: map[string]int{}, got: make(chan struct{}, 1000)}
	key := []byte("shared instance key, 32 bytes!!!")

	// One URL in front (a "load balancer" alternating between instances).
	var instances []*plugin.Plugin
	var next int
	var lbMu sync.Mutex
	lb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lbMu.Lock()
		p := instances[next%len(instances)]
		next++
		lbMu.Unlock()
		p.ServeHTTP(w, r)
	}))
	t.Cleanup(lb.Close)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for range 2 {
		st, err := postgres.Config{URL: dsn}.Open(t.Context(), quiet)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		f, _ := email.New(email.Config{})
		p, err := plugin.New(plugin.Config{
			BaseURL: lb.URL + "/recovery", Directory: dir, Store: st, Flows: []flows.Flow{f}, Sender: sender,
			Keys: [][]byte{key}, Logger: quiet,
			Limits: plugin.Limits{StartsPerAccount: plugin.Limit{N: 3, Window: time.Hour}, StartsPerIP: plugin.Limit{N: 1000, Window: time.Minute}},
		})
		if err != nil {
			t.Fatal(err)
		}
		instances = append(instances, p)
		wg.Go(func() { _ = p.Run(ctx) })
	}
	t.Cleanup(func() { cancel(); wg.Wait() })

	// A journey started on one instance continues on the other: every
	// request below alternates.
	b := plugintest.NewBrowser(t)
	page := b.Get(lb.URL + "/recovery/")
	check := b.Follow(b.Submit(page, "/recovery/", map[string]string{"identifier": "alice"}))
	if !strings.Contains(check.Text(), "Check your email") {
		t.Fatalf("check page: %s", check.Text())
	}
	waitFor(t, sender.got, 1)
	var code string
	sender.mu.Lock()
	for k := range sender.seen {
		if i := strings.Index(k, "code there: "); i >= 0 {
			code = k[i+len("code there: ") : i+len("code there: ")+8]
		}
	}
	sender.mu.Unlock()
	pw := b.Follow(b.Submit(check, "/recovery/verify", map[string]string{"code": code}))
	done := b.Submit(pw, "/recovery/password", map[string]string{"password": newPassword, "confirm": newPassword})
	if done.Header.Get("Location") != "/recovery/done" || dir.password("u-alice") != newPassword {
		t.Fatalf("journey across instances: %d %s", done.Status, done.Text())
	}
	waitFor(t, sender.got, 2) // the change notices to alice's two addresses

	// The per-account limit (3 per hour) holds across both instances: two
	// more starts send mail, then nothing.
	for range 4 {
		bb := plugintest.NewBrowser(t)
		if p := bb.Submit(bb.Get(lb.URL+"/recovery/"), "/recovery/", map[string]string{"identifier": "alice"}); p.Status != http.StatusSeeOther {
			t.Fatalf("start: %d", p.Status)
		}
	}
	waitFor(t, sender.got, 2)

	// Every outbox message is delivered exactly once while both workers
	// run: 30 more (different users, so no limit applies).
	for i := range 30 {
		dir.mu.Lock()
		id := "load" + strings.Repeat("x", i)
		dir.users[id] = &dirUser{User: plugin.User{ID: id, Username: id, Email: id + "@example.com"}}
		dir.mu.Unlock()
		bb := plugintest.NewBrowser(t)
		bb.Submit(bb.Get(lb.URL+"/recovery/"), "/recovery/", map[string]string{"identifier": id})
	}
	waitFor(t, sender.got, 30)
	for _, p := range instances {
		if n, err := p.Deliver(t.Context()); err != nil || n != 0 {
			t.Fatalf("left in the outbox: %d %v", n, err)
		}
	}
	sender.mu.Lock()
	defer sender.mu.Unlock()
	total := 0
	for k, n := range sender.seen {
		total += n
		if n != 1 {
			t.Errorf("delivered %d times: %q", n, k[:min(len(k), 60)])
		}
	}
	if total != 1+2+2+30 {
		t.Fatalf("deliveries: %d, want 35", total)
	}
}

// waitFor waits for n deliveries, failing after a generous deadline.
func waitFor(t *testing.T, got <-chan struct{}, n int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for range n {
		select {
		case <-got:
		case <-deadline:
			t.Fatalf("waiting for %d deliveries", n)
		}
	}
}
