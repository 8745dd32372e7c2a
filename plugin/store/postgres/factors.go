package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sspr-go/sspr/plugin/store"
)

const factorCols = `id, user_id, flow, name, secret, data, counter, created_at, last_used_at`

// consumeFactorSQL deletes a factor by user, flow and secret. secret = $3
// implies secret IS NOT NULL, the predicate of the partial unique index
// factors_secret, so the planner may search it.
const consumeFactorSQL = `DELETE FROM factors
	WHERE user_id = $1 AND flow = $2 AND secret = $3
	RETURNING ` + factorCols

func scanFactor(sc scanner) (store.Factor, error) {
	var (
		f             store.Factor
		created, used pgtype.Timestamptz
	)
	err := sc.Scan(&f.ID, &f.UserID, &f.Flow, &f.Name, &f.Secret, &f.Data, &f.Counter, &created, &used)
	f.CreatedAt, f.LastUsedAt = fromTS(created), fromTS(used)
	return f, err
}

// CreateFactor implements [store.FactorStore.CreateFactor] with INSERT … ON
// CONFLICT DO NOTHING (a duplicate ID, or a secret the user already has in
// the flow). An empty Secret is stored as NULL, so any number of a user's
// factors of one flow may have none.
func (o *ops) CreateFactor(ctx context.Context, f store.Factor) error {
	tag, err := o.q.Exec(ctx, `INSERT INTO factors (`+factorCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT DO NOTHING`,
		f.ID, f.UserID, f.Flow, f.Name, nullBytes(f.Secret), nullBytes(f.Data), f.Counter,
		nullTime(f.CreatedAt), nullTime(f.LastUsedAt))
	return wrap("create factor", insertedOne(tag, err))
}

// Factor implements [store.FactorStore.Factor].
func (o *ops) Factor(ctx context.Context, id string) (store.Factor, error) {
	f, err := scanFactor(o.q.QueryRow(ctx, `SELECT `+factorCols+` FROM factors WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Factor{}, fmt.Errorf("postgres: factor: %w", store.ErrNotFound)
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
	query, args := `SELECT `+factorCols+` FROM factors WHERE user_id = $1 ORDER BY created_at NULLS FIRST, id`, []any{userID}
	if flow != "" {
		query, args = `SELECT `+factorCols+` FROM factors WHERE user_id = $1 AND flow = $2 ORDER BY created_at NULLS FIRST, id`, []any{userID, flow}
	}
	rows, err := o.q.Query(ctx, query, args...)
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
	tag, err := o.q.Exec(ctx, `UPDATE factors SET name = $1, data = $2, counter = $3, last_used_at = $4 WHERE id = $5`,
		f.Name, nullBytes(f.Data), f.Counter, nullTime(f.LastUsedAt), f.ID)
	return wrap("update factor", affectedOne(tag, err))
}

// AdvanceCounter implements [store.FactorStore.AdvanceCounter] with one
// UPDATE … WHERE id = $n AND counter < value: concurrent calls wait for the
// row lock and re-check the condition on the new row, so the counter only
// moves forward and one of several calls with the same value wins. When it
// matches nothing, a read tells [store.ErrNotFound] from [store.ErrUsed].
// now must not be zero: a zero LastUsedAt would read as "never used".
func (o *ops) AdvanceCounter(ctx context.Context, id string, value int64, now time.Time) error {
	if now.IsZero() {
		return fmt.Errorf("postgres: advance counter: %w", errZeroNow)
	}
	tag, err := o.q.Exec(ctx, `UPDATE factors SET counter = $1, last_used_at = $2 WHERE id = $3 AND counter < $1`,
		value, now, id)
	if err != nil {
		return wrap("advance counter", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	ok, err := o.exists(ctx, `SELECT EXISTS (SELECT 1 FROM factors WHERE id = $1)`, id)
	switch {
	case err != nil:
		return wrap("advance counter", err)
	case !ok:
		return fmt.Errorf("postgres: advance counter: %w", store.ErrNotFound)
	}
	return fmt.Errorf("postgres: advance counter: %w", store.ErrUsed) // the stored counter is value or more
}

// ConsumeFactor implements [store.FactorStore.ConsumeFactor] with one
// DELETE … RETURNING: of concurrent calls for one secret, the others wait
// for the row lock, find the row deleted and return [store.ErrNotFound].
// An empty secret matches nothing.
func (o *ops) ConsumeFactor(ctx context.Context, userID, flow string, secret []byte) (store.Factor, error) {
	if len(secret) == 0 {
		return store.Factor{}, fmt.Errorf("postgres: consume factor: %w", store.ErrNotFound)
	}
	f, err := scanFactor(o.q.QueryRow(ctx, consumeFactorSQL, userID, flow, secret))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Factor{}, fmt.Errorf("postgres: consume factor: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Factor{}, wrap("consume factor", err)
	}
	return f, nil
}

// DeleteFactor implements [store.FactorStore.DeleteFactor].
func (o *ops) DeleteFactor(ctx context.Context, userID, id string) error {
	tag, err := o.q.Exec(ctx, `DELETE FROM factors WHERE id = $1 AND user_id = $2`, id, userID)
	return wrap("delete factor", affectedOne(tag, err))
}

// DeleteFactors implements [store.FactorStore.DeleteFactors]. Unlike
// Factors, an empty flow is not a wildcard: it matches only factors whose
// Flow is empty.
func (o *ops) DeleteFactors(ctx context.Context, userID, flow string) (int64, error) {
	tag, err := o.q.Exec(ctx, `DELETE FROM factors WHERE user_id = $1 AND flow = $2`, userID, flow)
	if err != nil {
		return 0, wrap("delete factors", err)
	}
	return tag.RowsAffected(), nil
}
