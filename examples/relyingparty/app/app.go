package app

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

//go:embed templates/*.html static/*.css
var webFiles embed.FS

const (
	flowCookie = "rp_signin"
	// flowTTL is how long a started sign-in may take.
	flowTTL = 10 * time.Minute
)

// Config configures an [App].
type Config struct {
	// URL is the app's external URL without a path, for example
	// "http://localhost:9999". The redirect URI is URL + "/callback".
	// Required.
	URL string
	// Issuer is the provider's issuer URL, exactly as the provider spells
	// it. Required.
	Issuer string
	// ClientID and ClientSecret are the app's credentials at the provider.
	// Required.
	ClientID, ClientSecret string
	// HTTPClient talks to the provider. Default: http.DefaultClient.
	HTTPClient *http.Client
	// Logger receives the app's logs. Default: slog.Default(), read once.
	Logger *slog.Logger
	// Now is the clock, also used to check token expiry. Default: time.Now.
	Now func() time.Time
}

// App is the relying party. Create it with [New] and serve [App.Handler].
type App struct {
	cfg     Config
	logger  *slog.Logger
	secure  bool
	flowKey []byte
	pages   map[string]*template.Template
	handler http.Handler

	mu       sync.Mutex // guards the fields below, set on first sign-in
	verifier *oidc.IDTokenVerifier
	oauth    *oauth2.Config
}

// New validates cfg and returns the app. It does not contact the provider.
func New(ctx context.Context, cfg Config) (*App, error) {
	var errs []error
	cfg.URL = strings.TrimSuffix(cfg.URL, "/")
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.Path != "" {
		errs = append(errs, errors.New("app: config: field 'URL': must be an absolute http(s) URL without path"))
	}
	if cfg.Issuer == "" {
		errs = append(errs, errors.New("app: config: field 'Issuer': is required"))
	}
	if cfg.ClientID == "" {
		errs = append(errs, errors.New("app: config: field 'ClientID': is required"))
	}
	if cfg.ClientSecret == "" {
		errs = append(errs, errors.New("app: config: field 'ClientSecret': is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &App{cfg: cfg, logger: cfg.Logger, secure: u.Scheme == "https", flowKey: make([]byte, 32), pages: map[string]*template.Template{}}
	rand.Read(a.flowKey)
	for _, name := range []string{"home", "claims", "error"} {
		t, err := template.ParseFS(webFiles, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("app: parse page %s: %w", name, err)
		}
		a.pages[name] = t
	}
	static, err := fs.Sub(webFiles, "static")
	if err != nil {
		return nil, fmt.Errorf("app: static files: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("GET /signin", a.signIn)
	mux.HandleFunc("GET /callback", a.callback)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	a.handler = mux
	return a, nil
}

// Handler returns the app's HTTP handler.
func (a *App) Handler() http.Handler { return a.handler }

// RedirectURL returns the app's redirect URI, to register at the provider.
func (a *App) RedirectURL() string { return a.cfg.URL + "/callback" }

func setPageHeaders(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
}

func (a *App) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var buf bytes.Buffer
	if err := a.pages[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		a.logger.ErrorContext(r.Context(), "render page", slog.String("page", name), slog.Any("err", err))
		http.Error(w, "Something went wrong.", http.StatusInternalServerError)
		return
	}
	setPageHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

type errorPage struct{ Title, Message, Detail string }

func (a *App) renderError(w http.ResponseWriter, r *http.Request, status int, p errorPage) {
	a.render(w, r, status, "error", p)
}

func (a *App) home(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "home", struct{ Issuer string }{a.cfg.Issuer})
}

func (a *App) clientContext(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, a.cfg.HTTPClient)
}

// discover fetches the provider's configuration once; a failure is retried
// on the next call.
func (a *App) discover(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.oauth != nil {
		return a.oauth, a.verifier, nil
	}
	p, err := oidc.NewProvider(a.clientContext(ctx), a.cfg.Issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("app: discover %s: %w", a.cfg.Issuer, err)
	}
	a.verifier = p.Verifier(&oidc.Config{ClientID: a.cfg.ClientID, Now: a.cfg.Now})
	a.oauth = &oauth2.Config{
		ClientID:     a.cfg.ClientID,
		ClientSecret: a.cfg.ClientSecret,
		Endpoint:     p.Endpoint(),
		RedirectURL:  a.RedirectURL(),
		Scopes:       []string{oidc.ScopeOpenID, "email", "profile"},
	}
	return a.oauth, a.verifier, nil
}

// flow is what the app remembers between /signin and /callback.
type flow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Expires  int64  `json:"e"`
}

func (a *App) sealFlow(f flow) string {
	body, _ := json.Marshal(f) // a struct of strings and an int cannot fail
	b := base64.RawURLEncoding.EncodeToString(body)
	return b + "." + base64.RawURLEncoding.EncodeToString(a.mac(b))
}

func (a *App) openFlow(v string) (flow, bool) {
	b, sig, ok := strings.Cut(v, ".")
	if !ok {
		return flow{}, false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, a.mac(b)) {
		return flow{}, false
	}
	body, err := base64.RawURLEncoding.DecodeString(b)
	if err != nil {
		return flow{}, false
	}
	var f flow
	if json.Unmarshal(body, &f) != nil || a.cfg.Now().Unix() > f.Expires {
		return flow{}, false
	}
	return f, true
}

func (a *App) mac(s string) []byte {
	m := hmac.New(sha256.New, a.flowKey)
	m.Write([]byte(s))
	return m.Sum(nil)
}

func randomString() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// signIn starts the authorization code flow with PKCE.
func (a *App) signIn(w http.ResponseWriter, r *http.Request) {
	oc, _, err := a.discover(r.Context())
	if err != nil {
		a.logger.WarnContext(r.Context(), "provider discovery failed", slog.Any("err", err))
		a.renderError(w, r, http.StatusBadGateway, errorPage{
			Title:   "The provider is not reachable",
			Message: fmt.Sprintf("Could not reach the provider at %s. Start it (go run ./examples/provider) and try again.", a.cfg.Issuer),
		})
		return
	}
	f := flow{State: randomString(), Nonce: randomString(), Verifier: oauth2.GenerateVerifier(), Expires: a.cfg.Now().Add(flowTTL).Unix()}
	http.SetCookie(w, &http.Cookie{
		Name:     flowCookie,
		Value:    a.sealFlow(f),
		Path:     "/callback",
		MaxAge:   int(flowTTL / time.Second),
		HttpOnly: true,
		Secure:   a.secure,
		SameSite: http.SameSiteLaxMode,
	})
	setPageHeaders(w.Header())
	http.Redirect(w, r, oc.AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier)), http.StatusFound)
}

// Claims are the ID token claims the app shows.
type Claims struct {
	Subject           string    `json:"sub"`
	Issuer            string    `json:"iss"`
	Email             string    `json:"email"`
	EmailVerified     bool      `json:"email_verified"`
	Name              string    `json:"name"`
	PreferredUsername string    `json:"preferred_username"`
	AuthTimeUnix      int64     `json:"auth_time"`
	AMR               []string  `json:"amr"`
	ACR               string    `json:"acr"`
	AuthTime          time.Time `json:"-"`
	Raw               string    `json:"-"`
}

// callback finishes the flow: state, code exchange, ID token, nonce.
func (a *App) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c, err := r.Cookie(flowCookie)
	var f flow
	ok := err == nil
	if ok {
		f, ok = a.openFlow(c.Value)
	}
	// The cookie is single use, whatever happens next.
	http.SetCookie(w, &http.Cookie{Name: flowCookie, Path: "/callback", MaxAge: -1, HttpOnly: true, Secure: a.secure, SameSite: http.SameSiteLaxMode})

	if e := q.Get("error"); e != "" {
		a.renderError(w, r, http.StatusBadRequest, errorPage{
			Title:   "Sign-in did not complete",
			Message: "The provider ended the sign-in without signing you in.",
			Detail:  strings.TrimSpace(e + " " + q.Get("error_description")),
		})
		return
	}
	if !ok || !hmac.Equal([]byte(f.State), []byte(q.Get("state"))) {
		a.logger.WarnContext(r.Context(), "callback refused: missing, expired or mismatched state")
		a.renderError(w, r, http.StatusBadRequest, errorPage{
			Title:   "Sign-in expired",
			Message: "This sign-in was started in another browser, took too long or was already used. Please sign in again.",
		})
		return
	}
	oc, verifier, err := a.discover(r.Context())
	if err != nil {
		a.renderError(w, r, http.StatusBadGateway, errorPage{Title: "The provider is not reachable", Message: "Please try again."})
		return
	}
	ctx := a.clientContext(r.Context())
	tok, err := oc.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(f.Verifier))
	if err != nil {
		a.logger.WarnContext(r.Context(), "code exchange failed", slog.Any("err", err))
		a.renderError(w, r, http.StatusBadGateway, errorPage{Title: "Sign-in failed", Message: "The provider did not accept the sign-in. Please sign in again."})
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := verifier.Verify(ctx, raw)
	if err == nil && !hmac.Equal([]byte(idt.Nonce), []byte(f.Nonce)) {
		err = errors.New("app: nonce mismatch")
	}
	var claims Claims
	var all map[string]any
	if err == nil {
		err = errors.Join(idt.Claims(&claims), idt.Claims(&all))
	}
	if err != nil {
		a.logger.WarnContext(r.Context(), "id token refused", slog.Any("err", err))
		a.renderError(w, r, http.StatusBadGateway, errorPage{Title: "Sign-in failed", Message: "The provider's answer could not be verified. Please sign in again."})
		return
	}
	if claims.AuthTimeUnix > 0 {
		claims.AuthTime = time.Unix(claims.AuthTimeUnix, 0).UTC()
	}
	pretty, _ := json.MarshalIndent(all, "", "  ")
	claims.Raw = string(pretty)
	a.logger.InfoContext(r.Context(), "signed in", slog.String("sub", claims.Subject))
	a.render(w, r, http.StatusOK, "claims", claims)
}
