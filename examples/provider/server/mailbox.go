package server

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sspr-go/sspr/plugin/notify"
)

// mailboxSize is how many messages a [Mailbox] keeps.
const mailboxSize = 100

// MailboxMessage is a message the [Mailbox] received.
type MailboxMessage struct {
	notify.Message
	// ReceivedAt is when Send was called.
	ReceivedAt time.Time `json:"received_at"`
}

// Mailbox is the development sender used when no SMTP server is configured:
// it delivers nothing, logs every message (subject and text, which may hold
// codes and links) and keeps the last 100 for /dev/mailbox and for tests.
// It is safe for concurrent use.
type Mailbox struct {
	logger *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	entries []mailboxEntry // oldest first, at most mailboxSize
	arrived chan struct{}  // closed and replaced on every Send
}

type mailboxEntry struct {
	msg    MailboxMessage
	waited bool // already returned by Wait
}

var _ notify.Sender = (*Mailbox)(nil)

// NewMailbox returns an empty mailbox that logs to logger (nil means
// slog.Default()) and stamps messages with now (nil means time.Now).
func NewMailbox(logger *slog.Logger, now func() time.Time) *Mailbox {
	if logger == nil {
		logger = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	return &Mailbox{logger: logger, now: now, arrived: make(chan struct{})}
}

// Send implements notify.Sender: it logs that m arrived (never its text
// or recipient) and keeps it. It never fails.
func (b *Mailbox) Send(ctx context.Context, m notify.Message) error {
	// Never the text: it holds codes and links, which no log may keep.
	// Nor the recipient: sspr keeps phone numbers sealed at rest.
	b.logger.InfoContext(ctx, "dev mailbox: message kept, not sent (no SMTP configured); see /dev/mailbox",
		slog.String("channel", m.Channel), slog.String("subject", m.Subject))

	b.mu.Lock()
	defer b.mu.Unlock()
	b.entries = append(b.entries, mailboxEntry{msg: MailboxMessage{Message: m, ReceivedAt: b.now()}})
	if len(b.entries) > mailboxSize {
		b.entries = slices.Delete(b.entries, 0, len(b.entries)-mailboxSize)
	}
	close(b.arrived)
	b.arrived = make(chan struct{})
	return nil
}

// Messages returns the kept messages, newest first.
func (b *Mailbox) Messages() []MailboxMessage {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]MailboxMessage, 0, len(b.entries))
	for i := len(b.entries) - 1; i >= 0; i-- {
		out = append(out, b.entries[i].msg)
	}
	return out
}

// Wait returns the oldest kept message to the address to (compared without
// regard to case) that no earlier Wait returned, blocking until one arrives
// or ctx ends. Because it also returns messages that arrived before it was
// called, a test can trigger a message and then wait for it without a race;
// each message is returned once, so waiting twice gets two messages.
func (b *Mailbox) Wait(ctx context.Context, to string) (notify.Message, error) {
	for {
		b.mu.Lock()
		for i := range b.entries {
			e := &b.entries[i]
			if !e.waited && strings.EqualFold(e.msg.To, to) {
				e.waited = true
				m := e.msg.Message
				b.mu.Unlock()
				return m, nil
			}
		}
		arrived := b.arrived
		b.mu.Unlock()

		select {
		case <-arrived:
		case <-ctx.Done():
			return notify.Message{}, ctx.Err()
		}
	}
}
