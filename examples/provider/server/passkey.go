package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/webauthn"
)

// The passkey second step: after a right password, a user with a passkey
// (a credential of sspr's WebAuthn flow, added on sspr's security-info
// page) confirms the sign-in with it. The page carries the options of a
// ceremony begun with [webauthn.Flow.BeginLogin] and sspr's page script
// (/recovery/static/webauthn.js), which runs navigator.credentials.get on
// submit and posts the answer in the field "assertion";
// [webauthn.Flow.FinishLogin] verifies it (user verification required, the
// signature counter must rise) with the session kept on the pending
// authorization request. That session is single use: every answer takes
// it, right or wrong, and the page shown next begins a new ceremony. Its
// lifetime (the flow's Timeout, 5 minutes) is enforced by FinishLogin.
// Refused answers count like wrong codes (see mfa.go).

const (
	passkeyRefused = "That passkey did not work. Use a passkey you added to your Demo Provider account."
	passkeyMissing = "Your browser sent no passkey. Signing in with a passkey needs a browser that supports passkeys, with JavaScript turned on."
	passkeyStale   = "That passkey request expired or was already used. Try again."
	passkeyGarbled = "Your browser's passkey answer could not be read. Try again."
)

type passkeyPage struct {
	AuthRequestID string
	CSRF          string
	Error         string
	// Options is the ceremony's PublicKeyCredentialRequestOptionsJSON,
	// for <script type="application/json" id="webauthn-options">.
	Options template.JS
	// ScriptURL is sspr's page script.
	ScriptURL string
	// TOTPURL is the code page of the request when the user also has an
	// authenticator app, else "".
	TOTPURL    string
	HelpURL    string
	RestartURL string
}

// passkeyURL is the absolute URL of the passkey page of one request.
func (s *Server) passkeyURL(authRequestID string) string {
	return s.issuer + "/login/passkey?" + url.Values{"authRequestID": {authRequestID}}.Encode()
}

// hasPasskey reports whether the user has a passkey; always false when
// passkeys are off (an issuer on an IP address).
func (s *Server) hasPasskey(ctx context.Context, userID string) (bool, error) {
	if s.passkeys == nil {
		return false, nil
	}
	opts, err := s.passkeys.Options(ctx, flows.Subject{UserID: userID})
	if err != nil {
		return false, fmt.Errorf("server: second factors: %w", err)
	}
	return len(opts) > 0, nil
}

// pendingPasskeyRequest checks the request of a passkey page or answer:
// live, not locked, its password given, passkeys on. Otherwise it answers
// the request itself and returns false.
func (s *Server) pendingPasskeyRequest(w http.ResponseWriter, r *http.Request, id string) (*authRequest, bool) {
	req, err := s.oidc.pendingRequest(id)
	switch {
	case err != nil || req.done:
		s.expiredRequest(w, r)
	case req.locked():
		s.lockedPasskeyRequest(w, r, req)
	case req.mfaUserID == "" || s.passkeys == nil:
		// The password step comes first (or was forgotten by a revocation).
		setPageHeaders(w.Header())
		http.Redirect(w, r, s.loginURL(id), http.StatusSeeOther)
	default:
		return req, true
	}
	return nil, false
}

// passkeyForm shows the passkey page of a request whose password was
// right.
func (s *Server) passkeyForm(w http.ResponseWriter, r *http.Request) {
	req, ok := s.pendingPasskeyRequest(w, r, r.URL.Query().Get("authRequestID"))
	if !ok {
		return
	}
	s.renderPasskey(w, r, http.StatusOK, req, "")
}

// renderPasskey begins a passkey ceremony for the user of req, keeps its
// session on the request (replacing an earlier page's) and shows the page
// with its options. A user whose passkeys are gone is sent to the code
// page, or back to the sign-in page.
func (s *Server) renderPasskey(w http.ResponseWriter, r *http.Request, status int, req *authRequest, errMsg string) {
	ctx, id, userID := r.Context(), req.id, req.mfaUserID
	factors, err := s.secondFactors(ctx, userID)
	if err != nil {
		s.internalError(w, r, "second factors", err, id)
		return
	}
	options, session, err := s.passkeys.BeginLogin(ctx, userID)
	if errors.Is(err, webauthn.ErrNoCredentials) {
		// Removed between the password and this page.
		next := s.loginURL(id)
		if factors.totp {
			next = s.totpURL(id)
		}
		setPageHeaders(w.Header())
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	if err != nil {
		s.internalError(w, r, "begin passkey sign-in", err, id)
		return
	}
	switch err := s.oidc.setPasskeySession(id, userID, session); {
	case errors.Is(err, errRequestLocked):
		s.lockedPasskeyRequest(w, r, req)
		return
	case err != nil:
		s.expiredRequest(w, r)
		return
	}
	cookie, err := s.csrfCookieValue(w, r)
	if err != nil {
		s.internalError(w, r, "csrf cookie", err, id)
		return
	}
	p := passkeyPage{
		AuthRequestID: id,
		CSRF:          s.csrfToken(cookie, id),
		Error:         errMsg,
		Options:       template.JS(scriptJSON(options)),
		ScriptURL:     "/recovery/static/" + webauthn.ID + ".js",
		HelpURL:       "/recovery/?" + url.Values{"return_to": {s.loginURL(id)}}.Encode(),
		RestartURL:    s.loginURL(id),
	}
	if factors.totp {
		p.TOTPURL = s.totpURL(id)
	}
	s.render(w, r, status, "passkey", p)
}

// passkeySubmit checks a passkey answer. It takes the request's ceremony
// session first (single use, whatever the outcome), then counts the answer
// as an attempt before verifying it, so concurrent answers cannot exceed
// maxCodeAttempts; the last refused one locks the request. An empty
// answer (a browser without passkeys or JavaScript), an unreadable one and
// an expired session are not counted: none of them was checked.
func (s *Server) passkeySubmit(w http.ResponseWriter, r *http.Request) {
	id, ok := s.checkSignInForm(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	req, ok := s.pendingPasskeyRequest(w, r, id)
	if !ok {
		return
	}
	userID, session, err := s.oidc.takePasskeySession(id)
	switch {
	case errors.Is(err, errNoPasskeyCeremony): // answered already (another tab, a double submit)
		s.renderPasskey(w, r, http.StatusOK, req, passkeyStale)
		return
	case errors.Is(err, errRequestLocked):
		s.lockedPasskeyRequest(w, r, req)
		return
	case err != nil:
		s.expiredRequest(w, r)
		return
	}
	assertion := r.PostForm.Get("assertion")
	if assertion == "" {
		s.renderPasskey(w, r, http.StatusOK, req, passkeyMissing)
		return
	}
	attemptUser, left, err := s.oidc.beginCodeAttempt(id)
	switch {
	case errors.Is(err, errRequestLocked):
		s.lockedPasskeyRequest(w, r, req)
		return
	case err == nil && attemptUser != userID: // the password was given again, for someone else
		s.oidc.refundCodeAttempt(id)
		err = errRequestNotFound
	}
	if err != nil {
		s.expiredRequest(w, r)
		return
	}
	if s.refusedByMFALimit(w, r, id, userID, "Too many failed attempts",
		"Too many wrong codes or passkey attempts were made for this account recently.") {
		return
	}

	err = s.passkeys.FinishLogin(ctx, s.ssprDB, userID, session, []byte(assertion), s.now())
	switch {
	case err == nil:
		s.signedIn(w, r, req, userID, amrPasskey())
	case errors.Is(err, flows.ErrWrongResponse):
		if err := s.countMFAFailure(ctx, userID); err != nil {
			s.logger.ErrorContext(ctx, "count refused passkey", slog.Any("err", err))
		}
		s.logger.WarnContext(ctx, "passkey refused", slog.String("user", userID),
			slog.String("remote", r.RemoteAddr), slog.Int("attempts_left", left), slog.Any("err", err))
		if left == 0 {
			s.lockedPasskeyRequest(w, r, req)
			return
		}
		s.renderPasskey(w, r, http.StatusOK, req, passkeyRefused+" "+triesLeft(left))
	case errors.Is(err, flows.ErrMalformed):
		s.oidc.refundCodeAttempt(id)
		s.renderPasskey(w, r, http.StatusOK, req, passkeyGarbled)
	case errors.Is(err, flows.ErrExpired), errors.Is(err, flows.ErrNoChallenge):
		s.oidc.refundCodeAttempt(id)
		s.renderPasskey(w, r, http.StatusOK, req, passkeyStale)
	default:
		s.oidc.refundCodeAttempt(id)
		s.internalError(w, r, "check passkey", err, id)
	}
}

// scriptJSON compacts JSON for a <script type="application/json"> element
// and escapes <, > and &, so that it can never close the element.
func scriptJSON(raw []byte) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return "null"
	}
	return strings.NewReplacer("<", `\u003c`, ">", `\u003e`, "&", `\u0026`).Replace(buf.String())
}
