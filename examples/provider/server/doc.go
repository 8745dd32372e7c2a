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
//	/account               who is signed in in this browser, and a sign-out button
//	/recovery/             sspr: forgot password, linked from the sign-in page
//	/dev/mailbox(.json)    messages the dev mailbox kept (loopback clients only)
//	/.well-known/…, /authorize, /oauth/token, /keys, /userinfo, …
//	                       the OpenID provider (zitadel/oidc op)
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
// sspr gets three verification flows: email (a link or code), TOTP
// (authenticator apps) and recovery codes. Its policy asks a user with an
// authenticator app for a code as well as the email, so a reset never
// bypasses their MFA.
//
// # Signing in
//
// The sign-in page checks the password. A user with an authenticator app
// (sspr's TOTP factors in sspr.db, the same ones sspr's journeys use) then
// enters a 6-digit code on a second page; [totp.Flow.Check] verifies it and
// refuses a code that was already used. A sign-in takes 5 wrong codes, then
// it is locked and the user starts again from the app; an account takes 20
// wrong codes an hour across sign-ins. ID tokens say how the user signed
// in: amr ["pwd"] and acr [ACRPassword] for a password alone, amr
// ["pwd","otp","mfa"] and acr [ACRMFA] with a code, and auth_time.
//
// A successful sign-in also starts a sign-in session: a signed and
// encrypted cookie (HttpOnly, SameSite=Lax, Secure for an https issuer,
// 8 hours) holding the user, auth_time and amr. The next authorization in
// that browser completes without the sign-in page (single sign-on) and with
// the session's auth_time and amr, unless the request asks otherwise:
// prompt=login, prompt=select_account or max_age=0 always show the sign-in
// page, an older session than max_age too, and a login_hint or
// id_token_hint for someone else. acr_values containing [ACRMFA] require a
// code: a password-only session does not satisfy it, and a user without an
// authenticator app gets an error page. prompt=none completes from the
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
// them and keeps the last 100 for /dev/mailbox; tests wait for them with
// [Mailbox.Wait].
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
// authenticator app with the published, demo-only secret [BobTOTPSecret].
package server
