// Package server is a small OpenID Connect provider with sspr mounted at
// /recovery. It is the example a host reads to learn how to wire sspr next
// to a provider built on github.com/zitadel/oidc/v3, and the fixture the
// examples' integration tests run against.
//
// # What it serves
//
//	/                      a home page that explains the demo
//	/login                 the provider's own sign-in page (username or email, password)
//	/login/totp            its second step for users with an authenticator app
//	/login/passkey         its second step for users with a passkey
//	/account               who is signed in in this browser, and a sign-out button
//	/recovery/             sspr: forgot password, linked from the sign-in page
//	/dev/mailbox(.json)    messages the dev mailbox kept (this machine only*)
//	/dev/audit             sspr's audit trail as JSON (plugin.AuditHandler; this machine only)
//	/dev/metrics           sspr's Prometheus metrics (plugin.MetricsHandler; this machine only)
//	/.well-known/…, /authorize, /oauth/token, /keys, /userinfo, …
//	                       the OpenID provider (zitadel/oidc op)
//
// * The dev pages answer only requests from a loopback address that name
// this provider or a loopback host and carry no proxy header (Forwarded,
// X-Forwarded-For, X-Real-IP): they show reset codes and links.
//
// # How the pieces fit
//
// Users live in SQLite (<DataDir>/provider.db) with argon2id password hashes.
// The sign-in page and sspr share them through [Directory], which implements
// sspr's plugin.Directory and its optional plugin.SessionRevoker capability:
// after a reset sspr calls [Directory.RevokeSessions], which ends the user's
// sign-in sessions and drops every access and refresh token of the user.
// Authorization requests, codes and tokens live in memory, so a restart
// makes apps sign in again; the token-signing key and the cookie keys are
// persisted in DataDir so a restart keeps ID tokens verifiable and cookies
// (the sign-in session too) readable.
//
// sspr gets its verification flows: email (a link or code), SMS (a code by
// text message to a phone number the user added on the security-info page,
// verified by a code; numbers sealed under a key derived from provider.key), TOTP
// (authenticator apps), recovery codes and, when the issuer's host is a
// domain name such as localhost (a WebAuthn relying-party ID cannot be an
// IP address), passkeys with the issuer's host as relying-party ID. Its
// policy asks a user with a second factor for it as well as the email, so
// a reset never bypasses their MFA. Signed-in users add and remove
// authenticator apps, passkeys and recovery codes on sspr's security-info
// page, /recovery/account/security (linked from /account).
//
// # Signing in
//
// The sign-in page checks the password. A user with a second factor then
// gives it on a second page; the factors are sspr's, in sspr.db, the same
// ones sspr's journeys use:
//
//   - An authenticator app: the user enters a 6-digit code on /login/totp;
//     [totp.Flow.Check] verifies it and refuses a code that was already
//     used.
//   - A passkey: /login/passkey carries the options of a WebAuthn ceremony
//     ([webauthn.Flow.BeginLogin]) and sspr's page script
//     (/recovery/static/webauthn.js, no inline script), which asks the
//     browser for the passkey and posts its answer;
//     [webauthn.Flow.FinishLogin] verifies it (user verification required,
//     the signature counter must rise). The ceremony's session stays on
//     the server, on the pending authorization request, and serves one
//     answer, right or wrong; it expires after 5 minutes. Without
//     JavaScript or passkey support the page says what it needs.
//
// A user with both gets the passkey page, which links to the code page
// and back. A sign-in takes 5 wrong codes or refused passkey answers, then
// it is locked and the user starts again from the app; an account takes 20
// an hour across sign-ins. ID tokens say how the user signed in: amr
// ["pwd"] and acr [ACRPassword] for a password alone, amr
// ["pwd","otp","mfa"] with a code and ["pwd","hwk","mfa"] with a passkey,
// both with acr [ACRMFA], and auth_time.
//
// A successful sign-in also starts a sign-in session: a signed and
// encrypted cookie (HttpOnly, SameSite=Lax, Secure for an https issuer,
// 8 hours) holding the user, auth_time and amr. The next authorization in
// that browser completes without the sign-in page (single sign-on) and with
// the session's auth_time and amr, unless the request asks otherwise:
// prompt=login, prompt=select_account or max_age=0 always show the sign-in
// page, an older session than max_age too, and a login_hint or
// id_token_hint for someone else. A session without a second factor does
// not serve a user who has one (an authenticator app or a passkey, added
// since). acr_values containing [ACRMFA] require a second factor: a
// password-only session does not satisfy them, and a user with neither an
// authenticator app nor a passkey gets an error page. prompt=none completes from the
// session or answers login_required. The session carries its user's session
// epoch from provider.db; [Directory.RevokeSessions] raises the epoch, which
// ends the session in every browser.
//
// /account shows the signed-in user (a visitor without a session signs in
// first) and signs out of this browser.
//
// One confidential client is registered: "demo-app" with secret
// "demo-secret", redirect URI http://localhost:9999/callback (see
// [Config.RedirectURIs]), the authorization code flow with optional PKCE
// (S256 only) and the scopes openid, email and profile. ID tokens carry
// auth_time, amr, acr and, since the demo app reads them from there, the
// email and profile claims.
//
// The sign-in page links "Forgot password?" to
// /recovery/?return_to=<this sign-in page>, so that after a reset the user
// lands on the same pending authorization request and signs in with the new
// password; sspr never signs anybody in by itself.
//
// When [Config.SMTP] is empty, sspr's messages go to a [Mailbox] that logs
// their arrival (never their text) and keeps the last 100 for /dev/mailbox; tests wait for them with
// [Mailbox.Wait]. Text messages go to the SMS gateway of
// [Config.SMSWebhook] (signed JSON, notify.Webhook), else to the same
// mailbox; with an SMTP server but no gateway they are not sent.
//
// # Lifecycle
//
//	srv, err := server.New(ctx, server.Config{Issuer: "http://localhost:9998", DataDir: "data"})
//	defer srv.Close()
//	go srv.Run(ctx)               // sspr's outbox worker and the sweepers
//	err = srv.ListenAndServe(ctx) // or mount srv.Handler() yourself
//
// The first start seeds the demo users: alice (see [DemoUsername]), who
// signs in with a password, and bob (see [BobUsername]), who also has an
// authenticator app with the published, demo-only secret [BobTOTPSecret],
// and carol (see [CarolUsername]), who has no email address but the
// fictional mobile number [CarolPhone]: her resets go by text message.
// Each can add a passkey on the security-info page.
package server
