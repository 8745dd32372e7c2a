package recoverycodes

import (
	"context"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/internal/challenge"
	"github.com/sspr-go/sspr/plugin/store"
)

// ID is the flow's ID, also the Flow of its factors in the store.
const ID = "recovery-codes"

// Defaults and bounds.
const (
	// DefaultCount is the default of [Config.Count].
	DefaultCount = 10
	// Name is the name of every recovery-code factor, and the hint of the
	// flow's option.
	Name = "Recovery code"
	// CodeBits is the entropy of a code: 16 characters of a 32-letter
	// alphabet.
	CodeBits = 80

	codeChars = CodeBits / 5
	// alphabet is Crockford's base32 in lower case: digits and letters
	// without i, l, o and u, so no two characters look alike.
	alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	// macPurpose separates the codes' keyed hashes from other MACs.
	macPurpose = "recovery code"
)

// Config configures the recovery-codes flow.
type Config struct {
	// Store keeps the codes' hashes; [Flow.Options] and [Flow.Remaining]
	// read it. Required.
	Store store.FactorStore
	// Count is how many codes [Flow.Generate] makes. Default: 10; between
	// 5 and 20.
	Count int
}

// Flow is the recovery-codes flow: single-use codes the user printed or
// saved when enrolling MFA. It is safe for concurrent use.
type Flow struct {
	cfg Config
}

var (
	_ flows.Flow     = (*Flow)(nil)
	_ flows.Prompter = (*Flow)(nil)
)

// New validates cfg and returns the recovery-codes flow. Its error names
// every field that is wrong.
func New(cfg Config) (*Flow, error) {
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, errors.New("recoverycodes: config: field 'Store': required"))
	}
	if cfg.Count == 0 {
		cfg.Count = DefaultCount
	} else if cfg.Count < 5 || cfg.Count > 20 {
		errs = append(errs, errors.New("recoverycodes: config: field 'Count': must be between 5 and 20"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Flow{cfg: cfg}, nil
}

// ID returns "recovery-codes".
func (f *Flow) ID() string { return ID }

// Kind returns [flows.KindBound]: the codes were issued to the account
// holder as a second factor.
func (f *Flow) Kind() flows.Kind { return flows.KindBound }

// Prompt asks for a recovery code on the generic code page.
func (f *Flow) Prompt() flows.Prompt {
	return flows.Prompt{
		Page:         "code",
		Heading:      "recovery.heading",
		Label:        "recovery.label",
		InputMode:    "text",
		Autocomplete: "off",
		MaxLength:    32,
		Choice:       "recovery.choice",
		Section:      "recovery.section",
		Add:          "recovery.add",
	}
}

// Options offers one option when s has any unused code. A decoy has none.
func (f *Flow) Options(ctx context.Context, s flows.Subject) ([]flows.Option, error) {
	n, err := f.Remaining(ctx, s.UserID)
	if err != nil || n == 0 {
		return nil, err
	}
	return []flows.Option{{Flow: ID, Ref: "codes", Hint: Name}}, nil
}

// Remaining returns how many unused codes userID has (0 for an empty
// userID).
func (f *Flow) Remaining(ctx context.Context, userID string) (int, error) {
	if userID == "" {
		return 0, nil
	}
	codes, err := f.cfg.Store.Factors(ctx, userID, ID)
	if err != nil {
		return 0, fmt.Errorf("recoverycodes: remaining: %w", err)
	}
	return len(codes), nil
}

// Generate replaces userID's codes with Count new ones and returns them,
// formatted "xxxx-xxxx-xxxx-xxxx"; show them once, they are not stored.
// Each code has 80 bits from crypto/rand and is stored as its own factor
// whose Secret is env.MAC("recovery code", userID, code). When st is a
// [store.Store], deleting the old codes and creating the new ones happen
// in one [store.Store.Atomic]; otherwise (a [store.Tx]) they happen in the
// caller's transaction. Call it only after a fresh step-up of userID.
//
// The codes are keyed with the plugin's MAC key: rotating that key makes
// them unusable, so users must generate new ones.
func (f *Flow) Generate(ctx context.Context, st store.FactorStore, env flows.Env, userID string) ([]string, error) {
	if userID == "" {
		return nil, errors.New("recoverycodes: generate: empty user ID")
	}
	codes := make([]string, 0, f.cfg.Count)
	seen := make(map[string]bool, f.cfg.Count)
	for len(codes) < f.cfg.Count {
		c := newCode()
		if !seen[c] {
			seen[c] = true
			codes = append(codes, c)
		}
	}
	now := env.Now()
	replace := func(tx store.FactorStore) error {
		if _, err := tx.DeleteFactors(ctx, userID, ID); err != nil {
			return err
		}
		for _, c := range codes {
			err := tx.CreateFactor(ctx, store.Factor{
				ID:        challenge.RandomID(),
				UserID:    userID,
				Flow:      ID,
				Name:      Name,
				Secret:    mac(env, userID, normalized(c)),
				CreatedAt: now,
			})
			if err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	if s, ok := st.(store.Store); ok {
		err = s.Atomic(ctx, func(tx store.Tx) error { return replace(tx) })
	} else {
		err = replace(st)
	}
	if err != nil {
		return nil, fmt.Errorf("recoverycodes: generate: %w", err)
	}
	return codes, nil
}

// Begin gives the journey a challenge that counts wrong codes: at most
// [MaxAttempts] within [ChallengeTTL]. It sends nothing. A live challenge
// is kept, so beginning again (or r.Resend) never resets the count. For a
// decoy it does the same.
func (f *Flow) Begin(ctx context.Context, r flows.BeginRequest) error {
	_, err := challenges().Begin(ctx, r.Tx, r.JourneyID, r.Env.Now(), nil)
	return err
}

// Verify checks the code in the form field "code" (case, spaces and dashes
// ignored) and uses it up: the store deletes the matching code atomically,
// so a code works once, and of concurrent requests with one code exactly
// one succeeds. A wrong code is counted on the journey's challenge and
// returns a [*flows.VerifyError] with the attempts left; a malformed one
// returns [flows.ErrMalformed] and is not counted. A decoy's code is always
// wrong.
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
	// The hash is computed for a decoy too, so both do the same work.
	h := mac(r.Env, r.Subject.UserID, code)
	if r.Subject.UserID == "" {
		return challenges().CountWrong(ctx, r.Tx, c, now)
	}
	if _, err := r.Tx.ConsumeFactor(ctx, r.Subject.UserID, ID, h); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return challenges().CountWrong(ctx, r.Tx, c, now)
		}
		return fmt.Errorf("recoverycodes: verify: %w", err)
	}
	return challenges().Accept(ctx, r.Tx, c, now)
}

// mac is the keyed hash stored for a normalized code.
func mac(env flows.Env, userID, code string) []byte {
	return env.MAC(macPurpose, []byte(userID), []byte(code))
}

// NormalizeCode lowers s, removes spaces and dashes, reads the look-alikes
// i, l and o as 1, 1 and 0, and reports whether the rest is a code: 16
// characters of the alphabet.
func NormalizeCode(s string) (string, bool) {
	if len(s) > 64 {
		return "", false
	}
	var b strings.Builder
	for _, c := range s {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		switch {
		case c == ' ' || c == '-' || c == '\t':
			continue
		case c == 'i' || c == 'l':
			c = '1'
		case c == 'o':
			c = '0'
		case c > 0x7f || !strings.ContainsRune(alphabet, c):
			return "", false
		}
		b.WriteRune(c)
	}
	if b.Len() != codeChars {
		return "", false
	}
	return b.String(), true
}

// normalized returns the normalized form of a code this package made.
func normalized(c string) string { return strings.ReplaceAll(c, "-", "") }

// newCode returns a fresh code: 80 bits from crypto/rand in 16 characters
// of the alphabet, grouped by four.
func newCode() string {
	s := base32.NewEncoding(alphabet).WithPadding(base32.NoPadding).EncodeToString(challenge.RandomBytes(CodeBits / 8))
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
}

// AuthMethod returns "otp" (RFC 8176): a recovery code is a one-time
// password.
func (f *Flow) AuthMethod() string { return "otp" }
