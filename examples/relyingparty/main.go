// Command relyingparty runs the example web app that signs in through the
// example provider. See package app.
//
// Settings come from the environment and can be overridden by flags:
//
//	SSPR_RP_ADDR  -addr    listen address (default localhost:9999)
//	SSPR_ISSUER   -issuer  the provider's issuer (default http://localhost:9998)
//
// The client is demo-app / demo-secret, as registered at the provider, whose
// redirect URI is http://localhost:9999/callback.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sspr-go/sspr/examples/relyingparty/app"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "relyingparty:", err)
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
	fs := flag.NewFlagSet("relyingparty", flag.ContinueOnError)
	addr := fs.String("addr", env("SSPR_RP_ADDR", "localhost:9999"), "listen address (env SSPR_RP_ADDR)")
	issuer := fs.String("issuer", env("SSPR_ISSUER", "http://localhost:9998"), "the provider's issuer URL (env SSPR_ISSUER)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	a, err := app.New(ctx, app.Config{
		URL:          "http://" + *addr,
		Issuer:       *issuer,
		ClientID:     "demo-app",
		ClientSecret: "demo-secret",
		HTTPClient:   &http.Client{Timeout: 10 * time.Second},
		Logger:       logger,
	})
	if err != nil {
		return err
	}
	hs := &http.Server{
		Addr:              *addr,
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	shutdown := make(chan error, 1)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shutdown <- hs.Shutdown(sctx)
	}()
	fmt.Printf("\nDemo App on http://%s (provider %s): open it and press Sign in.\n\n", *addr, *issuer)
	if err := hs.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return <-shutdown
}
