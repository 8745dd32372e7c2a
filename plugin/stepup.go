package plugin

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/plugin/store"
)

// OIDCStepUp configures step-up through the host's OIDC provider: sspr is
// a confidential client of it and sends the user to its /authorize with
// prompt=login, max_age=0, acr_values, login_hint, a nonce, PKCE and a
// state bound to the step-up journey. The provider must accept
// <BaseURL>/stepup/callback as a redirect URI of the client.
type OIDCStepUp struct {
	// Issuer is the provider's issuer URL (discovery is at
	// <Issuer>/.well-known/openid-configuration). Required.
	Issuer string
	// ClientID and ClientSecret identify sspr at the provider. Required.
	ClientID, ClientSecret string
	// ACRValues are sent as acr_values; an ID token whose "acr" is one of
	// them counts as a second factor. Default: none (only "amr" counts).
	ACRValues []string
	// HTTPClient reaches the provider. Default: http.DefaultClient.
	HTTPClient *http.Client
	// ClockSkew is tolerated between the provider's auth_time and sspr's
	// clock. Default: 1 minute.
	ClockSkew time.Duration
}

// stepUpClient is the lazily discovered provider of an [OIDCStepUp].
type stepUpClient struct {
	cfg OIDCStepUp

	mu       sync.Mutex
	provider *oidc.Provider
}

func (c *stepUpClient) context(ctx context.Context) context.Context {
	if c.cfg.HTTPClient != nil {
		return oidc.ClientContext(ctx, c.cfg.HTTPClient)
	}
	return ctx
}

// discover returns the provider, discovering it on first use (so that the
// plugin can start before the provider does).
func (c *stepUpClient) discover(ctx context.Context) (*oidc.Provider, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.provider != nil {
		return c.provider, nil
	}
	prov, err := oidc.NewProvider(c.context(ctx), c.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("sspr: step-up: discovery: %w", err)
	}
	c.provider = prov
	return prov, nil
}

// stepUpState is what a step-up challenge keeps (in Challenge.Data).
type stepUpState struct {
	Nonce    string    `json:"nonce"`
	Verifier string    `json:"verifier"`
	Started  time.Time `json:"started"`
}

// stepUpClaims are the ID token claims sspr checks itself; go-oidc checks
// none of them.
type stepUpClaims struct {
	AuthTime int64    `json:"auth_time"`
	AMR      []string `json:"amr"`
	ACR      string   `json:"acr"`
	AZP      string   `json:"azp"`
}

const oidcFlowID = "oidc"

// signedIn returns the host session of a request to a signed-in page.
func (p *Plugin) signedIn(r *http.Request) (Session, error) {
	if p.s.Sessions == nil {
		return Session{}, errNotFound
	}
	sess, err := p.s.Sessions.Session(r)
	switch {
	case errors.Is(err, ErrNoSession):
		return sess, &Error{Kind: KindForbidden, Status: http.StatusUnauthorized, Heading: "error.sign_in.heading",
			Public: "error.sign_in.message",
			Link:   p.s.signIn.String(), LinkText: "error.sign_in.link"}
	case err != nil:
		return sess, internalError(fmt.Errorf("sspr: session: %w", err))
	}
	return sess, nil
}

// signedInStanding reads the signed-in user's progress (their factors)
// and whether their step-up is fresh (freshStepUp): what every page
// behind a step-up asks first.
func (p *Plugin) signedInStanding(ctx context.Context, r *http.Request, sess Session) (pr progress, fresh bool, err error) {
	if pr, err = p.progress(ctx, store.Journey{UserID: sess.UserID}); err != nil {
		return pr, false, err
	}
	fresh, err = p.freshStepUp(ctx, r, sess, pr)
	return pr, fresh, err
}

// freshStepUp reports whether the signed-in user proved a second factor
// (or, without any, authenticated) no longer than StepUpMaxAge ago: either
// the host session says so, or a step-up journey of this browser does. pr
// is the progress read for the session's user; a step-up journey's own
// progress is derived from it.
func (p *Plugin) freshStepUp(ctx context.Context, r *http.Request, sess Session, pr progress) (bool, error) {
	now := p.s.Now()
	if !sess.AuthTime.IsZero() && now.Sub(sess.AuthTime) <= p.s.StepUpMaxAge && !sess.AuthTime.After(now.Add(time.Minute)) &&
		(hasSecondFactor(sess.AMR) || !pr.hasMFA) {
		return true, nil
	}
	j, err := p.activeJourney(ctx, r)
	if err != nil {
		if errors.Is(err, errJourneyMissing) {
			return false, nil
		}
		return false, err
	}
	if j.Kind != store.KindStepUp || j.UserID != sess.UserID {
		return false, nil
	}
	return p.evaluate(j, pr.standing).done, nil
}

// startStepUp begins a step-up for the signed-in user and sends the
// browser to it; afterwards the browser returns to target (a path under
// the plugin). pr is the progress read for the session's user.
func (p *Plugin) startStepUp(w http.ResponseWriter, r *http.Request, sess Session, pr progress, target string) error {
	ctx := r.Context()
	now := p.s.Now()
	j := store.Journey{ID: journeyID(p.s.Now()), Kind: store.KindStepUp, UserID: sess.UserID, ReturnTo: p.url(target, nil),
		Locale: p.locale(r), CreatedAt: now, ExpiresAt: now.Add(p.s.JourneyTTL)}
	if p.stepUp != nil {
		return p.startOIDCStepUp(w, r, j, pr)
	}
	// In-process: the same verification pages as a reset, with the
	// step-up policy (a bound factor when the user has one, else a
	// contact channel).
	sp := p.evaluate(j, pr.standing)
	if len(sp.next) == 0 {
		return p.chooseOrHelp(w, r, j, sp)
	}
	err := p.atomic(ctx, func(tx store.Tx) error {
		if err := tx.CreateJourney(ctx, j); err != nil {
			return err
		}
		if err := p.audit(ctx, tx, r, "stepup.start", j.ID, j.UserID, "ok", "in-process"); err != nil {
			return err
		}
		return p.begin(ctx, tx, r, j, sp.subject, sp.next[0])
	})
	if err != nil {
		return internalError(err)
	}
	p.worker.Kick()
	if err := p.setCookieID(w, r, j.ID); err != nil {
		return err
	}
	p.redirect(w, "/verify", nil)
	return nil
}

func (p *Plugin) startOIDCStepUp(w http.ResponseWriter, r *http.Request, j store.Journey, pr progress) error {
	ctx := r.Context()
	prov, err := p.stepUp.discover(ctx)
	if err != nil {
		return internalError(err)
	}
	state, nonce, verifier := randomID(32), randomID(32), oauth2.GenerateVerifier()
	st, err := json.Marshal(stepUpState{Nonce: nonce, Verifier: verifier, Started: p.s.Now()})
	if err != nil {
		return internalError(err)
	}
	sum := sha256.Sum256([]byte(state))
	now := p.s.Now()
	err = p.atomic(ctx, func(tx store.Tx) error {
		if err := tx.CreateJourney(ctx, j); err != nil {
			return err
		}
		if err := tx.CreateChallenge(ctx, store.Challenge{ID: journeyID(p.s.Now()), JourneyID: j.ID, Flow: oidcFlowID,
			TokenHash: sum[:], MaxAttempts: 1, CreatedAt: now, ExpiresAt: now.Add(p.s.JourneyTTL), Data: st}); err != nil {
			return err
		}
		return p.audit(ctx, tx, r, "stepup.start", j.ID, j.UserID, "ok", "oidc")
	})
	if err != nil {
		return internalError(err)
	}
	if err := p.setCookieID(w, r, j.ID); err != nil {
		return err
	}
	opts := []oauth2.AuthCodeOption{
		oidc.Nonce(nonce),
		oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("prompt", "login"),
		oauth2.SetAuthURLParam("max_age", "0"),
	}
	if hint := cmp.Or(pr.user.Username, pr.user.Email); hint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", hint))
	}
	if len(p.stepUp.cfg.ACRValues) > 0 {
		opts = append(opts, oauth2.SetAuthURLParam("acr_values", strings.Join(p.stepUp.cfg.ACRValues, " ")))
	}
	w.Header().Set("Location", p.oauthConfig(prov).AuthCodeURL(state, opts...))
	w.WriteHeader(http.StatusSeeOther)
	return nil
}

func (p *Plugin) oauthConfig(prov *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     p.stepUp.cfg.ClientID,
		ClientSecret: p.stepUp.cfg.ClientSecret,
		Endpoint:     prov.Endpoint(),
		RedirectURL:  p.url("/stepup/callback", nil),
		Scopes:       []string{oidc.ScopeOpenID},
	}
}

var errStepUpFailed = &Error{Kind: KindForbidden, Status: http.StatusForbidden,
	Heading: "error.stepup_failed.heading",
	Public:  "error.stepup_failed.message"}

// errStepUpMissing answers a step-up callback that arrives without a
// step-up journey: the page of [errJourneyMissing], as a client error.
var errStepUpMissing = &Error{Kind: KindExpired, Status: http.StatusBadRequest,
	Heading: errJourneyMissing.Heading,
	Public:  errJourneyMissing.Public}

// stepUpCallback finishes an OIDC step-up: it verifies the ID token with
// go-oidc and then checks, itself, the nonce, that sub is the journey's
// user, that auth_time is not older than the step-up's start (minus clock
// skew) and that amr/acr show a second factor.
//
// A callback in a browser without a usable step-up journey (no cookie, an
// unknown, ended or expired journey, or a password-reset journey) redeems
// nothing: it answers 400 with the "session ended" page and is audited as
// "stepup.oidc", outcome "failed", with the reason.
func (p *Plugin) stepUpCallback(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	if p.stepUp == nil {
		return errNotFound
	}
	j, why, err := p.browserJourney(ctx, r)
	if err != nil {
		return err
	}
	if why == "" && j.Kind != store.KindStepUp {
		why = "not a step-up journey"
	}
	if why != "" {
		p.stepUpMissingAudit(ctx, r, j, why)
		return errStepUpMissing
	}
	q := r.URL.Query()
	sum := sha256.Sum256([]byte(q.Get("state")))
	c, err := p.s.Store.ConsumeToken(ctx, sum[:], p.s.Now())
	if err != nil || c.JourneyID != j.ID || c.Flow != oidcFlowID {
		p.stepUpAudit(ctx, r, j, "failed", "state not valid for this journey")
		return errStepUpFailed
	}
	var st stepUpState
	if err := json.Unmarshal(c.Data, &st); err != nil {
		return internalError(err)
	}
	if e := q.Get("error"); e != "" {
		p.stepUpAudit(ctx, r, j, "failed", "provider error "+truncateUTF8(e, 64))
		return errStepUpFailed
	}
	reason, err := p.checkStepUpToken(ctx, j, st, q.Get("code"))
	if err != nil {
		return internalError(err)
	}
	if reason != "" {
		p.log.WarnContext(ctx, "sspr: step-up refused", slog.String("user", j.UserID), slog.String("reason", reason))
		p.stepUpAudit(ctx, r, j, "failed", reason)
		return errStepUpFailed
	}
	j.Verified = append(j.Verified, oidcFlowID)
	j.ExpiresAt = p.s.Now().Add(p.s.StepUpMaxAge)
	err = p.atomic(ctx, func(tx store.Tx) error {
		if err := tx.UpdateJourney(ctx, j); err != nil {
			return err
		}
		return p.audit(ctx, tx, r, "stepup.verify", j.ID, j.UserID, "ok", "oidc")
	})
	if err != nil {
		return internalError(err)
	}
	w.Header().Set("Location", j.ReturnTo)
	w.WriteHeader(http.StatusSeeOther)
	return nil
}

// checkStepUpToken redeems code and returns why the ID token does not prove
// a fresh step-up of the journey's user ("" when it does). Errors are
// faults; a bad token is a reason.
func (p *Plugin) checkStepUpToken(ctx context.Context, j store.Journey, st stepUpState, code string) (string, error) {
	if code == "" {
		return "no code", nil
	}
	prov, err := p.stepUp.discover(ctx)
	if err != nil {
		return "", err
	}
	octx := p.stepUp.context(ctx)
	tok, err := p.oauthConfig(prov).Exchange(octx, code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		return "code exchange failed", nil
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "no ID token", nil
	}
	idt, err := prov.Verifier(&oidc.Config{ClientID: p.stepUp.cfg.ClientID, Now: p.s.Now}).Verify(octx, raw)
	if err != nil {
		return "ID token not valid", nil
	}
	var cl stepUpClaims
	if err := idt.Claims(&cl); err != nil {
		return "ID token claims not readable", nil
	}
	pr, err := p.progress(ctx, store.Journey{UserID: j.UserID})
	if err != nil {
		return "", err
	}
	skew := p.stepUp.cfg.ClockSkew
	now := p.s.Now()
	switch {
	case idt.Nonce == "" || idt.Nonce != st.Nonce:
		return "nonce mismatch", nil
	case len(idt.Audience) > 1 && cl.AZP != p.stepUp.cfg.ClientID:
		// OpenID Connect Core 3.1.3.7: with several audiences, azp names
		// the client the token was issued to.
		return "ID token issued to another client", nil
	case idt.IssuedAt.After(now.Add(skew)) || time.Unix(cl.AuthTime, 0).After(now.Add(skew)):
		return "ID token from the future", nil
	case idt.Subject != j.UserID:
		return "ID token of another user", nil
	case cl.AuthTime == 0 || time.Unix(cl.AuthTime, 0).Before(st.Started.Add(-skew)):
		return "authentication not fresh", nil
	case pr.hasMFA && !hasSecondFactor(cl.AMR) && !slices.Contains(p.stepUp.cfg.ACRValues, cl.ACR):
		return "no second factor", nil
	}
	return "", nil
}

// stepUpMissingAudit records a step-up callback refused because the
// browser has no usable step-up journey (why). It names the journey the
// browser has, if the store knows it, and its user only when it is a
// step-up journey: a reset journey's user is not who the callback was for.
//
// Anyone can open the callback URL (an image on any site can), so the
// rows are capped per client address like code submissions
// (Limits.VerifiesPerIP); past the cap nothing is recorded.
func (p *Plugin) stepUpMissingAudit(ctx context.Context, r *http.Request, j store.Journey, why string) {
	userID := ""
	if j.Kind == store.KindStepUp {
		userID = j.UserID
	}
	err := p.atomic(ctx, func(tx store.Tx) error {
		lim, err := p.limits.hit(ctx, tx, p.s.Limits.VerifiesPerIP, p.limits.key("stepup-callback-ip", p.s.ClientIP(r)), p.s.Now())
		if err != nil || lim.exceeded {
			return err
		}
		return p.audit(ctx, tx, r, "stepup.oidc", j.ID, userID, "failed", "no step-up journey: "+why)
	})
	if err != nil {
		p.log.ErrorContext(ctx, "sspr: audit failed", slog.Any("err", err))
	}
}

func (p *Plugin) stepUpAudit(ctx context.Context, r *http.Request, j store.Journey, outcome, detail string) {
	err := p.atomic(ctx, func(tx store.Tx) error {
		return p.audit(ctx, tx, r, "stepup.verify", j.ID, j.UserID, outcome, detail)
	})
	if err != nil {
		p.log.ErrorContext(ctx, "sspr: audit failed", slog.Any("err", err))
	}
}

// accountPassword serves the signed-in change-password page. It runs a
// step-up first unless one no older than StepUpMaxAge exists.
func (p *Plugin) accountPassword(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	sess, err := p.signedIn(r)
	if err != nil {
		return err
	}
	pr, fresh, err := p.signedInStanding(ctx, r, sess)
	if err != nil {
		return err
	}
	binding := accountBinding(sess)
	if r.Method == http.MethodPost {
		if err := p.checkPost(r, binding); err != nil {
			return err
		}
	}
	if !fresh {
		return p.needStepUp(w, r, sess, pr, "/account/password", binding)
	}
	page := p.passwordPageData(pr)
	page.Action, page.Heading = p.basePath+"/account/password", "password.change_heading"
	page.Current = p.verifier != nil
	if r.Method != http.MethodPost {
		p.render(w, r, http.StatusOK, "password", binding, page)
		return nil
	}
	if status, msg, err := p.checkCurrentPassword(r, sess.UserID); err != nil {
		return err
	} else if msg != "" {
		page.CurrentError = msg
		p.render(w, r, status, "password", binding, page)
		return nil
	}
	pw := r.PostForm.Get("password")
	np, refused, err := p.vetPassword(ctx, p.tr(r), pr, pw, r.PostForm.Get("confirm"), page)
	if err != nil {
		return err
	}
	if refused != nil {
		p.render(w, r, http.StatusBadRequest, "password", binding, *refused)
		return nil
	}
	j := store.Journey{UserID: sess.UserID}
	if err := p.commitPassword(ctx, r, j, pr, np, pw, "password.change.signed-in"); err != nil {
		return err
	}
	// Every session was revoked; keep this browser signed in.
	if p.raiser != nil {
		if err := p.raiser.RaiseSession(w, r, sess); err != nil {
			p.log.ErrorContext(ctx, "sspr: raise session after password change", slog.Any("err", err))
		}
	}
	p.render(w, r, http.StatusOK, "changed", "", changedPage{AccountURL: p.accountURL()})
	return nil
}

// stepUpPage is the data of the "stepup" page.
type stepUpPage struct{ Action string }

// needStepUp answers a signed-in request that needs a fresh step-up. A
// GET shows a page whose button (a POST with stepup=1) starts it, so that
// no link can make sspr send a code or start a ceremony; that POST starts
// it and leads back to target afterwards. Any other POST (a form that was
// open while the step-up aged) shows the page again.
func (p *Plugin) needStepUp(w http.ResponseWriter, r *http.Request, sess Session, pr progress, target, binding string) error {
	if r.Method == http.MethodPost && r.PostForm.Get("stepup") == "1" {
		return p.startStepUp(w, r, sess, pr, target)
	}
	p.render(w, r, http.StatusOK, "stepup", binding, stepUpPage{Action: p.basePath + target})
	return nil
}

func (p *Plugin) accountURL() string {
	if p.s.AccountURL != "" {
		return p.s.AccountURL
	}
	return p.s.signIn.String()
}

// changedPage is the data of the page after a signed-in password change.
type changedPage struct{ AccountURL string }

// raiseAfterStepUp records an in-process step-up in the host session.
func (p *Plugin) raiseAfterStepUp(w http.ResponseWriter, r *http.Request, j store.Journey) {
	if p.raiser == nil {
		return
	}
	sess, err := p.s.Sessions.Session(r)
	if err != nil || sess.UserID != j.UserID {
		return
	}
	sess.AuthTime = p.s.Now()
	for _, id := range j.Verified {
		// A contact channel proves no factor: it only refreshes auth_time.
		if am, ok := p.byID[id].(flows.AuthMethoder); ok && !slices.Contains(sess.AMR, am.AuthMethod()) {
			sess.AMR = append(sess.AMR, am.AuthMethod())
		}
	}
	if hasSecondFactor(sess.AMR) && !slices.Contains(sess.AMR, "mfa") {
		sess.AMR = append(sess.AMR, "mfa")
	}
	if err := p.raiser.RaiseSession(w, r, sess); err != nil {
		p.log.ErrorContext(r.Context(), "sspr: raise session", slog.Any("err", err))
	}
}

// stepUpTarget is where a finished step-up journey goes: the page that
// asked for it (a URL sspr built), else fallback.
func stepUpTarget(j store.Journey, fallback string) string {
	if u, err := url.Parse(j.ReturnTo); err == nil && u.IsAbs() {
		return j.ReturnTo
	}
	return fallback
}

// checkCurrentPassword checks the form's "current" field through the
// host's [PasswordVerifier], if it has one, and counts a wrong one against
// the account's failure limit. It returns the status and message of a
// refusal, or an empty message when the change may go on.
func (p *Plugin) checkCurrentPassword(r *http.Request, userID string) (int, string, error) {
	if p.verifier == nil {
		return 0, "", nil
	}
	ctx := r.Context()
	tr := p.tr(r)
	key := p.limits.key("failures", "user:"+userID)
	lim, err := p.limits.peek(ctx, p.s.Store, p.s.Limits.FailuresPerAccount, key, p.s.Now())
	if err != nil {
		return 0, "", internalError(err)
	}
	if lim.exceeded {
		return http.StatusTooManyRequests, tr.Get("password.current_limited"), nil
	}
	err = p.verifier.VerifyPassword(ctx, userID, r.PostForm.Get("current"))
	switch {
	case err == nil:
		return 0, "", nil
	case !errors.Is(err, ErrWrongPassword):
		return 0, "", internalError(fmt.Errorf("sspr: directory: verify password: %w", err))
	}
	err = p.atomic(ctx, func(tx store.Tx) error {
		if _, err := p.limits.hit(ctx, tx, p.s.Limits.FailuresPerAccount, key, p.s.Now()); err != nil {
			return err
		}
		return p.audit(ctx, tx, r, "password.change.signed-in", "", userID, "failed", "wrong current password")
	})
	if err != nil {
		return 0, "", internalError(err)
	}
	return http.StatusBadRequest, tr.Get("password.current_wrong"), nil
}
