package plugin

import (
	"bytes"
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gorilla/sessions"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/plugin/password"
	"github.com/sspr-go/sspr/plugin/store"
)

// maxFormBytes bounds every POST body.
const maxFormBytes = 16 << 10

// maxIdentifier bounds the identifier a user types.
const maxIdentifier = 254

// ServeHTTP serves the journey's pages. The host mounts the plugin at the
// path of [Config.BaseURL]; the plugin strips that prefix itself.
func (p *Plugin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", p.csp)

	path, ok := strings.CutPrefix(r.URL.Path, p.basePath)
	if !ok {
		p.fail(w, r, errNotFound)
		return
	}
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	post := r.Method == http.MethodPost
	if post {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			p.fail(w, r, errBadForm)
			return
		}
	}
	var err error
	switch {
	case (path == "/static/style.css" || path == "/static/brand.css") && get:
		h.Set("Content-Type", "text/css; charset=utf-8")
		h.Set("Cache-Control", "public, max-age=3600")
		if path == "/static/brand.css" {
			_, _ = w.Write(p.pages.brand)
		} else {
			_, _ = w.Write(p.pages.css)
		}
		return
	case path == "/static/password.js" && get:
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(p.pages.pwjs)
		return
	case strings.HasPrefix(path, "/static/") && strings.HasSuffix(path, ".js") && get:
		script, ok := p.scripts[strings.TrimSuffix(strings.TrimPrefix(path, "/static/"), ".js")]
		if !ok {
			err = errNotFound
			break
		}
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(script)
		return
	case (path == "" || path == "/") && get:
		err = p.startPage(w, r)
	case (path == "" || path == "/") && post:
		err = p.startJourney(w, r)
	case path == "/verify" && get:
		err = p.verifyPage(w, r)
	case path == "/verify" && post:
		err = p.verify(w, r)
	case path == "/verify/resend" && post:
		err = p.resend(w, r)
	case path == "/verify/method" && post:
		err = p.chooseMethod(w, r)
	case path == "/link" && get:
		err = p.linkPage(w, r)
	case path == "/link" && post:
		err = p.redeemLink(w, r)
	case path == "/password" && get:
		err = p.passwordPage(w, r)
	case path == "/password" && post:
		err = p.setPassword(w, r)
	case path == "/done" && get:
		err = p.donePage(w, r)
	case path == "/ticket" && (get || post):
		err = p.ticketLanding(w, r)
	case path == "/account/password" && (get || post):
		err = p.accountPassword(w, r)
	case path == "/account/security" || strings.HasPrefix(path, "/account/security/"):
		err = p.security(w, r, strings.TrimPrefix(path, "/account/security"))
	case path == "/stepup/callback" && get:
		err = p.stepUpCallback(w, r)
	case path == "" || path == "/" || path == "/verify" || path == "/verify/resend" || path == "/verify/method" ||
		path == "/link" || path == "/password" || path == "/done" || path == "/static/style.css" || path == "/static/brand.css":
		err = errMethod
	default:
		err = errNotFound
	}
	if err != nil {
		p.fail(w, r, err)
	}
}

// fail renders an error page. Only *Error's constant public text is shown.
func (p *Plugin) fail(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = internalError(err)
	}
	switch e.Kind {
	case KindInternal:
		p.log.ErrorContext(r.Context(), "sspr: request failed", slog.String("path", r.URL.Path), slog.Any("err", e))
	case KindForbidden:
		p.log.WarnContext(r.Context(), "sspr: request refused", slog.String("path", r.URL.Path), slog.String("ip", p.s.ClientIP(r)))
	}
	if e.Status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", "GET, POST")
	}
	p.render(w, r, e.Status, "error", "", errorPage{Heading: e.Heading, Message: e.Public, Link: e.Link, LinkText: e.LinkText})
}

func (p *Plugin) render(w http.ResponseWriter, r *http.Request, status int, page, csrfBinding string, data any) {
	if p.s.InsecureDisableRateLimits {
		// Loud on every page, as at start-up (redirects stay quiet).
		p.log.WarnContext(r.Context(), "sspr: rate limits are OFF (InsecureDisableRateLimits)", slog.String("page", page))
	}
	tr := p.tr(r)
	v := view{Lang: tr.Lang, T: tr, Product: p.s.ProductName, Logo: p.s.LogoURL, Base: p.basePath, Page: data}
	if csrfBinding != "" {
		v.CSRF = p.keys.csrfToken(csrfBinding)
	}
	body, err := p.pages.page(page, v)
	if err != nil {
		p.log.ErrorContext(r.Context(), "sspr: render failed", slog.String("page", page), slog.Any("err", err))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("Something went wrong. Please try again later.\n"))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func (p *Plugin) redirect(w http.ResponseWriter, path string, query url.Values) {
	u := p.basePath + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	w.Header().Set("Location", u)
	// No body, and saying so: a handler that flushes the redirect before
	// its last steps (startJourney) would otherwise answer in chunks, and
	// the client would wait for the closing chunk after those steps.
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusSeeOther)
}

// Page data.

type startPage struct {
	Identifier string
	Error      string
	Notice     string
	ReturnTo   string
	SignInURL  string
}

type confirmPage struct{ Token string }

type elsewherePage struct{}

type passwordPage struct {
	Action       string
	Heading      string
	Username     string
	Errors       []string
	ConfirmError string
	MinLength    int
	MaxLength    int
	// Current asks for the current password (a signed-in change with a
	// [PasswordVerifier]); CurrentError says what was wrong with it.
	Current      bool
	CurrentError string
}

// Focus names the field that gets the focus: the first one with an error,
// else the first one.
func (pp passwordPage) Focus() string {
	switch {
	case pp.CurrentError != "":
		return "current"
	case len(pp.Errors) > 0:
		return "password"
	case pp.ConfirmError != "":
		return "confirm"
	case pp.Current:
		return "current"
	}
	return "password"
}

type donePage struct{ SignInURL string }

type errorPage struct{ Heading, Message, Link, LinkText string }

// Cookie and CSRF helpers.

// cookieID returns the ID the browser's cookie holds, or "".
func (p *Plugin) cookieID(r *http.Request) string {
	sess, err := p.cookies.Get(r, cookieName)
	if err != nil {
		return "" // bad or old-key cookie: treat as none
	}
	id, _ := sess.Values["id"].(string)
	return id
}

func (p *Plugin) setCookieID(w http.ResponseWriter, r *http.Request, id string) error {
	sess, _ := p.cookies.Get(r, cookieName) // on error sess is a fresh session
	sess.Values = map[any]any{"id": id}
	if err := sess.Save(r, w); err != nil {
		return internalError(fmt.Errorf("sspr: save cookie: %w", err))
	}
	return nil
}

func (p *Plugin) clearCookie(w http.ResponseWriter, r *http.Request) {
	sess, _ := p.cookies.Get(r, cookieName)
	sess.Options = &sessions.Options{Path: cookiePath(p.basePath), MaxAge: -1, HttpOnly: true, Secure: p.s.secure, SameSite: http.SameSiteLaxMode}
	_ = sess.Save(r, w)
}

// checkPost verifies the Origin (or Sec-Fetch-Site) of a POST and its CSRF
// token bound to binding.
func (p *Plugin) checkPost(r *http.Request, binding string) error {
	if !p.sameOrigin(r) || !p.keys.checkCSRF(binding, r.PostForm.Get("csrf")) {
		return errForbidden
	}
	return nil
}

// sameOrigin accepts a request whose Origin is the plugin's origin. Pages
// are served with Referrer-Policy no-referrer, so browsers send "Origin:
// null" for same-origin form posts; then Sec-Fetch-Site decides. Clients
// that send neither rely on the CSRF token alone.
func (p *Plugin) sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		return o == p.baseOrigin
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return true
	}
	return false
}

// returnTo returns raw if it is an absolute URL under one of the
// allow-listed prefixes, else "".
func (p *Plugin) returnTo(raw string) string {
	if raw == "" || len(raw) > 2048 {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return ""
	}
	for _, a := range p.s.allowList {
		if u.Scheme == a.Scheme && u.Host == a.Host && pathUnder(u.Path, a.Path) {
			return u.String()
		}
	}
	return ""
}

func pathUnder(path, prefix string) bool {
	if prefix == "" || prefix == "/" {
		return true
	}
	if strings.Contains(path, "..") {
		return false
	}
	return path == prefix || strings.HasPrefix(path, strings.TrimSuffix(prefix, "/")+"/")
}

func (p *Plugin) signInURL(j store.Journey) string {
	if j.ReturnTo != "" {
		return j.ReturnTo
	}
	return p.s.signIn.String()
}

// truncateUTF8 cuts s to at most n bytes without splitting a character,
// and replaces invalid UTF-8, so what reaches the store is valid text.
func truncateUTF8(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Journey helpers.

// activeJourney returns the journey of the browser's cookie if it is usable.
func (p *Plugin) activeJourney(ctx context.Context, r *http.Request) (store.Journey, error) {
	j, why, err := p.browserJourney(ctx, r)
	if err == nil && why != "" {
		err = errJourneyMissing
	}
	return j, err
}

// browserJourney returns the journey of the browser's cookie and, when it
// is not usable, why not (for the audit trail; never shown): "no journey
// cookie", "unknown journey", "journey ended" or "journey expired". The
// journey is zero unless the store has it. Errors are faults.
func (p *Plugin) browserJourney(ctx context.Context, r *http.Request) (store.Journey, string, error) {
	id := p.cookieID(r)
	if id == "" {
		return store.Journey{}, "no journey cookie", nil
	}
	j, err := p.s.Store.Journey(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Journey{}, "unknown journey", nil
	case err != nil:
		return j, "", internalError(err)
	case !j.CompletedAt.IsZero():
		return j, "journey ended", nil
	case !p.s.Now().Before(j.ExpiresAt):
		return j, "journey expired", nil
	}
	return j, "", nil
}

// userSubject reads a user from the directory and describes them to the
// flows.
func (p *Plugin) userSubject(ctx context.Context, userID string) (User, flows.Subject, error) {
	u, err := p.s.Directory.User(ctx, userID)
	if err != nil {
		return u, flows.Subject{}, internalError(fmt.Errorf("sspr: directory: %w", err))
	}
	s, err := p.subject(ctx, u)
	if err != nil {
		return u, s, internalError(err)
	}
	return u, s, nil
}

// pending returns the flow the journey is currently verifying: among the
// flows it has not proved yet, the one that issued the newest challenge.
// It returns nil when there is none.
func (p *Plugin) pending(ctx context.Context, j store.Journey) (flows.Flow, error) {
	var best flows.Flow
	var newest store.Challenge
	for _, f := range p.s.Flows {
		if slices.Contains(j.Verified, f.ID()) {
			continue
		}
		c, err := p.s.Store.LatestChallenge(ctx, j.ID, f.ID())
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, internalError(err)
		}
		if best == nil || c.CreatedAt.After(newest.CreatedAt) {
			best, newest = f, c
		}
	}
	return best, nil
}

func (p *Plugin) audit(ctx context.Context, tx store.Tx, r *http.Request, event, journeyID, userID, outcome, detail string) error {
	return p.appendAudit(ctx, tx, store.AuditEvent{
		Event: event, JourneyID: journeyID, UserID: userID,
		IP: p.s.ClientIP(r), UserAgent: truncateUTF8(r.UserAgent(), 256), Outcome: outcome, Detail: detail,
	})
}

// appendAudit writes e (stamped now) in tx and reports it to the log and
// the metrics: after the commit when tx comes from [Plugin.atomic], at
// once otherwise.
func (p *Plugin) appendAudit(ctx context.Context, tx store.Tx, e store.AuditEvent) error {
	e.Time = p.s.Now()
	if _, err := tx.AppendAudit(ctx, e); err != nil {
		return fmt.Errorf("sspr: audit: %w", err)
	}
	if at, ok := tx.(auditedTx); ok {
		*at.events = append(*at.events, e)
		return nil
	}
	p.record(ctx, e)
	return nil
}

// tooMany sets Retry-After and returns the message that says how long to
// wait.
func tooMany(w http.ResponseWriter, retry time.Duration, tr T) string {
	secs := max(int(retry/time.Second), 1)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	mins := (secs + 59) / 60
	if mins <= 1 {
		return tr.Get("limit.minute")
	}
	return tr.Get("limit.minutes", "n", mins)
}

// Handlers.

func (p *Plugin) startPage(w http.ResponseWriter, r *http.Request) error {
	id := p.cookieID(r)
	if id == "" {
		// No journey yet: a fresh random ID binds the form's CSRF token to
		// this browser. Nothing is stored until the form is posted.
		id = randomID(16)
		if err := p.setCookieID(w, r, id); err != nil {
			return err
		}
	}
	rt := p.returnTo(r.URL.Query().Get("return_to"))
	signIn := rt
	if signIn == "" {
		signIn = p.s.signIn.String()
	}
	p.render(w, r, http.StatusOK, "start", id, startPage{ReturnTo: rt, SignInURL: signIn})
	return nil
}

// validIdentifier reports whether s is a plausible identifier.
func validIdentifier(s string) bool {
	if s == "" || len(s) > maxIdentifier {
		return false
	}
	for _, c := range s {
		if unicode.IsControl(c) {
			return false
		}
	}
	return true
}

func (p *Plugin) startJourney(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	browserID := p.cookieID(r)
	if err := p.checkPost(r, browserID); err != nil {
		return err
	}
	identifier := strings.TrimSpace(r.PostForm.Get("identifier"))
	rt := p.returnTo(r.PostForm.Get("return_to"))
	page := startPage{Identifier: identifier, ReturnTo: rt, SignInURL: rt}
	if page.SignInURL == "" {
		page.SignInURL = p.s.signIn.String()
	}
	if !validIdentifier(identifier) {
		page.Error = p.tr(r).Get("start.error")
		p.render(w, r, http.StatusBadRequest, "start", browserID, page)
		return nil
	}

	// Look the user up before the transaction: the directory is the host's
	// I/O and must not hold the store's write lock.
	var subject, decoy flows.Subject
	accountKey := "unknown:" + strings.ToLower(identifier)
	known := false
	u, err := p.s.Directory.FindUser(ctx, identifier)
	switch {
	case err == nil:
		known = true
		accountKey = "user:" + u.ID
		if subject, err = p.subject(ctx, u); err != nil {
			return internalError(err)
		}
	case errors.Is(err, ErrUserNotFound):
		// The host's contact lookup costs the same for an identifier that
		// matches nobody: ask for a user ID no user has.
		// What it answers (an error included) is thrown away: an unknown
		// identifier must not fail where a known one succeeds.
		decoy, _ = p.subject(ctx, User{ID: DecoyUserID})
		decoy.UserID = DecoyUserID
	default:
		return internalError(fmt.Errorf("sspr: directory: %w", err))
	}
	// Every journey begins the first configured contact channel, whoever
	// asks, so that the next page never tells accounts apart: a user who
	// cannot use it (a phone only) gets a decoy of it and switches on that
	// page, as anyone can. Every channel's options are read for every
	// identifier: an unknown one's for DecoyUserID, the answers (errors
	// included) thrown away.
	flow, option := p.channels[0], flows.Option{Flow: p.channels[0].ID()}
	usable, first := false, false
	for i, f := range p.channels {
		if !known {
			_, _ = f.Options(ctx, decoy)
			continue
		}
		opts, err := f.Options(ctx, subject)
		if err != nil {
			return internalError(err)
		}
		if len(opts) > 0 {
			usable = true
			if i == 0 {
				option, first = opts[0], true
			}
		}
	}

	var addrs []address
	if p.s.NotifyResetRequests && usable {
		if addrs, err = p.addresses(ctx, subject); err != nil {
			return internalError(err)
		}
	}

	now := p.s.Now()
	ip := p.s.ClientIP(r)
	j := store.Journey{ID: journeyID(now), ReturnTo: rt, Locale: p.locale(r), CreatedAt: now, ExpiresAt: now.Add(p.s.JourneyTTL)}
	var ipLimit limitResult
	err = p.atomic(ctx, func(tx store.Tx) error {
		var err error
		ipLimit, err = p.limits.hit(ctx, tx, p.s.Limits.StartsPerIP, p.limits.key("start-ip", ip), now)
		if err != nil {
			return err
		}
		if ipLimit.exceeded {
			return p.audit(ctx, tx, r, "journey.start", "", "", "limited", "per-IP limit")
		}
		acct, err := p.limits.hit(ctx, tx, p.s.Limits.StartsPerAccount, p.limits.key("start-account", accountKey), now)
		if err != nil {
			return err
		}
		outcome, detail, s, opt := "ok", "method "+flow.ID(), subject, option
		switch {
		case !known:
			outcome, s, opt = "decoy", flows.Subject{}, flows.Option{Flow: flow.ID()}
		case !usable:
			outcome, detail, s, opt = "decoy", "no usable contact channel", flows.Subject{}, flows.Option{Flow: flow.ID()}
		case acct.exceeded:
			// Answer like success and send nothing.
			outcome, detail, s, opt = "limited", "per-account limit", flows.Subject{}, flows.Option{Flow: flow.ID()}
		}
		j.UserID = s.UserID
		if err := tx.CreateJourney(ctx, j); err != nil {
			return err
		}
		if outcome == "ok" && !first {
			// The user can verify another channel, not this one.
			s, opt, detail = flows.Subject{}, flows.Option{Flow: flow.ID()}, "method "+flow.ID()+" (decoy: the user has another channel)"
		}
		var sent []string
		if err := flow.Begin(ctx, flows.BeginRequest{Tx: tx, Env: env{p: p, sent: &sent, journey: j.ID, user: s.UserID}, JourneyID: j.ID, Subject: s, Option: opt, Locale: j.Locale}); err != nil {
			return err
		}
		if outcome == "ok" && len(addrs) > 0 {
			// Tell the user's other addresses (Config.NotifyResetRequests).
			rest := slices.DeleteFunc(slices.Clone(addrs), func(a address) bool { return slices.Contains(sent, a.to) })
			data := p.noticeData(now)
			if _, err := p.queueNotices(ctx, tx, now, rest, "requested", j.Locale, data); err != nil {
				return err
			}
		}
		userID := ""
		if known {
			userID = u.ID
		}
		return p.audit(ctx, tx, r, "journey.start", j.ID, userID, outcome, detail)
	})
	if err != nil {
		return internalError(err)
	}
	if ipLimit.exceeded {
		p.log.WarnContext(ctx, "sspr: start limited per IP", slog.String("ip", ip))
		page.Notice = tooMany(w, ipLimit.retryAfter, p.tr(r))
		p.render(w, r, http.StatusTooManyRequests, "start", browserID, page)
		return nil
	}
	if err := p.setCookieID(w, r, j.ID); err != nil {
		return err
	}
	p.redirect(w, "/verify", nil)
	// Wake the outbox only once the answer is out: a known identifier's
	// delivery must not run while this response is produced (timing).
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	p.worker.Kick()
	return nil
}

// failureTexts are the message keys that explain a failed verification.
type failureTexts struct {
	malformed, wrong, exhausted, expired, dead string
}

// verifyTexts picks the failure texts that fit flow f: the email's
// (which mention the email), a sent code's, a passkey's, security
// questions', or a bound authenticator's.
func verifyTexts(f flows.Flow) failureTexts {
	page := ""
	if pp, ok := f.(flows.Prompter); ok {
		page = pp.Prompt().Page
	}
	switch {
	case f.Kind() == flows.KindChannel && page == "":
		return failureTexts{"verify.malformed_email", "verify.wrong_code", "verify.exhausted_email", "verify.expired_email", "verify.dead_email"}
	case f.Kind() == flows.KindChannel:
		return failureTexts{"verify.malformed_code", "verify.wrong_code", "verify.exhausted_code", "verify.expired_code", "verify.dead_code"}
	case page == "webauthn":
		return failureTexts{"verify.malformed", "verify.wrong_passkey", "verify.exhausted", "verify.expired", "verify.expired"}
	case page == "questions":
		return failureTexts{"questions.malformed", "questions.wrong", "verify.exhausted", "verify.expired", "verify.expired"}
	}
	return failureTexts{"verify.malformed", "verify.wrong_code", "verify.exhausted", "verify.expired", "verify.expired"}
}

// codeInfo is implemented by flows that send a typed code.
type codeInfo interface {
	CodeLength() int
	CodeTTL() time.Duration
}

// assertionOptioner is implemented by flows whose page needs options from
// their challenge (WebAuthn).
type assertionOptioner interface {
	AssertionOptions(ctx context.Context, st store.Tx, journeyID string) (json.RawMessage, error)
}

// choice is another method the user may switch to.
type choice struct {
	Flow, Label string
}

// stepPage is the data of a verification page ("check", "code" or a
// flow's own page such as "webauthn").
type stepPage struct {
	// Flow is the ID of the flow being verified.
	Flow string
	// Error and Notice are messages for the user.
	Error, Notice string
	// CodeLength and Minutes describe an emailed code.
	CodeLength, Minutes int
	// Prompt describes a bound flow's page.
	Prompt flows.Prompt
	// Options is the flow's JSON for its script (WebAuthn).
	Options template.JS
	// Data is the flow's own page data ([flows.PageDataer]), such as the
	// security questions asked.
	Data any
	// Script is the URL of the flow's script, if any.
	Script string
	// Others are the methods the user may use instead.
	Others []choice
	// Resend offers a new code (a contact channel on the code page).
	Resend bool
	// StepUp marks a step-up journey (a signed-in user confirming it's
	// them), whose texts differ from a reset's.
	StepUp bool
	// HelpURL is the helpdesk, for users who lost their factors.
	HelpURL string
	// Leave and LeaveLabel (a message key) are the way out of the page:
	// "start again" for a reset, "cancel" back to the account for a
	// step-up.
	Leave, LeaveLabel string
}

// current returns the flow a verification request is about: the one the
// request names (form or query field "flow") if it has a challenge in this
// journey and is not proved yet, else the pending one.
func (p *Plugin) current(ctx context.Context, j store.Journey, requested string) (flows.Flow, error) {
	if f, ok := p.byID[requested]; ok && !slices.Contains(j.Verified, requested) {
		_, err := p.s.Store.LatestChallenge(ctx, j.ID, requested)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, internalError(err)
		}
	}
	return p.pending(ctx, j)
}

// renderStep renders the page of flow f for journey j.
func (p *Plugin) renderStep(w http.ResponseWriter, r *http.Request, status int, j store.Journey, f flows.Flow, pr progress, page stepPage) error {
	page.Flow = f.ID()
	page.StepUp = j.Kind == store.KindStepUp
	name := "check"
	if ci, ok := f.(codeInfo); ok {
		page.CodeLength, page.Minutes = ci.CodeLength(), int(ci.CodeTTL()/time.Minute)
	}
	if pp, ok := f.(flows.Prompter); ok {
		page.Prompt = pp.Prompt()
		name = cmp.Or(page.Prompt.Page, "code")
		page.Resend = f.Kind() == flows.KindChannel
	} else if f.Kind() != flows.KindChannel {
		name = "code"
		page.Prompt = flows.Prompt{Heading: "Enter your code", Label: "Code", InputMode: "text", Autocomplete: "off", MaxLength: 64, Choice: f.ID()}
	}
	if pd, ok := f.(flows.PageDataer); ok {
		data, err := pd.PageData(r.Context(), p.s.Store, j.ID)
		if err != nil && !errors.Is(err, flows.ErrNoChallenge) {
			return internalError(err)
		}
		page.Data = data
	}
	if ao, ok := f.(assertionOptioner); ok {
		raw, err := ao.AssertionOptions(r.Context(), p.s.Store, j.ID)
		if err != nil {
			return internalError(err)
		}
		page.Options = template.JS(safeJSON(raw))
	}
	if _, ok := p.scripts[f.ID()]; ok {
		page.Script = p.basePath + "/static/" + f.ID() + ".js"
	}
	if f.Kind() == flows.KindBound && j.Kind != store.KindStepUp {
		page.HelpURL = p.s.HelpURL
	}
	page.Leave, page.LeaveLabel = p.basePath+"/", "common.start_again"
	if j.Kind == store.KindStepUp {
		page.Leave, page.LeaveLabel = p.accountURL(), "common.cancel"
	}
	if p.channelStep(j) && f.Kind() == flows.KindChannel {
		// The contact-channel step of a reset offers every configured
		// channel, whether or not this identifier has it: the page must
		// look the same for every identifier.
		for _, c := range p.channels {
			if c.ID() != f.ID() {
				page.Others = append(page.Others, choice{Flow: c.ID(), Label: channelLabel(c)})
			}
		}
	} else {
		for _, c := range pr.next {
			if c.flow.ID() == f.ID() || c.flow.Kind() != f.Kind() {
				continue
			}
			label := c.option.Hint
			if pp, ok := c.flow.(flows.Prompter); ok {
				label = cmp.Or(pp.Prompt().Choice, label)
			}
			page.Others = append(page.Others, choice{Flow: c.flow.ID(), Label: label})
		}
	}
	p.render(w, r, status, name, j.ID, page)
	return nil
}

// channelStep reports whether reset journey j has yet to prove a contact
// channel: the step every identifier, known or not, goes through.
func (p *Plugin) channelStep(j store.Journey) bool {
	if j.Kind == store.KindStepUp {
		return false
	}
	for _, id := range j.Verified {
		if f, ok := p.byID[id]; ok && f.Kind() == flows.KindChannel {
			return false
		}
	}
	return true
}

// channelLabel names a contact channel among the choices, never with an
// address: its prompt's choice, else the message key "<flow ID>.choice".
func channelLabel(f flows.Flow) string {
	if pp, ok := f.(flows.Prompter); ok && pp.Prompt().Choice != "" {
		return pp.Prompt().Choice
	}
	return f.ID() + ".choice"
}

// safeJSON makes JSON safe inside a <script type="application/json">
// element.
func safeJSON(raw []byte) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return "null"
	}
	var out bytes.Buffer
	json.HTMLEscape(&out, buf.Bytes())
	return out.String()
}

func (p *Plugin) verifyPage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	j, err := p.activeJourney(ctx, r)
	if err != nil {
		return err
	}
	pr, err := p.progress(ctx, j)
	if err != nil {
		return err
	}
	if pr.done && j.Kind == store.KindStepUp {
		w.Header().Set("Location", stepUpTarget(j, p.accountURL()))
		w.WriteHeader(http.StatusSeeOther)
		return nil
	}
	if pr.done {
		p.redirect(w, "/password", nil)
		return nil
	}
	f, err := p.current(ctx, j, r.URL.Query().Get("flow"))
	if err != nil {
		return err
	}
	if f == nil {
		return p.chooseOrHelp(w, r, j, pr)
	}
	var page stepPage
	if r.URL.Query().Get("sent") == "1" {
		page.Notice = p.tr(r).Get("check.sent")
		if _, ok := f.(flows.Prompter); ok && f.Kind() == flows.KindChannel {
			page.Notice = p.tr(r).Get("code.sent")
		}
	}
	return p.renderStep(w, r, http.StatusOK, j, f, pr, page)
}

// choosePage lists the methods the user may verify next.
type choosePage struct {
	Choices []choice
	HelpURL string
}

// chooseOrHelp shows the methods the user can use next or, when there are
// none, tells them to contact their helpdesk.
func (p *Plugin) chooseOrHelp(w http.ResponseWriter, r *http.Request, j store.Journey, pr progress) error {
	var page choosePage
	for _, c := range pr.next {
		label := c.option.Hint
		if pp, ok := c.flow.(flows.Prompter); ok {
			label = cmp.Or(pp.Prompt().Choice, label)
		}
		page.Choices = append(page.Choices, choice{Flow: c.flow.ID(), Label: label})
	}
	if len(page.Choices) == 0 {
		page.HelpURL = p.s.HelpURL
	}
	p.render(w, r, http.StatusOK, "choose", j.ID, page)
	return nil
}

// chooseMethod begins the flow the user picked (once per journey: a flow
// that already has a challenge is shown, not begun again, so switching
// methods never grants fresh attempts).
func (p *Plugin) chooseMethod(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	j, err := p.activeJourney(ctx, r)
	if err != nil {
		return err
	}
	if err := p.checkPost(r, j.ID); err != nil {
		return err
	}
	pr, err := p.progress(ctx, j)
	if err != nil {
		return err
	}
	c, ok := pr.find(r.PostForm.Get("flow"))
	subject := pr.subject
	if f, channel := p.byID[r.PostForm.Get("flow")]; !ok && channel && f.Kind() == flows.KindChannel && p.channelStep(j) {
		// A channel this identifier does not have: a decoy of it, exactly
		// as for an unknown identifier (nothing is sent).
		c, ok, subject = candidate{flow: f, option: flows.Option{Flow: f.ID()}}, true, flows.Subject{}
	}
	if !ok {
		p.redirect(w, "/verify", nil)
		return nil
	}
	_, err = p.s.Store.LatestChallenge(ctx, j.ID, c.flow.ID())
	switch {
	case errors.Is(err, store.ErrNotFound):
		err = p.atomic(ctx, func(tx store.Tx) error {
			return p.begin(ctx, tx, r, j, subject, c)
		})
		if err != nil {
			return internalError(err)
		}
		p.worker.Kick()
	case err != nil:
		return internalError(err)
	}
	p.redirect(w, "/verify", url.Values{"flow": {c.flow.ID()}})
	return nil
}

// begin starts candidate c for journey j in tx and records it.
func (p *Plugin) begin(ctx context.Context, tx store.Tx, r *http.Request, j store.Journey, s flows.Subject, c candidate) error {
	if err := c.flow.Begin(ctx, flows.BeginRequest{Tx: tx, Env: env{p: p, journey: j.ID, user: j.UserID}, JourneyID: j.ID, Subject: s, Option: c.option, Locale: j.Locale,
		StepUp: j.Kind == store.KindStepUp}); err != nil {
		return err
	}
	return p.audit(ctx, tx, r, "method.begin", j.ID, j.UserID, "ok", c.flow.ID())
}

// countWrong counts a wrong response on the journey's challenge of flow,
// without checking anything: it presents a random value as the code,
// which the store counts as a mismatch.
func countWrong(ctx context.Context, tx store.Tx, journeyID, flow string, now time.Time) error {
	c, err := tx.LatestChallenge(ctx, journeyID, flow)
	if err != nil {
		return flows.ErrNoChallenge
	}
	c, err = tx.ConsumeCode(ctx, c.ID, []byte(randomID(32)), now)
	switch {
	case errors.Is(err, store.ErrMismatch) && c.Attempts < c.MaxAttempts:
		return &flows.VerifyError{Err: flows.ErrWrongResponse, AttemptsLeft: c.MaxAttempts - c.Attempts}
	case errors.Is(err, store.ErrMismatch), errors.Is(err, store.ErrExhausted):
		return &flows.VerifyError{Err: flows.ErrExhausted}
	case errors.Is(err, store.ErrExpired):
		return flows.ErrExpired
	case errors.Is(err, store.ErrUsed):
		return flows.ErrUsed
	}
	return &flows.VerifyError{Err: flows.ErrWrongResponse}
}

// attemptsOf returns the attempts counted on the journey's latest
// challenge of flow (-1 when there is none), so that the engine knows
// whether a verification counted a wrong response.
func attemptsOf(ctx context.Context, tx store.Tx, journeyID, flow string) int {
	c, err := tx.LatestChallenge(ctx, journeyID, flow)
	if err != nil {
		return -1
	}
	return c.Attempts
}

// failureKey is the per-account key of wrong-code counting.
func failureKey(j store.Journey) string {
	if j.UserID == "" {
		return "journey:" + j.ID
	}
	return "user:" + j.UserID
}

// proved records that j proved flow f (in tx) and begins the next method
// the policy asks for, if any. It returns the journey's new progress.
func (p *Plugin) proved(ctx context.Context, tx store.Tx, r *http.Request, j store.Journey, f flows.Flow, after progress) error {
	j.Verified = append(slices.Clone(j.Verified), f.ID())
	if j.Kind == store.KindStepUp && after.done {
		// A step-up is good for StepUpMaxAge from now.
		j.ExpiresAt = p.s.Now().Add(p.s.StepUpMaxAge)
	}
	if err := tx.UpdateJourney(ctx, j); err != nil {
		return err
	}
	if err := p.audit(ctx, tx, r, "verify."+f.ID(), j.ID, j.UserID, "ok", ""); err != nil {
		return err
	}
	if after.done || len(after.next) == 0 {
		return nil
	}
	if _, err := tx.LatestChallenge(ctx, j.ID, after.next[0].flow.ID()); err == nil {
		return nil // begun earlier in this journey
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return p.begin(ctx, tx, r, j, after.subject, after.next[0])
}

func (p *Plugin) verify(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	j, err := p.activeJourney(ctx, r)
	if err != nil {
		return err
	}
	if err := p.checkPost(r, j.ID); err != nil {
		return err
	}
	f, err := p.current(ctx, j, r.PostForm.Get("flow"))
	if err != nil {
		return err
	}
	if f == nil {
		p.redirect(w, "/verify", nil)
		return nil
	}
	// One read of the user's standing serves the page of a failure (pr)
	// and the next step after a success (after).
	pr, err := p.progress(ctx, j)
	if err != nil {
		return err
	}
	after := p.progressAfter(j, f, pr)
	now := p.s.Now()
	ip := p.s.ClientIP(r)
	// A flow whose check is expensive (argon2id) does it now, before the
	// write transaction, so that the service's other writes never wait
	// for it; the flow's Verify re-reads and trusts the result only for
	// what it was computed against. Its attempts on one journey run one at
	// a time (in this process), and each is counted against the per-IP
	// limit before it hashes: concurrent posts cannot buy more hashes than
	// the challenge's tries and the per-IP limit allow. Nothing is hashed
	// for an attempt a limit refuses.
	var prepared any
	var ipLimit, acctLimit limitResult
	ipCounted := false
	if pf, ok := f.(flows.Preparer); ok {
		unlock, err := p.verifying.lock(ctx, j.ID)
		if err != nil {
			return err
		}
		defer unlock()
		if err := p.atomic(ctx, func(tx store.Tx) error {
			var err error
			ipLimit, err = p.limits.hit(ctx, tx, p.s.Limits.VerifiesPerIP, p.limits.key("verify-ip", ip), now)
			return err
		}); err != nil {
			return internalError(err)
		}
		ipCounted = true
		acctPeek, err := p.limits.peek(ctx, p.s.Store, p.s.Limits.FailuresPerAccount, p.limits.key("failures", failureKey(j)), now)
		if err != nil {
			return internalError(err)
		}
		if !ipLimit.exceeded && !acctPeek.exceeded {
			prepared, err = pf.Prepare(ctx, flows.PrepareRequest{Store: p.s.Store, Env: env{p: p}, JourneyID: j.ID, Subject: after.subject, Form: r.PostForm, HTTP: r})
			if err != nil {
				return internalError(err)
			}
		}
	}
	var verr error
	err = p.atomic(ctx, func(tx store.Tx) error {
		var err error
		if !ipCounted {
			if ipLimit, err = p.limits.hit(ctx, tx, p.s.Limits.VerifiesPerIP, p.limits.key("verify-ip", ip), now); err != nil {
				return err
			}
		}
		if ipLimit.exceeded {
			return nil
		}
		fk := p.limits.key("failures", failureKey(j))
		if acctLimit, err = p.limits.peek(ctx, tx, p.s.Limits.FailuresPerAccount, fk, now); err != nil {
			return err
		}
		if acctLimit.exceeded {
			// Over the account's daily failure limit the response is not
			// checked, and the answer is exactly that of a wrong one (the
			// attempt counts on the challenge): a message of its own would
			// tell a known account from an unknown one, whose failures
			// count per journey.
			verr = countWrong(ctx, tx, j.ID, f.ID(), now)
			if errors.Is(verr, flows.ErrNoChallenge) {
				verr = &flows.VerifyError{Err: flows.ErrWrongResponse}
			}
			return p.audit(ctx, tx, r, "verify."+f.ID(), j.ID, j.UserID, "limited", "per-account failure limit")
		}
		before := attemptsOf(ctx, tx, j.ID, f.ID())
		verr = f.Verify(ctx, flows.VerifyRequest{Tx: tx, Env: env{p: p}, JourneyID: j.ID, Subject: after.subject, Form: r.PostForm, HTTP: r, Prepared: prepared})
		switch {
		case verr == nil:
			return p.proved(ctx, tx, r, j, f, after)
		case errors.Is(verr, flows.ErrMalformed):
			return nil
		case (errors.Is(verr, flows.ErrWrongResponse) || errors.Is(verr, flows.ErrExhausted)) && attemptsOf(ctx, tx, j.ID, f.ID()) > before:
			// A response was checked and counted on the challenge: it
			// counts for the account too. Posts to a code that is already
			// dead check nothing and count nowhere (else a few hundred of
			// them would lock the account's owner out for a day).
			if _, err := p.limits.hit(ctx, tx, p.s.Limits.FailuresPerAccount, fk, now); err != nil {
				return err
			}
			if errors.Is(verr, flows.ErrExhausted) {
				// The last try went wrong: tell the user (ASVS V6.3.5).
				if err := p.queueAttemptsNotice(ctx, tx, j, f, now); err != nil {
					return err
				}
			}
			return p.audit(ctx, tx, r, "verify."+f.ID(), j.ID, j.UserID, "failed", "wrong response")
		case errors.Is(verr, flows.ErrWrongResponse), errors.Is(verr, flows.ErrExhausted):
			return p.audit(ctx, tx, r, "verify."+f.ID(), j.ID, j.UserID, "failed", "challenge not usable")
		case errors.Is(verr, flows.ErrExpired), errors.Is(verr, flows.ErrUsed), errors.Is(verr, flows.ErrNoChallenge):
			return p.audit(ctx, tx, r, "verify."+f.ID(), j.ID, j.UserID, "failed", "challenge not usable")
		}
		return verr
	})
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			// Another request advanced the journey meanwhile.
			p.redirect(w, "/verify", nil)
			return nil
		}
		return internalError(err)
	}
	if verr == nil && !ipLimit.exceeded {
		p.worker.Kick()
		p.afterProved(w, r, j, f, after)
		return nil
	}
	if errors.Is(verr, flows.ErrExhausted) {
		p.worker.Kick() // the attempts notice
	}
	channel := f.Kind() == flows.KindChannel
	texts := verifyTexts(f)
	tr := p.tr(r)
	var page stepPage
	status := http.StatusBadRequest
	switch {
	case ipLimit.exceeded:
		page.Error = tooMany(w, ipLimit.retryAfter, p.tr(r))
		status = http.StatusTooManyRequests
	case errors.Is(verr, flows.ErrMalformed) && channel:
		n := 8
		if ci, ok := f.(codeInfo); ok {
			n = ci.CodeLength()
		}
		page.Error = tr.Get(texts.malformed, "n", n)
	case errors.Is(verr, flows.ErrMalformed):
		page.Error = tr.Get(texts.malformed)
	case errors.Is(verr, flows.ErrWrongResponse):
		var ve *flows.VerifyError
		left := 0
		if errors.As(verr, &ve) {
			left = ve.AttemptsLeft
		}
		what := tr.Get(texts.wrong)
		if left == 1 {
			page.Error = what + " " + tr.Get("verify.tries_left_one")
		} else {
			page.Error = what + " " + tr.Get("verify.tries_left", "n", left)
		}
	case errors.Is(verr, flows.ErrExhausted):
		page.Error = tr.Get(texts.exhausted)
	case errors.Is(verr, flows.ErrExpired):
		page.Error = tr.Get(texts.expired)
	default:
		page.Error = tr.Get(texts.dead)
	}
	return p.renderStep(w, r, status, j, f, pr, page)
}

func (p *Plugin) resend(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	j, err := p.activeJourney(ctx, r)
	if err != nil {
		return err
	}
	if err := p.checkPost(r, j.ID); err != nil {
		return err
	}
	f, err := p.current(ctx, j, r.PostForm.Get("flow"))
	if err != nil {
		return err
	}
	if f == nil || f.Kind() != flows.KindChannel {
		p.redirect(w, "/verify", nil)
		return nil
	}
	var user User
	var subject flows.Subject
	if j.UserID != "" {
		if user, subject, err = p.userSubject(ctx, j.UserID); err != nil {
			return err
		}
	} else {
		// A decoy asks the host as a real user's resend does.
		user, subject = p.decoyUserSubject(ctx)
		subject = flows.Subject{} // but begins as a decoy
	}
	var berr error
	err = p.atomic(ctx, func(tx store.Tx) error {
		berr = f.Begin(ctx, flows.BeginRequest{Tx: tx, Env: env{p: p, journey: j.ID, user: j.UserID}, JourneyID: j.ID, Subject: subject, Locale: j.Locale, Resend: true,
			StepUp: j.Kind == store.KindStepUp})
		outcome := "ok"
		switch {
		case berr == nil:
		case errors.Is(berr, flows.ErrExhausted), errors.Is(berr, flows.ErrUsed), errors.Is(berr, flows.ErrNoChallenge):
			outcome = "failed"
		default:
			return berr
		}
		return p.audit(ctx, tx, r, "resend."+f.ID(), j.ID, j.UserID, outcome, "")
	})
	if err != nil {
		return internalError(err)
	}
	if berr != nil {
		// The user was read above: only the rest of the standing is read
		// (as [Plugin.progress] would, which skips it all for a decoy).
		var pr progress
		if j.UserID != "" {
			st, err := p.standingOf(ctx, j.UserID, user, subject)
			if err != nil {
				return err
			}
			pr = p.evaluate(j, st)
		} else {
			_, _ = p.standingOf(ctx, DecoyUserID, user, flows.Subject{UserID: DecoyUserID})
		}
		return p.renderStep(w, r, http.StatusTooManyRequests, j, f, pr,
			stepPage{Error: p.tr(r).Get("resend.limit")})
	}
	p.worker.Kick()
	p.redirect(w, "/verify", url.Values{"sent": {"1"}, "flow": {f.ID()}})
	return nil
}

// peekLink finds the flow and journey of a link token without using it.
func (p *Plugin) peekLink(ctx context.Context, token string) (flows.LinkRedeemer, string, error) {
	for _, lr := range p.redeemers {
		jid, err := lr.PeekLink(ctx, p.s.Store, env{p: p}, token)
		switch {
		case err == nil:
			return lr, jid, nil
		case errors.Is(err, flows.ErrNoChallenge):
			continue
		case errors.Is(err, flows.ErrExpired), errors.Is(err, flows.ErrExhausted):
			return nil, "", errLinkExpired
		case errors.Is(err, flows.ErrUsed):
			return nil, "", errLinkUsed
		default:
			return nil, "", internalError(err)
		}
	}
	return nil, "", errLinkInvalid
}

func (p *Plugin) linkPage(w http.ResponseWriter, r *http.Request) error {
	token := r.URL.Query().Get("token")
	_, jid, err := p.peekLink(r.Context(), token)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(jid), []byte(p.cookieID(r))) != 1 {
		p.render(w, r, http.StatusOK, "elsewhere", "", elsewherePage{})
		return nil
	}
	p.render(w, r, http.StatusOK, "confirm", "link:"+token, confirmPage{Token: token})
	return nil
}

func (p *Plugin) redeemLink(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	token := r.PostForm.Get("token")
	if err := p.checkPost(r, "link:"+token); err != nil {
		return err
	}
	lr, jid, err := p.peekLink(ctx, token)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(jid), []byte(p.cookieID(r))) != 1 {
		p.render(w, r, http.StatusOK, "elsewhere", "", elsewherePage{})
		return nil
	}
	j, err := p.activeJourney(ctx, r)
	if err != nil {
		return err
	}
	f := lr.(flows.Flow)
	flowID := f.ID()
	if slices.Contains(j.Verified, flowID) {
		p.redirect(w, "/verify", nil)
		return nil
	}
	pr, err := p.progress(ctx, j)
	if err != nil {
		return err
	}
	after := p.progressAfter(j, f, pr)
	now := p.s.Now()
	var ipLimit limitResult
	var lerr error
	err = p.atomic(ctx, func(tx store.Tx) error {
		var err error
		if ipLimit, err = p.limits.hit(ctx, tx, p.s.Limits.VerifiesPerIP, p.limits.key("verify-ip", p.s.ClientIP(r)), now); err != nil || ipLimit.exceeded {
			return err
		}
		if _, lerr = lr.RedeemLink(ctx, tx, env{p: p}, token); lerr != nil {
			if errors.Is(lerr, flows.ErrUsed) || errors.Is(lerr, flows.ErrExpired) || errors.Is(lerr, flows.ErrExhausted) || errors.Is(lerr, flows.ErrNoChallenge) {
				return p.audit(ctx, tx, r, "link."+flowID, j.ID, j.UserID, "failed", "link not usable")
			}
			return lerr
		}
		return p.proved(ctx, tx, r, j, f, after)
	})
	switch {
	case errors.Is(err, store.ErrConflict):
		p.redirect(w, "/verify", nil)
		return nil
	case err != nil:
		return internalError(err)
	case ipLimit.exceeded:
		tooMany(w, ipLimit.retryAfter, p.tr(r))
		return &Error{Kind: KindLimited, Status: http.StatusTooManyRequests, Heading: "error.limited.heading",
			Public: "error.limited.message"}
	case errors.Is(lerr, flows.ErrUsed):
		return errLinkUsed
	case lerr != nil:
		return errLinkExpired
	}
	p.worker.Kick()
	p.afterProved(w, r, j, f, after)
	return nil
}

// afterProved sends the browser on once journey j proved f: to the next
// method, to the password form, or, for a finished step-up, back to where
// it started (after raising the host's session).
func (p *Plugin) afterProved(w http.ResponseWriter, r *http.Request, j store.Journey, f flows.Flow, after progress) {
	switch {
	case !after.done:
		p.redirect(w, "/verify", nil)
	case j.Kind == store.KindStepUp:
		j.Verified = append(slices.Clone(j.Verified), f.ID())
		p.raiseAfterStepUp(w, r, j)
		w.Header().Set("Location", stepUpTarget(j, p.accountURL()))
		w.WriteHeader(http.StatusSeeOther)
	default:
		p.redirect(w, "/password", nil)
	}
}

// readyJourney returns the browser's journey and its progress; the
// password may be set when the progress is done.
func (p *Plugin) readyJourney(ctx context.Context, r *http.Request) (store.Journey, progress, error) {
	j, err := p.activeJourney(ctx, r)
	if err != nil {
		return j, progress{}, err
	}
	pr, err := p.progress(ctx, j)
	return j, pr, err
}

func (p *Plugin) passwordPageData(pr progress) passwordPage {
	return passwordPage{Action: p.basePath + "/password", Heading: "password.heading", Username: cmp.Or(pr.user.Username, pr.user.Email), MinLength: p.policy.MinLength(pr.hasMFA), MaxLength: p.policy.MaxLength()}
}

func (p *Plugin) passwordPage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	j, pr, err := p.readyJourney(ctx, r)
	if err != nil {
		return err
	}
	if !pr.done {
		p.redirect(w, "/verify", nil)
		return nil
	}
	p.render(w, r, http.StatusOK, "password", j.ID, p.passwordPageData(pr))
	return nil
}

func (p *Plugin) setPassword(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	j, pr, err := p.readyJourney(ctx, r)
	if err != nil {
		return err
	}
	if err := p.checkPost(r, j.ID); err != nil {
		return err
	}
	if !pr.done || j.Kind == store.KindStepUp {
		// Not verified enough: a direct POST never sets a password.
		p.log.WarnContext(ctx, "sspr: password post before verification", slog.String("ip", p.s.ClientIP(r)))
		p.redirect(w, "/verify", nil)
		return nil
	}
	pw := r.PostForm.Get("password")
	np, refused, err := p.vetPassword(ctx, p.tr(r), pr, pw, r.PostForm.Get("confirm"), p.passwordPageData(pr))
	if err != nil {
		return err
	}
	if refused != nil {
		p.render(w, r, http.StatusBadRequest, "password", j.ID, *refused)
		return nil
	}
	// Claim the journey first (single use), then change the password.
	if err := p.s.Store.CompleteJourney(ctx, j.ID, p.s.Now()); err != nil {
		switch {
		case errors.Is(err, store.ErrUsed):
			p.redirect(w, "/done", nil)
			return nil
		case errors.Is(err, store.ErrExpired), errors.Is(err, store.ErrNotFound):
			return errJourneyMissing
		}
		return internalError(err)
	}
	if err := p.commitPassword(ctx, r, j, pr, np, pw, "password.change"); err != nil {
		return err
	}
	p.redirect(w, "/done", nil)
	return nil
}

// problemText is the translated reason of a policy refusal.
func (p *Plugin) problemText(tr T, prob password.Problem, hasMFA bool) string {
	switch prob.Rule {
	case password.RuleTooShort:
		return tr.Get("password.too_short", "n", p.policy.MinLength(hasMFA))
	case password.RuleTooLong:
		return tr.Get("password.too_long", "n", p.policy.MaxLength())
	case password.RuleCommon:
		return tr.Get("password.common")
	case password.RuleIdentifier:
		return tr.Get("password.identifier")
	case password.RuleBreached:
		return tr.Get("password.breached")
	case password.RuleContext:
		return tr.Get("password.context")
	}
	return prob.Message
}

// vetted is a new password that passed the policy, with the history key
// derived for it.
type vetted struct {
	hist store.History
	key  []byte
}

// vetPassword checks pw against the policy and the password history. It
// returns the page to show again, with every reason, when pw is refused.
func (p *Plugin) vetPassword(ctx context.Context, tr T, pr progress, pw, confirm string, page passwordPage) (vetted, *passwordPage, error) {
	u := pr.user
	for _, prob := range p.policy.Check(password.Input{
		Password:    pw,
		Identifiers: []string{u.Username, u.Email, u.DisplayName},
		HasMFA:      pr.hasMFA,
	}) {
		page.Errors = append(page.Errors, p.problemText(tr, prob, pr.hasMFA))
	}
	if pw != confirm {
		page.ConfirmError = tr.Get("password.mismatch")
	}
	if page.Errors != nil || page.ConfirmError != "" {
		return vetted{}, &page, nil
	}
	// Breached passwords (Password.Breach): after the local rules, so a
	// refused password is sent nowhere, and before argon2id.
	prob, err := p.policy.CheckBreached(ctx, pw)
	switch {
	case errors.Is(err, password.ErrBreachCheckSkipped):
		p.log.WarnContext(ctx, "sspr: breached-password check skipped (fail-open)", slog.Any("err", err))
	case err != nil:
		page.Errors = []string{tr.Get("password.breach_unavailable")}
		p.log.ErrorContext(ctx, "sspr: breached-password check failed; the password was refused (fail-closed)", slog.Any("err", err))
		return vetted{}, &page, nil
	case prob != nil:
		page.Errors = []string{p.problemText(tr, *prob, pr.hasMFA)}
		return vetted{}, &page, nil
	}
	// One argon2id computation checks the whole history (shared salt) and
	// yields the key to record.
	hist, key, err := p.historyKey(ctx, u.ID, pw)
	if err != nil {
		return vetted{}, nil, internalError(err)
	}
	for _, old := range hist.Keys {
		if subtle.ConstantTimeCompare(old, key) == 1 {
			page.Errors = []string{tr.Get("password.reused")}
			return vetted{}, &page, nil
		}
	}
	return vetted{hist: hist, key: key}, nil, nil
}

func (p *Plugin) donePage(w http.ResponseWriter, r *http.Request) error {
	id := p.cookieID(r)
	if id == "" {
		return errJourneyMissing
	}
	j, err := p.s.Store.Journey(r.Context(), id)
	if err != nil || j.CompletedAt.IsZero() {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return internalError(err)
		}
		return errJourneyMissing
	}
	p.clearCookie(w, r)
	p.render(w, r, http.StatusOK, "done", "", donePage{SignInURL: p.signInURL(j)})
	return nil
}

// attemptsData is what the "attempts" message template receives as .Data.
type attemptsData struct {
	// Method is the message key of the check whose tries ran out.
	Method string
	changedData
}

// queueAttemptsNotice arranges that every contact address of the
// journey's user hears that a check's tries ran out on wrong responses
// (someone without the right code, or with the email but not the
// authenticator): OWASP ASVS V6.3.5. It queues one job, for a known user
// and for a decoy journey (no recipient) alike, so that the last wrong
// try costs the same store work whoever the identifier named; the worker
// looks the addresses up and queues the notices (tellAttempts). A
// challenge runs out once, so each start can cause one.
func (p *Plugin) queueAttemptsNotice(ctx context.Context, tx store.Tx, j store.Journey, f flows.Flow, now time.Time) error {
	d, err := json.Marshal(attemptsData{Method: flowTitle(f), changedData: p.noticeData(now)})
	if err != nil {
		return fmt.Errorf("sspr: encode message data: %w", err)
	}
	_, err = p.enqueue(ctx, tx, now, queued{Channel: attemptsChannel, To: j.UserID, Lang: j.Locale, Journey: j.ID, Data: d})
	return err
}
