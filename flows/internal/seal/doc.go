// Package seal encrypts the secrets flows keep at rest (TOTP secrets,
// phone numbers, pending enrolments) with AES-256-GCM under a rotating
// list of keys.
//
// A sealed value is
//
//	fingerprint (8 bytes) | nonce (12 bytes) | ciphertext | tag (16 bytes)
//
// where the fingerprint is the first 8 bytes of a domain-separated SHA-256
// of the key that sealed it. [Sealer.Open] picks the key by fingerprint, so
// it never tries every key, and a fingerprint reveals nothing useful about
// a 256-bit key.
//
// Security properties (each is tested):
//   - confidentiality and integrity: a flipped bit anywhere, a truncated
//     value or a value sealed under a key not in the list does not open;
//   - context binding: values are sealed with additional data (for example
//     the user ID and the record ID), so a sealed value copied to another
//     user's record does not open;
//   - rotation: [New] takes a list of keys; the first seals, all open. To
//     rotate, put the new key first and keep the old one second until every
//     value has been sealed again (see [Sealer.Current]), then drop it.
//
// The package is internal to flows: hosts configure keys on the flows
// (for example totp.Config.Keys), never a Sealer.
package seal
