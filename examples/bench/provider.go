package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	readyTimeout = 2 * time.Minute
	stopTimeout  = 30 * time.Second
)

func numCPU() int { return runtime.NumCPU() }

// provider is the example provider running as a child process.
type provider struct {
	cmd     *exec.Cmd
	base    string // where to send requests: http://127.0.0.1:port
	issuer  string // its issuer, http://localhost:port: Origin of the forms
	dataDir string
	logPath string
	startup time.Duration
	exited  chan struct{}
	waitErr error
}

// buildProvider builds ./examples/provider of the module this command runs
// in into dir.
func buildProvider(ctx context.Context, dir string) (string, error) {
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	if root == "." || root == "" {
		return "", errors.New("run bench inside the sspr module (go env GOMOD is empty)")
	}
	bin := filepath.Join(dir, "provider")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./examples/provider")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./examples/provider: %w", err)
	}
	return bin, nil
}

// freePort returns a loopback port nobody listens on right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startProvider runs bin with a fresh data folder under dir and waits until
// it answers its discovery document.
func startProvider(ctx context.Context, bin, dir string, o options) (*provider, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p := &provider{
		base:    fmt.Sprintf("http://127.0.0.1:%d", port),
		issuer:  fmt.Sprintf("http://localhost:%d", port),
		dataDir: filepath.Join(dir, "data"),
		logPath: filepath.Join(dir, "provider.log"),
		exited:  make(chan struct{}),
	}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SSPR_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"SSPR_ADDR=127.0.0.1:"+strconv.Itoa(port),
		"SSPR_ISSUER="+p.issuer,
		"SSPR_DATA="+p.dataDir,
		"SSPR_SEED_USERS="+strconv.Itoa(o.seedUsers),
		"SSPR_RATE_LIMITS=off",
	)
	if o.cpuProfile != "" {
		abs, err := filepath.Abs(o.cpuProfile)
		if err != nil {
			return nil, err
		}
		env = append(env, "SSPR_CPUPROFILE="+abs)
	}
	// Not CommandContext: the provider gets SIGTERM and time to finish.
	p.cmd = exec.Command(bin)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	began := time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start provider: %w", err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()

	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.After(readyTimeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get(p.base + "/.well-known/openid-configuration")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				p.startup = time.Since(began)
				return p, nil
			}
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("provider exited before it answered (%v); log:\n%s", p.waitErr, tail(p.logPath, 20))
		case <-deadline:
			p.stop()
			return nil, fmt.Errorf("provider did not answer within %s; log:\n%s", readyTimeout, tail(p.logPath, 20))
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}

// stop sends SIGTERM and waits for the provider to exit (killing it after
// stopTimeout).
func (p *provider) stop() error {
	select {
	case <-p.exited:
		return p.exitError()
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop provider: %w", err)
	}
	select {
	case <-p.exited:
		return p.exitError()
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("provider did not stop within %s after SIGTERM; killed", stopTimeout)
	}
}

func (p *provider) exitError() error {
	if p.waitErr != nil {
		return fmt.Errorf("provider: %w", p.waitErr)
	}
	return nil
}

// cpuTime returns the CPU time (user + system) the provider used so far,
// from /proc (Linux); 0 when unknown.
func (p *provider) cpuTime() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond
}

// selfCPUTime returns the CPU time this process used so far.
func selfCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
