package totp

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/plugin/store"
)

// Attempt counting of a journey's challenge. The challenge carries no
// secret (the authenticator app holds it); its CodeHash is a random handle
// that only the server knows, so consuming it proves that this flow
// verified a code.
const (
	// ChallengeTTL is how long a challenge accepts codes.
	ChallengeTTL = 5 * time.Minute
	// MaxAttempts is the number of wrong codes a challenge accepts.
	MaxAttempts = 5
)

// beginChallenge gives the journey a live challenge. A live one (unused,
// unexpired) is kept as it is, so choosing the method again or asking for
// a "resend" never resets its attempt counter; an expired one is replaced
// by one that inherits its attempts.
func beginChallenge(ctx context.Context, tx store.Tx, journeyID string, now time.Time) error {
	attempts := 0
	prev, err := tx.LatestChallenge(ctx, journeyID, ID)
	switch {
	case err == nil && prev.UsedAt.IsZero() && now.Before(prev.ExpiresAt):
		return nil
	case err == nil && prev.UsedAt.IsZero():
		attempts = min(prev.Attempts, MaxAttempts)
	case err == nil, errors.Is(err, store.ErrNotFound):
	default:
		return fmt.Errorf("totp: begin: %w", err)
	}
	err = tx.CreateChallenge(ctx, store.Challenge{
		ID:          randomID(),
		JourneyID:   journeyID,
		Flow:        ID,
		CodeHash:    randomBytes(32),
		Attempts:    attempts,
		MaxAttempts: MaxAttempts,
		CreatedAt:   now,
		ExpiresAt:   now.Add(ChallengeTTL),
	})
	if err != nil {
		return fmt.Errorf("totp: begin: %w", err)
	}
	return nil
}

// liveChallenge returns the journey's challenge if it still accepts a
// response, or the flows sentinel that says why not.
func liveChallenge(ctx context.Context, tx store.Tx, journeyID string, now time.Time) (store.Challenge, error) {
	c, err := tx.LatestChallenge(ctx, journeyID, ID)
	if err != nil {
		return c, mapStoreError(fmt.Errorf("totp: verify: %w", err))
	}
	switch {
	case !c.UsedAt.IsZero():
		return c, flows.ErrUsed
	case c.Attempts >= c.MaxAttempts:
		return c, &flows.VerifyError{Err: flows.ErrExhausted}
	case !now.Before(c.ExpiresAt):
		return c, flows.ErrExpired
	}
	return c, nil
}

// acceptChallenge consumes the challenge with its own handle.
func acceptChallenge(ctx context.Context, tx store.Tx, c store.Challenge, now time.Time) error {
	if _, err := tx.ConsumeCode(ctx, c.ID, c.CodeHash, now); err != nil {
		return mapStoreError(fmt.Errorf("totp: verify: %w", err))
	}
	return nil
}

// countWrong counts a wrong response by presenting another random handle,
// and returns the error for the caller with the attempts left.
func countWrong(ctx context.Context, tx store.Tx, c store.Challenge, now time.Time) error {
	c, err := tx.ConsumeCode(ctx, c.ID, randomBytes(32), now)
	switch {
	case errors.Is(err, store.ErrMismatch):
		left := max(c.MaxAttempts-c.Attempts, 0)
		if left == 0 {
			return &flows.VerifyError{Err: flows.ErrExhausted}
		}
		return &flows.VerifyError{Err: flows.ErrWrongResponse, AttemptsLeft: left}
	case err == nil:
		// 32 random bytes equal to the handle: never happens, and still
		// not a verification.
		return &flows.VerifyError{Err: flows.ErrWrongResponse}
	}
	return mapStoreError(fmt.Errorf("totp: verify: %w", err))
}

// mapStoreError turns store sentinels into flows sentinels, keeping other
// errors (faults) as they are.
func mapStoreError(err error) error {
	for _, m := range []struct{ from, to error }{
		{store.ErrNotFound, flows.ErrNoChallenge},
		{store.ErrUsed, flows.ErrUsed},
		{store.ErrExpired, flows.ErrExpired},
		{store.ErrExhausted, flows.ErrExhausted},
	} {
		if errors.Is(err, m.from) {
			return fmt.Errorf("%w (%w)", m.to, err)
		}
	}
	return err
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return b
}

// randomID returns 128 random bits, base64url.
func randomID() string { return base64.RawURLEncoding.EncodeToString(randomBytes(16)) }
