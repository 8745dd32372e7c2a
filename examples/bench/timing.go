package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sspr-go/sspr/examples/provider/server"
)

// Targets of the design for account enumeration by timing.
const (
	targetMedianDiffMS = 0.05
	targetKSP          = 0.01
	targetAccuracy     = 0.55
)

// runTiming posts known and unknown identifiers in a random interleaved
// order, one at a time from one browser, and compares the response times.
// A random order rather than strict alternation: the outbox worker sends a
// known user's email just after the answer, which slows whatever request
// comes next; alternation would always charge that to an unknown one.
func runTiming(ctx context.Context, out io.Writer, p *provider, o options) error {
	transport := newTransport(1)
	defer transport.CloseIdleConnections()
	b := newBrowser(p, newClient(transport))
	if _, err := b.get(ctx, "/recovery/"); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(2026, 7))
	// Unknown identifiers look like the known ones: user<5 digits> above
	// the seeded range, same length, same domain.
	identifier := func(known bool) string {
		if known {
			return server.LoadTestEmail(rng.IntN(o.seedUsers))
		}
		return server.LoadTestEmail(o.seedUsers + rng.IntN(server.MaxSeedUsers-o.seedUsers))
	}
	order := make([]bool, 2*o.samples)
	for i := range o.samples {
		order[i] = true
	}
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })

	// What the answers look like, per class: status, Location and header
	// names (values such as the cookie and the date differ per request).
	shape := map[bool]map[string]int{true: {}, false: {}}
	post := func(known bool) (time.Duration, error) {
		r, err := b.post(ctx, "/recovery/", url.Values{"identifier": {identifier(known)}}, false)
		if err != nil {
			return 0, err
		}
		if !r.redirectsTo("/recovery/verify") {
			return 0, fmt.Errorf("POST /recovery/: %v", r)
		}
		names := slices.Sorted(func(yield func(string) bool) {
			for k := range r.header {
				if k != "Date" && !yield(k) {
					return
				}
			}
		})
		shape[known][strconv.Itoa(r.status)+" "+r.location+" "+r.header.Get("Content-Length")+" "+strings.Join(names, ",")]++
		return r.latency, nil
	}

	fmt.Fprintf(out, "\n## Enumeration timing (POST /recovery/ with known vs unknown identifiers, concurrency 1)\n\n")
	fmt.Fprintf(out, "%d unrecorded warm-up requests, then %d known and %d unknown in random interleaved order (load %s)\n",
		o.timingWarmup, o.samples, o.samples, loadavg())
	if o.timingGap > 0 {
		fmt.Fprintf(out, "diagnostic: the client pauses %s between requests\n", o.timingGap)
	}
	for i := range o.timingWarmup {
		if _, err := post(i%2 == 0); err != nil {
			return err
		}
	}
	provCPU0 := p.cpuTime()
	began := time.Now()
	var known, unknown []float64
	for _, k := range order {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if o.timingGap > 0 {
			time.Sleep(o.timingGap)
		}
		lat, err := post(k)
		if err != nil {
			return err
		}
		if k {
			known = append(known, ms(lat))
		} else {
			unknown = append(unknown, ms(lat))
		}
	}
	elapsed := time.Since(began)
	fmt.Fprintf(out, "took %s, provider CPU %.3f ms per request, load after %s\n\n",
		elapsed.Round(time.Millisecond), ms(p.cpuTime()-provCPU0)/float64(len(order)), loadavg())

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "identifier\tsamples\tmedian ms\tmean ms\tp90 ms\tp99 ms\tmax ms\t")
	for _, c := range []struct {
		name string
		xs   []float64
	}{{"known", known}, {"unknown", unknown}} {
		s := sorted(c.xs)
		fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t\n", c.name, len(s), median(s), mean(s),
			percentile(s, 0.9), percentile(s, 0.99), percentile(s, 1))
	}
	tw.Flush()

	diff := median(known) - median(unknown)
	d, pv := ksTest(known, unknown)
	acc := thresholdAccuracy(known, unknown)
	fmt.Fprintf(out, "\nmedian difference (known − unknown): %+.3f ms  (target |Δ| ≤ %.2f ms)  %s\n",
		diff, targetMedianDiffMS, passMiss(math.Abs(diff) <= targetMedianDiffMS))
	fmt.Fprintf(out, "two-sample KS: D = %.4f, p = %.3g  (target p ≥ %.2f)  %s\n", d, pv, targetKSP, passMiss(pv >= targetKSP))
	fmt.Fprintf(out, "best single-request threshold guess: %.1f %% balanced accuracy  (target ≤ %.0f %%)  %s\n",
		100*acc, 100*targetAccuracy, passMiss(acc <= targetAccuracy))

	// A control: the known samples split at random into two halves. Its KS p
	// shows how the test behaves on this machine's noise alone.
	ctl := slices.Clone(known)
	rng.Shuffle(len(ctl), func(i, j int) { ctl[i], ctl[j] = ctl[j], ctl[i] })
	cd, cp := ksTest(ctl[:len(ctl)/2], ctl[len(ctl)/2:])
	fmt.Fprintf(out, "control (known vs known, random halves): D = %.4f, p = %.3g, median difference %+.3f ms\n",
		cd, cp, median(ctl[:len(ctl)/2])-median(ctl[len(ctl)/2:]))

	same := len(shape[true]) == 1 && len(shape[false]) == 1 && slices.Equal(sortedKeys(shape[true]), sortedKeys(shape[false]))
	fmt.Fprintf(out, "answers (status, Location, Content-Length, header names) identical for both: %v\n", same)
	if !same {
		for _, k := range []bool{true, false} {
			for s, n := range shape[k] {
				fmt.Fprintf(out, "  known=%v ×%d: %s\n", k, n, s)
			}
		}
	}
	return nil
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}
