package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/sspr-go/sspr/plugin/store"
)

// WorkerConfig configures a [Worker].
type WorkerConfig struct {
	// Outbox is the queue to deliver from. Required.
	Outbox store.OutboxStore
	// Sender delivers messages. Required.
	Sender Sender
	// Open turns a stored payload back into a message (the plugin seals
	// payloads because they may carry codes and links). Required.
	Open func(payload []byte) (Message, error)
	// Logger receives delivery failures (never bodies). Default:
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// PollInterval is how often the worker looks for due messages when
	// nobody calls [Worker.Kick]. Default: 1 second.
	PollInterval time.Duration
	// Lease is how long a claimed message is reserved for this worker; a
	// worker that dies mid-send leaves it to others after the lease.
	// Default: 1 minute.
	Lease time.Duration
	// BatchSize is how many messages one claim takes. Default: 16.
	BatchSize int
	// MaxAttempts is how many attempts are made before a message is given
	// up as dead; a failure matching [ErrPermanent] gives it up at once.
	// Default: 10.
	MaxAttempts int
	// Backoff returns the delay before attempt n+1 after n failed
	// attempts. Default: 5s doubling up to 1h, with ±20% jitter.
	Backoff func(attempts int) time.Duration
	// OnDelivered, if set, is called after each delivery with the message
	// and the time since it was queued (for metrics and audit trails).
	OnDelivered func(m Message, delay time.Duration)
	// OnFailed, if set, is called after each failed attempt with the
	// message (zero when its payload did not open); dead reports that the
	// message was given up.
	OnFailed func(m Message, dead bool)
}

// Worker delivers queued messages. Several workers, in one process or in
// several, may run against one outbox: the store's lease makes each claim
// exclusive.
type Worker struct {
	cfg  WorkerConfig
	kick chan struct{}
	once sync.Once
	done chan struct{}
}

// NewWorker validates cfg and returns a worker.
func NewWorker(cfg WorkerConfig) (*Worker, error) {
	var errs []error
	if cfg.Outbox == nil {
		errs = append(errs, errors.New("notify: config: field 'Outbox': is required"))
	}
	if cfg.Sender == nil {
		errs = append(errs, errors.New("notify: config: field 'Sender': is required"))
	}
	if cfg.Open == nil {
		errs = append(errs, errors.New("notify: config: field 'Open': is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Lease <= 0 {
		cfg.Lease = time.Minute
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 16
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 10
	}
	if cfg.Backoff == nil {
		cfg.Backoff = DefaultBackoff
	}
	return &Worker{cfg: cfg, kick: make(chan struct{}, 1), done: make(chan struct{})}, nil
}

// DefaultBackoff waits 5 s after the first failure and doubles up to one
// hour, with ±20% jitter so that many workers don't retry in step.
func DefaultBackoff(attempts int) time.Duration {
	d := 5 * time.Second
	for i := 1; i < attempts && d < time.Hour; i++ {
		d *= 2
	}
	d = min(d, time.Hour)
	jitter := time.Duration(rand.Int64N(int64(d)/5*2+1)) - d/5
	return d + jitter
}

// Kick asks the worker to look for due messages now. It never blocks.
func (w *Worker) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Close stops Run. It is safe to call more than once.
func (w *Worker) Close() error {
	w.once.Do(func() { close(w.done) })
	return nil
}

// Run delivers due messages until ctx ends or Close is called. It returns
// nil then; delivery errors are logged and retried (or, for
// [ErrPermanent], given up), never returned.
func (w *Worker) Run(ctx context.Context) error {
	t := time.NewTicker(w.cfg.PollInterval)
	defer t.Stop()
	for {
		for {
			n, err := w.Deliver(ctx)
			if err != nil && ctx.Err() == nil {
				w.cfg.Logger.ErrorContext(ctx, "notify: outbox claim failed", slog.Any("err", err))
			}
			if n < w.cfg.BatchSize || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.done:
			return nil
		case <-w.kick:
		case <-t.C:
		}
	}
}

// Deliver claims one batch of due messages and attempts each once. It
// returns how many it claimed.
func (w *Worker) Deliver(ctx context.Context) (int, error) {
	now := w.cfg.Now()
	msgs, err := w.cfg.Outbox.Claim(ctx, now, w.cfg.Lease, w.cfg.BatchSize)
	if err != nil {
		return 0, fmt.Errorf("notify: claim: %w", err)
	}
	for _, m := range msgs {
		w.deliver(ctx, m)
	}
	return len(msgs), nil
}

func (w *Worker) deliver(ctx context.Context, sm store.Message) {
	log := w.cfg.Logger.With(slog.Group("outbox", "id", sm.ID, "attempt", sm.Attempts))
	msg, err := w.cfg.Open(sm.Payload)
	if err != nil {
		// A payload no key opens never will: give it up at once.
		log.ErrorContext(ctx, "notify: cannot open message; giving up", slog.Any("err", err))
		w.markFailed(ctx, log, sm, Message{}, "cannot open payload", true)
		return
	}
	if msg.To == "" {
		// A decoy (a reset for an unknown account): same work, nothing sent.
		if err := w.cfg.Outbox.MarkSent(ctx, sm.ID, w.cfg.Now()); err != nil {
			log.ErrorContext(ctx, "notify: mark sent failed", slog.Any("err", err))
		}
		return
	}
	if err := w.cfg.Sender.Send(ctx, msg); err != nil {
		// A permanent failure (a refused recipient, an unknown channel)
		// will fail again: give it up now rather than after MaxAttempts.
		dead := sm.Attempts >= w.cfg.MaxAttempts || errors.Is(err, ErrPermanent)
		level := slog.LevelWarn
		if dead {
			level = slog.LevelError
		}
		// A sender's error may quote the recipient or the text (an SMTP
		// server's "550 <alice@…> rejected"): log and keep it without them.
		reason := sanitize([]byte(err.Error()), msg)
		log.Log(ctx, level, "notify: delivery failed", slog.Any("message", msg), slog.String("err", reason), slog.Bool("dead", dead))
		w.markFailed(ctx, log, sm, msg, reason, dead)
		return
	}
	if err := w.cfg.Outbox.MarkSent(ctx, sm.ID, w.cfg.Now()); err != nil {
		log.ErrorContext(ctx, "notify: mark sent failed", slog.Any("err", err))
		return
	}
	if w.cfg.OnDelivered != nil {
		w.cfg.OnDelivered(msg, w.cfg.Now().Sub(sm.CreatedAt))
	}
}

func (w *Worker) markFailed(ctx context.Context, log *slog.Logger, sm store.Message, msg Message, reason string, dead bool) {
	if len(reason) > 200 {
		reason = reason[:200]
	}
	if w.cfg.OnFailed != nil {
		w.cfg.OnFailed(msg, dead)
	}
	next := w.cfg.Now().Add(w.cfg.Backoff(sm.Attempts))
	if err := w.cfg.Outbox.MarkFailed(ctx, sm.ID, next, reason, dead); err != nil {
		log.ErrorContext(ctx, "notify: mark failed failed", slog.Any("err", err))
	}
}
