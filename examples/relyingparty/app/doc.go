// Package app is the example relying party: a web app that signs its users
// in through the example provider with OpenID Connect, using
// github.com/coreos/go-oidc/v3 and golang.org/x/oauth2.
//
// The "Sign in" button starts the authorization code flow with PKCE (S256).
// The state, the nonce and the PKCE verifier travel in a short-lived,
// HttpOnly, SameSite=Lax cookie that is signed with a key made at start-up.
// The callback at /callback checks the state, redeems the code, verifies the
// ID token with go-oidc (signature, iss, aud, exp), checks the nonce itself
// (go-oidc does not) and shows the verified claims: sub, email, name,
// auth_time, amr and acr.
//
// Provider discovery happens on the first sign-in, not in [New], so the app
// can start before the provider; a failed discovery is retried on the next
// sign-in. The app keeps no session: the claims page is the end of the demo.
package app
