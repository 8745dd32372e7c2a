package plugin

import (
	"log/slog"
	"net/http"
)

// ErrorKind classifies an [Error].
type ErrorKind int

const (
	// KindInternal is a fault of sspr, the store or the host.
	KindInternal ErrorKind = iota + 1
	// KindBadRequest is malformed or hostile input.
	KindBadRequest
	// KindForbidden is a failed CSRF or origin check.
	KindForbidden
	// KindExpired is a journey or link whose lifetime is over.
	KindExpired
	// KindLimited is a rate limit.
	KindLimited
)

// Error is an error bound for an HTTP response. Public is constant text that
// is safe to show; Err is the cause, which is logged but never shown.
type Error struct {
	// Kind classifies the error.
	Kind ErrorKind
	// Status is the HTTP status code.
	Status int
	// Heading and Public are the page's heading and explanation.
	Heading, Public string
	// Err is the underlying cause; may be nil.
	Err error
	// Link and LinkText, when set, replace the page's "start a new reset"
	// button.
	Link, LinkText string
}

// Error implements error with the public text and the cause.
func (e *Error) Error() string {
	if e.Err == nil {
		return "sspr: " + e.Public
	}
	return "sspr: " + e.Public + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// LogValue logs the kind, status and cause. Causes never carry secrets:
// sspr wraps only store and host errors, and [Secret] values redact
// themselves.
func (e *Error) LogValue() slog.Value {
	attrs := []slog.Attr{slog.Int("kind", int(e.Kind)), slog.Int("status", e.Status)}
	if e.Err != nil {
		attrs = append(attrs, slog.String("cause", e.Err.Error()))
	}
	return slog.GroupValue(attrs...)
}

// Secret is a string that never appears in logs.
type Secret string

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// String hides the secret from fmt as well.
func (Secret) String() string { return "REDACTED" }

func internalError(err error) *Error {
	return &Error{Kind: KindInternal, Status: http.StatusInternalServerError,
		Heading: "Something went wrong",
		Public:  "We couldn't finish this step, and nothing was changed. Please try again in a few minutes.",
		Err:     err}
}

var (
	errJourneyMissing = &Error{Kind: KindExpired, Status: http.StatusOK,
		Heading: "Your reset session has ended",
		Public:  "Password resets expire after a few minutes, and they only work in the browser where they were started. Start a new one to continue."}
	errForbidden = &Error{Kind: KindForbidden, Status: http.StatusForbidden,
		Heading: "This form has expired",
		Public:  "We couldn't verify that this request came from this page. Make sure cookies are allowed for this site, then start again."}
	errLinkInvalid = &Error{Kind: KindBadRequest, Status: http.StatusOK,
		Heading: "This link doesn't work",
		Public:  "The link is incomplete or not valid. Copy the whole link from the email, or enter the code from the email instead."}
	errLinkExpired = &Error{Kind: KindExpired, Status: http.StatusOK,
		Heading: "This link has expired",
		Public:  "Reset links work for a limited time. Start a new reset to get a new link."}
	errLinkUsed = &Error{Kind: KindExpired, Status: http.StatusOK,
		Heading: "This link was already used",
		Public:  "Each reset link works only once. If you didn't finish, start a new reset."}
	errNotFound = &Error{Kind: KindBadRequest, Status: http.StatusNotFound,
		Heading: "Page not found",
		Public:  "This page doesn't exist."}
	errMethod = &Error{Kind: KindBadRequest, Status: http.StatusMethodNotAllowed,
		Heading: "Not allowed",
		Public:  "This page can't be used that way."}
	errBadForm = &Error{Kind: KindBadRequest, Status: http.StatusBadRequest,
		Heading: "We couldn't read that form",
		Public:  "The form was too large or malformed. Go back and try again."}
)
