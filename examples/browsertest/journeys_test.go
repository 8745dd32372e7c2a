package browsertest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	cdpwa "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/sspr-go/sspr/examples/provider/server"
)

// Selectors of the controls a person uses. sspr's check and code pages
// have several forms (verify, resend, other methods), so each selector
// names its form by action.
const (
	rpSignIn       = `form[action="/signin"] button[type=submit]`
	loginSubmit    = `form[action="/login"] button[type=submit]`
	loginForgot    = `a[href^="/recovery/"]`
	loginTOTP      = `form[action="/login/totp"] button[type=submit]`
	startSubmit    = `form[action="/recovery/"] button[type=submit]`
	verifySubmit   = `form[action="/recovery/verify"] button[type=submit]`
	linkContinue   = `form[action="/recovery/link"] button[type=submit]`
	passwordSubmit = `form[action$="/password"] button[type=submit]`
	passkeySubmit  = `#webauthn-form button[type=submit]`
	mainButton     = `main a.button`
)

// toSignIn opens the relying party, presses "Sign in" and lands on the
// provider's sign-in page.
func (b *tab) toSignIn(s *stack, name string) {
	b.t.Helper()
	b.navigate(s.appURL + "/")
	b.page("rp-home", "", "Demo App")
	b.click(rpSignIn)
	b.page(name, "/login?authRequestID=", "Sign in")
}

// signIn fills the provider's sign-in form and submits it.
func (b *tab) signIn(identifier, password string) {
	b.t.Helper()
	b.fill("#identifier", identifier)
	b.fill("#password", password)
	b.click(loginSubmit)
}

// forgot follows "Forgot password?" from the sign-in page and asks for a
// reset of identifier; the "Check your email" page follows.
func (b *tab) forgot(identifier string) {
	b.t.Helper()
	b.askReset(identifier)
	b.page("check", "/recovery/verify", "Check your email")
}

// askReset follows "Forgot password?" from the sign-in page and asks for
// a reset of identifier; the caller checks the page that follows, the
// first method's.
func (b *tab) askReset(identifier string) {
	b.t.Helper()
	b.click(loginForgot)
	b.page("start", "/recovery/", "Reset your password")
	b.fill("#identifier", identifier)
	b.click(startSubmit)
}

// typeCode types a code into the code field of the page and submits it.
func (b *tab) typeCode(code string) {
	b.t.Helper()
	b.fill("#code", code)
	b.click(verifySubmit)
}

// choosePassword fills the new-password form (both fields) and submits it.
func (b *tab) choosePassword(pw string) {
	b.t.Helper()
	b.fill("#password", pw)
	b.fill("#confirm", pw)
	b.click(passwordSubmit)
}

// stepUp continues on the "Confirm it's you" page, at a URL with
// pathPrefix, to the step-up's verification page, whose h1 contains
// heading.
func (b *tab) stepUp(pathPrefix, heading string) {
	b.t.Helper()
	b.page("confirm-its-you", pathPrefix, "Confirm it's you")
	b.click(`main form button[type="submit"]`)
	b.page("step-up", "/recovery/verify", heading)
}

// expectClaims checks the relying party's page of verified ID token
// claims: the subject, the user's email (or, for a user without one,
// name) and the amr values.
func (b *tab) expectClaims(name, sub, email string, amr ...string) {
	b.t.Helper()
	b.page(name, "/callback", "Hello")
	claims := b.text("dl.claims")
	for _, want := range append([]string{"sub " + sub, email}, amr...) {
		if !strings.Contains(claims, want) {
			b.t.Errorf("[%s] claims %q lack %q", b.journey, claims, want)
		}
	}
}

// Journey 1: forgot password, the link from the email, a new password,
// and a sign-in with it at the app.
func TestJourneyResetByEmailLink(t *testing.T) {
	t.Parallel()
	b, s := newJourney(t, "email-link", desktopViewport())
	b.toSignIn(s, "login")
	b.forgot(server.DemoEmail)

	_, link := s.resetMail(t, server.DemoEmail)
	b.navigate(link) // the person clicks the link in their mail
	b.page("confirm", "/recovery/link", "Continue your password reset")
	b.click(linkContinue)
	b.page("new-password", "/recovery/password", "Choose a new password")
	const newPassword = "marmalade-rabbit-hole-falling"
	b.choosePassword(newPassword)
	b.page("done", "/recovery/done", "Your password was changed")

	b.click(mainButton) // "Sign in": back to the same sign-in request
	b.page("login-again", "/login?authRequestID=", "Sign in")
	b.signIn(server.DemoEmail, newPassword)
	b.expectClaims("rp-claims", server.DemoUserID, server.DemoEmail, "pwd")
}

// Journey 2: the same reset on a phone (375 px), typing the code from the
// email instead of opening the link.
func TestJourneyResetByCodeOnPhone(t *testing.T) {
	t.Parallel()
	b, s := newJourney(t, "phone-code", mobileViewport())
	b.toSignIn(s, "login")
	b.forgot(server.DemoUsername)

	code, _ := s.resetMail(t, server.DemoEmail)
	b.typeCode(code)
	b.page("new-password", "/recovery/password", "Choose a new password")
	const newPassword = "tea-with-the-mad-hatter"
	b.choosePassword(newPassword)
	b.page("done", "/recovery/done", "Your password was changed")

	b.click(mainButton)
	b.page("login-again", "/login?authRequestID=", "Sign in")
	b.signIn(server.DemoUsername, newPassword)
	b.expectClaims("rp-claims", server.DemoUserID, server.DemoEmail, "pwd")
}

// Journey 3: bob has an authenticator app, so the reset needs the email
// code and a TOTP code; signing in afterwards asks for a TOTP code again.
func TestJourneyResetWithTOTP(t *testing.T) {
	t.Parallel()
	b, s := newJourney(t, "totp", desktopViewport())
	b.toSignIn(s, "login")
	b.forgot(server.BobEmail)

	code, _ := s.resetMail(t, server.BobEmail)
	b.typeCode(code)
	b.page("totp", "/recovery/verify", "Enter a code from your authenticator app")
	b.typeCode(s.totpCode(t))
	b.page("new-password", "/recovery/password", "Choose a new password")
	const newPassword = "bricks-and-mortar-77"
	b.choosePassword(newPassword)
	b.page("done", "/recovery/done", "Your password was changed")

	b.click(mainButton)
	b.page("login-again", "/login?authRequestID=", "Sign in")
	b.signIn(server.BobEmail, newPassword)
	b.page("login-totp", "/login/totp", "Enter your code")
	s.nextTOTPStep() // the reset's code is spent
	b.fill("#code", s.totpCode(t))
	b.click(loginTOTP)
	b.expectClaims("rp-claims", server.BobUserID, server.BobEmail, "otp", "mfa")
}

// addAuthenticator enables the DevTools WebAuthn domain on the tab and adds
// a virtual platform authenticator: CTAP 2.1, internal transport, resident
// keys, user verification that succeeds, and automatic presence (which
// must be set explicitly: left false, every ceremony waits forever).
func (b *tab) addAuthenticator() cdpwa.AuthenticatorID {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	if _, err := chromedp.Call(ctx, cdpwa.Enable, cdpwa.EnableParams{}); err != nil {
		b.fatalf("enable WebAuthn: %v", err)
	}
	res, err := chromedp.Call(ctx, cdpwa.AddVirtualAuthenticator, cdpwa.AddVirtualAuthenticatorParams{
		Options: &cdpwa.VirtualAuthenticatorOptions{
			Protocol:                    cdpwa.AuthenticatorProtocolCtap2,
			Ctap2version:                cdpwa.Ctap2versionCtap21,
			Transport:                   cdpwa.AuthenticatorTransportInternal,
			HasResidentKey:              true,
			HasUserVerification:         true,
			IsUserVerified:              true,
			AutomaticPresenceSimulation: true,
		},
	})
	if err != nil {
		b.fatalf("add a virtual authenticator: %v", err)
	}
	return res.AuthenticatorID
}

// credentials lists the virtual authenticator's credentials.
func (b *tab) credentials(id cdpwa.AuthenticatorID) []*cdpwa.Credential {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	res, err := chromedp.Call(ctx, cdpwa.GetCredentials, cdpwa.GetCredentialsParams{AuthenticatorID: id})
	if err != nil {
		b.fatalf("list the authenticator's credentials: %v", err)
	}
	return res.Credentials
}

// Journey 4: a signed-in user adds a passkey on the security-info page,
// then resets the password with the email code and the passkey, and signs
// in with the new password and the passkey.
func TestJourneyPasskey(t *testing.T) {
	t.Parallel()
	b, s := newJourney(t, "passkey", desktopViewport())
	authenticator := b.addAuthenticator()

	b.toSignIn(s, "login")
	b.signIn(server.DemoEmail, server.DemoPassword)
	b.expectClaims("rp-claims", server.DemoUserID, server.DemoEmail, "pwd")

	// The account page, then security info. The sign-in is fresh and
	// alice has no second factor yet, so no step-up is asked.
	b.navigate(s.issuer + "/account")
	b.page("account", "/account", "Your account")
	b.click(`main a[href="/recovery/account/security"]`)
	b.page("security", "/recovery/account/security", "Security info")

	// The authenticator-app and recovery-code pages, looked at and left.
	b.click(`main a[href$="/account/security/totp/add"]`)
	b.page("add-totp", "/recovery/account/security/totp/add", "Add an authenticator app")
	if !eval[bool](b, "QR code", `(() => { const i = document.querySelector('img.qr'); return !!i && i.complete && i.naturalWidth > 0 && !!i.alt; })()`) {
		t.Error("the authenticator-app page shows no QR code image (or one without alt text)")
	}
	if secret := b.text("code.secret"); len(secret) < 16 {
		t.Errorf("the authenticator-app page shows the key %q, want the base32 secret", secret)
	}
	b.click(`main p.secondary a[href="/recovery/account/security"]`) // Cancel
	b.page("security-back", "/recovery/account/security", "Security info")
	b.click(`main a[href$="/account/security/recovery-codes/add"]`)
	b.page("add-recovery-codes", "/recovery/account/security/recovery-codes/add", "Create recovery codes")
	b.click(`main p.secondary a[href="/recovery/account/security"]`)
	b.page("security-back-2", "/recovery/account/security", "Security info")

	// Add the passkey.
	b.click(`main a[href$="/account/security/webauthn/add"]`)
	b.page("add-passkey", "/recovery/account/security/webauthn/add", "Add a passkey")
	b.fill("#name", "Work laptop")
	b.click(passkeySubmit)
	b.page("passkey-added", "/recovery/account/security/webauthn/add", "Passkey added")
	if creds := b.credentials(authenticator); len(creds) != 1 || !creds[0].IsResidentCredential || creds[0].RpID != "localhost" {
		t.Fatalf("the authenticator holds %+v, want one resident credential for localhost", creds)
	}
	b.click(mainButton) // Back to security info
	b.page("security-with-passkey", "/recovery/account/security", "Security info")
	if got := b.text(`section[aria-labelledby="h-webauthn"]`); !strings.Contains(got, "Work laptop") {
		t.Errorf("the passkeys section says %q, want the new passkey", got)
	}

	// Later, at the app: the provider's session has the password only,
	// and alice now has a passkey, so the sign-in page shows. She has
	// forgotten her password.
	b.toSignIn(s, "login-2")
	b.forgot(server.DemoEmail)
	code, _ := s.resetMail(t, server.DemoEmail)
	b.typeCode(code)
	b.page("reset-passkey", "/recovery/verify", "Use your passkey")
	b.click(passkeySubmit)
	b.page("new-password", "/recovery/password", "Choose a new password")
	const newPassword = "looking-for-the-white-rabbit"
	b.choosePassword(newPassword)
	b.page("done", "/recovery/done", "Your password was changed")

	// Sign in: the password, then the passkey.
	b.click(mainButton)
	b.page("login-again", "/login?authRequestID=", "Sign in")
	b.signIn(server.DemoEmail, newPassword)
	b.page("login-passkey", "/login/passkey", "Use your passkey")
	b.click(passkeySubmit)
	b.expectClaims("rp-claims-2", server.DemoUserID, server.DemoEmail, "hwk", "mfa")
	if creds := b.credentials(authenticator); len(creds) != 1 || creds[0].SignCount < 2 {
		t.Errorf("after two assertions the credential is %+v, want a sign count of at least 2", creds)
	}
}

// Journey 5: a signed-in user changes the password on sspr's page after a
// step-up with the authenticator app, stays signed in, and signs out.
func TestJourneyChangePasswordAfterStepUp(t *testing.T) {
	t.Parallel()
	b, s := newJourney(t, "change-password", desktopViewport())
	b.toSignIn(s, "login")
	b.signIn(server.BobEmail, server.BobPassword)
	b.page("login-totp", "/login/totp", "Enter your code")
	b.fill("#code", s.totpCode(t))
	b.click(loginTOTP)
	b.expectClaims("rp-claims", server.BobUserID, server.BobEmail, "otp")

	// Six minutes later the sign-in is older than the step-up window
	// (5 minutes): the change-password page asks for a new code first.
	s.clock.Advance(6 * time.Minute)
	b.navigate(s.issuer + "/account")
	b.page("account", "/account", "Your account")
	b.click(`main a[href="/recovery/account/password"]`)
	b.stepUp("/recovery/account/password", "Enter a code from your authenticator app")
	b.typeCode(s.totpCode(t))
	b.page("change-password", "/recovery/account/password", "Change your password")
	b.fill("#current", server.BobPassword) // asked for as well (ASVS V6.2.3)
	b.choosePassword("scaffold-and-crane-12")
	b.page("changed", "/recovery/account/password", "Your password was changed")
	b.click(mainButton) // Back to your account: still signed in
	b.page("account-after", "/account", "Your account")
	if got := b.text("main"); !strings.Contains(got, server.BobEmail) {
		t.Errorf("the account page after the change says %q", got)
	}
	b.click(`form[action="/account/signout"] button[type=submit]`)
	b.page("signed-out", "/account/signout", "You are signed out")
}

// Journey 6: the mistakes a person makes, and what the pages say: a wrong
// password, an empty identifier, a wrong code, a weak password, two
// passwords that differ, an expired link; then the German pages.
func TestJourneyErrors(t *testing.T) {
	t.Parallel()
	b, s := newJourney(t, "errors", desktopViewport())
	b.toSignIn(s, "login")

	b.signIn(server.DemoEmail, "not-my-password")
	b.page("login-wrong-password", "/login", "Sign in")
	if got := b.text("main .alert"); !strings.Contains(got, "Wrong email/username or password") {
		t.Errorf("wrong password: the page says %q", got)
	}
	b.reportFocus("login-wrong-password")

	b.click(loginForgot)
	b.page("start", "/recovery/", "Reset your password")
	b.click(startSubmit) // nothing typed
	b.page("start-empty", "/recovery/", "Reset your password")
	b.expectError("#identifier", "#identifier-error", "Enter the email address or username")
	b.expectFocusOnError("start-empty")

	b.fill("#identifier", server.DemoEmail)
	b.click(startSubmit)
	b.page("check", "/recovery/verify", "Check your email")
	code, _ := s.resetMail(t, server.DemoEmail)
	wrong := "00000000"
	if wrong == code {
		wrong = "11111111"
	}
	b.typeCode(wrong)
	b.page("check-wrong-code", "/recovery/verify", "Check your email")
	b.expectError("#code", "#code-error", "That code isn't right. You have 4 tries left.")
	b.expectFocusOnError("check-wrong-code")

	b.typeCode(code)
	b.page("new-password", "/recovery/password", "Choose a new password")
	b.choosePassword("P@ssw0rd2024!")
	b.page("weak-password", "/recovery/password", "Choose a new password")
	b.expectError("#password", "#password-error", "too common")
	b.expectFocusOnError("weak-password")

	// The show-password toggle (password.js) switches the field to text
	// and back.
	b.press("button.toggle-password")
	if typ := eval[string](b, "password field type", `document.getElementById('password').type`); typ != "text" {
		b.fatalf("after pressing the show-password toggle the field is %q, want text", typ)
	}
	b.press("button.toggle-password")
	if typ := eval[string](b, "password field type", `document.getElementById('password').type`); typ != "password" {
		b.fatalf("after pressing the toggle twice the field is %q, want password", typ)
	}

	b.fill("#password", "sunflower-teapot-harbour")
	b.fill("#confirm", "sunflower-teapot-harbor")
	b.click(passwordSubmit)
	b.page("password-mismatch", "/recovery/password", "Choose a new password")
	b.expectError("#confirm", "#confirm-error", "don't match")
	b.expectFocusOnError("password-mismatch")

	// A link opened after its 10 minutes.
	b.navigate(s.issuer + "/recovery/")
	b.page("start-again", "/recovery/", "Reset your password")
	b.fill("#identifier", server.DemoEmail)
	b.click(startSubmit)
	b.page("check-2", "/recovery/verify", "Check your email")
	_, link := s.resetMail(t, server.DemoEmail)
	s.clock.Advance(11 * time.Minute)
	b.navigate(link)
	b.page("link-expired", "/recovery/link", "This link has expired")
	b.click(mainButton) // Start a new reset
	b.page("start-after-expiry", "/recovery/", "Reset your password")

	// The same pages for a browser that asks for German.
	b.do("ask for German pages", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
			Headers: network.Headers{"Accept-Language": "de-DE,de;q=0.9"},
		})
		return err
	}))
	b.navigate(s.issuer + "/recovery/")
	b.page("start-de", "/recovery/", "Passwort zurücksetzen")
	b.expectLang("de")
	if got := b.text(`label[for="identifier"]`); got != "E-Mail-Adresse oder Benutzername" {
		t.Errorf("German start page: label %q", got)
	}
	b.fill("#identifier", server.BobUsername)
	b.click(startSubmit)
	b.page("check-de", "/recovery/verify", "Prüfen Sie Ihre E-Mails")
	b.expectLang("de")
	if got := b.text(`label[for="code"]`); got != "Code aus der E-Mail" {
		t.Errorf("German check page: label %q", got)
	}
}

// expectError checks a field's error after a failed submit: the message
// is shown, it follows the field in the same form group, and the field is
// marked invalid and described by it.
func (b *tab) expectError(field, errSel, want string) {
	b.t.Helper()
	if got := b.text(errSel); !strings.Contains(got, want) {
		b.t.Errorf("[%s] error %s says %q, want %q", b.journey, errSel, got, want)
	}
	js := `(() => {
	  const f = document.querySelector(` + jsString(field) + `), e = document.querySelector(` + jsString(errSel) + `);
	  if (!f || !e) return 'missing';
	  if (f.getAttribute('aria-invalid') !== 'true') return 'the field is not aria-invalid';
	  if (!(f.getAttribute('aria-describedby') || '').split(/\s+/).includes(e.id)) return 'the field is not described by the error';
	  if (f.closest('.field') !== e.closest('.field')) return 'the error is not in the field\'s group';
	  const fr = f.getBoundingClientRect(), er = e.getBoundingClientRect();
	  if (er.top < fr.bottom - 1 || er.top - fr.bottom > 48) return 'the error is not right below the field';
	  return '';
	})()`
	if problem := eval[string](b, "error placement", js); problem != "" {
		b.t.Errorf("[%s] %s and %s: %s", b.journey, field, errSel, problem)
	}
}

// reportFocus logs where focus is after a failed submit when it is not on
// the first invalid field or its error message. It is for the example
// provider's sign-in page, which marks both fields invalid after a wrong
// password (it cannot say which one is wrong) and focuses the password, the
// field a person retypes; sspr's own pages are held to expectFocusOnError.
func (b *tab) reportFocus(name string) {
	b.t.Helper()
	if f := b.focusAfterError(); !f.OK {
		b.t.Logf("[%s] focus (not failing): page %s after a failed submit: focus on %s, the first invalid field is %s (errors %v)",
			b.journey, name, f.Active, f.FirstInvalid, f.ErrorIDs)
	}
}

// expectLang checks the language of the page.
func (b *tab) expectLang(want string) {
	b.t.Helper()
	if got := eval[string](b, "page language", `document.documentElement.lang`); got != want {
		b.t.Errorf("[%s] page language %q, want %q", b.journey, got, want)
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
