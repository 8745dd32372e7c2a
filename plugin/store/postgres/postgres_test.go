package postgres

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sspr-go/sspr/plugin/store"
	"github.com/sspr-go/sspr/plugin/store/storetest"
)

// envURL names the environment variable with the URL of a database in which
// the tests may create and drop schemas. .ci/run always sets it.
const envURL = "SSPR_TEST_POSTGRES_URL"

// quiet returns a logger that discards everything.
func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// serverURL returns the test database's URL, or skips the test when the
// environment variable is unset.
func serverURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(envURL)
	if u == "" {
		tb.Skipf("%s is not set: set it to the URL of a PostgreSQL database where the tests may create schemas "+
			"(e.g. postgres://sspr:secret@127.0.0.1:5432/sspr_test?sslmode=disable); .ci/run starts one", envURL)
	}
	return u
}

// adminExec runs statements on a connection of its own.
func adminExec(ctx context.Context, tb testing.TB, sql string) {
	tb.Helper()
	conn, err := pgx.Connect(ctx, serverURL(tb))
	if err != nil {
		tb.Fatalf("connect to %s: %v", envURL, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, sql); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}

// freshSchema creates an empty schema with a random name, drops it (and
// everything in it) when the test ends, and returns a URL whose
// search_path selects it. Tests that run at the same time, in this process
// or another, never share a schema.
func freshSchema(tb testing.TB) string {
	tb.Helper()
	base := serverURL(tb)
	name := "sspr_test_" + rand.Text()[:16]
	name = strings.ToLower(name)
	adminExec(tb.Context(), tb, `CREATE SCHEMA `+name)
	tb.Cleanup(func() {
		// tb.Context() has ended by now.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		adminExec(ctx, tb, `DROP SCHEMA `+name+` CASCADE`)
	})
	return withSearchPath(tb, base, name)
}

// withSearchPath adds search_path=schema to a URL or keyword/value
// connection string.
func withSearchPath(tb testing.TB, conn, schema string) string {
	tb.Helper()
	if !strings.HasPrefix(conn, "postgres://") && !strings.HasPrefix(conn, "postgresql://") {
		return conn + " search_path=" + schema
	}
	u, err := url.Parse(conn)
	if err != nil {
		tb.Fatalf("parse %s: %v", envURL, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// openAt opens a store on the URL and closes it when the test ends unless
// the caller does so first (closing twice is harmless).
func openAt(tb testing.TB, u string) *Store {
	tb.Helper()
	s, err := Config{URL: u}.Open(tb.Context(), quiet())
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	serverURL(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Config{URL: freshSchema(t)}.Open(t.Context(), quiet())
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // the whole message, or its prefix when it ends with "…"
	}{
		{"no URL", Config{}, "postgres: config: field 'URL': required"},
		{"one connection", Config{URL: "postgres://localhost/db", MaxConns: 1}, "postgres: config: field 'MaxConns': must be at least 2 (0 means 8)"},
		{
			"no URL and negative MaxConns", Config{MaxConns: -1},
			"postgres: config: field 'URL': required\npostgres: config: field 'MaxConns': must be at least 2 (0 means 8)",
		},
		{"bad URL", Config{URL: "postgres://user:hunter2@localhost:notaport/db"}, "postgres: config: field 'URL': …"},
		{"unreachable", Config{URL: "postgres://user:hunter2@127.0.0.1:1/db?connect_timeout=5"}, "postgres: open: …"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.cfg.Open(t.Context(), quiet())
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if prefix, ok := strings.CutSuffix(tc.want, "…"); ok {
				if !strings.HasPrefix(err.Error(), prefix) {
					t.Fatalf("Open error = %q, want prefix %q", err, prefix)
				}
			} else if err.Error() != tc.want {
				t.Fatalf("Open error = %q, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("Open error %q reveals the password", err)
			}
		})
	}
}

func TestPoolConfig(t *testing.T) {
	pc, err := Config{URL: "postgres://u@localhost/db?pool_max_conns=50&application_name=host"}.poolConfig()
	if err != nil {
		t.Fatal(err)
	}
	if pc.MaxConns != defaultMaxConns || pc.ConnConfig.RuntimeParams["application_name"] != "host" {
		t.Errorf("MaxConns = %d, application_name = %q; want %d and the URL's", pc.MaxConns, pc.ConnConfig.RuntimeParams["application_name"], defaultMaxConns)
	}
	pc, err = Config{URL: "host=localhost dbname=db", MaxConns: 3}.poolConfig()
	if err != nil {
		t.Fatal(err)
	}
	if pc.MaxConns != 3 || pc.ConnConfig.RuntimeParams["application_name"] != "sspr" {
		t.Errorf("MaxConns = %d, application_name = %q; want 3 and sspr", pc.MaxConns, pc.ConnConfig.RuntimeParams["application_name"])
	}
}

// schemaState returns the applied migrations and a description of every
// column and index of the store's schema.
func schemaState(t *testing.T, s *Store) (versions []int, schema string) {
	t.Helper()
	ctx := t.Context()
	rows, err := s.pool.Query(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	versions, err = pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	err = s.pool.QueryRow(ctx, `SELECT
		(SELECT string_agg(table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable, ';' ORDER BY table_name, ordinal_position)
			FROM information_schema.columns WHERE table_schema = current_schema()) || ';' ||
		(SELECT string_agg(indexdef, ';' ORDER BY indexname) FROM pg_indexes WHERE schemaname = current_schema())`).Scan(&schema)
	if err != nil {
		t.Fatal(err)
	}
	return versions, schema
}

func wantVersions(t *testing.T) []int {
	t.Helper()
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	var vs []int
	for _, m := range ms {
		vs = append(vs, m.Version)
	}
	return vs
}

func TestMigrationsIdempotent(t *testing.T) {
	t.Parallel()
	u := freshSchema(t)
	want := wantVersions(t)
	base := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)

	s := openAt(t, u)
	versions, schema := schemaState(t, s)
	if fmt.Sprint(versions) != fmt.Sprint(want) {
		t.Fatalf("applied migrations %v, want %v", versions, want)
	}
	for _, table := range []string{"journeys", "challenges", "counters", "outbox", "audit", "password_history", "factors"} {
		if !strings.Contains(schema, table+".") {
			t.Errorf("schema has no table %s", table)
		}
	}
	j := store.Journey{ID: "j1", UserID: "u1", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
	if err := s.CreateJourney(t.Context(), j); err != nil {
		t.Fatal(err)
	}
	s.Close()

	for i := range 2 {
		s := openAt(t, u)
		v, sc := schemaState(t, s)
		if fmt.Sprint(v) != fmt.Sprint(want) || sc != schema {
			t.Fatalf("reopen %d: migrations %v (want %v), schema changed: %v", i, v, want, sc != schema)
		}
		if _, err := s.Journey(t.Context(), "j1"); err != nil {
			t.Fatalf("reopen %d: Journey: %v", i, err)
		}
		s.Close()
	}
}

func TestOpenConcurrently(t *testing.T) {
	t.Parallel()
	u := freshSchema(t)
	const n = 4
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			<-start
			s, err := Config{URL: u, MaxConns: 2}.Open(t.Context(), quiet())
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Open: %v", err)
		}
	}
	s := openAt(t, u)
	if versions, _ := schemaState(t, s); fmt.Sprint(versions) != fmt.Sprint(wantVersions(t)) {
		t.Fatalf("applied migrations %v, want %v", versions, wantVersions(t))
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	u := freshSchema(t)
	s := openAt(t, u)
	if _, err := s.pool.Exec(t.Context(), `INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_future.sql')`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := Config{URL: u}.Open(t.Context(), quiet())
	if err == nil || !strings.Contains(err.Error(), "newer") || !strings.HasPrefix(err.Error(), "postgres: migrate: ") {
		t.Fatalf("Open of a newer schema = %v, want a migrate error", err)
	}
}

func TestOpenWithoutSchema(t *testing.T) {
	t.Parallel()
	u := withSearchPath(t, serverURL(t), "sspr_test_missing_"+strings.ToLower(rand.Text()[:8]))
	_, err := Config{URL: u}.Open(t.Context(), quiet())
	if err == nil || !strings.Contains(err.Error(), "search_path") {
		t.Fatalf("Open with a search_path naming no schema = %v, want an error", err)
	}
}

// TestClaimSkipsLockedRows shows that Claim neither waits for nor returns
// messages another transaction is claiming: without SKIP LOCKED it would
// block until that transaction ends.
func TestClaimSkipsLockedRows(t *testing.T) {
	t.Parallel()
	s := openAt(t, freshSchema(t))
	ctx := t.Context()
	now := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	var ids []int64
	for i := range 6 {
		id, err := s.Enqueue(ctx, store.Message{Channel: "email", Payload: []byte{byte(i)}, CreatedAt: now, NextAttemptAt: now})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	claimIDs := func(ms []store.Message) []int64 {
		out := []int64{}
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	err := s.Atomic(ctx, func(tx store.Tx) error {
		inside, err := tx.Claim(ctx, now, time.Minute, 3)
		if err != nil {
			return err
		}
		if got := claimIDs(inside); fmt.Sprint(got) != fmt.Sprint(ids[:3]) {
			t.Errorf("claim inside the transaction = %v, want %v", got, ids[:3])
		}
		// The first three rows are locked until the transaction ends.
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		outside, err := s.Claim(wctx, now, time.Minute, 3)
		if err != nil {
			return fmt.Errorf("claim outside the transaction: %w", err)
		}
		if got := claimIDs(outside); fmt.Sprint(got) != fmt.Sprint(ids[3:]) {
			t.Errorf("claim outside the transaction = %v, want %v", got, ids[3:])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if ms, err := s.Claim(ctx, now, time.Minute, 10); err != nil || len(ms) != 0 {
		t.Fatalf("claim after both = %v, %v; want nothing", claimIDs(ms), err)
	}
}

// TestClaimAcrossInstances runs workers on two stores (two instances of
// sspr) against one schema: every message is claimed exactly once.
func TestClaimAcrossInstances(t *testing.T) {
	t.Parallel()
	u := freshSchema(t)
	a, b := openAt(t, u), openAt(t, u)
	ctx := t.Context()
	now := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	const total = 200
	err := a.Atomic(ctx, func(tx store.Tx) error {
		for i := range total {
			if _, err := tx.Enqueue(ctx, store.Message{Channel: "email", Payload: []byte(fmt.Sprint(i)), CreatedAt: now}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		seen = map[int64]int{}
		wg   sync.WaitGroup
	)
	errs := make(chan error, 6)
	for w := range 6 {
		s := a
		if w%2 == 1 {
			s = b
		}
		wg.Go(func() {
			for range total {
				ms, err := s.Claim(ctx, now, time.Hour, 2)
				if err != nil {
					errs <- err
					return
				}
				if len(ms) == 0 {
					return
				}
				mu.Lock()
				for _, m := range ms {
					seen[m.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != total {
		t.Errorf("%d distinct messages claimed, want %d", len(seen), total)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("message %d claimed %d times", id, n)
		}
	}
}

// TestReissueConflictInAtomic checks the one operation that can violate a
// unique constraint inside a transaction: its SAVEPOINT keeps the
// transaction usable after [store.ErrConflict].
func TestReissueConflictInAtomic(t *testing.T) {
	t.Parallel()
	s := openAt(t, freshSchema(t))
	ctx := t.Context()
	now := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, id := range []string{"c1", "c2"} {
		h := sha256.Sum256([]byte("token-" + id))
		c := store.Challenge{ID: id, JourneyID: "j1", Flow: "email", TokenHash: h[:], MaxAttempts: 5, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := s.CreateChallenge(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	taken := sha256.Sum256([]byte("token-c2"))
	fresh := sha256.Sum256([]byte("token-fresh"))
	err := s.Atomic(ctx, func(tx store.Tx) error {
		_, err := tx.ReissueChallenge(ctx, "c1", taken[:], nil, now.Add(2*time.Hour), 3)
		var pe *pgconn.PgError
		if !errors.Is(err, store.ErrConflict) || !errors.As(err, &pe) || !strings.HasPrefix(err.Error(), "postgres: reissue challenge: ") {
			t.Errorf("ReissueChallenge to a taken token = %v, want a prefixed ErrConflict wrapping the server's error", err)
		}
		if _, err := tx.ReissueChallenge(ctx, "c1", fresh[:], nil, now.Add(2*time.Hour), 3); err != nil {
			return err
		}
		_, err = tx.AppendAudit(ctx, store.AuditEvent{Time: now, Event: "challenge.reissued", JourneyID: "j1"})
		return err
	})
	if err != nil {
		t.Fatalf("Atomic: %v", err)
	}
	c, err := s.Challenge(ctx, "c1")
	if err != nil || !bytes.Equal(c.TokenHash, fresh[:]) || c.Reissues != 1 {
		t.Fatalf("after commit: challenge = %+v, %v; want the fresh token and 1 reissue", c, err)
	}
}

func TestTimesTextAndErrors(t *testing.T) {
	t.Parallel()
	s := openAt(t, freshSchema(t))
	ctx := t.Context()
	zone := time.FixedZone("X", -7*3600)
	created := time.Date(2031, 3, 4, 5, 6, 7, 123456789, zone)
	j := store.Journey{ID: "j1", UserID: "u1", Verified: []string{"email", "a,b"}, CreatedAt: created, ExpiresAt: created.Add(time.Hour)}
	if err := s.CreateJourney(ctx, j); err != nil {
		t.Fatal(err)
	}
	got, err := s.Journey(ctx, "j1")
	if err != nil {
		t.Fatal(err)
	}
	if got.CreatedAt.Location() != time.UTC || !got.CreatedAt.Equal(created.Truncate(time.Microsecond)) {
		t.Errorf("CreatedAt = %v, want %v in UTC, truncated to microseconds", got.CreatedAt, created.UTC())
	}
	if fmt.Sprint(got.Verified) != fmt.Sprint(j.Verified) || !got.CompletedAt.IsZero() {
		t.Errorf("Verified = %q, CompletedAt = %v; want %q and zero", got.Verified, got.CompletedAt, j.Verified)
	}

	err = s.CreateJourney(ctx, j)
	if !errors.Is(err, store.ErrConflict) || err.Error() != "postgres: create journey: store: conflict" {
		t.Errorf("duplicate CreateJourney = %v, want a prefixed ErrConflict", err)
	}
	if _, err := s.Journey(ctx, "nope"); err == nil || err.Error() != "postgres: journey: store: not found" {
		t.Errorf("Journey(nope) = %v", err)
	}
	if _, err := s.ConsumeToken(ctx, []byte("t"), time.Time{}); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("ConsumeToken with a zero now = %v, want a plain error", err)
	}
	if err := s.AdvanceCounter(ctx, "nope", 1, time.Now()); err == nil || err.Error() != "postgres: advance counter: store: not found" {
		t.Errorf("AdvanceCounter(nope) = %v", err)
	}

	// A User-Agent cut in the middle of a character, and a NUL byte.
	ua := strings.Repeat("a", 255) + "é"[:1]
	id, err := s.AppendAudit(ctx, store.AuditEvent{Time: created, Event: "e", UserAgent: ua, Detail: "x\x00y"})
	if err != nil {
		t.Fatalf("AppendAudit with invalid UTF-8: %v", err)
	}
	events, err := s.Audit(ctx, store.AuditFilter{Event: "e"})
	if err != nil || len(events) != 1 || events[0].ID != id {
		t.Fatalf("Audit = %v, %v", events, err)
	}
	if e := events[0]; e.UserAgent != strings.Repeat("a", 255)+"\uFFFD" || e.Detail != "xy" {
		t.Errorf("stored UserAgent %q, Detail %q; want the invalid byte replaced and the NUL dropped", e.UserAgent[250:], e.Detail)
	}
}

// TestPlans checks that the hot single-use statements search their indexes
// with the generic plans that cached prepared statements end up using.
func TestPlans(t *testing.T) {
	t.Parallel()
	s := openAt(t, freshSchema(t))
	ctx := t.Context()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	defer conn.Conn().Close(context.WithoutCancel(ctx)) // do not return the altered session to the pool
	for _, tc := range []struct {
		name, sql, args string
		want            []string
	}{
		{"consume factor", consumeFactorSQL, `('u1', 'recovery', '\x01'::bytea)`, []string{"Index Scan using factors_secret"}},
		{"claim", claimSQL, `(now(), now(), 3)`, []string{"LockRows", "Index Scan using outbox_pending"}},
		{
			"latest challenge", `SELECT ` + challengeCols + ` FROM challenges
			WHERE journey_id = $1 AND flow = $2 ORDER BY created_at DESC NULLS LAST, id DESC LIMIT 1`,
			`('j1', 'email')`, []string{"Scan Backward using challenges_journey"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.ReplaceAll(tc.name, " ", "_")
			if _, err := conn.Exec(ctx, `PREPARE `+name+` AS `+tc.sql); err != nil {
				t.Fatal(err)
			}
			rows, err := conn.Query(ctx, `EXPLAIN EXECUTE `+name+tc.args)
			if err != nil {
				t.Fatal(err)
			}
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			plan := strings.Join(lines, "\n")
			for _, w := range tc.want {
				if !strings.Contains(plan, w) {
					t.Errorf("plan:\n%s\nwant %q", plan, w)
				}
			}
		})
	}
}

func TestAtomicPanicRollsBack(t *testing.T) {
	t.Parallel()
	s := openAt(t, freshSchema(t))
	ctx := t.Context()
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("no panic")
			}
		}()
		_ = s.Atomic(ctx, func(tx store.Tx) error {
			if err := tx.CreateJourney(ctx, store.Journey{ID: "j1"}); err != nil {
				t.Fatal(err)
			}
			panic("boom")
		})
	}()
	if _, err := s.Journey(ctx, "j1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Journey after panic = %v, want ErrNotFound", err)
	}
	// The connection went back to the pool: all of them can be used.
	for i := range 2 * defaultMaxConns {
		if err := s.Atomic(ctx, func(tx store.Tx) error {
			return tx.CreateJourney(ctx, store.Journey{ID: fmt.Sprint("j", i+2)})
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkStartJourney measures the store work of one reset start: two
// rate-limit hits, the journey, its challenge, the outbox message and the
// audit event, in one Atomic transaction.
func BenchmarkStartJourney(b *testing.B) {
	s := openAt(b, freshSchema(b))
	var n atomic.Int64
	b.ReportAllocs()
	for b.Loop() {
		startJourney(b, s, n.Add(1))
	}
}

// BenchmarkStartJourneyParallel runs the same transaction from
// GOMAXPROCS goroutines (SetParallelism 4 each, like concurrent requests).
func BenchmarkStartJourneyParallel(b *testing.B) {
	s := openAt(b, freshSchema(b))
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			startJourney(b, s, n.Add(1))
		}
	})
}

func startJourney(b *testing.B, s *Store, i int64) {
	ctx := b.Context()
	now := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC).Add(time.Duration(i) * time.Millisecond)
	window := now.Truncate(time.Minute)
	id := fmt.Sprintf("journey-%016d", i)
	token := sha256.Sum256([]byte(id))
	code := sha256.Sum256([]byte("code" + id))
	payload := bytes.Repeat([]byte{'x'}, 600)
	err := s.Atomic(ctx, func(tx store.Tx) error {
		if _, _, err := tx.Hit(ctx, fmt.Sprintf("ip:%d", i%1000), window, time.Minute); err != nil {
			return err
		}
		if _, _, err := tx.Hit(ctx, fmt.Sprintf("account:%d", i%10000), window, time.Hour); err != nil {
			return err
		}
		if err := tx.CreateJourney(ctx, store.Journey{
			ID: id, UserID: "user", ReturnTo: "https://app.example.com/", Locale: "en",
			CreatedAt: now, ExpiresAt: now.Add(15 * time.Minute),
		}); err != nil {
			return err
		}
		if err := tx.CreateChallenge(ctx, store.Challenge{
			ID: "c" + id, JourneyID: id, Flow: "email", TokenHash: token[:], CodeHash: code[:],
			MaxAttempts: 5, CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute),
		}); err != nil {
			return err
		}
		if _, err := tx.Enqueue(ctx, store.Message{Channel: "email", Payload: payload, CreatedAt: now, NextAttemptAt: now}); err != nil {
			return err
		}
		_, err := tx.AppendAudit(ctx, store.AuditEvent{
			Time: now, Event: "journey.started", JourneyID: id, UserID: "user",
			IP: "192.0.2.1", UserAgent: "Mozilla/5.0", Outcome: "ok",
		})
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}
