// Package notify delivers sspr's outbound messages. Messages are first
// written to the store's outbox in the same transaction as the journey step
// that causes them; a [Worker] claims them and hands each to a [Sender]
// with retries and exponential backoff, so no HTTP response waits for SMTP
// and a restart loses nothing.
package notify

import (
	"context"
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
}

// LogValue keeps bodies (which may carry codes and links) out of logs.
func (m Message) LogValue() slog.Value {
	return slog.GroupValue(slog.String("channel", m.Channel), slog.String("subject", m.Subject))
}

// Sender delivers one message. It returns an error for a failed attempt;
// the worker retries later. Implementations must be safe for concurrent use.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// SenderFunc adapts a function to [Sender].
type SenderFunc func(ctx context.Context, m Message) error

// Send calls f.
func (f SenderFunc) Send(ctx context.Context, m Message) error { return f(ctx, m) }
