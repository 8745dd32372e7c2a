// Package totp is the authenticator-app flow: time-based one-time
// passwords (RFC 6238: HMAC-SHA-1, 30-second steps, 6 digits), the codes
// Google Authenticator, Aegis, 1Password and the like show.
//
// It is a bound flow ([flows.KindBound]): the policy asks for it when the
// user has one, so a password reset never bypasses their MFA.
//
// Security properties (each is tested):
//   - secrets are kept only sealed with AES-256-GCM ([Config.Keys], first
//     key encrypts, all decrypt, so keys rotate without re-enrolment), bound
//     to their user and factor: a sealed secret copied to another row does
//     not open;
//   - a code is accepted for the current step and [Config.Skew] (1) step
//     either side, and only if its step is later than the factor's last
//     accepted step, which the store advances atomically: a code works once
//     (of concurrent requests exactly one wins), and an earlier code is
//     refused once a later one was accepted;
//   - codes are compared in constant time;
//   - in a journey, wrong and replayed codes are counted on a challenge:
//     [MaxAttempts] (5) per [ChallengeTTL] (5 minutes); beginning again
//     never resets the count; malformed input is refused without counting;
//   - a decoy journey does the same work, and its codes are always wrong;
//   - enrolment stores nothing until the user proves the app works:
//     [Flow.Enroll] returns the secret, its otpauth:// URL and QR code with
//     a sealed token that expires after 10 minutes, and [Flow.Confirm]
//     stores the factor only for a right code, with that code's step used.
//     A user has at most [MaxFactors] authenticators.
//
// Outside journeys, [Flow.Check] verifies a code with the same replay
// protection (the example provider's MFA login uses it); it counts nothing,
// so its caller limits attempts.
//
// Use it by handing it to plugin.New:
//
//	f, err := totp.New(totp.Config{Store: st, Keys: [][]byte{key}})
//	p, err := plugin.New(plugin.Config{Flows: []flows.Flow{f}, ...})
//
// and enrol, after a fresh step-up:
//
//	e, err := f.Enroll(ctx, userID, "alice@example.com") // show e.QR, e.Secret
//	fa, err := f.Confirm(ctx, st, e.Token, code, "Phone")  // from the form
package totp
