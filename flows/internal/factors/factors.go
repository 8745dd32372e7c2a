// Package factors lists, replaces and removes the factors a bound flow
// keeps, for the security-info page and enrolment: the same for every
// flow, and never with secret material.
package factors

import (
	"context"
	"errors"
	"fmt"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/plugin/store"
)

// List returns the user's factors of flow for display.
func List(ctx context.Context, st store.FactorStore, userID, flow string) ([]flows.Enrolled, error) {
	return ListCounted(ctx, st, userID, flow, nil)
}

// ListCounted is [List] for a flow whose factor stands for a set (of
// answers, say): count gives each entry's Count. A nil count leaves it 0.
func ListCounted(ctx context.Context, st store.FactorStore, userID, flow string, count func(store.Factor) int) ([]flows.Enrolled, error) {
	fs, err := st.Factors(ctx, userID, flow)
	if err != nil {
		return nil, fmt.Errorf("%s: enrolled: %w", flow, err)
	}
	out := make([]flows.Enrolled, 0, len(fs))
	for _, fa := range fs {
		e := flows.Enrolled{ID: fa.ID, Name: fa.Name, CreatedAt: fa.CreatedAt, LastUsedAt: fa.LastUsedAt}
		if count != nil {
			e.Count = count(fa)
		}
		out = append(out, e)
	}
	return out, nil
}

// Replace deletes every factor userID has of flow and creates fs in their
// place, all or nothing: when st is a [store.Store] in one
// [store.Store.Atomic], otherwise (a [store.Tx]) in the caller's
// transaction, which the caller must roll back on an error. Every factor of
// fs must be userID's of flow. Errors are the store's, unwrapped, for the
// caller to wrap.
func Replace(ctx context.Context, st store.FactorStore, userID, flow string, fs ...store.Factor) error {
	for _, fa := range fs {
		if fa.UserID != userID || fa.Flow != flow {
			return errors.New("factors: replace: a factor of another user or flow")
		}
	}
	write := func(tx store.FactorStore) error {
		if _, err := tx.DeleteFactors(ctx, userID, flow); err != nil {
			return err
		}
		for _, fa := range fs {
			if err := tx.CreateFactor(ctx, fa); err != nil {
				return err
			}
		}
		return nil
	}
	if s, ok := st.(store.Store); ok {
		return s.Atomic(ctx, func(tx store.Tx) error { return write(tx) })
	}
	return write(st)
}

// Remove deletes factorID if it is userID's factor of flow, and returns
// [flows.ErrNoFactor] otherwise.
func Remove(ctx context.Context, st store.FactorStore, userID, factorID, flow string) error {
	fa, err := st.Factor(ctx, factorID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (fa.UserID != userID || fa.Flow != flow)) {
		return fmt.Errorf("%s: remove: %w", flow, flows.ErrNoFactor)
	}
	if err != nil {
		return fmt.Errorf("%s: remove: %w", flow, err)
	}
	if err := st.DeleteFactor(ctx, userID, factorID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%s: remove: %w", flow, flows.ErrNoFactor)
		}
		return fmt.Errorf("%s: remove: %w", flow, err)
	}
	return nil
}
