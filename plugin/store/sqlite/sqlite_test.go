package sqlite

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"

	"github.com/sspr-go/sspr/plugin/store"
	"github.com/sspr-go/sspr/plugin/store/storetest"
)

// quiet returns a logger that discards everything.
func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// openAt opens a store at path and closes it when the test ends unless
// the caller does so first (closing twice is harmless).
func openAt(tb testing.TB, path string) *Store {
	tb.Helper()
	s, err := Config{Path: path}.Open(tb.Context(), quiet())
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Config{Path: filepath.Join(t.TempDir(), "sspr.db")}.Open(t.Context(), quiet())
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
		want string
	}{
		{"no path", Config{}, "sqlite: config: field 'Path': required"},
		{"memory", Config{Path: ":memory:"}, "sqlite: config: field 'Path': must be a file path"},
		{"uri", Config{Path: "file:x.db?mode=memory"}, "sqlite: config: field 'Path': must be a file path"},
		{
			"negative busy timeout and no path", Config{BusyTimeout: -time.Second},
			"sqlite: config: field 'Path': required\nsqlite: config: field 'BusyTimeout': must not be negative",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.cfg.Open(t.Context(), quiet())
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if err.Error() != tc.want {
				t.Fatalf("Open error = %q, want %q", err, tc.want)
			}
		})
	}
}

// schemaState returns the applied migrations and the schema's SQL.
func schemaState(t *testing.T, s *Store) (versions []int, schema string) {
	t.Helper()
	rows, err := s.writer.QueryContext(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	if err := s.writer.QueryRowContext(t.Context(),
		`SELECT group_concat(sql, ';') FROM (SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY name)`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	return versions, schema
}

func TestMigrationsReopen(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	var wantVersions []int
	for _, m := range ms {
		wantVersions = append(wantVersions, m.Version)
	}
	path := filepath.Join(t.TempDir(), "sspr.db")
	base := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)

	s := openAt(t, path)
	versions, schema := schemaState(t, s)
	if fmt.Sprint(versions) != fmt.Sprint(wantVersions) {
		t.Fatalf("applied migrations %v, want %v", versions, wantVersions)
	}
	j := store.Journey{ID: "j1", UserID: "u1", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
	if err := s.CreateJourney(t.Context(), j); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for i := range 2 {
		s := openAt(t, path)
		v, sc := schemaState(t, s)
		if fmt.Sprint(v) != fmt.Sprint(wantVersions) || sc != schema {
			t.Fatalf("reopen %d: migrations %v and schema changed", i, v)
		}
		if _, err := s.Journey(t.Context(), "j1"); err != nil {
			t.Fatalf("reopen %d: Journey: %v", i, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenConcurrently(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sspr.db")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			s, err := Config{Path: path}.Open(t.Context(), quiet())
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Open: %v", err)
		}
	}
	s := openAt(t, path)
	versions, _ := schemaState(t, s)
	if len(versions) == 0 {
		t.Fatal("no migrations recorded")
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sspr.db")
	s := openAt(t, path)
	if _, err := s.writer.ExecContext(t.Context(), `INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_future.sql')`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := Config{Path: path}.Open(t.Context(), quiet())
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open of a newer schema = %v, want an error", err)
	}
}

func TestOpenCreatesParentFolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a b", "odd?#%3F name", "sspr.db")
	s := openAt(t, path)
	if err := s.CreateJourney(t.Context(), store.Journey{ID: "j1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Journey(t.Context(), "j1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at %q: %v", path, err)
	}
}

func TestConnections(t *testing.T) {
	s, err := Config{Path: filepath.Join(t.TempDir(), "sspr.db"), BusyTimeout: 1500 * time.Millisecond}.Open(t.Context(), quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct {
		pragma, want string
	}{
		{"journal_mode", "wal"},
		{"busy_timeout", "1500"},
		{"foreign_keys", "1"},
		{"synchronous", "1"}, // NORMAL
		{"page_size", "2048"},
		{"wal_autocheckpoint", "0"}, // checkpoint.go runs them
	} {
		var got string
		if err := s.writer.QueryRowContext(t.Context(), "PRAGMA "+tc.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("writer PRAGMA %s = %s, want %s", tc.pragma, got, tc.want)
		}
	}
	if got := s.writer.Stats().MaxOpenConnections; got != 1 {
		t.Errorf("writer MaxOpenConnections = %d, want 1", got)
	}
	_, err = s.reader.ExecContext(t.Context(), `INSERT INTO journeys (id, user_id, verified, return_to, locale, version) VALUES ('x', '', '', '', '', 0)`)
	if err == nil || !strings.Contains(err.Error(), "readonly") {
		t.Errorf("write through the reader = %v, want a read-only error", err)
	}
}

func TestTimesAndErrors(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "sspr.db"))
	ctx := t.Context()
	zone := time.FixedZone("X", -7*3600)
	created := time.Date(2031, 3, 4, 5, 6, 7, 123456789, zone)
	j := store.Journey{ID: "j1", UserID: "u1", Verified: []string{"email"}, CreatedAt: created, ExpiresAt: created.Add(time.Hour)}
	if err := s.CreateJourney(ctx, j); err != nil {
		t.Fatal(err)
	}
	got, err := s.Journey(ctx, "j1")
	if err != nil {
		t.Fatal(err)
	}
	if got.CreatedAt.Location() != time.UTC || !got.CreatedAt.Equal(created) || got.CreatedAt.Nanosecond() != 123456789 {
		t.Errorf("CreatedAt = %v, want %v in UTC with nanoseconds", got.CreatedAt, created.UTC())
	}
	if !got.CompletedAt.IsZero() {
		t.Errorf("CompletedAt = %v, want zero", got.CompletedAt)
	}

	err = s.CreateJourney(ctx, j)
	var se sqlite3.Error
	if !errors.Is(err, store.ErrConflict) || !errors.As(err, &se) || !strings.HasPrefix(err.Error(), "sqlite: create journey: ") {
		t.Errorf("duplicate CreateJourney = %v, want a prefixed ErrConflict wrapping the driver error", err)
	}
	if _, err := s.Journey(ctx, "nope"); err == nil || err.Error() != "sqlite: journey: store: not found" {
		t.Errorf("Journey(nope) = %v", err)
	}

	bad := store.Journey{ID: "j2", Verified: []string{"email,sms"}}
	if err := s.CreateJourney(ctx, bad); err == nil || errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateJourney with a comma in a flow ID = %v, want a plain error", err)
	}
	if _, err := s.ConsumeToken(ctx, []byte("t"), time.Time{}); err == nil {
		t.Error("ConsumeToken with a zero now succeeded")
	}
}

func TestFactors(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "sspr.db"))
	ctx := t.Context()

	// ConsumeFactor searches the partial unique index; without the
	// repeated length(secret) > 0 SQLite would not use it.
	var plan strings.Builder
	rows, err := s.writer.QueryContext(ctx, "EXPLAIN QUERY PLAN "+consumeFactorSQL, "u1", "recovery", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(detail + "\n")
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan.String(), "INDEX factors_secret (user_id=? AND flow=? AND secret=?)") {
		t.Errorf("ConsumeFactor plan:\n%s want a search of factors_secret on all three columns", plan.String())
	}

	f := store.Factor{ID: "f1", UserID: "u1", Flow: "recovery", Secret: []byte("hash")}
	if err := s.CreateFactor(ctx, f); err != nil {
		t.Fatal(err)
	}
	f.ID = "f2"
	err = s.CreateFactor(ctx, f)
	var se sqlite3.Error
	if !errors.Is(err, store.ErrConflict) || !errors.As(err, &se) || !strings.HasPrefix(err.Error(), "sqlite: create factor: ") {
		t.Errorf("CreateFactor with a duplicate secret = %v, want a prefixed ErrConflict wrapping the driver error", err)
	}
	if _, err := s.Factor(ctx, "nope"); err == nil || err.Error() != "sqlite: factor: store: not found" {
		t.Errorf("Factor(nope) = %v", err)
	}
	if err := s.AdvanceCounter(ctx, "nope", 1, time.Now()); err == nil || err.Error() != "sqlite: advance counter: store: not found" {
		t.Errorf("AdvanceCounter(nope) = %v", err)
	}
	if err := s.AdvanceCounter(ctx, "f1", 1, time.Time{}); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("AdvanceCounter with a zero now = %v, want a plain error", err)
	}
	if n, err := s.DeleteFactors(ctx, "u1", ""); err != nil || n != 0 {
		t.Errorf("DeleteFactors with an empty flow = %d, %v; want 0 deleted", n, err)
	}
}

func TestKeysEncoding(t *testing.T) {
	keys := [][]byte{bytes.Repeat([]byte{1}, 32), {}, bytes.Repeat([]byte{2}, 300)}
	enc := encodeKeys(keys).([]byte)
	got, err := decodeKeys(enc)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !bytes.Equal(got[0], keys[0]) || len(got[1]) != 0 || !bytes.Equal(got[2], keys[2]) {
		t.Fatalf("decodeKeys(encodeKeys(k)) = %x", got)
	}
	if encodeKeys(nil) != nil {
		t.Error("encodeKeys(nil) is not NULL")
	}
	for _, corrupt := range [][]byte{{0x80}, {5, 1, 2}, append(enc, 40)} {
		if _, err := decodeKeys(corrupt); err == nil {
			t.Errorf("decodeKeys(%x) succeeded", corrupt)
		}
	}
}

func TestAtomicPanicRollsBack(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "sspr.db"))
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
	// The writer connection was released.
	if err := s.CreateJourney(ctx, store.Journey{ID: "j2"}); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkStartJourney measures the store work of one reset start: two
// rate-limit hits, the journey, its challenge, the outbox message and the
// audit event, in one Atomic transaction.
func BenchmarkStartJourney(b *testing.B) {
	s := openAt(b, filepath.Join(b.TempDir(), "sspr.db"))
	var n atomic.Int64
	b.ReportAllocs()
	for b.Loop() {
		startJourney(b, s, n.Add(1))
	}
}

// BenchmarkStartJourneyParallel runs the same transaction from
// GOMAXPROCS goroutines (SetParallelism 4 each, like concurrent requests).
func BenchmarkStartJourneyParallel(b *testing.B) {
	s := openAt(b, filepath.Join(b.TempDir(), "sspr.db"))
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
