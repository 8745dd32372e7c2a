package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/sspr-go/sspr/plugin/store"
)

// querier is what *sql.DB, *sql.Tx and *sql.Conn have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// byKey runs the Store's single-row reads (a journey, a challenge, a
// counter, all by key) on the read-only pool without their caller's
// cancellation: database/sql and the driver watch a cancellable context
// with a goroutine each for every query, which costs more than these
// lookups take. A caller that has gone is still refused, before the
// statement rather than during it; a wait for a free connection of the
// pool does not end with the caller either, and is as short as the reads
// ahead of it. Reads that may scan (the audit trail) keep their
// cancellation.
type byKey struct {
	*sql.DB
}

// QueryRowContext runs a single-row read; see [byKey].
func (b byKey) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return b.DB.QueryRowContext(lookupCtx(ctx), query, args...)
}

// lookupCtx returns ctx without its cancellation, for a read of a few rows
// by key, unless ctx has ended already: database/sql then refuses it
// before the statement runs.
func lookupCtx(ctx context.Context) context.Context {
	if ctx.Err() != nil {
		return ctx
	}
	return context.WithoutCancel(ctx)
}

// ops implements [store.Tx]. Outside a transaction w is the writer, r the
// read-only pool and atomically opens a write transaction; inside
// [Store.Atomic] all three use the transaction.
type ops struct {
	w, r       querier
	atomically func(ctx context.Context, fn func(q querier) error) error
}

var _ store.Tx = (*ops)(nil)

// errZeroNow guards operations that record "now": a zero time would be
// stored as NULL, which reads as "not yet" (undoing a single-use guarantee,
// or marking an advanced factor as never used).
var errZeroNow = errors.New("now must not be the zero time")

type scanner interface {
	Scan(dest ...any) error
}

// ---- times and encodings ----

// nanos returns t as Unix nanoseconds, clamped to the int64 range (years
// 1677 to 2262); the zero time becomes math.MinInt64.
func nanos(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// nullTime returns t for storage: NULL for the zero time, else [nanos].
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return nanos(t)
}

// fromNull converts a stored time back; NULL is the zero time.
func fromNull(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

// nullBytes stores an empty slice as NULL.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// joinVerified encodes Journey.Verified as flow IDs joined with ','.
func joinVerified(ids []string) (string, error) {
	for _, id := range ids {
		if id == "" || strings.Contains(id, ",") {
			return "", fmt.Errorf("verified flow id %q: must be non-empty and free of ','", id)
		}
	}
	return strings.Join(ids, ","), nil
}

func splitVerified(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// encodeKeys encodes History.Keys as, for each key in order, its length as
// a uvarint followed by its bytes. No keys is NULL.
func encodeKeys(keys [][]byte) any {
	if len(keys) == 0 {
		return nil
	}
	var b []byte
	for _, k := range keys {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
	}
	return b
}

func decodeKeys(b []byte) ([][]byte, error) {
	var keys [][]byte
	for len(b) > 0 {
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)-w) {
			return nil, errors.New("corrupt history keys")
		}
		b = b[w:]
		keys = append(keys, slices.Clone(b[:n]))
		b = b[n:]
	}
	return keys, nil
}

// ---- journeys ----

const journeyCols = `id, kind, user_id, verified, return_to, locale, created_at, expires_at, completed_at, version`

func scanJourney(sc scanner) (store.Journey, error) {
	var (
		j                           store.Journey
		verified                    string
		created, expires, completed sql.NullInt64
	)
	err := sc.Scan(&j.ID, &j.Kind, &j.UserID, &verified, &j.ReturnTo, &j.Locale, &created, &expires, &completed, &j.Version)
	j.Verified = splitVerified(verified)
	j.CreatedAt, j.ExpiresAt, j.CompletedAt = fromNull(created), fromNull(expires), fromNull(completed)
	return j, err
}

// CreateJourney implements [store.JourneyStore.CreateJourney]. Flow IDs in
// j.Verified must be non-empty and must not contain ','.
func (o *ops) CreateJourney(ctx context.Context, j store.Journey) error {
	verified, err := joinVerified(j.Verified)
	if err != nil {
		return fmt.Errorf("sqlite: create journey: %w", err)
	}
	_, err = o.w.ExecContext(ctx, `INSERT INTO journeys (`+journeyCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		j.ID, j.Kind, j.UserID, verified, j.ReturnTo, j.Locale,
		nullTime(j.CreatedAt), nullTime(j.ExpiresAt), nullTime(j.CompletedAt), j.Version)
	return wrap("create journey", err)
}

// Journey implements [store.JourneyStore.Journey].
func (o *ops) Journey(ctx context.Context, id string) (store.Journey, error) {
	j, err := scanJourney(o.r.QueryRowContext(ctx, `SELECT `+journeyCols+` FROM journeys WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Journey{}, fmt.Errorf("sqlite: journey: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Journey{}, wrap("journey", err)
	}
	return j, nil
}

// UpdateJourney implements [store.JourneyStore.UpdateJourney]. It stores
// every field of j except ID, Kind (fixed at creation), Version
// (incremented) and CompletedAt, which only CompleteJourney sets.
func (o *ops) UpdateJourney(ctx context.Context, j store.Journey) error {
	verified, err := joinVerified(j.Verified)
	if err != nil {
		return fmt.Errorf("sqlite: update journey: %w", err)
	}
	err = o.atomically(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, `UPDATE journeys
			SET user_id = ?, verified = ?, return_to = ?, locale = ?, created_at = ?, expires_at = ?, version = version + 1
			WHERE id = ? AND version = ? AND completed_at IS NULL`,
			j.UserID, verified, j.ReturnTo, j.Locale, nullTime(j.CreatedAt), nullTime(j.ExpiresAt), j.ID, j.Version)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		var one int
		err = q.QueryRowContext(ctx, `SELECT 1 FROM journeys WHERE id = ?`, j.ID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		return store.ErrConflict // stale version or completed
	})
	return wrap("update journey", err)
}

// CompleteJourney implements [store.JourneyStore.CompleteJourney]. It also
// increments the version. A journey is expired when now >= ExpiresAt. When
// a journey is both completed and expired, [store.ErrUsed] wins.
func (o *ops) CompleteJourney(ctx context.Context, id string, now time.Time) error {
	if now.IsZero() {
		return fmt.Errorf("sqlite: complete journey: %w", errZeroNow)
	}
	n := nanos(now)
	err := o.atomically(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, `UPDATE journeys SET completed_at = ?, version = version + 1
			WHERE id = ? AND completed_at IS NULL AND expires_at > ?`, n, id, n)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		var completed, expires sql.NullInt64
		err = q.QueryRowContext(ctx, `SELECT completed_at, expires_at FROM journeys WHERE id = ?`, id).Scan(&completed, &expires)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return store.ErrNotFound
		case err != nil:
			return err
		case completed.Valid:
			return store.ErrUsed
		case !expires.Valid || expires.Int64 <= n:
			return store.ErrExpired
		}
		return store.ErrConflict // unreachable inside one transaction
	})
	return wrap("complete journey", err)
}

// ---- challenges ----

const challengeCols = `id, journey_id, flow, token_hash, code_hash, data, attempts, max_attempts, reissues, created_at, expires_at, used_at`

func scanChallenge(sc scanner) (store.Challenge, error) {
	var (
		c                      store.Challenge
		created, expires, used sql.NullInt64
	)
	err := sc.Scan(&c.ID, &c.JourneyID, &c.Flow, &c.TokenHash, &c.CodeHash, &c.Data,
		&c.Attempts, &c.MaxAttempts, &c.Reissues, &created, &expires, &used)
	c.CreatedAt, c.ExpiresAt, c.UsedAt = fromNull(created), fromNull(expires), fromNull(used)
	return c, err
}

// CreateChallenge implements [store.ChallengeStore.CreateChallenge].
func (o *ops) CreateChallenge(ctx context.Context, c store.Challenge) error {
	_, err := o.w.ExecContext(ctx, `INSERT INTO challenges (`+challengeCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.JourneyID, c.Flow, nullBytes(c.TokenHash), nullBytes(c.CodeHash), nullBytes(c.Data),
		c.Attempts, c.MaxAttempts, c.Reissues, nullTime(c.CreatedAt), nullTime(c.ExpiresAt), nullTime(c.UsedAt))
	return wrap("create challenge", err)
}

// challenge reads one challenge with the given query on the read pool (or
// the transaction).
func (o *ops) challenge(ctx context.Context, op, query string, args ...any) (store.Challenge, error) {
	c, err := scanChallenge(o.r.QueryRowContext(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Challenge{}, fmt.Errorf("sqlite: %s: %w", op, store.ErrNotFound)
	}
	if err != nil {
		return store.Challenge{}, wrap(op, err)
	}
	return c, nil
}

// Challenge implements [store.ChallengeStore.Challenge].
func (o *ops) Challenge(ctx context.Context, id string) (store.Challenge, error) {
	return o.challenge(ctx, "challenge", `SELECT `+challengeCols+` FROM challenges WHERE id = ?`, id)
}

// ChallengeByToken implements [store.ChallengeStore.ChallengeByToken]. An
// empty tokenHash matches nothing.
func (o *ops) ChallengeByToken(ctx context.Context, tokenHash []byte) (store.Challenge, error) {
	if len(tokenHash) == 0 {
		return store.Challenge{}, fmt.Errorf("sqlite: challenge by token: %w", store.ErrNotFound)
	}
	return o.challenge(ctx, "challenge by token", `SELECT `+challengeCols+` FROM challenges WHERE token_hash = ?`, tokenHash)
}

// LatestChallenge implements [store.ChallengeStore.LatestChallenge]: the
// greatest CreatedAt wins, and among equal ones the greatest ID.
func (o *ops) LatestChallenge(ctx context.Context, journeyID, flow string) (store.Challenge, error) {
	return o.challenge(ctx, "latest challenge", `SELECT `+challengeCols+` FROM challenges
		WHERE journey_id = ? AND flow = ? ORDER BY created_at DESC, id DESC LIMIT 1`, journeyID, flow)
}

// whyNot explains, inside the transaction of a failed consume, why the
// challenge selected by cond could not be consumed. Precedence: missing,
// used, no attempts left, expired (now >= ExpiresAt). It returns nil when
// the challenge is consumable, which for a code means the code was wrong.
func whyNot(ctx context.Context, q querier, cond string, arg any, now int64) error {
	var (
		used, expires     sql.NullInt64
		attempts, maxAtts int64
	)
	err := q.QueryRowContext(ctx, `SELECT used_at, expires_at, attempts, max_attempts FROM challenges WHERE `+cond, arg).
		Scan(&used, &expires, &attempts, &maxAtts)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.ErrNotFound
	case err != nil:
		return err
	case used.Valid:
		return store.ErrUsed
	case attempts >= maxAtts:
		return store.ErrExhausted
	case !expires.Valid || expires.Int64 <= now:
		return store.ErrExpired
	}
	return nil
}

// ConsumeToken implements [store.ChallengeStore.ConsumeToken] with one
// conditional UPDATE; when it matches nothing, a read in the same
// transaction picks the error (precedence: [store.ErrNotFound],
// [store.ErrUsed], [store.ErrExhausted], [store.ErrExpired]). A challenge
// is expired when now >= ExpiresAt.
func (o *ops) ConsumeToken(ctx context.Context, tokenHash []byte, now time.Time) (store.Challenge, error) {
	if now.IsZero() {
		return store.Challenge{}, fmt.Errorf("sqlite: consume token: %w", errZeroNow)
	}
	n := nanos(now)
	var c store.Challenge
	err := o.atomically(ctx, func(q querier) error {
		var err error
		c, err = scanChallenge(q.QueryRowContext(ctx, `UPDATE challenges SET used_at = ?
			WHERE token_hash = ? AND used_at IS NULL AND expires_at > ? AND attempts < max_attempts
			RETURNING `+challengeCols, n, nullBytes(tokenHash), n))
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err := whyNot(ctx, q, `token_hash = ?`, nullBytes(tokenHash), n); err != nil {
			return err
		}
		return store.ErrConflict // unreachable inside one transaction
	})
	if err != nil {
		return store.Challenge{}, wrap("consume token", err)
	}
	return c, nil
}

// ConsumeCode implements [store.ChallengeStore.ConsumeCode] with one
// conditional UPDATE; when it matches nothing, a read in the same
// transaction picks the error (precedence as for ConsumeToken), and
// if the challenge was consumable the code was wrong: attempts is
// incremented in the same transaction and [store.ErrMismatch] returned with
// the updated challenge. Inside [Store.Atomic], the counted attempt is
// rolled back with the transaction if fn returns an error.
func (o *ops) ConsumeCode(ctx context.Context, id string, codeHash []byte, now time.Time) (store.Challenge, error) {
	if now.IsZero() {
		return store.Challenge{}, fmt.Errorf("sqlite: consume code: %w", errZeroNow)
	}
	n := nanos(now)
	var (
		c        store.Challenge
		mismatch bool
	)
	err := o.atomically(ctx, func(q querier) error {
		var err error
		c, err = scanChallenge(q.QueryRowContext(ctx, `UPDATE challenges SET used_at = ?
			WHERE id = ? AND code_hash = ? AND used_at IS NULL AND expires_at > ? AND attempts < max_attempts
			RETURNING `+challengeCols, n, id, nullBytes(codeHash), n))
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err := whyNot(ctx, q, `id = ?`, id, n); err != nil {
			return err
		}
		mismatch = true
		c, err = scanChallenge(q.QueryRowContext(ctx, `UPDATE challenges SET attempts = attempts + 1
			WHERE id = ? RETURNING `+challengeCols, id))
		return err // commit the counted attempt
	})
	switch {
	case err != nil:
		return store.Challenge{}, wrap("consume code", err)
	case mismatch:
		return c, fmt.Errorf("sqlite: consume code: %w", store.ErrMismatch)
	}
	return c, nil
}

// ReissueChallenge implements [store.ChallengeStore.ReissueChallenge]. An
// empty tokenHash or codeHash removes the link or the code. Precedence of
// errors: [store.ErrNotFound], [store.ErrUsed], [store.ErrExhausted].
func (o *ops) ReissueChallenge(ctx context.Context, id string, tokenHash, codeHash []byte, expiresAt time.Time, maxReissues int) (store.Challenge, error) {
	var c store.Challenge
	err := o.atomically(ctx, func(q querier) error {
		var err error
		c, err = scanChallenge(q.QueryRowContext(ctx, `UPDATE challenges
			SET token_hash = ?, code_hash = ?, expires_at = ?, reissues = reissues + 1
			WHERE id = ? AND used_at IS NULL AND reissues < ?
			RETURNING `+challengeCols,
			nullBytes(tokenHash), nullBytes(codeHash), nullTime(expiresAt), id, maxReissues))
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var used sql.NullInt64
		err = q.QueryRowContext(ctx, `SELECT used_at FROM challenges WHERE id = ?`, id).Scan(&used)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return store.ErrNotFound
		case err != nil:
			return err
		case used.Valid:
			return store.ErrUsed
		}
		return store.ErrExhausted
	})
	if err != nil {
		return store.Challenge{}, wrap("reissue challenge", err)
	}
	return c, nil
}

// ---- counters ----

// Hit implements [store.CounterStore.Hit] with one upsert whose RETURNING
// clause also reads the previous window. A counter is identified by key,
// windowStart and window together: the same key counted with two window
// lengths gives two counters.
func (o *ops) Hit(ctx context.Context, key string, windowStart time.Time, window time.Duration) (current, previous int64, err error) {
	if window <= 0 {
		return 0, 0, errors.New("sqlite: hit: window must be positive")
	}
	cur, prev := counterKeys(windowStart, window)
	err = o.atomically(ctx, func(q querier) error {
		return q.QueryRowContext(ctx, `INSERT INTO counters (expires_at, key, window_start, count) VALUES (?, ?, ?, 1)
		ON CONFLICT (expires_at, key, window_start) DO UPDATE SET count = count + 1
		RETURNING count, IFNULL((SELECT p.count FROM counters AS p
			WHERE p.expires_at = ? AND p.key = ? AND p.window_start = ?), 0)`,
			cur.expires, key, cur.start, prev.expires, key, prev.start).Scan(&current, &previous)
	})
	if err != nil {
		return 0, 0, wrap("hit", err)
	}
	return current, previous, nil
}

// Count implements [store.CounterStore.Count].
func (o *ops) Count(ctx context.Context, key string, windowStart time.Time, window time.Duration) (current, previous int64, err error) {
	if window <= 0 {
		return 0, 0, errors.New("sqlite: count: window must be positive")
	}
	cur, prev := counterKeys(windowStart, window)
	err = o.r.QueryRowContext(ctx, `SELECT
		IFNULL((SELECT count FROM counters WHERE expires_at = ? AND key = ? AND window_start = ?), 0),
		IFNULL((SELECT count FROM counters WHERE expires_at = ? AND key = ? AND window_start = ?), 0)`,
		cur.expires, key, cur.start, prev.expires, key, prev.start).Scan(&current, &previous)
	if err != nil {
		return 0, 0, wrap("count", err)
	}
	return current, previous, nil
}

// counterKey is the stored key of one window's counter, apart from the
// caller's key.
type counterKey struct {
	expires, start int64
}

// counterKeys returns the keys of the window starting at windowStart and
// of the one before it. A window's counter expires at its start + 2*window.
func counterKeys(windowStart time.Time, window time.Duration) (cur, prev counterKey) {
	cur = counterKey{expires: nanos(windowStart.Add(2 * window)), start: nanos(windowStart)}
	prev = counterKey{expires: nanos(windowStart.Add(window)), start: nanos(windowStart.Add(-window))}
	return cur, prev
}

// ---- outbox ----

const messageCols = `id, channel, payload, attempts, created_at, next_attempt_at, sent_at, last_error, dead`

func scanMessage(sc scanner) (store.Message, error) {
	var (
		m                   store.Message
		created, next, sent sql.NullInt64
	)
	err := sc.Scan(&m.ID, &m.Channel, &m.Payload, &m.Attempts, &created, &next, &sent, &m.LastError, &m.Dead)
	m.CreatedAt, m.NextAttemptAt, m.SentAt = fromNull(created), fromNull(next), fromNull(sent)
	return m, err
}

// Enqueue implements [store.OutboxStore.Enqueue]. A zero NextAttemptAt
// makes the message due at once.
func (o *ops) Enqueue(ctx context.Context, m store.Message) (int64, error) {
	res, err := o.w.ExecContext(ctx, `INSERT INTO outbox
		(channel, payload, attempts, created_at, next_attempt_at, last_error, dead) VALUES (?, ?, 0, ?, ?, ?, 0)`,
		m.Channel, nullBytes(m.Payload), nullTime(m.CreatedAt), nullTime(m.NextAttemptAt), m.LastError)
	if err != nil {
		return 0, wrap("enqueue", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, wrap("enqueue", err)
	}
	return id, nil
}

// Claim implements [store.OutboxStore.Claim] with a single UPDATE, so
// concurrent claims never overlap. Oldest means lowest ID. A lease ends at
// now+lease: from that instant the message can be claimed again. A limit
// of 0 or less claims nothing; lease must be positive.
func (o *ops) Claim(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.Message, error) {
	if lease <= 0 {
		return nil, errors.New("sqlite: claim: lease must be positive")
	}
	if limit <= 0 {
		return nil, nil
	}
	n := nanos(now)
	var ms []store.Message
	err := o.atomically(ctx, func(q querier) error {
		ms = ms[:0]
		rows, err := q.QueryContext(ctx, `UPDATE outbox SET claimed_until = ?, attempts = attempts + 1
		WHERE id IN (SELECT id FROM outbox
			WHERE sent_at IS NULL AND dead = 0
			AND (next_attempt_at IS NULL OR next_attempt_at <= ?)
			AND (claimed_until IS NULL OR claimed_until <= ?)
			ORDER BY id LIMIT ?)
		RETURNING `+messageCols, nanos(now.Add(lease)), n, n, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			m, err := scanMessage(rows)
			if err != nil {
				return err
			}
			ms = append(ms, m)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrap("claim", err)
	}
	// RETURNING order is unspecified.
	slices.SortFunc(ms, func(a, b store.Message) int { return cmp.Compare(a.ID, b.ID) })
	return ms, nil
}

// MarkSent implements [store.OutboxStore.MarkSent]; it also ends the lease.
func (o *ops) MarkSent(ctx context.Context, id int64, now time.Time) error {
	if now.IsZero() {
		return fmt.Errorf("sqlite: mark sent: %w", errZeroNow)
	}
	res, err := o.w.ExecContext(ctx, `UPDATE outbox SET sent_at = ?, payload = NULL, claimed_until = NULL WHERE id = ?`,
		nanos(now), id)
	return wrap("mark sent", affectedOne(res, err))
}

// MarkFailed implements [store.OutboxStore.MarkFailed]; it also ends the
// lease, so the message is due at next even if the lease would run longer.
func (o *ops) MarkFailed(ctx context.Context, id int64, next time.Time, lastError string, dead bool) error {
	res, err := o.w.ExecContext(ctx, `UPDATE outbox
		SET next_attempt_at = ?, last_error = ?, dead = ?, claimed_until = NULL,
			payload = CASE WHEN ? THEN NULL ELSE payload END
		WHERE id = ?`, nullTime(next), lastError, dead, dead, id)
	return wrap("mark failed", affectedOne(res, err))
}

// affectedOne turns "no row changed" into [store.ErrNotFound].
func affectedOne(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// OutboxMessage implements [store.OutboxStore.OutboxMessage].
func (o *ops) OutboxMessage(ctx context.Context, id int64) (store.Message, error) {
	m, err := scanMessage(o.r.QueryRowContext(ctx, `SELECT `+messageCols+` FROM outbox WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Message{}, fmt.Errorf("sqlite: outbox message: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Message{}, wrap("outbox message", err)
	}
	return m, nil
}

// ---- audit ----

const auditCols = `id, time, event, journey_id, user_id, ip, user_agent, outcome, detail`

// AppendAudit implements [store.AuditStore.AppendAudit].
func (o *ops) AppendAudit(ctx context.Context, e store.AuditEvent) (int64, error) {
	res, err := o.w.ExecContext(ctx, `INSERT INTO audit
		(time, event, journey_id, user_id, ip, user_agent, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		nullTime(e.Time), e.Event, e.JourneyID, e.UserID, e.IP, e.UserAgent, e.Outcome, e.Detail)
	if err != nil {
		return 0, wrap("append audit", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, wrap("append audit", err)
	}
	return id, nil
}

// Audit implements [store.AuditStore.Audit]. Events with equal times are
// listed by descending ID (the later appended first). A Limit below 0 is
// treated as 0 (100 events).
func (o *ops) Audit(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error) {
	var (
		sb   strings.Builder
		args []any
	)
	sb.WriteString(`SELECT ` + auditCols + ` FROM audit WHERE 1 = 1`)
	for _, c := range []struct {
		cond string
		val  string
	}{{` AND user_id = ?`, f.UserID}, {` AND journey_id = ?`, f.JourneyID}, {` AND event = ?`, f.Event}} {
		if c.val != "" {
			sb.WriteString(c.cond)
			args = append(args, c.val)
		}
	}
	if !f.Since.IsZero() {
		sb.WriteString(` AND time >= ?`)
		args = append(args, nanos(f.Since))
	}
	if !f.Until.IsZero() {
		sb.WriteString(` AND time < ?`)
		args = append(args, nanos(f.Until))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	sb.WriteString(` ORDER BY time DESC, id DESC LIMIT ?`)
	args = append(args, limit)

	rows, err := o.r.QueryContext(ctx, sb.String(), args...)
	if err != nil {
		return nil, wrap("audit", err)
	}
	defer rows.Close()
	var es []store.AuditEvent
	for rows.Next() {
		var (
			e store.AuditEvent
			t sql.NullInt64
		)
		if err := rows.Scan(&e.ID, &t, &e.Event, &e.JourneyID, &e.UserID, &e.IP, &e.UserAgent, &e.Outcome, &e.Detail); err != nil {
			return nil, wrap("audit", err)
		}
		e.Time = fromNull(t)
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
	var (
		h    store.History
		keys []byte
	)
	err := o.r.QueryRowContext(ctx, `SELECT user_id, salt, params, keys, version FROM password_history WHERE user_id = ?`, userID).
		Scan(&h.UserID, &h.Salt, &h.Params, &keys, &h.Version)
	if errors.Is(err, sql.ErrNoRows) {
		return store.History{}, fmt.Errorf("sqlite: password history: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.History{}, wrap("password history", err)
	}
	if h.Keys, err = decodeKeys(keys); err != nil {
		return store.History{}, wrap("password history", err)
	}
	return h, nil
}

// SaveHistory implements [store.HistoryStore.SaveHistory]: Version 0
// inserts (stored version 1), any other version updates. A single
// statement, so no transaction is needed.
func (o *ops) SaveHistory(ctx context.Context, h store.History) error {
	if h.Version == 0 {
		_, err := o.w.ExecContext(ctx, `INSERT INTO password_history (user_id, salt, params, keys, version) VALUES (?, ?, ?, ?, 1)`,
			h.UserID, nullBytes(h.Salt), h.Params, encodeKeys(h.Keys))
		return wrap("save history", err)
	}
	res, err := o.w.ExecContext(ctx, `UPDATE password_history SET salt = ?, params = ?, keys = ?, version = version + 1
		WHERE user_id = ? AND version = ?`, nullBytes(h.Salt), h.Params, encodeKeys(h.Keys), h.UserID, h.Version)
	err = affectedOne(res, err)
	if errors.Is(err, store.ErrNotFound) {
		err = store.ErrConflict
	}
	return wrap("save history", err)
}

// ---- sweeping ----

// Sweep implements [store.Sweeper.Sweep] in one transaction. It deletes
// journeys and challenges with ExpiresAt before cutoff, counters whose
// expiry (windowStart + 2*window, after which they no longer serve as the
// previous window) is before cutoff, sent or dead messages created before
// cutoff, and audit events with a Time before auditCutoff. Rows with a
// zero time count as older than any cutoff.
func (o *ops) Sweep(ctx context.Context, cutoff, auditCutoff time.Time) (int64, error) {
	type del struct {
		sql string
		arg int64
	}
	c := nanos(cutoff)
	dels := []del{
		{`DELETE FROM journeys WHERE expires_at IS NULL OR expires_at < ?`, c},
		{`DELETE FROM challenges WHERE expires_at IS NULL OR expires_at < ?`, c},
		{`DELETE FROM counters WHERE expires_at < ?`, c},
		{`DELETE FROM outbox WHERE (sent_at IS NOT NULL OR dead = 1) AND (created_at IS NULL OR created_at < ?)`, c},
	}
	if !auditCutoff.IsZero() {
		dels = append(dels, del{`DELETE FROM audit WHERE time IS NULL OR time < ?`, nanos(auditCutoff)})
	}
	var total int64
	err := o.atomically(ctx, func(q querier) error {
		total = 0
		for _, d := range dels {
			res, err := q.ExecContext(ctx, d.sql, d.arg)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			total += n
		}
		return nil
	})
	if err != nil {
		return 0, wrap("sweep", err)
	}
	return total, nil
}
