package server

import (
	"crypto/hmac"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
)

type accountPage struct {
	Name, Username, Email string
	AuthTime              time.Time
	// Methods says how the user signed in, in words.
	Methods string
	CSRF    string
	// ChangeURL is sspr's change-password page and SecurityURL its
	// security-info page (authenticator apps, passkeys, recovery codes);
	// both ask for a fresh second factor before a change.
	ChangeURL, SecurityURL string
}

// account shows who is signed in, from the browser's sign-in session. A
// visitor without one is sent to sign in first and comes back here.
func (s *Server) account(w http.ResponseWriter, r *http.Request) {
	ls, ok, err := s.accountSession(r)
	if err != nil {
		s.internalError(w, r, "account session", err, "")
		return
	}
	if !ok {
		id, err := s.oidc.createLocalRequest("/account")
		if errors.Is(err, errTooManyRequests) {
			s.renderError(w, r, http.StatusServiceUnavailable, errorPage{Title: "Please try again", Message: "Too many sign-ins are pending. Try again in a few minutes."})
			return
		}
		if err != nil {
			s.internalError(w, r, "start sign-in", err, "")
			return
		}
		setPageHeaders(w.Header())
		http.Redirect(w, r, s.loginURL(id), http.StatusSeeOther)
		return
	}
	u, err := s.dir.User(r.Context(), ls.UserID)
	if err != nil { // the session was valid a moment ago
		s.internalError(w, r, "account user", err, "")
		return
	}
	methods := signInMethods(ls.AMR)
	s.render(w, r, http.StatusOK, "account", accountPage{
		Name: u.DisplayName, Username: u.Username, Email: u.Email,
		AuthTime:  ls.AuthTime,
		Methods:   methods,
		CSRF:      s.sessionCSRF(ls, "signout"),
		ChangeURL: "/recovery/account/password", SecurityURL: "/recovery/account/security",
	})
}

// signInMethods says in words how a session's user signed in.
func signInMethods(amr []string) string {
	var second []string
	if slices.Contains(amr, "otp") {
		second = append(second, "a code from your authenticator app")
	}
	if slices.Contains(amr, "hwk") {
		second = append(second, "a passkey")
	}
	switch len(second) {
	case 0:
		return "your password"
	case 1:
		return "your password and " + second[0]
	}
	return "your password, " + strings.Join(second[:len(second)-1], ", ") + " and " + second[len(second)-1]
}

// accountSession returns the session the account page accepts: a valid
// one with a second factor if the user has one enrolled.
func (s *Server) accountSession(r *http.Request) (loginSession, bool, error) {
	ls, ok, err := s.currentSession(r)
	if err != nil || !ok {
		return loginSession{}, false, err
	}
	ok, err = s.sessionSatisfies(r.Context(), &authRequest{local: true}, ls)
	if err != nil || !ok {
		return loginSession{}, false, err
	}
	return ls, true, nil
}

// signOut ends the browser's sign-in session. The tokens the apps hold are
// theirs to end; RevokeSessions ends everything.
func (s *Server) signOut(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, r, http.StatusBadRequest, errorPage{Title: "Something is wrong with the form", Message: "Go back, reload the page and try again."})
		return
	}
	ls, ok, err := s.currentSession(r)
	if err != nil {
		s.internalError(w, r, "sign out", err, "")
		return
	}
	if !ok { // already signed out (or the session ended meanwhile)
		if err := s.endSession(w, r); err != nil {
			s.logger.ErrorContext(r.Context(), "sign out", slog.Any("err", err))
		}
		s.signedOut(w, r)
		return
	}
	if !s.sameOrigin(r) || !hmac.Equal([]byte(s.sessionCSRF(ls, "signout")), []byte(r.PostForm.Get(csrfFormField))) {
		s.logger.WarnContext(r.Context(), "sign-out refused: bad csrf token or origin", slog.String("remote", r.RemoteAddr))
		s.renderError(w, r, http.StatusForbidden, errorPage{
			Title:   "Please try again",
			Message: "The form expired or did not come from this site. Reload your account page and try again.",
			Next:    &link{URL: "/account", Label: "Back to your account"},
		})
		return
	}
	if err := s.endSession(w, r); err != nil {
		s.internalError(w, r, "sign out", err, "")
		return
	}
	s.logger.InfoContext(r.Context(), "signed out", slog.String("user", ls.UserID))
	s.signedOut(w, r)
}

func (s *Server) signedOut(w http.ResponseWriter, r *http.Request) {
	s.renderError(w, r, http.StatusOK, errorPage{
		Title:   "You are signed out",
		Message: "You signed out of Demo Provider in this browser. Apps you signed in to keep their own sessions until you sign out there.",
		Next:    &link{URL: "/", Label: "Go to the home page"},
	})
}
