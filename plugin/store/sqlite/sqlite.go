package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"

	"github.com/sspr-go/sspr/plugin/store"
	smigrations "github.com/sspr-go/sspr/plugin/store/internal/migrations"
)

var _ store.Store = (*Store)(nil)

// defaultBusyTimeout is the default of [Config.BusyTimeout].
const defaultBusyTimeout = 5 * time.Second

// pageSize is the page size of new database files. Each commit writes
// every page it changed to the write-ahead log, and a reset start changes
// about 17 pages of a few rows each, so pages smaller than SQLite's default
// 4096 bytes cut the bytes written (and later synced by checkpoints) per
// request (by about a fifth, measured). Rows of the WITHOUT ROWID tables
// up to about 480 bytes still fit in a page without overflow; 1024-byte
// pages would halve that.
const pageSize = 2048

// stmtCacheSize is the number of prepared statements the driver keeps per
// connection. It exceeds the number of distinct queries of this package,
// so every statement is compiled once per connection.
const stmtCacheSize = 64

// Config configures the SQLite store. The zero value is not usable: Path is
// required.
type Config struct {
	// Path is the database file. Its parent folder is created (mode 0700)
	// if it is missing. Required; ":memory:" is refused because the store
	// opens the file through two connection pools.
	Path string

	// BusyTimeout is how long a connection waits for a lock held by
	// another connection or process before failing with "database is
	// locked". Default: 5s.
	BusyTimeout time.Duration
}

// Store is the SQLite implementation of [store.Store]. Writes and [Store.Atomic]
// go through one connection (SQLite allows one writer at a time), plain reads
// through a pool of read-only connections. A Store is safe for concurrent use
// by multiple goroutines; several processes may share the file, though their
// writes are serialized by SQLite's lock.
type Store struct {
	ops
	writer *sql.DB
	reader *sql.DB
	commit *committer
	ckpt   *checkpointer
	logger *slog.Logger
}

// Open validates c, opens (or creates) the database file, applies pending
// migrations and returns the store. A nil logger means [slog.Default]. The
// caller must [Store.Close] the store.
func (c Config) Open(ctx context.Context, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With(slog.Group("store", "backend", "sqlite"))

	if err := c.validate(); err != nil {
		return nil, err
	}
	if c.BusyTimeout == 0 {
		c.BusyTimeout = defaultBusyTimeout
	}
	path, err := filepath.Abs(c.Path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}

	if err := initFile(ctx, path, c.BusyTimeout); err != nil {
		return nil, err
	}
	s := &Store{logger: logger}
	// Checkpoints off the write path (checkpoint.go): none in commits, on
	// every connection the writer pool opens (a broken one is replaced).
	s.writer = sql.OpenDB(writerConnector{dsn: dsn(path, c.BusyTimeout, false)})
	// One connection, kept forever: SQLite has a single writer, and the
	// connection's statement cache survives.
	s.writer.SetMaxOpenConns(1)
	s.writer.SetMaxIdleConns(1)
	s.writer.SetConnMaxLifetime(0)
	s.writer.SetConnMaxIdleTime(0)
	if err := s.migrate(ctx); err != nil {
		return nil, errors.Join(err, s.writer.Close())
	}

	s.reader, err = sql.Open("sqlite3", dsn(path, c.BusyTimeout, true))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("sqlite: open reader: %w", err), s.writer.Close())
	}
	n := max(4, runtime.GOMAXPROCS(0))
	s.reader.SetMaxOpenConns(n)
	s.reader.SetMaxIdleConns(n)
	s.reader.SetConnMaxLifetime(0)
	s.reader.SetConnMaxIdleTime(0)
	if err := s.reader.PingContext(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("sqlite: open reader: %w", err), s.Close())
	}

	// Checkpoints run on a connection of their own.
	ckdb, err := sql.Open("sqlite3", dsn(path, c.BusyTimeout, false))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("sqlite: open checkpointer: %w", err), s.Close())
	}
	ckdb.SetMaxOpenConns(1)
	ckdb.SetMaxIdleConns(1)
	ckdb.SetConnMaxLifetime(0)
	ckdb.SetConnMaxIdleTime(0)

	s.commit = newCommitter(s.writer)
	s.ckpt = &checkpointer{db: ckdb, commit: s.commit, busy: c.BusyTimeout, logger: logger, quit: make(chan struct{}), done: make(chan struct{})}
	s.ckpt.restartAt.Store(restartPages)
	go s.ckpt.run()
	s.ops = ops{w: batched{c: s.commit, direct: s.writer}, r: byKey{s.reader}, atomically: s.commit.do}
	return s, nil
}

// initFile creates the database file with [pageSize] pages and switches it
// to WAL mode; both settings persist in the file. A new file's page size
// can only be set before its first write, which the writer's DSN (with
// _journal_mode=WAL) would make on connecting, hence this separate
// connection. On a file already in WAL mode it changes nothing.
func initFile(ctx context.Context, path string, busy time.Duration) error {
	db, err := sql.Open("sqlite3", "file:"+escapePath(path)+"?_busy_timeout="+strconv.FormatInt(busy.Milliseconds(), 10))
	if err != nil {
		return fmt.Errorf("sqlite: open: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	mode, err := journalMode(ctx, db, "")
	if err != nil || mode == "wal" {
		return err
	}
	if _, err := db.ExecContext(ctx, "PRAGMA page_size = "+strconv.Itoa(pageSize)); err != nil {
		return fmt.Errorf("sqlite: open: %w", err)
	}
	// Switching needs an exclusive lock, and SQLite does not wait for it
	// when another connection is switching at the same moment (it would
	// deadlock), so retry until the busy timeout.
	timer := time.NewTimer(busy)
	defer timer.Stop()
	for {
		mode, err = journalMode(ctx, db, "WAL")
		var se sqlite3.Error
		if !errors.As(err, &se) || se.Code != sqlite3.ErrBusy {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sqlite: open: %w", ctx.Err())
		case <-timer.C:
			return err
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err != nil {
		return err
	}
	if mode != "wal" {
		return fmt.Errorf("sqlite: open: cannot use WAL mode (journal mode is %q)", mode)
	}
	return nil
}

// journalMode sets the journal mode (unless set is empty) and returns the
// current one.
func journalMode(ctx context.Context, db *sql.DB, set string) (string, error) {
	q := "PRAGMA journal_mode"
	if set != "" {
		q += " = " + set
	}
	var mode string
	if err := db.QueryRowContext(ctx, q).Scan(&mode); err != nil {
		return "", fmt.Errorf("sqlite: open: journal mode: %w", err)
	}
	return strings.ToLower(mode), nil
}

func (c Config) validate() error {
	var errs []error
	switch {
	case c.Path == "":
		errs = append(errs, errors.New("sqlite: config: field 'Path': required"))
	case c.Path == ":memory:" || strings.HasPrefix(c.Path, "file:"):
		errs = append(errs, errors.New("sqlite: config: field 'Path': must be a file path"))
	}
	if c.BusyTimeout < 0 {
		errs = append(errs, errors.New("sqlite: config: field 'BusyTimeout': must not be negative"))
	}
	return errors.Join(errs...)
}

// writerConnector opens the writer's connections with automatic
// checkpoints off (the checkpointer runs them), whichever connection the
// pool opens: the first, or one replacing a connection closed after an
// error.
type writerConnector struct {
	dsn string
}

// Connect implements [driver.Connector].
func (w writerConnector) Connect(context.Context) (driver.Conn, error) {
	return w.Driver().Open(w.dsn)
}

// Driver implements [driver.Connector].
func (writerConnector) Driver() driver.Driver {
	return &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		_, err := c.Exec("PRAGMA wal_autocheckpoint = 0", nil)
		return err
	}}
}

// dsn builds the data source name of the writer or of the read-only pool.
// The path is escaped as a URI path (SQLite decodes %HH), so names with '?',
// '#' or '%' work.
func dsn(path string, busy time.Duration, readOnly bool) string {
	p := escapePath(path)
	q := "_busy_timeout=" + strconv.FormatInt(busy.Milliseconds(), 10) +
		"&_stmt_cache_size=" + strconv.Itoa(stmtCacheSize)
	if readOnly {
		return "file:" + p + "?mode=ro&" + q
	}
	return "file:" + p + "?" + q +
		"&_journal_mode=WAL&_txlock=immediate&_foreign_keys=on&_synchronous=NORMAL"
}

// escapePath escapes path for a file: URI.
func escapePath(path string) string {
	return (&url.URL{Path: filepath.ToSlash(path)}).EscapedPath()
}

// Atomic runs fn as one write transaction: reads through tx see its own
// writes; its writes take effect when fn returns nil, and are rolled back
// when fn returns an error (which Atomic returns unchanged) or panics (the
// panic goes on in the caller). Transactions that arrive together commit
// together (group commit, see commit.go), each in its own savepoint. When
// ctx ends before fn returns, fn's writes are rolled back and Atomic
// returns ctx's error; fn's statements themselves are not interrupted (an
// interrupt would end the whole batch).
// While fn runs, other writes of this process wait, so keep fn short and
// free of network calls.
func (s *Store) Atomic(ctx context.Context, fn func(tx store.Tx) error) error {
	err := s.commit.do(ctx, func(q querier) error {
		return fn(&ops{w: q, r: q, atomically: func(_ context.Context, fn func(querier) error) error { return fn(q) }})
	})
	var c commitError
	if errors.As(err, &c) {
		return fmt.Errorf("sqlite: atomic: %w", err)
	}
	return err
}

// writeTx runs fn in a write transaction of its own, bypassing the
// committer (for migrations, which run before it starts).
func (s *Store) writeTx(ctx context.Context, fn func(q querier) error) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Close closes both connection pools. When the last connection closes,
// SQLite checkpoints the write-ahead log into the database file.
func (s *Store) Close() error {
	var errs []error
	if s.ckpt != nil {
		s.ckpt.stop()
		if err := s.ckpt.db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("sqlite: close checkpointer: %w", err))
		}
	}
	if s.commit != nil {
		s.commit.close()
	}
	if s.reader != nil {
		if err := s.reader.Close(); err != nil {
			errs = append(errs, fmt.Errorf("sqlite: close reader: %w", err))
		}
	}
	if err := s.writer.Close(); err != nil {
		errs = append(errs, fmt.Errorf("sqlite: close writer: %w", err))
	}
	return errors.Join(errs...)
}

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrations lists the embedded migrations in version order.
func migrations() ([]smigrations.Migration, error) {
	return smigrations.List(migrationFS, "migrations")
}

// migrate applies the pending migrations in one transaction, recording each
// in schema_migrations. BEGIN IMMEDIATE makes concurrent openers (other
// processes) wait for each other, so each migration runs once. It refuses a
// database migrated by a newer version of this package.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	var applied []string
	err = s.writeTx(ctx, func(q querier) error {
		applied = applied[:0]
		if _, err := q.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER NOT NULL PRIMARY KEY,
			name    TEXT    NOT NULL
		) STRICT`); err != nil {
			return err
		}
		var current int
		if err := q.QueryRowContext(ctx, `SELECT IFNULL(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return err
		}
		if latest := ms[len(ms)-1].Version; current > latest {
			return fmt.Errorf("database schema version %d is newer than this program's %d", current, latest)
		}
		for _, m := range ms {
			if m.Version <= current {
				continue
			}
			if _, err := q.ExecContext(ctx, m.SQL); err != nil {
				return fmt.Errorf("%s: %w", m.Name, err)
			}
			if _, err := q.ExecContext(ctx, `INSERT INTO schema_migrations (version, name) VALUES (?, ?)`, m.Version, m.Name); err != nil {
				return fmt.Errorf("%s: %w", m.Name, err)
			}
			applied = append(applied, m.Name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	for _, name := range applied {
		s.logger.InfoContext(ctx, "applied migration", "migration", name)
	}
	return nil
}

// isUnique reports whether err is a UNIQUE or PRIMARY KEY violation.
func isUnique(err error) bool {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return false
	}
	return se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey
}

// wrap prefixes err with the package and operation, and maps constraint
// violations to [store.ErrConflict] (keeping the driver error).
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if isUnique(err) {
		return fmt.Errorf("sqlite: %s: %w: %w", op, store.ErrConflict, err)
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}
