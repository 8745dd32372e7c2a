package plugin_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sspr-go/sspr/plugin"
	"github.com/sspr-go/sspr/plugin/plugintest"
	"github.com/sspr-go/sspr/plugin/store"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) count(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), sub)
}

// TestRateLimitsOffWarnsOnEveryPage: with InsecureDisableRateLimits the
// plugin warns when it starts and again with every page it serves, and a
// sixth start from one address (over a limit of five) is not refused (no
// 429).
func TestRateLimitsOffWarnsOnEveryPage(t *testing.T) {
	const warning = "rate limits are OFF"
	log := &syncBuffer{}
	h := newHarness(t, func(c *plugin.Config) {
		c.InsecureDisableRateLimits = true
		c.Limits.StartsPerIP = plugin.Limit{N: 5, Window: time.Hour}
		c.Logger = slog.New(slog.NewTextHandler(log, nil))
	})
	if n := log.count(warning); n != 1 {
		t.Fatalf("%d warnings at start-up, want 1", n)
	}
	b := plugintest.NewBrowser(t)
	for i := range 6 {
		page := h.start(b, "alice@example.com")
		if page.Status != http.StatusSeeOther {
			t.Fatalf("start %d: status %d", i+1, page.Status)
		}
	}
	// Six start pages, each with its warning (the POSTs answer with a
	// redirect, not a page).
	if n := log.count(warning); n != 1+6 {
		t.Fatalf("%d warnings, want 7 (start-up and 6 pages)", n)
	}
}

// failingCommit is a store whose transactions fail after their work.
type failingCommit struct {
	store.Store
	fail bool
}

func (f *failingCommit) Atomic(ctx context.Context, fn func(tx store.Tx) error) error {
	err := f.Store.Atomic(ctx, func(tx store.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if f.fail {
			return errors.New("disk I/O error")
		}
		return nil
	})
	return err
}

// TestAuditLoggedOnlyAfterCommit: the log reports an audit event once its
// transaction has committed, never one that was rolled back.
func TestAuditLoggedOnlyAfterCommit(t *testing.T) {
	log := &syncBuffer{}
	var fc *failingCommit
	h := newHarness(t, func(c *plugin.Config) {
		fc = &failingCommit{Store: c.Store}
		c.Store = fc
		c.Logger = slog.New(slog.NewTextHandler(log, nil))
	})
	const line = "audit.event=journey.start"
	fc.fail = true
	if page := h.start(plugintest.NewBrowser(t), "alice@example.com"); page.Status != http.StatusInternalServerError {
		t.Fatalf("start with a failing commit: status %d", page.Status)
	}
	if n := log.count(line); n != 0 {
		t.Fatalf("%d audit lines for a start that was rolled back", n)
	}
	if events := h.audit("journey.start"); len(events) != 0 {
		t.Fatalf("rolled back events stored: %+v", events)
	}
	fc.fail = false
	if page := h.start(plugintest.NewBrowser(t), "alice@example.com"); page.Status != http.StatusSeeOther {
		t.Fatalf("start: status %d", page.Status)
	}
	if n := log.count(line); n != 1 {
		t.Fatalf("%d audit lines after one committed start, want 1", n)
	}
}
