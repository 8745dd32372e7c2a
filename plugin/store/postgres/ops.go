package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sspr-go/sspr/plugin/store"
)

// querier is what *pgxpool.Pool and pgx.Tx have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ops implements [store.Tx]. Outside a transaction q is the pool and tx is
// nil, and every operation's write is a single statement (atomic on its
// own); inside [Store.Atomic] both are the transaction.
type ops struct {
	q  querier
	tx pgx.Tx
}

var _ store.Tx = (*ops)(nil)

// errZeroNow guards operations that record "now": a zero time would be
// stored as NULL, which reads as "not yet" (undoing a single-use guarantee,
// or marking an advanced factor as never used).
var errZeroNow = errors.New("now must not be the zero time")

// maxTries bounds how often a single-use operation is tried when its
// conditional statement matched nothing but the read that followed found
// the record usable: under READ COMMITTED the two statements see different
// moments, and a concurrent ReissueChallenge or UpdateJourney (a new
// expiry) may have come in between.
const maxTries = 3

type scanner interface {
	Scan(dest ...any) error
}

// ---- times, bytes and text ----

// nullTime returns t for storage: NULL for the zero time. PostgreSQL keeps
// microseconds; pgx truncates the rest.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// fromTS converts a stored time back, in UTC; NULL is the zero time.
func fromTS(ts pgtype.Timestamptz) time.Time {
	if !ts.Valid || ts.InfinityModifier != pgtype.Finite {
		return time.Time{}
	}
	return ts.Time.UTC()
}

// nullBytes stores an empty slice as NULL.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// cleanText makes a free-form, display-only string storable in a text
// column, which holds neither NUL nor invalid UTF-8 (a header truncated in
// the middle of a character, say): invalid sequences become U+FFFD and NUL
// bytes are dropped. Valid strings are returned unchanged.
func cleanText(s string) string {
	if utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

// ---- journeys ----

const journeyCols = `id, kind, user_id, verified, return_to, locale, created_at, expires_at, completed_at, version`

func scanJourney(sc scanner) (store.Journey, error) {
	var (
		j                           store.Journey
		created, expires, completed pgtype.Timestamptz
	)
	err := sc.Scan(&j.ID, &j.Kind, &j.UserID, &j.Verified, &j.ReturnTo, &j.Locale, &created, &expires, &completed, &j.Version)
	if len(j.Verified) == 0 {
		j.Verified = nil
	}
	j.CreatedAt, j.ExpiresAt, j.CompletedAt = fromTS(created), fromTS(expires), fromTS(completed)
	return j, err
}

// verifiedArg stores Journey.Verified as a text array, empty rather than
// NULL.
func verifiedArg(ids []string) []string {
	if ids == nil {
		return []string{}
	}
	return ids
}

// CreateJourney implements [store.JourneyStore.CreateJourney] with INSERT …
// ON CONFLICT DO NOTHING, so a duplicate ID is reported without an error
// that would abort a transaction.
func (o *ops) CreateJourney(ctx context.Context, j store.Journey) error {
	tag, err := o.q.Exec(ctx, `INSERT INTO journeys (`+journeyCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING`,
		j.ID, j.Kind, j.UserID, verifiedArg(j.Verified), j.ReturnTo, j.Locale,
		nullTime(j.CreatedAt), nullTime(j.ExpiresAt), nullTime(j.CompletedAt), j.Version)
	return wrap("create journey", insertedOne(tag, err))
}

// insertedOne turns "no row inserted" (ON CONFLICT DO NOTHING) into
// [store.ErrConflict].
func insertedOne(tag pgconn.CommandTag, err error) error {
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return store.ErrConflict
	}
	return nil
}

// Journey implements [store.JourneyStore.Journey].
func (o *ops) Journey(ctx context.Context, id string) (store.Journey, error) {
	j, err := scanJourney(o.q.QueryRow(ctx, `SELECT `+journeyCols+` FROM journeys WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Journey{}, fmt.Errorf("postgres: journey: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Journey{}, wrap("journey", err)
	}
	return j, nil
}

// exists reports whether the query (SELECT EXISTS …) finds a row.
func (o *ops) exists(ctx context.Context, query string, args ...any) (bool, error) {
	var ok bool
	err := o.q.QueryRow(ctx, query, args...).Scan(&ok)
	return ok, err
}

// UpdateJourney implements [store.JourneyStore.UpdateJourney] with one
// conditional UPDATE; only when it matches nothing does a read tell
// [store.ErrNotFound] from [store.ErrConflict]. It stores every field of j
// except ID, Kind (fixed at creation), Version (incremented) and
// CompletedAt, which only CompleteJourney sets.
func (o *ops) UpdateJourney(ctx context.Context, j store.Journey) error {
	tag, err := o.q.Exec(ctx, `UPDATE journeys
		SET user_id = $1, verified = $2, return_to = $3, locale = $4, created_at = $5, expires_at = $6, version = version + 1
		WHERE id = $7 AND version = $8 AND completed_at IS NULL`,
		j.UserID, verifiedArg(j.Verified), j.ReturnTo, j.Locale, nullTime(j.CreatedAt), nullTime(j.ExpiresAt), j.ID, j.Version)
	if err != nil {
		return wrap("update journey", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	ok, err := o.exists(ctx, `SELECT EXISTS (SELECT 1 FROM journeys WHERE id = $1)`, j.ID)
	switch {
	case err != nil:
		return wrap("update journey", err)
	case !ok:
		return fmt.Errorf("postgres: update journey: %w", store.ErrNotFound)
	}
	return fmt.Errorf("postgres: update journey: %w", store.ErrConflict) // stale version or completed
}

// CompleteJourney implements [store.JourneyStore.CompleteJourney] with one
// conditional UPDATE; when it matches nothing, a read picks the error. It
// also increments the version. A journey is expired when now >= ExpiresAt.
// When a journey is both completed and expired, [store.ErrUsed] wins.
func (o *ops) CompleteJourney(ctx context.Context, id string, now time.Time) error {
	if now.IsZero() {
		return fmt.Errorf("postgres: complete journey: %w", errZeroNow)
	}
	for range maxTries {
		tag, err := o.q.Exec(ctx, `UPDATE journeys SET completed_at = $1, version = version + 1
			WHERE id = $2 AND completed_at IS NULL AND expires_at > $1`, now, id)
		if err != nil {
			return wrap("complete journey", err)
		}
		if tag.RowsAffected() == 1 {
			return nil
		}
		var completed, expired bool
		err = o.q.QueryRow(ctx, `SELECT completed_at IS NOT NULL, expires_at IS NULL OR expires_at <= $2
			FROM journeys WHERE id = $1`, id, now).Scan(&completed, &expired)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("postgres: complete journey: %w", store.ErrNotFound)
		case err != nil:
			return wrap("complete journey", err)
		case completed:
			return fmt.Errorf("postgres: complete journey: %w", store.ErrUsed)
		case expired:
			return fmt.Errorf("postgres: complete journey: %w", store.ErrExpired)
		}
		// Its expiry moved between the two statements: try again.
	}
	return fmt.Errorf("postgres: complete journey: %w", store.ErrConflict)
}

// ---- challenges ----

const challengeCols = `id, journey_id, flow, token_hash, code_hash, data, attempts, max_attempts, reissues, created_at, expires_at, used_at`

func scanChallenge(sc scanner, extra ...any) (store.Challenge, error) {
	var (
		c                      store.Challenge
		created, expires, used pgtype.Timestamptz
	)
	dest := append([]any{&c.ID, &c.JourneyID, &c.Flow, &c.TokenHash, &c.CodeHash, &c.Data,
		&c.Attempts, &c.MaxAttempts, &c.Reissues, &created, &expires, &used}, extra...)
	err := sc.Scan(dest...)
	c.CreatedAt, c.ExpiresAt, c.UsedAt = fromTS(created), fromTS(expires), fromTS(used)
	return c, err
}

// CreateChallenge implements [store.ChallengeStore.CreateChallenge] with
// INSERT … ON CONFLICT DO NOTHING (a duplicate ID or token).
func (o *ops) CreateChallenge(ctx context.Context, c store.Challenge) error {
	tag, err := o.q.Exec(ctx, `INSERT INTO challenges (`+challengeCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING`,
		c.ID, c.JourneyID, c.Flow, nullBytes(c.TokenHash), nullBytes(c.CodeHash), nullBytes(c.Data),
		c.Attempts, c.MaxAttempts, c.Reissues, nullTime(c.CreatedAt), nullTime(c.ExpiresAt), nullTime(c.UsedAt))
	return wrap("create challenge", insertedOne(tag, err))
}

// challenge reads one challenge with the given query.
func (o *ops) challenge(ctx context.Context, op, query string, args ...any) (store.Challenge, error) {
	c, err := scanChallenge(o.q.QueryRow(ctx, query, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Challenge{}, fmt.Errorf("postgres: %s: %w", op, store.ErrNotFound)
	}
	if err != nil {
		return store.Challenge{}, wrap(op, err)
	}
	return c, nil
}

// Challenge implements [store.ChallengeStore.Challenge].
func (o *ops) Challenge(ctx context.Context, id string) (store.Challenge, error) {
	return o.challenge(ctx, "challenge", `SELECT `+challengeCols+` FROM challenges WHERE id = $1`, id)
}

// ChallengeByToken implements [store.ChallengeStore.ChallengeByToken]. An
// empty tokenHash matches nothing.
func (o *ops) ChallengeByToken(ctx context.Context, tokenHash []byte) (store.Challenge, error) {
	if len(tokenHash) == 0 {
		return store.Challenge{}, fmt.Errorf("postgres: challenge by token: %w", store.ErrNotFound)
	}
	return o.challenge(ctx, "challenge by token", `SELECT `+challengeCols+` FROM challenges WHERE token_hash = $1`, tokenHash)
}

// LatestChallenge implements [store.ChallengeStore.LatestChallenge]: the
// greatest CreatedAt wins, and among equal ones the greatest ID.
func (o *ops) LatestChallenge(ctx context.Context, journeyID, flow string) (store.Challenge, error) {
	return o.challenge(ctx, "latest challenge", `SELECT `+challengeCols+` FROM challenges
		WHERE journey_id = $1 AND flow = $2 ORDER BY created_at DESC NULLS LAST, id DESC LIMIT 1`, journeyID, flow)
}

// whyNot explains why the challenge selected by cond (with $1 its
// argument) could not be consumed at now. Precedence: missing, used, no
// attempts left, expired (now >= ExpiresAt). It returns nil when the
// challenge is consumable: the caller then tries again.
func (o *ops) whyNot(ctx context.Context, cond string, arg any, now time.Time) error {
	var used, exhausted, expired bool
	err := o.q.QueryRow(ctx, `SELECT used_at IS NOT NULL, attempts >= max_attempts, expires_at IS NULL OR expires_at <= $2
		FROM challenges WHERE `+cond, arg, now).Scan(&used, &exhausted, &expired)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return store.ErrNotFound
	case err != nil:
		return err
	case used:
		return store.ErrUsed
	case exhausted:
		return store.ErrExhausted
	case expired:
		return store.ErrExpired
	}
	return nil
}

// ConsumeToken implements [store.ChallengeStore.ConsumeToken] with one
// UPDATE … WHERE used_at IS NULL AND expires_at > now AND attempts <
// max_attempts RETURNING: of concurrent calls, the others wait for the row
// lock, re-check the condition on the new row and match nothing. Only then
// does a read pick the error (precedence: [store.ErrNotFound],
// [store.ErrUsed], [store.ErrExhausted], [store.ErrExpired]). A challenge
// is expired when now >= ExpiresAt.
func (o *ops) ConsumeToken(ctx context.Context, tokenHash []byte, now time.Time) (store.Challenge, error) {
	if now.IsZero() {
		return store.Challenge{}, fmt.Errorf("postgres: consume token: %w", errZeroNow)
	}
	if len(tokenHash) == 0 {
		return store.Challenge{}, fmt.Errorf("postgres: consume token: %w", store.ErrNotFound)
	}
	for range maxTries {
		c, err := scanChallenge(o.q.QueryRow(ctx, `UPDATE challenges SET used_at = $1
			WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 AND attempts < max_attempts
			RETURNING `+challengeCols, now, tokenHash))
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return store.Challenge{}, wrap("consume token", err)
		}
		if err := o.whyNot(ctx, `token_hash = $1`, tokenHash, now); err != nil {
			return store.Challenge{}, wrap("consume token", err)
		}
	}
	return store.Challenge{}, fmt.Errorf("postgres: consume token: %w", store.ErrConflict)
}

// ConsumeCode implements [store.ChallengeStore.ConsumeCode] with one
// UPDATE of the unused, unexpired challenge with attempts left: if the code
// matches it sets used_at, otherwise it counts the attempt, and RETURNING
// tells which. Concurrent calls are serialized by the row lock, so wrong
// codes are counted exactly up to MaxAttempts. When the UPDATE matches
// nothing, a read picks the error (precedence as for ConsumeToken). An
// empty code hash matches nothing. Inside [Store.Atomic], the counted
// attempt is rolled back with the transaction if fn returns an error.
func (o *ops) ConsumeCode(ctx context.Context, id string, codeHash []byte, now time.Time) (store.Challenge, error) {
	if now.IsZero() {
		return store.Challenge{}, fmt.Errorf("postgres: consume code: %w", errZeroNow)
	}
	for range maxTries {
		var matched bool
		c, err := scanChallenge(o.q.QueryRow(ctx, `UPDATE challenges SET
				used_at  = CASE WHEN code_hash = $2 THEN $3::timestamptz END,
				attempts = CASE WHEN code_hash = $2 THEN attempts ELSE attempts + 1 END
			WHERE id = $1 AND used_at IS NULL AND expires_at > $3 AND attempts < max_attempts
			RETURNING `+challengeCols+`, used_at IS NOT NULL`,
			id, nullBytes(codeHash), now), &matched)
		switch {
		case err == nil && matched:
			return c, nil
		case err == nil:
			return c, fmt.Errorf("postgres: consume code: %w", store.ErrMismatch)
		case !errors.Is(err, pgx.ErrNoRows):
			return store.Challenge{}, wrap("consume code", err)
		}
		if err := o.whyNot(ctx, `id = $1`, id, now); err != nil {
			return store.Challenge{}, wrap("consume code", err)
		}
	}
	return store.Challenge{}, fmt.Errorf("postgres: consume code: %w", store.ErrConflict)
}

// ReissueChallenge implements [store.ChallengeStore.ReissueChallenge] with
// one conditional UPDATE … RETURNING. An empty tokenHash or codeHash
// removes the link or the code. Precedence of errors: [store.ErrNotFound],
// [store.ErrUsed], [store.ErrExhausted]; a tokenHash another challenge
// holds is [store.ErrConflict]. Inside [Store.Atomic] the UPDATE runs under
// a SAVEPOINT, so that conflict leaves the transaction usable.
func (o *ops) ReissueChallenge(ctx context.Context, id string, tokenHash, codeHash []byte, expiresAt time.Time, maxReissues int) (store.Challenge, error) {
	var c store.Challenge
	err := o.savepoint(ctx, func(q querier) error {
		var err error
		c, err = scanChallenge(q.QueryRow(ctx, `UPDATE challenges
			SET token_hash = $1, code_hash = $2, expires_at = $3, reissues = reissues + 1
			WHERE id = $4 AND used_at IS NULL AND reissues < $5
			RETURNING `+challengeCols,
			nullBytes(tokenHash), nullBytes(codeHash), nullTime(expiresAt), id, maxReissues))
		return err
	})
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return store.Challenge{}, wrap("reissue challenge", err)
	}
	var used bool
	err = o.q.QueryRow(ctx, `SELECT used_at IS NOT NULL FROM challenges WHERE id = $1`, id).Scan(&used)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		err = store.ErrNotFound
	case err != nil:
	case used:
		err = store.ErrUsed
	default:
		err = store.ErrExhausted
	}
	return store.Challenge{}, wrap("reissue challenge", err)
}

// savepoint runs fn, a statement that may fail with a constraint
// violation. Inside a transaction it runs under a SAVEPOINT that is rolled
// back when fn fails, so the transaction stays usable; outside one the
// statement is its own transaction and needs none.
func (o *ops) savepoint(ctx context.Context, fn func(q querier) error) error {
	if o.tx == nil {
		return fn(o.q)
	}
	sp, err := o.tx.Begin(ctx)
	if err != nil {
		return err
	}
	if err := fn(sp); err != nil {
		if rbErr := sp.Rollback(ctx); rbErr != nil {
			return errors.Join(err, rbErr)
		}
		return err
	}
	return sp.Commit(ctx)
}

// ---- counters ----

// Hit implements [store.CounterStore.Hit] with one upsert (INSERT … ON
// CONFLICT DO UPDATE SET count = count + 1) whose RETURNING clause also
// reads the previous window, so concurrent hits each get their own count.
// A counter is identified by key, windowStart and window together: the same
// key counted with two window lengths gives two counters.
func (o *ops) Hit(ctx context.Context, key string, windowStart time.Time, window time.Duration) (current, previous int64, err error) {
	if window <= 0 {
		return 0, 0, errors.New("postgres: hit: window must be positive")
	}
	cur, prev := counterKeys(windowStart, window)
	err = o.q.QueryRow(ctx, `INSERT INTO counters AS c (expires_at, key, window_start, count) VALUES ($1, $2, $3, 1)
		ON CONFLICT (expires_at, key, window_start) DO UPDATE SET count = c.count + 1
		RETURNING c.count, COALESCE((SELECT p.count FROM counters AS p
			WHERE p.expires_at = $4 AND p.key = $2 AND p.window_start = $5), 0)`,
		cur.expires, key, cur.start, prev.expires, prev.start).Scan(&current, &previous)
	if err != nil {
		return 0, 0, wrap("hit", err)
	}
	return current, previous, nil
}

// Count implements [store.CounterStore.Count].
func (o *ops) Count(ctx context.Context, key string, windowStart time.Time, window time.Duration) (current, previous int64, err error) {
	if window <= 0 {
		return 0, 0, errors.New("postgres: count: window must be positive")
	}
	cur, prev := counterKeys(windowStart, window)
	err = o.q.QueryRow(ctx, `SELECT
		COALESCE((SELECT count FROM counters WHERE expires_at = $1 AND key = $2 AND window_start = $3), 0),
		COALESCE((SELECT count FROM counters WHERE expires_at = $4 AND key = $2 AND window_start = $5), 0)`,
		cur.expires, key, cur.start, prev.expires, prev.start).Scan(&current, &previous)
	if err != nil {
		return 0, 0, wrap("count", err)
	}
	return current, previous, nil
}

// counterKey is the stored key of one window's counter, apart from the
// caller's key.
type counterKey struct {
	expires, start time.Time
}

// counterKeys returns the keys of the window starting at windowStart and
// of the one before it. A window's counter expires at its start + 2*window.
func counterKeys(windowStart time.Time, window time.Duration) (cur, prev counterKey) {
	cur = counterKey{expires: windowStart.Add(2 * window), start: windowStart}
	prev = counterKey{expires: windowStart.Add(window), start: windowStart.Add(-window)}
	return cur, prev
}

// ---- outbox ----

const messageCols = `id, channel, payload, attempts, created_at, next_attempt_at, sent_at, last_error, dead`

func scanMessage(sc scanner) (store.Message, error) {
	var (
		m                   store.Message
		created, next, sent pgtype.Timestamptz
	)
	err := sc.Scan(&m.ID, &m.Channel, &m.Payload, &m.Attempts, &created, &next, &sent, &m.LastError, &m.Dead)
	m.CreatedAt, m.NextAttemptAt, m.SentAt = fromTS(created), fromTS(next), fromTS(sent)
	return m, err
}

// Enqueue implements [store.OutboxStore.Enqueue]. IDs come from an identity
// column, so they increase (with gaps after rolled-back transactions). A
// zero NextAttemptAt makes the message due at once. LastError is stored as
// text (see [cleanText]).
func (o *ops) Enqueue(ctx context.Context, m store.Message) (int64, error) {
	var id int64
	err := o.q.QueryRow(ctx, `INSERT INTO outbox
		(channel, payload, attempts, created_at, next_attempt_at, last_error, dead) VALUES ($1, $2, 0, $3, $4, $5, false)
		RETURNING id`,
		m.Channel, nullBytes(m.Payload), nullTime(m.CreatedAt), nullTime(m.NextAttemptAt), cleanText(m.LastError)).Scan(&id)
	if err != nil {
		return 0, wrap("enqueue", err)
	}
	return id, nil
}

// claimSQL leases due messages. The subquery locks the oldest due rows
// FOR UPDATE SKIP LOCKED, so concurrent claims (of this and other
// instances) take disjoint rows without waiting for each other.
const claimSQL = `UPDATE outbox SET claimed_until = $1, attempts = attempts + 1
	WHERE id IN (SELECT id FROM outbox
		WHERE sent_at IS NULL AND NOT dead
		AND (next_attempt_at IS NULL OR next_attempt_at <= $2)
		AND (claimed_until IS NULL OR claimed_until <= $2)
		ORDER BY id LIMIT $3
		FOR UPDATE SKIP LOCKED)
	RETURNING ` + messageCols

// Claim implements [store.OutboxStore.Claim] with a single UPDATE of rows
// selected FOR UPDATE SKIP LOCKED, so concurrent claims never overlap and
// never wait for each other. Oldest means lowest ID. A lease ends at
// now+lease: from that instant the message can be claimed again. A limit
// of 0 or less claims nothing; lease must be positive.
func (o *ops) Claim(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.Message, error) {
	if lease <= 0 {
		return nil, errors.New("postgres: claim: lease must be positive")
	}
	if limit <= 0 {
		return nil, nil
	}
	rows, err := o.q.Query(ctx, claimSQL, now.Add(lease), now, limit)
	if err != nil {
		return nil, wrap("claim", err)
	}
	defer rows.Close()
	var ms []store.Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, wrap("claim", err)
		}
		ms = append(ms, m)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("claim", err)
	}
	// RETURNING order is unspecified.
	slices.SortFunc(ms, func(a, b store.Message) int { return cmp.Compare(a.ID, b.ID) })
	return ms, nil
}

// MarkSent implements [store.OutboxStore.MarkSent]; it also ends the lease.
func (o *ops) MarkSent(ctx context.Context, id int64, now time.Time) error {
	if now.IsZero() {
		return fmt.Errorf("postgres: mark sent: %w", errZeroNow)
	}
	tag, err := o.q.Exec(ctx, `UPDATE outbox SET sent_at = $1, payload = NULL, claimed_until = NULL WHERE id = $2`, now, id)
	return wrap("mark sent", affectedOne(tag, err))
}

// MarkFailed implements [store.OutboxStore.MarkFailed]; it also ends the
// lease, so the message is due at next even if the lease would run longer.
func (o *ops) MarkFailed(ctx context.Context, id int64, next time.Time, lastError string, dead bool) error {
	tag, err := o.q.Exec(ctx, `UPDATE outbox
		SET next_attempt_at = $1, last_error = $2, dead = $3, claimed_until = NULL,
			payload = CASE WHEN $3 THEN NULL ELSE payload END
		WHERE id = $4`, nullTime(next), cleanText(lastError), dead, id)
	return wrap("mark failed", affectedOne(tag, err))
}

// affectedOne turns "no row changed" into [store.ErrNotFound].
func affectedOne(tag pgconn.CommandTag, err error) error {
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// OutboxMessage implements [store.OutboxStore.OutboxMessage].
func (o *ops) OutboxMessage(ctx context.Context, id int64) (store.Message, error) {
	m, err := scanMessage(o.q.QueryRow(ctx, `SELECT `+messageCols+` FROM outbox WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Message{}, fmt.Errorf("postgres: outbox message: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Message{}, wrap("outbox message", err)
	}
	return m, nil
}

// ---- audit ----

const auditCols = `id, time, event, journey_id, user_id, ip, user_agent, outcome, detail`

// AppendAudit implements [store.AuditStore.AppendAudit]. IP, UserAgent,
// Outcome and Detail are display-only text: invalid UTF-8 in them is
// replaced and NUL bytes are dropped (see [cleanText]).
func (o *ops) AppendAudit(ctx context.Context, e store.AuditEvent) (int64, error) {
	var id int64
	err := o.q.QueryRow(ctx, `INSERT INTO audit
		(time, event, journey_id, user_id, ip, user_agent, outcome, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		RETURNING id`,
		nullTime(e.Time), e.Event, e.JourneyID, e.UserID,
		cleanText(e.IP), cleanText(e.UserAgent), cleanText(e.Outcome), cleanText(e.Detail)).Scan(&id)
	if err != nil {
		return 0, wrap("append audit", err)
	}
	return id, nil
}

// Audit implements [store.AuditStore.Audit]. Events with equal times are
// listed by descending ID (the later appended first); a zero Time counts
// as the oldest. A Limit below 0 is treated as 0 (100 events).
func (o *ops) Audit(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error) {
	var (
		sb   strings.Builder
		args []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	sb.WriteString(`SELECT ` + auditCols + ` FROM audit WHERE true`)
	for _, c := range []struct {
		col string
		val string
	}{{"user_id", f.UserID}, {"journey_id", f.JourneyID}, {"event", f.Event}} {
		if c.val != "" {
			sb.WriteString(` AND ` + c.col + ` = ` + arg(c.val))
		}
	}
	if !f.Since.IsZero() {
		sb.WriteString(` AND time >= ` + arg(f.Since))
	}
	if !f.Until.IsZero() {
		sb.WriteString(` AND time < ` + arg(f.Until))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	sb.WriteString(` ORDER BY time DESC NULLS LAST, id DESC LIMIT ` + arg(limit))

	rows, err := o.q.Query(ctx, sb.String(), args...)
	if err != nil {
		return nil, wrap("audit", err)
	}
	defer rows.Close()
	var es []store.AuditEvent
	for rows.Next() {
		var (
			e store.AuditEvent
			t pgtype.Timestamptz
		)
		if err := rows.Scan(&e.ID, &t, &e.Event, &e.JourneyID, &e.UserID, &e.IP, &e.UserAgent, &e.Outcome, &e.Detail); err != nil {
			return nil, wrap("audit", err)
		}
		e.Time = fromTS(t)
		es = append(es, e)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("audit", err)
	}
	return es, nil
}

// ---- password history ----

// PasswordHistory implements [store.HistoryStore.PasswordHistory].
func (o *ops) PasswordHistory(ctx context.Context, userID string) (store.History, error) {
	var h store.History
	err := o.q.QueryRow(ctx, `SELECT user_id, salt, params, keys, version FROM password_history WHERE user_id = $1`, userID).
		Scan(&h.UserID, &h.Salt, &h.Params, &h.Keys, &h.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.History{}, fmt.Errorf("postgres: password history: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.History{}, wrap("password history", err)
	}
	if len(h.Keys) == 0 {
		h.Keys = nil
	}
	return h, nil
}

// keysArg stores History.Keys as a bytea array, empty rather than NULL.
func keysArg(keys [][]byte) [][]byte {
	if keys == nil {
		return [][]byte{}
	}
	return keys
}

// SaveHistory implements [store.HistoryStore.SaveHistory]: Version 0
// inserts (stored version 1; ON CONFLICT DO NOTHING reports an existing
// history as [store.ErrConflict]), any other version is one conditional
// UPDATE.
func (o *ops) SaveHistory(ctx context.Context, h store.History) error {
	if h.Version == 0 {
		tag, err := o.q.Exec(ctx, `INSERT INTO password_history (user_id, salt, params, keys, version)
			VALUES ($1, $2, $3, $4, 1) ON CONFLICT DO NOTHING`,
			h.UserID, nullBytes(h.Salt), h.Params, keysArg(h.Keys))
		return wrap("save history", insertedOne(tag, err))
	}
	tag, err := o.q.Exec(ctx, `UPDATE password_history SET salt = $1, params = $2, keys = $3, version = version + 1
		WHERE user_id = $4 AND version = $5`, nullBytes(h.Salt), h.Params, keysArg(h.Keys), h.UserID, h.Version)
	err = affectedOne(tag, err)
	if errors.Is(err, store.ErrNotFound) {
		err = store.ErrConflict
	}
	return wrap("save history", err)
}

// ---- sweeping ----

// sweepSQL deletes everything Sweep removes in one statement (so in one
// transaction) and counts it. A NULL $2 keeps the audit trail.
const sweepSQL = `WITH
	j AS (DELETE FROM journeys WHERE expires_at IS NULL OR expires_at < $1 RETURNING 1),
	c AS (DELETE FROM challenges WHERE expires_at IS NULL OR expires_at < $1 RETURNING 1),
	n AS (DELETE FROM counters WHERE expires_at < $1 RETURNING 1),
	m AS (DELETE FROM outbox WHERE (sent_at IS NOT NULL OR dead) AND (created_at IS NULL OR created_at < $1) RETURNING 1),
	a AS (DELETE FROM audit WHERE $2::timestamptz IS NOT NULL AND (time IS NULL OR time < $2::timestamptz) RETURNING 1)
SELECT (SELECT count(*) FROM j) + (SELECT count(*) FROM c) + (SELECT count(*) FROM n)
	+ (SELECT count(*) FROM m) + (SELECT count(*) FROM a)`

// Sweep implements [store.Sweeper.Sweep] in one statement. It deletes
// journeys and challenges with ExpiresAt before cutoff, counters whose
// expiry (windowStart + 2*window, after which they no longer serve as the
// previous window) is before cutoff, sent or dead messages created before
// cutoff, and audit events with a Time before auditCutoff. Rows with a
// zero time count as older than any cutoff.
func (o *ops) Sweep(ctx context.Context, cutoff, auditCutoff time.Time) (int64, error) {
	var n int64
	if err := o.q.QueryRow(ctx, sweepSQL, nullTime(cutoff), nullTime(auditCutoff)).Scan(&n); err != nil {
		return 0, wrap("sweep", err)
	}
	return n, nil
}
