package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/sspr-go/sspr/examples/provider/server"
)

// Targets of the design ("Performance targets").
const (
	targetStartsPerSecond = 2500
	targetStartP99        = 5 * time.Millisecond
	targetConcurrency     = 8
	targetBytesPerJourney = 2048
)

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func passMiss(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

// startUser is one virtual user of the throughput run: it reads the start
// page once (cookie and CSRF token) and then posts one identifier per
// start, always with that first cookie and token (the token is bound to
// that cookie); it ignores the journey cookie each 303 sets.
type startUser struct {
	b   *browser
	rng *rand.Rand
}

// level is the result of one concurrency level.
type level struct {
	conc      int
	ok        int
	errs      int
	firstErr  error
	elapsed   time.Duration
	latencies []float64 // ms, successful POSTs in the window
	provCPU   time.Duration
	selfCPU   time.Duration
	load      string
}

func runThroughput(ctx context.Context, out io.Writer, p *provider, o options) error {
	transport := newTransport(max(32, slices.Max(o.concurrency)))
	defer transport.CloseIdleConnections()
	client := newClient(transport)
	// The last o.completions users are kept for the completions, which
	// read their code from the mailbox.
	knownN := o.seedUsers - o.completions

	fmt.Fprintf(out, "\n## Reset starts (known identifiers; GET the form once per virtual user, then one POST per start)\n")
	fmt.Fprintf(out, "%s measured per level after %s warm-up; latency of the POST on the client\n\n", o.duration, o.warmup)
	var levels []level
	for _, c := range o.concurrency {
		l, err := runLevel(ctx, p, client, c, knownN, o)
		if err != nil {
			return err
		}
		levels = append(levels, l)
		fmt.Fprintf(out, "  concurrency %d: %.0f starts/s, p99 %.2f ms, errors %d (load %s)\n",
			c, float64(l.ok)/l.elapsed.Seconds(), percentile(sorted(l.latencies), 0.99), l.errs, l.load)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(out)
	fmt.Fprintln(tw, "concurrency\tstarts\tstarts/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\terrors\tprovider CPU ms/start\tbench CPU ms/start\tCPU ceiling starts/s\tload after\t")
	for _, l := range levels {
		s := sorted(l.latencies)
		prov, self := ms(l.provCPU)/float64(max(l.ok, 1)), ms(l.selfCPU)/float64(max(l.ok, 1))
		fmt.Fprintf(tw, "%d\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t%.3f\t%.3f\t%.0f\t%s\t\n", l.conc, l.ok, float64(l.ok)/l.elapsed.Seconds(),
			percentile(s, 0.5), percentile(s, 0.9), percentile(s, 0.99), percentile(s, 1), l.errs,
			prov, self, float64(numCPU())*1000/(prov+self), l.load)
	}
	tw.Flush()
	fmt.Fprintf(out, "CPU ceiling: %d CPUs × 1000 ms ÷ (provider + bench CPU ms per start), the rate an otherwise idle machine could reach\n", numCPU())
	for _, l := range levels {
		if l.firstErr != nil {
			fmt.Fprintf(out, "first error at concurrency %d: %v\n", l.conc, l.firstErr)
		}
		if l.conc == targetConcurrency {
			rate := float64(l.ok) / l.elapsed.Seconds()
			p99 := time.Duration(percentile(sorted(l.latencies), 0.99) * float64(time.Millisecond))
			fmt.Fprintf(out, "\ntarget ≥ %d starts/s at concurrency %d: %.0f  %s\n", targetStartsPerSecond, targetConcurrency, rate, passMiss(rate >= targetStartsPerSecond))
			fmt.Fprintf(out, "target p99 ≤ %s at concurrency %d: %.2f ms  %s\n", targetStartP99, targetConcurrency, ms(p99), passMiss(p99 <= targetStartP99))
		}
	}

	db, err := openSSPRDB(ctx, p.dataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	drained, pending, err := db.drainOutbox(ctx, 5*time.Minute)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\noutbox after the starts: %d messages pending, delivered in %s\n", pending, drained.Round(time.Millisecond))

	if o.completions > 0 {
		if err := runCompletions(ctx, out, p, client, o); err != nil {
			return err
		}
	}
	if o.storageStarts == 0 {
		return nil
	}
	return runStorage(ctx, out, p, db, client, knownN, o)
}

// runLevel runs conc virtual users for warm-up plus duration and keeps the
// POSTs that began inside the measured window.
func runLevel(ctx context.Context, p *provider, client *http.Client, conc, knownN int, o options) (level, error) {
	users := make([]*startUser, conc)
	for i := range users {
		b := newBrowser(p, client)
		if _, err := b.get(ctx, "/recovery/"); err != nil {
			return level{}, err
		}
		if b.csrf == "" || len(b.cookies) == 0 {
			return level{}, errors.New("the start page set no cookie or has no csrf field")
		}
		users[i] = &startUser{b: b, rng: rand.New(rand.NewPCG(uint64(conc), uint64(i)))}
	}
	began := time.Now()
	from, to := began.Add(o.warmup), began.Add(o.warmup+o.duration)
	var mu sync.Mutex
	l := level{conc: conc}
	var provCPU0, selfCPU0 time.Duration
	var wg sync.WaitGroup
	cpuOnce := sync.OnceFunc(func() { provCPU0, selfCPU0 = p.cpuTime(), selfCPUTime() })
	time.AfterFunc(o.warmup, cpuOnce)
	for _, u := range users {
		wg.Go(func() {
			var lat []float64
			var ok, errs int
			var firstErr error
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(to) {
					break
				}
				email := server.LoadTestEmail(u.rng.IntN(knownN))
				r, err := u.b.post(ctx, "/recovery/", url.Values{"identifier": {email}}, false)
				if t0.Before(from) {
					continue
				}
				switch {
				case err != nil:
					errs++
					firstErr = cmpErr(firstErr, err)
				case !r.redirectsTo("/recovery/verify"):
					errs++
					firstErr = cmpErr(firstErr, fmt.Errorf("POST /recovery/: %v", r))
				default:
					ok++
					lat = append(lat, ms(r.latency))
				}
			}
			mu.Lock()
			l.ok += ok
			l.errs += errs
			l.latencies = append(l.latencies, lat...)
			if l.firstErr == nil {
				l.firstErr = firstErr
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	cpuOnce()
	l.elapsed = o.duration
	l.provCPU, l.selfCPU = p.cpuTime()-provCPU0, selfCPUTime()-selfCPU0
	l.load = loadavg()
	return l, ctx.Err()
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// runCompletions runs full journeys: start, read the code from the dev
// mailbox, post it, choose a new password.
func runCompletions(ctx context.Context, out io.Writer, p *provider, client *http.Client, o options) error {
	type journey = journeyTimes
	results := make([]journey, o.completions)
	next := make(chan int)
	errc := make(chan error, o.completionConc)
	var wg sync.WaitGroup
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	provCPU0 := p.cpuTime()
	began := time.Now()
	for range o.completionConc {
		wg.Go(func() {
			for i := range next {
				j, err := completeJourney(cctx, p, client, o.seedUsers-1-i, i)
				if err != nil {
					errc <- fmt.Errorf("journey %d: %w", i, err)
					cancel()
					return
				}
				results[i] = j
			}
		})
	}
feed:
	for i := range o.completions {
		select {
		case next <- i:
		case <-cctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	elapsed := time.Since(began)
	provCPU := p.cpuTime() - provCPU0
	select {
	case err := <-errc:
		return err
	default:
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	col := func(f func(journey) time.Duration) []float64 {
		xs := make([]float64, len(results))
		for i, r := range results {
			xs[i] = ms(f(r))
		}
		return sorted(xs)
	}
	fmt.Fprintf(out, "\n## Completions (%d full journeys at concurrency %d: start, code from the dev mailbox, POST code, POST new password)\n\n",
		o.completions, o.completionConc)
	fmt.Fprintf(out, "%.1f completions/s; provider CPU %.1f ms per journey (load %s)\n\n",
		float64(o.completions)/elapsed.Seconds(), ms(provCPU)/float64(o.completions), loadavg())
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "step\tp50 ms\tp99 ms\tmax ms\t")
	for _, c := range []struct {
		name string
		f    func(journey) time.Duration
	}{
		{"whole journey", func(j journey) time.Duration { return j.total }},
		{"POST identifier", func(j journey) time.Duration { return j.start }},
		{"wait for the email", func(j journey) time.Duration { return j.mail }},
		{"POST code", func(j journey) time.Duration { return j.verify }},
		{"POST new password", func(j journey) time.Duration { return j.password }},
	} {
		s := col(c.f)
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f\t\n", c.name, percentile(s, 0.5), percentile(s, 0.99), percentile(s, 1))
	}
	return tw.Flush()
}

// passwordWords spell a journey's number in its new password. sspr's
// policy refuses a password that contains one of the user's names, after
// reading digits as letters (0 as o, 1 as l, 7 as t …), and a load-test
// user's display name holds its five digits: so no word here has five
// letters in a row from "oalestbg", and none has "user", "load" or "test"
// (random hex did, and so did "cobalt", which holds user08417's "obalt").
var passwordWords = [10]string{"pumpkin", "crimson", "jury", "hickory", "mirth", "nimbus", "fjord", "zephyr", "wicker", "kindred"}

// newPassword returns the new password of journey n, unique per n.
func newPassword(n int) string {
	pw := "quiet violet harbour"
	for range 5 {
		pw += " " + passwordWords[n%10]
		n /= 10
	}
	return pw
}

// journeyTimes are the times of one full journey.
type journeyTimes struct {
	total, start, mail, verify, password time.Duration
}

// completeJourney resets the password of the load-test user idx.
func completeJourney(ctx context.Context, p *provider, client *http.Client, idx, n int) (j journeyTimes, err error) {
	began := time.Now()
	b := newBrowser(p, client)
	if _, err := b.get(ctx, "/recovery/"); err != nil {
		return j, err
	}
	email := server.LoadTestEmail(idx)
	sent := time.Now()
	r, err := b.post(ctx, "/recovery/", url.Values{"identifier": {email}}, true)
	if err != nil {
		return j, err
	}
	if !r.redirectsTo("/recovery/verify") {
		return j, fmt.Errorf("POST /recovery/: %v", r)
	}
	j.start = r.latency
	t := time.Now()
	code, err := waitForCode(ctx, client, p, email, sent.Add(-time.Second))
	if err != nil {
		return j, err
	}
	j.mail = time.Since(t)
	if _, err := b.get(ctx, "/recovery/verify"); err != nil {
		return j, err
	}
	r, err = b.post(ctx, "/recovery/verify", url.Values{"flow": {"email"}, "code": {code}}, true)
	if err != nil {
		return j, err
	}
	if !r.redirectsTo("/recovery/password") {
		return j, fmt.Errorf("POST /recovery/verify: %v", r)
	}
	j.verify = r.latency
	if _, err := b.get(ctx, "/recovery/password"); err != nil {
		return j, err
	}
	pw := newPassword(n)
	r, err = b.post(ctx, "/recovery/password", url.Values{"password": {pw}, "confirm": {pw}}, true)
	if err != nil {
		return j, err
	}
	if !r.redirectsTo("/recovery/done") {
		return j, fmt.Errorf("POST /recovery/password: %v", r)
	}
	j.password = r.latency
	j.total = time.Since(began)
	return j, nil
}

// runStorage measures what o.storageStarts starts add to sspr.db.
func runStorage(ctx context.Context, out io.Writer, p *provider, db *ssprDB, client *http.Client, knownN int, o options) error {
	if _, _, err := db.drainOutbox(ctx, 5*time.Minute); err != nil {
		return err
	}
	before, err := db.usage(ctx)
	if err != nil {
		return err
	}
	const conc = 8
	var wg sync.WaitGroup
	errc := make(chan error, conc)
	for w := range conc {
		wg.Go(func() {
			b := newBrowser(p, client)
			if _, err := b.get(ctx, "/recovery/"); err != nil {
				errc <- err
				return
			}
			rng := rand.New(rand.NewPCG(99, uint64(w)))
			for i := w; i < o.storageStarts; i += conc {
				r, err := b.post(ctx, "/recovery/", url.Values{"identifier": {server.LoadTestEmail(rng.IntN(knownN))}}, false)
				if err == nil && !r.redirectsTo("/recovery/verify") {
					err = fmt.Errorf("POST /recovery/: %v", r)
				}
				if err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
	}
	if _, _, err := db.drainOutbox(ctx, 5*time.Minute); err != nil {
		return err
	}
	after, err := db.usage(ctx)
	if err != nil {
		return err
	}
	n := float64(o.storageStarts)
	fmt.Fprintf(out, "\n## Stored bytes per live journey (%d starts with known identifiers at concurrency %d, messages delivered)\n\n", o.storageStarts, conc)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	var perJourney float64
	if db.dbstat {
		fmt.Fprintln(tw, "table (with its indexes)\trows/start\tpage bytes/start\tpayload bytes/start\t")
		var tp, tl int64
		for _, t := range journeyTables {
			dp, dl := after.pages[t]-before.pages[t], after.payload[t]-before.payload[t]
			tp, tl = tp+dp, tl+dl
			fmt.Fprintf(tw, "%s\t%.2f\t%.0f\t%.0f\t\n", t, float64(after.rows[t]-before.rows[t])/n, float64(dp)/n, float64(dl)/n)
		}
		fmt.Fprintf(tw, "total\t\t%.0f\t%.0f\t\n", float64(tp)/n, float64(tl)/n)
		tw.Flush()
		perJourney = float64(tp) / n
		fmt.Fprintf(out, "\npage bytes: sum(pgsize) of the tables' B-trees in dbstat; payload bytes: sum(payload), the records alone\n")
	} else {
		fmt.Fprintln(tw, "table\trows/start\t")
		for _, t := range journeyTables {
			fmt.Fprintf(tw, "%s\t%.2f\t\n", t, float64(after.rows[t]-before.rows[t])/n)
		}
		tw.Flush()
		perJourney = float64(after.used-before.used) / n
		fmt.Fprintf(out, "\nno dbstat in this build (go run -tags sqlite_dbstat for per-table bytes): growth of the whole database, (page_count − freelist_count) × page_size\n")
	}
	fmt.Fprintf(out, "a queued reset message's sealed payload: %.0f bytes on average until delivery (then NULL)\n", db.queuedPayload)
	fmt.Fprintf(out, "target ≤ %d bytes stored per live journey: %.0f  %s\n",
		targetBytesPerJourney, perJourney, passMiss(perJourney <= targetBytesPerJourney))
	dbSize, walSize := db.fileSizes()
	fmt.Fprintf(out, "sspr.db %d bytes, sspr.db-wal %d bytes; used pages grew %.0f bytes/start\n",
		dbSize, walSize, float64(after.used-before.used)/n)
	return nil
}
