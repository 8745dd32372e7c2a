package totp

import (
	"context"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	pqtotp "github.com/pquerna/otp/totp"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/internal/seal"
	"github.com/sspr-go/sspr/plugin/store"
)

// ID is the flow's ID, also the Flow of its factors in the store.
const ID = "totp"

// Parameters of the codes: RFC 6238 with the values every authenticator
// app supports.
const (
	// Period is the length of a time step.
	Period = 30 * time.Second
	// Digits is the length of a code.
	Digits = 6
	// DefaultIssuer is the default of [Config.Issuer].
	DefaultIssuer = "sspr"
	// DefaultName is the name of a factor enrolled without one.
	DefaultName = "totp.default_name"
	// MaxFactors is how many authenticators a user may enrol; each one
	// adds 2·Skew+1 codes an attacker's guess can hit.
	MaxFactors = 5
)

// ErrTooManyFactors is returned by [Flow.Confirm] and [Flow.AddSecret]
// when the user already has [MaxFactors] authenticators.
var ErrTooManyFactors = errors.New("totp: too many authenticators")

// Config configures the TOTP flow.
type Config struct {
	// Store keeps the factors; [Flow.Options] reads it. Required.
	Store store.FactorStore
	// Keys encrypt the secrets at rest with AES-256-GCM: each exactly 32
	// bytes from a CSPRNG; the first encrypts, all decrypt. To rotate, put a
	// new key first and keep the old ones after it as long as factors
	// sealed with them exist. Required.
	Keys [][]byte
	// Issuer names the service in authenticator apps. It must not contain
	// ':'. Default: "sspr".
	Issuer string
	// Skew is how many time steps before and after the current one are
	// accepted, for clocks that drift. Default (and maximum): 1, as
	// RFC 6238 §5.2 recommends.
	Skew uint
	// Now is the clock of [Flow.Enroll], [Flow.Confirm], [Flow.AddSecret]
	// and [Flow.Check]; Begin and Verify use the engine's clock.
	// Default: time.Now.
	Now func() time.Time
}

// Flow is the TOTP verification flow (RFC 6238 authenticator apps).
// It is safe for concurrent use.
type Flow struct {
	cfg    Config
	sealer *seal.Sealer
}

var (
	_ flows.Flow     = (*Flow)(nil)
	_ flows.Prompter = (*Flow)(nil)
)

// New validates cfg and returns the TOTP flow. Its error names every field
// that is wrong.
func New(cfg Config) (*Flow, error) {
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, errors.New("totp: config: field 'Store': required"))
	}
	var sealer *seal.Sealer
	if len(cfg.Keys) == 0 {
		errs = append(errs, errors.New("totp: config: field 'Keys': required"))
	} else {
		var err error
		if sealer, err = seal.New(cfg.Keys); err != nil {
			errs = append(errs, fmt.Errorf("totp: config: field 'Keys': %w", err))
		}
	}
	if cfg.Issuer == "" {
		cfg.Issuer = DefaultIssuer
	} else if strings.Contains(cfg.Issuer, ":") {
		errs = append(errs, errors.New("totp: config: field 'Issuer': must not contain ':'"))
	}
	if cfg.Skew == 0 {
		cfg.Skew = 1
	} else if cfg.Skew > 1 {
		errs = append(errs, errors.New("totp: config: field 'Skew': must be at most 1"))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cfg.Keys = nil // the sealer holds them
	return &Flow{cfg: cfg, sealer: sealer}, nil
}

// ID returns "totp".
func (f *Flow) ID() string { return ID }

// Kind returns [flows.KindBound]: an authenticator app is bound to the
// account.
func (f *Flow) Kind() flows.Kind { return flows.KindBound }

// Prompt asks for a 6-digit code on the generic code page.
func (f *Flow) Prompt() flows.Prompt {
	return flows.Prompt{
		Page:         "code",
		Heading:      "totp.heading",
		Label:        "totp.label",
		InputMode:    "numeric",
		Autocomplete: "one-time-code",
		MaxLength:    8,
		Choice:       "totp.choice",
		Section:      "totp.section",
		Add:          "totp.add",
	}
}

// Options offers one option per authenticator of s: its Ref is the
// factor's ID and its Hint the factor's name. A decoy has none.
func (f *Flow) Options(ctx context.Context, s flows.Subject) ([]flows.Option, error) {
	if s.UserID == "" {
		return nil, nil
	}
	factors, err := f.cfg.Store.Factors(ctx, s.UserID, ID)
	if err != nil {
		return nil, fmt.Errorf("totp: options: %w", err)
	}
	var out []flows.Option
	for _, fa := range factors {
		name := fa.Name
		if name == "" {
			name = DefaultName
		}
		out = append(out, flows.Option{Flow: ID, Ref: fa.ID, Hint: name})
	}
	return out, nil
}

// Begin gives the journey a challenge that counts wrong codes: at most
// [MaxAttempts] within [ChallengeTTL]. It sends nothing. A live challenge
// is kept, so beginning again (or r.Resend) never resets the count. For a
// decoy it does the same.
func (f *Flow) Begin(ctx context.Context, r flows.BeginRequest) error {
	_, err := challenges().Begin(ctx, r.Tx, r.JourneyID, r.Env.Now(), nil)
	return err
}

// Verify checks the code in the form field "code" (6 digits, spaces
// ignored) against every authenticator of the subject, for the current
// time step and Skew steps either side. A matching step is accepted only
// if it is later than the factor's last accepted step, which the store
// advances atomically, so a code is good once (of concurrent requests with
// the same code exactly one succeeds) and an earlier code is refused after
// a later one. A wrong or replayed code is counted on the journey's
// challenge and returns a [*flows.VerifyError] with the attempts left; a
// malformed one returns [flows.ErrMalformed] and is not counted. A decoy's
// code is always wrong.
func (f *Flow) Verify(ctx context.Context, r flows.VerifyRequest) error {
	code, ok := NormalizeCode(r.Form.Get("code"))
	if !ok {
		return flows.ErrMalformed
	}
	now := r.Env.Now()
	c, err := challenges().Live(ctx, r.Tx, r.JourneyID, now)
	if err != nil {
		return err
	}
	ok, err = f.check(ctx, r.Tx, r.Subject.UserID, code, now)
	if err != nil {
		return err
	}
	if !ok {
		return challenges().CountWrong(ctx, r.Tx, c, now)
	}
	return challenges().Accept(ctx, r.Tx, c, now)
}

// check reports whether code is right for one of the user's authenticators
// at now, and if so consumes its time step. Errors are faults (a store
// failure, a secret no key opens); no code was compared then.
func (f *Flow) check(ctx context.Context, st store.FactorStore, userID, code string, now time.Time) (bool, error) {
	var factors []store.Factor
	if userID != "" {
		var err error
		if factors, err = st.Factors(ctx, userID, ID); err != nil {
			return false, fmt.Errorf("totp: check: %w", err)
		}
	}
	secrets := make([][]byte, len(factors))
	for i, fa := range factors {
		var err error
		if secrets[i], err = f.sealer.Open(fa.Secret, sealAD(userID, fa.ID)); err != nil {
			return false, fmt.Errorf("totp: check: factor %s: %w", fa.ID, err)
		}
	}
	if len(factors) == 0 {
		// Keep the work for a user without authenticators (and for a
		// decoy) close to the work for a user with one.
		var dummy [20]byte
		_, _ = f.matchSteps(dummy[:], code, now)
		return false, nil
	}
	for i, fa := range factors {
		steps, err := f.matchSteps(secrets[i], code, now)
		if err != nil {
			return false, fmt.Errorf("totp: check: factor %s: %w", fa.ID, err)
		}
		for _, step := range steps {
			if step <= fa.Counter {
				continue // replayed, or older than an accepted code
			}
			err := st.AdvanceCounter(ctx, fa.ID, step, now)
			switch {
			case err == nil:
				return true, nil
			case errors.Is(err, store.ErrUsed), errors.Is(err, store.ErrNotFound):
				// Used concurrently, or the factor was just deleted.
			default:
				return false, fmt.Errorf("totp: check: %w", err)
			}
		}
	}
	return false, nil
}

// step returns the RFC 6238 time step of t.
func step(t time.Time) int64 { return t.Unix() / int64(Period/time.Second) }

// matchSteps returns, in increasing order, the time steps within Skew of
// now's step whose code equals code. It compares in constant time and
// always computes every step's code.
func (f *Flow) matchSteps(secret []byte, code string, now time.Time) ([]int64, error) {
	b32 := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret)
	opts := pqtotp.ValidateOpts{Period: uint(Period / time.Second), Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	cur := step(now)
	skew := int64(f.cfg.Skew)
	var out []int64
	for s := cur - skew; s <= cur+skew; s++ {
		want, err := pqtotp.GenerateCodeCustom(b32, time.Unix(s*int64(Period/time.Second), 0), opts)
		if err != nil {
			return nil, err
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			out = append(out, s)
		}
	}
	return out, nil
}

// sealAD binds a sealed secret to its user and factor.
func sealAD(userID, factorID string) []byte { return []byte(userID + "\x00" + factorID) }

// NormalizeCode removes spaces from s and reports whether the rest is
// exactly 6 ASCII digits.
func NormalizeCode(s string) (string, bool) {
	if len(s) > 4*Digits {
		return "", false
	}
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			b.WriteRune(c)
		case c == ' ' || c == '\t':
		default:
			return "", false
		}
	}
	if b.Len() != Digits {
		return "", false
	}
	return b.String(), true
}

// AuthMethod returns "otp" (RFC 8176): a code from an authenticator app.
func (f *Flow) AuthMethod() string { return "otp" }
