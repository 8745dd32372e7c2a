package plugin_test

import (
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sspr-go/sspr/plugin"
	"github.com/sspr-go/sspr/plugin/plugintest"
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
