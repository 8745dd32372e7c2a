package server_test

import (
	"net/url"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/sspr-go/sspr/examples/provider/server"
	"github.com/sspr-go/sspr/plugin/notify/smtptest"
)

// TestResetEndsRefreshTokens: a refresh token the relying party got before
// a password reset no longer works after it (sspr revokes the user's
// sessions through the directory, and the provider drops its tokens), while
// one issued after the reset does.
func TestResetEndsRefreshTokens(t *testing.T) {
	mail := smtptest.NewServer(t)
	f := newFixture(t, func(c *server.Config) { c.SMTP = mail.URL() })
	offline := func() *rp {
		r := newRP(t, f.issuer)
		r.oauth.Scopes = append(r.oauth.Scopes, oidc.ScopeOfflineAccess)
		return r
	}
	refresh := func(r *rp, token string) (*oauth2.Token, error) {
		return r.oauth.TokenSource(t.Context(), &oauth2.Token{RefreshToken: token}).Token()
	}

	r := offline()
	c := newBrowser(t, testRedirectURI)
	_, before := r.finish(t, c, f.issuer, get(t, c, r.authURL()), server.DemoUsername, server.DemoPassword)
	if before.RefreshToken == "" {
		t.Fatal("no refresh token with offline_access")
	}
	rotated, err := refresh(r, before.RefreshToken)
	if err != nil || rotated.AccessToken == "" {
		t.Fatalf("refresh before the reset: %v", err)
	}

	// Alice resets her password.
	c2 := newBrowser(t, testRedirectURI)
	_, _, check := forgot(t, f, c2, server.DemoUsername)
	choose := submit(t, c2, f.issuer, check, url.Values{"code": {mailedCode(t, mail, server.DemoEmail, 1)}})
	const newPassword = "the-walrus-and-the-carpenter"
	done := submit(t, c2, f.issuer, choose, url.Values{"password": {newPassword}, "confirm": {newPassword}})
	if done.resp.Request.URL.Path != "/recovery/done" {
		t.Fatalf("reset did not finish: %s\n%s", done.resp.Request.URL, done.body)
	}

	for name, token := range map[string]string{"the latest": rotated.RefreshToken, "the first": before.RefreshToken} {
		if _, err := refresh(r, token); err == nil {
			t.Errorf("%s refresh token still works after the reset", name)
		}
	}
	// A new sign-in gets a refresh token that works.
	r2 := offline()
	c3 := newBrowser(t, testRedirectURI)
	_, after := r2.finish(t, c3, f.issuer, get(t, c3, r2.authURL()), server.DemoUsername, newPassword)
	if _, err := refresh(r2, after.RefreshToken); err != nil {
		t.Fatalf("refresh token issued after the reset: %v", err)
	}
}
