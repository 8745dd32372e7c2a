package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// Group commit. Every write transaction of a Store ([Store.Atomic] and the
// multi-statement operations) is handed to one committer goroutine, which
// runs each in a savepoint of a shared write transaction and commits once
// for all that arrived while the previous batch was running. Under load a
// commit then writes each hot page (a B-tree root, the newest leaf of the
// outbox, of the audit trail, …) to the write-ahead log once for many
// transactions instead of once each, so the log grows several times slower
// and checkpoints come as much less often; when idle, a batch holds one
// transaction and nothing waits.
//
// A transaction's outcome does not depend on its neighbours: an error (or
// a panic) rolls back its own savepoint only; a failed commit fails every
// transaction of the batch, none of which took effect.

// maxBatch bounds the transactions of one commit, so that a steady stream
// cannot postpone a commit (and its callers' answers) for long.
const maxBatch = 64

// maxBatchTime bounds how long a batch goes on taking the transactions
// that arrive while it runs. A transaction taken early waits for the
// whole batch's commit; once the batch has run this long it commits, and
// the rest wait for the next one. A/B at concurrency 8 (7 pairs): p99 of
// a reset start 9.2–10.2 → 8.8–9.5 ms, p90 5.0–5.2 → 4.8–4.9 ms, the
// same starts a second.
const maxBatchTime = time.Millisecond

// request is one write transaction waiting for the committer, or (with
// barrier set) work that must run on the writer connection between
// transactions, while no write can start: a checkpoint that restarts the
// write-ahead log.
type request struct {
	ctx     context.Context
	fn      func(q querier) error
	barrier func(ctx context.Context, db *sql.DB) error
	done    chan result
}

// result is a request's outcome: its error, or the panic it raised.
// broken reports that its savepoint could not be rolled back or released
// (or SQLite ended the transaction itself, after a full disk or an I/O
// error): the batch's transaction can then hold anything, and it must be
// rolled back as a whole.
type result struct {
	err      error
	panicked bool
	panicVal any
	broken   bool
}

// committer runs write transactions in batches on the writer connection.
type committer struct {
	db   *sql.DB
	reqs chan *request
	quit chan struct{}
	done chan struct{}
	once sync.Once
	// onBatch, when set (tests), learns each committed batch's size.
	onBatch func(n int)
}

func newCommitter(db *sql.DB) *committer {
	c := &committer{db: db, reqs: make(chan *request), quit: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

// commitError is a failure of the batch's transaction itself (begin or
// commit), as opposed to an error of a caller's function.
type commitError struct{ err error }

func (e commitError) Error() string { return e.err.Error() }
func (e commitError) Unwrap() error { return e.err }

// errClosed is returned for transactions submitted after Close.
var errClosed = errors.New("sqlite: store closed")

// do runs fn in a write transaction and returns its error (or the commit's);
// a panic in fn is raised again here.
func (c *committer) do(ctx context.Context, fn func(q querier) error) error {
	r := &request{ctx: ctx, fn: fn, done: make(chan result, 1)}
	select {
	case c.reqs <- r:
	case <-c.quit:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	res := <-r.done
	if res.panicked {
		panic(res.panicVal)
	}
	return res.err
}

// close stops the committer after the batch it is running.
func (c *committer) close() {
	c.once.Do(func() { close(c.quit) })
	<-c.done
}

func (c *committer) run() {
	defer close(c.done)
	for {
		var first *request
		select {
		case first = <-c.reqs:
		case <-c.quit:
			return
		}
		if first.barrier != nil {
			first.done <- result{err: first.barrier(first.ctx, c.db)}
			continue
		}
		c.batch(first)
	}
}

// exclusive runs fn on the writer connection while no write transaction
// runs, and returns its error.
func (c *committer) exclusive(ctx context.Context, fn func(ctx context.Context, db *sql.DB) error) error {
	r := &request{ctx: ctx, barrier: fn, done: make(chan result, 1)}
	select {
	case c.reqs <- r:
	case <-c.quit:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	return (<-r.done).err
}

// batch runs first and whatever else is waiting (up to maxBatch) in one
// transaction, then answers them all.
func (c *committer) batch(first *request) {
	tx, err := c.begin()
	if err != nil {
		first.done <- result{err: commitError{fmt.Errorf("begin: %w", err)}}
		return
	}
	q := uncancelled{tx.conn}
	var ran []*request
	var deferred *request // a barrier that arrived during the batch
	var results []result
	next := first
	broken := false
	began := time.Now()
	for next != nil {
		res := c.one(tx, q, next)
		results = append(results, res)
		ran = append(ran, next)
		next = nil
		if res.broken {
			broken = true
			break
		}
		if len(ran) < maxBatch && time.Since(began) < maxBatchTime {
			select {
			case next = <-c.reqs:
			default:
			}
		}
		if next != nil && next.barrier != nil {
			deferred = next
			next = nil
		}
	}
	err = nil
	if broken {
		_ = tx.exec("ROLLBACK")
		err = commitError{errors.New("commit: the transaction failed; nothing of this batch was written")}
	} else if err = tx.exec("COMMIT"); err != nil {
		_ = tx.exec("ROLLBACK")
		err = commitError{fmt.Errorf("commit: %w", err)}
	}
	// The connection goes back to the pool before the answers: a
	// deferred barrier (a restarting checkpoint) needs it.
	tx.close()
	if err != nil {
		for i := range results {
			if !results[i].panicked {
				results[i].err = err
			}
		}
	}
	if c.onBatch != nil {
		c.onBatch(len(ran))
	}
	for i, r := range ran {
		r.done <- results[i]
	}
	if deferred != nil {
		deferred.done <- result{err: deferred.barrier(deferred.ctx, c.db)}
	}
}

// batchTx is the write transaction of one batch, on the writer's one
// connection. The committer runs BEGIN and COMMIT itself rather than
// through [sql.Tx]: database/sql starts a goroutine for every transaction
// and one more for every query inside it, to watch for a cancellation that
// never comes here (the batch's statements run uncancelled), and each of
// them competes with the requests for the processors (about three a reset
// start; 3 % more starts a second without them).
//
// The price: a transaction's function must close every *sql.Rows and scan
// every *sql.Row it opens before it returns (this package always does). A
// leftover one keeps the connection busy, and handing it back would wait
// for it, holding every later write; sql.Tx closed leftovers at commit.
type batchTx struct {
	conn *sql.Conn
}

// begin takes the writer's connection and starts a write transaction on it.
func (c *committer) begin() (batchTx, error) {
	conn, err := c.db.Conn(context.Background())
	if err != nil {
		return batchTx{}, err
	}
	tx := batchTx{conn: conn}
	if err := tx.exec("BEGIN IMMEDIATE"); err != nil {
		tx.close()
		return batchTx{}, err
	}
	return tx, nil
}

// exec runs a statement of the transaction's own (BEGIN, SAVEPOINT, …).
func (t batchTx) exec(stmt string) error {
	_, err := t.conn.ExecContext(context.Background(), stmt)
	return err
}

// close hands the connection back to the pool, unless it is still inside a
// transaction (a ROLLBACK that failed): then it is closed for good, and
// the pool opens a new one for the next batch. A connection that only saw
// an error (a busy database at BEGIN, a ROLLBACK after SQLite had already
// ended the transaction) is kept, with its compiled statements.
func (t batchTx) close() {
	_ = t.conn.Raw(func(c any) error {
		if sc, ok := c.(*sqlite3.SQLiteConn); !ok || !sc.AutoCommit() {
			return driver.ErrBadConn
		}
		return nil
	})
	_ = t.conn.Close()
}

// one runs r in a savepoint of tx and rolls the savepoint back when r
// fails or panics.
func (c *committer) one(tx batchTx, q querier, r *request) (res result) {
	if err := r.ctx.Err(); err != nil {
		return result{err: err}
	}
	if err := tx.exec("SAVEPOINT tx"); err != nil {
		return result{err: fmt.Errorf("savepoint: %w", err)}
	}
	defer func() {
		if v := recover(); v != nil {
			res = result{panicked: true, panicVal: v}
		}
		if res.err != nil || res.panicked {
			if err := tx.exec("ROLLBACK TO tx"); err != nil {
				res.broken = true
				if !res.panicked {
					res.err = errors.Join(res.err, fmt.Errorf("rollback: %w", err))
				}
				return // releasing now would keep the failed writes
			}
		}
		if err := tx.exec("RELEASE tx"); err != nil {
			res.broken = true
			if res.err == nil && !res.panicked {
				res.err = fmt.Errorf("release: %w", err)
			}
		}
	}()
	err := r.fn(q)
	if err == nil {
		// A caller that gave up while fn ran gets nothing committed.
		err = r.ctx.Err()
	}
	return result{err: err}
}

// uncancelled runs statements without their caller's cancellation: the
// driver interrupts a cancelled statement, and SQLite then rolls back the
// whole transaction, which holds other callers' work too. A caller that
// gives up still gets its answer when the batch commits.
type uncancelled struct{ q querier }

func (u uncancelled) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return u.q.ExecContext(context.WithoutCancel(ctx), query, args...)
}

func (u uncancelled) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return u.q.QueryContext(context.WithoutCancel(ctx), query, args...)
}

func (u uncancelled) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return u.q.QueryRowContext(context.WithoutCancel(ctx), query, args...)
}

// batched is the Store's writer outside a transaction: each statement runs
// as a transaction of its own through the committer, so single-statement
// writes (a message marked sent, an audit event) share commits too. Only
// ExecContext is batched; queries that write (… RETURNING) go through
// ops.atomically, which sees the whole result inside the transaction.
type batched struct {
	c      *committer
	direct querier
}

func (b batched) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	var res sql.Result
	err := b.c.do(ctx, func(q querier) error {
		var err error
		res, err = q.ExecContext(ctx, query, args...)
		return err
	})
	return res, err
}

func (b batched) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return b.direct.QueryContext(ctx, query, args...)
}

func (b batched) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return b.direct.QueryRowContext(ctx, query, args...)
}
