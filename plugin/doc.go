// Package plugin is sspr's mountable self-service password reset: an
// [http.Handler] the host's login service mounts under a prefix, and the
// journey engine behind it.
//
// # Embedding
//
//	st, err := sqlite.Config{Path: "data/sspr.db"}.Open(ctx, logger)
//	mail, err := email.New(email.Config{})
//	smtp, err := notify.NewSMTP(notify.SMTPConfig{URL: "smtp://mail:587", From: "id@example.com"})
//	p, err := plugin.New(plugin.Config{
//		BaseURL:   "https://id.example.com/recovery",
//		Directory: users,               // your user directory
//		Store:     st,
//		Flows:     []flows.Flow{mail},
//		Sender:    smtp,
//		Keys:      [][]byte{key},       // 32+ random bytes; add old keys after it to rotate
//	})
//	mux.Handle("/recovery/", p)
//	go p.Run(ctx)                     // outbox delivery and sweeping
//
// # The journey
//
// A journey is one reset attempt: identify → verify (until the policy is
// met) → set password → done. It lives in the [store.Store]; the browser
// holds only its ID, in a signed and encrypted gorilla/sessions cookie
// (HttpOnly, SameSite=Lax, Secure for https, Max-Age = the journey's
// lifetime).
//
//	GET  /              the start page (identifier form); ?return_to= must be allow-listed
//	POST /              start: look the user up, begin the first contact flow, queue its message
//	GET  /verify        "check your email": enter the code
//	POST /verify        check the code; POST /verify/resend sends a new one
//	GET  /link?token=   the emailed link: shows a page, never consumes the token
//	POST /link          consumes the token (only in the browser that started the journey)
//	GET  /password      new password form, once the policy is met
//	POST /password      policy, history, set via the [Directory], revoke, notify, audit
//	GET  /done          "your password was changed", with a link back to sign-in
//	POST /verify/method switch to another of the user's methods (each begun once per journey)
//	GET|POST /account/password   signed-in password change, after a fresh step-up (and the
//	                             current password, when the Directory is a [PasswordVerifier])
//	GET  /account/security       security info: the user's phone numbers, apps, passkeys, codes, questions
//	POST /account/security       (stepup=1) the step-up a stale removal asked for, then back to the page
//	GET|POST /account/security/<flow>/add, POST …/remove   change them, after a fresh step-up
//	POST /account/security/signout-others   end the user's other sessions (no step-up: it only takes access away)
//	GET|POST /ticket             an administrator's reset link (Plugin.IssueTicket): shows a page, its POST starts the journey
//	GET  /stepup/callback        return from the provider after an OIDC step-up
//
// # Policy
//
// A journey needs one contact channel (email, SMS) and, when the user has
// any bound authenticator (TOTP, passkey, recovery codes), one of those: a
// reset never bypasses MFA. [Config.MethodsRequired] and
// [Config.RequireDifferentKinds] ask for more; administrators
// ([AdminChecker]) always need two methods of different kinds and never
// knowledge questions. A user who cannot meet the policy is sent to the
// helpdesk ([Config.HelpURL]). The password form, and a direct POST to it,
// stay closed until the policy is met; a user with MFA may choose a
// password of 8 characters, one without needs 15.
//
// # Step-up for signed-in users
//
// With [Config.Sessions] the host tells sspr who is signed in, when they
// authenticated and how ([Session]: user ID, auth time, RFC 8176 amr). The
// change-password page needs a step-up no older than [Config.StepUpMaxAge]
// (5 minutes): a host session that is that fresh and shows a second factor,
// or a step-up journey of this browser. Otherwise sspr runs one:
//
//   - in-process (the default): sspr's own verification pages ask for a
//     bound factor (or, for users without one, a contact channel); then a
//     [SessionRaiser] raises the host session (fresh auth_time, amr with the
//     factor and "mfa"), so the provider's next login reuses it;
//   - through the provider ([Config.StepUp], [OIDCStepUp]): sspr sends the
//     user to the provider's /authorize with prompt=login, max_age=0,
//     acr_values, login_hint, a nonce, PKCE and a state bound to the
//     journey, verifies the ID token with go-oidc and then checks itself
//     that the nonce matches, sub is the signed-in user, auth_time is not
//     older than the step-up's start (minus ClockSkew), and amr (or acr)
//     shows a second factor.
//
// [GorillaSession] adapts a gorilla/sessions session to [SessionSource] and
// [SessionRaiser].
//
// # Operating it
//
// [Plugin.AuditHandler] serves the audit trail (who reset what, when, from
// where) as JSON and [Plugin.MetricsHandler] Prometheus metrics; mount both
// behind your own authorization. Every audit event is also logged through
// log/slog. [Plugin.IssueTicket] (and [Plugin.TicketHandler]) gives an
// administrator a one-time reset link (≤ 24 h) for a user who lost their
// bound factors: it stands in for those factors, and the user still proves
// the contact channel, so the administrator never sets the password.
// Several instances may share one PostgreSQL store (plugin/store/postgres):
// journeys, limits and the outbox are shared, and each message is
// delivered once.
//
// # Password history
//
// The last passwords are kept as argon2id keys that share one random salt
// per user (not one per password), so that checking a new password against
// all of them costs a single argon2id computation: with the host's own hash
// of the new password, a reset computes argon2id exactly twice.
//
// # Languages
//
// Pages and emails take their texts from the catalogs in
// templates/messages (English is the reference; every catalog has its
// keys, checked in New). The language is [Config.Locale]'s choice, else the
// browser's Accept-Language, else English; a journey's emails use the
// language it started in.
//
// # Security properties
//
// Every POST carries a CSRF token (an HMAC bound to the journey, masked per
// response) and passes an Origin / Sec-Fetch-Site check. Every page is sent
// with Cache-Control: no-store, Referrer-Policy: no-referrer,
// X-Content-Type-Options: nosniff and a Content-Security-Policy without
// inline script and with frame-ancestors 'none'. Links are built from
// [Config.BaseURL], never from the request.
//
// A known and an unknown identifier get the same status, headers and page
// and cause the same store work: for an unknown identifier the engine
// creates a decoy journey whose message has no recipient, and the outbox
// drops it. The decoy journey's pages make the host and store reads a
// known user's make, for [DecoyUserID], and throw the answers away; the
// host's [Directory.FindUser] must take the same time for both (read a
// row either way). Expensive checks (argon2id of recovery codes and
// security answers, [flows.Preparer]) run before the store's write
// transaction, one at a time per journey within a process (instances
// sharing a store may each run one), each attempt counted against the
// per-IP limit first. When the last try of a check goes wrong, the
// user's contact addresses are told (the outbox worker looks them up). Rate limits are sliding windows counted in the store (so every
// instance shares them): per client address (429 with Retry-After), per
// account (answered like success, nothing sent) and per destination
// ([Limits.MessagesPerDestination]: codes and links to one address or
// phone number, whoever asks; over it the message is dropped, the page is
// unchanged and the audit trail says "message.limited"; enrolments count
// per user too, so nobody texts one number after another).
//
// After a reset the host revokes the user's sessions ([SessionRevoker]),
// a "your password was changed" message goes to every contact address
// (email, and SMS to the numbers of a channel flow that implements
// [flows.Addresser], such as flows/sms; [ContactLister] adds the host's),
// the other administrators hear of an administrator's reset
// ([AdminLister]), an audit event is written, and the user is not signed
// in: the done page leads back to sign-in. Adding or removing a security
// method is announced the same way. With [Config.NotifyResetRequests] a
// started reset is announced to the user's other addresses.
//
// A password change is crash-safe: before the directory's SetPassword the
// notices and a revocation job are queued in one transaction, held for
// 30 seconds; afterwards they are released (or, when the directory
// refused with [ErrPasswordRejected], cancelled). If the process dies in
// between, or the directory fails in a way that may have changed the
// password (any other error, a timeout), they go out when the hold ends,
// so no password changes without the revocation and the notices. A failed
// revocation is retried by the outbox.
//
// Messages are sealed with AES-GCM (they carry codes and links) and
// written to the outbox in the same transaction as the step that causes
// them; [Plugin.Run] renders and delivers them through the [notify.Sender]
// (a [notify.Router] sends each channel its own way) with retries, so no
// response waits for SMTP or an SMS gateway. Each delivered code or link
// is audited ("message.sent") in the transaction that marks it sent; the
// worker sends up to 8 messages at once, so the Sender must be safe for
// concurrent use. Notices of a factor added or removed are queued, held,
// before the change, like those of a password change. Audit events reach
// the log and the metrics only once their transaction has committed.
package plugin
