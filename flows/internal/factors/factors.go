// Package factors lists and removes the factors a bound flow keeps, for
// the security-info page: the same for every flow, and never with secret
// material.
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
	fs, err := st.Factors(ctx, userID, flow)
	if err != nil {
		return nil, fmt.Errorf("%s: enrolled: %w", flow, err)
	}
	out := make([]flows.Enrolled, 0, len(fs))
	for _, fa := range fs {
		out = append(out, flows.Enrolled{ID: fa.ID, Name: fa.Name, CreatedAt: fa.CreatedAt, LastUsedAt: fa.LastUsedAt})
	}
	return out, nil
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
