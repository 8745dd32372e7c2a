package storetest

import (
	"testing"
	"time"
)

func testCounters(t *testing.T, open opener) {
	base := baseTime()
	const window = time.Minute
	w := func(i int) time.Time { return base.Add(time.Duration(i) * window) }
	s := open(t)
	// Steps run in order against one store: a counter's history matters.
	for _, step := range []struct {
		hit           bool // Hit, else Count
		key           string
		windowStart   time.Time
		current, prev int64
	}{
		{false, "k", w(0), 0, 0},
		{true, "k", w(0), 1, 0},
		{true, "k", w(0), 2, 0},
		{false, "k", w(0), 2, 0},
		{true, "k", w(1), 1, 2},
		{false, "k", w(1), 1, 2},
		{true, "k", w(1), 2, 2},
		{false, "k", w(2), 0, 2},
		{true, "other", w(1), 1, 0},
		{false, "k", w(1), 2, 2},
		{false, "k", w(3), 0, 0},
		{true, "k", w(3), 1, 0},
		{false, "unknown", w(0), 0, 0},
	} {
		var (
			cur, prev int64
			err       error
			op        = "Count"
		)
		if step.hit {
			op = "Hit"
			cur, prev, err = s.Hit(t.Context(), step.key, step.windowStart, window)
		} else {
			cur, prev, err = s.Count(t.Context(), step.key, step.windowStart, window)
		}
		must(t, op, err)
		if cur != step.current || prev != step.prev {
			t.Errorf("%s(%s, window %v) = %d, %d; want %d, %d",
				op, step.key, step.windowStart.Sub(base), cur, prev, step.current, step.prev)
		}
	}
}
