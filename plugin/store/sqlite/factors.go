package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sspr-go/sspr/plugin/store"
)

const factorCols = `id, user_id, flow, name, secret, data, counter, created_at, last_used_at`

// consumeFactorSQL deletes a factor by user, flow and secret. The term
// length(secret) > 0 repeats the condition of the partial index
// factors_secret, without which SQLite would not search it; it also keeps
// an empty secret from matching.
const consumeFactorSQL = `DELETE FROM factors
	WHERE user_id = ? AND flow = ? AND secret = ? AND length(secret) > 0
	RETURNING ` + factorCols

func scanFactor(sc scanner) (store.Factor, error) {
	var (
		f             store.Factor
		created, used sql.NullInt64
	)
	err := sc.Scan(&f.ID, &f.UserID, &f.Flow, &f.Name, &f.Secret, &f.Data, &f.Counter, &created, &used)
	f.CreatedAt, f.LastUsedAt = fromNull(created), fromNull(used)
	return f, err
}

// CreateFactor implements [store.FactorStore.CreateFactor]. An empty
// Secret is stored as NULL, so any number of a user's factors of one flow
// may have none.
func (o *ops) CreateFactor(ctx context.Context, f store.Factor) error {
	_, err := o.w.ExecContext(ctx, `INSERT INTO factors (`+factorCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		f.ID, f.UserID, f.Flow, f.Name, nullBytes(f.Secret), nullBytes(f.Data), f.Counter,
		nullTime(f.CreatedAt), nullTime(f.LastUsedAt))
	return wrap("create factor", err)
}

// Factor implements [store.FactorStore.Factor].
func (o *ops) Factor(ctx context.Context, id string) (store.Factor, error) {
	f, err := scanFactor(o.r.QueryRowContext(ctx, `SELECT `+factorCols+` FROM factors WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Factor{}, fmt.Errorf("sqlite: factor: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Factor{}, wrap("factor", err)
	}
	return f, nil
}

// Factors implements [store.FactorStore.Factors]: by CreatedAt (a zero one
// first), and among equal ones by ID. A user without factors gets none and
// no error.
func (o *ops) Factors(ctx context.Context, userID, flow string) ([]store.Factor, error) {
	query, args := `SELECT `+factorCols+` FROM factors WHERE user_id = ? ORDER BY created_at, id`, []any{userID}
	if flow != "" {
		query, args = `SELECT `+factorCols+` FROM factors WHERE user_id = ? AND flow = ? ORDER BY created_at, id`, []any{userID, flow}
	}
	rows, err := o.r.QueryContext(lookupCtx(ctx), query, args...) // a user's few factors, by key
	if err != nil {
		return nil, wrap("factors", err)
	}
	defer rows.Close()
	var fs []store.Factor
	for rows.Next() {
		f, err := scanFactor(rows)
		if err != nil {
			return nil, wrap("factors", err)
		}
		fs = append(fs, f)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("factors", err)
	}
	return fs, nil
}

// UpdateFactor implements [store.FactorStore.UpdateFactor]. It leaves ID,
// UserID, Flow, Secret and CreatedAt as stored.
func (o *ops) UpdateFactor(ctx context.Context, f store.Factor) error {
	res, err := o.w.ExecContext(ctx, `UPDATE factors SET name = ?, data = ?, counter = ?, last_used_at = ? WHERE id = ?`,
		f.Name, nullBytes(f.Data), f.Counter, nullTime(f.LastUsedAt), f.ID)
	return wrap("update factor", affectedOne(res, err))
}

// AdvanceCounter implements [store.FactorStore.AdvanceCounter] with one
// conditional UPDATE; when it matches nothing, a read in the same
// transaction tells [store.ErrNotFound] from [store.ErrUsed]. now must not
// be zero: a zero LastUsedAt would read as "never used".
func (o *ops) AdvanceCounter(ctx context.Context, id string, value int64, now time.Time) error {
	if now.IsZero() {
		return fmt.Errorf("sqlite: advance counter: %w", errZeroNow)
	}
	err := o.atomically(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, `UPDATE factors SET counter = ?, last_used_at = ? WHERE id = ? AND counter < ?`,
			value, nanos(now), id, value)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		var one int
		err = q.QueryRowContext(ctx, `SELECT 1 FROM factors WHERE id = ?`, id).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		return store.ErrUsed // the stored counter is value or more
	})
	return wrap("advance counter", err)
}

// ConsumeFactor implements [store.FactorStore.ConsumeFactor] with one
// DELETE … RETURNING through the unique index on (user_id, flow, secret),
// so of concurrent calls for one secret exactly one gets the factor. An
// empty secret matches nothing.
func (o *ops) ConsumeFactor(ctx context.Context, userID, flow string, secret []byte) (store.Factor, error) {
	var f store.Factor
	err := o.atomically(ctx, func(q querier) error {
		var err error
		f, err = scanFactor(q.QueryRowContext(ctx, consumeFactorSQL, userID, flow, nullBytes(secret)))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return store.Factor{}, fmt.Errorf("sqlite: consume factor: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Factor{}, wrap("consume factor", err)
	}
	return f, nil
}

// DeleteFactor implements [store.FactorStore.DeleteFactor].
func (o *ops) DeleteFactor(ctx context.Context, userID, id string) error {
	res, err := o.w.ExecContext(ctx, `DELETE FROM factors WHERE id = ? AND user_id = ?`, id, userID)
	return wrap("delete factor", affectedOne(res, err))
}

// DeleteFactors implements [store.FactorStore.DeleteFactors]. Unlike
// Factors, an empty flow is not a wildcard: it matches only factors whose
// Flow is empty.
func (o *ops) DeleteFactors(ctx context.Context, userID, flow string) (int64, error) {
	res, err := o.w.ExecContext(ctx, `DELETE FROM factors WHERE user_id = ? AND flow = ?`, userID, flow)
	if err != nil {
		return 0, wrap("delete factors", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, wrap("delete factors", err)
	}
	return n, nil
}
