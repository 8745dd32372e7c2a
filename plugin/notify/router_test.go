package notify_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sspr-go/sspr/plugin/notify"
	"github.com/sspr-go/sspr/plugin/store"
)

// tally is a Sender that counts what it is given.
type tally struct {
	mu   sync.Mutex
	got  []notify.Message
	fail error
}

func (s *tally) Send(_ context.Context, m notify.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, m)
	return s.fail
}

func (s *tally) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

func TestRouterRoutesByChannel(t *testing.T) {
	mail, sms := &tally{}, &tally{fail: errors.New("gateway down")}
	routes := map[string]notify.Sender{"email": mail, "sms": sms}
	r, err := notify.NewRouter(routes)
	if err != nil {
		t.Fatal(err)
	}
	delete(routes, "sms") // the router keeps its own copy

	tests := []struct {
		name      string
		channel   string
		wantErr   string
		permanent bool
	}{
		{"email", "email", "", false},
		{"sms, with the sender's error", "sms", "gateway down", false},
		{"unknown", "fax", `notify: router: no sender for channel "fax"`, true},
		{"empty", "", `notify: router: no sender for channel ""`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := r.Send(t.Context(), notify.Message{Channel: tt.channel, To: "x", Text: "t"})
			if gotErr := fmt.Sprint(err); (tt.wantErr == "" && err != nil) || (tt.wantErr != "" && gotErr != tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if errors.Is(err, notify.ErrPermanent) != tt.permanent {
				t.Fatalf("permanent = %v, want %v", !tt.permanent, tt.permanent)
			}
		})
	}
	if mail.count() != 1 || sms.count() != 1 || mail.got[0].Channel != "email" || sms.got[0].Channel != "sms" {
		t.Fatalf("email got %v, sms got %v", mail.got, sms.got)
	}
}

func TestRouterConfig(t *testing.T) {
	tests := []struct {
		name   string
		routes map[string]notify.Sender
		want   string
	}{
		{"nil", nil, "notify: router: at least one channel is required"},
		{"bad routes", map[string]notify.Sender{"": &tally{}, "sms": nil, "email": &tally{}},
			"notify: router: channel name is empty\nnotify: router: channel \"sms\": sender is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := notify.NewRouter(tt.routes)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("NewRouter = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestRouterConcurrentUse runs under -race: one router, several senders,
// many goroutines.
func TestRouterConcurrentUse(t *testing.T) {
	rec, srv := newRecorder(t, 200, "")
	mail := &tally{}
	r, err := notify.NewRouter(map[string]notify.Sender{"email": mail, "sms": newWebhook(t, srv.URL)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			ch := []string{"email", "sms", "fax"}[i%3]
			err := r.Send(t.Context(), notify.Message{Channel: ch, To: "+15550100", Text: "t"})
			if (ch == "fax") != errors.Is(err, notify.ErrPermanent) || (ch != "fax" && err != nil) {
				t.Errorf("%s: %v", ch, err)
			}
		})
	}
	wg.Wait()
	if mail.count() != 11 || len(rec.requests()) != 11 {
		t.Fatalf("email %d, sms %d", mail.count(), len(rec.requests()))
	}
}

func TestPermanent(t *testing.T) {
	if notify.Permanent(nil) != nil {
		t.Fatal("Permanent(nil) != nil")
	}
	cause := &fs.PathError{Op: "open", Path: "x", Err: fs.ErrNotExist}
	err := notify.Permanent(fmt.Errorf("notify: test: %w", cause))
	var pe *fs.PathError
	switch {
	case !errors.Is(err, notify.ErrPermanent):
		t.Fatal("not ErrPermanent")
	case !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe):
		t.Fatal("cause lost")
	case err.Error() != "notify: test: open x: file does not exist":
		t.Fatalf("message %q changed", err)
	case !errors.Is(fmt.Errorf("wrapped: %w", err), notify.ErrPermanent):
		t.Fatal("not ErrPermanent once wrapped")
	case errors.Is(fmt.Errorf("notify: test: %w", cause), notify.ErrPermanent):
		t.Fatal("plain error is permanent")
	}
}

func enqueueSMS(t *testing.T, st store.Store, now time.Time, m notify.Message) int64 {
	t.Helper()
	id, err := st.Enqueue(t.Context(), store.Message{Channel: m.Channel, Payload: plain(m), CreatedAt: now, NextAttemptAt: now})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestWorkerGivesUpPermanentFailuresAtOnce runs the worker against the real
// SQLite outbox, with a router over a webhook gateway.
func TestWorkerGivesUpPermanentFailuresAtOnce(t *testing.T) {
	tests := []struct {
		name     string
		msg      notify.Message
		status   int
		wantDead bool
		wantErr  string // in the outbox's last error
		requests int
	}{
		{"gateway refuses", smsMsg, 400, true, "notify: webhook: status 400: bad number [redacted]", 1},
		{"unknown channel", notify.Message{Channel: "fax", To: "+15551230000", Text: "Your code is 87654321"}, 200, true,
			`notify: router: no sender for channel "fax"`, 0},
		{"gateway busy: retried", smsMsg, 503, false, "notify: webhook: status 503: bad number [redacted]", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openStore(t, filepath.Join(t.TempDir(), "o.db"))
			rec, srv := newRecorder(t, tt.status, "bad number "+smsMsg.To)
			router, err := notify.NewRouter(map[string]notify.Sender{"sms": newWebhook(t, srv.URL)})
			if err != nil {
				t.Fatal(err)
			}
			clk := &fakeClock{now: testNow}
			var failures []bool
			w, err := notify.NewWorker(notify.WorkerConfig{Outbox: st, Sender: router, Open: openPlain, Logger: quiet, Now: clk.Now,
				Backoff:  func(int) time.Duration { return time.Minute },
				OnFailed: func(_ notify.Message, dead bool) { failures = append(failures, dead) }})
			if err != nil {
				t.Fatal(err)
			}
			id := enqueueSMS(t, st, clk.Now(), tt.msg)
			if n, err := w.Deliver(t.Context()); n != 1 || err != nil {
				t.Fatalf("deliver: %d %v", n, err)
			}
			m, err := st.OutboxMessage(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if m.Dead != tt.wantDead || m.Attempts != 1 || !m.SentAt.IsZero() || m.LastError != tt.wantErr {
				t.Fatalf("after one attempt: dead=%v attempts=%d sent=%v last error %q", m.Dead, m.Attempts, m.SentAt, m.LastError)
			}
			if tt.wantDead && len(m.Payload) != 0 {
				t.Fatalf("dead message keeps %d bytes of payload", len(m.Payload))
			}
			if strings.Contains(m.LastError, tt.msg.Text) || strings.Contains(m.LastError, "5551230000") {
				t.Fatalf("last error %q holds the message", m.LastError)
			}
			if len(failures) != 1 || failures[0] != tt.wantDead {
				t.Fatalf("OnFailed calls %v", failures)
			}
			// Later passes: a dead message is never tried again; a live one is.
			clk.Advance(2 * time.Hour)
			n, err := w.Deliver(t.Context())
			if err != nil || (n == 1) == tt.wantDead {
				t.Fatalf("second pass claimed %d (%v), dead %v", n, err, tt.wantDead)
			}
			wantRequests := tt.requests
			if !tt.wantDead {
				wantRequests++
			}
			if got := len(rec.requests()); got != wantRequests {
				t.Fatalf("gateway saw %d requests, want %d", got, wantRequests)
			}
		})
	}
}

// TestWorkerKeepsSenderErrorsFreeOfTheMessage: whatever a sender's error
// quotes (an SMTP server's "550 <address> rejected", the text), the
// outbox's last error and the log keep neither the recipient nor the text.
func TestWorkerKeepsSenderErrorsFreeOfTheMessage(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "o.db"))
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	msg := notify.Message{Channel: "email", To: "alice.secret@example.org", Subject: "Reset", Text: "Your code is 87654321"}
	leaky := notify.SenderFunc(func(_ context.Context, m notify.Message) error {
		return fmt.Errorf("550 5.1.1 <%s> rejected while sending %q", m.To, m.Text)
	})
	clk := &fakeClock{now: testNow}
	w, err := notify.NewWorker(notify.WorkerConfig{Outbox: st, Sender: leaky, Open: openPlain, Logger: logger, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	id := enqueueSMS(t, st, clk.Now(), msg)
	if _, err := w.Deliver(t.Context()); err != nil {
		t.Fatal(err)
	}
	m, err := st.OutboxMessage(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	for where, s := range map[string]string{"last error": m.LastError, "log": logs.String()} {
		if strings.Contains(s, "alice.secret") || strings.Contains(s, "87654321") {
			t.Fatalf("%s holds the message: %q", where, s)
		}
	}
	if !strings.Contains(m.LastError, "rejected while sending") {
		t.Fatalf("last error lost its reason: %q", m.LastError)
	}
}
