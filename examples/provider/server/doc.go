// Package server is a small OpenID Connect provider with sspr mounted at
// /recovery. It is the example a host reads to learn how to wire sspr next
// to a provider built on github.com/zitadel/oidc/v3, and the fixture the
// examples' integration tests run against.
//
// # What it serves
//
//	/                      a home page that explains the demo
//	/login                 the provider's own sign-in page (username or email, password)
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
// after a reset sspr calls [Directory.RevokeSessions], which drops every
// access and refresh token of the user. Authorization requests, codes and
// tokens live in memory, so a restart signs everybody out; the token-signing
// key and the cookie keys are persisted in DataDir so a restart keeps ID tokens
// verifiable and cookies readable.
//
// One confidential client is registered: "demo-app" with secret
// "demo-secret", redirect URI http://localhost:9999/callback (see
// [Config.RedirectURIs]), the authorization code flow with optional PKCE
// (S256 only) and the scopes openid, email and profile. ID tokens carry
// auth_time and amr ["pwd"] and, since the demo app reads them from there,
// the email and profile claims.
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
// The first start seeds the demo user alice (see [DemoUsername]).
package server
