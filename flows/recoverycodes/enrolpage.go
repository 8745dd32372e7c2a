package recoverycodes

import (
	"context"
	"fmt"

	"github.com/sspr-go/sspr/flows"
)

var _ flows.Enroller = (*Flow)(nil)

// setID is the ID under which the security-info page lists (and removes)
// the user's whole set of codes.
const setID = "codes"

// EnrolData is what the "enrol-codes" page receives as .Page.Data.
type EnrolData struct {
	// Remaining is how many unused codes the user has now.
	Remaining int
	// Codes are the new codes, shown once, after FinishEnrol.
	Codes []string
}

// Enrolled lists the user's set of codes as one entry ("n codes left").
func (f *Flow) Enrolled(ctx context.Context, userID string) ([]flows.Enrolled, error) {
	fs, err := f.cfg.Store.Factors(ctx, userID, ID)
	if err != nil {
		return nil, fmt.Errorf("recoverycodes: enrolled: %w", err)
	}
	if len(fs) == 0 {
		return nil, nil
	}
	return []flows.Enrolled{{ID: setID, Name: "recovery.set", Count: len(fs), CreatedAt: fs[0].CreatedAt}}, nil
}

// StartEnrol asks to confirm: new codes replace the old ones.
func (f *Flow) StartEnrol(ctx context.Context, r flows.EnrolRequest) (flows.EnrolPage, error) {
	n, err := f.Remaining(ctx, r.UserID)
	if err != nil {
		return flows.EnrolPage{}, err
	}
	return flows.EnrolPage{Page: "enrol-codes", Data: EnrolData{Remaining: n}}, nil
}

// FinishEnrol creates a new set of codes, replacing the old one, and
// shows them once.
func (f *Flow) FinishEnrol(ctx context.Context, r flows.EnrolRequest) (flows.EnrolPage, error) {
	codes, err := f.Generate(ctx, f.cfg.Store, r.Env, r.UserID)
	if err != nil {
		return flows.EnrolPage{}, err
	}
	return flows.EnrolPage{Page: "enrol-codes", Data: EnrolData{Remaining: len(codes), Codes: codes}, Added: true}, nil
}

// Remove deletes the user's whole set of codes (factorID "codes").
func (f *Flow) Remove(ctx context.Context, userID, factorID string) error {
	if factorID != setID {
		return fmt.Errorf("recoverycodes: remove: %w", flows.ErrNoFactor)
	}
	n, err := f.cfg.Store.DeleteFactors(ctx, userID, ID)
	if err != nil {
		return fmt.Errorf("recoverycodes: remove: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("recoverycodes: remove: %w", flows.ErrNoFactor)
	}
	return nil
}
