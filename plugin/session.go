package plugin

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/sessions"
)

// ErrNoSession is returned by a [SessionSource] when nobody is signed in.
var ErrNoSession = errors.New("sspr: no session")

// Session is what the host's login session says about the signed-in user.
type Session struct {
	// UserID is the signed-in user's ID (the OIDC "sub").
	UserID string
	// AuthTime is when the user last authenticated.
	AuthTime time.Time
	// AMR lists the authentication methods used, as RFC 8176 values
	// ("pwd", "otp", "hwk", "swk", "mfa", …).
	AMR []string
	// ACR is the authentication context class, if the host uses one.
	ACR string
}

// SessionSource gives sspr the host's login session, so that signed-in
// pages (change password) know who is signed in and how recently and
// strongly they authenticated.
type SessionSource interface {
	// Session returns the request's session, or an error matching
	// [ErrNoSession] when nobody is signed in.
	Session(r *http.Request) (Session, error)
}

// SessionRaiser is an optional [SessionSource] capability: after a step-up
// done in sspr's own pages, sspr raises the host's session (a fresh
// AuthTime, the factor added to AMR), so the provider's next login reuses
// it instead of asking again. sspr also calls it after a password change,
// which revoked every session, to keep the current browser signed in.
type SessionRaiser interface {
	// RaiseSession writes s as the request's session.
	RaiseSession(w http.ResponseWriter, r *http.Request, s Session) error
}

// secondFactors are the RFC 8176 "amr" values that prove a factor other
// than a password.
var secondFactors = []string{"otp", "hwk", "swk", "sc", "mfa", "fpt", "face", "iris", "retina", "vbm", "pop"}

// hasSecondFactor reports whether amr shows a factor beyond a password.
func hasSecondFactor(amr []string) bool {
	for _, m := range amr {
		if slices.Contains(secondFactors, m) {
			return true
		}
	}
	return false
}

// GorillaSession reads (and raises) a host session kept with
// github.com/gorilla/sessions. The session's values are the user ID (a
// string), the auth time (an int64 of Unix seconds) and the AMR values (a
// space-separated string), under the configured keys.
type GorillaSession struct {
	// Store is the host's session store. Required.
	Store sessions.Store
	// Name is the session (cookie) name. Required.
	Name string
	// UserIDKey, AuthTimeKey, AMRKey and ACRKey name the values. Defaults:
	// "user_id", "auth_time", "amr", "acr".
	UserIDKey, AuthTimeKey, AMRKey, ACRKey string
}

var (
	_ SessionSource = GorillaSession{}
	_ SessionRaiser = GorillaSession{}
)

func (g GorillaSession) keys() (uid, at, amr, acr string) {
	return cmp.Or(g.UserIDKey, "user_id"), cmp.Or(g.AuthTimeKey, "auth_time"), cmp.Or(g.AMRKey, "amr"), cmp.Or(g.ACRKey, "acr")
}

// Session reads the session. A missing, undecodable or empty session is
// [ErrNoSession].
func (g GorillaSession) Session(r *http.Request) (Session, error) {
	if g.Store == nil || g.Name == "" {
		return Session{}, fmt.Errorf("sspr: gorilla session: Store and Name are required: %w", ErrNoSession)
	}
	sess, err := g.Store.Get(r, g.Name)
	if err != nil || sess.IsNew {
		return Session{}, ErrNoSession
	}
	kUID, kAT, kAMR, kACR := g.keys()
	uid, _ := sess.Values[kUID].(string)
	if uid == "" {
		return Session{}, ErrNoSession
	}
	s := Session{UserID: uid}
	if at, ok := sess.Values[kAT].(int64); ok {
		s.AuthTime = time.Unix(at, 0)
	}
	if amr, ok := sess.Values[kAMR].(string); ok {
		s.AMR = strings.Fields(amr)
	}
	s.ACR, _ = sess.Values[kACR].(string)
	return s, nil
}

// RaiseSession writes s into the session, keeping its other values.
func (g GorillaSession) RaiseSession(w http.ResponseWriter, r *http.Request, s Session) error {
	sess, _ := g.Store.Get(r, g.Name) // on a decode error sess is a fresh session
	kUID, kAT, kAMR, kACR := g.keys()
	sess.Values[kUID] = s.UserID
	sess.Values[kAT] = s.AuthTime.Unix()
	sess.Values[kAMR] = strings.Join(s.AMR, " ")
	if s.ACR != "" {
		sess.Values[kACR] = s.ACR
	}
	if err := sess.Save(r, w); err != nil {
		return fmt.Errorf("sspr: raise session: %w", err)
	}
	return nil
}
