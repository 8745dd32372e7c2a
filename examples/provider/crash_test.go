package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"html"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	// The test reads the provider's SQLite files after each kill and at
	// the end.
	_ "github.com/mattn/go-sqlite3"

	"github.com/sspr-go/sspr/examples/provider/server"
	"github.com/sspr-go/sspr/plugin"
	"github.com/sspr-go/sspr/plugin/notify/smtptest"
	"github.com/sspr-go/sspr/plugin/password"
)

const (
	crashWorkers   = 8
	crashPerWorker = 20
	// crashUsers are the seeded users: each worker resets its own ones, at
	// most once each; the last one is never reset, so its hash is the
	// seeded one (every seeded user starts with the same hash string).
	crashUsers = crashWorkers*crashPerWorker + 1

	crashReadyTimeout   = time.Minute
	crashPhaseTimeout   = 90 * time.Second
	crashCodeTimeout    = 15 * time.Second
	crashTriggerTimeout = 10 * time.Second
	crashHeldTimeout    = 3 * time.Second
	// crashLockTimeout is how long crashInWindow holds sspr.db's write
	// lock at most, well below the provider's 5 s busy timeout.
	crashLockTimeout = 2 * time.Second
	// crashDrainTimeout bounds the wait for the outbox after the last
	// restart: messages held by an interrupted completion are due 30 s
	// after it began, and messages a killed worker had claimed are
	// claimed again when its 1-minute lease ends.
	crashDrainTimeout = 2 * time.Minute
	crashStopTimeout  = 30 * time.Second
)

// Lines of the provider's log (slog's text format, see main.go) that the
// kills wait for, both written by server.Directory.
const (
	linePasswordChanged = `msg="password changed"`
	lineSessionsRevoked = `msg="sessions revoked"`
)

// lineTime finds the time of a log line; changedLine the time and the
// user of a "password changed" line.
var (
	lineTime    = regexp.MustCompile(`^time=(\S+) `)
	changedLine = regexp.MustCompile(`^time=(\S+) .*msg="password changed" user=(\S+)`)
)

// TestCrashSafety runs the example provider as a child process, drives a
// stream of whole password resets through its pages (8 workers, each
// resetting its own seeded users: start, code from the SMTP inbox, code,
// new password), SIGKILLs it three times — while a password change is
// past the directory's SetPassword but not yet recorded, at a
// RevokeSessions, and at a random moment — restarting it each time on the
// same data folder and port, stops it cleanly and proves:
//
//   - no queued message lost: every reset start that got its 303 has its
//     code email delivered, before or after a restart (the start's
//     transaction committed before the answer);
//   - no changed password without its consequences: every user whose
//     stored password is the one its journey chose got a "password
//     changed" email and has a "sessions.revoke" audit event with outcome
//     "ok" no earlier than the change; a password POST that got its 303
//     did change the password; no other password changed;
//   - no journey usable past its end: a journey completed before a kill
//     does not reach the password form again after the restart, and no
//     restart extends a journey (every stored expiry is creation + TTL,
//     and what a killed process left is what the end finds).
//
// Messages held by an interrupted completion go out 30 s after it began,
// and messages a killed worker had claimed go out when its 1-minute lease
// ends, so the test takes about 75 s.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the provider and SIGKILLs it during a stream of resets; skipped with -short")
	}
	began := time.Now()
	ctx := t.Context()
	dir := t.TempDir()
	bin := buildCrashProvider(t, dir)
	mail := smtptest.NewServer(t)
	port := crashFreePort(t)
	p := newCrashProvider(t, bin, dir, port, mail.URL())

	if err := p.start(ctx); err != nil {
		t.Fatalf("first start: %v\n%s", err, p.tail(40))
	}
	c := &crashTest{
		t:    t,
		p:    p,
		mail: mail,
		client: &http.Client{
			// A fresh connection per request: an error then means the
			// process died, never a stale pooled connection.
			Transport:     &http.Transport{DisableKeepAlives: true, DisableCompression: true},
			Timeout:       30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		done: make(chan *crashJourney, crashUsers),
	}
	workCtx, stopWork := context.WithCancel(ctx)
	defer stopWork()
	var wg sync.WaitGroup
	c.working.Store(crashWorkers)
	for w := range crashWorkers {
		wg.Go(func() {
			defer c.working.Add(-1)
			c.worker(workCtx, w)
		})
	}

	// The kills: one while a password change is past the directory's
	// SetPassword but not yet recorded, the moment the held notices and
	// revocation exist for; one at the directory's RevokeSessions (racing
	// the record of the change); one at a random moment of the stream.
	plans := []struct {
		name string
		kill func() (how string, release func(), err error)
	}{
		{"between SetPassword and its record", func() (string, func(), error) { return p.crashInWindow(ctx) }},
		{"after a RevokeSessions", func() (string, func(), error) {
			how, err := p.crash(lineSessionsRevoked, time.Time{}, crashTriggerTimeout)
			return how, func() {}, err
		}},
		{"at a random moment", func() (string, func(), error) {
			how, err := p.crash("", time.Time{}, 0)
			return how, func() {}, err
		}},
	}
	var snapshots []map[string]journeyRow
	for _, plan := range plans {
		if err := c.waitCompletions(ctx, 2+rand.IntN(4)); err != nil {
			t.Fatalf("before the kill %s: %v\n%s", plan.name, err, p.tail(40))
		}
		how, release, err := plan.kill()
		if err != nil {
			t.Fatalf("kill %s: %v\n%s", plan.name, err, p.tail(40))
		}
		c.kills = append(c.kills, how)
		t.Logf("%s: killed %s", time.Since(began).Round(time.Millisecond), how)
		// What the killed process left, before a new one touches it.
		rows, err := readJourneys(ctx, p.ssprPath())
		if err != nil {
			t.Fatalf("after the kill %s: %v", plan.name, err)
		}
		snapshots = append(snapshots, rows)
		completed := c.takeDone()
		err = p.start(ctx)
		release()
		if err != nil {
			t.Fatalf("restart after the kill %s: %v\n%s", plan.name, err, p.tail(40))
		}
		for _, j := range completed {
			c.replay(ctx, j)
		}
	}
	// Let the stream go on a little on the last process, then let every
	// worker finish its journey.
	if err := c.waitCompletions(ctx, 3); err != nil {
		t.Fatalf("after the last restart: %v\n%s", err, p.tail(40))
	}
	c.stopping.Store(true)
	workersDone := make(chan struct{})
	go func() { wg.Wait(); close(workersDone) }()
	select {
	case <-workersDone:
	case <-time.After(crashPhaseTimeout):
		stopWork()
		<-workersDone
		t.Errorf("the workers did not finish their journeys within %s", crashPhaseTimeout)
	}
	t.Logf("%s: workers done, draining", time.Since(began).Round(time.Millisecond))
	if err := drainOutbox(ctx, p.ssprPath(), crashDrainTimeout); err != nil {
		t.Errorf("outbox: %v", err)
	}
	t.Logf("%s: drained", time.Since(began).Round(time.Millisecond))
	if err := p.stop(); err != nil {
		t.Errorf("stop: %v\n%s", err, p.tail(40))
	}
	if n := p.raceReports(); n > 0 {
		t.Errorf("the provider reported %d data races; see %s", n, p.logPath)
	}

	c.check(ctx, snapshots)
	t.Logf("crash test took %s", time.Since(began).Round(100*time.Millisecond))
	if t.Failed() {
		t.Logf("provider log %s, last lines:\n%s", p.logPath, p.tail(60))
	}
}

// buildCrashProvider builds this package into dir, with the race detector
// when the test runs with it.
func buildCrashProvider(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "provider")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, ".")
	out, err := exec.CommandContext(t.Context(), "go", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// crashFreePort returns a loopback port nobody listens on right now; every
// start of the provider uses it.
func crashFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// crashProvider is the provider as a child process that is killed and
// started again on the same data folder and port. It is the writer of the
// process's output: it logs it to a file, kills the process at a line when
// asked to, and remembers when each user's password changed.
type crashProvider struct {
	bin, base, dataDir, logPath string
	env                         []string

	mu         sync.Mutex
	log        *os.File
	partial    []byte // an output line not yet complete
	generation int
	run        *providerRun
	up         chan struct{} // closed while run serves
	serving    bool
	// trigger: kill at the next line that contains it, logged at or after
	// triggerAfter (to the millisecond) unless that is zero.
	trigger      string
	triggerAfter time.Time
	killedBy     string
	changed      map[string]time.Time // user ID → time of the last "password changed" line
	races        int
}

// providerRun is one process.
type providerRun struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // set before exited is closed
}

func newCrashProvider(t *testing.T, bin, dir string, port int, smtpURL string) *crashProvider {
	t.Helper()
	p := &crashProvider{
		bin:     bin,
		base:    "http://127.0.0.1:" + strconv.Itoa(port),
		dataDir: filepath.Join(dir, "data"),
		logPath: filepath.Join(dir, "provider.log"),
		up:      make(chan struct{}),
		changed: map[string]time.Time{},
	}
	var err error
	if p.log, err = os.Create(p.logPath); err != nil {
		t.Fatal(err)
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SSPR_") {
			p.env = append(p.env, kv)
		}
	}
	p.env = append(p.env,
		"SSPR_ADDR=127.0.0.1:"+strconv.Itoa(port),
		"SSPR_ISSUER="+p.base,
		"SSPR_DATA="+p.dataDir,
		"SSPR_SMTP="+smtpURL,
		"SSPR_SEED_USERS="+strconv.Itoa(crashUsers),
		"SSPR_RATE_LIMITS=off",
	)
	t.Cleanup(func() {
		p.mu.Lock()
		run := p.run
		p.mu.Unlock()
		if run != nil {
			select {
			case <-run.exited:
			default:
				_ = run.cmd.Process.Kill()
				<-run.exited
			}
		}
		p.log.Close()
	})
	return p
}

func (p *crashProvider) ssprPath() string     { return filepath.Join(p.dataDir, "sspr.db") }
func (p *crashProvider) providerPath() string { return filepath.Join(p.dataDir, "provider.db") }

// start starts a process and waits until it answers its discovery
// document; then ready() is closed.
func (p *crashProvider) start(ctx context.Context) error {
	cmd := exec.Command(p.bin)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = p, p
	run := &providerRun{cmd: cmd, exited: make(chan struct{})}
	p.mu.Lock()
	p.generation++
	p.run, p.trigger, p.triggerAfter, p.killedBy, p.partial = run, "", time.Time{}, "", nil
	fmt.Fprintf(p.log, "\n=== crash test: process %d\n", p.generation)
	p.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start provider: %w", err)
	}
	go func() {
		run.err = cmd.Wait()
		close(run.exited)
	}()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.NewTimer(crashReadyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get(p.base + "/.well-known/openid-configuration")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-run.exited:
			return fmt.Errorf("provider exited before it answered: %v", run.err)
		case <-deadline.C:
			return fmt.Errorf("provider did not answer within %s", crashReadyTimeout)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.killedBy == "" {
		close(p.up)
		p.serving = true
	}
	return nil
}

// ready returns a channel that is closed while a process serves.
func (p *crashProvider) ready() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.up
}

// killLocked sends SIGKILL to the process, once.
func (p *crashProvider) killLocked(how string) {
	if p.killedBy != "" {
		return
	}
	p.killedBy = how
	if p.serving {
		p.up = make(chan struct{})
		p.serving = false
	}
	_ = p.run.cmd.Process.Kill()
}

// crash kills the process at its next output line that contains line
// (and, unless after is zero, was logged after it), or at once when line
// is empty; it waits until the process is gone and says how it died. A
// line that does not come within timeout kills it then.
func (p *crashProvider) crash(line string, after time.Time, timeout time.Duration) (string, error) {
	p.mu.Lock()
	run := p.run
	if line == "" {
		p.killLocked("at once")
	} else {
		p.trigger, p.triggerAfter = line, after
	}
	p.mu.Unlock()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-run.exited:
	case <-timer.C:
		p.mu.Lock()
		p.killLocked(fmt.Sprintf("after %s without a line %s", timeout, line))
		p.mu.Unlock()
		<-run.exited
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.killedBy == "" {
		return "", fmt.Errorf("the provider exited by itself: %v", run.err)
	}
	return p.killedBy, nil
}

// heldMessages counts the messages that completions of this process
// queued held in their first step and have not released yet
// (plugin/completion.go holds the notices and the revocation job for
// 30 s; releasing makes them due now). A message waiting after a failed
// attempt has attempts > 0.
const heldMessages = `SELECT count(*) FROM outbox
	WHERE sent_at IS NULL AND dead = 0 AND attempts = 0 AND created_at > ? AND next_attempt_at > ?`

// crashInWindow kills the process while a password change is past the
// directory's SetPassword but not yet recorded (between steps 2 and 3 of
// plugin/completion.go). A kill there by chance is rare, the window being
// a few milliseconds, so it widens it: it waits until a completion has
// queued its held messages, takes sspr.db's write lock, so that no
// completion can record itself, and kills at the first "password changed"
// line the directory logs after that (or after crashLockTimeout: the
// change came before the lock).
// Without held messages within crashHeldTimeout it kills at the next
// "password changed" line instead. The returned func closes the lock's
// connection: call it after the restart, so that this connection is not
// the last one, which would checkpoint what the killed process left.
func (p *crashProvider) crashInWindow(ctx context.Context) (string, func(), error) {
	db, err := sql.Open("sqlite3", "file:"+p.ssprPath()+"?_busy_timeout=5000&_txlock=immediate")
	if err != nil {
		return "", nil, err
	}
	db.SetMaxOpenConns(1)
	release := func() { db.Close() }
	since := time.Now().UnixNano()
	deadline := time.NewTimer(crashHeldTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		due := time.Now().Add(10 * time.Second).UnixNano()
		var n int
		if err := db.QueryRowContext(ctx, heldMessages, since, due).Scan(&n); err != nil {
			release()
			return "", nil, fmt.Errorf("look for held messages: %w", err)
		}
		if n > 0 {
			how, err := p.lockAndCrash(ctx, db, since, due)
			if err != nil {
				release()
				return "", nil, err
			}
			if how != "" {
				return how, release, nil
			}
		}
		select {
		case <-deadline.C:
			how, err := p.crash(linePasswordChanged, time.Time{}, crashTriggerTimeout)
			return fmt.Sprintf("no held message within %s, %s", crashHeldTimeout, how), release, err
		case <-ctx.Done():
			release()
			return "", nil, ctx.Err()
		case <-tick.C:
		}
	}
}

// lockAndCrash holds sspr.db's write lock and, if a held message is
// still held under it, kills the process (see crashInWindow). It returns
// "" when the completion recorded itself before the lock.
func (p *crashProvider) lockAndCrash(ctx context.Context, db *sql.DB, since, due int64) (string, error) {
	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: the write lock
	if err != nil {
		return "", fmt.Errorf("lock sspr.db: %w", err)
	}
	defer tx.Rollback()
	locked := time.Now()
	var n int
	if err := tx.QueryRowContext(ctx, heldMessages, since, due).Scan(&n); err != nil {
		return "", fmt.Errorf("look for held messages: %w", err)
	}
	if n == 0 {
		return "", nil
	}
	how, err := p.crash(linePasswordChanged, locked, crashLockTimeout)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("holding sspr.db's write lock with %d messages held, %s", n, how), nil
}

// stop ends the process with SIGTERM, as an operator would.
func (p *crashProvider) stop() error {
	p.mu.Lock()
	run := p.run
	p.killedBy = "SIGTERM"
	if p.serving {
		p.up = make(chan struct{})
		p.serving = false
	}
	p.mu.Unlock()
	if err := run.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	timer := time.NewTimer(crashStopTimeout)
	defer timer.Stop()
	select {
	case <-run.exited:
		return run.err
	case <-timer.C:
		_ = run.cmd.Process.Kill()
		<-run.exited
		return fmt.Errorf("no exit within %s of SIGTERM", crashStopTimeout)
	}
}

// Write takes the process's output (stdout and stderr).
func (p *crashProvider) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		p.lineLocked(string(p.partial[:i]))
		p.partial = p.partial[i+1:]
	}
	_, _ = p.log.Write(b)
	return len(b), nil
}

func (p *crashProvider) lineLocked(line string) {
	if p.trigger != "" && strings.Contains(line, p.trigger) && p.loggedAfter(line, p.triggerAfter) {
		p.killLocked("at the line " + line)
	}
	if m := changedLine.FindStringSubmatch(line); m != nil {
		if at, err := time.Parse(time.RFC3339Nano, m[1]); err == nil {
			p.changed[m[2]] = at
		}
	}
	if strings.Contains(line, "WARNING: DATA RACE") {
		p.races++
	}
}

// loggedAfter reports whether line's time (slog's, to the millisecond)
// is surely after t; always when t is zero.
func (p *crashProvider) loggedAfter(line string, t time.Time) bool {
	if t.IsZero() {
		return true
	}
	m := lineTime.FindStringSubmatch(line)
	if m == nil {
		return false
	}
	at, err := time.Parse(time.RFC3339Nano, m[1])
	return err == nil && !at.Before(t.Truncate(time.Millisecond).Add(time.Millisecond))
}

// changedAt returns when the provider logged the last change of user's
// password (to the millisecond), or the zero time.
func (p *crashProvider) changedAt(user string) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.changed[user]
}

func (p *crashProvider) raceReports() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.races
}

// tail returns the last n lines of the provider's log.
func (p *crashProvider) tail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// crashJourney is one reset of one user, and what its worker knows of it.
type crashJourney struct {
	user, email, password string

	started  bool // the start answered 303 to /recovery/verify
	posted   bool // the new password was sent; it may not have arrived
	done     bool // the new password answered 303 to /recovery/done
	replayed bool // after a restart, its cookie was tried on the password form
	stopped  string

	b *crashBrowser
}

// crashTest is the state the workers and the checks share.
type crashTest struct {
	t      *testing.T
	p      *crashProvider
	mail   *smtptest.Server
	client *http.Client

	completed atomic.Int64
	working   atomic.Int64 // workers that still have users to reset
	stopping  atomic.Bool
	done      chan *crashJourney // completed journeys, for the replays

	mu       sync.Mutex
	journeys []*crashJourney
	kills    []string
}

// worker resets its users one after another, one journey each, until it
// runs out of users or is told to stop.
func (c *crashTest) worker(ctx context.Context, w int) {
	for i := w; i < crashWorkers*crashPerWorker; i += crashWorkers {
		select {
		case <-c.p.ready():
		case <-ctx.Done():
			return
		}
		if c.stopping.Load() {
			return
		}
		user := server.LoadTestUsername(i)
		j := &crashJourney{user: user, email: server.LoadTestEmail(i), password: crashPassword(i)}
		c.mu.Lock()
		c.journeys = append(c.journeys, j)
		c.mu.Unlock()
		c.journey(ctx, j)
		if j.done {
			c.completed.Add(1)
			c.done <- j // never blocks: one slot per user
		}
	}
}

// journey runs j's whole reset. It records how far the answers came; an
// error on the way (the process was killed) ends the journey, an
// unexpected answer fails the test.
func (c *crashTest) journey(ctx context.Context, j *crashJourney) {
	b := &crashBrowser{client: c.client, base: c.p.base, cookies: map[string]string{}}
	j.b = b
	step := func(method, path string, form url.Values, want string) bool {
		a, err := b.do(ctx, method, path, form)
		if err != nil {
			j.stopped = fmt.Sprintf("%s %s: %v", method, path, err)
			return false
		}
		if !a.is(want) {
			c.t.Errorf("%s: %s %s: want %s, got %s", j.user, method, path, want, a)
			j.stopped = "unexpected answer"
			return false
		}
		return true
	}
	if !step(http.MethodGet, "/recovery/", nil, "200") ||
		!step(http.MethodPost, "/recovery/", url.Values{"identifier": {j.email}}, "/recovery/verify") {
		return
	}
	j.started = true
	code, err := c.waitCode(ctx, j.email)
	if err != nil {
		// The message may be held by a killed worker's lease; the check
		// at the end waits for it.
		j.stopped = err.Error()
		return
	}
	if !step(http.MethodGet, "/recovery/verify", nil, "200") ||
		!step(http.MethodPost, "/recovery/verify", url.Values{"flow": {"email"}, "code": {code}}, "/recovery/password") {
		return
	}
	if !step(http.MethodGet, "/recovery/password", nil, "200") {
		return
	}
	j.posted = true
	if !step(http.MethodPost, "/recovery/password", url.Values{"password": {j.password}, "confirm": {j.password}}, "/recovery/done") {
		return
	}
	j.done = true
}

// codeIn finds the emailed code: 8 digits at the end of a line.
var codeIn = regexp.MustCompile(`(?m)\s(\d{8})\s*$`)

// isResetMail reports whether m is a reset email (with the code), by its
// subject in the English catalog.
func isResetMail(m smtptest.Message) bool {
	return strings.HasPrefix(m.Subject, "Reset your ")
}

// isChangedMail reports whether m is a "your password was changed" notice.
func isChangedMail(m smtptest.Message) bool {
	return strings.Contains(m.Subject, " password was changed")
}

// waitCode waits for the reset email to addr and returns its code.
func (c *crashTest) waitCode(ctx context.Context, addr string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, crashCodeTimeout)
	defer cancel()
	for n := 1; ; n++ {
		if _, err := c.mail.Wait(ctx, addr, n); err != nil {
			return "", err
		}
		for _, m := range c.mail.To(addr) {
			if sm := codeIn.FindStringSubmatch(m.Text); isResetMail(m) && sm != nil {
				return sm[1], nil
			}
		}
	}
}

// waitCompletions waits until n more journeys completed.
func (c *crashTest) waitCompletions(ctx context.Context, n int) error {
	target := c.completed.Load() + int64(n)
	deadline := time.NewTimer(crashPhaseTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for c.completed.Load() < target {
		if c.working.Load() == 0 {
			return fmt.Errorf("the workers ran out of users after %d of %d completions", c.completed.Load()-target+int64(n), n)
		}
		select {
		case <-deadline.C:
			return fmt.Errorf("%d of %d completions within %s", c.completed.Load()-target+int64(n), n, crashPhaseTimeout)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// takeDone returns the journeys completed since the last call.
func (c *crashTest) takeDone() []*crashJourney {
	var out []*crashJourney
	for {
		select {
		case j := <-c.done:
			out = append(out, j)
		default:
			return out
		}
	}
}

// replay tries the cookie of j, completed before a kill, on the password
// form of the restarted process: the form must not show, and a POST must
// not set a password.
func (c *crashTest) replay(ctx context.Context, j *crashJourney) {
	j.replayed = true
	a, err := j.b.do(ctx, http.MethodGet, "/recovery/password", nil)
	if err != nil {
		c.t.Errorf("%s: replay: GET /recovery/password: %v", j.user, err)
		return
	}
	if a.is("200") && strings.Contains(a.body, `name="password"`) {
		c.t.Errorf("%s: a journey completed before the kill shows the password form after the restart", j.user)
	}
	other := j.password + " again"
	a, err = j.b.do(ctx, http.MethodPost, "/recovery/password", url.Values{"password": {other}, "confirm": {other}})
	if err != nil {
		c.t.Errorf("%s: replay: POST /recovery/password: %v", j.user, err)
		return
	}
	if a.is("/recovery/done") {
		c.t.Errorf("%s: after the restart, a journey completed before the kill answered a new password with %s", j.user, a)
	}
}

// crashPassword returns the new password of user i; sspr's policy refuses
// passwords that contain the user's names, so it spells i in words.
func crashPassword(i int) string {
	words := [10]string{"pumpkin", "crimson", "jury", "hickory", "mirth", "nimbus", "fjord", "zephyr", "wicker", "kindred"}
	pw := "quiet violet harbour"
	for range 3 {
		pw += " " + words[i%10]
		i /= 10
	}
	return pw
}

// crashBrowser keeps one journey's cookies and the CSRF token of the last
// page it read.
type crashBrowser struct {
	client  *http.Client
	base    string
	cookies map[string]string
	csrf    string
}

// crashAnswer is a whole answer: it arrived.
type crashAnswer struct {
	status   int
	location string
	body     string
}

// is reports whether a is a 303 to want (a path), or has the status want.
func (a crashAnswer) is(want string) bool {
	if strings.HasPrefix(want, "/") {
		u, err := url.Parse(a.location)
		return a.status == http.StatusSeeOther && err == nil && u.Path == want
	}
	return strconv.Itoa(a.status) == want
}

func (a crashAnswer) String() string {
	s := fmt.Sprintf("status %d", a.status)
	if a.location != "" {
		s += fmt.Sprintf(", Location %q", a.location)
	}
	if m := alertIn.FindStringSubmatch(a.body); m != nil {
		s += fmt.Sprintf(", page says %q", strings.Join(strings.Fields(html.UnescapeString(tagIn.ReplaceAllString(m[1], " "))), " "))
	}
	return s
}

var (
	csrfIn  = regexp.MustCompile(`<input\b[^>]*\bname="csrf"[^>]*\bvalue="([^"]*)"`)
	alertIn = regexp.MustCompile(`(?s)role="alert"[^>]*>(.*?)</`)
	tagIn   = regexp.MustCompile(`<[^>]*>`)
)

// do sends a request (a form with the CSRF token and the Origin for a
// POST) and reads the whole answer. An error means no whole answer came.
func (b *crashBrowser) do(ctx context.Context, method, path string, form url.Values) (crashAnswer, error) {
	var body io.Reader
	if form != nil {
		form.Set("csrf", b.csrf)
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, b.base+path, body)
	if err != nil {
		return crashAnswer{}, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", b.base)
	}
	for name, value := range b.cookies {
		req.AddCookie(&http.Cookie{Name: name, Value: value})
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return crashAnswer{}, err
	}
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return crashAnswer{}, err
	}
	for _, ck := range resp.Cookies() {
		if ck.MaxAge < 0 {
			delete(b.cookies, ck.Name)
		} else {
			b.cookies[ck.Name] = ck.Value
		}
	}
	if m := csrfIn.FindSubmatch(page); m != nil {
		b.csrf = html.UnescapeString(string(m[1]))
	}
	return crashAnswer{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(page)}, nil
}

// openSQLite opens a database of the provider read-only.
func openSQLite(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// journeyRow is a stored journey's times, in Unix nanoseconds (0 for
// NULL).
type journeyRow struct {
	created, expires, completed int64
}

// readJourneys reads every stored journey.
func readJourneys(ctx context.Context, path string) (map[string]journeyRow, error) {
	db, err := openSQLite(path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT id, coalesce(created_at, 0), coalesce(expires_at, 0), coalesce(completed_at, 0) FROM journeys`)
	if err != nil {
		return nil, fmt.Errorf("read journeys: %w", err)
	}
	defer rows.Close()
	out := map[string]journeyRow{}
	for rows.Next() {
		var id string
		var r journeyRow
		if err := rows.Scan(&id, &r.created, &r.expires, &r.completed); err != nil {
			return nil, fmt.Errorf("read journeys: %w", err)
		}
		out[id] = r
	}
	return out, rows.Err()
}

// drainOutbox waits until every queued message was sent (or given up),
// held and leased ones included.
func drainOutbox(ctx context.Context, path string, timeout time.Duration) error {
	db, err := openSQLite(path)
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM outbox WHERE sent_at IS NULL AND dead = 0`).Scan(&n); err != nil {
			return fmt.Errorf("count pending messages: %w", err)
		}
		if n == 0 {
			return nil
		}
		select {
		case <-deadline.C:
			return fmt.Errorf("%d messages still pending after %s", n, timeout)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// check proves the three properties on what the provider left after its
// last, clean stop.
func (c *crashTest) check(ctx context.Context, snapshots []map[string]journeyRow) {
	t := c.t
	type userRow struct {
		hash      string
		changedAt int64 // Unix seconds
	}
	users := map[string]userRow{}
	revokes := map[string][]int64{} // user → times of sessions.revoke "ok"
	var byOutbox int
	err := func() error {
		db, err := openSQLite(c.p.providerPath())
		if err != nil {
			return err
		}
		defer db.Close()
		rows, err := db.QueryContext(ctx, `SELECT id, password_hash, password_changed_at FROM users`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var u userRow
			if err := rows.Scan(&id, &u.hash, &u.changedAt); err != nil {
				return err
			}
			users[id] = u
		}
		if err := rows.Err(); err != nil {
			return err
		}
		sdb, err := openSQLite(c.p.ssprPath())
		if err != nil {
			return err
		}
		defer sdb.Close()
		arows, err := sdb.QueryContext(ctx, `SELECT user_id, coalesce(time, 0), detail FROM audit WHERE event = 'sessions.revoke' AND outcome = 'ok'`)
		if err != nil {
			return err
		}
		defer arows.Close()
		for arows.Next() {
			var user, detail string
			var at int64
			if err := arows.Scan(&user, &at, &detail); err != nil {
				return err
			}
			revokes[user] = append(revokes[user], at)
			if strings.HasPrefix(detail, "by the outbox") {
				byOutbox++
			}
		}
		return arows.Err()
	}()
	if err != nil {
		t.Fatalf("read the stores: %v", err)
	}
	final, err := readJourneys(ctx, c.p.ssprPath())
	if err != nil {
		t.Fatal(err)
	}

	resets, changes := map[string]int{}, map[string]int{}
	for _, m := range c.mail.Messages() {
		for _, to := range m.To {
			to = strings.ToLower(to)
			switch {
			case isResetMail(m):
				resets[to]++
			case isChangedMail(m):
				changes[to]++
			}
		}
	}

	seedHash := users[server.LoadTestUsername(crashUsers-1)].hash
	if seedHash == "" {
		t.Fatal("the control user is missing from provider.db")
	}
	hasher, err := password.NewHasher(password.HasherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var started, done, cut, cutChanged, changed, replayed int
	touched := map[string]bool{}
	for _, j := range c.journeys {
		touched[j.user] = true
		u, ok := users[j.user]
		if !ok {
			t.Errorf("%s: missing from provider.db", j.user)
			continue
		}
		if j.started {
			started++
			// Property 1: the start's answer came after its commit.
			if resets[j.email] == 0 {
				t.Errorf("%s: the start answered 303, but its code email never arrived", j.user)
			}
		}
		if j.done {
			done++
		}
		if j.replayed {
			replayed++
		}
		if j.posted && !j.done {
			cut++
		}
		if u.hash == seedHash {
			if j.done {
				t.Errorf("%s: the password POST answered 303 to /recovery/done, but the stored password is still the seeded one", j.user)
			}
			continue
		}
		// The password changed: it must be this journey's, set by its POST.
		changed++
		if !j.posted {
			t.Errorf("%s: the stored password changed although no password was posted (journey stopped: %s)", j.user, j.stopped)
		}
		if ok, err := hasher.Verify(ctx, j.password, u.hash); err != nil || !ok {
			t.Errorf("%s: the stored password is neither the seeded one nor the journey's (verify: %v, %v); a replay set it?", j.user, ok, err)
		}
		if j.posted && !j.done {
			cutChanged++
		}
		// Property 2: the notice and the revocation go with the change.
		if changes[j.email] == 0 {
			t.Errorf("%s: the password changed (POST answered: %v), but no \"password changed\" email arrived", j.user, j.done)
		}
		change := time.Unix(u.changedAt, 0)
		if logged := c.p.changedAt(j.user); logged.After(change) {
			change = logged
		}
		revoked := slices.ContainsFunc(revokes[j.user], func(at int64) bool { return at >= change.UnixNano() })
		if !revoked {
			t.Errorf("%s: the password changed at %s (POST answered: %v), but no sessions.revoke audit event with outcome ok came after it (found %d before)",
				j.user, change.Format(time.RFC3339Nano), j.done, len(revokes[j.user]))
		}
	}
	for id, u := range users {
		if strings.HasPrefix(id, "user") && !touched[id] && u.hash != seedHash {
			t.Errorf("%s: password changed although no journey was run for it", id)
		}
	}

	// Property 3: no restart extends a journey.
	ttl := plugin.DefaultJourneyTTL.Nanoseconds()
	for id, r := range final {
		if r.expires-r.created != ttl {
			t.Errorf("journey %s: stored expiry is creation + %s, want + %s", id, time.Duration(r.expires-r.created), plugin.DefaultJourneyTTL)
		}
	}
	for k, snap := range snapshots {
		for id, before := range snap {
			after, ok := final[id]
			switch {
			case !ok:
				t.Errorf("journey %s, left by killed process %d, is gone (it has not expired)", id, k+1)
			case after.created != before.created || after.expires != before.expires:
				t.Errorf("journey %s: created/expires %d/%d when process %d was killed, %d/%d at the end",
					id, before.created, before.expires, k+1, after.created, after.expires)
			case before.completed != 0 && after.completed != before.completed:
				t.Errorf("journey %s: completed at %d when process %d was killed, %d at the end", id, before.completed, k+1, after.completed)
			}
		}
	}

	t.Logf("kills: %s", strings.Join(c.kills, "; "))
	t.Logf("%d journeys: %d started, %d completed (%d of them tried again after a restart), %d password POSTs cut by a kill (%d of which changed the password); %d passwords changed; %d revocations done by the outbox after an interrupted completion; %d journeys stored",
		len(c.journeys), started, done, replayed, cut, cutChanged, changed, byOutbox, len(final))
}
