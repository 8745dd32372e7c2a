package totp

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"image/png"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pquerna/otp"
	pqtotp "github.com/pquerna/otp/totp"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/internal/challenge"
	"github.com/sspr-go/sspr/plugin/store"
)

// Enrolment parameters.
const (
	// EnrollmentTTL is how long a pending enrolment can be confirmed.
	EnrollmentTTL = 10 * time.Minute
	// SecretSize is the size of a generated secret: 160 bits, as RFC 4226
	// §4 recommends.
	SecretSize = 20
	// QRSize is the width and height of the QR code image, in pixels.
	QRSize = 256
	// MaxNameLength bounds a factor's name, in characters.
	MaxNameLength = 64

	minSecretSize = 10 // 80 bits: what common demo secrets have
	maxSecretSize = 64
	tokenVersion  = 1
)

// tokenAD binds enrolment tokens to their purpose, so that no other sealed
// value of the flow can pass for one.
const tokenAD = "sspr totp enrolment token"

// Enrollment is a pending TOTP enrolment. Nothing is stored until
// [Flow.Confirm] accepts a code for it; the Token carries the state,
// sealed. Show Secret, URL (as a link) and QR to the user only, and keep
// Token in the enrolment form; never log an Enrollment (its LogValue is
// redacted).
type Enrollment struct {
	// Secret is the shared secret in base32 without padding, for users who
	// type it into their app.
	Secret string
	// URL is the otpauth:// key URI (the QR code's content).
	URL string
	// QR is a PNG image of URL, QRSize×QRSize pixels.
	QR []byte
	// Token is an opaque, sealed, URL-safe blob holding the user ID, the
	// secret and the expiry; hand it back to [Flow.Confirm].
	Token string
	// ExpiresAt is when Token stops being accepted.
	ExpiresAt time.Time
}

// LogValue implements [slog.LogValuer]: an enrolment holds a secret.
func (e Enrollment) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// Enroll starts an enrolment for userID with a fresh 160-bit secret.
// account is the name the authenticator app shows next to the issuer
// (for example the user's email address); empty means userID. Call it only
// after a fresh step-up of userID. It stores nothing.
func (f *Flow) Enroll(ctx context.Context, userID, account string) (Enrollment, error) {
	if userID == "" {
		return Enrollment{}, errors.New("totp: enroll: empty user ID")
	}
	if account == "" {
		account = userID
	}
	exp := f.cfg.Now().Add(EnrollmentTTL).Truncate(time.Second) // the token keeps seconds
	p := pending{userID: userID, factorID: challenge.RandomID(), secret: challenge.RandomBytes(SecretSize), expires: exp}
	return f.enrollment(p, account)
}

// enrollment presents pending enrolment p for an account.
func (f *Flow) enrollment(p pending, account string) (Enrollment, error) {
	key, err := pqtotp.Generate(pqtotp.GenerateOpts{
		Issuer:      f.cfg.Issuer,
		AccountName: account,
		Period:      uint(Period / time.Second),
		Secret:      p.secret,
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
	})
	if err != nil {
		return Enrollment{}, fmt.Errorf("totp: enroll: %w", err)
	}
	img, err := key.Image(QRSize, QRSize)
	if err != nil {
		return Enrollment{}, fmt.Errorf("totp: enroll: qr code: %w", err)
	}
	var qr bytes.Buffer
	if err := png.Encode(&qr, img); err != nil {
		return Enrollment{}, fmt.Errorf("totp: enroll: qr code: %w", err)
	}
	return Enrollment{
		Secret:    key.Secret(),
		URL:       key.URL(),
		QR:        qr.Bytes(),
		Token:     base64.RawURLEncoding.EncodeToString(f.sealer.Seal(p.marshal(), []byte(tokenAD))),
		ExpiresAt: p.expires,
	}, nil
}

// Confirm completes an enrolment: it checks code against the token's
// secret for the current time step ±Skew and stores the factor under name
// (default [DefaultName], a message key), its secret sealed, with the code's step
// already used. It returns the stored factor (whose UserID is the one the
// token was issued to: a host may check it against its session).
//
// Errors: [flows.ErrMalformed] for a token that does not open, a code that
// is not 6 digits or a name longer than [MaxNameLength]; [flows.ErrExpired]
// after [EnrollmentTTL]; [flows.ErrWrongResponse] for a wrong code;
// [flows.ErrUsed] when the token was already confirmed; [ErrTooManyFactors].
// A failed Confirm stores nothing. Wrong codes are not counted here: the
// person confirming holds the secret already, so guessing gains nothing.
func (f *Flow) Confirm(ctx context.Context, st store.FactorStore, token, code, name string) (store.Factor, error) {
	p, err := f.openToken(token)
	if err != nil {
		return store.Factor{}, fmt.Errorf("totp: confirm: %w", err)
	}
	now := f.cfg.Now()
	if !now.Before(p.expires) {
		return store.Factor{}, fmt.Errorf("totp: confirm: enrolment: %w", flows.ErrExpired)
	}
	code, ok := NormalizeCode(code)
	if !ok {
		return store.Factor{}, fmt.Errorf("totp: confirm: code: %w", flows.ErrMalformed)
	}
	if name, err = checkName(name); err != nil {
		return store.Factor{}, fmt.Errorf("totp: confirm: %w", err)
	}
	steps, err := f.matchSteps(p.secret, code, now)
	if err != nil {
		return store.Factor{}, fmt.Errorf("totp: confirm: %w", err)
	}
	if len(steps) == 0 {
		return store.Factor{}, fmt.Errorf("totp: confirm: %w", flows.ErrWrongResponse)
	}
	fa := store.Factor{
		ID:         p.factorID,
		UserID:     p.userID,
		Flow:       ID,
		Name:       name,
		Secret:     f.sealer.Seal(p.secret, sealAD(p.userID, p.factorID)),
		Counter:    steps[len(steps)-1],
		CreatedAt:  now,
		LastUsedAt: now,
	}
	if err := f.create(ctx, st, fa); err != nil {
		return store.Factor{}, fmt.Errorf("totp: confirm: %w", err)
	}
	return fa, nil
}

// AddSecret stores a factor with a known base32 secret (spaces, padding
// and case are ignored; 10 to 64 bytes) for userID, for seeding demo or
// migrated accounts. Prefer [Flow.Enroll], which generates the secret.
func (f *Flow) AddSecret(ctx context.Context, st store.FactorStore, userID, name, base32Secret string) (store.Factor, error) {
	if userID == "" {
		return store.Factor{}, errors.New("totp: add secret: empty user ID")
	}
	s := strings.ToUpper(strings.TrimRight(strings.ReplaceAll(base32Secret, " ", ""), "="))
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(s)
	if err != nil || len(secret) < minSecretSize || len(secret) > maxSecretSize {
		return store.Factor{}, fmt.Errorf("totp: add secret: must be base32 of %d to %d bytes: %w", minSecretSize, maxSecretSize, flows.ErrMalformed)
	}
	if name, err = checkName(name); err != nil {
		return store.Factor{}, fmt.Errorf("totp: add secret: %w", err)
	}
	now := f.cfg.Now()
	id := challenge.RandomID()
	fa := store.Factor{
		ID:        id,
		UserID:    userID,
		Flow:      ID,
		Name:      name,
		Secret:    f.sealer.Seal(secret, sealAD(userID, id)),
		CreatedAt: now,
	}
	if err := f.create(ctx, st, fa); err != nil {
		return store.Factor{}, fmt.Errorf("totp: add secret: %w", err)
	}
	return fa, nil
}

// Check verifies a code for userID outside any journey (for example the
// host's own MFA at login), with the same replay protection as
// [Flow.Verify]: each time step is accepted once per factor. It returns nil
// when the code is right, [flows.ErrMalformed] when it is not 6 digits and
// [flows.ErrWrongResponse] when it is wrong, replayed, or the user has no
// authenticator. Check counts nothing: the caller must limit attempts (for
// example 5 per login and a per-account rate limit).
func (f *Flow) Check(ctx context.Context, st store.FactorStore, userID, code string) error {
	code, ok := NormalizeCode(code)
	if !ok {
		return fmt.Errorf("totp: check: %w", flows.ErrMalformed)
	}
	ok, err := f.check(ctx, st, userID, code, f.cfg.Now())
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("totp: check: %w", flows.ErrWrongResponse)
	}
	return nil
}

// create stores fa unless its user has MaxFactors authenticators already;
// when st is a [store.Store], counting and storing happen in one
// transaction.
func (f *Flow) create(ctx context.Context, st store.FactorStore, fa store.Factor) error {
	put := func(tx store.FactorStore) error {
		existing, err := tx.Factors(ctx, fa.UserID, ID)
		if err != nil {
			return err
		}
		if len(existing) >= MaxFactors {
			return ErrTooManyFactors
		}
		if err := tx.CreateFactor(ctx, fa); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("%w (%w)", flows.ErrUsed, err)
			}
			return err
		}
		return nil
	}
	if s, ok := st.(store.Store); ok {
		return s.Atomic(ctx, func(tx store.Tx) error { return put(tx) })
	}
	return put(st)
}

// checkName trims name and applies the default and the length bound.
func checkName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return DefaultName, nil
	case !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxNameLength:
		return "", fmt.Errorf("name: %w", flows.ErrMalformed)
	}
	return name, nil
}

// pending is the content of an enrolment token.
type pending struct {
	userID, factorID string
	secret           []byte
	expires          time.Time
}

// marshal encodes p as version, expiry (Unix seconds), then the factor ID
// and secret with one-byte lengths, then the user ID.
func (p pending) marshal() []byte {
	b := []byte{tokenVersion}
	b = binary.BigEndian.AppendUint64(b, uint64(p.expires.Unix()))
	b = append(b, byte(len(p.factorID)))
	b = append(b, p.factorID...)
	b = append(b, byte(len(p.secret)))
	b = append(b, p.secret...)
	return append(b, p.userID...)
}

// openToken opens and decodes an enrolment token.
func (f *Flow) openToken(token string) (pending, error) {
	bad := fmt.Errorf("enrolment token: %w", flows.ErrMalformed)
	if len(token) > 4096 {
		return pending{}, bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return pending{}, bad
	}
	b, err := f.sealer.Open(raw, []byte(tokenAD))
	if err != nil {
		return pending{}, fmt.Errorf("enrolment token: %w (%w)", flows.ErrMalformed, err)
	}
	// The content was sealed by this flow, so it is well formed; the
	// checks only guard against a format change.
	if len(b) < 1+8+1 || b[0] != tokenVersion {
		return pending{}, bad
	}
	p := pending{expires: time.Unix(int64(binary.BigEndian.Uint64(b[1:9])), 0)}
	factorID, b, ok1 := cutField(b[9:])
	secret, b, ok2 := cutField(b)
	if !ok1 || !ok2 {
		return pending{}, bad
	}
	p.factorID, p.secret = string(factorID), secret
	p.userID = string(b)
	if p.userID == "" || p.factorID == "" || len(p.secret) < minSecretSize {
		return pending{}, bad
	}
	return p, nil
}

// cutField splits a field with a one-byte length off the front of b.
func cutField(b []byte) (field, rest []byte, ok bool) {
	if len(b) < 1 || len(b) < 1+int(b[0]) {
		return nil, nil, false
	}
	n := 1 + int(b[0])
	return b[1:n], b[n:], true
}
