package webauthn

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	gowebauthn "github.com/go-webauthn/webauthn/webauthn"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/internal/challenge"
	"github.com/sspr-go/sspr/plugin/store"
)

// Reasons an assertion is refused. They all wrap errRejected, which tells
// a refusal (counted in a journey) from a fault.
var (
	errRejected    = errors.New("webauthn: assertion rejected")
	errDecoy       = fmt.Errorf("%w: no such user", errRejected)
	errNoCreds     = fmt.Errorf("%w: user has no credentials", errRejected)
	errNotVerified = fmt.Errorf("%w: user not verified", errRejected)
	errSignCount   = fmt.Errorf("%w: signature counter did not increase (cloned authenticator?)", errRejected)
)

// user is a [gowebauthn.User] read from the store.
type user struct {
	id                []byte
	name, displayName string
	creds             []gowebauthn.Credential
}

func (u *user) WebAuthnID() []byte                           { return u.id }
func (u *user) WebAuthnName() string                         { return u.name }
func (u *user) WebAuthnDisplayName() string                  { return u.displayName }
func (u *user) WebAuthnCredentials() []gowebauthn.Credential { return u.creds }

// loadUser reads the user's handle and credentials from st, and returns
// the credentials' factors by credential ID. A user without a handle gets
// a nil id (a decoy, "", never has one); a user with credentials but no
// handle is an error.
func (f *Flow) loadUser(ctx context.Context, st store.FactorStore, userID string) (*user, map[string]store.Factor, error) {
	facs, err := st.Factors(ctx, userID, ID)
	if err != nil {
		return nil, nil, err
	}
	u := &user{name: userID, displayName: userID}
	switch h, err := st.Factor(ctx, handleFactorID(userID)); {
	case err == nil:
		if h.UserID != userID || h.Flow != UserHandleFlow || len(h.Data) == 0 {
			return nil, nil, fmt.Errorf("webauthn: user handle factor %s is not the user's", h.ID)
		}
		u.id = h.Data
	case !errors.Is(err, store.ErrNotFound):
		return nil, nil, err
	}
	byID := make(map[string]store.Factor, len(facs))
	for _, fa := range facs {
		var c gowebauthn.Credential
		if err := json.Unmarshal(fa.Data, &c); err != nil {
			return nil, nil, fmt.Errorf("webauthn: decode credential %s: %w", fa.ID, err)
		}
		// The factor's Counter is authoritative: AdvanceCounter keeps it.
		c.Authenticator.SignCount = counter32(fa.Counter)
		u.creds = append(u.creds, c)
		byID[string(c.ID)] = fa
	}
	if len(u.creds) > 0 && u.id == nil {
		return nil, nil, errors.New("webauthn: user has credentials but no user handle")
	}
	return u, byID, nil
}

// decoyUser is a user with an invented handle and credential, so that a
// decoy's options look like a real user's.
func decoyUser() *user {
	return &user{id: challenge.RandomBytes(handleBytes), creds: []gowebauthn.Credential{{
		ID:        challenge.RandomBytes(32),
		Transport: []protocol.AuthenticatorTransport{protocol.Hybrid, protocol.Internal},
	}}}
}

// userHandle returns the user's handle, creating it on first use. Two
// concurrent calls agree: the factor ID is fixed per user, so the second
// insert conflicts and reads the first one's handle.
func (f *Flow) userHandle(ctx context.Context, st store.FactorStore, userID string, now time.Time) ([]byte, error) {
	h := store.Factor{
		ID:        handleFactorID(userID),
		UserID:    userID,
		Flow:      UserHandleFlow,
		Name:      "WebAuthn user handle",
		Data:      challenge.RandomBytes(handleBytes),
		CreatedAt: now,
	}
	err := st.CreateFactor(ctx, h)
	if errors.Is(err, store.ErrConflict) {
		if h, err = st.Factor(ctx, h.ID); err == nil && (h.UserID != userID || len(h.Data) == 0) {
			err = fmt.Errorf("webauthn: user handle factor %s is not the user's", h.ID)
		}
	}
	if err != nil {
		return nil, err
	}
	return h.Data, nil
}

// parseAssertion parses the JSON of PublicKeyCredential.toJSON() of an
// assertion; any problem is [flows.ErrMalformed].
func parseAssertion(raw []byte) (*protocol.ParsedCredentialAssertionData, error) {
	if len(raw) == 0 || len(raw) > MaxResponseSize {
		return nil, fmt.Errorf("webauthn: %w: empty or oversized assertion", flows.ErrMalformed)
	}
	p, err := protocol.ParseCredentialRequestResponseBytes(raw)
	if err != nil {
		return nil, fmt.Errorf("webauthn: %w: %w", flows.ErrMalformed, err)
	}
	return p, nil
}

// checkAssertion verifies an assertion for userID against session sd,
// reading the user's credentials from st, without writing anything. It
// returns the credential as updated by go-webauthn (counter, flags) and its
// factor, an error wrapping errRejected when the assertion must be
// refused, or another error for a fault.
func (f *Flow) checkAssertion(ctx context.Context, st store.FactorStore, userID string, sd gowebauthn.SessionData, p *protocol.ParsedCredentialAssertionData) (*gowebauthn.Credential, store.Factor, error) {
	u, facs, err := f.loadUser(ctx, st, userID)
	if err != nil {
		return nil, store.Factor{}, err
	}
	if len(u.creds) == 0 {
		return nil, store.Factor{}, errNoCreds
	}
	// ValidateLogin checks: the credential is the user's and was allowed,
	// the user handle, the challenge, type, origin, RP ID hash, the UP and
	// (the session requiring it) UV flags, the signature, and the backup
	// flags; it computes the counter and CloneWarning.
	cred, err := f.wa.ValidateLogin(u, sd, p)
	if err != nil {
		return nil, store.Factor{}, refusal(err)
	}
	fac, ok := facs[string(cred.ID)]
	if !ok {
		return nil, store.Factor{}, fmt.Errorf("%w: unknown credential", errRejected)
	}
	ad := p.Response.AuthenticatorData
	if !ad.Flags.UserPresent() || !ad.Flags.UserVerified() {
		return nil, store.Factor{}, errNotVerified
	}
	stored := counter32(fac.Counter)
	if cred.Authenticator.CloneWarning || ((ad.Counter != 0 || stored != 0) && ad.Counter <= stored) {
		return nil, store.Factor{}, errSignCount
	}
	return cred, fac, nil
}

// refusal wraps a go-webauthn verification error in errRejected, with
// its developer detail (which check failed; never secret) in the message.
func refusal(err error) error {
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.DevInfo != "" {
		return fmt.Errorf("%w: %w (%s)", errRejected, err, pe.DevInfo)
	}
	return fmt.Errorf("%w: %w", errRejected, err)
}

// advanceCounter raises the stored signature counter to the credential's,
// atomically, so that of two assertions with one count only one passes.
// A counter of 0 (an authenticator without one) is not stored.
func advanceCounter(ctx context.Context, st store.FactorStore, fac store.Factor, cred *gowebauthn.Credential, now time.Time) error {
	n := cred.Authenticator.SignCount
	if n == 0 {
		return nil
	}
	err := st.AdvanceCounter(ctx, fac.ID, int64(n), now)
	if errors.Is(err, store.ErrUsed) {
		return errSignCount
	}
	return err
}

// writeBack stores the credential's counter and flags and the time of use.
func writeBack(ctx context.Context, st store.FactorStore, fac store.Factor, cred *gowebauthn.Credential, now time.Time) error {
	data, err := json.Marshal(cred)
	if err != nil {
		return err
	}
	fac.Data, fac.Counter, fac.LastUsedAt = data, int64(cred.Authenticator.SignCount), now
	return st.UpdateFactor(ctx, fac)
}

func counter32(n int64) uint32 {
	return uint32(min(max(n, 0), math.MaxUint32))
}

// Session kinds.
const (
	kindRegistration = "registration"
	kindLogin        = "login"
)

// session is the opaque session of a ceremony outside journeys.
type session struct {
	Kind    string                 `json:"k"`
	UserID  string                 `json:"u"`
	Expires time.Time              `json:"e"`
	Data    gowebauthn.SessionData `json:"s"`
}

func (f *Flow) newSession(kind, userID string, sd *gowebauthn.SessionData) ([]byte, error) {
	return json.Marshal(session{Kind: kind, UserID: userID, Expires: f.cfg.Now().Add(f.cfg.Timeout), Data: *sd})
}

// openSession decodes a session and checks that it belongs to the
// ceremony and user and has not expired at now.
func openSession(raw []byte, kind, userID string, now time.Time) (gowebauthn.SessionData, error) {
	var s session
	if err := json.Unmarshal(raw, &s); err != nil || s.Kind != kind || s.UserID != userID || userID == "" {
		return gowebauthn.SessionData{}, fmt.Errorf("webauthn: %w: the session is not this user's %s", flows.ErrNoChallenge, kind)
	}
	if !now.Before(s.Expires) {
		return gowebauthn.SessionData{}, fmt.Errorf("webauthn: %s session: %w", kind, flows.ErrExpired)
	}
	return s.Data, nil
}

// BeginRegistration starts enrolling a passkey for userID, outside
// journeys (the host's enrolment page, after a fresh step-up). name is
// the account name the authenticator shows (default: userID) and
// displayName the person's name (default: name).
//
// It returns the PublicKeyCredentialCreationOptionsJSON for the page (pass
// it to PublicKeyCredential.parseCreationOptionsFromJSON; see [Script]) and
// an opaque session for [Flow.FinishRegistration]. The options ask for a
// discoverable credential (resident key preferred), require user
// verification, request no attestation and exclude the user's existing
// credentials. On the user's first enrolment it creates their user handle
// (a [UserHandleFlow] factor) through [Config.Store].
//
// The caller keeps the session where the client cannot read or change it
// (server side, or a signed and encrypted cookie), hands it to
// FinishRegistration once, and deletes it: single use is the caller's
// job. Its lifetime, [Config.Timeout], is enforced by FinishRegistration.
func (f *Flow) BeginRegistration(ctx context.Context, userID, name, displayName string) (options json.RawMessage, session []byte, err error) {
	if userID == "" {
		return nil, nil, errors.New("webauthn: begin registration: empty user ID")
	}
	u, _, err := f.loadUser(ctx, f.cfg.Store, userID)
	if err != nil {
		return nil, nil, fmt.Errorf("webauthn: begin registration: %w", err)
	}
	if u.id == nil {
		if u.id, err = f.userHandle(ctx, f.cfg.Store, userID, f.cfg.Now()); err != nil {
			return nil, nil, fmt.Errorf("webauthn: begin registration: user handle: %w", err)
		}
	}
	u.name = cmp.Or(name, userID)
	u.displayName = cmp.Or(displayName, u.name)
	creation, sd, err := f.wa.BeginRegistration(u,
		gowebauthn.WithExclusions(gowebauthn.Credentials(u.creds).CredentialDescriptors()))
	if err != nil {
		return nil, nil, fmt.Errorf("webauthn: begin registration: %w", err)
	}
	if options, err = json.Marshal(creation.Response); err != nil {
		return nil, nil, fmt.Errorf("webauthn: begin registration: %w", err)
	}
	if session, err = f.newSession(kindRegistration, userID, sd); err != nil {
		return nil, nil, fmt.Errorf("webauthn: begin registration: %w", err)
	}
	return options, session, nil
}

// FinishRegistration verifies the page's response (the JSON of
// PublicKeyCredential.toJSON() after navigator.credentials.create, posted
// in the field "attestation") against session and stores the new
// credential in st as a [store.Factor] (Flow [ID], Name label, Data the
// JSON of the go-webauthn credential, Counter its signature counter),
// which it returns. label is trimmed and defaults to [DefaultLabel]. st is
// [Config.Store] or a transaction on it (the handle BeginRegistration
// created is read there).
//
// It does not consume session: the caller deletes it (see
// [Flow.BeginRegistration]). Errors: [flows.ErrMalformed] for a bad label
// (longer than [MaxLabelLength] characters or with control characters)
// or an unparsable response; [flows.ErrNoChallenge] for a session of
// another ceremony or user; [flows.ErrExpired] once [Config.Timeout] has
// passed since BeginRegistration; [flows.ErrWrongResponse] when the
// response does not verify (challenge, origin, RP ID, user verification,
// algorithm); [store.ErrConflict] when the credential is already
// registered, to this or another user.
func (f *Flow) FinishRegistration(ctx context.Context, st store.FactorStore, userID string, session []byte, response []byte, label string, now time.Time) (store.Factor, error) {
	label, err := cleanLabel(label)
	if err != nil {
		return store.Factor{}, err
	}
	sd, err := openSession(session, kindRegistration, userID, now)
	if err != nil {
		return store.Factor{}, err
	}
	if len(response) == 0 || len(response) > MaxResponseSize {
		return store.Factor{}, fmt.Errorf("webauthn: %w: empty or oversized attestation", flows.ErrMalformed)
	}
	p, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return store.Factor{}, fmt.Errorf("webauthn: %w: %w", flows.ErrMalformed, err)
	}
	u, _, err := f.loadUser(ctx, st, userID)
	if err != nil {
		return store.Factor{}, fmt.Errorf("webauthn: finish registration: %w", err)
	}
	if u.id == nil {
		return store.Factor{}, fmt.Errorf("webauthn: finish registration: %w: the user has no handle", flows.ErrNoChallenge)
	}
	cred, err := f.wa.CreateCredential(u, sd, p)
	if err != nil {
		return store.Factor{}, fmt.Errorf("webauthn: finish registration: %w: %w", flows.ErrWrongResponse, refusal(err))
	}
	if flags := p.Response.AttestationObject.AuthData.Flags; !flags.UserPresent() || !flags.UserVerified() {
		return store.Factor{}, fmt.Errorf("webauthn: finish registration: %w: user not verified", flows.ErrWrongResponse)
	}
	data, err := json.Marshal(cred)
	if err != nil {
		return store.Factor{}, fmt.Errorf("webauthn: finish registration: %w", err)
	}
	fac := store.Factor{
		ID:        credentialFactorID(cred.ID),
		UserID:    userID,
		Flow:      ID,
		Name:      label,
		Data:      data,
		Counter:   int64(cred.Authenticator.SignCount),
		CreatedAt: now,
	}
	if err := st.CreateFactor(ctx, fac); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return store.Factor{}, fmt.Errorf("webauthn: finish registration: credential already registered: %w", err)
		}
		return store.Factor{}, fmt.Errorf("webauthn: finish registration: %w", err)
	}
	return fac, nil
}

// cleanLabel trims a credential label and checks it.
func cleanLabel(label string) (string, error) {
	label = strings.TrimSpace(label)
	if label == "" {
		return DefaultLabel, nil
	}
	if !utf8.ValidString(label) || utf8.RuneCountInString(label) > MaxLabelLength || strings.ContainsFunc(label, unicode.IsControl) {
		return "", fmt.Errorf("webauthn: %w: label must be at most %d characters without control characters", flows.ErrMalformed, MaxLabelLength)
	}
	return label, nil
}

// BeginLogin starts an assertion ceremony for userID outside journeys, for
// example as the second factor of the host's own login. It returns the
// PublicKeyCredentialRequestOptionsJSON for the page (pass it to
// PublicKeyCredential.parseRequestOptionsFromJSON; see [Script]) and an
// opaque session for [Flow.FinishLogin]. The options allow the user's
// credentials and require user verification. It returns
// [ErrNoCredentials] for a user without credentials. The session's rules
// are those of [Flow.BeginRegistration]: the caller keeps it out of the
// client's reach and uses it once.
func (f *Flow) BeginLogin(ctx context.Context, userID string) (options json.RawMessage, session []byte, err error) {
	u, _, err := f.loadUser(ctx, f.cfg.Store, userID)
	if err != nil {
		return nil, nil, fmt.Errorf("webauthn: begin login: %w", err)
	}
	if userID == "" || len(u.creds) == 0 {
		return nil, nil, ErrNoCredentials
	}
	assertion, sd, err := f.wa.BeginLogin(u, gowebauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, nil, fmt.Errorf("webauthn: begin login: %w", err)
	}
	if options, err = json.Marshal(assertion.Response); err != nil {
		return nil, nil, fmt.Errorf("webauthn: begin login: %w", err)
	}
	if session, err = f.newSession(kindLogin, userID, sd); err != nil {
		return nil, nil, fmt.Errorf("webauthn: begin login: %w", err)
	}
	return options, session, nil
}

// FinishLogin verifies the page's assertion (the JSON of
// PublicKeyCredential.toJSON(), posted in the field "assertion") for
// userID against session, with the checks of [Flow.Verify], and writes the
// credential's new signature counter and flags back to st ([Config.Store]
// or a transaction on it). It returns nil
// when the user proved possession of one of their credentials with user
// verification.
//
// It does not consume session (the caller's job) and counts nothing (rate
// limiting is the caller's job too). Errors: [flows.ErrMalformed] for an
// unparsable assertion, [flows.ErrNoChallenge] for a session of another
// ceremony or user, [flows.ErrExpired] once [Config.Timeout] has passed
// since BeginLogin, and [flows.ErrWrongResponse] when the assertion is
// refused (wrong credential, origin or RP ID, no user verification,
// signature counter not increasing).
func (f *Flow) FinishLogin(ctx context.Context, st store.FactorStore, userID string, session []byte, response []byte, now time.Time) error {
	sd, err := openSession(session, kindLogin, userID, now)
	if err != nil {
		return err
	}
	p, err := parseAssertion(response)
	if err != nil {
		return err
	}
	cred, fac, err := f.checkAssertion(ctx, st, userID, sd, p)
	if err == nil {
		err = advanceCounter(ctx, st, fac, cred, now)
	}
	if errors.Is(err, errRejected) {
		return fmt.Errorf("%w: %w", err, flows.ErrWrongResponse)
	}
	if err != nil {
		return fmt.Errorf("webauthn: finish login: %w", err)
	}
	if err := writeBack(ctx, st, fac, cred, now); err != nil {
		return fmt.Errorf("webauthn: finish login: %w", err)
	}
	return nil
}
