package challenge

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sspr-go/sspr/plugin/store"
)

// reader serves one challenge, or an error, as a Preparer's store does.
type reader struct {
	ch  store.Challenge
	err error
}

func (r reader) LatestChallenge(context.Context, string, string) (store.Challenge, error) {
	return r.ch, r.err
}

func (r reader) Factors(context.Context, string, string) ([]store.Factor, error) { return nil, nil }

// TestPending: only an unused, unexpired challenge with attempts left is
// pending; none at all is not an error, a failing store is.
func TestPending(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	live := store.Challenge{ID: "c", Attempts: 2, MaxAttempts: 3, ExpiresAt: now.Add(time.Second)}
	used, spent, expired := live, live, live
	used.UsedAt = now.Add(-time.Second)
	spent.Attempts = 3
	expired.ExpiresAt = now
	broken := errors.New("disk on fire")
	for _, tc := range []struct {
		name    string
		r       reader
		pending bool
		err     error
	}{
		{"live", reader{ch: live}, true, nil},
		{"used", reader{ch: used}, false, nil},
		{"no attempts left", reader{ch: spent}, false, nil},
		{"expired", reader{ch: expired}, false, nil},
		{"none", reader{err: store.ErrNotFound}, false, nil},
		{"store error", reader{err: broken}, false, broken},
	} {
		_, pending, err := Pending(t.Context(), tc.r, "j", "flow", now)
		if pending != tc.pending || !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
			t.Errorf("%s: pending %t, %v; want %t, %v", tc.name, pending, err, tc.pending, tc.err)
		}
	}
}
