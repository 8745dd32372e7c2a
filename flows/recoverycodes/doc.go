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
//   - each code is stored as its own factor holding only a keyed hash of
//     its argon2id key: Secret = HMAC-SHA-256(plugin key, userID, costs,
//     salt, argon2id(code, salt)), with one random 16-byte salt per
//     generated set and the password package's default costs (19 MiB, 2
//     passes, 1 thread), both kept in the factor's Data (OWASP ASVS 5.0
//     V6.5.2: lookup secrets under 112 bits are stored with an approved
//     password hash and a salt); one user's code never works for another;
//   - a response costs exactly one argon2id, also for a decoy, a user
//     without codes or a user whose codes predate argon2id (they hash
//     against a random salt), and the engine computes it before it opens
//     its write transaction ([Flow.Prepare]), so other writes never wait
//     for it; [Config.Hasher] bounds how many are computed at once;
//   - a code is single use: [Flow.Verify] deletes it with one atomic store
//     operation, so of concurrent requests with one code exactly one wins;
//     a key prepared against a set that was replaced since matches
//     nothing, because the stored hash binds the salt and the costs;
//   - generating again replaces the whole set in one transaction: the old
//     codes stop working, and a failure leaves the old set intact;
//   - in a journey, wrong codes are counted on a challenge: 5 per 5
//     minutes; beginning again never resets the count; malformed input
//     (wrong length, characters outside the alphabet) is refused without
//     counting; input ignores case, spaces and dashes, and reads i, l and o
//     as 1, 1 and 0;
//   - a decoy journey does the same work, and its codes are always wrong;
//   - rotating the plugin's keys (a new key first in Config.Keys) keeps
//     every code usable while the key that stored it stays configured:
//     Verify checks the keyed hash under every key ([flows.Env.MACs]).
//
// Why argon2id first and the key last, MAC(argon2id(code, salt)), rather
// than argon2id(MAC(code), salt): the expensive step does not depend on
// the key, so checking a response under every configured key costs one
// argon2id and one HMAC per key, where the other order would cost one
// argon2id per key. The protection is the same: a stolen database alone
// allows no offline guessing at all (every stored value is an HMAC under
// a key the database does not hold), and a thief who also has the key
// still pays an argon2id per guess and set. One salt per set, not per
// code, is what keeps a response at one argon2id: the key is computed
// once and looked up among the set's codes by the store's atomic
// ConsumeFactor; the salt is still random per set and user, so nothing
// can be precomputed. Generating a set costs one argon2id per code (ten,
// computed in parallel within the Hasher's bound), before the write
// transaction.
//
// Codes stored by earlier versions (Secret = HMAC(plugin key, userID,
// code), Data empty) keep working, under any configured key, until used
// or replaced; new sets are always argon2id.
//
// Use it by handing it to plugin.New, with the plugin's Hasher so that
// one bound covers every argon2id of the service:
//
//	hasher, err := password.NewHasher(password.HasherConfig{})
//	f, err := recoverycodes.New(recoverycodes.Config{Store: st, Hasher: hasher})
//	p, err := plugin.New(plugin.Config{Flows: []flows.Flow{f}, Hasher: hasher, ...})
//
// and, after a fresh step-up, show the user a new set:
//
//	codes, err := f.Generate(ctx, st, env, userID)
package recoverycodes
