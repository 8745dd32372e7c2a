// Package challenge keeps the attempt counting that bound flows (TOTP,
// recovery codes, WebAuthn) share. A bound flow's challenge carries no
// secret (the authenticator holds it); its CodeHash is a random handle only
// the server knows, so consuming it with that handle proves the flow
// verified a response, and consuming it with any other value counts a
// wrong attempt, atomically in the store.
package challenge

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

// Counter issues and consumes one flow's challenges.
type Counter struct {
	// Flow is the flow's ID; errors are prefixed with it.
	Flow string
	// TTL is how long a challenge accepts responses.
	TTL time.Duration
	// MaxAttempts is the number of wrong responses a challenge accepts.
	MaxAttempts int
}

// Begin gives the journey a live challenge and returns it. A live one
// (unused, unexpired) is kept as it is, so choosing the method again never
// resets its attempt counter; an expired one is replaced by one that
// inherits its attempts. data is stored with a new challenge.
func (c Counter) Begin(ctx context.Context, tx store.Tx, journeyID string, now time.Time, data []byte) (store.Challenge, error) {
	attempts := 0
	prev, err := tx.LatestChallenge(ctx, journeyID, c.Flow)
	switch {
	case err == nil && prev.UsedAt.IsZero() && now.Before(prev.ExpiresAt) && data == nil:
		return prev, nil
	case err == nil && prev.UsedAt.IsZero():
		attempts = min(prev.Attempts, c.MaxAttempts)
	case err == nil, errors.Is(err, store.ErrNotFound):
	default:
		return store.Challenge{}, fmt.Errorf("%s: begin: %w", c.Flow, err)
	}
	ch := store.Challenge{
		ID:          OrderedID(),
		JourneyID:   journeyID,
		Flow:        c.Flow,
		CodeHash:    RandomBytes(32),
		Data:        data,
		Attempts:    attempts,
		MaxAttempts: c.MaxAttempts,
		CreatedAt:   now,
		ExpiresAt:   now.Add(c.TTL),
	}
	if err := tx.CreateChallenge(ctx, ch); err != nil {
		return store.Challenge{}, fmt.Errorf("%s: begin: %w", c.Flow, err)
	}
	return ch, nil
}

// Live returns the journey's challenge if it still accepts a response, or
// the flows sentinel that says why not.
func (c Counter) Live(ctx context.Context, tx store.Tx, journeyID string, now time.Time) (store.Challenge, error) {
	ch, err := tx.LatestChallenge(ctx, journeyID, c.Flow)
	if err != nil {
		return ch, MapStoreError(fmt.Errorf("%s: verify: %w", c.Flow, err))
	}
	switch {
	case !ch.UsedAt.IsZero():
		return ch, flows.ErrUsed
	case ch.Attempts >= ch.MaxAttempts:
		return ch, &flows.VerifyError{Err: flows.ErrExhausted}
	case !now.Before(ch.ExpiresAt):
		return ch, flows.ErrExpired
	}
	return ch, nil
}

// Pending returns the journey's latest challenge of flow and whether it
// still accepts a response at now (unused, attempts left, unexpired: what
// Live checks); a journey without one is not an error. It is for a
// Preparer, which reads outside the write transaction and only decides
// whether to do the expensive work.
func Pending(ctx context.Context, st flows.StoreReader, journeyID, flow string, now time.Time) (store.Challenge, bool, error) {
	ch, err := st.LatestChallenge(ctx, journeyID, flow)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return ch, false, nil
	case err != nil:
		return ch, false, err
	}
	return ch, ch.UsedAt.IsZero() && ch.Attempts < ch.MaxAttempts && now.Before(ch.ExpiresAt), nil
}

// Accept consumes the challenge with its own handle (single use).
func (c Counter) Accept(ctx context.Context, tx store.Tx, ch store.Challenge, now time.Time) error {
	if _, err := tx.ConsumeCode(ctx, ch.ID, ch.CodeHash, now); err != nil {
		return MapStoreError(fmt.Errorf("%s: verify: %w", c.Flow, err))
	}
	return nil
}

// CountWrong counts a wrong response by presenting another random handle,
// and returns the error for the caller with the attempts left.
func (c Counter) CountWrong(ctx context.Context, tx store.Tx, ch store.Challenge, now time.Time) error {
	ch, err := tx.ConsumeCode(ctx, ch.ID, RandomBytes(32), now)
	switch {
	case errors.Is(err, store.ErrMismatch):
		left := max(ch.MaxAttempts-ch.Attempts, 0)
		if left == 0 {
			return &flows.VerifyError{Err: flows.ErrExhausted}
		}
		return &flows.VerifyError{Err: flows.ErrWrongResponse, AttemptsLeft: left}
	case err == nil:
		// 32 random bytes equal to the handle: never happens, and still
		// not a verification.
		return &flows.VerifyError{Err: flows.ErrWrongResponse}
	}
	return MapStoreError(fmt.Errorf("%s: verify: %w", c.Flow, err))
}

// MapStoreError turns store sentinels into flows sentinels, keeping other
// errors (faults) as they are.
func MapStoreError(err error) error {
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

// RandomBytes returns n bytes from crypto/rand.
func RandomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return b
}

// RandomID returns 128 random bits, base64url.
func RandomID() string { return base64.RawURLEncoding.EncodeToString(RandomBytes(16)) }

// OrderedID returns an ID for a row that is written once and often, such
// as a challenge: the current Unix time in milliseconds as 12 hex digits,
// so that IDs sort by creation and new rows land at the end of the table's
// B-tree (one hot page that a group commit writes once for many rows),
// then RandomID's 128 random bits, which keep it unguessable. It reveals
// when the row was made, so never use it where that is a secret.
func OrderedID() string {
	return fmt.Sprintf("%012x", time.Now().UnixMilli()) + RandomID()
}
