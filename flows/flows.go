// Package flows holds the contract every verification method implements and
// the types the methods share. Each method lives in a sub-package
// (flows/email, …) that imports this one; the engine in package plugin
// imports only this package, and the host hands the methods it wants to
// plugin.New.
//
// A flow proves one thing about the person in a journey: that they read a
// message sent to a contact address ([KindChannel]), hold an authenticator
// bound to the account ([KindBound]) or know an answer ([KindKnowledge]).
// The engine asks each flow which [Option]s a user has, lets it [Flow.Begin]
// (send a code, issue a challenge) and [Flow.Verify] the response, and
// decides with its policy when the journey has proved enough. A flow
// whose check is expensive (a password hash) implements [Preparer], so
// that the engine does that work before it opens its write transaction.
package flows

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/sspr-go/sspr/plugin/store"
)

// Kind classifies a flow for the policy.
type Kind int

const (
	// KindChannel is a contact channel (email, SMS): it proves control of an
	// address, not possession of an authenticator.
	KindChannel Kind = iota + 1
	// KindBound is an authenticator bound to the account (TOTP, WebAuthn,
	// recovery codes).
	KindBound
	// KindKnowledge is something the user knows (security questions); it
	// never counts alone.
	KindKnowledge
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case KindChannel:
		return "channel"
	case KindBound:
		return "bound"
	case KindKnowledge:
		return "knowledge"
	}
	return "unknown"
}

// Errors a flow returns from [Flow.Verify], possibly wrapped in a
// [*VerifyError]. The engine tests them with [errors.Is].
var (
	// ErrWrongResponse means the response (a code, an assertion) was wrong;
	// the attempt was counted.
	ErrWrongResponse = errors.New("flows: wrong response")
	// ErrExpired means the challenge's lifetime is over.
	ErrExpired = errors.New("flows: challenge expired")
	// ErrExhausted means no attempts (or resends) are left.
	ErrExhausted = errors.New("flows: no attempts left")
	// ErrUsed means the challenge was already consumed.
	ErrUsed = errors.New("flows: challenge already used")
	// ErrNoChallenge means there is no challenge to answer.
	ErrNoChallenge = errors.New("flows: no challenge")
	// ErrMalformed means the response is not even of the right form (for
	// example a code with letters); nothing was counted.
	ErrMalformed = errors.New("flows: malformed response")
	// ErrNoFactor means the user has no such factor.
	ErrNoFactor = errors.New("flows: no such factor")
)

// VerifyError carries the number of attempts left with a verification error.
type VerifyError struct {
	// Err is one of the sentinel errors of this package.
	Err error
	// AttemptsLeft is how many more wrong responses the challenge accepts.
	AttemptsLeft int
}

// Error implements error.
func (e *VerifyError) Error() string { return e.Err.Error() }

// Unwrap returns the sentinel error.
func (e *VerifyError) Unwrap() error { return e.Err }

// Subject is the person a journey tries to verify, as the host's directory
// describes them.
type Subject struct {
	// UserID is the host's user ID; empty for a decoy journey (an identifier
	// that matched nobody), which flows must treat like a real one without
	// sending anything.
	UserID string
	// Emails are the user's verified email addresses, primary first.
	Emails []string
	// Phones are the user's verified phone numbers in E.164.
	Phones []string
	// Locale is the user's preferred language tag, if known.
	Locale string
}

// Option is one way a subject can use a flow: an address, an authenticator.
type Option struct {
	// Flow is the flow's ID.
	Flow string
	// Ref identifies the option within the flow (for example the index of
	// an address); the engine hands it back to Begin.
	Ref string
	// Hint is a masked description safe to show, such as "a•••@example.com".
	Hint string
}

// Message is an outbound message a flow asks the engine to queue.
type Message struct {
	// Template names the message template, for example "reset".
	Template string
	// Channel is the transport, for example "email".
	Channel string
	// To is the recipient address; empty for a decoy, in which case the
	// engine does the same work and delivers nothing.
	To string
	// Locale is the language to render in.
	Locale string
	// Data is handed to the template.
	Data any
}

// Env is what the engine lends a flow for one request.
type Env interface {
	// Queue renders m and writes it to the outbox in tx, so that it is sent
	// if and only if tx commits.
	Queue(ctx context.Context, tx store.Tx, m Message) error
	// MAC returns a keyed hash (HMAC-SHA-256 under the plugin's current key)
	// of the parts, separated unambiguously, for the given purpose.
	MAC(purpose string, parts ...[]byte) []byte
	// MACs returns the keyed hashes of the parts for the purpose under
	// every configured key, current key first (so MACs(…)[0] equals
	// MAC(…)), for checking a stored hash that an older key may have made:
	// a flow that stores MACs tries them all, so that rotating the keys
	// loses no data.
	MACs(purpose string, parts ...[]byte) [][]byte
	// URL returns the absolute URL of a path under the plugin's base URL,
	// built from configuration, never from the request.
	URL(path string, query url.Values) string
	// Now returns the current time of the injected clock.
	Now() time.Time
}

// BeginRequest asks a flow to start a verification.
type BeginRequest struct {
	// Tx is the transaction of the journey step that causes the begin.
	Tx store.Tx
	// Env is the engine's environment.
	Env Env
	// JourneyID is the journey.
	JourneyID string
	// Subject is the person; see [Subject.UserID] for decoys.
	Subject Subject
	// Option is the chosen option; its Ref is empty for a decoy.
	Option Option
	// Locale is the language of the journey.
	Locale string
	// Resend is true when the user asked for a new code: the flow replaces
	// the secret without resetting any counter.
	Resend bool
	// StepUp is true when the journey confirms a signed-in user before a
	// sensitive change (a step-up) rather than a password reset: the
	// message must say so (template "stepup" instead of "reset"/"code").
	StepUp bool
}

// VerifyRequest carries a response to verify.
type VerifyRequest struct {
	// Tx is the transaction in which the verification is recorded; a wrong
	// response is counted in it and the engine commits it.
	Tx store.Tx
	// Env is the engine's environment.
	Env Env
	// JourneyID is the journey.
	JourneyID string
	// Subject is the person.
	Subject Subject
	// Form holds the submitted form values (for example "code").
	Form url.Values
	// HTTP is the request, for flows that parse their own body (WebAuthn).
	HTTP *http.Request
	// Prepared is what the flow's [Preparer.Prepare] returned for this
	// response, or nil when the engine did not prepare it (then the flow
	// does the whole check in Verify).
	Prepared any
}

// StoreReader is the read-only view of the store a [Preparer] gets. Each
// call runs in a short transaction of its own, never in the engine's
// write transaction, so what it returns may change before
// [Flow.Verify] runs.
type StoreReader interface {
	// LatestChallenge is [store.ChallengeStore.LatestChallenge].
	LatestChallenge(ctx context.Context, journeyID, flow string) (store.Challenge, error)
	// Factors is [store.FactorStore.Factors].
	Factors(ctx context.Context, userID, flow string) ([]store.Factor, error)
}

// PrepareRequest carries a response to prepare for verification; its
// fields mean what those of [VerifyRequest] do.
type PrepareRequest struct {
	// Store reads the store outside any write transaction.
	Store StoreReader
	// Env is the engine's environment.
	Env Env
	// JourneyID is the journey.
	JourneyID string
	// Subject is the person.
	Subject Subject
	// Form holds the submitted form values.
	Form url.Values
	// HTTP is the request.
	HTTP *http.Request
}

// Preparer is implemented by flows whose check of a response needs
// expensive work, such as an argon2id hash of a recovery code or of
// security answers. The engine verifies inside one write transaction of
// the store, and on SQLite every other write of the service waits for it;
// so before opening it the engine calls Prepare, which does the expensive
// work against what [PrepareRequest.Store] reads, and hands the result to
// [Flow.Verify] in [VerifyRequest.Prepared].
//
// Prepare changes nothing: it never counts an attempt and never uses a
// code. Verify re-reads in its transaction what decides the outcome (at
// least the challenge) and trusts a prepared result only for the exact
// stored data it was computed against (a set's salt, bound into the
// stored keyed hash, or the answers' hashes); when it changed in between (the
// challenge was used, the set of answers or codes was replaced), the
// response is wrong and counted as such. A decoy or a user without the
// factor does the same expensive work in Prepare as a real one. The
// engine does not prepare a response that a rate limit will refuse.
// Prepare returns an error only for a fault (the store failed, ctx
// ended); a malformed response or a dead challenge is left to Verify.
type Preparer interface {
	// Prepare does the expensive part of checking r and returns an opaque
	// value for [VerifyRequest.Prepared].
	Prepare(ctx context.Context, r PrepareRequest) (any, error)
}

// KeyDeriver computes argon2id keys (RFC 9106) while bounding how many
// are computed at once, so that many parallel attempts cannot exhaust
// memory. *password.Hasher (package plugin/password) implements it; give
// the plugin's Config.Hasher to the flows that take one, so that one
// bound covers every hash of the service.
type KeyDeriver interface {
	// DeriveKey returns the argon2id key of secret with salt and params,
	// a string such as "argon2id$v=19$m=19456,t=2,p=1$32" (costs and key
	// length in bytes). It waits for a hashing slot and returns ctx.Err()
	// if ctx ends first, and an error when params are out of its bounds.
	DeriveKey(ctx context.Context, secret string, salt []byte, params string) ([]byte, error)
}

// Flow is one verification method.
type Flow interface {
	// ID is the flow's stable, URL-safe name, for example "email".
	ID() string
	// Kind classifies the flow for the policy.
	Kind() Kind
	// Options lists the ways s can use this flow; none means it cannot.
	Options(ctx context.Context, s Subject) ([]Option, error)
	// Begin starts a verification: it stores a challenge and queues a
	// message through r.Env, in r.Tx.
	Begin(ctx context.Context, r BeginRequest) error
	// Verify checks a response for the journey's current challenge, in
	// r.Tx. It returns nil when verified, or an error matching one of this
	// package's sentinels (possibly a [*VerifyError]). A flow that
	// implements [Preparer] uses r.Prepared when it is there, and does the
	// whole check itself when it is nil.
	Verify(ctx context.Context, r VerifyRequest) error
}

// LinkRedeemer is implemented by flows whose messages carry a link token.
type LinkRedeemer interface {
	// PeekLink returns the journey a link token belongs to without using it.
	// It returns an error matching [ErrNoChallenge], [ErrExpired], [ErrUsed]
	// or [ErrExhausted] when the link cannot be redeemed.
	PeekLink(ctx context.Context, st store.Tx, env Env, token string) (journeyID string, err error)
	// RedeemLink consumes the token atomically (of two concurrent calls one
	// succeeds) and returns its journey.
	RedeemLink(ctx context.Context, st store.Tx, env Env, token string) (journeyID string, err error)
}

// Prompt tells the engine how to ask for a flow's response. Its texts are
// message keys of the plugin's catalogs (templates/messages); a text that
// is no key is shown as it is.
type Prompt struct {
	// Page is the page template to render: "code" (a single code field,
	// the default) or a flow-specific page such as "webauthn".
	Page string
	// Heading and Intro are the page's heading and first paragraph.
	Heading, Intro string
	// Label is the label of the code field.
	Label string
	// InputMode is the field's inputmode ("numeric" or "text").
	InputMode string
	// Autocomplete is the field's autocomplete token ("one-time-code" or
	// "off").
	Autocomplete string
	// MaxLength bounds the field's length.
	MaxLength int
	// Choice is the short name shown when the user picks among methods
	// ("Authenticator app", "Recovery code").
	Choice string
	// Section and Add head the flow's part of the security-info page and
	// label its add button ("Authenticator apps", "Add an authenticator
	// app"), for flows that implement [Enroller].
	Section, Add string
}

// Prompter is implemented by flows that tell the engine how to ask for
// their response. Flows without it get a generic code page.
type Prompter interface {
	// Prompt describes the verification page.
	Prompt() Prompt
}

// Addresser is implemented by channel flows that know addresses of their
// own, such as the phone numbers users enrolled with flows/sms, so that the
// engine sends its notices ("your password was changed", "a security method
// was added") to every contact address. The engine sends them on the
// flow's channel, named by its ID.
type Addresser interface {
	// Addresses returns every address of s on this flow's channel, in
	// clear, the host's (in s) and the flow's own, without duplicates.
	Addresses(ctx context.Context, s Subject) ([]string, error)
}

// PageDataer is implemented by flows whose verification page shows data
// of the journey's challenge, such as the security questions asked. The
// engine hands the result to the page template as .Page.Data. It must not
// carry secrets: it is rendered into the page.
type PageDataer interface {
	// PageData returns the page's data for the journey's challenge, or
	// an error matching [ErrNoChallenge] when there is none.
	PageData(ctx context.Context, st store.Tx, journeyID string) (any, error)
}

// AuthMethoder is implemented by bound flows to name the RFC 8176 "amr"
// value that a verification with them proves ("otp" for an app code or a
// recovery code, "hwk" for a passkey). sspr adds it (and "mfa") to the
// host's session after an in-process step-up.
type AuthMethoder interface {
	// AuthMethod returns the "amr" value.
	AuthMethod() string
}

// Enrolled is one of a user's factors as the security-info page lists it.
// It never carries secret material.
type Enrolled struct {
	// ID identifies the factor for [Enroller.Remove].
	ID string
	// Name is the factor's label: the user's words, or a message key of
	// the plugin's catalogs (which may use {n} for Count).
	Name string
	// Count is how many single-use codes the entry stands for (0 when not
	// applicable).
	Count int
	// CreatedAt is when it was added; LastUsedAt when it last verified
	// someone (zero if never).
	CreatedAt, LastUsedAt time.Time
}

// EnrolRequest is one step of adding a factor on the security-info page.
// The engine has checked that the user is signed in and stepped up.
type EnrolRequest struct {
	// Env is the engine's environment.
	Env Env
	// UserID is the signed-in user; Account names them in an authenticator
	// (username or email) and DisplayName is their name.
	UserID, Account, DisplayName string
	// State is what the flow's previous [EnrolPage] carried (nil at the
	// start). The engine kept it sealed and bound to the user, so the flow
	// can trust that it wrote it; it may be replayed, so anything single
	// use is enforced by the flow.
	State []byte
	// Form holds the submitted form values.
	Form url.Values
	// Locale is the language of the page, for messages the flow queues
	// (a code to a phone number being added).
	Locale string
}

// EnrolPage is what an enrolment step asks the engine to show.
type EnrolPage struct {
	// Page is the page template, for example "enrol-totp".
	Page string
	// Data is handed to the template as .Page.Data.
	Data any
	// State is carried to the next step (sealed by the engine).
	State []byte
	// Error is shown next to the form: a message key of the plugin's
	// catalogs (or literal text).
	Error string
	// Added reports that a factor was added: the engine notifies the user
	// and writes the audit trail.
	Added bool
}

// Enroller is implemented by bound flows whose factors a signed-in user
// manages on the security-info page. The engine does the sign-in check,
// the step-up, CSRF, notifications and the audit trail; the flow lists,
// adds and removes its factors.
type Enroller interface {
	// Enrolled lists the user's factors of this flow.
	Enrolled(ctx context.Context, userID string) ([]Enrolled, error)
	// StartEnrol returns the first page of adding a factor. It stores
	// nothing.
	StartEnrol(ctx context.Context, r EnrolRequest) (EnrolPage, error)
	// FinishEnrol handles the page's form: it adds the factor (Added) or
	// returns the page again with an Error.
	FinishEnrol(ctx context.Context, r EnrolRequest) (EnrolPage, error)
	// Remove deletes one of the user's factors of this flow; a factor of
	// another user or flow is [ErrNoFactor].
	Remove(ctx context.Context, userID, factorID string) error
}
