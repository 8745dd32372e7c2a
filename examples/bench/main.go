// Command bench measures sspr in the example provider against the
// performance targets of the design (reset starts per second and their
// latency, completions, stored bytes per journey, and the timing side
// channel of account enumeration).
//
// It builds the example provider (go build ./examples/provider), runs it
// as a separate process on a free loopback port with a temporary data
// folder, SSPR_SEED_USERS load-test users and SSPR_RATE_LIMITS=off, waits
// until it answers, runs one benchmark from its own process, prints a
// report and stops the provider (SIGTERM, then waits). Run it from the
// module:
//
//	go run ./examples/bench -mode=throughput
//	go run ./examples/bench -mode=timing
//
// Built with -tags sqlite_dbstat it reports stored bytes per table (SQLite's
// dbstat); without, it reports the growth of the whole database.
//
// The provider and this command share the machine: the numbers include the
// load generator's own CPU. See examples/bench/BENCHMARKS.md for results.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	mode           string
	seedUsers      int
	duration       time.Duration
	warmup         time.Duration
	concurrency    []int
	completions    int
	completionConc int
	storageStarts  int
	samples        int
	timingWarmup   int
	timingGap      time.Duration
	cpuProfile     string
	providerBin    string
	keep           bool
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseInts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad concurrency %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func run(args []string, out io.Writer) error {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&o.mode, "mode", "throughput", `"throughput" (starts/s, completions, stored bytes) or "timing" (known vs unknown identifiers)`)
	fs.IntVar(&o.seedUsers, "seed-users", 10000, "load-test users the provider seeds (SSPR_SEED_USERS)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "throughput: measured time per concurrency level")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "throughput: unmeasured warm-up before each level")
	conc := fs.String("concurrency", "1,8,32", "throughput: concurrency levels (virtual users)")
	fs.IntVar(&o.completions, "completions", 200, "throughput: full journeys (start, code, new password); 0 skips them")
	fs.IntVar(&o.completionConc, "completion-concurrency", 2, "throughput: concurrency of the full journeys")
	fs.IntVar(&o.storageStarts, "storage-starts", 2000, "throughput: starts whose stored bytes are measured; 0 skips that")
	fs.IntVar(&o.samples, "samples", 3000, "timing: samples per class (known, unknown)")
	fs.IntVar(&o.timingWarmup, "timing-warmup", 300, "timing: unrecorded requests first")
	fs.DurationVar(&o.timingGap, "timing-gap", 0, "timing: client-side pause between requests, a diagnostic (lets the outbox worker finish first); never server-side padding")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write the provider's CPU profile to this file (SSPR_CPUPROFILE)")
	fs.StringVar(&o.providerBin, "provider", "", "use this provider binary instead of building ./examples/provider")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary folder (data, provider log)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	var err error
	if o.concurrency, err = parseInts(*conc); err != nil {
		return err
	}
	switch {
	case o.mode != "throughput" && o.mode != "timing":
		return fmt.Errorf(`-mode must be "throughput" or "timing", not %q`, o.mode)
	case o.seedUsers < 100 || o.seedUsers > 90000:
		return errors.New("-seed-users must be between 100 and 90000 (unknown identifiers come from above the seeded range)")
	case o.mode == "throughput" && o.completions > o.seedUsers/2:
		return errors.New("-completions must be at most half of -seed-users")
	case o.samples < 1 || o.completionConc < 1:
		return errors.New("-samples and -completion-concurrency must be positive")
	case o.completions < 0 || o.storageStarts < 0:
		return errors.New("-completions and -storage-starts must not be negative")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	tmp, err := os.MkdirTemp("", "sspr-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintf(out, "temporary folder (kept): %s\n", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	fmt.Fprintf(out, "machine: %s\n", machine())
	bin := o.providerBin
	if bin == "" {
		fmt.Fprintln(out, "building ./examples/provider …")
		if bin, err = buildProvider(ctx, tmp); err != nil {
			return err
		}
	}
	p, err := startProvider(ctx, bin, tmp, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "provider pid %d at %s (issuer %s), %d seeded users, rate limits off, ready in %s\n",
		p.cmd.Process.Pid, p.base, p.issuer, o.seedUsers, p.startup.Round(time.Millisecond))

	var benchErr error
	switch o.mode {
	case "throughput":
		benchErr = runThroughput(ctx, out, p, o)
	case "timing":
		benchErr = runTiming(ctx, out, p, o)
	}
	stopErr := p.stop()
	if benchErr != nil {
		fmt.Fprintf(os.Stderr, "bench: provider log %s, last lines:\n%s\n", p.logPath, tail(p.logPath, 20))
	}
	if stopErr == nil && o.cpuProfile != "" {
		fmt.Fprintf(out, "CPU profile of the provider: %s (go tool pprof -top -cum %s %s)\n", o.cpuProfile, bin, o.cpuProfile)
	}
	return errors.Join(benchErr, stopErr)
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// machine describes the CPUs and the load.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%d CPUs (%s), load average %s", numCPU(), model, loadavg())
}

// loadavg returns the 1, 5 and 15 minute load averages.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
