package plugin

import (
	"context"
	"encoding/base64"
	"math"
	"time"

	"github.com/sspr-go/sspr/plugin/store"
)

// limiter derives sliding-window limits from the store's fixed-window
// counters: the estimate is the current window's count plus the previous
// window's count weighted by how much of it still overlaps the sliding
// window. Keys are hashed, so the store never holds addresses or
// identifiers in clear.
type limiter struct {
	keys     *keyring
	disabled bool
}

type limitResult struct {
	exceeded   bool
	retryAfter time.Duration
}

func (l *limiter) key(scope, value string) string {
	return scope + ":" + base64.RawURLEncoding.EncodeToString(l.keys.mac("limit", []byte(scope), []byte(value))[:18])
}

func windowStart(now time.Time, w time.Duration) time.Time {
	return now.Truncate(w)
}

func estimate(now, start time.Time, w time.Duration, cur, prev int64) float64 {
	elapsed := now.Sub(start)
	weight := 1 - float64(elapsed)/float64(w)
	return float64(cur) + float64(prev)*weight
}

// hit counts one event under key and reports whether the limit is exceeded
// (the event that crosses the limit is itself refused).
func (l *limiter) hit(ctx context.Context, tx store.CounterStore, lim Limit, key string, now time.Time) (limitResult, error) {
	start := windowStart(now, lim.Window)
	cur, prev, err := tx.Hit(ctx, key, start, lim.Window)
	if err != nil {
		return limitResult{}, err
	}
	return l.judge(lim, now, start, cur, prev), nil
}

// peek reports whether the limit is already exhausted, without counting.
func (l *limiter) peek(ctx context.Context, tx store.CounterStore, lim Limit, key string, now time.Time) (limitResult, error) {
	start := windowStart(now, lim.Window)
	cur, prev, err := tx.Count(ctx, key, start, lim.Window)
	if err != nil {
		return limitResult{}, err
	}
	return l.judge(lim, now, start, cur+1, prev), nil
}

func (l *limiter) judge(lim Limit, now, start time.Time, cur, prev int64) limitResult {
	if l.disabled || estimate(now, start, lim.Window, cur, prev) <= float64(lim.N) {
		return limitResult{}
	}
	// Retry when the next event fits: in this window once the previous
	// window's weight has decayed enough; else in the next window, where
	// this window's count weighs fully at first and then decays.
	var at time.Time
	if cur < int64(lim.N) && prev > 0 {
		// The next event fits once cur+1 + prev*(1-elapsed/window) <= N.
		need := float64(int64(lim.N)-cur-1) / float64(prev)
		at = start.Add(time.Duration((1 - need) * float64(lim.Window)))
	} else {
		// In the next window it fits once 1 + cur*(1-elapsed/window) <= N.
		need := float64(lim.N-1) / float64(cur)
		at = start.Add(lim.Window + time.Duration(max(0, 1-need)*float64(lim.Window)))
	}
	retry := at.Sub(now)
	return limitResult{exceeded: true, retryAfter: time.Duration(math.Ceil(retry.Seconds())) * time.Second}
}
