package plugin

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/sspr-go/sspr/plugin/store"
)

// fixedWindows is a store.CounterStore that keeps one count per key and
// window start, as the real stores do.
type fixedWindows struct {
	store.CounterStore
	n map[string]int64
}

func (f *fixedWindows) slot(key string, start time.Time) string {
	return key + "@" + start.UTC().Format(time.RFC3339Nano)
}

func (f *fixedWindows) Hit(ctx context.Context, key string, start time.Time, w time.Duration) (int64, int64, error) {
	f.n[f.slot(key, start)]++
	return f.Count(ctx, key, start, w)
}

func (f *fixedWindows) Count(_ context.Context, key string, start time.Time, w time.Duration) (int64, int64, error) {
	return f.n[f.slot(key, start)], f.n[f.slot(key, start.Add(-w))], nil
}

func TestEstimateWeighsThePreviousWindow(t *testing.T) {
	start := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	w := 10 * time.Minute
	tests := []struct {
		elapsed   time.Duration
		cur, prev int64
		want      float64
	}{
		{0, 0, 10, 10},
		{time.Minute, 1, 10, 10},
		{2*time.Minute + 30*time.Second, 2, 8, 8},
		{5 * time.Minute, 3, 10, 8},
		{9 * time.Minute, 0, 10, 1},
		{10 * time.Minute, 4, 10, 4},
	}
	for _, tt := range tests {
		if got := estimate(start.Add(tt.elapsed), start, w, tt.cur, tt.prev); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("estimate after %v with %d now and %d before: %v, want %v", tt.elapsed, tt.cur, tt.prev, got, tt.want)
		}
	}
}

// TestSlidingWindowLimit: the previous window's events count in the
// current one with the weight of their overlap, so a burst at the end of
// one window does not buy a full allowance at the start of the next (a
// fixed window would allow 10 more at once); Retry-After names the first
// second at which the next event fits, no earlier and no later.
func TestSlidingWindowLimit(t *testing.T) {
	ctx := context.Background()
	l := limiter{}
	lim := Limit{N: 10, Window: 10 * time.Minute}
	c := &fixedWindows{n: map[string]int64{}}
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC) // a window start
	hit := func(at time.Time) limitResult {
		t.Helper()
		r, err := l.hit(ctx, c, lim, "k", at)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	peek := func(at time.Time) limitResult {
		t.Helper()
		r, err := l.peek(ctx, c, lim, "k", at)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// Ten events a minute before t0: all allowed.
	for i := range 10 {
		if r := hit(t0.Add(-time.Minute)); r.exceeded {
			t.Fatalf("event %d of the first window refused", i+1)
		}
	}
	// Two minutes into the next window the previous one still weighs
	// 0.8 × 10 = 8: two events fit, the third is refused.
	at := t0.Add(2 * time.Minute)
	for i := range 2 {
		if r := hit(at); r.exceeded {
			t.Fatalf("event %d at t0+2m refused (estimate %v)", i+1, estimate(at, t0, lim.Window, int64(i+1), 10))
		}
	}
	r := hit(at)
	if !r.exceeded {
		t.Fatal("third event at t0+2m allowed: the previous window was not weighed (a fixed window)")
	}
	// The refused event counted too (3 now): the next fits once
	// 4 + 10×(1-e/10m) ≤ 10, at e = 4m, two minutes from now.
	if r.retryAfter != 2*time.Minute {
		t.Fatalf("Retry-After %v, want 2m0s", r.retryAfter)
	}
	if r := peek(at.Add(r.retryAfter - time.Second)); !r.exceeded {
		t.Fatal("allowed a second before Retry-After")
	}
	if r := peek(at.Add(r.retryAfter)); r.exceeded {
		t.Fatalf("refused at Retry-After (retry %v)", r.retryAfter)
	}
	if r := hit(at.Add(r.retryAfter)); r.exceeded {
		t.Fatal("refused the event at Retry-After")
	}
}

// TestRetryAfterFullWindow: when the current window alone is over the
// limit, Retry-After reaches into the next window, where this window's
// count weighs fully at first: a client that waits exactly Retry-After is
// let through, a second earlier it is not.
func TestRetryAfterFullWindow(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		lim    Limit
		events int
		offset time.Duration
		want   time.Duration
	}{
		// 4 events at t0+10s, limit 3 a minute: the next fits once
		// 1 + 4×(1-e/60s) ≤ 3, at e = 30s of the next window.
		{"burst", Limit{N: 3, Window: time.Minute}, 4, 10 * time.Second, 80 * time.Second},
		// 5 starts at t0, limit 4 a minute (TestRateLimits): 1 + 5×(1-e/60s) ≤ 4 at e = 24s.
		{"starts", Limit{N: 4, Window: time.Minute}, 5, 0, 84 * time.Second},
		// A limit of 1: the next window has to pass entirely.
		{"one", Limit{N: 1, Window: time.Hour}, 2, 15 * time.Minute, 105 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := limiter{}
			c := &fixedWindows{n: map[string]int64{}}
			at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC).Add(tt.offset)
			var r limitResult
			for i := range tt.events {
				var err error
				if r, err = l.hit(ctx, c, tt.lim, "k", at); err != nil {
					t.Fatal(err)
				}
				if (i == tt.events-1) != r.exceeded {
					t.Fatalf("event %d: exceeded %v", i+1, r.exceeded)
				}
			}
			if r.retryAfter != tt.want {
				t.Fatalf("Retry-After %v, want %v", r.retryAfter, tt.want)
			}
			if p, _ := l.peek(ctx, c, tt.lim, "k", at.Add(r.retryAfter-time.Second)); !p.exceeded {
				t.Fatal("allowed a second before Retry-After")
			}
			if p, _ := l.peek(ctx, c, tt.lim, "k", at.Add(r.retryAfter)); p.exceeded {
				t.Fatal("refused at Retry-After")
			}
		})
	}
}
