// Package browsertest drives the example provider (examples/provider/server,
// with sspr mounted at /recovery) and the demo relying party
// (examples/relyingparty/app) in a real, headless Chromium, the way a person
// meets them. It holds tests only; this file is their guide.
//
// # What runs
//
// Every journey starts at the relying party's "Sign in" button, on a
// provider and an app of its own (httptest servers on 127.0.0.1 whose URLs
// use the name localhost: WebAuthn needs a relying-party ID that is a domain,
// and http://localhost is a secure context), with the dev mailbox as the mail
// server and an injected clock:
//
//   - TestJourneyResetByEmailLink: "Forgot password?", the link from the
//     email, a new password, then a sign-in with it; the app shows the ID
//     token's claims.
//   - TestJourneyResetByCodeOnPhone: the same on a 375 px wide phone screen,
//     typing the code from the email.
//   - TestJourneyResetWithTOTP: bob resets with the email code and a code of
//     his authenticator app (github.com/pquerna/otp), then signs in with the
//     password and a code of a later 30-second step.
//   - TestJourneyPasskey: alice adds a passkey on sspr's security-info page
//     with the DevTools virtual authenticator, resets her password with the
//     email code and the passkey, and signs in with the new password and the
//     passkey.
//   - TestJourneyChangePasswordAfterStepUp: bob, signed in more than five
//     minutes ago, changes his password on sspr's page after a step-up with
//     his authenticator app.
//   - TestJourneyResetBySMS: carol, who has no email address, resets on a
//     phone with the code texted to her number (the dev mailbox keeps text
//     messages too, channel "sms"; the code is on the last line,
//     "@localhost #12345678"): a wrong code, "send a new code", the new
//     code, a new password, then a sign-in with it.
//   - TestJourneyAddPhoneNumber: alice, signed in six minutes ago, adds a
//     mobile number on sspr's security-info page after a step-up with an
//     emailed code; a landline and a number that is no number are refused
//     first, and the page then lists the number masked.
//   - TestJourneyErrors: a wrong password, an empty identifier, a wrong
//     code, a common password, two passwords that differ, a link opened after
//     it expired (the clock moves 11 minutes), and the start and check pages
//     of a browser that asks for German (Accept-Language: de).
//   - TestChecksCatchViolations: the checks below find the faults of a page
//     broken on purpose, so that their silence on the real pages means
//     something.
//
// On every page a journey reaches, the suite checks that the page has
// exactly one h1, a title and a language, and a label for every visible
// field; it runs axe-core (rules tagged wcag2a, wcag2aa, wcag21a, wcag21aa and
// best-practice) and fails on any violation of impact "serious" or
// "critical", printing the rule, its help and the nodes (lesser ones are
// logged; the SMS journeys fail on a violation of any impact). axe-core is
// injected with the DevTools protocol's Runtime.evaluate, which the pages'
// CSP does not govern, so nothing about the pages is relaxed. After a failed submit on sspr's pages, focus must be
// on the first invalid field or on its error message; an error must sit
// right below its field, which it describes (aria-describedby).
//
// Each test runs its own Chromium (a fresh profile in a temporary folder)
// and the tests run in parallel; every wait is bounded by a timeout.
//
// # Screenshots
//
// Every page is shot full length as PNG at a desktop (1280 px) and a mobile
// (375 px) width, into the folder named by SSPR_SCREENSHOTS, by default
// examples/browsertest/screenshots/ (created; ignored by git), as
// NN-journey-page-desktop.png and NN-journey-page-mobile.png, NN counting
// the pages of the journey.
//
// # What it needs
//
// Chromium: /usr/bin/chromium, or chromium, chromium-browser or
// google-chrome on PATH (Debian: apt-get install chromium). Without one the
// tests skip and say so.
//
// axe-core 4.14.1: the file named by SSPR_AXE_JS, by default
// examples/browsertest/node_modules/axe-core/axe.min.js (ignored by git),
// which this command, run from the repository root, installs:
//
//	npm install --prefix examples/browsertest --no-save --no-package-lock --no-audit --no-fund axe-core@4.14.1
//
// With Chromium present and axe-core missing, the tests fail and print that
// command.
//
// Run it with
//
//	go test -race ./examples/browsertest/
package browsertest
