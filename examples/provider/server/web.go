package server

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

//go:embed templates/*.html static/*.css static/*.svg
var webFiles embed.FS

const (
	csrfCookie    = "provider_csrf"
	csrfFormField = "csrf"
	// maxFormBytes bounds what a sign-in POST may send.
	maxFormBytes = 16 << 10
	// wrongCredentials is shown for unknown users and wrong passwords alike.
	wrongCredentials = "Wrong email/username or password."
)

// pages holds one parsed template set per page, each with the layout.
type pages map[string]*template.Template

func parsePages() (pages, error) {
	funcs := template.FuncMap{"linkify": linkify}
	p := pages{}
	for _, name := range []string{"home", "login", "totp", "passkey", "account", "error", "mailbox"} {
		t, err := template.New(name).Funcs(funcs).ParseFS(webFiles, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("server: parse page %s: %w", name, err)
		}
		p[name] = t
	}
	return p, nil
}

// setPageHeaders sets the security headers of every page this server
// renders itself (sspr sets its own).
func setPageHeaders(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
}

// render executes a page into a buffer first, so a template error never
// leaves half a page behind.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		s.logger.ErrorContext(r.Context(), "render page", slog.String("page", name), slog.Any("err", err))
		setPageHeaders(w.Header())
		http.Error(w, "Something went wrong on our side. Please try again.", http.StatusInternalServerError)
		return
	}
	setPageHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

type link struct{ URL, Label string }

type errorPage struct {
	Title, Message string
	Next           *link
}

func (s *Server) renderError(w http.ResponseWriter, r *http.Request, status int, p errorPage) {
	s.render(w, r, status, "error", p)
}

// routes builds the server's handler.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.home)
	mux.HandleFunc("GET /login", s.loginForm)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("GET /login/totp", s.totpForm)
	mux.HandleFunc("POST /login/totp", s.totpSubmit)
	mux.HandleFunc("GET /login/passkey", s.passkeyForm)
	mux.HandleFunc("POST /login/passkey", s.passkeySubmit)
	mux.HandleFunc("GET /account", s.account)
	mux.HandleFunc("POST /account/signout", s.signOut)
	mux.Handle("GET /static/", s.static())
	mux.Handle("/recovery/", s.plugin)
	if s.mailbox != nil {
		mux.HandleFunc("GET /dev/mailbox", s.mailboxPage)
		mux.HandleFunc("GET /dev/mailbox.json", s.mailboxJSON)
	}
	// sspr's audit trail and metrics. A real host mounts them behind its
	// own authorization (administrators, the metrics scraper); the demo
	// shows them to visitors on this machine only.
	mux.Handle("GET /dev/audit", s.devOnlyHandler(s.plugin.AuditHandler()))
	mux.Handle("GET /dev/metrics", s.devOnlyHandler(s.plugin.MetricsHandler()))
	// Everything else is the OpenID provider: discovery, /authorize,
	// /oauth/token, /keys, /userinfo, …
	mux.Handle("/", s.provider)
	return mux
}

func (s *Server) static() http.Handler {
	sub, err := fs.Sub(webFiles, "static")
	if err != nil { // cannot happen: the directory is embedded
		return http.NotFoundHandler()
	}
	files := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "home", struct {
		AppURL, Issuer, ClientID, Email, Password string
		BobEmail, BobPassword, BobTOTPSecret      string
		Carol, CarolPassword, CarolPhone          string
		ACRMFA                                    string
		RedirectURIs                              []string
		Mailbox                                   bool
		Passkeys                                  bool
	}{
		AppURL:        s.appURL,
		Issuer:        s.issuer,
		ClientID:      ClientID,
		Email:         DemoEmail,
		Password:      DemoPassword,
		BobEmail:      BobEmail,
		BobPassword:   BobPassword,
		BobTOTPSecret: BobTOTPSecret,
		Carol:         CarolUsername,
		CarolPassword: CarolPassword,
		CarolPhone:    CarolPhone,
		ACRMFA:        ACRMFA,
		RedirectURIs:  s.cfg.RedirectURIs,
		Mailbox:       s.mailbox != nil,
		Passkeys:      s.passkeys != nil,
	})
}

type loginPage struct {
	AuthRequestID string
	CSRF          string
	Identifier    string
	Error         string
	ForgotURL     string
}

// loginURL is the absolute URL of the sign-in page of one request.
func (s *Server) loginURL(authRequestID string) string {
	return s.issuer + "/login?" + url.Values{"authRequestID": {authRequestID}}.Encode()
}

func (s *Server) expiredRequest(w http.ResponseWriter, r *http.Request) {
	s.renderError(w, r, http.StatusBadRequest, errorPage{
		Title:   "This sign-in has expired",
		Message: "The sign-in request is no longer valid. Go back to the app you came from and sign in again.",
		Next:    &link{URL: "/", Label: "Go to the home page"},
	})
}

// internalError logs a fault and shows a page that reveals nothing of it.
// With a request ID the page leads back to that sign-in.
func (s *Server) internalError(w http.ResponseWriter, r *http.Request, what string, err error, authRequestID string) {
	s.logger.ErrorContext(r.Context(), what, slog.Any("err", err))
	p := errorPage{Title: "Something went wrong", Message: "Something went wrong on our side. Please try again in a moment."}
	if authRequestID != "" {
		p.Next = &link{URL: s.loginURL(authRequestID), Label: "Back to sign in"}
	}
	s.renderError(w, r, http.StatusInternalServerError, p)
}

// loginForm shows the sign-in page of a pending authorization request,
// unless the browser's sign-in session is enough for it (single sign-on)
// or the request forbids any page (prompt=none).
func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	req, err := s.oidc.pendingRequest(id)
	switch {
	case err != nil || req.done:
		s.expiredRequest(w, r)
	case req.locked():
		s.lockedRequest(w, r, req)
	case s.resume(w, r, req):
	default:
		s.renderLogin(w, r, http.StatusOK, id, req.loginHint, "")
	}
}

// resume completes req from the browser's sign-in session when the session
// satisfies it (see sessionSatisfies), reusing the session's auth_time and
// amr, or answers login_required to a prompt=none request it cannot
// complete. It reports whether it answered. A fault while reading the
// session is logged and the sign-in page shown.
func (s *Server) resume(w http.ResponseWriter, r *http.Request, req *authRequest) bool {
	ctx := r.Context()
	ls, ok, err := s.currentSession(r)
	if err == nil && ok {
		ok, err = s.sessionSatisfies(ctx, req, ls)
	}
	if err != nil {
		s.logger.ErrorContext(ctx, "read sign-in session", slog.Any("err", err))
		ok = false
	}
	if ok {
		if err := s.oidc.completeRequest(req.id, ls.UserID, ls.AuthTime, ls.AMR, acrFor(ls.AMR)); err != nil {
			s.expiredRequest(w, r)
			return true
		}
		s.logger.InfoContext(ctx, "signed in from the session", slog.String("user", ls.UserID), slog.Any("amr", ls.AMR))
		s.finish(w, r, req)
		return true
	}
	if req.promptNone() && !req.local {
		s.loginRequired(w, r, req)
		return true
	}
	return false
}

// loginRequired sends the browser back to the client with the error
// login_required (OpenID Connect Core §3.1.2.6) and forgets the request.
func (s *Server) loginRequired(w http.ResponseWriter, r *http.Request, req *authRequest) {
	e := oidc.ErrLoginRequired()
	e.State = req.state
	u, err := op.AuthResponseURL(req.redirectURI, req.responseType, req.responseMode, e, s.provider.Encoder())
	if err != nil {
		s.internalError(w, r, "login_required response", err, "")
		return
	}
	s.oidc.DeleteAuthRequest(r.Context(), req.id)
	setPageHeaders(w.Header())
	http.Redirect(w, r, u, http.StatusFound)
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, status int, id, identifier, errMsg string) {
	cookie, err := s.csrfCookieValue(w, r)
	if err != nil {
		s.internalError(w, r, "csrf cookie", err, "")
		return
	}
	s.render(w, r, status, "login", loginPage{
		AuthRequestID: id,
		CSRF:          s.csrfToken(cookie, id),
		Identifier:    identifier,
		Error:         errMsg,
		ForgotURL:     "/recovery/?" + url.Values{"return_to": {s.loginURL(id)}}.Encode(),
	})
}

// checkSignInForm parses a POST of the sign-in pages and checks its
// Origin and CSRF token. It returns the authorization request's ID, or
// answers the request itself and returns false.
func (s *Server) checkSignInForm(w http.ResponseWriter, r *http.Request) (string, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, r, http.StatusBadRequest, errorPage{Title: "Something is wrong with the form", Message: "Go back, reload the sign-in page and try again."})
		return "", false
	}
	id := r.PostForm.Get("authRequestID")
	if !s.sameOrigin(r) || !s.validCSRF(r, id) {
		s.logger.WarnContext(r.Context(), "sign-in refused: bad csrf token or origin", slog.String("remote", r.RemoteAddr))
		next := &link{URL: "/", Label: "Go to the home page"}
		if id != "" {
			next = &link{URL: s.loginURL(id), Label: "Reload the sign-in page"}
		}
		s.renderError(w, r, http.StatusForbidden, errorPage{
			Title:   "Please try again",
			Message: "The sign-in form expired or did not come from this site. Reload the sign-in page and try again.",
			Next:    next,
		})
		return "", false
	}
	return id, true
}

// login checks the submitted password. For a user with a second factor it
// then asks for it: the passkey (passkeyForm) when the user has one, else a
// code from the authenticator app (totpForm); each page offers the other
// when the user has both. Otherwise it completes the authorization request
// (unless the client asked for a second factor the user lacks) and sends
// the browser on to the client.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	id, ok := s.checkSignInForm(w, r)
	if !ok {
		return
	}
	req, err := s.oidc.pendingRequest(id)
	switch {
	case err != nil || req.done:
		s.expiredRequest(w, r)
		return
	case req.locked():
		s.lockedRequest(w, r, req)
		return
	}

	identifier := r.PostForm.Get("identifier")
	user, err := s.dir.authenticate(r.Context(), identifier, r.PostForm.Get("password"))
	if errors.Is(err, errWrongCredentials) {
		s.logger.WarnContext(r.Context(), "sign-in failed", slog.String("remote", r.RemoteAddr))
		s.renderLogin(w, r, http.StatusOK, id, identifier, wrongCredentials)
		return
	}
	if err != nil {
		s.logger.ErrorContext(r.Context(), "sign-in", slog.Any("err", err))
		s.renderError(w, r, http.StatusInternalServerError, errorPage{
			Title: "Something went wrong", Message: "We could not check your password. Please try again in a moment.",
			Next: &link{URL: s.loginURL(id), Label: "Back to sign in"},
		})
		return
	}
	factors, err := s.secondFactors(r.Context(), user.ID)
	if err != nil {
		s.internalError(w, r, "sign-in", err, id)
		return
	}
	switch {
	case factors.any():
		if err := s.oidc.passwordVerified(id, user.ID); err != nil {
			s.expiredRequest(w, r)
			return
		}
		next := s.totpURL(id)
		if factors.passkey {
			next = s.passkeyURL(id)
		}
		setPageHeaders(w.Header())
		http.Redirect(w, r, next, http.StatusSeeOther)
	case req.wantsMFA():
		s.logger.WarnContext(r.Context(), "sign-in refused: the client asks for a second factor the user lacks", slog.String("user", user.ID))
		s.mfaUnavailable(w, r)
	default:
		s.signedIn(w, r, req, user.ID, amrPassword())
	}
}

// signedIn completes req for a user who just authenticated with amr,
// starts the browser's sign-in session and sends the browser on.
func (s *Server) signedIn(w http.ResponseWriter, r *http.Request, req *authRequest, userID string, amr []string) {
	ctx := r.Context()
	authTime := s.now().UTC().Truncate(time.Second)
	if err := s.oidc.completeRequest(req.id, userID, authTime, amr, acrFor(amr)); err != nil {
		s.expiredRequest(w, r)
		return
	}
	if err := s.startSession(ctx, w, r, userID, authTime, amr); err != nil {
		// The sign-in itself worked; without a session the next one asks again.
		s.logger.ErrorContext(ctx, "start sign-in session", slog.Any("err", err))
	}
	s.logger.InfoContext(ctx, "signed in", slog.String("user", userID), slog.Any("amr", amr))
	s.finish(w, r, req)
}

// finish sends the browser of a completed request on: to the OpenID
// provider, which redirects it to the client with a code, or, for the
// provider's own sign-in, back to the page that asked for it.
func (s *Server) finish(w http.ResponseWriter, r *http.Request, req *authRequest) {
	setPageHeaders(w.Header())
	if req.local {
		s.oidc.DeleteAuthRequest(r.Context(), req.id)
		http.Redirect(w, r, req.returnTo, http.StatusSeeOther)
		return
	}
	callback := op.AuthCallbackURL(s.provider)(op.ContextWithIssuer(r.Context(), s.issuer), req.id)
	http.Redirect(w, r, callback, http.StatusSeeOther)
}

// csrfCookieValue returns the browser's CSRF secret, setting a new one when
// the request carries none.
func (s *Server) csrfCookieValue(w http.ResponseWriter, r *http.Request) (string, error) {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 43 {
		return c.Value, nil
	}
	v, err := randomToken(32)
	if err != nil {
		return "", err
	}
	http.SetCookie(w, &http.Cookie{
		Name:     csrfCookie,
		Value:    v,
		Path:     "/login",
		HttpOnly: true,
		Secure:   s.secure,
		SameSite: http.SameSiteLaxMode,
	})
	return v, nil
}

// csrfToken binds the form to the browser's cookie and to the request.
func (s *Server) csrfToken(cookie, authRequestID string) string {
	m := hmac.New(sha256.New, s.csrfKey[:])
	m.Write([]byte(cookie))
	m.Write([]byte{0})
	m.Write([]byte(authRequestID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Server) validCSRF(r *http.Request, authRequestID string) bool {
	c, err := r.Cookie(csrfCookie)
	if err != nil || c.Value == "" {
		return false
	}
	want := s.csrfToken(c.Value, authRequestID)
	return hmac.Equal([]byte(want), []byte(r.PostForm.Get(csrfFormField)))
}

// sameOrigin refuses a POST from another origin: by its Origin header, or,
// when that is "null" (as with Referrer-Policy: no-referrer) or missing,
// by Sec-Fetch-Site. A request with neither (curl, old browsers) is left
// to the CSRF token.
func (s *Server) sameOrigin(r *http.Request) bool {
	// The pages send Referrer-Policy: no-referrer, so browsers post forms
	// with "Origin: null"; then Sec-Fetch-Site decides. Clients that send
	// neither rely on the CSRF token alone.
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		return o == s.origin
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return true
	}
	return false
}

// isLoopback reports whether the request comes from this machine.
func isLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// localHost reports whether the request names this provider (the
// issuer's host and port) or a loopback host: a web page whose own name
// was re-pointed at 127.0.0.1 (DNS rebinding) sends its own name.
func (s *Server) localHost(r *http.Request) bool {
	if u, err := url.Parse(s.origin); err == nil && strings.EqualFold(r.Host, u.Host) {
		return true
	}
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// devOnly answers 403 unless the request comes from a loopback address,
// names this provider or a loopback host, and passed no proxy. Behind a
// reverse proxy on the same machine every request looks local, so a
// request that names a forwarded client (Forwarded, X-Forwarded-For,
// X-Real-IP) is refused too, and a page of another site that reaches
// 127.0.0.1 by DNS rebinding names its own host: the dev pages show reset
// codes and links. Still, never put them behind a proxy.
func (s *Server) devOnly(w http.ResponseWriter, r *http.Request) bool {
	proxied := r.Header.Get("Forwarded") != "" || r.Header.Get("X-Forwarded-For") != "" || r.Header.Get("X-Real-Ip") != ""
	if isLoopback(r) && !proxied && s.localHost(r) {
		return true
	}
	s.logger.WarnContext(r.Context(), "dev page refused to a remote client", slog.String("path", r.URL.Path), slog.String("remote", r.RemoteAddr))
	s.renderError(w, r, http.StatusForbidden, errorPage{
		Title:   "Not available",
		Message: "The dev pages (mailbox, audit trail, metrics) are only shown to visitors on this machine.",
	})
	return false
}

// devOnlyHandler serves h to the requests devOnly lets through.
func (s *Server) devOnlyHandler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.devOnly(w, r) {
			h.ServeHTTP(w, r)
		}
	})
}

func (s *Server) mailboxPage(w http.ResponseWriter, r *http.Request) {
	if !s.devOnly(w, r) {
		return
	}
	s.render(w, r, http.StatusOK, "mailbox", struct {
		Max      int
		Messages []MailboxMessage
	}{mailboxSize, s.mailbox.Messages()})
}

func (s *Server) mailboxJSON(w http.ResponseWriter, r *http.Request) {
	if !s.devOnly(w, r) {
		return
	}
	body, err := json.Marshal(struct {
		Messages []MailboxMessage `json:"messages"`
	}{s.mailbox.Messages()})
	if err != nil {
		http.Error(w, "cannot encode messages", http.StatusInternalServerError)
		return
	}
	setPageHeaders(w.Header())
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

// linkify escapes text and turns the http(s) URLs in it into links.
func linkify(text string) template.HTML {
	var b strings.Builder
	for text != "" {
		i := indexURL(text)
		if i < 0 {
			b.WriteString(html.EscapeString(text))
			break
		}
		b.WriteString(html.EscapeString(text[:i]))
		text = text[i:]
		end := strings.IndexFunc(text, func(r rune) bool {
			return r <= ' ' || strings.ContainsRune(`<>"'()`, r)
		})
		if end < 0 {
			end = len(text)
		}
		u := strings.TrimRight(text[:end], ".,;:!?")
		esc := html.EscapeString(u)
		fmt.Fprintf(&b, `<a href="%s" rel="noreferrer">%s</a>`, esc, esc)
		text = text[len(u):]
	}
	return template.HTML(b.String())
}

// indexURL returns the index of the first "http://" or "https://" in s, or -1.
func indexURL(s string) int {
	i, j := strings.Index(s, "http://"), strings.Index(s, "https://")
	switch {
	case i < 0:
		return j
	case j < 0:
		return i
	}
	return min(i, j)
}
