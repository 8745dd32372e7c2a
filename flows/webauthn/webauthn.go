package webauthn

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	gowebauthn "github.com/go-webauthn/webauthn/webauthn"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/internal/challenge"
	"github.com/sspr-go/sspr/plugin/store"
)

// ID is the flow's ID, and the Flow of the [store.Factor]s that hold
// credentials.
const ID = "webauthn"

// UserHandleFlow is the Flow of the one [store.Factor] per user that holds
// the user's WebAuthn user handle (its Data). It is not an authenticator:
// it only exists so that every credential of the user carries the same
// handle.
const UserHandleFlow = "webauthn-user"

// Defaults of [Config] and fixed parameters.
const (
	// DefaultRPDisplayName is the default of [Config.RPDisplayName].
	DefaultRPDisplayName = "sspr"
	// DefaultTimeout is the default of [Config.Timeout].
	DefaultTimeout = 5 * time.Minute
	// DefaultLabel is the label of a credential enrolled without one.
	DefaultLabel = "webauthn.default_name"
	// MaxAttempts is the number of failed assertions after which a
	// journey's challenge is dead.
	MaxAttempts = 5
	// MaxLabelLength is the longest label, in characters.
	MaxLabelLength = 64
	// MaxResponseSize is the largest assertion or attestation JSON the flow
	// reads, in bytes; a real one is a few kilobytes at most.
	MaxResponseSize = 32 << 10
)

// handleBytes is the size of a user handle: 256 bits from crypto/rand
// (WebAuthn §14.6.1 asks for a random value of at most 64 bytes).
const handleBytes = 32

// Config configures the WebAuthn flow.
type Config struct {
	// Store keeps the users' credentials and handles. Required. Journeys
	// use the transaction the engine hands to Begin and Verify instead;
	// Store serves [Flow.Options] and [Flow.BeginRegistration] and
	// [Flow.BeginLogin], which get no transaction.
	Store store.FactorStore
	// RPID is the relying party ID: the registrable domain (or a host
	// under it) that credentials are scoped to, for example "example.com".
	// Required; an IP address is refused. Credentials only work for
	// origins on this domain, so it cannot change without re-enrolment.
	RPID string
	// RPDisplayName is the relying party's name shown by some
	// authenticators at registration. Default: "sspr".
	RPDisplayName string
	// RPOrigins are the origins pages run the ceremonies on, for example
	// "https://id.example.com": an https URL with no path (http only for
	// localhost; a trailing "/" is dropped) whose host is RPID or a host
	// under it. Required.
	RPOrigins []string
	// Timeout is how long a ceremony may take: the browser's timeout and
	// the lifetime of a challenge or session on the server. Default: 5
	// minutes; between 30 seconds and 10 minutes.
	Timeout time.Duration
	// Now is the clock [Flow.BeginRegistration] and [Flow.BeginLogin]
	// stamp sessions with (journeys use the engine's clock). Default:
	// time.Now.
	Now func() time.Time
}

// Flow is the WebAuthn (passkey) verification flow. It is safe for
// concurrent use.
type Flow struct {
	cfg Config
	wa  *gowebauthn.WebAuthn
}

var (
	_ flows.Flow     = (*Flow)(nil)
	_ flows.Prompter = (*Flow)(nil)
)

// ErrNoCredentials is returned by [Flow.BeginLogin] for a user without
// WebAuthn credentials.
var ErrNoCredentials = errors.New("webauthn: no credentials enrolled")

// New validates cfg and returns the flow. It reports every problem, each
// naming its field, for example
// "webauthn: config: field 'RPID': required". It does not modify cfg.
func New(cfg Config) (*Flow, error) {
	var errs []error
	field := func(name string, err error) {
		errs = append(errs, fmt.Errorf("webauthn: config: field '%s': %w", name, err))
	}
	if cfg.Store == nil {
		field("Store", errors.New("required"))
	}
	rpIDOK := false
	switch {
	case cfg.RPID == "":
		field("RPID", errors.New("required"))
	case cfg.RPID != strings.ToLower(cfg.RPID):
		field("RPID", errors.New("must be lowercase"))
	default:
		// go-webauthn's own check, reported under our field name.
		if err := protocol.ValidateRPID(cfg.RPID); err != nil {
			field("RPID", err)
		} else {
			rpIDOK = true
		}
	}
	if cfg.RPDisplayName == "" {
		cfg.RPDisplayName = DefaultRPDisplayName
	}
	origins := make([]string, 0, len(cfg.RPOrigins))
	for _, o := range cfg.RPOrigins {
		o = strings.TrimSuffix(o, "/")
		if err := checkOrigin(o, cfg.RPID, rpIDOK); err != nil {
			field("RPOrigins", err)
		}
		origins = append(origins, o)
	}
	cfg.RPOrigins = origins
	if len(cfg.RPOrigins) == 0 {
		field("RPOrigins", errors.New("required"))
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	} else if cfg.Timeout < 30*time.Second || cfg.Timeout > 10*time.Minute {
		field("Timeout", errors.New("must be between 30s and 10m"))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	timeout := gowebauthn.TimeoutConfig{Timeout: cfg.Timeout, TimeoutUVD: cfg.Timeout}
	wa, err := gowebauthn.New(&gowebauthn.Config{
		RPID:                  cfg.RPID,
		RPDisplayName:         cfg.RPDisplayName,
		RPOrigins:             cfg.RPOrigins,
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:        protocol.ResidentKeyRequirementPreferred,
			RequireResidentKey: protocol.ResidentKeyNotRequired(),
			UserVerification:   protocol.VerificationRequired,
		},
		// Expiry is enforced by the flow with the injected clock (the
		// challenge's ExpiresAt, or the session's), never by go-webauthn,
		// whose Enforce reads time.Now.
		Timeouts: gowebauthn.TimeoutsConfig{Login: timeout, Registration: timeout},
	})
	if err != nil {
		return nil, fmt.Errorf("webauthn: config: %w", err)
	}
	return &Flow{cfg: cfg, wa: wa}, nil
}

// checkOrigin reports why origin cannot run ceremonies for rpID (whose
// domain is only compared when it is valid).
func checkOrigin(origin, rpID string, rpIDOK bool) error {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || u.ForceQuery {
		return fmt.Errorf("%q is not an origin (scheme://host[:port])", origin)
	}
	host := strings.ToLower(u.Hostname())
	local := host == "localhost" || strings.HasSuffix(host, ".localhost")
	if u.Scheme != "https" && (u.Scheme != "http" || !local) {
		return fmt.Errorf("%q must be https (http only for localhost)", origin)
	}
	if rpIDOK && host != rpID && !strings.HasSuffix(host, "."+rpID) {
		return fmt.Errorf("%q is not on the domain of the RP ID %q", origin, rpID)
	}
	return nil
}

// ID returns "webauthn".
func (f *Flow) ID() string { return ID }

// Kind returns [flows.KindBound]: a passkey is an authenticator bound to
// the account.
func (f *Flow) Kind() flows.Kind { return flows.KindBound }

// Timeout returns how long a ceremony may take.
func (f *Flow) Timeout() time.Duration { return f.cfg.Timeout }

// Prompt describes the verification page: the "webauthn" page, whose
// script runs the ceremony (see [Script]).
func (f *Flow) Prompt() flows.Prompt {
	return flows.Prompt{Page: "webauthn", Heading: "webauthn.heading", Choice: "webauthn.choice", Section: "webauthn.section", Add: "webauthn.add"}
}

// Options offers one option per WebAuthn credential of s, oldest first:
// Ref is the credential's factor ID and Hint its label. A decoy subject and
// a user without credentials get none. It reads through [Config.Store].
func (f *Flow) Options(ctx context.Context, s flows.Subject) ([]flows.Option, error) {
	// A decoy costs the same query as a real user.
	facs, err := f.cfg.Store.Factors(ctx, s.UserID, ID)
	if err != nil {
		return nil, fmt.Errorf("webauthn: options: %w", err)
	}
	if s.UserID == "" {
		return nil, nil
	}
	var out []flows.Option
	for _, fa := range facs {
		out = append(out, flows.Option{Flow: ID, Ref: fa.ID, Hint: fa.Name})
	}
	return out, nil
}

// challengeData is what a journey's challenge keeps in its Data.
type challengeData struct {
	// Session is go-webauthn's session of the ceremony.
	Session gowebauthn.SessionData `json:"s"`
	// Options is the PublicKeyCredentialRequestOptionsJSON sent to the page.
	Options json.RawMessage `json:"o"`
}

// Begin starts an assertion ceremony for the journey: it stores a
// challenge whose Data holds go-webauthn's session and the request options
// ([Flow.AssertionOptions] hands those to the page). The options allow
// every credential of the user, whichever option was chosen, and require
// user verification. The challenge lives [Config.Timeout] and accepts
// [MaxAttempts] failed assertions; beginning again in the same journey
// carries the failures of the previous challenge over, so it never grants
// fresh attempts. For a decoy subject, or a user without credentials, it
// does the same work with an invented credential, and Verify never
// succeeds.
func (f *Flow) Begin(ctx context.Context, r flows.BeginRequest) error {
	now := r.Env.Now()
	u, _, err := f.loadUser(ctx, r.Tx, r.Subject.UserID)
	if err != nil {
		return fmt.Errorf("webauthn: begin: %w", err)
	}
	if r.Subject.UserID == "" || len(u.creds) == 0 {
		u = decoyUser()
	}
	assertion, sd, err := f.wa.BeginLogin(u, gowebauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return fmt.Errorf("webauthn: begin: %w", err)
	}
	opts, err := json.Marshal(assertion.Response)
	if err != nil {
		return fmt.Errorf("webauthn: begin: %w", err)
	}
	data, err := json.Marshal(challengeData{Session: *sd, Options: opts})
	if err != nil {
		return fmt.Errorf("webauthn: begin: %w", err)
	}
	attempts := 0
	switch prev, err := r.Tx.LatestChallenge(ctx, r.JourneyID, ID); {
	case err == nil:
		if prev.UsedAt.IsZero() {
			attempts = min(prev.Attempts, MaxAttempts)
		}
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("webauthn: begin: %w", err)
	}
	c := store.Challenge{
		ID:          challenge.OrderedID(),
		JourneyID:   r.JourneyID,
		Flow:        ID,
		CodeHash:    challenge.RandomBytes(32), // a server-side handle, never sent
		Data:        data,
		Attempts:    attempts,
		MaxAttempts: MaxAttempts,
		CreatedAt:   now,
		ExpiresAt:   now.Add(f.cfg.Timeout),
	}
	if err := r.Tx.CreateChallenge(ctx, c); err != nil {
		return fmt.Errorf("webauthn: begin: %w", err)
	}
	return nil
}

// AssertionOptions returns the PublicKeyCredentialRequestOptionsJSON that
// Begin stored for the journey, for the page's
// <script type="application/json" id="webauthn-options"> element (pass it
// to PublicKeyCredential.parseRequestOptionsFromJSON). It returns them
// whatever the challenge's state, so a page can be shown again after a
// failure; Verify decides. It returns an error matching
// [flows.ErrNoChallenge] when the journey has no WebAuthn challenge.
func (f *Flow) AssertionOptions(ctx context.Context, st store.Tx, journeyID string) (json.RawMessage, error) {
	c, err := st.LatestChallenge(ctx, journeyID, ID)
	if err != nil {
		return nil, challenge.MapStoreError(fmt.Errorf("webauthn: assertion options: %w", err))
	}
	var cd challengeData
	if err := json.Unmarshal(c.Data, &cd); err != nil {
		return nil, fmt.Errorf("webauthn: assertion options: decode challenge: %w", err)
	}
	return cd.Options, nil
}

// Verify checks the assertion the page posted in the form field
// "assertion" (the JSON of PublicKeyCredential.toJSON()) against the
// journey's latest challenge. It succeeds, and consumes the challenge, only
// if the assertion is by one of the subject's credentials, for the
// configured RP ID and origins, with the UP and UV flags, and with a
// signature counter above the stored one (or both 0); it then writes the
// credential's new counter and flags back. Otherwise it counts a failure
// and returns an error matching [flows.ErrWrongResponse] (a
// [*flows.VerifyError] with the attempts left) or [flows.ErrExhausted].
// An empty, oversized or unparsable field is [flows.ErrMalformed] and not
// counted; a used, expired or exhausted challenge gives [flows.ErrUsed],
// [flows.ErrExpired] or [flows.ErrExhausted]. A decoy never verifies.
func (f *Flow) Verify(ctx context.Context, r flows.VerifyRequest) error {
	now := r.Env.Now()
	c, err := r.Tx.LatestChallenge(ctx, r.JourneyID, ID)
	if err != nil {
		return challenge.MapStoreError(fmt.Errorf("webauthn: verify: %w", err))
	}
	switch {
	case !c.UsedAt.IsZero():
		return flows.ErrUsed
	case c.Attempts >= c.MaxAttempts:
		return &flows.VerifyError{Err: flows.ErrExhausted}
	case !now.Before(c.ExpiresAt):
		return flows.ErrExpired
	}
	parsed, err := parseAssertion([]byte(formValue(r, "assertion")))
	if err != nil {
		return err
	}
	var cd challengeData
	if err := json.Unmarshal(c.Data, &cd); err != nil {
		return fmt.Errorf("webauthn: verify: decode challenge: %w", err)
	}
	var (
		cred *gowebauthn.Credential
		fac  store.Factor
	)
	if r.Subject.UserID == "" {
		// A decoy: the same reads as for a user, and never a success.
		if _, _, err = f.loadUser(ctx, r.Tx, ""); err == nil {
			err = errDecoy
		}
	} else if cred, fac, err = f.checkAssertion(ctx, r.Tx, r.Subject.UserID, cd.Session, parsed); err == nil {
		err = advanceCounter(ctx, r.Tx, fac, cred, now)
	}
	if errors.Is(err, errRejected) {
		return countFailure(ctx, r.Tx, c, now, err)
	}
	if err != nil {
		return fmt.Errorf("webauthn: verify: %w", err)
	}
	if _, err := r.Tx.ConsumeCode(ctx, c.ID, c.CodeHash, now); err != nil {
		return challenge.MapStoreError(fmt.Errorf("webauthn: verify: %w", err))
	}
	if err := writeBack(ctx, r.Tx, fac, cred, now); err != nil {
		return fmt.Errorf("webauthn: verify: %w", err)
	}
	return nil
}

// formValue returns the form field name of the request.
func formValue(r flows.VerifyRequest, name string) string {
	if r.Form != nil {
		return r.Form.Get(name)
	}
	if r.HTTP != nil && r.HTTP.PostForm != nil {
		return r.HTTP.PostForm.Get(name)
	}
	return ""
}

// countFailure counts a failed assertion on challenge c (by answering it
// with a random handle that cannot match) and returns the error for the
// engine, wrapping cause.
func countFailure(ctx context.Context, tx store.Tx, c store.Challenge, now time.Time, cause error) error {
	c, err := tx.ConsumeCode(ctx, c.ID, challenge.RandomBytes(32), now)
	switch {
	case errors.Is(err, store.ErrMismatch):
		left := max(c.MaxAttempts-c.Attempts, 0)
		if left == 0 {
			return fmt.Errorf("%w: %w", cause, &flows.VerifyError{Err: flows.ErrExhausted})
		}
		return fmt.Errorf("%w: %w", cause, &flows.VerifyError{Err: flows.ErrWrongResponse, AttemptsLeft: left})
	case err == nil:
		return errors.New("webauthn: verify: random handle matched the challenge")
	}
	return challenge.MapStoreError(fmt.Errorf("webauthn: verify: %w", err))
}

// handleFactorID is the factor ID of the user's handle: one per user, so
// that concurrent enrolments cannot create two ([store.ErrConflict]).
func handleFactorID(userID string) string {
	sum := sha256.Sum256([]byte("sspr webauthn user handle\x00" + userID))
	return UserHandleFlow + "-" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// credentialFactorID is the factor ID of a credential, derived from its
// credential ID so that one credential can be registered only once across
// all users (WebAuthn §7.1 step 26: [store.ErrConflict] otherwise).
func credentialFactorID(credID []byte) string {
	sum := sha256.Sum256(append([]byte("sspr webauthn credential\x00"), credID...))
	return ID + "-" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// AuthMethod returns "hwk" (RFC 8176): proof of possession of a key held
// by an authenticator, with user verification.
func (f *Flow) AuthMethod() string { return "hwk" }
