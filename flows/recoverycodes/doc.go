// Package recoverycodes is the recovery-codes flow: a set of single-use
// codes the user saves when enrolling MFA and types when their other
// authenticators are out of reach.
//
// It is a bound flow ([flows.KindBound]): the codes were issued to the
// account holder as a second factor, so they satisfy the policy's "one
// bound authenticator" like TOTP or a passkey.
//
// Security properties (each is tested):
//   - [Flow.Generate] makes 10 codes (5 to 20, [Config.Count]) of 80 bits
//     each from crypto/rand, written as 16 characters of Crockford's base32
//     ("xxxx-xxxx-xxxx-xxxx": digits and lower-case letters without i, l, o
//     and u, so none look alike); the plain codes are returned once and
//     never stored;
//   - each code is stored as its own factor holding only a keyed hash
//     (HMAC-SHA-256 under the plugin's key, bound to the user), so a stolen
//     database yields no code and one user's code never works for another;
//   - a code is single use: [Flow.Verify] deletes it with one atomic store
//     operation, so of concurrent requests with one code exactly one wins;
//   - generating again replaces the whole set in one transaction: the old
//     codes stop working, and a failure leaves the old set intact;
//   - in a journey, wrong codes are counted on a challenge: 5 per 5
//     minutes; beginning again never resets the count; malformed input
//     (wrong length, characters outside the alphabet) is refused without
//     counting; input ignores case, spaces and dashes, and reads i, l and o
//     as 1, 1 and 0;
//   - a decoy journey does the same work, and its codes are always wrong.
//
// The hashes are keyed with the plugin's MAC key: rotating it invalidates
// the codes, so users must generate new ones.
//
// Use it by handing it to plugin.New:
//
//	f, err := recoverycodes.New(recoverycodes.Config{Store: st})
//	p, err := plugin.New(plugin.Config{Flows: []flows.Flow{f}, ...})
//
// and, after a fresh step-up, show the user a new set:
//
//	codes, err := f.Generate(ctx, st, env, userID)
package recoverycodes
