// Package notify delivers sspr's outbound messages. Messages are first
// written to the store's outbox in the same transaction as the journey step
// that causes them; a [Worker] claims them in batches and hands each to a
// [Sender] (several recipients at once; one recipient's messages of a
// batch in order, though a retried one arrives after those sent since)
// with retries and exponential backoff, so no HTTP response waits for SMTP
// and a restart loses nothing. A batch's outcomes are recorded in one
// transaction; its sends end at half its claim's lease and the recording
// within the lease, so that no other worker sends the same message
// meanwhile. A crash between the sends and the recording sends the
// batch's delivered messages again (at least once, never lost).
package notify

import (
	"context"
	"errors"
	"log/slog"
)

// Message is a rendered outbound message.
type Message struct {
	// Channel is the transport, for example "email".
	Channel string `json:"channel"`
	// To is the recipient address.
	To string `json:"to"`
	// Subject is the subject line (email only).
	Subject string `json:"subject,omitempty"`
	// Text is the plain-text body.
	Text string `json:"text"`
	// HTML is the HTML body (email only; optional).
	HTML string `json:"html,omitempty"`

	// Template, JourneyID and UserID say what the message is about, for
	// the worker's callbacks (sspr's audit trail). Senders ignore them;
	// they are never sent.
	Template  string `json:"-"`
	JourneyID string `json:"-"`
	UserID    string `json:"-"`
}

// LogValue keeps bodies (which may carry codes and links) out of logs.
func (m Message) LogValue() slog.Value {
	return slog.GroupValue(slog.String("channel", m.Channel), slog.String("subject", m.Subject))
}

// Sender delivers one message. It returns an error for a failed attempt;
// the worker retries later, unless the error matches [ErrPermanent] (see
// [Permanent]), which gives the message up at once. Errors end up in logs
// and in the outbox's last-error column, so they must never carry the
// message's text or recipient. Implementations must be safe for concurrent
// use.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// SenderFunc adapts a function to [Sender].
type SenderFunc func(ctx context.Context, m Message) error

// Send calls f.
func (f SenderFunc) Send(ctx context.Context, m Message) error { return f(ctx, m) }

// ErrPermanent marks a delivery failure that no retry can cure: a channel
// without a sender, a recipient the gateway refuses, rejected credentials.
// [Worker] gives such a message up (dead) at its first failure instead of
// retrying it until [WorkerConfig.MaxAttempts]. Test with errors.Is; wrap
// with [Permanent].
var ErrPermanent = errors.New("notify: permanent failure")

// Permanent marks err as permanent: errors.Is(Permanent(err), ErrPermanent)
// holds, errors.Is and errors.As still see err, and the message is err's,
// unchanged. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

type permanentError struct{ err error }

func (e permanentError) Error() string        { return e.err.Error() }
func (e permanentError) Unwrap() error        { return e.err }
func (e permanentError) Is(target error) bool { return target == ErrPermanent }
