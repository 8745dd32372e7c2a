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
// drops it. Rate limits are sliding windows counted in the store (so every
// instance shares them): per client address (429 with Retry-After) and per
// account (answered like success, nothing sent).
//
// After a reset the host revokes the user's sessions ([SessionRevoker]),
// a "your password was changed" message goes to every contact address
// ([ContactLister]), an audit event is written, and the user is not signed
// in: the done page leads back to sign-in.
//
// Messages are rendered during the request, sealed with AES-GCM (they carry
// codes and links) and written to the outbox in the same transaction as the
// step that causes them; [Plugin.Run] delivers them through the
// [notify.Sender] with retries, so no response waits for SMTP.
package plugin
