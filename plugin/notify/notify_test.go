package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sspr-go/sspr/plugin/notify"
	"github.com/sspr-go/sspr/plugin/notify/smtptest"
	"github.com/sspr-go/sspr/plugin/store"
	"github.com/sspr-go/sspr/plugin/store/sqlite"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func openStore(t *testing.T, path string) store.Store {
	t.Helper()
	st, err := sqlite.Config{Path: path}.Open(t.Context(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// plain "seals" with JSON only; the plugin encrypts, which is not the
// worker's concern.
func plain(m notify.Message) []byte {
	b, _ := json.Marshal(m)
	return b
}

func openPlain(b []byte) (notify.Message, error) {
	var m notify.Message
	err := json.Unmarshal(b, &m)
	return m, err
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func enqueue(t *testing.T, st store.Store, now time.Time, m notify.Message) int64 {
	t.Helper()
	id, err := st.Enqueue(t.Context(), store.Message{Channel: "email", Payload: plain(m), CreatedAt: now, NextAttemptAt: now})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestSMTPDeliveryOverRealServer(t *testing.T) {
	srv := smtptest.NewServer(t)
	sender, err := notify.NewSMTP(notify.SMTPConfig{URL: srv.URL(), From: "noreply@sspr.test"})
	if err != nil {
		t.Fatal(err)
	}
	msg := notify.Message{Channel: "email", To: "alice@example.com", Subject: "Reset your password",
		Text: "Open https://id.example/recovery/link?token=abc=def and enter 12345678.", HTML: "<p>hi</p>"}
	if err := sender.Send(t.Context(), msg); err != nil {
		t.Fatalf("send: %v", err)
	}
	got := srv.To("alice@example.com")
	if len(got) != 1 {
		t.Fatalf("received %d messages", len(got))
	}
	if got[0].Subject != msg.Subject || !strings.Contains(got[0].Text, "token=abc=def") || !strings.Contains(got[0].HTML, "<p>hi</p>") {
		t.Fatalf("received %+v", got[0])
	}
	if got[0].From != "noreply@sspr.test" {
		t.Fatalf("from %q", got[0].From)
	}
}

func TestSMTPConfig(t *testing.T) {
	tests := []struct {
		cfg  notify.SMTPConfig
		want string
	}{
		{notify.SMTPConfig{}, "notify: config: field 'URL': is required\nnotify: config: field 'From': is required"},
		{notify.SMTPConfig{URL: "http://x", From: "a@b"}, "notify: config: field 'URL': must look like smtp://host:port or smtps://host:port"},
		{notify.SMTPConfig{URL: "smtp://x:99999", From: "a@b"}, "notify: config: field 'URL': bad port"},
	}
	for _, tt := range tests {
		_, err := notify.NewSMTP(tt.cfg)
		if err == nil || err.Error() != tt.want {
			t.Errorf("NewSMTP(%+v) = %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

func TestWorkerRetriesWithBackoffThenDelivers(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "o.db"))
	srv := smtptest.NewServer(t)
	sender, err := notify.NewSMTP(notify.SMTPConfig{URL: srv.URL(), From: "noreply@sspr.test"})
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	w, err := notify.NewWorker(notify.WorkerConfig{Outbox: st, Sender: sender, Open: openPlain, Logger: quiet, Now: clk.Now,
		Backoff: func(n int) time.Duration { return time.Duration(n) * time.Minute }})
	if err != nil {
		t.Fatal(err)
	}
	id := enqueue(t, st, clk.Now(), notify.Message{Channel: "email", To: "bob@example.com", Subject: "s", Text: "t"})

	srv.Reject(errors.New("mailbox busy"))
	if n, err := w.Deliver(t.Context()); err != nil || n != 1 {
		t.Fatalf("first attempt: %d %v", n, err)
	}
	m, err := st.OutboxMessage(t.Context(), id)
	if err != nil || m.Attempts != 1 || !m.SentAt.IsZero() || m.LastError == "" || !m.NextAttemptAt.Equal(clk.Now().Add(time.Minute)) {
		t.Fatalf("after failure: %+v %v", m, err)
	}
	// Not due yet: nothing is claimed.
	srv.Reject(nil)
	if n, _ := w.Deliver(t.Context()); n != 0 {
		t.Fatalf("claimed %d before the backoff ended", n)
	}
	clk.Advance(time.Minute)
	if n, err := w.Deliver(t.Context()); err != nil || n != 1 {
		t.Fatalf("second attempt: %d %v", n, err)
	}
	if got := srv.To("bob@example.com"); len(got) != 1 {
		t.Fatalf("delivered %d", len(got))
	}
	m, _ = st.OutboxMessage(t.Context(), id)
	if m.SentAt.IsZero() || len(m.Payload) != 0 {
		t.Fatalf("after delivery: sent %v payload %d bytes", m.SentAt, len(m.Payload))
	}
	// Sent messages are never sent again.
	clk.Advance(time.Hour)
	if n, _ := w.Deliver(t.Context()); n != 0 {
		t.Fatal("sent message claimed again")
	}
}

func TestWorkerGivesUpAfterMaxAttempts(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "o.db"))
	clk := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	calls := 0
	w, _ := notify.NewWorker(notify.WorkerConfig{Outbox: st, Open: openPlain, Logger: quiet, Now: clk.Now, MaxAttempts: 3,
		Sender: notify.SenderFunc(func(context.Context, notify.Message) error { calls++; return errors.New("down") })})
	id := enqueue(t, st, clk.Now(), notify.Message{To: "x@example.com"})
	for range 5 {
		_, _ = w.Deliver(t.Context())
		clk.Advance(2 * time.Hour)
	}
	if calls != 3 {
		t.Fatalf("attempts %d, want 3", calls)
	}
	m, _ := st.OutboxMessage(t.Context(), id)
	if !m.Dead || len(m.Payload) != 0 {
		t.Fatalf("message after giving up: dead=%v payload=%d", m.Dead, len(m.Payload))
	}
}

func TestWorkerDropsDecoys(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "o.db"))
	clk := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	w, _ := notify.NewWorker(notify.WorkerConfig{Outbox: st, Open: openPlain, Logger: quiet, Now: clk.Now,
		Sender: notify.SenderFunc(func(context.Context, notify.Message) error { t.Error("decoy sent"); return nil })})
	id := enqueue(t, st, clk.Now(), notify.Message{To: "", Text: "decoy"})
	if n, err := w.Deliver(t.Context()); n != 1 || err != nil {
		t.Fatalf("deliver: %d %v", n, err)
	}
	if m, _ := st.OutboxMessage(t.Context(), id); m.SentAt.IsZero() {
		t.Fatal("decoy not marked done")
	}
}

func TestUnsentMessagesSurviveRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "o.db")
	clk := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	first := openStore(t, path)
	enqueue(t, first, clk.Now(), notify.Message{To: "a@example.com", Text: "1"})
	// A worker claims the message and dies before sending it.
	if _, err := first.Claim(t.Context(), clk.Now(), time.Minute, 10); err != nil {
		t.Fatal(err)
	}
	first.Close()

	second := openStore(t, path)
	var sent []notify.Message
	w, _ := notify.NewWorker(notify.WorkerConfig{Outbox: second, Open: openPlain, Logger: quiet, Now: clk.Now,
		Sender: notify.SenderFunc(func(_ context.Context, m notify.Message) error { sent = append(sent, m); return nil })})
	if n, _ := w.Deliver(t.Context()); n != 0 {
		t.Fatal("claimed while the dead worker's lease runs")
	}
	clk.Advance(time.Minute + time.Second)
	if n, err := w.Deliver(t.Context()); n != 1 || err != nil || len(sent) != 1 || sent[0].Text != "1" {
		t.Fatalf("after lease: n=%d err=%v sent=%v", n, err, sent)
	}
}

func TestWorkerRunDeliversOnKick(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "o.db"))
	got := make(chan notify.Message, 1)
	w, _ := notify.NewWorker(notify.WorkerConfig{Outbox: st, Open: openPlain, Logger: quiet, PollInterval: time.Hour,
		Sender: notify.SenderFunc(func(_ context.Context, m notify.Message) error { got <- m; return nil })})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	enqueue(t, st, time.Now(), notify.Message{To: "k@example.com", Text: "kick"})
	w.Kick()
	select {
	case m := <-got:
		if m.Text != "kick" {
			t.Fatalf("got %+v", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not delivered after Kick")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestDefaultBackoff(t *testing.T) {
	prev := time.Duration(0)
	for n := 1; n <= 12; n++ {
		d := notify.DefaultBackoff(n)
		base := min(5*time.Second<<(n-1), time.Hour)
		if d < base*8/10 || d > base*12/10 {
			t.Fatalf("backoff(%d) = %v, want %v ±20%%", n, d, base)
		}
		if n > 1 && base > prev && d < prev*8/10 {
			t.Fatalf("backoff shrank at %d", n)
		}
		prev = base
	}
}

func TestMessageLogValueHidesBody(t *testing.T) {
	var buf strings.Builder
	l := slog.New(slog.NewTextHandler(&buf, nil))
	l.Info("x", slog.Any("m", notify.Message{To: "a@b", Subject: "s", Text: "code 12345678"}))
	if strings.Contains(buf.String(), "12345678") {
		t.Fatalf("log holds the body: %s", buf.String())
	}
}

// countingAtomic wraps a store's Atomic and counts the transactions.
type countingAtomic struct {
	st store.Store
	n  atomic.Int32
}

func (c *countingAtomic) Atomic(ctx context.Context, fn func(tx store.Tx) error) error {
	c.n.Add(1)
	return c.st.Atomic(ctx, fn)
}

func TestWorkerRecordsABatchInOneTransaction(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "o.db"))
	clk := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	ca := &countingAtomic{st: st}
	var mu sync.Mutex
	var recorded []string
	failFor := ""
	w, err := notify.NewWorker(notify.WorkerConfig{Outbox: st, Open: openPlain, Logger: quiet, Now: clk.Now, Parallel: 3,
		Atomic: ca.Atomic,
		Record: func(ctx context.Context, tx store.Tx, m notify.Message, delivered bool) error {
			if m.To == failFor {
				return errors.New("audit trail unavailable")
			}
			// The record is written in the transaction that marks the
			// message: the audit event commits with it.
			if _, err := tx.AppendAudit(ctx, store.AuditEvent{Time: clk.Now(), Event: "message.sent", UserID: m.To, Outcome: "ok"}); err != nil {
				return err
			}
			mu.Lock()
			recorded = append(recorded, m.To)
			mu.Unlock()
			return nil
		},
		Sender: notify.SenderFunc(func(context.Context, notify.Message) error { return nil })})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, to := range []string{"a@x.test", "b@x.test", "", "c@x.test", "d@x.test"} {
		ids = append(ids, enqueue(t, st, clk.Now(), notify.Message{To: to, Text: "t"}))
	}
	if n, err := w.Deliver(t.Context()); n != 5 || err != nil {
		t.Fatalf("deliver: %d %v", n, err)
	}
	if got := ca.n.Load(); got != 1 {
		t.Fatalf("%d transactions for one batch, want 1", got)
	}
	if len(recorded) != 4 {
		t.Fatalf("recorded %v, want the four real messages (not the decoy)", recorded)
	}
	for _, id := range ids {
		if m, _ := st.OutboxMessage(t.Context(), id); m.SentAt.IsZero() {
			t.Fatalf("message %d not marked sent", id)
		}
	}
	events, err := st.Audit(t.Context(), store.AuditFilter{UserID: "c@x.test"})
	if err != nil || len(events) != 1 {
		t.Fatalf("audit of c: %v %v", events, err)
	}

	// A record that fails sinks the batch's transaction: every message is
	// then recorded alone, and the failing one's outcome is recorded
	// without its record (it was sent: sending it again at every lease
	// would be worse than a missing audit event).
	ca.n.Store(0)
	failFor = "f@x.test"
	e := enqueue(t, st, clk.Now(), notify.Message{To: "e@x.test", Text: "t"})
	f := enqueue(t, st, clk.Now(), notify.Message{To: "f@x.test", Text: "t"})
	if n, err := w.Deliver(t.Context()); n != 2 || err != nil {
		t.Fatalf("deliver: %d %v", n, err)
	}
	if got := ca.n.Load(); got != 3 {
		t.Fatalf("%d transactions, want 3 (the batch, then each alone)", got)
	}
	if m, _ := st.OutboxMessage(t.Context(), e); m.SentAt.IsZero() {
		t.Fatal("e not marked sent after the batch failed")
	}
	if m, _ := st.OutboxMessage(t.Context(), f); m.SentAt.IsZero() {
		t.Fatal("f not marked sent because its record failed: it would be sent again at every lease")
	}
	// The failed batch's writes were rolled back: e's event is there once.
	for to, want := range map[string]int{"e@x.test": 1, "f@x.test": 0} {
		if events, err := st.Audit(t.Context(), store.AuditFilter{UserID: to}); err != nil || len(events) != want {
			t.Fatalf("audit of %s: %d events (%v), want %d", to, len(events), err, want)
		}
	}
}

func TestWorkerSendsInParallel(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "o.db"))
	const parallel = 4
	arrived := make(chan struct{}, parallel)
	release := make(chan struct{})
	w, _ := notify.NewWorker(notify.WorkerConfig{Outbox: st, Open: openPlain, Logger: quiet, Parallel: parallel,
		Sender: notify.SenderFunc(func(ctx context.Context, _ notify.Message) error {
			arrived <- struct{}{}
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})})
	for i := range parallel {
		enqueue(t, st, time.Now(), notify.Message{To: fmt.Sprintf("p%d@x.test", i), Text: "t"})
	}
	done := make(chan error, 1)
	go func() { _, err := w.Deliver(t.Context()); done <- err }()
	// All four sends are under way at once: sequential sends would never
	// get past the first.
	for i := range parallel {
		select {
		case <-arrived:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d sends at once, want %d", i, parallel)
		}
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestSendsEndBeforeTheLease(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "o.db"))
	const lease = 4 * time.Second // half of it is less than settleTimeout
	var deadline, settleBy time.Time
	var ok, settleOK bool
	start := time.Now()
	w, _ := notify.NewWorker(notify.WorkerConfig{Outbox: st, Open: openPlain, Logger: quiet, Lease: lease,
		Sender: notify.SenderFunc(func(ctx context.Context, _ notify.Message) error {
			deadline, ok = ctx.Deadline()
			return nil
		}),
		Atomic: func(ctx context.Context, fn func(store.Tx) error) error {
			settleBy, settleOK = ctx.Deadline()
			return st.Atomic(ctx, fn)
		}})
	enqueue(t, st, time.Now(), notify.Message{To: "l@x.test", Text: "t"})
	if n, err := w.Deliver(t.Context()); n != 1 || err != nil {
		t.Fatalf("deliver: %d %v", n, err)
	}
	// Another worker may claim the message when the lease ends: the send
	// must be over, and its outcome recorded, well before that.
	if !ok || deadline.After(start.Add(lease/2+time.Second)) || deadline.Before(start.Add(lease/4)) {
		t.Fatalf("send deadline %v (set %v), want about half the lease after %v", deadline, ok, start)
	}
	if !settleOK || settleBy.After(time.Now().Add(lease/2)) {
		t.Fatalf("recording deadline %v (set %v), want within the lease that began at %v", settleBy, settleOK, start)
	}
}

func TestCloseStopsRunWithABacklog(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "o.db"))
	first := make(chan struct{})
	release := make(chan struct{})
	var sends atomic.Int32
	w, _ := notify.NewWorker(notify.WorkerConfig{Outbox: st, Open: openPlain, Logger: quiet, BatchSize: 1, PollInterval: time.Hour,
		Sender: notify.SenderFunc(func(context.Context, notify.Message) error {
			if sends.Add(1) == 1 {
				close(first)
				<-release
			}
			return nil
		})})
	for range 50 {
		enqueue(t, st, time.Now(), notify.Message{To: "c@x.test", Text: "t"})
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(t.Context()) }()
	<-first
	w.Close()
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run kept going after Close")
	}
	if n := sends.Load(); n != 1 {
		t.Fatalf("%d sends after Close, want the one under way", n)
	}
}

// countingOutbox counts claims that returned messages, and closes idle
// when the first claim has returned.
type countingOutbox struct {
	store.Store
	claims atomic.Int32
	once   sync.Once
	idle   chan struct{}
}

func (c *countingOutbox) Claim(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.Message, error) {
	ms, err := c.Store.Claim(ctx, now, lease, limit)
	if len(ms) > 0 {
		c.claims.Add(1)
	}
	c.once.Do(func() { close(c.idle) })
	return ms, err
}

// TestWorkerGathersAfterAKick: after a kick the worker waits Gather
// before it claims, so that messages queued meanwhile go in the same
// claim. In a synctest bubble the wait is seen: nothing is claimed until
// the clock passes Gather.
func TestWorkerGathersAfterAKick(t *testing.T) { synctest.Test(t, workerGathersAfterAKick) }

func workerGathersAfterAKick(t *testing.T) {
	st := &countingOutbox{Store: openStore(t, filepath.Join(t.TempDir(), "o.db")), idle: make(chan struct{})}
	const gather = time.Second
	got := make(chan notify.Message, 2)
	w, _ := notify.NewWorker(notify.WorkerConfig{Outbox: st, Open: openPlain, Logger: quiet, PollInterval: time.Hour, Gather: gather,
		Sender: notify.SenderFunc(func(_ context.Context, m notify.Message) error { got <- m; return nil })})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	<-st.idle // Run's first look found nothing
	enqueue(t, st, time.Now(), notify.Message{To: "g1@example.com", Text: "1"})
	w.Kick()
	synctest.Wait() // the worker waits for the gathering time to pass
	if n := st.claims.Load(); n != 0 {
		t.Fatalf("claimed %d time(s) at once after a kick, want a wait of %v first", n, gather)
	}
	// A second message and kick within the gathering time: the same
	// claim takes both.
	time.Sleep(gather / 2)
	enqueue(t, st, time.Now(), notify.Message{To: "g2@example.com", Text: "2"})
	w.Kick()
	time.Sleep(gather)
	synctest.Wait()
	if len(got) != 2 {
		t.Fatalf("%d messages delivered once the gathering time passed, want 2", len(got))
	}
	if n := st.claims.Load(); n != 1 {
		t.Fatalf("%d claims for two messages kicked together, want 1", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestWorkerSendsToOneRecipientInOrder(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "o.db"))
	var mu sync.Mutex
	inflight := map[string]int{}
	var order []string
	otherArrived := make(chan struct{})
	w, _ := notify.NewWorker(notify.WorkerConfig{Outbox: st, Open: openPlain, Logger: quiet, Parallel: 4,
		Sender: notify.SenderFunc(func(ctx context.Context, m notify.Message) error {
			mu.Lock()
			inflight[m.To]++
			if inflight[m.To] > 1 {
				t.Errorf("two sends to %s at once", m.To)
			}
			if m.To == "a@x.test" {
				order = append(order, m.Text)
			}
			mu.Unlock()
			switch {
			case m.To == "b@x.test":
				close(otherArrived)
			case m.Text == "1":
				// The first message to a waits until b's is under way: b
				// is not held up behind a.
				select {
				case <-otherArrived:
				case <-time.After(10 * time.Second):
					t.Error("b's message waited for a's")
				}
			}
			mu.Lock()
			inflight[m.To]--
			mu.Unlock()
			return nil
		})})
	for _, text := range []string{"1", "2", "3"} {
		enqueue(t, st, time.Now(), notify.Message{To: "a@x.test", Text: text})
	}
	enqueue(t, st, time.Now(), notify.Message{To: "b@x.test", Text: "b"})
	if n, err := w.Deliver(t.Context()); n != 4 || err != nil {
		t.Fatalf("deliver: %d %v", n, err)
	}
	if !slices.Equal(order, []string{"1", "2", "3"}) {
		t.Fatalf("a's messages arrived as %v, want 1 2 3 (a resent code after the one it replaced)", order)
	}
}

// TestShutdownMidBatchRecordsWhatWasSent: when the worker's context ends
// while a batch is being sent, the messages already sent are still marked
// sent (or each would go out again when its lease ends).
func TestShutdownMidBatchRecordsWhatWasSent(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "o.db"))
	ctx, cancel := context.WithCancel(t.Context())
	var sent atomic.Int32
	w, _ := notify.NewWorker(notify.WorkerConfig{Outbox: st, Open: openPlain, Logger: quiet, Atomic: st.Atomic,
		Sender: notify.SenderFunc(func(_ context.Context, m notify.Message) error {
			if sent.Add(1) == 5 {
				cancel() // the process is told to stop during the last send
			}
			return nil
		})})
	var ids []int64
	for i := range 5 {
		ids = append(ids, enqueue(t, st, time.Now(), notify.Message{To: fmt.Sprintf("s%d@x.test", i), Text: "t"}))
	}
	if n, err := w.Deliver(ctx); n != 5 || err != nil {
		t.Fatalf("deliver: %d %v", n, err)
	}
	for _, id := range ids {
		if m, _ := st.OutboxMessage(t.Context(), id); m.SentAt.IsZero() {
			t.Fatalf("message %d was sent but not marked sent after the shutdown", id)
		}
	}
}
