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
// 6-digit code, which [totp.Flow.Check] verifies with replay protection.
// Check counts nothing, so the provider limits guesses twice: 5 codes per
// sign-in (then the sign-in is locked) and mfaFailuresPerAccount wrong
// codes per account across sign-ins, since each new sign-in would otherwise
// bring 5 more guesses to whoever knows the password.

const (
	// mfaFailuresPerAccount wrong codes are allowed per account within any
	// mfaFailureWindow: a sliding window over the fixed-window counters of
	// sspr's store, so it survives restarts.
	mfaFailuresPerAccount = 20
	mfaFailureWindow      = time.Hour

	wrongCodeFormat = "Enter the 6-digit code your authenticator app shows."
	wrongCode       = "That code did not work. Enter the code your authenticator app shows now for Demo Provider."
)

type totpPage struct {
	AuthRequestID string
	CSRF          string
	Error         string
	HelpURL       string
	RestartURL    string
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
// right.
func (s *Server) totpForm(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	req, err := s.oidc.pendingRequest(id)
	switch {
	case err != nil || req.done:
		s.expiredRequest(w, r)
	case req.locked():
		s.lockedRequest(w, r, req)
	case req.mfaUserID == "":
		// The password step comes first (or was forgotten by a revocation).
		setPageHeaders(w.Header())
		http.Redirect(w, r, s.loginURL(id), http.StatusSeeOther)
	default:
		s.renderTOTP(w, r, http.StatusOK, id, "")
	}
}

func (s *Server) renderTOTP(w http.ResponseWriter, r *http.Request, status int, id, errMsg string) {
	cookie, err := s.csrfCookieValue(w, r)
	if err != nil {
		s.internalError(w, r, "csrf cookie", err, id)
		return
	}
	s.render(w, r, status, "totp", totpPage{
		AuthRequestID: id,
		CSRF:          s.csrfToken(cookie, id),
		Error:         errMsg,
		HelpURL:       "/recovery/?" + url.Values{"return_to": {s.loginURL(id)}}.Encode(),
		RestartURL:    s.loginURL(id),
	})
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
		s.renderTOTP(w, r, http.StatusOK, id, wrongCodeFormat)
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
	limited, err := s.mfaLimited(ctx, userID)
	if err != nil {
		s.oidc.refundCodeAttempt(id)
		s.internalError(w, r, "second-factor limit", err, id)
		return
	}
	if limited {
		s.oidc.refundCodeAttempt(id)
		s.logger.WarnContext(ctx, "second factor refused: too many wrong codes for the account",
			slog.String("user", userID), slog.String("remote", r.RemoteAddr))
		s.renderError(w, r, http.StatusTooManyRequests, errorPage{
			Title:   "Too many wrong codes",
			Message: "Too many wrong codes were entered for this account recently. For your security, wait an hour before you try again.",
			Next:    &link{URL: "/", Label: "Go to the home page"},
		})
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
		s.renderTOTP(w, r, http.StatusOK, id, fmt.Sprintf("%s %s", wrongCode, triesLeft(left)))
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
	next := &link{URL: "/", Label: "Go to the home page"}
	msg := "For your security, this sign-in was stopped after too many wrong codes. Go back to the app you came from and sign in again."
	if req.local {
		next = &link{URL: req.returnTo, Label: "Sign in again"}
		msg = "For your security, this sign-in was stopped after too many wrong codes. Sign in again to continue."
	}
	s.renderError(w, r, http.StatusForbidden, errorPage{Title: "Too many wrong codes", Message: msg, Next: next})
}

// mfaUnavailable explains that the client asked for a second factor the
// user does not have.
func (s *Server) mfaUnavailable(w http.ResponseWriter, r *http.Request) {
	s.renderError(w, r, http.StatusForbidden, errorPage{
		Title:   "Two-step verification required",
		Message: "The app you came from asks for a second sign-in step, a code from an authenticator app, and your account has none set up. Ask your administrator to set one up, then sign in again.",
		Next:    &link{URL: "/", Label: "Go to the home page"},
	})
}

// mfaLimitKey is the counter key of a user's wrong codes; the store never
// sees the user ID in clear.
func (s *Server) mfaLimitKey(userID string) string {
	m := hmac.New(sha256.New, s.limitKey[:])
	m.Write([]byte(userID))
	return "provider-mfa-failures:" + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

// mfaLimited reports whether one more wrong code would exceed
// mfaFailuresPerAccount.
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

// countMFAFailure counts a wrong code of the user.
func (s *Server) countMFAFailure(ctx context.Context, userID string) error {
	now := s.now()
	_, _, err := s.ssprDB.Hit(ctx, s.mfaLimitKey(userID), now.Truncate(mfaFailureWindow), mfaFailureWindow)
	return err
}
