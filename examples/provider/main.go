// Command provider runs the example OpenID provider with sspr mounted at
// /recovery. See package server for what it serves.
//
// Settings come from the environment and can be overridden by flags:
//
//	SSPR_ADDR    -addr    listen address (default localhost:9998)
//	SSPR_ISSUER  -issuer  external URL (default http://localhost:9998)
//	SSPR_DATA    -data    folder for the SQLite files and keys (default ./data)
//	SSPR_SMTP    -smtp    smtp://host:port; unset means the dev mailbox
//	SSPR_DATABASE_URL -database-url  postgres:// URL for sspr's store; unset means SQLite in SSPR_DATA
//	SSPR_STEPUP  -stepup  "oidc" for step-up through the provider; unset means sspr's own pages
//	SSPR_SMS_WEBHOOK -sms-webhook  SMS gateway URL (signed JSON); unset means the dev mailbox
//	                               (with SSPR_SMTP set but no gateway, text messages are not sent)
//	SSPR_SMS_SECRET                the gateway's signing secret, at least 32 characters
//
// For load tests (see examples/bench), never in production:
//
//	SSPR_SEED_USERS  -seed-users   create user00000@example.test … user{N-1}@example.test,
//	                               password "load-test-password-2026" (default 0)
//	SSPR_RATE_LIMITS -rate-limits  "off" turns sspr's rate limits off (default "on")
//	SSPR_CPUPROFILE                write a CPU profile to this file until shutdown
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"syscall"

	"github.com/sspr-go/sspr/examples/provider/server"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "provider:", err)
		os.Exit(1)
	}
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func run(args []string) error {
	fs := flag.NewFlagSet("provider", flag.ContinueOnError)
	addr := fs.String("addr", env("SSPR_ADDR", server.DefaultAddr), "listen address (env SSPR_ADDR)")
	issuer := fs.String("issuer", env("SSPR_ISSUER", "http://localhost:9998"), "external URL of the provider (env SSPR_ISSUER)")
	data := fs.String("data", env("SSPR_DATA", "./data"), "folder for the SQLite files and keys, created if missing (env SSPR_DATA)")
	smtp := fs.String("smtp", env("SSPR_SMTP", ""), "mail server smtp://host:port; empty means the dev mailbox (env SSPR_SMTP)")
	databaseURL := fs.String("database-url", env("SSPR_DATABASE_URL", ""), "postgres:// URL for sspr's store; empty means SQLite in the data folder (env SSPR_DATABASE_URL)")
	stepUp := fs.String("stepup", env("SSPR_STEPUP", ""), `"oidc": step-up through the provider; empty: sspr's own pages (env SSPR_STEPUP)`)
	smsWebhook := fs.String("sms-webhook", env("SSPR_SMS_WEBHOOK", ""), "SMS gateway URL taking signed JSON; empty means the dev mailbox (env SSPR_SMS_WEBHOOK; secret in SSPR_SMS_SECRET)")
	seedUsers := fs.String("seed-users", env("SSPR_SEED_USERS", "0"),
		"load tests only: create user00000@example.test … user{N-1}@example.test with password "+
			strconv.Quote(server.LoadTestPassword)+" (env SSPR_SEED_USERS)")
	rateLimits := fs.String("rate-limits", env("SSPR_RATE_LIMITS", "on"), `"off" turns sspr's rate limits off, for load tests only (env SSPR_RATE_LIMITS)`)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	nSeed, err := strconv.Atoi(*seedUsers)
	if err != nil {
		return fmt.Errorf("-seed-users (SSPR_SEED_USERS): not a number: %q", *seedUsers)
	}
	var noLimits bool
	switch *rateLimits {
	case "", "on":
	case "off":
		noLimits = true
	default:
		return fmt.Errorf(`-rate-limits (SSPR_RATE_LIMITS): must be "on" or "off", not %q`, *rateLimits)
	}
	if path := os.Getenv("SSPR_CPUPROFILE"); path != "" {
		stopProfile, err := startCPUProfile(path)
		if err != nil {
			return err
		}
		defer stopProfile()
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	srv, err := server.New(ctx, server.Config{
		Addr: *addr, Issuer: *issuer, DataDir: *data, SMTP: *smtp, DatabaseURL: *databaseURL, StepUp: *stepUp, Logger: logger,
		SeedUsers: nSeed, DisableRateLimits: noLimits, SMSWebhook: *smsWebhook, SMSSecret: []byte(os.Getenv("SSPR_SMS_SECRET")),
	})
	if err != nil {
		return err
	}
	defer srv.Close()

	workers := make(chan error, 1)
	go func() { workers <- srv.Run(ctx) }()

	iss := srv.Issuer()
	fmt.Printf(`
Demo Provider listening on %s (issuer %s)

  Open http://localhost:9999 after starting the relying party
  (go run ./examples/relyingparty), or %s/ for the provider's home page.
  Sign in as %s (or %s) with the password %q,
  or choose "Forgot password?" on the sign-in page.
  Two-step verification: sign in as %s (or %s) with the password %q,
  then enter the code of the TOTP secret %s
  (DEMO ONLY: the secret is public; add it to an authenticator app or run
  oathtool --totp -b %s). Your account: %s/account
`, *addr, iss, iss, server.DemoEmail, server.DemoUsername, server.DemoPassword,
		server.BobEmail, server.BobUsername, server.BobPassword, server.BobTOTPSecret, server.BobTOTPSecret, iss)
	fmt.Printf("  Reset by text message: %s (password %q) has only the phone number %s.\n",
		server.CarolUsername, server.CarolPassword, server.CarolPhone)
	fmt.Printf("  Audit trail and metrics (this machine only): %s/dev/audit, %s/dev/metrics\n", iss, iss)
	if srv.Passkeys() != nil {
		fmt.Printf("  Passkeys: add one at %s/recovery/account/security; the next sign-in asks for it.\n", iss)
	}
	if srv.Mailbox() != nil {
		fmt.Printf("  No SMTP server or SMS gateway set: messages are listed at %s/dev/mailbox (the log notes each one, never its text)\n", iss)
	}
	if nSeed > 0 {
		fmt.Printf("  LOAD TEST: %d users %s … %s, all with the password %q.\n",
			nSeed, server.LoadTestEmail(0), server.LoadTestEmail(nSeed-1), server.LoadTestPassword)
	}
	if noLimits {
		fmt.Println("  WARNING: RATE LIMITS ARE OFF (SSPR_RATE_LIMITS=off). Load tests only, never in production.")
	}
	fmt.Println()

	serveErr := srv.ListenAndServe(ctx)
	stop() // stop the workers too when the listener failed
	workErr := <-workers
	logger.Info("provider stopped")
	return errors.Join(serveErr, workErr)
}

// startCPUProfile writes a CPU profile to path until the returned function
// is called (SSPR_CPUPROFILE, for load tests; read it with go tool pprof).
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("SSPR_CPUPROFILE: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("SSPR_CPUPROFILE: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "provider: SSPR_CPUPROFILE:", err)
		}
	}, nil
}
