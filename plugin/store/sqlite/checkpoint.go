package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Checkpoints. SQLite copies the write-ahead log back into the database
// file in a checkpoint, by default inside whichever commit pushes the log
// past 1,000 pages: that commit, and every write queued behind it, waits
// for the copy and two fsyncs (the p99 of a reset start was 12–28 ms
// because of it). The store turns automatic checkpoints off on the writer
// and runs them itself:
//
//   - every checkpointInterval a PASSIVE checkpoint on a connection of its
//     own copies what it can while writes go on;
//   - when the log has grown past restartPages anyway (writes outran the
//     copying, so the log could never start over), a RESTART checkpoint
//     runs between two write transactions: the passive ones already copied
//     nearly everything, so it is short, and the next write starts the log
//     from its beginning again. The log file thus stays near restartPages.

// checkpointInterval is how often the background checkpoint runs. Each
// one ends with an fsync of the database file, and on ext4 an fsync's
// journal commit can hold up the writer's own writes to the log: every
// 250 ms instead of every 50 ms, the p99 of a reset start at concurrency 8
// fell from 10.8–11.5 ms to 9.9–10.4 ms (examples/bench/BENCHMARKS.md,
// stop 10); the log does not grow past restartPages either way.
const checkpointInterval = 250 * time.Millisecond

// restartPages is the log size (in pages) past which a checkpoint
// restarts the log: 65,536 pages of 2 KiB, 128 MiB. A restart stops every
// write for 5–50 ms (it copies what the last passive checkpoint left and
// waits for the database file's fsync), so it should be rare: a reset
// start adds about 18 pages to the log, so at 2,000 starts a second this
// is every 2 s (at 32 MiB it was every 0.7 s, and the writes it held up
// were the p99 of a start at concurrency 8: 17–20 ms against 21–26 ms).
// The log file stays at most this big (plus what arrives during a
// restart); the space is reused, not returned.
const restartPages = 65536

// restartWait is how long a restarting checkpoint waits for readers of
// the log to finish, and restartWaitLong how long when the log is twice
// restartPages already.
const (
	restartWait     = 5 * time.Millisecond
	restartWaitLong = 50 * time.Millisecond
	// restartPoll is the pause between two tries.
	restartPoll = 200 * time.Microsecond
)

// checkpointer runs the store's checkpoints until stopped.
type checkpointer struct {
	db     *sql.DB // its own read-write connection
	commit *committer
	busy   time.Duration // the writer's busy timeout, restored after a restart
	logger *slog.Logger
	quit   chan struct{}
	done   chan struct{}
	once   sync.Once
	// restartAt is restartPages; tests lower it.
	restartAt atomic.Int64
}

func (k *checkpointer) run() {
	defer close(k.done)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-k.quit:
			return
		case <-t.C:
			if err := k.checkpoint(context.Background()); err != nil {
				k.logger.Warn("sqlite: checkpoint failed", slog.Any("err", err))
			}
		}
	}
}

// checkpoint runs a passive checkpoint and, when the log is long, a
// restarting one between two write transactions.
func (k *checkpointer) checkpoint(ctx context.Context) error {
	busy, pages, _, err := checkpoint(ctx, k.db, "PASSIVE")
	if err != nil {
		return err
	}
	limit := int(k.restartAt.Load())
	if busy || pages < limit {
		return nil
	}
	wait := restartWait
	if pages >= 2*limit {
		wait = restartWaitLong
	}
	return k.commit.exclusive(ctx, func(ctx context.Context, db *sql.DB) error {
		return restart(ctx, db, wait, k.busy)
	})
}

// checkpoint runs PRAGMA wal_checkpoint(mode) and returns whether it was
// blocked, the log's size and how much of it is in the database file, in
// pages.
func checkpoint(ctx context.Context, db *sql.DB, mode string) (busy bool, logPages, done int, err error) {
	var b int
	if err := db.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&b, &logPages, &done); err != nil {
		return false, 0, 0, fmt.Errorf("sqlite: checkpoint %s: %w", mode, err)
	}
	return b != 0, logPages, done, nil
}

// stop ends the checkpoints; it may be called more than once.
func (k *checkpointer) stop() {
	k.once.Do(func() { close(k.quit) })
	<-k.done
}

// restart runs RESTART checkpoints on the writer until one is not blocked
// by a reader, for at most wait. It does not use SQLite's busy handler,
// whose sleeps (1, 2, 5, 10 ms …) are long next to a reader's snapshot of
// a few tens of microseconds: every write waits while it runs. A reader
// that still holds an old snapshot when wait ends only delays the restart
// to the next round. busy is the writer's busy timeout, restored after.
func restart(ctx context.Context, db *sql.DB, wait, busy time.Duration) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA busy_timeout = 0"); err != nil {
		return err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA busy_timeout = "+strconv.FormatInt(busy.Milliseconds(), 10)) //nolint:errcheck // best effort; the next connection starts with the DSN's
	deadline := time.Now().Add(wait)
	for {
		var b, logPages, done int
		if err := conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(RESTART)").Scan(&b, &logPages, &done); err != nil {
			return fmt.Errorf("sqlite: checkpoint RESTART: %w", err)
		}
		if b == 0 || !time.Now().Before(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(restartPoll):
		}
	}
}
