package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sspr-go/sspr/plugin/store"
)

// TestGroupCommitIsolation: many concurrent transactions, some failing and
// some panicking, share commits; each one's writes are there exactly when
// it succeeded. The committer is held inside a first transaction until
// every other one waits for it (synctest.Wait: all of them are blocked
// handing their transaction over), so the batches are known: the first
// commit takes as many as it may (maxBatch), not one.
func TestGroupCommitIsolation(t *testing.T) {
	synctest.Test(t, groupCommitIsolation)
}

func groupCommitIsolation(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "g.db"))
	var mu sync.Mutex
	var batches []int
	s.commit.onBatch = func(n int) {
		mu.Lock()
		batches = append(batches, n)
		mu.Unlock()
	}
	base := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	errPlanned := errors.New("planned failure")

	// The first transaction holds the committer until released.
	entered, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- s.Atomic(t.Context(), func(tx store.Tx) error {
			close(entered)
			<-release
			return nil
		})
	}()
	<-entered

	const n = 200
	outcome := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if v := recover(); v != nil {
					outcome[i] = "panic"
				}
			}()
			err := s.Atomic(t.Context(), func(tx store.Tx) error {
				j := store.Journey{ID: fmt.Sprintf("j%03d", i), UserID: "u", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
				if err := tx.CreateJourney(t.Context(), j); err != nil {
					return err
				}
				switch i % 5 {
				case 1:
					return errPlanned
				case 2:
					panic("planned panic")
				}
				return nil
			})
			switch {
			case err == nil:
				outcome[i] = "ok"
			case errors.Is(err, errPlanned):
				outcome[i] = "failed"
			default:
				outcome[i] = "error: " + err.Error()
			}
		}()
	}
	synctest.Wait() // all n wait for the committer
	close(release)
	wg.Wait()
	if err := <-held; err != nil {
		t.Fatalf("the holding transaction: %v", err)
	}
	for i := range n {
		want := map[int]string{0: "ok", 1: "failed", 2: "panic", 3: "ok", 4: "ok"}[i%5]
		if outcome[i] != want {
			t.Fatalf("transaction %d: %s, want %s", i, outcome[i], want)
		}
		_, err := s.Journey(t.Context(), fmt.Sprintf("j%03d", i))
		if stored := err == nil; stored != (want == "ok") {
			t.Fatalf("transaction %d (%s): stored = %v (%v)", i, want, stored, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for _, b := range batches {
		total += b
	}
	if total != n+1 {
		t.Fatalf("batches %v hold %d transactions, want %d", batches, total, n+1)
	}
	// The holder's commit took every transaction waiting for it, up to
	// maxBatch.
	if batches[0] < 2 {
		t.Fatalf("batches %v: the first commit held %d transaction, while %d waited: no group commit", batches, batches[0], n)
	}
	if want := min(n+1, maxBatch); batches[0] != want {
		t.Fatalf("batches %v: the first commit held %d transactions, want %d", batches, batches[0], want)
	}
	t.Logf("batches: %v", batches)
}

// TestClosedStoreRefusesWrites: after Close a write transaction fails
// instead of hanging.
func TestClosedStoreRefusesWrites(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "c.db"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	err := s.Atomic(t.Context(), func(tx store.Tx) error { return nil })
	if !errors.Is(err, errClosed) {
		t.Fatalf("Atomic after Close: %v", err)
	}
}

// TestCheckpointsBoundTheLog: with automatic checkpoints off, the store's
// own checkpoints keep the write-ahead log near its restart size while
// writers and readers run without pause. Without checkpoints the log grows
// to about 100 MiB here; with passive checkpoints alone (no restart) to
// 45–100 MiB on a fast build (under -race the readers are slow enough that
// the log sometimes restarts by itself).
func TestCheckpointsBoundTheLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	s := openAt(t, path)
	// A small log limit, so that this test writes many times as much.
	const restartAt = 2048
	s.ckpt.restartAt.Store(restartAt)
	ctx := t.Context()
	base := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Audit(ctx, store.AuditFilter{Limit: 5}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	const writers, each = 4, 3000
	var wg sync.WaitGroup
	var maxWAL atomic.Int64
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				e := store.AuditEvent{Time: base, Event: "test.event", UserID: fmt.Sprintf("u%d-%d", w, i), Detail: string(make([]byte, 300))}
				if _, err := s.AppendAudit(ctx, e); err != nil {
					t.Error(err)
					return
				}
				if w == 0 && i%20 == 19 {
					if err := s.ckpt.checkpoint(ctx); err != nil {
						t.Error(err)
						return
					}
					if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > maxWAL.Load() {
						maxWAL.Store(fi.Size())
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	limit := int64(8 * restartAt * pageSize) // without restarts: 45–100 MiB
	t.Logf("largest write-ahead log: %.1f MiB (limit %.1f MiB)", float64(maxWAL.Load())/(1<<20), float64(limit)/(1<<20))
	if maxWAL.Load() > limit {
		t.Fatalf("write-ahead log grew to %d bytes, more than %d", maxWAL.Load(), limit)
	}
	n, err := s.Audit(ctx, store.AuditFilter{Event: "test.event", Limit: 1000})
	if err != nil || len(n) != 1000 {
		t.Fatalf("audit after the run: %d, %v", len(n), err)
	}
}

// TestBrokenBatchWritesNothing: when a transaction's savepoint cannot be
// rolled back — SQLite ended the whole transaction itself (as after a full
// disk; played by a ROLLBACK statement), or the savepoint is gone (played
// by releasing it early) — nothing of the batch may be written: not the
// transaction that broke it, not one that succeeded before it, and no later
// one may run in it.
func TestBrokenBatchWritesNothing(t *testing.T) {
	for name, breaker := range map[string]string{"transaction ended": "ROLLBACK", "savepoint gone": "RELEASE tx"} {
		t.Run(name, func(t *testing.T) { brokenBatch(t, breaker) })
	}
}

func brokenBatch(t *testing.T, breaker string) {
	s := openAt(t, filepath.Join(t.TempDir(), "b.db"))
	base := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	// A committer of the test's own, not running: the batch is driven here,
	// with the second transaction already waiting in its queue.
	c := &committer{db: s.writer, reqs: make(chan *request, 2)}
	ctx := t.Context()
	create := func(id string) func(q querier) error {
		return func(q querier) error {
			o := &ops{w: q, r: q, atomically: func(_ context.Context, fn func(querier) error) error { return fn(q) }}
			return o.CreateJourney(ctx, store.Journey{ID: id, CreatedAt: base, ExpiresAt: base.Add(time.Hour)})
		}
	}
	good := &request{ctx: ctx, fn: create("j-good"), done: make(chan result, 1)}
	bad := &request{ctx: ctx, done: make(chan result, 1), fn: func(q querier) error {
		if err := create("j-bad")(q); err != nil {
			return err
		}
		if _, err := q.ExecContext(ctx, breaker); err != nil {
			return err
		}
		return errors.New("disk full")
	}}
	later := &request{ctx: ctx, fn: create("j-later"), done: make(chan result, 1)}
	c.reqs <- bad
	c.reqs <- later
	c.batch(good)
	for _, r := range []*request{good, bad} {
		if res := <-r.done; res.err == nil {
			t.Fatalf("a transaction of a broken batch reported success")
		}
	}
	// The one queued behind it was left for the next batch, not run in a
	// transaction SQLite had already ended (which would have committed it
	// on its own).
	if len(c.reqs) != 1 {
		t.Fatalf("the request after the broken one was taken into the broken batch")
	}
	for _, id := range []string{"j-good", "j-bad", "j-later"} {
		if _, err := s.Journey(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("journey %s of a broken batch: %v, want ErrNotFound", id, err)
		}
	}
	// The store still works, and the connection that replaced the broken
	// one leaves checkpoints to the checkpointer too.
	if err := s.CreateJourney(ctx, store.Journey{ID: "j-after", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var auto int
	if err := s.writer.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&auto); err != nil || auto != 0 {
		t.Fatalf("writer after a broken batch: PRAGMA wal_autocheckpoint = %d (%v), want 0", auto, err)
	}
}

// A batch stops taking transactions once it has run for maxBatchTime:
// those taken early would otherwise wait for all that keep arriving.
func TestLongBatchCommitsWithoutWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := openAt(t, filepath.Join(t.TempDir(), "l.db"))
		base := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
		ctx := t.Context()
		for _, long := range []bool{false, true} {
			// A committer of the test's own, not running: the batch is
			// driven here, with a second transaction already waiting.
			var sizes []int
			c := &committer{db: s.writer, reqs: make(chan *request, 1), onBatch: func(n int) { sizes = append(sizes, n) }}
			create := func(id string, d time.Duration) *request {
				return &request{ctx: ctx, done: make(chan result, 1), fn: func(q querier) error {
					time.Sleep(d) // in the bubble: the clock moves, nothing waits
					o := &ops{w: q, r: q, atomically: func(_ context.Context, fn func(querier) error) error { return fn(q) }}
					return o.CreateJourney(ctx, store.Journey{ID: id, CreatedAt: base, ExpiresAt: base.Add(time.Hour)})
				}}
			}
			d := time.Duration(0)
			if long {
				d = 2 * maxBatchTime
			}
			first, later := create(fmt.Sprintf("first-%t", long), d), create(fmt.Sprintf("later-%t", long), 0)
			c.reqs <- later
			c.batch(first)
			if err := (<-first.done).err; err != nil {
				t.Fatal(err)
			}
			want, left := 2, 0
			if long {
				want, left = 1, 1
			}
			if len(sizes) != 1 || sizes[0] != want || len(c.reqs) != left {
				t.Fatalf("first transaction long: %t: batch of %v with %d left waiting, want %d with %d left", long, sizes, len(c.reqs), want, left)
			}
		}
	})
}

// A batch hands its connection back to the pool unless the connection is
// still inside a transaction; a replacement leaves checkpoints to the
// checkpointer too.
func TestCommitterKeepsOnlyCleanConnections(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "k.db"))
	ctx := t.Context()
	c := &committer{db: s.writer}
	// A setting of the connection's own marks it.
	conn, err := s.writer.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA cache_size = -1234"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	pragma := func(name string) int {
		t.Helper()
		var v int
		if err := s.writer.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}

	tx, err := c.begin()
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.exec("COMMIT"); err != nil {
		t.Fatal(err)
	}
	_ = tx.exec("ROLLBACK") // fails: no transaction; the connection is fine
	tx.close()
	if got := pragma("cache_size"); got != -1234 {
		t.Fatalf("a connection outside any transaction was replaced (cache_size %d)", got)
	}

	if tx, err = c.begin(); err != nil {
		t.Fatal(err)
	}
	tx.close() // still inside the transaction
	if got := pragma("cache_size"); got == -1234 {
		t.Fatal("a connection inside a transaction went back to the pool")
	}
	if got := pragma("wal_autocheckpoint"); got != 0 {
		t.Fatalf("replacement connection: wal_autocheckpoint = %d, want 0", got)
	}
	base := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	if err := s.CreateJourney(ctx, store.Journey{ID: "after", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}); err != nil {
		t.Fatalf("write after the replacement: %v", err)
	}
}

// goroutinesCreated is how many goroutines the process has started so far.
func goroutinesCreated() uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// database/sql starts a goroutine for every transaction, and one for every
// query inside a transaction or under a context that can be cancelled; the
// driver one more. Writes through the committer and lookups by key start
// none (there were about three for each reset start), yet a caller that
// has gone is still refused.
func TestWritesAndLookupsStartNoGoroutines(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "g.db"))
	ctx, cancel := context.WithCancel(t.Context()) // like a request's
	defer cancel()
	base := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	round := func(i int) {
		id := fmt.Sprintf("j-%03d", i)
		err := s.Atomic(ctx, func(tx store.Tx) error {
			if _, _, err := tx.Hit(ctx, "ip:1", base, time.Minute); err != nil { // a query in the transaction
				return err
			}
			return tx.CreateJourney(ctx, store.Journey{ID: id, CreatedAt: base, ExpiresAt: base.Add(time.Hour)})
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Journey(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Factors(ctx, "user", ""); err != nil {
			t.Fatal(err)
		}
	}
	round(0)     // the pools open their connections
	runtime.GC() // the GC's workers (one per P) start with the first cycle
	before := goroutinesCreated()
	const n = 100
	for i := 1; i <= n; i++ {
		round(i)
	}
	// The old code started at least four per round; a few may come from
	// elsewhere in the process (the test framework, the race detector).
	if got := goroutinesCreated() - before; got > n/10 {
		t.Errorf("%d rounds of a write transaction with a query, a journey and a factor lookup started %d goroutines, want (nearly) none", n, got)
	}

	gone, stop := context.WithCancel(t.Context())
	stop()
	if _, err := s.Journey(gone, "j-001"); !errors.Is(err, context.Canceled) {
		t.Errorf("Journey for a caller that has gone = %v, want context.Canceled", err)
	}
	if _, err := s.Factors(gone, "user", ""); !errors.Is(err, context.Canceled) {
		t.Errorf("Factors for a caller that has gone = %v, want context.Canceled", err)
	}
}
