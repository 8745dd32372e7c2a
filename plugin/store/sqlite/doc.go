// Package sqlite is the embedded default [store.Store] of sspr, on SQLite
// through github.com/mattn/go-sqlite3 (cgo).
//
// # Opening
//
//	st, err := sqlite.Config{Path: "/var/lib/sspr/sspr.db"}.Open(ctx, logger)
//	if err != nil {
//		return err
//	}
//	defer st.Close()
//
// Open creates the parent folder and the file if needed and applies the
// embedded migrations (migrations/NNNN_name.sql) in order, in one
// transaction, recording each in the schema_migrations table; opening an
// up-to-date database changes nothing, and a database migrated by a newer
// version of this package is refused.
//
// # Connections
//
// The file is in WAL mode and opened twice:
//   - one writer connection (SetMaxOpenConns(1); BEGIN IMMEDIATE,
//     busy_timeout, foreign keys on, synchronous=NORMAL) runs every write
//     and every [Store.Atomic] transaction, so writes never fail with
//     "database is locked" inside one process;
//   - a pool of read-only connections (mode=ro) serves plain reads outside
//     transactions (Journey, Challenge, ChallengeByToken, LatestChallenge,
//     Count, Audit, OutboxMessage, PasswordHistory, Factor, Factors),
//     concurrently with the writer. Reads by key run without their caller's
//     cancellation, which is checked before the statement instead:
//     database/sql would start a goroutine per query to watch it.
//
// Writes go through one committer goroutine (group commit, commit.go):
// each write transaction runs in a savepoint of a shared transaction, and
// all that arrived while the previous commit ran commit together (a
// batch takes more for at most a millisecond, maxBatchTime), so hot
// pages reach the write-ahead log once per batch instead of once per
// transaction; an error or panic rolls back only its own savepoint.
// Automatic checkpoints are off on the writer: a background goroutine on a
// third connection runs PASSIVE checkpoints every 250 ms while writes go
// on, and restarts the log between two write transactions once it passes
// 128 MiB (checkpoint.go), so no request pays for a checkpoint in its
// commit and the log stays bounded.
//
// The shared cache (cache=shared) is never used. Each connection keeps its
// compiled statements (the driver's _stmt_cache_size), so the hot path does
// not re-parse SQL.
//
// # Atomic operations
//
// Single-use secrets are consumed by one conditional UPDATE … RETURNING
// (for example ConsumeToken sets used_at WHERE the token is unused,
// unexpired and has attempts left); only when it matches nothing does a
// read in the same transaction decide which sentinel to return, in the
// order [store.ErrNotFound], [store.ErrUsed], [store.ErrExhausted],
// [store.ErrExpired]. A wrong code is counted by a second UPDATE in that
// transaction. AdvanceCounter is one UPDATE … WHERE id = ? AND counter < ?,
// followed only on no match by a read that tells [store.ErrNotFound] from
// [store.ErrUsed]. ConsumeFactor is one DELETE … RETURNING through the
// unique index on (user_id, flow, secret), so a recovery code is spent once
// without a read first. Claim leases outbox messages with a single UPDATE …
// WHERE id IN (SELECT … ORDER BY id LIMIT n), and Hit is one upsert.
// Operations that need several statements run in a transaction of their
// own outside [Store.Atomic], and in the caller's transaction inside it.
//
// # Storage format
//
//   - Times are INTEGER Unix nanoseconds in UTC; the zero time is NULL and
//     counts as earlier than any other time (a zero ExpiresAt has expired).
//     Times outside the int64 range (1677-09-21 to 2262-04-11) are clamped
//     to it. Times are returned in UTC.
//   - Journey.Verified is the flow IDs joined with ','; flow IDs must be
//     non-empty and free of ','.
//   - History.Keys is one BLOB: for each key, newest first, its length as
//     an unsigned varint (encoding/binary) followed by its bytes.
//   - Empty byte slices are stored as NULL and read back as nil.
//   - Factors (migration 0002) are an ordinary rowid table, indexed on
//     (user_id, flow); a partial UNIQUE index on (user_id, flow, secret)
//     WHERE length(secret) > 0 makes non-empty secrets unique per user and
//     flow while any number of factors may have none. An empty secret never
//     matches ConsumeFactor. Factors lists by created_at, then id.
//
// # Errors
//
// Errors carry the "sqlite: " prefix and the operation, and wrap the
// sentinels of package store with %w (test them with [errors.Is]); UNIQUE
// and PRIMARY KEY violations become [store.ErrConflict] wrapping the driver
// error.
package sqlite
