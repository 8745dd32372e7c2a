package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sspr-go/sspr/plugin/store"
	smigrations "github.com/sspr-go/sspr/plugin/store/internal/migrations"
)

var _ store.Store = (*Store)(nil)

// defaultMaxConns is the default of [Config.MaxConns].
const defaultMaxConns = 8

// migrationLock is the first key of the transaction-level advisory lock
// that serializes migrations ("SSPR" in ASCII); the second key is a hash
// of the schema, so instances using different schemas do not wait for
// each other.
const migrationLock int32 = 0x53535052

// rollbackTimeout bounds the ROLLBACK that ends a failed [Store.Atomic],
// which runs even when the caller's context has ended.
const rollbackTimeout = 5 * time.Second

// Config configures the PostgreSQL store. The zero value is not usable:
// URL is required.
type Config struct {
	// URL is the connection string, as a URL
	// (postgres://user:password@host:5432/dbname?sslmode=verify-full) or
	// in keyword/value form, with any parameter pgx accepts. Required.
	// The tables live in the current schema (the first existing schema of
	// the connection's search_path); choose one with a search_path
	// parameter (…&search_path=sspr). The pool size is MaxConns, whatever
	// pool_max_conns says.
	URL string

	// MaxConns is the maximum number of connections in the pool. It must
	// be at least 2: a [Store.Atomic] transaction holds one connection
	// while reads outside it use others. Default: 8.
	MaxConns int32
}

// Store is the PostgreSQL implementation of [store.Store], on a pgx
// connection pool. It is safe for concurrent use by multiple goroutines and
// by several processes (instances) sharing the database: every single-use
// operation is one conditional statement, and outbox claims skip messages
// other instances are claiming.
type Store struct {
	ops
	pool   *pgxpool.Pool
	logger *slog.Logger
}

// Open validates c, connects, applies pending migrations and returns the
// store. A nil logger means [slog.Default]. The caller must [Store.Close]
// the store. Several instances may open the same database at once: the
// migrations run under an advisory lock, once.
func (c Config) Open(ctx context.Context, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With(slog.Group("store", "backend", "postgres"))

	pc, err := c.poolConfig()
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	s := &Store{ops: ops{q: pool}, pool: pool, logger: logger}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// poolConfig validates c and returns the pool configuration it describes.
func (c Config) poolConfig() (*pgxpool.Config, error) {
	var (
		errs []error
		pc   *pgxpool.Config
	)
	if c.URL == "" {
		errs = append(errs, errors.New("postgres: config: field 'URL': required"))
	} else {
		var err error
		// pgconn redacts the password in its parse errors.
		if pc, err = pgxpool.ParseConfig(c.URL); err != nil {
			errs = append(errs, fmt.Errorf("postgres: config: field 'URL': %w", err))
		}
	}
	if c.MaxConns < 0 || c.MaxConns == 1 {
		errs = append(errs, errors.New("postgres: config: field 'MaxConns': must be at least 2 (0 means 8)"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	pc.MaxConns = c.MaxConns
	if pc.MaxConns == 0 {
		pc.MaxConns = defaultMaxConns
	}
	pc.MinConns = min(pc.MinConns, pc.MaxConns)
	if _, ok := pc.ConnConfig.RuntimeParams["application_name"]; !ok {
		pc.ConnConfig.RuntimeParams["application_name"] = "sspr"
	}
	return pc, nil
}

// Atomic runs fn in one READ COMMITTED transaction on one connection of
// the pool. Reads through tx see the transaction's own writes. It commits
// when fn returns nil, and rolls back when fn returns an error (which it
// returns unchanged), when fn panics (the panic goes on) or when ctx ends.
//
// A sentinel error returned by an operation of tx leaves the transaction
// usable, so fn may go on and commit: conflicts are detected with ON
// CONFLICT DO NOTHING or conditional statements that never fail, and the
// one statement that can violate a unique constraint
// (ReissueChallenge's new token) runs under a SAVEPOINT. Any other error
// of an operation (a lost connection, an ended context) aborts the
// transaction; fn should return it.
//
// Each statement of fn sees the data committed before it started (READ
// COMMITTED), not a snapshot taken when the transaction began; the single-
// use operations stay atomic because each is one conditional statement.
func (s *Store) Atomic(ctx context.Context, fn func(tx store.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return fmt.Errorf("postgres: atomic: begin: %w", err)
	}
	defer rollback(ctx, tx) // a no-op after Commit
	if err := fn(&ops{q: tx, tx: tx}); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: atomic: commit: %w", err)
	}
	return nil
}

// rollback ends tx unless it was committed, even when ctx has ended. On
// failure pgx closes the connection, which makes the server roll back.
func rollback(ctx context.Context, tx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	_ = tx.Rollback(ctx)
}

// Close closes every connection of the pool, waiting for those in use to
// be released. It always returns nil.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrations lists the embedded migrations in version order.
func migrations() ([]smigrations.Migration, error) {
	return smigrations.List(migrationFS, "migrations")
}

// migrate applies the pending migrations in one transaction, recording each
// in schema_migrations. The transaction first takes an advisory lock for
// the current schema, so instances opening the database at once wait for
// each other and each migration runs once; as every statement of a READ
// COMMITTED transaction sees what was committed before it started, the
// instance that waited sees the tables its predecessor created. It refuses
// a database migrated by a newer version of this package.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	var applied []string
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		applied = applied[:0]
		var schema *string
		if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
			return err
		}
		if schema == nil {
			return errors.New("no schema to create tables in: the search_path names no existing schema")
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, migrationLock, *schema); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		// Looked up first, so that a role without CREATE on the schema can
		// open an up-to-date database.
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables
			WHERE schemaname = current_schema() AND tablename = 'schema_migrations')`).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			if _, err := tx.Exec(ctx, `CREATE TABLE schema_migrations (
				version    integer     NOT NULL PRIMARY KEY,
				name       text        NOT NULL,
				applied_at timestamptz NOT NULL DEFAULT now()
			)`); err != nil {
				return err
			}
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return err
		}
		if latest := ms[len(ms)-1].Version; current > latest {
			return fmt.Errorf("database schema version %d is newer than this program's %d", current, latest)
		}
		for _, m := range ms {
			if m.Version <= current {
				continue
			}
			// Without arguments pgx uses the simple protocol, which runs
			// every statement of the file.
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("%s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
				return fmt.Errorf("%s: %w", m.Name, err)
			}
			applied = append(applied, m.Name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	for _, name := range applied {
		s.logger.InfoContext(ctx, "applied migration", "migration", name)
	}
	return nil
}

// uniqueViolation is the SQLSTATE of a UNIQUE or PRIMARY KEY violation.
const uniqueViolation = "23505"

// isUnique reports whether err is a unique violation.
func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == uniqueViolation
}

// wrap prefixes err with the package and operation, and maps unique
// violations to [store.ErrConflict] (keeping the server's error).
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if isUnique(err) {
		return fmt.Errorf("postgres: %s: %w: %w", op, store.ErrConflict, err)
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}
