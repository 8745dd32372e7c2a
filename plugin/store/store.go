package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors every backend returns, wrapped with %w, so callers can
// test them with [errors.Is].
var (
	// ErrNotFound means no record matches the key.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict means a record with the same key already exists, or a
	// conditional update found the record in another state than required.
	ErrConflict = errors.New("store: conflict")
	// ErrExpired means the record exists but its lifetime is over.
	ErrExpired = errors.New("store: expired")
	// ErrUsed means a single-use record was already consumed.
	ErrUsed = errors.New("store: already used")
	// ErrMismatch means a code did not match; the attempt was counted.
	ErrMismatch = errors.New("store: code mismatch")
	// ErrExhausted means a challenge has no attempts left (or no resends
	// left, for [ChallengeStore.ReissueChallenge]).
	ErrExhausted = errors.New("store: attempts exhausted")
)

// Store is the whole persistence contract of sspr. It is composed of small
// per-aggregate interfaces (see [Tx]) plus a way to run several of their
// operations in one transaction.
//
// Every method outside [Store.Atomic] runs in a transaction of its own.
// Implementations must be safe for concurrent use by multiple goroutines
// and, for backends that serve several instances, by several processes.
type Store interface {
	Tx

	// Atomic runs fn in one transaction: every operation fn performs through
	// tx is committed together when fn returns nil, and rolled back when fn
	// returns an error (which Atomic returns unchanged) or ctx ends. fn must
	// not retain tx after it returns and must not call Atomic on tx.
	Atomic(ctx context.Context, fn func(tx Tx) error) error

	// Close releases the backend's resources.
	Close() error
}

// Tx is the set of operations available inside and outside a transaction.
type Tx interface {
	JourneyStore
	ChallengeStore
	CounterStore
	OutboxStore
	AuditStore
	HistoryStore
	FactorStore
	Sweeper
}

// Journey is one password-reset attempt. It is created when the user submits
// an identifier, is bound to the browser by its ID (held in a cookie), and
// advances through verification to completion.
type Journey struct {
	// ID is a random, unguessable identifier (at least 128 bits).
	ID string
	// Kind is what the journey is for: [KindReset] (forgot password, the
	// default when empty) or [KindStepUp] (a signed-in user proving a fresh
	// second factor before a sensitive change).
	Kind string
	// UserID is the host's user ID. It is empty for a decoy journey started
	// for an identifier that matched no user: such a journey behaves like a
	// real one but can never be completed.
	UserID string
	// Verified lists the flow IDs the user has proved so far, in order.
	Verified []string
	// ReturnTo is the allow-listed URL the done page links back to.
	ReturnTo string
	// Locale is the language tag chosen when the journey started.
	Locale string
	// CreatedAt is when the journey started.
	CreatedAt time.Time
	// ExpiresAt is when the journey stops being usable.
	ExpiresAt time.Time
	// CompletedAt is set once the new password has been stored; a completed
	// journey cannot be used again.
	CompletedAt time.Time
	// Version increases with every update; [JourneyStore.UpdateJourney]
	// uses it for optimistic concurrency.
	Version int64
}

// Journey kinds.
const (
	KindReset  = "reset"
	KindStepUp = "stepup"
)

// JourneyStore keeps journeys.
type JourneyStore interface {
	// CreateJourney inserts j. It returns [ErrConflict] if the ID exists.
	CreateJourney(ctx context.Context, j Journey) error
	// Journey returns the journey with the given ID, or [ErrNotFound].
	// It also returns expired and completed journeys; callers check.
	Journey(ctx context.Context, id string) (Journey, error)
	// UpdateJourney stores j if the stored version equals j.Version and the
	// stored journey is not completed, and increments the stored version.
	// It returns [ErrConflict] otherwise and [ErrNotFound] for a missing ID.
	UpdateJourney(ctx context.Context, j Journey) error
	// CompleteJourney sets CompletedAt to now if the journey is not yet
	// completed and has not expired, atomically (single use). It returns
	// [ErrUsed] if it was already completed, [ErrExpired] if it expired, and
	// [ErrNotFound] for a missing ID.
	CompleteJourney(ctx context.Context, id string, now time.Time) error
}

// Challenge is a secret a flow issued to a journey: an emailed link and
// code, an SMS code, a WebAuthn session. Only hashes of secrets are stored.
type Challenge struct {
	// ID is a random identifier.
	ID string
	// JourneyID is the journey the challenge belongs to.
	JourneyID string
	// Flow is the ID of the flow that issued it.
	Flow string
	// TokenHash is the hash of a link token; empty when the challenge has no
	// link. It is unique across challenges.
	TokenHash []byte
	// CodeHash is the keyed hash of a short code; empty when there is none.
	CodeHash []byte
	// Data is flow-specific opaque data (for example WebAuthn session data).
	Data []byte
	// Attempts counts wrong codes; it survives reissues.
	Attempts int
	// MaxAttempts is the number of wrong codes after which the challenge is
	// dead.
	MaxAttempts int
	// Reissues counts how often the secret was replaced by a new one.
	Reissues int
	// CreatedAt is when the challenge was created.
	CreatedAt time.Time
	// ExpiresAt is when the current secret stops working.
	ExpiresAt time.Time
	// UsedAt is when the challenge was consumed; zero while unused.
	UsedAt time.Time
}

// ChallengeStore keeps challenges and consumes them atomically.
type ChallengeStore interface {
	// CreateChallenge inserts c. It returns [ErrConflict] if the ID or a
	// non-empty TokenHash exists.
	CreateChallenge(ctx context.Context, c Challenge) error
	// Challenge returns the challenge with the given ID, or [ErrNotFound].
	Challenge(ctx context.Context, id string) (Challenge, error)
	// ChallengeByToken returns the challenge whose TokenHash equals
	// tokenHash, or [ErrNotFound]. It does not consume it.
	ChallengeByToken(ctx context.Context, tokenHash []byte) (Challenge, error)
	// LatestChallenge returns the most recently created challenge of the
	// given flow for the journey, or [ErrNotFound].
	LatestChallenge(ctx context.Context, journeyID, flow string) (Challenge, error)
	// ConsumeToken marks the unused, unexpired challenge whose TokenHash
	// equals tokenHash as used, atomically: of two concurrent calls for one
	// token exactly one succeeds. It returns the consumed challenge, or
	// [ErrNotFound], [ErrUsed], [ErrExpired] or [ErrExhausted] (no attempts
	// left, so the link died with its code).
	ConsumeToken(ctx context.Context, tokenHash []byte, now time.Time) (Challenge, error)
	// ConsumeCode marks challenge id as used if codeHash equals its CodeHash,
	// it is unused, unexpired and has attempts left, atomically. On a wrong
	// code it counts the attempt and returns [ErrMismatch] with the updated
	// challenge (so callers can show the attempts left). It returns
	// [ErrNotFound], [ErrUsed], [ErrExpired] or [ErrExhausted] otherwise.
	ConsumeCode(ctx context.Context, id string, codeHash []byte, now time.Time) (Challenge, error)
	// ReissueChallenge replaces the secrets of the unused challenge id with
	// tokenHash and codeHash, sets its expiry and increments Reissues if
	// Reissues < maxReissues. Attempts are never reset. It returns
	// [ErrExhausted] when no reissue is left, [ErrUsed] if it was consumed,
	// [ErrNotFound] for a missing ID, and [ErrConflict] if tokenHash exists.
	ReissueChallenge(ctx context.Context, id string, tokenHash, codeHash []byte, expiresAt time.Time, maxReissues int) (Challenge, error)
}

// CounterStore keeps fixed-window counters from which the caller derives
// sliding-window rate limits. Keys are opaque (callers hash them).
type CounterStore interface {
	// Hit adds one to the counter of key for the window that starts at
	// windowStart, creating it if needed, and returns the counts of that
	// window and of the window just before it (windowStart - window).
	// The counter expires at windowStart + 2*window.
	Hit(ctx context.Context, key string, windowStart time.Time, window time.Duration) (current, previous int64, err error)
	// Count returns the same two counts as Hit without changing them.
	Count(ctx context.Context, key string, windowStart time.Time, window time.Duration) (current, previous int64, err error)
}

// Message is one queued outbound message. The payload is sealed by the
// caller (it may contain a link token or a code) and cleared once sent.
type Message struct {
	// ID is assigned by the store on [OutboxStore.Enqueue].
	ID int64
	// Channel names the transport, for example "email".
	Channel string
	// Payload is the sealed, rendered message.
	Payload []byte
	// Attempts counts delivery attempts so far.
	Attempts int
	// CreatedAt is when the message was queued.
	CreatedAt time.Time
	// NextAttemptAt is the earliest time of the next delivery attempt.
	NextAttemptAt time.Time
	// SentAt is when the message was delivered; zero until then.
	SentAt time.Time
	// LastError is the redacted error of the last failed attempt.
	LastError string
	// Dead is true when delivery was given up.
	Dead bool
}

// OutboxStore is the durable queue of outbound messages.
type OutboxStore interface {
	// Enqueue stores m (ID, Attempts, SentAt and Dead are ignored) and
	// returns its ID.
	Enqueue(ctx context.Context, m Message) (int64, error)
	// Claim returns up to limit messages that are not sent, not dead, due
	// (NextAttemptAt <= now) and not claimed by someone else, oldest first,
	// and leases them until now+lease: while the lease runs no other Claim
	// returns them. Each returned message's Attempts is already incremented.
	// Concurrent claims never return the same message.
	Claim(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Message, error)
	// MarkSent records delivery of message id and clears its payload.
	MarkSent(ctx context.Context, id int64, now time.Time) error
	// MarkFailed records a failed attempt: the message becomes due again at
	// next, or dead (payload cleared) when dead is true.
	MarkFailed(ctx context.Context, id int64, next time.Time, lastError string, dead bool) error
	// OutboxMessage returns message id, or [ErrNotFound].
	OutboxMessage(ctx context.Context, id int64) (Message, error)
}

// AuditEvent records one thing that happened in a journey.
type AuditEvent struct {
	// ID is assigned by the store.
	ID int64
	// Time is when it happened.
	Time time.Time
	// Event names what happened, for example "journey.started".
	Event string
	// JourneyID is the journey, if any.
	JourneyID string
	// UserID is the user, if known.
	UserID string
	// IP is the client address.
	IP string
	// UserAgent is the client's User-Agent header, truncated.
	UserAgent string
	// Outcome is "ok", "failed", "limited" or "decoy".
	Outcome string
	// Detail is a short, secret-free explanation.
	Detail string
}

// AuditFilter selects audit events. Zero fields match everything.
type AuditFilter struct {
	// UserID selects one user's events.
	UserID string
	// JourneyID selects one journey's events.
	JourneyID string
	// Event selects one kind of event.
	Event string
	// Since and Until bound the time (inclusive, exclusive).
	Since, Until time.Time
	// Limit caps the number of events (newest first); 0 means 100.
	Limit int
}

// AuditStore keeps the audit trail.
type AuditStore interface {
	// AppendAudit stores e and returns its ID.
	AppendAudit(ctx context.Context, e AuditEvent) (int64, error)
	// Audit lists events matching f, newest first.
	Audit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
}

// History holds keyed hashes of a user's recent passwords. All keys share
// one salt and one parameter string, so checking a candidate against every
// entry costs a single hash computation.
type History struct {
	// UserID is the host's user ID.
	UserID string
	// Salt is the user's history salt.
	Salt []byte
	// Params describes how Keys were derived (for example argon2id
	// parameters); entries with other params cannot be compared.
	Params string
	// Keys are the derived keys, newest first.
	Keys [][]byte
	// Version is used for optimistic concurrency by [HistoryStore.SaveHistory].
	Version int64
}

// HistoryStore keeps password histories.
type HistoryStore interface {
	// PasswordHistory returns the user's history, or [ErrNotFound].
	PasswordHistory(ctx context.Context, userID string) (History, error)
	// SaveHistory stores h if the stored version equals h.Version (0 for a
	// new history) and increments it; it returns [ErrConflict] otherwise.
	SaveHistory(ctx context.Context, h History) error
}

// Factor is an authenticator bound to a user's account and kept by a flow:
// a TOTP secret, a WebAuthn credential, one recovery code.
type Factor struct {
	// ID is a random identifier.
	ID string
	// UserID is the host's user ID.
	UserID string
	// Flow is the ID of the flow that owns the factor ("totp", …).
	Flow string
	// Name is a label the user chose or the flow gave ("Authenticator app").
	Name string
	// Secret is flow-specific secret material, already sealed or hashed by
	// the flow (never stored in clear). For recovery codes it is the keyed
	// hash of the code, unique per user and flow.
	Secret []byte
	// Data is flow-specific public data (for example a WebAuthn credential).
	Data []byte
	// Counter is a flow-specific monotonic counter: the last accepted TOTP
	// time step, or a WebAuthn signature count.
	Counter int64
	// CreatedAt is when the factor was enrolled.
	CreatedAt time.Time
	// LastUsedAt is when it last verified someone; zero if never.
	LastUsedAt time.Time
}

// FactorStore keeps the factors users have enrolled.
type FactorStore interface {
	// CreateFactor inserts f. It returns [ErrConflict] if the ID exists, or
	// if a non-empty Secret exists for the same user and flow.
	CreateFactor(ctx context.Context, f Factor) error
	// Factor returns the factor with the given ID, or [ErrNotFound].
	Factor(ctx context.Context, id string) (Factor, error)
	// Factors lists the user's factors of one flow (all flows when flow is
	// empty), oldest first.
	Factors(ctx context.Context, userID, flow string) ([]Factor, error)
	// UpdateFactor stores f's Name, Data, Counter and LastUsedAt. It returns
	// [ErrNotFound] for a missing ID.
	UpdateFactor(ctx context.Context, f Factor) error
	// AdvanceCounter sets the factor's Counter to value and LastUsedAt to
	// now if the stored Counter is less than value, atomically: of two
	// concurrent calls with the same value exactly one succeeds. It returns
	// [ErrUsed] when the stored Counter is already value or more (a replayed
	// TOTP step, a regressed signature count) and [ErrNotFound] for a
	// missing ID.
	AdvanceCounter(ctx context.Context, id string, value int64, now time.Time) error
	// ConsumeFactor deletes the user's factor of the flow whose Secret
	// equals secret and returns it, atomically (single use: of two
	// concurrent calls one succeeds). It returns [ErrNotFound] when none
	// matches.
	ConsumeFactor(ctx context.Context, userID, flow string, secret []byte) (Factor, error)
	// DeleteFactor deletes factor id of the user. It returns [ErrNotFound]
	// if the user has no such factor.
	DeleteFactor(ctx context.Context, userID, id string) error
	// DeleteFactors deletes every factor of the user's flow and returns how
	// many it deleted (used to regenerate recovery codes).
	DeleteFactors(ctx context.Context, userID, flow string) (int64, error)
}

// Sweeper removes expired data.
type Sweeper interface {
	// Sweep deletes journeys and challenges that expired before cutoff,
	// counters whose windows ended before cutoff, sent or dead outbox
	// messages older than cutoff and audit events older than auditCutoff
	// (a zero auditCutoff keeps them all). It returns how many rows it
	// deleted.
	Sweep(ctx context.Context, cutoff, auditCutoff time.Time) (int64, error)
}
