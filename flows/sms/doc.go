// Package sms is the text-message verification flow: a short code sent
// to the user's phone proves that the person controls the number. Users
// can also add numbers of their own on the security-info page.
//
// It is a contact channel ([flows.KindChannel]), like email: a phone
// number is an address, not an authenticator bound to the account.
//
// Phone numbers come from two places: the host's directory
// ([flows.Subject.Phones], numbers the host verified) and numbers the
// user enrolled here, after proving with a texted code that they receive
// it. [Normalize] reads both with libphonenumber into E.164 and accepts
// only numbers that can receive text messages (mobile, or "fixed line or
// mobile" where the two cannot be told apart), so no code goes to a
// landline, a premium-rate or a toll-free number.
//
// Security properties (each is tested):
//   - codes have 8 digits by default, uniformly random from crypto/rand,
//     and are stored only as an HMAC keyed by the plugin and bound to the
//     journey (or, for an enrolment, to the user, the challenge and the
//     number);
//   - a code lives 10 minutes by default and is single use: the store
//     consumes it with one conditional update;
//   - 5 wrong codes kill a code; asking for a new one (at most 3 times)
//     replaces it but never resets that counter, and a dead or used code
//     gets no new text message, since each one costs money; malformed
//     input is refused without counting;
//   - enrolled numbers are kept only sealed with AES-256-GCM
//     ([Config.Keys], first key encrypts, all decrypt), bound to their
//     user and factor: a sealed number copied to another row does not
//     open; the factor's name is the masked number;
//   - pages and option hints show a number only [Mask]ed ("+44 ••••••••23"),
//     except to the signed-in user who is typing it in; numbers and codes
//     never appear in errors, and the flow logs nothing;
//   - for an identifier that matched nobody the flow does the same work
//     (one factor read, one decryption, one number parsed) and queues a
//     message without recipient, which the outbox drops;
//   - each message ends with "@host #code", the origin-bound one-time-code
//     format (https://wicg.github.io/sms-one-time-codes/): browsers offer
//     to fill the code in only on the plugin's own site, which blunts
//     phishing pages that ask for it;
//   - an enrolment stores nothing until the code is right; its state may be
//     replayed, but its challenge is single use and counts wrong codes; a
//     user has at most [Config.MaxNumbers] numbers, without duplicates.
//
// Use it by handing it to plugin.New:
//
//	f, err := sms.New(sms.Config{Store: st, Keys: [][]byte{key}, DefaultRegion: "DE"})
//	p, err := plugin.New(plugin.Config{Flows: []flows.Flow{f}, ...})
//
// The host's notifier must deliver messages of channel "sms" (their To is
// an E.164 number) through an SMS gateway.
package sms
