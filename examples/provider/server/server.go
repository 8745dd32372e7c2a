package server

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/sessions"
	// The provider's user table lives in its own SQLite file.
	_ "github.com/mattn/go-sqlite3"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/email"
	"github.com/sspr-go/sspr/flows/recoverycodes"
	"github.com/sspr-go/sspr/flows/sms"
	"github.com/sspr-go/sspr/flows/totp"
	"github.com/sspr-go/sspr/flows/webauthn"
	"github.com/sspr-go/sspr/plugin"
	"github.com/sspr-go/sspr/plugin/notify"
	"github.com/sspr-go/sspr/plugin/password"
	"github.com/sspr-go/sspr/plugin/store"
	"github.com/sspr-go/sspr/plugin/store/postgres"
	"github.com/sspr-go/sspr/plugin/store/sqlite"
)

// The demo account, seeded on first start. It signs in with a password
// alone.
const (
	DemoUserID      = "alice"
	DemoUsername    = "alice"
	DemoEmail       = "alice@example.com"
	DemoDisplayName = "Alice Liddell"
	DemoPassword    = "wonderland-tea-party"
)

// The second demo account, seeded on first start with an authenticator app
// (TOTP) enrolled in sspr's store: its sign-in asks for a 6-digit code after
// the password, and its password reset needs that code too.
const (
	BobUserID      = "bob"
	BobUsername    = "bob"
	BobEmail       = "bob@example.com"
	BobDisplayName = "Bob Builder"
	BobPassword    = "looking-glass-chessboard"
	// BobTOTPSecret is the base32 secret of bob's authenticator app, for
	// adding to an app (or oathtool --totp -b) by hand. It is published
	// here, so bob's second factor protects nothing: demo only, never seed
	// a real account with a known secret.
	BobTOTPSecret = "JBSWY3DPEHPK3PXP"
)

// The third demo user, carol, has no email address: she resets her
// password with a code by text message to her phone number, a fictional
// Australian mobile (ACMA reserves 0491 570 156 for drama), which the dev
// mailbox shows (or the SMS gateway of Config.SMSWebhook gets).
const (
	CarolUserID      = "carol"
	CarolUsername    = "carol"
	CarolDisplayName = "Carol Hearts"
	CarolPassword    = "queen-of-hearts-croquet"
	CarolPhone       = "+61491570156"
)

// The demo client, a confidential web application.
const (
	ClientID           = "demo-app"
	ClientSecret       = "demo-secret"
	DefaultRedirectURI = "http://localhost:9999/callback"
)

// StepUpClientID is sspr's own client at the provider, for its OIDC
// step-up (Config.StepUp "oidc"). Its secret is derived from the key file
// and its redirect URI is <issuer>/recovery/stepup/callback.
const StepUpClientID = "sspr-step-up"

// DefaultAddr is the default listen address.
const DefaultAddr = "localhost:9998"

const (
	sweepInterval   = time.Minute
	shutdownTimeout = 10 * time.Second
)

// Config configures a [Server].
type Config struct {
	// Addr is the address [Server.ListenAndServe] listens on. Default:
	// "localhost:9998".
	Addr string

	// Issuer is the provider's external URL without a path, for example
	// "https://login.example.com": the "iss" of its tokens and the start of
	// every link it builds (never the request's Host header). It must be
	// https, or http on a loopback host (localhost, 127.0.0.1, ::1). A
	// trailing slash is removed. Default: "http://" + Addr.
	Issuer string

	// DataDir is the folder of the SQLite databases (provider.db, sspr.db)
	// and the keys (signing-key.pem, provider.key, sspr.key); it is created
	// (mode 0700) when missing. The keys of the cookies, of the CSRF tokens
	// and of the sealed TOTP secrets are derived from provider.key. Required.
	DataDir string

	// SMTP is the mail server for sspr's messages, "smtp://host:port"
	// (STARTTLS, required unless the host is a loopback address) or
	// "smtps://host:port" (implicit TLS), optionally with
	// "user:password@" before the host. Default: "" (the dev [Mailbox]).
	SMTP string

	// SMSWebhook is the URL of an SMS gateway that takes sspr's text
	// messages as signed JSON (notify.Webhook; https, or http on a loopback
	// host). Default: "" (text messages go to the dev [Mailbox]).
	SMSWebhook string

	// SMSSecret signs the requests to SMSWebhook (HMAC-SHA256, at least 32
	// bytes; the gateway checks it with notify.VerifyWebhook). Required
	// with SMSWebhook.
	SMSSecret []byte

	// StepUp chooses how sspr's signed-in pages (change password) get a
	// fresh second factor: "" (default) asks for it on sspr's own pages and
	// then raises the provider's sign-in session; "oidc" sends the user to
	// this provider's /authorize as the client [StepUpClientID] with
	// prompt=login, max_age=0 and acr_values.
	StepUp string

	// HTTPClient is what sspr uses to reach this provider for an OIDC
	// step-up. Default: http.DefaultClient.
	HTTPClient *http.Client

	// RedirectURIs are the registered redirect URIs of the demo-app client.
	// Default: ["http://localhost:9999/callback"].
	RedirectURIs []string

	// Logger receives the server's and sspr's logs. Default: slog.Default(),
	// read once in New.
	Logger *slog.Logger

	// Now is the clock. Default: time.Now.
	Now func() time.Time

	// SeedUsers is how many load-test users New creates at start-up:
	// user00000 … user{SeedUsers-1} (the username zero-padded to five
	// digits, the email <username>@example.test, see [LoadTestUsername]),
	// all with the published password [LoadTestPassword]. They are for
	// load tests only (examples/bench): anybody who reads this package can
	// sign in as them. Seeding is idempotent and fast: the password is
	// hashed once and the rows go in in one transaction; users that exist
	// are left as they are, a password changed by a reset included. The
	// seeded passwords are not recorded in sspr's password history.
	// Default: 0 (none); at most [MaxSeedUsers].
	SeedUsers int

	// DatabaseURL, a postgres:// URL, keeps sspr's store in PostgreSQL
	// (plugin/store/postgres) instead of <DataDir>/sspr.db, so several
	// provider instances can share it. Users stay in provider.db. Default:
	// "" (SQLite).
	DatabaseURL string

	// DisableRateLimits turns sspr's rate limits off
	// (plugin.Config.InsecureDisableRateLimits), so that a load test from
	// one address measures the work rather than the 429 page. New logs a
	// warning, and sspr logs one with every page. Never set it in
	// production. Default: false (limits on).
	DisableRateLimits bool
}

// Server is the example provider: the OpenID provider, its sign-in page,
// the user directory and sspr mounted at /recovery. Create it with [New].
type Server struct {
	cfg     Config
	logger  *slog.Logger
	now     func() time.Time
	issuer  string // without trailing slash
	origin  string // scheme://host[:port] of the issuer
	secure  bool   // issuer is https: cookies get Secure
	appURL  string // where the demo app lives, for the home page
	csrfKey [32]byte
	// limitKey keys the counters of wrong second-factor codes.
	limitKey [32]byte

	db       *sql.DB
	dir      *Directory
	oidc     *oidcStorage
	provider *op.Provider
	ssprDB   store.Store
	totp     *totp.Flow
	sms      *sms.Flow
	passkeys *webauthn.Flow // nil when the issuer's host is an IP address
	sessions *sessions.CookieStore
	plugin   *plugin.Plugin
	mailbox  *Mailbox
	pages    pages
	handler  http.Handler

	closeOnce sync.Once
	closeErr  error
}

func fieldError(field, format string, args ...any) error {
	return fmt.Errorf("server: config: field '%s': %s", field, fmt.Sprintf(format, args...))
}

// validate copies cfg, fills the defaults and reports every bad field.
func validate(cfg Config) (Config, *url.URL, error) {
	c := cfg
	c.RedirectURIs = append([]string(nil), cfg.RedirectURIs...)
	var errs []error
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Issuer == "" {
		c.Issuer = "http://" + c.Addr
	}
	c.Issuer = strings.TrimSuffix(c.Issuer, "/")
	issuer, err := url.Parse(c.Issuer)
	switch {
	case err != nil || issuer.Host == "" || (issuer.Scheme != "http" && issuer.Scheme != "https"):
		errs = append(errs, fieldError("Issuer", "must be an absolute http(s) URL"))
	case issuer.Path != "" || issuer.RawQuery != "" || issuer.Fragment != "" || issuer.User != nil:
		errs = append(errs, fieldError("Issuer", "must have no path, query, fragment or user info"))
	case issuer.Scheme == "http" && !loopbackHost(issuer.Hostname()):
		errs = append(errs, fieldError("Issuer", "must be https (plain http is allowed only for loopback hosts)"))
	}
	if c.DataDir == "" {
		errs = append(errs, fieldError("DataDir", "is required"))
	}
	if c.StepUp != "" && c.StepUp != "oidc" {
		errs = append(errs, fieldError("StepUp", "must be empty or \"oidc\""))
	}
	if c.SMTP != "" {
		if _, err := parseSMTPURL(c.SMTP); err != nil {
			errs = append(errs, fieldError("SMTP", "%v", err))
		}
	}
	if len(c.RedirectURIs) == 0 {
		c.RedirectURIs = []string{DefaultRedirectURI}
	}
	for i, raw := range c.RedirectURIs {
		if u, err := url.Parse(raw); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.Fragment != "" {
			errs = append(errs, fieldError("RedirectURIs", "entry %d must be an absolute http(s) URL without fragment", i))
		}
	}
	if c.SeedUsers < 0 || c.SeedUsers > MaxSeedUsers {
		errs = append(errs, fieldError("SeedUsers", "must be between 0 and %d", MaxSeedUsers))
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, nil, err
	}
	return c, issuer, nil
}

func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// New opens (or creates) the data folder, seeds the demo user on first
// start and wires the OpenID provider, the sign-in page and sspr. It reports
// every bad field of cfg at once. Call [Server.Close] when done.
func New(ctx context.Context, cfg Config) (_ *Server, err error) {
	cfg, issuer, err := validate(cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:    cfg,
		logger: cfg.Logger,
		now:    cfg.Now,
		issuer: cfg.Issuer,
		origin: issuer.Scheme + "://" + issuer.Host,
		secure: issuer.Scheme == "https",
	}
	if ru, err := url.Parse(cfg.RedirectURIs[0]); err == nil {
		s.appURL = ru.Scheme + "://" + ru.Host + "/"
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("server: data folder: %w", err)
	}
	if s.pages, err = parsePages(); err != nil {
		return nil, err
	}
	providerSecret, err := loadOrCreateSecret(filepath.Join(cfg.DataDir, "provider.key"))
	if err != nil {
		return nil, err
	}
	ssprKey, err := loadOrCreateSecret(filepath.Join(cfg.DataDir, "sspr.key"))
	if err != nil {
		return nil, err
	}
	signing, err := loadOrCreateSigningKey(filepath.Join(cfg.DataDir, "signing-key.pem"))
	if err != nil {
		return nil, err
	}
	s.csrfKey = deriveKey(providerSecret, "login-csrf")
	s.limitKey = deriveKey(providerSecret, "mfa-limit")
	s.sessions = newSessionStore(deriveKey(providerSecret, "session-auth"), deriveKey(providerSecret, "session-encryption"), s.secure)

	// Users.
	hasher, err := password.NewHasher(password.HasherConfig{})
	if err != nil {
		return nil, fmt.Errorf("server: password hasher: %w", err)
	}
	// SQLite creates its files with the process umask (often 0644) and gives
	// the -wal and -shm files the mode of the database: create both
	// databases 0600 first, since they hold password hashes and journeys.
	for _, name := range []string{"provider.db", "sspr.db"} {
		f, err := os.OpenFile(filepath.Join(cfg.DataDir, name), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("server: create %s: %w", name, err)
		}
		f.Close()
	}
	dsn := "file:" + filepath.Join(cfg.DataDir, "provider.db") +
		"?_journal_mode=WAL&_busy_timeout=5000&_txlock=immediate&_foreign_keys=on&_synchronous=NORMAL&_stmt_cache_size=16"
	if s.db, err = sql.Open("sqlite3", dsn); err != nil {
		return nil, fmt.Errorf("server: open provider.db: %w", err)
	}
	s.dir = &Directory{db: s.db, hasher: hasher, now: s.now, logger: s.logger}
	if err := s.dir.migrate(ctx); err != nil {
		return nil, err
	}
	dummy, err := randomToken(16)
	if err != nil {
		return nil, err
	}
	if s.dir.dummyHash, err = hasher.Hash(ctx, dummy); err != nil {
		return nil, fmt.Errorf("server: dummy hash: %w", err)
	}

	// The OpenID provider.
	c := &client{id: ClientID, secret: ClientSecret, redirectURIs: cfg.RedirectURIs, loginURL: s.issuer + "/login"}
	// sspr is a confidential client too: its OIDC step-up (SSPR_STEPUP=oidc)
	// sends the user here with prompt=login and max_age=0.
	stepUpSecret := deriveKey(providerSecret, "sspr-step-up-client")
	stepUpClient := &client{id: StepUpClientID, secret: base64.RawURLEncoding.EncodeToString(stepUpSecret[:]),
		redirectURIs: []string{s.issuer + "/recovery/stepup/callback"}, loginURL: s.issuer + "/login"}
	s.oidc = newOIDCStorage([]*client{c, stepUpClient}, s.dir, signing, s.now, s.logger)
	s.dir.revoke = s.oidc.revokeUser
	opts := []op.Option{}
	if issuer.Scheme == "http" { // validate allowed http only on loopback hosts
		opts = append(opts, op.WithAllowInsecure())
	}
	s.provider, err = op.NewProvider(&op.Config{
		CryptoKey:             deriveKey(providerSecret, "access-token-crypto"),
		CryptoKeyId:           "k1",
		CodeMethodS256:        true,
		AuthMethodPost:        true,
		GrantTypeRefreshToken: true,
		SupportedUILocales:    []language.Tag{language.English},
		SupportedScopes:       []string{oidc.ScopeOpenID, oidc.ScopeEmail, oidc.ScopeProfile, oidc.ScopeOfflineAccess},
	}, s.oidc, op.StaticIssuer(s.issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("server: openid provider: %w", err)
	}

	// sspr. Email goes to the SMTP server, text messages to the SMS
	// gateway. Without an SMTP server both go to the dev mailbox; with one
	// but no gateway, text messages cannot be sent (the outbox gives them
	// up at once, naming the channel).
	routes := map[string]notify.Sender{}
	if cfg.SMTP == "" {
		s.mailbox = NewMailbox(s.logger, s.now)
		routes["email"], routes["sms"] = s.mailbox, s.mailbox
	} else if routes["email"], err = newSMTPSender(cfg.SMTP, issuer.Hostname()); err != nil {
		return nil, err
	}
	if cfg.SMSWebhook != "" {
		if routes["sms"], err = notify.NewWebhook(notify.WebhookConfig{URL: cfg.SMSWebhook, Secret: cfg.SMSSecret}); err != nil {
			return nil, fmt.Errorf("server: config: field 'SMSWebhook': %w", err)
		}
	} else if cfg.SMTP != "" {
		s.logger.WarnContext(ctx, "server: no SMS gateway (SMSWebhook, SSPR_SMS_WEBHOOK): text messages will not be sent")
	}
	sender, err := notify.NewRouter(routes)
	if err != nil {
		return nil, fmt.Errorf("server: senders: %w", err)
	}
	var st store.Store
	if cfg.DatabaseURL != "" {
		// Scale-out: sspr's journeys, counters, outbox and factors in
		// PostgreSQL, shared by every instance (users stay in provider.db).
		if st, err = (postgres.Config{URL: cfg.DatabaseURL}).Open(ctx, s.logger); err != nil {
			return nil, fmt.Errorf("server: open sspr's PostgreSQL store: %w", err)
		}
	} else if st, err = (sqlite.Config{Path: filepath.Join(cfg.DataDir, "sspr.db")}).Open(ctx, s.logger); err != nil {
		return nil, fmt.Errorf("server: open sspr.db: %w", err)
	}
	s.ssprDB = st
	emailFlow, err := email.New(email.Config{})
	if err != nil {
		return nil, fmt.Errorf("server: email flow: %w", err)
	}
	// The provider's own MFA uses the same TOTP flow, hence the same
	// factors, as sspr's journeys.
	totpKey := deriveKey(providerSecret, "totp-secrets")
	s.totp, err = totp.New(totp.Config{
		Store:  st,
		Keys:   [][]byte{totpKey[:]},
		Issuer: "Demo Provider",
		Now:    s.now,
	})
	if err != nil {
		return nil, fmt.Errorf("server: totp flow: %w", err)
	}
	recoveryFlow, err := recoverycodes.New(recoverycodes.Config{Store: st, Hasher: hasher})
	if err != nil {
		return nil, fmt.Errorf("server: recovery codes flow: %w", err)
	}
	// Text messages: codes to the numbers users add on the security-info
	// page (carol has one from the start). Numbers are sealed under their
	// own derived key.
	smsKey := deriveKey(providerSecret, "sms-numbers")
	s.sms, err = sms.New(sms.Config{Store: st, Keys: [][]byte{smsKey[:]}, Now: s.now})
	if err != nil {
		return nil, fmt.Errorf("server: sms flow: %w", err)
	}
	ssprFlows := []flows.Flow{emailFlow, s.sms, s.totp, recoveryFlow}
	if net.ParseIP(issuer.Hostname()) == nil {
		// Passkeys need a domain name as relying-party ID (not an IP).
		s.passkeys, err = webauthn.New(webauthn.Config{Store: st, RPID: issuer.Hostname(),
			RPDisplayName: "Demo Provider", RPOrigins: []string{issuer.Scheme + "://" + issuer.Host}, Now: s.now})
		if err != nil {
			return nil, fmt.Errorf("server: passkey flow: %w", err)
		}
		ssprFlows = append(ssprFlows, s.passkeys)
	}
	var stepUp *plugin.OIDCStepUp
	if cfg.StepUp == "oidc" {
		// No acr_values: this provider treats them as essential and would
		// refuse users without an authenticator app or a passkey itself;
		// without them it answers with what the user did, and sspr checks
		// amr itself (users with only recovery codes in sspr then cannot
		// step up here, which sspr tells them).
		stepUp = &plugin.OIDCStepUp{Issuer: s.issuer, ClientID: StepUpClientID, ClientSecret: stepUpClient.secret,
			HTTPClient: cfg.HTTPClient}
	}
	brandFiles, err := fs.Sub(brand, "brand")
	if err != nil {
		return nil, fmt.Errorf("server: brand files: %w", err)
	}
	s.plugin, err = plugin.New(plugin.Config{
		BaseURL:           s.issuer + "/recovery",
		Directory:         s.dir,
		Store:             st,
		Flows:             ssprFlows,
		Sessions:          ssprSessions{s},
		StepUp:            stepUp,
		AccountURL:        s.issuer + "/account",
		Sender:            sender,
		Keys:              [][]byte{ssprKey},
		SignInURL:         s.issuer + "/",
		ReturnToAllowList: []string{s.issuer + "/login"},
		// Branding: sspr's pages take the provider's colours (brand.css,
		// CSS variables only) and logo; everything else stays sspr's.
		Templates:   brandFiles,
		LogoURL:     "/static/logo.svg",
		ProductName: "Demo Provider",
		Hasher:      hasher,
		Logger:      s.logger,
		Now:         s.now,
		// Load tests only (Config.DisableRateLimits).
		InsecureDisableRateLimits: cfg.DisableRateLimits,
	})
	if err != nil {
		return nil, fmt.Errorf("server: sspr: %w", err)
	}
	if cfg.DisableRateLimits {
		s.logger.WarnContext(ctx, "server: RATE LIMITS ARE OFF (DisableRateLimits, SSPR_RATE_LIMITS=off): "+
			"anybody can start resets and try codes without limit; for load tests only, never in production")
	}

	if err := s.seedDemoUsers(ctx); err != nil {
		return nil, err
	}
	if cfg.SeedUsers > 0 {
		n, err := s.dir.seedLoadTestUsers(ctx, cfg.SeedUsers)
		if err != nil {
			return nil, err
		}
		s.logger.InfoContext(ctx, "seeded load-test users", slog.Int("wanted", cfg.SeedUsers), slog.Int("created", n))
	}

	s.handler = s.routes()
	return s, nil
}

// seedDemoUsers creates alice and bob unless they exist. sspr learns their
// passwords so a reset cannot reuse them, and bob gets his authenticator
// app. Each user is seeded in one provider.db transaction that commits only
// after sspr's store took the rest, so a failed start leaves no
// half-seeded user and the next start tries again.
func (s *Server) seedDemoUsers(ctx context.Context) error {
	users := []struct {
		user     plugin.User
		password string
		totp     string // base32 secret, or none
		phone    string // E.164, or none
	}{
		{plugin.User{ID: DemoUserID, Username: DemoUsername, Email: DemoEmail, DisplayName: DemoDisplayName}, DemoPassword, "", ""},
		{plugin.User{ID: BobUserID, Username: BobUsername, Email: BobEmail, DisplayName: BobDisplayName}, BobPassword, BobTOTPSecret, ""},
		{plugin.User{ID: CarolUserID, Username: CarolUsername, DisplayName: CarolDisplayName}, CarolPassword, "", CarolPhone},
	}
	for _, d := range users {
		seeded, err := s.dir.seed(ctx, d.user, d.password, func(ctx context.Context) error {
			if err := s.plugin.RecordPassword(ctx, d.user.ID, d.password); err != nil {
				return fmt.Errorf("server: record seed password: %w", err)
			}
			if d.phone != "" {
				// A start that failed after this step added the number
				// already (ErrUsed).
				if _, err := s.sms.AddNumber(ctx, d.user.ID, d.phone); err != nil && !errors.Is(err, flows.ErrUsed) {
					return fmt.Errorf("server: seed phone number of %q: %w", d.user.ID, err)
				}
			}
			if d.totp == "" {
				return nil
			}
			// A start that failed after this step added the factor already.
			has, err := s.hasTOTP(ctx, d.user.ID)
			if err != nil || has {
				return err
			}
			// Demo only: the secret is public (see BobTOTPSecret).
			if _, err := s.totp.AddSecret(ctx, s.ssprDB, d.user.ID, "Demo authenticator", d.totp); err != nil {
				return fmt.Errorf("server: seed authenticator of %q: %w", d.user.ID, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if seeded {
			s.logger.InfoContext(ctx, "seeded a demo user", slog.String("user", d.user.ID), slog.Bool("totp", d.totp != ""))
		}
	}
	return nil
}

// Handler returns the handler that serves everything: the OpenID provider,
// the sign-in pages, the account page, sspr under /recovery/ and the dev
// mailbox.
func (s *Server) Handler() http.Handler { return s.handler }

// Issuer returns the provider's issuer URL, without trailing slash.
func (s *Server) Issuer() string { return s.issuer }

// Directory returns the user directory the sign-in page and sspr share.
func (s *Server) Directory() *Directory { return s.dir }

// Passkeys returns the passkey (WebAuthn) flow that sspr and the sign-in
// share, or nil when the issuer's host is an IP address (a relying-party
// ID must be a domain name). Tests enrol passkeys through it.
func (s *Server) Passkeys() *webauthn.Flow { return s.passkeys }

// SSPRStore returns sspr's store (journeys, factors, audit trail), for
// tests and tools.
func (s *Server) SSPRStore() store.Store { return s.ssprDB }

// Mailbox returns the dev mailbox, or nil when [Config.SMTP] is set.
func (s *Server) Mailbox() *Mailbox { return s.mailbox }

// Run runs the background work until ctx ends: sspr's outbox worker and
// sweeper, and the sweeper of expired authorization requests and tokens. It
// returns nil when ctx ends, or the error that stopped sspr's worker.
func (s *Server) Run(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- s.plugin.Run(ctx) }()
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case err := <-done:
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("server: sspr worker: %w", err)
			}
			done = nil // sspr stopped cleanly; keep sweeping until ctx ends
		case <-t.C:
			s.oidc.sweep()
		case <-ctx.Done():
			if done != nil {
				<-done
			}
			return nil
		}
	}
}

// ListenAndServe serves [Server.Handler] on [Config.Addr] until ctx ends,
// then shuts down gracefully (waiting up to 10 seconds for open requests).
func (s *Server) ListenAndServe(ctx context.Context) error {
	hs := &http.Server{
		Addr:              s.cfg.Addr,
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	shutdown := make(chan error, 1)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		shutdown <- hs.Shutdown(sctx)
	}()
	if err := hs.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("server: listen: %w", err)
	}
	if err := <-shutdown; err != nil {
		return fmt.Errorf("server: shutdown: %w", err)
	}
	return nil
}

// Close releases the databases. It is safe to call more than once; call it
// after [Server.Run] and [Server.ListenAndServe] have returned.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.ssprDB != nil {
			errs = append(errs, s.ssprDB.Close())
		}
		if s.db != nil {
			errs = append(errs, s.db.Close())
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}
