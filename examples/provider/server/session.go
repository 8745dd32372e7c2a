package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/gorilla/sessions"

	"github.com/sspr-go/sspr/plugin"
)

const (
	// sessionCookie is the name of the provider's sign-in session cookie.
	sessionCookie = "provider_session"
	// sessionTTL is how long a sign-in session lasts, counted from the
	// sign-in; the cookie and the server both enforce it.
	sessionTTL = 8 * time.Hour
)

// Authentication Context Class References (OpenID Connect Core §2) of the
// ID tokens: ACRMFA when the user gave a second factor, ACRPassword for a
// password alone. A client that sends acr_values containing ACRMFA gets a
// sign-in with a second factor or none.
const (
	ACRPassword = "urn:sspr:acr:pwd"
	ACRMFA      = "urn:sspr:acr:mfa"
)

// amrPassword, amrTOTP and amrPasskey are the Authentication Method
// References (RFC 8176) of a sign-in with a password alone, with a TOTP
// code and with a passkey ("hwk": proof of possession of a hardware-secured
// key; the passkey's user verification is not reported separately).
func amrPassword() []string { return []string{"pwd"} }
func amrTOTP() []string     { return []string{"pwd", "otp", "mfa"} }
func amrPasskey() []string  { return []string{"pwd", "hwk", "mfa"} }

// acrFor derives the acr of a sign-in from its amr.
func acrFor(amr []string) string {
	if slices.Contains(amr, "mfa") {
		return ACRMFA
	}
	return ACRPassword
}

// loginSession is the browser's sign-in session: who signed in, when and
// how. It lives in a signed and encrypted cookie; Epoch ties it to the
// user's session epoch in the directory, so that
// [Directory.RevokeSessions] ends it in every browser.
type loginSession struct {
	// ID is random; it binds the CSRF tokens of the account page.
	ID       string
	UserID   string
	AuthTime time.Time
	AMR      []string
	Epoch    int64
	// IssuedAt is when the session was written; it ends sessionTTL later.
	IssuedAt time.Time
}

// Keys of the cookie's values. auth_time and amr mean what they mean in an
// ID token, so that sspr's step-up can read and raise them later.
const (
	sessKeyID       = "sid"
	sessKeyUserID   = "user_id"
	sessKeyAuthTime = "auth_time"
	sessKeyAMR      = "amr"
	sessKeyEpoch    = "epoch"
	sessKeyIssuedAt = "iat"
)

// newSessionStore returns the cookie store of sign-in sessions, with every
// option set explicitly (gorilla/sessions v1.4 defaults to SameSite=None
// and no HttpOnly).
func newSessionStore(authKey, encKey [32]byte, secure bool) *sessions.CookieStore {
	st := sessions.NewCookieStore(authKey[:], encKey[:])
	st.Options = &sessions.Options{
		Path:     "/",
		HttpOnly: true,
		Secure:   secure,
		SameSite: http.SameSiteLaxMode,
	}
	st.MaxAge(int(sessionTTL / time.Second)) // the cookie's Max-Age and the codec's timestamp check
	return st
}

// currentSession returns the browser's sign-in session when it is valid:
// the cookie decodes, the session is younger than sessionTTL and its epoch
// is the user's current one. Anything else means "not signed in"; only a
// fault of the directory is an error.
func (s *Server) currentSession(r *http.Request) (loginSession, bool, error) {
	c, err := s.sessions.New(r, sessionCookie)
	if err != nil || c.IsNew {
		return loginSession{}, false, nil // no cookie, or not ours (old keys, tampered, expired)
	}
	var ls loginSession
	var authTime, epoch, iat int64
	var ok [6]bool
	ls.ID, ok[0] = c.Values[sessKeyID].(string)
	ls.UserID, ok[1] = c.Values[sessKeyUserID].(string)
	authTime, ok[2] = c.Values[sessKeyAuthTime].(int64)
	ls.AMR, ok[3] = c.Values[sessKeyAMR].([]string)
	epoch, ok[4] = c.Values[sessKeyEpoch].(int64)
	iat, ok[5] = c.Values[sessKeyIssuedAt].(int64)
	if slices.Contains(ok[:], false) || ls.UserID == "" || ls.ID == "" {
		return loginSession{}, false, nil
	}
	ls.AuthTime, ls.Epoch, ls.IssuedAt = time.Unix(authTime, 0).UTC(), epoch, time.Unix(iat, 0).UTC()
	if age := s.now().Sub(ls.IssuedAt); age < 0 || age >= sessionTTL {
		return loginSession{}, false, nil
	}
	cur, err := s.dir.sessionEpoch(r.Context(), ls.UserID)
	if errors.Is(err, plugin.ErrUserNotFound) {
		return loginSession{}, false, nil
	}
	if err != nil {
		return loginSession{}, false, err
	}
	if cur != ls.Epoch {
		return loginSession{}, false, nil
	}
	return ls, true, nil
}

// startSession writes a new sign-in session for userID to the response.
// It reads the user's epoch first, so that a revocation that happens
// meanwhile ends this session too.
func (s *Server) startSession(ctx context.Context, w http.ResponseWriter, r *http.Request, userID string, authTime time.Time, amr []string) error {
	epoch, err := s.dir.sessionEpoch(ctx, userID)
	if err != nil {
		return err
	}
	id, err := randomToken(16)
	if err != nil {
		return err
	}
	c := sessions.NewSession(s.sessions, sessionCookie)
	opts := *s.sessions.Options
	c.Options = &opts
	c.Values[sessKeyID] = id
	c.Values[sessKeyUserID] = userID
	c.Values[sessKeyAuthTime] = authTime.Unix()
	c.Values[sessKeyAMR] = slices.Clone(amr)
	c.Values[sessKeyEpoch] = epoch
	c.Values[sessKeyIssuedAt] = s.now().Unix()
	if err := s.sessions.Save(r, w, c); err != nil {
		return fmt.Errorf("server: save session: %w", err)
	}
	return nil
}

// endSession removes the sign-in session cookie from the browser.
func (s *Server) endSession(w http.ResponseWriter, r *http.Request) error {
	c := sessions.NewSession(s.sessions, sessionCookie)
	opts := *s.sessions.Options
	opts.MaxAge = -1
	c.Options = &opts
	if err := s.sessions.Save(r, w, c); err != nil {
		return fmt.Errorf("server: end session: %w", err)
	}
	return nil
}

// sessionCSRF is the CSRF token of the forms of a signed-in page: a MAC of
// the session's random ID, which only this server can compute and only a
// page of this session shows.
func (s *Server) sessionCSRF(ls loginSession, form string) string {
	m := hmac.New(sha256.New, s.csrfKey[:])
	m.Write([]byte("session\x00" + form + "\x00" + ls.ID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// sessionSatisfies reports whether ls may complete req without asking the
// user anything: no prompt=login, select_account or max_age forces a new
// sign-in, the session is young enough for max_age, it belongs to the user
// the request hints at, and it has a second factor when the client asks
// for one (acr_values) or the user has one the sign-in can check (an
// authenticator app or a passkey).
func (s *Server) sessionSatisfies(ctx context.Context, req *authRequest, ls loginSession) (bool, error) {
	if req.forcesLogin() {
		return false, nil
	}
	if req.hasMaxAge && s.now().Sub(ls.AuthTime) > req.maxAge {
		return false, nil
	}
	if req.userID != "" && req.userID != ls.UserID { // id_token_hint
		return false, nil
	}
	if req.loginHint != "" {
		u, err := s.dir.FindUser(ctx, req.loginHint)
		if errors.Is(err, plugin.ErrUserNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if u.ID != ls.UserID {
			return false, nil
		}
	}
	if slices.Contains(ls.AMR, "mfa") {
		return true, nil
	}
	if req.wantsMFA() {
		return false, nil
	}
	factors, err := s.secondFactors(ctx, ls.UserID)
	if err != nil {
		return false, err
	}
	return !factors.any(), nil
}

// ssprSessions hands the provider's sign-in session to sspr
// (plugin.Config.Sessions): sspr's change-password page reads who is
// signed in, when and how, and after a step-up on its own pages it raises
// the session (a fresh auth_time, amr with the factor), so the next
// authorization here reuses it.
type ssprSessions struct{ s *Server }

var (
	_ plugin.SessionSource = ssprSessions{}
	_ plugin.SessionRaiser = ssprSessions{}
)

// Session returns the valid sign-in session of r, or plugin.ErrNoSession.
func (a ssprSessions) Session(r *http.Request) (plugin.Session, error) {
	ls, ok, err := a.s.currentSession(r)
	if err != nil {
		return plugin.Session{}, err
	}
	if !ok {
		return plugin.Session{}, plugin.ErrNoSession
	}
	return plugin.Session{UserID: ls.UserID, AuthTime: ls.AuthTime, AMR: slices.Clone(ls.AMR), ACR: acrFor(ls.AMR)}, nil
}

// RaiseSession writes a new sign-in session for ps. It reads the user's
// current epoch, so after sspr revoked every session (a password change)
// the browser that changed the password stays signed in.
func (a ssprSessions) RaiseSession(w http.ResponseWriter, r *http.Request, ps plugin.Session) error {
	return a.s.startSession(r.Context(), w, r, ps.UserID, ps.AuthTime, ps.AMR)
}
