package plugin

import (
	"context"
	"errors"
)

// ErrUserNotFound is returned by a [Directory] when no user matches.
var ErrUserNotFound = errors.New("sspr: user not found")

// ErrPasswordRejected is returned (possibly wrapped) by
// [Directory.SetPassword] when it changed nothing: its own policy refused
// the password, the account is locked. Any other error leaves sspr unsure
// whether the password changed (a connection lost after the write), and
// sspr then acts as if it did: it signs the user out everywhere and sends
// the "your password was changed" notices.
var ErrPasswordRejected = errors.New("sspr: password rejected by the directory")

// User is what sspr needs to know about one of the host's users.
type User struct {
	// ID is the host's stable user ID (the OIDC "sub").
	ID string
	// Username is the user's login name, if any.
	Username string
	// Email is the primary, verified email address, if any.
	Email string
	// DisplayName is the name shown to the user, if any.
	DisplayName string
	// Locale is the preferred language tag, if known.
	Locale string
}

// Directory is the host's user directory. It is required.
//
// Implementations must be safe for concurrent use. They should take the
// same time for a known and an unknown identifier, since sspr cannot hide a
// difference the directory makes: reading and decoding a found row is
// enough to tell them apart (≈ 10 µs in the example provider, which the
// timing bench detected), so read a row for an unknown identifier too, as
// the example provider's directory does.
type Directory interface {
	// FindUser returns the user whose username or email equals identifier
	// (compared the way the host's login compares them), or an error
	// matching [ErrUserNotFound].
	FindUser(ctx context.Context, identifier string) (User, error)
	// User returns the user with the given ID, or [ErrUserNotFound]. For a
	// decoy journey sspr asks for [DecoyUserID] (see there).
	User(ctx context.Context, id string) (User, error)
	// SetPassword replaces the user's password. The host hashes it; sspr
	// never stores it. The password has passed sspr's policy. It returns
	// an error matching [ErrPasswordRejected] when it certainly changed
	// nothing; any other error counts as "may have changed". sspr gives it
	// 10 seconds.
	SetPassword(ctx context.Context, id, password string) error
}

// SessionRevoker is an optional [Directory] capability: after a reset sspr
// calls it to end every session and revoke every refresh token of the user.
type SessionRevoker interface {
	// RevokeSessions ends all of the user's sessions and tokens.
	RevokeSessions(ctx context.Context, userID string) error
}

// Contact is one address sspr may send messages to.
type Contact struct {
	// Channel is "email" or "sms".
	Channel string
	// Address is the email address or E.164 phone number.
	Address string
}

// ContactLister is an optional [Directory] capability: it lists every
// verified contact address of a user. Without it sspr uses [User.Email].
type ContactLister interface {
	// Contacts returns the user's verified contact addresses. When a reset
	// starts for an identifier that matches no user, sspr calls it with
	// [DecoyUserID] (so that an unknown identifier costs the host what a
	// known one does): answer as for any user ID you do not know, with no
	// contacts or an error matching [ErrUserNotFound].
	Contacts(ctx context.Context, userID string) ([]Contact, error)
}

// AdminChecker is an optional [Directory] capability: administrators always
// need two verification methods.
type AdminChecker interface {
	// IsAdmin reports whether the user is an administrator.
	IsAdmin(ctx context.Context, userID string) (bool, error)
}

// AdminLister is an optional [Directory] capability next to
// [AdminChecker]: it lists the administrators, so that when one of them
// resets their password (by themselves or with a ticket) every other
// administrator is told by email. Account recovery is a common way to take
// over an administrator; the others are the ones who notice.
type AdminLister interface {
	// Admins returns every administrator.
	Admins(ctx context.Context) ([]User, error)
}

// ErrWrongPassword is returned (possibly wrapped) by
// [PasswordVerifier.VerifyPassword] for a password that is not the user's.
var ErrWrongPassword = errors.New("sspr: wrong password")

// PasswordVerifier is an optional [Directory] capability: it checks a
// user's current password. With it, a signed-in password change asks for
// the current password as well as a fresh step-up (ASVS V6.2.3); wrong
// answers count against [Limits.FailuresPerAccount].
type PasswordVerifier interface {
	// VerifyPassword returns nil when password is the user's current
	// password, and an error matching [ErrWrongPassword] when it is not.
	VerifyPassword(ctx context.Context, userID, password string) error
}

// DecoyUserID is the user ID sspr gives [Directory.User],
// [ContactLister.Contacts] and [AdminChecker.IsAdmin] (and the flows'
// Options) for an identifier that matches no user, so that an unknown
// identifier's journey costs what a known one's does. sspr throws the
// answers away, errors included, so answer as for any ID you do not know
// (an error, no contacts, not an administrator) and do not mind the ID's
// form: it is plain ASCII, valid in any text column, and should it ever
// name a real user, nothing is done with what is read.
const DecoyUserID = "sspr-decoy-user"
