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
	// Gather is how long Run waits after a Kick before it claims, so that
	// the messages queued meanwhile go out in one batch (one claim and one
	// commit) rather than one batch each. It delays each message by at most
	// Gather. Default: 0 (claim at once).
	Gather time.Duration
	// Parallel is how many messages of a batch are sent at once (the
	// Sender must be safe for concurrent use). Default: 1.
	Parallel int
	// Atomic, if set, runs the bookkeeping of a claimed batch (each
	// message marked sent or failed, and Record's writes) in one store
	// transaction, so that a batch costs one commit rather than one or two
	// per message. Typically the store's [store.Store.Atomic]. When the
	// transaction fails, each message is recorded on its own instead.
	Atomic func(ctx context.Context, fn func(tx store.Tx) error) error
	// Record, if set, writes what goes with a message's outcome (an audit
	// event), in the transaction that marks it sent (delivered is true) or
	// given up (delivered is false). An error fails that transaction. It
	// needs Atomic.
	Record func(ctx context.Context, tx store.Tx, m Message, delivered bool) error
	// OnDelivered, if set, is called after each delivery has been recorded,
	// with the message and the time since it was queued (for metrics).
	OnDelivered func(m Message, delay time.Duration)
	// OnFailed, if set, is called after each failed attempt with the
	// message (zero when its payload did not open); dead reports that the
	// message was given up.
	OnFailed func(m Message, dead bool)
}

// Worker delivers queued messages. Several workers, in one process or in
// several, may run against one outbox: the store's lease makes each claim
// exclusive, and a send is cut off (its context ends) at half the lease,
// so that a slow Sender does not let another worker claim and send the
// same message while it still runs or before its outcome is recorded.
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
	if cfg.Record != nil && cfg.Atomic == nil {
		errs = append(errs, errors.New("notify: config: field 'Record': needs field 'Atomic'"))
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
	if cfg.Parallel <= 0 {
		cfg.Parallel = 1
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
		for w.running(ctx) {
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
			if !w.gather(ctx) {
				return nil
			}
		case <-t.C:
		}
	}
}

// gather waits Gather after a kick, unless the worker stops meanwhile
// (then it reports false).
func (w *Worker) gather(ctx context.Context) bool {
	if w.cfg.Gather <= 0 {
		return true
	}
	t := time.NewTimer(w.cfg.Gather)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-w.done:
		return false
	case <-t.C:
		return true
	}
}

// running reports whether Run should go on: neither ctx ended nor Close
// was called (a backlog does not keep a closed worker busy).
func (w *Worker) running(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return false
	case <-w.done:
		return false
	default:
		return true
	}
}

// settleTimeout bounds the recording of a batch's outcomes, which goes on
// after the worker's context ends; never longer than half the lease
// either, which is what is left of it once the sends have stopped: a
// recording after the lease could overwrite what another worker, which
// claimed the message meanwhile, recorded.
const settleTimeout = 10 * time.Second

// outcome is what became of one claimed message.
type outcome struct {
	sm        store.Message
	msg       Message
	log       *slog.Logger
	delivered bool   // sent, or a decoy (nothing to send)
	decoy     bool   // no recipient: marked sent, not reported
	reason    string // why it failed (sanitized)
	dead      bool   // given up
	next      time.Time
	skipped   bool // the lease ran out before the send: left to expire
}

// Deliver claims one batch of due messages and attempts each once
// (Parallel at a time), then records the outcomes. It returns how many it
// claimed.
func (w *Worker) Deliver(ctx context.Context) (int, error) {
	claimed := w.cfg.Now()
	msgs, err := w.cfg.Outbox.Claim(ctx, claimed, w.cfg.Lease, w.cfg.BatchSize)
	if err != nil {
		return 0, fmt.Errorf("notify: claim: %w", err)
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	// Sends end at half the lease: the outcomes must be recorded before
	// the lease ends, or another worker may claim and send the message
	// again. (A timeout, not a deadline: Now may be a test's clock.)
	sendCtx, cancel := context.WithTimeout(ctx, w.cfg.Lease/2)
	defer cancel()
	outs := make([]outcome, len(msgs))
	for i, m := range msgs {
		outs[i] = w.open(ctx, m)
	}
	if w.cfg.Parallel == 1 || len(msgs) == 1 {
		for i := range outs {
			w.send(sendCtx, &outs[i])
		}
	} else {
		// Messages to one recipient go one after the other, oldest first
		// (a resent code must not arrive before the one it replaced);
		// different recipients in parallel.
		var order []string
		byTo := map[string][]int{}
		for i, o := range outs {
			if o.pending() {
				if _, ok := byTo[o.msg.To]; !ok {
					order = append(order, o.msg.To)
				}
				byTo[o.msg.To] = append(byTo[o.msg.To], i)
			}
		}
		var wg sync.WaitGroup
		slots := make(chan struct{}, w.cfg.Parallel)
		for _, to := range order {
			slots <- struct{}{}
			wg.Go(func() {
				defer func() { <-slots }()
				for _, i := range byTo[to] {
					w.send(sendCtx, &outs[i])
				}
			})
		}
		wg.Wait()
	}
	// What was sent is recorded even when ctx ended meanwhile (a
	// shutdown): otherwise every message of the batch would be sent again
	// once its lease ran out.
	settleCtx, cancelSettle := context.WithTimeout(context.WithoutCancel(ctx), min(settleTimeout, w.cfg.Lease/2))
	defer cancelSettle()
	w.settle(settleCtx, outs)
	return len(msgs), nil
}

// open opens one claimed message.
func (w *Worker) open(ctx context.Context, sm store.Message) outcome {
	log := w.cfg.Logger.With(slog.Group("outbox", "id", sm.ID, "attempt", sm.Attempts))
	o := outcome{sm: sm, log: log}
	msg, err := w.cfg.Open(sm.Payload)
	if err != nil {
		// A payload no key opens never will: give it up at once.
		log.ErrorContext(ctx, "notify: cannot open message; giving up", slog.Any("err", err))
		o.reason, o.dead = "cannot open payload", true
		return o
	}
	o.msg = msg
	if msg.To == "" {
		// A decoy (a reset for an unknown account): same work, nothing sent.
		o.delivered, o.decoy = true, true
	}
	return o
}

// pending reports whether o was opened and still needs its send.
func (o *outcome) pending() bool {
	return !o.delivered && !o.dead
}

// send sends an opened message, unless the lease is (nearly) over.
func (w *Worker) send(ctx context.Context, o *outcome) {
	if !o.pending() {
		return
	}
	msg, sm, log := o.msg, o.sm, o.log
	if ctx.Err() != nil {
		// The lease is (nearly) over: another worker may have it by now.
		o.skipped = true
		return
	}
	if err := w.cfg.Sender.Send(ctx, msg); err != nil {
		// A permanent failure (a refused recipient, an unknown channel)
		// will fail again: give it up now rather than after MaxAttempts.
		o.dead = sm.Attempts >= w.cfg.MaxAttempts || errors.Is(err, ErrPermanent)
		level := slog.LevelWarn
		if o.dead {
			level = slog.LevelError
		}
		// A sender's error may quote the recipient or the text (an SMTP
		// server's "550 <alice@…> rejected"): log and keep it without them.
		o.reason = sanitize([]byte(err.Error()), msg)
		log.Log(ctx, level, "notify: delivery failed", slog.Any("message", msg), slog.String("err", o.reason), slog.Bool("dead", o.dead))
		return
	}
	o.delivered = true
}

// settle records the outcomes: in one transaction when Atomic is set (one
// at a time if that fails), then tells OnDelivered and OnFailed.
func (w *Worker) settle(ctx context.Context, outs []outcome) {
	now := w.cfg.Now()
	for i := range outs {
		if o := &outs[i]; !o.delivered && !o.skipped {
			o.next = now.Add(w.cfg.Backoff(o.sm.Attempts))
		}
	}
	recorded := make([]bool, len(outs))
	if w.cfg.Atomic != nil {
		err := w.cfg.Atomic(ctx, func(tx store.Tx) error {
			for i := range outs {
				if err := w.record(ctx, tx, tx, &outs[i], now); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			for i := range recorded {
				recorded[i] = true
			}
		} else {
			w.cfg.Logger.WarnContext(ctx, "notify: recording a batch failed; recording each message alone", slog.Any("err", err))
		}
	}
	for i := range outs {
		o := &outs[i]
		if !recorded[i] {
			var err error
			if w.cfg.Atomic != nil {
				err = w.cfg.Atomic(ctx, func(tx store.Tx) error { return w.record(ctx, tx, tx, o, now) })
				if err != nil && w.cfg.Record != nil {
					// Record failed (an audit trail that refuses the
					// event): the outcome still counts, or a sent
					// message would be sent again at every lease.
					o.log.ErrorContext(ctx, "notify: recording what goes with the outcome failed; recording the outcome alone", slog.Any("err", err))
					err = w.record(ctx, w.cfg.Outbox, nil, o, now)
				}
			} else {
				err = w.record(ctx, w.cfg.Outbox, nil, o, now)
			}
			if err != nil {
				o.log.ErrorContext(ctx, "notify: recording the outcome failed", slog.Any("err", err))
				continue
			}
		}
		switch {
		case o.skipped || o.decoy:
		case o.delivered:
			if w.cfg.OnDelivered != nil {
				w.cfg.OnDelivered(o.msg, now.Sub(o.sm.CreatedAt))
			}
		default:
			if w.cfg.OnFailed != nil {
				w.cfg.OnFailed(o.msg, o.dead)
			}
		}
	}
}

// record writes one outcome through ob, and Record's writes in tx (nil
// without Atomic). A message that is gone (swept) is not an error of the
// batch.
func (w *Worker) record(ctx context.Context, ob store.OutboxStore, tx store.Tx, o *outcome, now time.Time) error {
	var err error
	switch {
	case o.skipped:
		return nil
	case o.delivered:
		err = ob.MarkSent(ctx, o.sm.ID, now)
	default:
		err = ob.MarkFailed(ctx, o.sm.ID, o.next, o.reason, o.dead)
	}
	if errors.Is(err, store.ErrNotFound) {
		o.log.WarnContext(ctx, "notify: message gone before its outcome was recorded")
		return nil
	}
	if err != nil {
		return err
	}
	if w.cfg.Record != nil && tx != nil && !o.decoy && (o.delivered || o.dead) {
		return w.cfg.Record(ctx, tx, o.msg, o.delivered)
	}
	return nil
}
