package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/totp"
)

// The sign-in's second step: after a right password, a user with an
// authenticator app (sspr's TOTP factors, kept in sspr's store) enters a
// 6-digit code, which [totp.Flow.Check] verifies with replay protection; a
// user with a passkey uses it instead (passkey.go). Neither check counts
// anything, so the provider limits failures twice, codes and passkey
// answers alike: 5 per sign-in (then the sign-in is locked) and
// mfaFailuresPerAccount per account across sign-ins, since each new
// sign-in would otherwise bring 5 more guesses to whoever knows the
// password.

const (
	// mfaFailuresPerAccount wrong codes and refused passkey answers are
	// allowed per account within any mfaFailureWindow: a sliding window
	// over the fixed-window counters of sspr's store, so it survives
	// restarts.
	mfaFailuresPerAccount = 20
	mfaFailureWindow      = time.Hour

	wrongCodeFormat = "Enter the 6-digit code your authenticator app shows."
	wrongCode       = "That code did not work. Enter the code your authenticator app shows now for Demo Provider."
)

type totpPage struct {
	AuthRequestID string
	CSRF          string
	Error         string
	// PasskeyURL is the passkey page of the request when the user also
	// has a passkey, else "".
	PasskeyURL string
	HelpURL    string
	RestartURL string
}

// mfaFactors are the second factors of a user that the provider's sign-in
// can check. sspr's recovery codes are not among them: they serve
// recovery only.
type mfaFactors struct {
	totp    bool // an authenticator app
	passkey bool // a passkey (only when passkeys are on)
}

// any reports whether the user has a second factor the sign-in can check.
func (f mfaFactors) any() bool { return f.totp || f.passkey }

// secondFactors reports which second factors the user has that the
// sign-in can check.
func (s *Server) secondFactors(ctx context.Context, userID string) (mfaFactors, error) {
	var f mfaFactors
	var err error
	if f.totp, err = s.hasTOTP(ctx, userID); err != nil {
		return mfaFactors{}, err
	}
	if f.passkey, err = s.hasPasskey(ctx, userID); err != nil {
		return mfaFactors{}, err
	}
	return f, nil
}

// totpURL is the absolute URL of the second-factor page of one request.
func (s *Server) totpURL(authRequestID string) string {
	return s.issuer + "/login/totp?" + url.Values{"authRequestID": {authRequestID}}.Encode()
}

// hasTOTP reports whether the user has an authenticator app enrolled.
func (s *Server) hasTOTP(ctx context.Context, userID string) (bool, error) {
	opts, err := s.totp.Options(ctx, flows.Subject{UserID: userID})
	if err != nil {
		return false, fmt.Errorf("server: second factors: %w", err)
	}
	return len(opts) > 0, nil
}

// totpForm shows the second-factor page of a request whose password was
// right. A user without an authenticator app but with a passkey is sent
// to the passkey page.
func (s *Server) totpForm(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	req, err := s.oidc.pendingRequest(id)
	switch {
	case err != nil || req.done:
		s.expiredRequest(w, r)
		return
	case req.locked():
		s.lockedRequest(w, r, req)
		return
	case req.mfaUserID == "":
		// The password step comes first (or was forgotten by a revocation).
		setPageHeaders(w.Header())
		http.Redirect(w, r, s.loginURL(id), http.StatusSeeOther)
		return
	}
	factors, err := s.secondFactors(r.Context(), req.mfaUserID)
	if err != nil {
		s.internalError(w, r, "second factors", err, id)
		return
	}
	if !factors.totp && factors.passkey {
		setPageHeaders(w.Header())
		http.Redirect(w, r, s.passkeyURL(id), http.StatusSeeOther)
		return
	}
	s.renderTOTP(w, r, http.StatusOK, id, factors.passkey, "")
}

// renderTOTP shows the code page of request id; withPasskey offers the
// passkey page instead.
func (s *Server) renderTOTP(w http.ResponseWriter, r *http.Request, status int, id string, withPasskey bool, errMsg string) {
	cookie, err := s.csrfCookieValue(w, r)
	if err != nil {
		s.internalError(w, r, "csrf cookie", err, id)
		return
	}
	p := totpPage{
		AuthRequestID: id,
		CSRF:          s.csrfToken(cookie, id),
		Error:         errMsg,
		HelpURL:       "/recovery/?" + url.Values{"return_to": {s.loginURL(id)}}.Encode(),
		RestartURL:    s.loginURL(id),
	}
	if withPasskey {
		p.PasskeyURL = s.passkeyURL(id)
	}
	s.render(w, r, status, "totp", p)
}

// hasPasskeyOrFalse is hasPasskey for a link on a page: a fault is logged
// and the link left out.
func (s *Server) hasPasskeyOrFalse(ctx context.Context, userID string) bool {
	has, err := s.hasPasskey(ctx, userID)
	if err != nil {
		s.logger.ErrorContext(ctx, "second factors", slog.Any("err", err))
	}
	return has
}

// totpSubmit checks a code. Each well-formed code counts as an attempt
// before it is checked, so concurrent guesses cannot exceed
// maxCodeAttempts; the last wrong one locks the request.
func (s *Server) totpSubmit(w http.ResponseWriter, r *http.Request) {
	id, ok := s.checkSignInForm(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	req, err := s.oidc.pendingRequest(id)
	switch {
	case err != nil || req.done:
		s.expiredRequest(w, r)
		return
	case req.locked():
		s.lockedRequest(w, r, req)
		return
	case req.mfaUserID == "":
		setPageHeaders(w.Header())
		http.Redirect(w, r, s.loginURL(id), http.StatusSeeOther)
		return
	}
	code, ok := totp.NormalizeCode(r.PostForm.Get("code"))
	if !ok { // not counted: a typo is no guess
		s.renderTOTP(w, r, http.StatusOK, id, s.hasPasskeyOrFalse(ctx, req.mfaUserID), wrongCodeFormat)
		return
	}
	userID, left, err := s.oidc.beginCodeAttempt(id)
	if errors.Is(err, errRequestLocked) {
		s.lockedRequest(w, r, req)
		return
	}
	if err != nil {
		s.expiredRequest(w, r)
		return
	}
	if s.refusedByMFALimit(w, r, id, userID, "Too many wrong codes",
		"Too many wrong codes were entered for this account recently.") {
		return
	}

	err = s.totp.Check(ctx, s.ssprDB, userID, code)
	switch {
	case err == nil:
		s.signedIn(w, r, req, userID, amrTOTP())
	case errors.Is(err, flows.ErrWrongResponse):
		if err := s.countMFAFailure(ctx, userID); err != nil {
			s.logger.ErrorContext(ctx, "count wrong second-factor code", slog.Any("err", err))
		}
		s.logger.WarnContext(ctx, "wrong second-factor code", slog.String("user", userID),
			slog.String("remote", r.RemoteAddr), slog.Int("attempts_left", left))
		if left == 0 {
			s.lockedRequest(w, r, req)
			return
		}
		s.renderTOTP(w, r, http.StatusOK, id, s.hasPasskeyOrFalse(ctx, userID), fmt.Sprintf("%s %s", wrongCode, triesLeft(left)))
	default:
		s.oidc.refundCodeAttempt(id)
		s.internalError(w, r, "check second factor", err, id)
	}
}

func triesLeft(n int) string {
	if n == 1 {
		return "1 try left."
	}
	return fmt.Sprintf("%d tries left.", n)
}

// lockedRequest explains that a sign-in took too many wrong codes.
func (s *Server) lockedRequest(w http.ResponseWriter, r *http.Request, req *authRequest) {
	s.renderLocked(w, r, req, "Too many wrong codes", "too many wrong codes")
}

// lockedPasskeyRequest explains that a sign-in took too many failed
// passkey answers (the same lock as lockedRequest's).
func (s *Server) lockedPasskeyRequest(w http.ResponseWriter, r *http.Request, req *authRequest) {
	s.renderLocked(w, r, req, "Too many failed attempts", "too many failed attempts")
}

func (s *Server) renderLocked(w http.ResponseWriter, r *http.Request, req *authRequest, title, what string) {
	next := &link{URL: "/", Label: "Go to the home page"}
	msg := "For your security, this sign-in was stopped after " + what + ". Go back to the app you came from and sign in again."
	if req.local {
		next = &link{URL: req.returnTo, Label: "Sign in again"}
		msg = "For your security, this sign-in was stopped after " + what + ". Sign in again to continue."
	}
	s.renderError(w, r, http.StatusForbidden, errorPage{Title: title, Message: msg, Next: next})
}

// mfaUnavailable explains that the client asked for a second factor the
// user does not have.
func (s *Server) mfaUnavailable(w http.ResponseWriter, r *http.Request) {
	msg := "The app you came from asks for a second sign-in step, a code from an authenticator app, and your account has none set up. Ask your administrator to set one up, then sign in again."
	if s.passkeys != nil {
		msg = "The app you came from asks for a second sign-in step, a code from an authenticator app or a passkey, and your account has neither set up. Ask your administrator to set one up, then sign in again."
	}
	s.renderError(w, r, http.StatusForbidden, errorPage{
		Title:   "Two-step verification required",
		Message: msg,
		Next:    &link{URL: "/", Label: "Go to the home page"},
	})
}

// mfaLimitKey is the counter key of a user's wrong codes and refused
// passkey answers; the store never sees the user ID in clear.
func (s *Server) mfaLimitKey(userID string) string {
	m := hmac.New(sha256.New, s.limitKey[:])
	m.Write([]byte(userID))
	return "provider-mfa-failures:" + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

// mfaLimited reports whether one more wrong code would exceed
// mfaFailuresPerAccount.
// refusedByMFALimit answers a second-factor attempt of userID in sign-in
// id when the account's failure limit is reached (or cannot be read): it
// gives the attempt back to the sign-in, logs, shows the page and returns
// true. Otherwise it returns false and the attempt goes on.
func (s *Server) refusedByMFALimit(w http.ResponseWriter, r *http.Request, id, userID, title, message string) bool {
	ctx := r.Context()
	limited, err := s.mfaLimited(ctx, userID)
	if err != nil {
		s.oidc.refundCodeAttempt(id)
		s.internalError(w, r, "second-factor limit", err, id)
		return true
	}
	if !limited {
		return false
	}
	s.oidc.refundCodeAttempt(id)
	s.logger.WarnContext(ctx, "second factor refused: too many failures for the account",
		slog.String("user", userID), slog.String("remote", r.RemoteAddr))
	s.renderError(w, r, http.StatusTooManyRequests, errorPage{
		Title:   title,
		Message: message + " For your security, wait an hour before you try again.",
		Next:    &link{URL: "/", Label: "Go to the home page"},
	})
	return true
}

func (s *Server) mfaLimited(ctx context.Context, userID string) (bool, error) {
	now := s.now()
	start := now.Truncate(mfaFailureWindow)
	cur, prev, err := s.ssprDB.Count(ctx, s.mfaLimitKey(userID), start, mfaFailureWindow)
	if err != nil {
		return false, fmt.Errorf("server: count wrong codes: %w", err)
	}
	weight := 1 - float64(now.Sub(start))/float64(mfaFailureWindow)
	return float64(cur+1)+float64(prev)*weight > mfaFailuresPerAccount, nil
}

// countMFAFailure counts a wrong code or refused passkey answer of the
// user.
func (s *Server) countMFAFailure(ctx context.Context, userID string) error {
	now := s.now()
	_, _, err := s.ssprDB.Hit(ctx, s.mfaLimitKey(userID), now.Truncate(mfaFailureWindow), mfaFailureWindow)
	return err
}
