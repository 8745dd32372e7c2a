// Package postgres is the [store.Store] of sspr on PostgreSQL, through
// github.com/jackc/pgx/v5 (pgxpool). It is the backend for running several
// instances of sspr: journeys, challenges, counters and the outbox live in
// the database, so any instance can continue any journey, and each outbox
// message is claimed by exactly one instance.
//
// # Opening
//
//	st, err := postgres.Config{
//		URL: "postgres://sspr:secret@db.internal:5432/sspr?sslmode=verify-full&search_path=sspr",
//	}.Open(ctx, logger)
//	if err != nil {
//		return err
//	}
//	defer st.Close()
//
// Open connects a pool of up to [Config.MaxConns] connections (default 8)
// and applies the embedded migrations (migrations/NNNN_name.sql) in order,
// in one transaction, recording each in the schema_migrations table. That
// transaction first takes pg_advisory_xact_lock on a key derived from the
// schema, so instances starting at once wait for each other and each
// migration runs once; opening an up-to-date database changes nothing, and
// a database migrated by a newer version of this package is refused.
//
// The tables are created in the current schema, the first existing schema
// of the connection's search_path (usually public unless the URL sets
// search_path). Their names (journeys, audit, schema_migrations…) are
// generic, so give sspr a schema of its own when the database is shared.
// The role needs CREATE on the schema while migrations are pending, and
// otherwise only SELECT, INSERT, UPDATE and DELETE on the tables. Statements are prepared and cached per
// connection (pgx's default); behind a pooler in transaction mode, add
// default_query_exec_mode=exec (or simple_protocol) to the URL.
//
// # Atomic operations
//
// Every operation outside [Store.Atomic] is a single statement, atomic on
// its own, with no explicit transaction:
//   - Single-use secrets are consumed by one conditional UPDATE …
//     RETURNING: ConsumeToken sets used_at WHERE the token is unused,
//     unexpired and has attempts left. Under READ COMMITTED, concurrent
//     calls wait for the row lock and re-check the WHERE clause on the row
//     the winner wrote, so exactly one succeeds. Only when the UPDATE
//     matches nothing does a read pick the sentinel, in the order
//     [store.ErrNotFound], [store.ErrUsed], [store.ErrExhausted],
//     [store.ErrExpired]. CompleteJourney and AdvanceCounter (… AND
//     counter < value) work alike.
//   - ConsumeCode is one UPDATE that either consumes the challenge (the
//     code matches) or counts the wrong attempt, and says which in its
//     RETURNING clause; wrong codes are counted exactly up to MaxAttempts.
//   - ConsumeFactor is one DELETE … RETURNING through the partial unique
//     index on (user_id, flow, secret).
//   - Hit is one INSERT … ON CONFLICT DO UPDATE SET count = count + 1
//     RETURNING the count (and the previous window's).
//   - Claim is one UPDATE … WHERE id IN (SELECT id … ORDER BY id LIMIT n
//     FOR UPDATE SKIP LOCKED) RETURNING …: concurrent claims of any number
//     of instances take disjoint messages and never wait for each other.
//   - Sweep is one statement of data-modifying CTEs.
//
// Because each statement of a READ COMMITTED transaction sees the latest
// committed data, the read that explains a failed UPDATE may find the
// record usable again (a concurrent ReissueChallenge or UpdateJourney moved
// its expiry); the operation then tries again, a few times, before
// returning [store.ErrConflict].
//
// # Transactions
//
// [Store.Atomic] runs fn in a READ COMMITTED transaction on one pooled
// connection; plain reads go through other connections meanwhile. A
// sentinel error inside it does not abort the transaction: inserts use ON
// CONFLICT DO NOTHING (a conflict is [store.ErrConflict], no error is
// raised), single-use operations are conditional statements that never
// fail, and ReissueChallenge, whose new token may violate the unique
// constraint, runs under a SAVEPOINT that is rolled back on failure. Any
// other failure (a lost connection, an ended context) aborts the
// transaction.
//
// # Storage format
//
// The logical schema is the SQLite store's:
//   - Times are timestamptz: microsecond precision (finer digits are
//     truncated), returned in UTC. The zero time is NULL and counts as
//     earlier than any other time (a zero ExpiresAt has expired; it sorts
//     first in Factors and last in Audit and LatestChallenge).
//   - Journey.Verified is a text[]; History.Keys a bytea[], newest first.
//   - Empty byte slices are stored as NULL and read back as nil. CHECK
//     constraints keep empty values out of challenges.token_hash and
//     factors.secret, whose uniqueness (UNIQUE, and a partial unique index
//     on (user_id, flow, secret) WHERE secret IS NOT NULL) therefore only
//     binds real tokens and secrets.
//   - Outbox and audit IDs come from identity columns: increasing, with
//     gaps where transactions rolled back.
//   - Identifier columns use the "C" collation (byte order, as in SQLite).
//   - PostgreSQL text holds neither NUL bytes nor invalid UTF-8. The
//     display-only strings (AuditEvent IP, UserAgent, Outcome and Detail;
//     Message.LastError) are stored with invalid sequences replaced by
//     U+FFFD and NUL bytes dropped; other strings (IDs, user IDs, keys) must
//     be valid UTF-8 without NUL, or the operation fails.
//
// # Errors
//
// Errors carry the "postgres: " prefix and the operation, and wrap the
// sentinels of package store with %w (test them with [errors.Is]); a
// unique violation (SQLSTATE 23505) becomes [store.ErrConflict] wrapping
// the server's error. Configuration errors name the field:
// "postgres: config: field 'URL': required".
//
// # Tests
//
// The conformance suite (store/storetest) and this package's tests run
// against the database named by the SSPR_TEST_POSTGRES_URL environment
// variable, each test in a schema of its own that it drops at the end;
// they are skipped only when the variable is unset. .ci/run starts a
// throwaway server and sets it.
package postgres
