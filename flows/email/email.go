package email

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/internal/challenge"
	"github.com/sspr-go/sspr/flows/internal/otpcode"
	"github.com/sspr-go/sspr/plugin/store"
)

// ID is the flow's ID.
const ID = "email"

// Defaults of [Config].
const (
	DefaultCodeTTL     = otpcode.DefaultTTL
	DefaultCodeLength  = otpcode.DefaultLength
	DefaultMaxAttempts = otpcode.DefaultMaxAttempts
	DefaultMaxResends  = otpcode.DefaultMaxResends
)

// tokenBytes is the size of a link token: 256 bits from crypto/rand.
const tokenBytes = 32

// Config configures the email flow. Zero fields take their defaults.
type Config struct {
	// CodeTTL is how long a link and code stay valid. Default: 10 minutes;
	// between 1 and 10 minutes (ASVS V6.5.5: out-of-band codes live at
	// most 10 minutes).
	CodeTTL time.Duration
	// CodeLength is the number of digits of the code. Default: 8; between
	// 6 and 10.
	CodeLength int
	// MaxAttempts is the number of wrong codes after which the code (and
	// its link) is dead. Default: 5; between 1 and 10.
	MaxAttempts int
	// MaxResends is how often a user may ask for a new email in one
	// journey. A resend never resets the attempt counter. Default: 3.
	MaxResends int
}

// Flow is the email verification flow.
type Flow struct {
	cfg Config
}

var (
	_ flows.Flow         = (*Flow)(nil)
	_ flows.LinkRedeemer = (*Flow)(nil)
)

// New validates cfg and returns the email flow.
func New(cfg Config) (*Flow, error) {
	codes := otpcode.Settings{TTL: cfg.CodeTTL, Length: cfg.CodeLength, MaxAttempts: cfg.MaxAttempts, MaxResends: cfg.MaxResends}
	errs := codes.Check("email: config")
	cfg.CodeTTL, cfg.CodeLength, cfg.MaxAttempts, cfg.MaxResends = codes.TTL, codes.Length, codes.MaxAttempts, codes.MaxResends
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Flow{cfg: cfg}, nil
}

// ID returns "email".
func (f *Flow) ID() string { return ID }

// Kind returns [flows.KindChannel]: email proves control of an address.
func (f *Flow) Kind() flows.Kind { return flows.KindChannel }

// CodeLength returns the number of digits of a code.
func (f *Flow) CodeLength() int { return f.cfg.CodeLength }

// codes returns the flow's code settings.
func (f *Flow) codes() otpcode.Settings {
	return otpcode.Settings{TTL: f.cfg.CodeTTL, Length: f.cfg.CodeLength, MaxAttempts: f.cfg.MaxAttempts, MaxResends: f.cfg.MaxResends}
}

// CodeTTL returns how long a link and code stay valid.
func (f *Flow) CodeTTL() time.Duration { return f.cfg.CodeTTL }

// Options offers one option per email address of s, masked.
func (f *Flow) Options(_ context.Context, s flows.Subject) ([]flows.Option, error) {
	var out []flows.Option
	for i, addr := range s.Emails {
		out = append(out, flows.Option{Flow: ID, Ref: strconv.Itoa(i), Hint: Mask(addr)})
	}
	return out, nil
}

// ResetData is what the "reset" message template receives as .Data.
type ResetData struct {
	// Link is the absolute URL of the link page, token included.
	Link string
	// Code is the code to type.
	Code string
	// Minutes is the lifetime of link and code.
	Minutes int
}

// Begin creates a challenge with a fresh link token and code and queues the
// "reset" message in r.Tx. With r.Resend it replaces the secrets of the
// journey's latest challenge instead, keeping its attempt counter (a used
// or exhausted code gets no new one: the email would be for nothing). For a
// decoy subject it does the same work and queues a message with no
// recipient, which the outbox drops.
func (f *Flow) Begin(ctx context.Context, r flows.BeginRequest) error {
	token, err := randomToken()
	if err != nil {
		return err
	}
	code, err := otpcode.Random(f.cfg.CodeLength)
	if err != nil {
		return fmt.Errorf("email: begin: %w", err)
	}
	now := r.Env.Now()
	tokenHash := hashToken(token)
	codeHash := r.Env.MAC("email code", []byte(r.JourneyID), []byte(code))
	ref, err := f.codes().Issue(ctx, r.Tx, ID, r.JourneyID, r.Option.Ref, tokenHash, codeHash, now, r.Resend)
	if err != nil {
		return err
	}
	to := ""
	if r.Subject.UserID != "" {
		if i, err := strconv.Atoi(ref); err == nil && i >= 0 && i < len(r.Subject.Emails) {
			to = r.Subject.Emails[i]
		}
	}
	template := "reset"
	if r.StepUp {
		template = "stepup"
	}
	return r.Env.Queue(ctx, r.Tx, flows.Message{
		Template: template,
		Channel:  ID,
		To:       to,
		Locale:   r.Locale,
		Data: ResetData{
			Link:    r.Env.URL("/link", url.Values{"token": {token}}),
			Code:    code,
			Minutes: int(f.cfg.CodeTTL / time.Minute),
		},
	})
}

// Verify checks the code in the form field "code" against the journey's
// latest challenge. Spaces and dashes are ignored.
func (f *Flow) Verify(ctx context.Context, r flows.VerifyRequest) error {
	code, ok := NormalizeCode(r.Form.Get("code"), f.cfg.CodeLength)
	if !ok {
		return flows.ErrMalformed
	}
	c, err := r.Tx.LatestChallenge(ctx, r.JourneyID, ID)
	if err != nil {
		return challenge.MapStoreError(fmt.Errorf("email: verify: %w", err))
	}
	if _, err = otpcode.Consume(ctx, r.Tx, c, r.Env.MACs("email code", []byte(r.JourneyID), []byte(code)), r.Env.Now()); err != nil {
		if ve := (*flows.VerifyError)(nil); errors.As(err, &ve) {
			return err
		}
		return challenge.MapStoreError(fmt.Errorf("email: verify: %w", err))
	}
	return nil
}

// PeekLink returns the journey of a link token without using it.
func (f *Flow) PeekLink(ctx context.Context, st store.Tx, env flows.Env, token string) (string, error) {
	if !validToken(token) {
		return "", flows.ErrNoChallenge
	}
	c, err := st.ChallengeByToken(ctx, hashToken(token))
	if err != nil {
		return "", challenge.MapStoreError(fmt.Errorf("email: link: %w", err))
	}
	switch {
	case !c.UsedAt.IsZero():
		return "", flows.ErrUsed
	case c.Attempts >= c.MaxAttempts:
		return "", flows.ErrExhausted
	case !env.Now().Before(c.ExpiresAt):
		return "", flows.ErrExpired
	}
	return c.JourneyID, nil
}

// RedeemLink consumes a link token atomically and returns its journey.
func (f *Flow) RedeemLink(ctx context.Context, st store.Tx, env flows.Env, token string) (string, error) {
	if !validToken(token) {
		return "", flows.ErrNoChallenge
	}
	c, err := st.ConsumeToken(ctx, hashToken(token), env.Now())
	if err != nil {
		return "", challenge.MapStoreError(fmt.Errorf("email: link: %w", err))
	}
	return c.JourneyID, nil
}

// NormalizeCode removes spaces, tabs and dashes from s and reports
// whether the rest is exactly n ASCII digits. Input longer than 4n bytes
// is refused.
func NormalizeCode(s string, n int) (string, bool) { return otpcode.Normalize(s, n) }

// Mask hides most of an email address: "alice@example.com" becomes
// "a•••@example.com".
func Mask(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 {
		return "•••"
	}
	first, _ := utf8.DecodeRuneInString(addr)
	return string(first) + "•••" + addr[at:]
}

func randomToken() (string, error) {
	return base64.RawURLEncoding.EncodeToString(challenge.RandomBytes(tokenBytes)), nil
}

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// validToken reports whether s has the form of a link token, so that
// hostile input never reaches the store.
func validToken(s string) bool {
	if len(s) != base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return false
	}
	// Check the alphabet first: the decoder skips \r and \n, so it alone
	// would let "…\n…" through (found by FuzzLinkToken).
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return false
		}
	}
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}
