package sqlite

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sspr-go/sspr/plugin/store"
)

// TestGroupCommitIsolation: many concurrent transactions, some failing and
// some panicking, share commits; each one's writes are there exactly when
// it succeeded.
func TestGroupCommitIsolation(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "g.db"))
	var biggest atomic.Int64
	s.commit.onBatch = func(n int) {
		if int64(n) > biggest.Load() {
			biggest.Store(int64(n))
		}
	}
	base := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	errPlanned := errors.New("planned failure")
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
	wg.Wait()
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
	t.Logf("largest batch: %d transactions", biggest.Load())
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
