package sms

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/internal/challenge"
	"github.com/sspr-go/sspr/flows/internal/otpcode"
	"github.com/sspr-go/sspr/flows/internal/seal"
	"github.com/sspr-go/sspr/plugin/store"
)

// ID is the flow's ID, also the Flow of its factors and challenges in the
// store and the Channel of the messages it queues.
const ID = "sms"

// Defaults of [Config].
const (
	DefaultCodeTTL     = otpcode.DefaultTTL
	DefaultCodeLength  = otpcode.DefaultLength
	DefaultMaxAttempts = otpcode.DefaultMaxAttempts
	DefaultMaxResends  = otpcode.DefaultMaxResends
	DefaultMaxNumbers  = 3
)

// Purposes of the keyed hashes of codes ([flows.Env.MAC]): a journey's
// code and an enrolment's code never pass for each other.
const (
	macCode      = "sms code"
	macEnrolCode = "sms enrol code"
)

// Config configures the SMS flow. Zero fields take their defaults.
type Config struct {
	// Store keeps the phone numbers users enrol here (as factors) and the
	// challenges of enrolments. Required.
	Store store.Store
	// Keys encrypt enrolled phone numbers at rest with AES-256-GCM: each
	// exactly 32 bytes from a CSPRNG; the first encrypts, all decrypt. To
	// rotate, put a new key first and keep the old ones after it as long
	// as numbers sealed with them exist. Required.
	Keys [][]byte
	// DefaultRegion is the ISO 3166 region (such as "DE") of numbers
	// typed without a leading + or international prefix. Default: none,
	// so every number must start with + and its country code.
	DefaultRegion string
	// CodeTTL is how long a code stays valid. Default: 10 minutes;
	// between 1 and 10 minutes (ASVS V6.5.5).
	CodeTTL time.Duration
	// CodeLength is the number of digits of a code. Default: 8; between
	// 6 and 10.
	CodeLength int
	// MaxAttempts is the number of wrong codes after which a code is dead.
	// Default: 5; between 1 and 10.
	MaxAttempts int
	// MaxResends is how often a user may ask for a new text message in
	// one journey or enrolment. A resend never resets the attempt counter.
	// Default: 3; at most 10.
	MaxResends int
	// MaxNumbers is how many phone numbers a user may enrol here (numbers
	// the host verified do not count). Default: 3; between 1 and 10.
	MaxNumbers int
	// Now is the clock of enrolment; Begin and Verify use the engine's
	// clock. Default: time.Now.
	Now func() time.Time
}

// Flow is the SMS verification flow. It is safe for concurrent use.
type Flow struct {
	cfg    Config
	sealer *seal.Sealer
	// dummy is a sealed number no factor holds, opened by decoys so they
	// do the same work as real users.
	dummy []byte
}

var (
	_ flows.Flow      = (*Flow)(nil)
	_ flows.Prompter  = (*Flow)(nil)
	_ flows.Enroller  = (*Flow)(nil)
	_ flows.Addresser = (*Flow)(nil)
)

// New validates cfg and returns the SMS flow. Its error names every field
// that is wrong.
func New(cfg Config) (*Flow, error) {
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, errors.New("sms: config: field 'Store': required"))
	}
	var sealer *seal.Sealer
	if len(cfg.Keys) == 0 {
		errs = append(errs, errors.New("sms: config: field 'Keys': required"))
	} else {
		var err error
		if sealer, err = seal.New(cfg.Keys); err != nil {
			errs = append(errs, fmt.Errorf("sms: config: field 'Keys': %w", err))
		}
	}
	if cfg.DefaultRegion != "" {
		cfg.DefaultRegion = strings.ToUpper(cfg.DefaultRegion)
		if !phonenumbers.GetSupportedRegions()[cfg.DefaultRegion] {
			errs = append(errs, errors.New("sms: config: field 'DefaultRegion': must be an ISO 3166 region such as \"DE\""))
		}
	}
	codes := otpcode.Settings{TTL: cfg.CodeTTL, Length: cfg.CodeLength, MaxAttempts: cfg.MaxAttempts, MaxResends: cfg.MaxResends}
	errs = append(errs, codes.Check("sms: config")...)
	cfg.CodeTTL, cfg.CodeLength, cfg.MaxAttempts, cfg.MaxResends = codes.TTL, codes.Length, codes.MaxAttempts, codes.MaxResends
	if cfg.MaxNumbers == 0 {
		cfg.MaxNumbers = DefaultMaxNumbers
	} else if cfg.MaxNumbers < 1 || cfg.MaxNumbers > 10 {
		errs = append(errs, errors.New("sms: config: field 'MaxNumbers': must be between 1 and 10"))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cfg.Keys = nil // the sealer holds them
	f := &Flow{cfg: cfg, sealer: sealer}
	f.dummy = sealer.Seal([]byte(decoyNumber), sealAD("", ""))
	return f, nil
}

// decoyNumber is what a decoy's Begin normalizes, so that it does the
// same work as a real user's. It is never sent to.
const decoyNumber = "+447400123456"

// ID returns "sms".
func (f *Flow) ID() string { return ID }

// Kind returns [flows.KindChannel]: a text message proves control of a
// phone number, not possession of an authenticator.
func (f *Flow) Kind() flows.Kind { return flows.KindChannel }

// CodeLength returns the number of digits of a code.
func (f *Flow) CodeLength() int { return f.cfg.CodeLength }

// CodeTTL returns how long a code stays valid.
func (f *Flow) CodeTTL() time.Duration { return f.cfg.CodeTTL }

// Prompt asks for the texted code on the generic code page, and names the
// flow's section of the security-info page.
func (f *Flow) Prompt() flows.Prompt {
	return flows.Prompt{
		Page:         "code",
		Heading:      "sms.heading",
		Intro:        "sms.intro",
		Label:        "sms.label",
		InputMode:    "numeric",
		Autocomplete: "one-time-code",
		MaxLength:    4 * f.cfg.CodeLength,
		Choice:       "sms.choice",
		Section:      "sms.section",
		Add:          "sms.add",
	}
}

// CodeData is what the "code" and "enrol" message templates receive as
// .Data (through JSON, so by these field names).
type CodeData struct {
	// Code is the code to type.
	Code string
	// Minutes is the code's lifetime.
	Minutes int
	// Domain is the host name of the plugin's pages, for the last line of
	// the message, "@Domain #Code", by which browsers offer the code only
	// on that site (origin-bound one-time codes,
	// https://wicg.github.io/sms-one-time-codes/).
	Domain string
}

// Option references: a host-verified number by its index in
// [flows.Subject.Phones], or an enrolled number by its factor ID.
const (
	refContact = "c"
	refFactor  = "f"
)

// Options offers one option per phone number of s that can receive text
// messages: the numbers the host verified (s.Phones; numbers that do not
// normalize are skipped) and those the user enrolled here, without
// duplicates. A host number's Ref is "c" and its index in s.Phones, an
// enrolled one's "f" and its factor ID; the Hint is the [Mask]ed number.
// Every subject costs the same store read, one of its enrolled numbers,
// a decoy's too (the engine asks for plugin.DecoyUserID's and throws the
// answer away), so that a reset's first page takes as long for unknown
// identifiers as for known ones.
func (f *Flow) Options(ctx context.Context, s flows.Subject) ([]flows.Option, error) {
	ps, err := f.phones(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("sms: options: %w", err)
	}
	var out []flows.Option
	for _, p := range ps {
		out = append(out, flows.Option{Flow: ID, Ref: p.ref, Hint: Mask(p.number)})
	}
	return out, nil
}

// Begin creates a challenge with a fresh code, stored only as a keyed
// hash bound to the journey, and queues the "code" message to the option's
// number in r.Tx. With r.Resend it replaces the code of the journey's
// latest challenge instead (at most MaxResends times), keeping its attempt
// counter and its number; a used or exhausted challenge gets no new code.
// For a decoy, or a Ref that names no number of the subject, it does the
// same work and queues a message without recipient, which the outbox
// drops.
func (f *Flow) Begin(ctx context.Context, r flows.BeginRequest) error {
	code, err := otpcode.Random(f.cfg.CodeLength)
	if err != nil {
		return fmt.Errorf("sms: begin: %w", err)
	}
	now := r.Env.Now()
	codeHash := r.Env.MAC(macCode, []byte(r.JourneyID), []byte(code))
	codes := otpcode.Settings{TTL: f.cfg.CodeTTL, Length: f.cfg.CodeLength, MaxAttempts: f.cfg.MaxAttempts, MaxResends: f.cfg.MaxResends}
	ref, err := codes.Issue(ctx, r.Tx, ID, r.JourneyID, r.Option.Ref, nil, codeHash, now, r.Resend)
	if err != nil {
		return err
	}
	to, err := f.resolve(ctx, r.Tx, r.Subject, ref)
	if err != nil {
		return fmt.Errorf("sms: begin: %w", err)
	}
	template := "code"
	if r.StepUp {
		template = "stepup"
	}
	return r.Env.Queue(ctx, r.Tx, flows.Message{
		Template: template,
		Channel:  ID,
		To:       to,
		Locale:   r.Locale,
		Data:     f.codeData(r.Env, code),
	})
}

// resolve returns the number ref names for s, or "" for a decoy or a ref
// that names none of s's numbers. Whatever the ref, it reads one factor,
// opens one sealed value and normalizes one number, so that every Begin
// does the same work. Errors are faults (the store, a key).
func (f *Flow) resolve(ctx context.Context, st store.FactorStore, s flows.Subject, ref string) (string, error) {
	factorID, contact := challenge.RandomID(), -1
	switch {
	case s.UserID == "":
	case strings.HasPrefix(ref, refFactor) && len(ref) > len(refFactor):
		factorID = ref[len(refFactor):]
	case strings.HasPrefix(ref, refContact):
		if i, err := strconv.Atoi(ref[len(refContact):]); err == nil && i >= 0 && i < len(s.Phones) {
			contact = i
		}
	}
	fa, err := st.Factor(ctx, factorID)
	found := err == nil && s.UserID != "" && fa.UserID == s.UserID && fa.Flow == ID
	switch {
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return "", err
	case !found:
		fa = store.Factor{Secret: f.dummy} // sealed for no user and no factor
	}
	number, err := f.openNumber(fa)
	if err != nil {
		return "", err
	}
	if contact >= 0 {
		number = s.Phones[contact]
	}
	n, err := Normalize(number, f.cfg.DefaultRegion)
	if err != nil || (!found && contact < 0) {
		return "", nil
	}
	return n, nil
}

// codeData is the message data of code.
func (f *Flow) codeData(env flows.Env, code string) CodeData {
	d := CodeData{Code: code, Minutes: int(f.cfg.CodeTTL / time.Minute)}
	if u, err := url.Parse(env.URL("/", nil)); err == nil {
		d.Domain = u.Hostname()
	}
	return d
}

// Verify checks the code in the form field "code" (spaces and dashes
// ignored) against the journey's latest challenge, which the store
// consumes atomically: a code works once. A malformed code is
// [flows.ErrMalformed] and counts nothing; a wrong one is counted and
// returns a [*flows.VerifyError] with the attempts left, or with
// [flows.ErrExhausted] when none are. After a right code for an enrolled
// number, that number's LastUsedAt is set.
func (f *Flow) Verify(ctx context.Context, r flows.VerifyRequest) error {
	code, ok := otpcode.Normalize(r.Form.Get("code"), f.cfg.CodeLength)
	if !ok {
		return flows.ErrMalformed
	}
	now := r.Env.Now()
	c, err := r.Tx.LatestChallenge(ctx, r.JourneyID, ID)
	if err != nil {
		return challenge.MapStoreError(fmt.Errorf("sms: verify: %w", err))
	}
	c, err = otpcode.Consume(ctx, r.Tx, c, r.Env.MACs(macCode, []byte(r.JourneyID), []byte(code)), now)
	if err != nil {
		if ve := (*flows.VerifyError)(nil); errors.As(err, &ve) {
			return err
		}
		return challenge.MapStoreError(fmt.Errorf("sms: verify: %w", err))
	}
	if ref := string(c.Data); strings.HasPrefix(ref, refFactor) && r.Subject.UserID != "" {
		fa, err := r.Tx.Factor(ctx, ref[len(refFactor):])
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return fmt.Errorf("sms: verify: %w", err)
		case fa.UserID == r.Subject.UserID && fa.Flow == ID:
			fa.LastUsedAt = now
			if err := r.Tx.UpdateFactor(ctx, fa); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("sms: verify: %w", err)
			}
		}
	}
	return nil
}

// sealAD binds a sealed number to its user and factor.
func sealAD(userID, factorID string) []byte {
	return []byte("sspr sms number\x00" + userID + "\x00" + factorID)
}

// openNumber returns the number of an enrolled factor.
func (f *Flow) openNumber(fa store.Factor) (string, error) {
	raw, err := f.sealer.Open(fa.Secret, sealAD(fa.UserID, fa.ID))
	if err != nil {
		return "", fmt.Errorf("factor %s: %w", fa.ID, err)
	}
	return string(raw), nil
}

// phone is one phone number of a user: number in E.164, and ref the
// option reference that names it ([refContact] and its index in
// [flows.Subject.Phones], or [refFactor] and its factor ID).
type phone struct {
	number, ref string
}

// enrolled reads the numbers userID enrolled here from st and opens them:
// one per factor, in the store's order. Its errors are the store's, or
// name the factor that does not open (a key no longer configured).
func (f *Flow) enrolled(ctx context.Context, st store.FactorStore, userID string) ([]phone, error) {
	fs, err := st.Factors(ctx, userID, ID)
	if err != nil {
		return nil, err
	}
	out := make([]phone, 0, len(fs))
	for _, fa := range fs {
		n, err := f.openNumber(fa)
		if err != nil {
			return nil, err
		}
		out = append(out, phone{number: n, ref: refFactor + fa.ID})
	}
	return out, nil
}

// phones returns every number of s: first the host's (s.Phones; those
// that do not normalize are skipped), then those s enrolled here, each
// number once, under the first reference that names it. It reads the
// factors of s.UserID once, whatever s.Phones holds.
func (f *Flow) phones(ctx context.Context, s flows.Subject) ([]phone, error) {
	var out []phone
	seen := map[string]bool{}
	add := func(p phone) {
		if !seen[p.number] {
			seen[p.number] = true
			out = append(out, p)
		}
	}
	for i, p := range s.Phones {
		if n, err := Normalize(p, f.cfg.DefaultRegion); err == nil {
			add(phone{number: n, ref: refContact + strconv.Itoa(i)})
		}
	}
	enrolled, err := f.enrolled(ctx, f.cfg.Store, s.UserID)
	if err != nil {
		return nil, err
	}
	for _, p := range enrolled {
		add(p)
	}
	return out, nil
}

// Addresses returns every number of s in E.164: the host's (s.Phones,
// those that normalize) and the enrolled ones, without duplicates. The
// engine sends its notices ("your password was changed") to them. It
// implements [flows.Addresser].
func (f *Flow) Addresses(ctx context.Context, s flows.Subject) ([]string, error) {
	if s.UserID == "" {
		return nil, nil
	}
	ps, err := f.phones(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("sms: addresses: %w", err)
	}
	var out []string
	for _, p := range ps {
		out = append(out, p.number)
	}
	return out, nil
}

// AddNumber enrols number for userID without sending a code, for seeding
// demo accounts and migrating numbers another system verified. Prefer the
// security-info page, which proves the user holds the phone. The number is
// normalized with [Config.DefaultRegion]; a number the user has already is
// refused with [flows.ErrUsed].
func (f *Flow) AddNumber(ctx context.Context, userID, number string) (store.Factor, error) {
	if userID == "" {
		return store.Factor{}, errors.New("sms: add number: empty user ID")
	}
	n, err := Normalize(number, f.cfg.DefaultRegion)
	if err != nil {
		return store.Factor{}, fmt.Errorf("sms: add number: %w", err)
	}
	id := challenge.RandomID()
	fa := store.Factor{ID: id, UserID: userID, Flow: ID, Name: Mask(n),
		Secret: f.sealer.Seal([]byte(n), sealAD(userID, id)), CreatedAt: f.cfg.Now()}
	err = f.cfg.Store.Atomic(ctx, func(tx store.Tx) error {
		msg, err := f.refuse(ctx, tx, userID, n)
		if err != nil {
			return err
		}
		if msg != "" {
			return fmt.Errorf("%s: %w", msg, flows.ErrUsed)
		}
		return tx.CreateFactor(ctx, fa)
	})
	if err != nil {
		return store.Factor{}, fmt.Errorf("sms: add number: %w", err)
	}
	return fa, nil
}
