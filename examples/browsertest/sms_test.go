package browsertest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sspr-go/sspr/examples/provider/server"
)

// Selectors of the SMS pages.
const (
	resendSubmit = `form[action="/recovery/verify/resend"] button[type=submit]`
	smsAdd       = `main a[href="/recovery/account/security/sms/add"]`
	smsEnrol     = `main form[action="/recovery/account/security/sms/add"] button[type=submit]:not([name=resend])`
	smsSection   = `section[aria-labelledby="h-sms"]`
)

// Journey 7: carol has no email address, only a phone number, so she
// chooses a text message on the first page (every reset begins with email)
// and her code comes by SMS (the dev mailbox keeps it, channel "sms").
// She types a wrong code, asks for a new one, types that, chooses a new
// password and signs in with it. On a phone, where a texted code is read.
func TestJourneyResetBySMS(t *testing.T) {
	t.Parallel()
	b, s := newJourney(t, "sms-reset", mobileViewport())
	b.strictAxe = true
	b.toSignIn(s, "login")
	b.askReset(server.CarolUsername)
	// Every reset begins with the first channel, email, so the page tells
	// nobody whether carol exists; she chooses a text message instead.
	b.page("sms-first-channel", "/recovery/verify", "Check your email")
	b.click(`form[action="/recovery/verify/method"] input[name=flow][value=sms] ~ button`)
	b.page("sms-code", "/recovery/verify", "Enter the code we texted you")
	if got := b.text(`label[for="code"]`); got != "Code from the text message" {
		t.Errorf("SMS code page: label %q", got)
	}

	code := s.textedCode(t, server.CarolPhone)
	wrong := "00000000"
	if wrong == code {
		wrong = "11111111"
	}
	b.typeCode(wrong)
	b.page("sms-wrong-code", "/recovery/verify", "Enter the code we texted you")
	b.expectError("#code", "#code-error", "That code isn't right. You have 4 tries left.")
	b.expectFocusOnError("sms-wrong-code")

	b.click(resendSubmit) // "send a new code"
	b.page("sms-new-code", "/recovery/verify", "Enter the code we texted you")
	if got := b.text(`main .notice[role="status"]`); !strings.Contains(got, "We sent a new code") {
		t.Errorf("after asking for a new code the page says %q", got)
	}
	fresh := s.textedCode(t, server.CarolPhone)
	b.typeCode(fresh)
	b.page("new-password", "/recovery/password", "Choose a new password")
	const newPassword = "painting-the-roses-red-again"
	b.choosePassword(newPassword)
	b.page("done", "/recovery/done", "Your password was changed")

	b.click(mainButton)
	b.page("login-again", "/login?authRequestID=", "Sign in")
	b.signIn(server.CarolUsername, newPassword)
	b.expectClaims("rp-claims", server.CarolUserID, server.CarolDisplayName, "pwd")
}

// Journey 8: alice adds a phone number on the security-info page. Her
// sign-in is six minutes old, so the change needs a step-up: alice has no
// second factor, so an emailed code. A landline and a number that is no
// number are refused; a mobile number (one of ACMA's numbers for drama,
// +61 491 570 156 to 159; carol has ...156) gets a texted code, and the
// security-info page then lists it masked.
func TestJourneyAddPhoneNumber(t *testing.T) {
	t.Parallel()
	b, s := newJourney(t, "add-phone", desktopViewport())
	b.strictAxe = true
	b.toSignIn(s, "login")
	b.signIn(server.DemoEmail, server.DemoPassword)
	b.expectClaims("rp-claims", server.DemoUserID, server.DemoEmail, "pwd")

	s.clock.Advance(6 * time.Minute) // older than the step-up window (5 minutes)
	b.navigate(s.issuer + "/account")
	b.page("account", "/account", "Your account")
	b.click(`main a[href="/recovery/account/security"]`)
	b.page("security", "/recovery/account/security", "Security info")
	if got := b.text(smsSection); !strings.Contains(got, "None yet") {
		t.Errorf("the phone numbers section says %q before one is added", got)
	}
	b.click(smsAdd)
	b.stepUp("/recovery/account/security/sms/add", "Check your email")
	b.typeCode(s.mailedCode(t, server.DemoEmail))

	b.page("phone-form", "/recovery/account/security/sms/add", "Add a phone number")
	b.expectFullWidth("#phone")
	// Risk information before anyone relies on SMS (ASVS V6.6.1).
	if got := b.text("#sms-risk"); !strings.Contains(got, "SIM swap") || !strings.Contains(got, "authenticator app or a passkey is safer") {
		t.Errorf("the phone form's risk note says %q", got)
	}
	for _, bad := range []struct{ name, number, want string }{
		{"phone-landline", "+61 2 5550 1234", "We can't send text messages to that number. Enter a mobile number."},
		{"phone-junk", "12345", "That doesn't look like a phone number."},
	} {
		b.fill("#phone", bad.number)
		b.click(smsEnrol)
		b.page(bad.name, "/recovery/account/security/sms/add", "Add a phone number")
		b.expectError("#phone", "#enrol-error", bad.want)
		b.expectAlert("#enrol-error")
		b.expectFocusOnError(bad.name)
		if got := eval[string](b, "the number typed", `document.getElementById('phone').value`); got != bad.number {
			t.Errorf("after the error the field holds %q, want what was typed, %q", got, bad.number)
		}
	}

	const number, e164, masked = "+61 491 570 157", "+61491570157", "+61 •••••••57"
	b.fill("#phone", number)
	b.click(smsEnrol)
	b.page("phone-code", "/recovery/account/security/sms/add", "Add a phone number")
	b.typeEnrolCode(s.textedCode(t, e164))
	b.page("phone-added", "/recovery/account/security/sms/add", "Phone number added")
	b.click(mainButton) // Back to security info
	b.page("security-with-phone", "/recovery/account/security", "Security info")
	got := b.text(smsSection)
	if !strings.Contains(got, masked) || strings.Contains(got, "570157") || strings.Contains(got, "570 157") {
		t.Errorf("the phone numbers section says %q, want the number masked as %q", got, masked)
	}
}

// typeEnrolCode types a code into the code field of an enrolment page and
// submits it.
func (b *tab) typeEnrolCode(code string) {
	b.t.Helper()
	b.fill("#code", code)
	b.click(smsEnrol)
}

// expectFullWidth checks that the field sel is styled like the others:
// as wide as its form group.
func (b *tab) expectFullWidth(sel string) {
	b.t.Helper()
	js := `(() => { const f = document.querySelector(` + jsString(sel) + `), g = f && f.closest('.field');
	  return !!g && Math.abs(f.getBoundingClientRect().width - g.getBoundingClientRect().width) < 1; })()`
	if !eval[bool](b, "field width", js) {
		b.t.Errorf("[%s] field %s is narrower than its form group: is it styled?", b.journey, sel)
	}
}

// expectAlert checks that the error sel is announced: visible, with
// role=alert, and text.
func (b *tab) expectAlert(sel string) {
	b.t.Helper()
	js := `(() => { const e = document.querySelector(` + jsString(sel) + `);
	  return !!e && e.getAttribute('role') === 'alert' && !e.hidden && !!(e.offsetWidth || e.offsetHeight) && e.textContent.trim() !== ''; })()`
	if !eval[bool](b, "error announcement", js) {
		b.t.Errorf("[%s] error %s is not a visible role=alert with text", b.journey, sel)
	}
}
