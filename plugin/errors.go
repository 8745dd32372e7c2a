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
	// Heading and Public are the message keys (see templates/messages) of
	// the page's heading and explanation.
	Heading, Public string
	// Err is the underlying cause; may be nil.
	Err error
	// Link and LinkText (a message key), when set, replace the page's
	// "start a new reset" button.
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
		Heading: "error.internal.heading",
		Public:  "error.internal.message",
		Err:     err}
}

var (
	errJourneyMissing = &Error{Kind: KindExpired, Status: http.StatusOK,
		Heading: "error.journey_missing.heading",
		Public:  "error.journey_missing.message"}
	errForbidden = &Error{Kind: KindForbidden, Status: http.StatusForbidden,
		Heading: "error.forbidden.heading",
		Public:  "error.forbidden.message"}
	errLinkInvalid = &Error{Kind: KindBadRequest, Status: http.StatusOK,
		Heading: "error.link_invalid.heading",
		Public:  "error.link_invalid.message"}
	errLinkExpired = &Error{Kind: KindExpired, Status: http.StatusOK,
		Heading: "error.link_expired.heading",
		Public:  "error.link_expired.message"}
	errLinkUsed = &Error{Kind: KindExpired, Status: http.StatusOK,
		Heading: "error.link_used.heading",
		Public:  "error.link_used.message"}
	errNotFound = &Error{Kind: KindBadRequest, Status: http.StatusNotFound,
		Heading: "error.not_found.heading",
		Public:  "error.not_found.message"}
	errMethod = &Error{Kind: KindBadRequest, Status: http.StatusMethodNotAllowed,
		Heading: "error.method.heading",
		Public:  "error.method.message"}
	errBadForm = &Error{Kind: KindBadRequest, Status: http.StatusBadRequest,
		Heading: "error.bad_form.heading",
		Public:  "error.bad_form.message"}
)
