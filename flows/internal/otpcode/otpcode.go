// Package otpcode makes and reads the short numeric codes that channel
// flows (email, SMS) send: uniformly random digits from crypto/rand, and
// a lenient reading of what a user types back.
package otpcode

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/internal/challenge"
	"github.com/sspr-go/sspr/plugin/store"
)

// Random returns a code of n decimal digits (leading zeros kept), drawn
// uniformly from crypto/rand. n must be between 1 and 18.
func Random(n int) (string, error) {
	if n < 1 || n > 18 {
		return "", fmt.Errorf("otpcode: random: length %d out of range", n)
	}
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
	v, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return "", fmt.Errorf("otpcode: random: %w", err)
	}
	return fmt.Sprintf("%0*d", n, v), nil
}

// Normalize removes spaces, tabs and dashes from s and reports whether
// the rest is exactly n ASCII digits. Input longer than 4n bytes is
// refused before it is read, so hostile input costs nothing.
func Normalize(s string, n int) (string, bool) {
	if len(s) > 4*n {
		return "", false
	}
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			b.WriteRune(c)
		case c == ' ' || c == '-' || c == '\t':
		default:
			return "", false
		}
	}
	if b.Len() != n {
		return "", false
	}
	return b.String(), true
}

// Settings are the numbers every flow that sends codes shares: how long a
// code lives, its digits, the wrong tries it takes and the new codes a
// journey may ask for.
type Settings struct {
	TTL         time.Duration
	Length      int
	MaxAttempts int
	MaxResends  int
}

// Defaults of [Settings], DESIGN's numbers.
const (
	DefaultTTL         = 10 * time.Minute
	DefaultLength      = 8
	DefaultMaxAttempts = 5
	DefaultMaxResends  = 3
)

// Check fills s's zero fields with the defaults and returns an error for
// each field out of range, named as the flows' Config fields are (CodeTTL,
// CodeLength, MaxAttempts, MaxResends) after prefix, for example
// "sms: config".
func (s *Settings) Check(prefix string) []error {
	var errs []error
	bad := func(field, rule string) {
		errs = append(errs, fmt.Errorf("%s: field '%s': must be %s", prefix, field, rule))
	}
	if s.TTL == 0 {
		s.TTL = DefaultTTL
	} else if s.TTL < time.Minute || s.TTL > 10*time.Minute {
		bad("CodeTTL", "between 1m and 10m (ASVS V6.5.5)")
	}
	if s.Length == 0 {
		s.Length = DefaultLength
	} else if s.Length < 6 || s.Length > 10 {
		bad("CodeLength", "between 6 and 10")
	}
	if s.MaxAttempts == 0 {
		s.MaxAttempts = DefaultMaxAttempts
	} else if s.MaxAttempts < 1 || s.MaxAttempts > 10 {
		bad("MaxAttempts", "between 1 and 10")
	}
	if s.MaxResends == 0 {
		s.MaxResends = DefaultMaxResends
	} else if s.MaxResends < 0 || s.MaxResends > 10 {
		bad("MaxResends", "between 0 and 10")
	}
	return errs
}

// Issue gives journeyID a challenge of flow for a code whose keyed hash is
// codeHash (and a link whose hash is tokenHash, or nil), stored with ref,
// valid for s.TTL. With resend it replaces the secrets of the journey's
// latest challenge of flow instead, at most s.MaxResends times, keeping
// its attempt counter and its ref; a used or exhausted code gets no new
// one ([flows.ErrUsed], [flows.ErrExhausted]): a message would only be
// sent for nothing. It returns the ref the code is for.
func (s Settings) Issue(ctx context.Context, tx store.Tx, flow, journeyID, ref string, tokenHash, codeHash []byte, now time.Time, resend bool) (string, error) {
	if !resend {
		c := store.Challenge{
			ID:          challenge.OrderedID(),
			JourneyID:   journeyID,
			Flow:        flow,
			TokenHash:   tokenHash,
			CodeHash:    codeHash,
			Data:        []byte(ref),
			MaxAttempts: s.MaxAttempts,
			CreatedAt:   now,
			ExpiresAt:   now.Add(s.TTL),
		}
		if err := tx.CreateChallenge(ctx, c); err != nil {
			return "", fmt.Errorf("%s: begin: %w", flow, err)
		}
		return ref, nil
	}
	c, err := tx.LatestChallenge(ctx, journeyID, flow)
	if err != nil {
		return "", challenge.MapStoreError(fmt.Errorf("%s: resend: %w", flow, err))
	}
	switch {
	case !c.UsedAt.IsZero():
		return "", fmt.Errorf("%s: resend: %w", flow, flows.ErrUsed)
	case c.Attempts >= c.MaxAttempts:
		return "", fmt.Errorf("%s: resend: %w", flow, flows.ErrExhausted)
	}
	if _, err := tx.ReissueChallenge(ctx, c.ID, tokenHash, codeHash, now.Add(s.TTL), s.MaxResends); err != nil {
		return "", challenge.MapStoreError(fmt.Errorf("%s: resend: %w", flow, err))
	}
	return string(c.Data), nil
}

// Consume redeems the code of challenge c in tx. macs are the code's keyed
// hashes under every configured key, current first ([flows.Env.MACs]): the
// one that matches the challenge's stored hash is used, so that a code
// sent before the keys rotated still works and a wrong code is counted
// once. A wrong code gives a [*flows.VerifyError] (ErrWrongResponse with
// the tries left, or ErrExhausted after the last); other store errors are
// returned as they are, with the challenge as the store left it.
func Consume(ctx context.Context, tx store.Tx, c store.Challenge, macs [][]byte, now time.Time) (store.Challenge, error) {
	if len(macs) == 0 {
		return c, errors.New("otpcode: no key")
	}
	use := macs[0]
	for _, m := range macs[1:] {
		if subtle.ConstantTimeCompare(m, c.CodeHash) == 1 {
			use = m
		}
	}
	c, err := tx.ConsumeCode(ctx, c.ID, use, now)
	if errors.Is(err, store.ErrMismatch) {
		left := max(c.MaxAttempts-c.Attempts, 0)
		if left == 0 {
			return c, &flows.VerifyError{Err: flows.ErrExhausted}
		}
		return c, &flows.VerifyError{Err: flows.ErrWrongResponse, AttemptsLeft: left}
	}
	return c, err
}
