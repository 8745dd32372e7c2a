// Package password decides whether a new password is acceptable and hashes
// passwords with argon2id.
//
// # Policy
//
// [NewPolicy] takes a [PolicyConfig] whose zero value is the recommended
// setting (NIST SP 800-63B): at least 8 characters for an account with a
// second factor and 15 without one, at most 128 (never truncated), no
// composition rules, no reuse of the last 5 passwords, and the embedded list
// of common passwords. It validates every field and names the bad ones:
//
//	policy, err := password.NewPolicy(password.PolicyConfig{})
//	// password: config: field 'MaxLength': must be at least 64
//
// [Policy.Check] returns every [Problem] with a candidate password, each
// with a stable Rule for code and a plain Message for the page, or nil when
// the password is acceptable:
//
//	problems := policy.Check(password.Input{
//		Password:    r.PostFormValue("password"),
//		Identifiers: []string{user.Username, user.Email, user.DisplayName},
//		HasMFA:      len(user.Factors) > 0,
//	})
//	for _, p := range problems {
//		// p.Rule: "too_short", "too_long", "common" or "identifier"
//		// p.Message: "Use at least 15 characters."
//	}
//
// The rules, in the order Check reports them:
//
//   - too_short / too_long: the length in Unicode code points after NFC
//     normalisation, against [Policy.MinLength] (which depends on HasMFA)
//     and [Policy.MaxLength].
//   - common: the password is on the [Blocklist], compared after folding
//     case and compatibility forms, undoing common substitutions (0→o, @→a,
//     1→l, $→s, …) and removing a leading or trailing run of digits and
//     symbols, as Microsoft Entra's banned-password check does. Matching is
//     exact equality of the normalised forms, never substring search: so
//     "P@ssw0rd2024!" and "!!Dragon99" are common, while
//     "correct-horse-battery-staple-42" is not.
//   - identifier: the normalised password contains one of the user's
//     identifiers of 4 or more characters: the username, an email address or
//     its local part, or a word of the display name.
//
// Check is cheap (a few microseconds, no hashing). Password history and
// breached-password checks need hashing or the network and are separate
// steps; [Policy.HistorySize] tells how many previous passwords to keep.
//
// # Breached passwords
//
// [PolicyConfig.Breach] takes a [BreachChecker], which tells whether a
// password has appeared in a data breach; nil (the default) checks nothing.
// [PwnedRange] asks the Have I Been Pwned Pwned Passwords "range" API, or a
// compatible service or mirror, with k-anonymity: it computes the SHA-1 of
// the password and sends only its first 5 hex characters
// (GET https://api.pwnedpasswords.com/range/5BAA6). The service answers
// with the other 35 characters of every breached hash that starts so, each
// with how often it was seen, and the match is made in the process: neither
// the password nor its full hash ever leaves it. The request asks for
// padding ("Add-Padding: true"): the service fills every answer with fake
// entries of count 0, which are ignored, to 800-1,000 lines, so the answers
// have about the same size whatever the prefix and an observer of the
// encrypted traffic cannot tell the prefix from their size.
//
//	pwned, err := password.NewPwnedRange(password.PwnedRangeConfig{})
//	policy, err := password.NewPolicy(password.PolicyConfig{Breach: pwned})
//
// [Policy.CheckBreached] runs the check; call it once [Policy.Check] has
// accepted the password and before the history check. It returns a
// [Problem] with Rule "breached" when the password was found, or nil:
//
//	prob, err := policy.CheckBreached(ctx, pw)
//	switch {
//	case errors.Is(err, password.ErrBreachCheckSkipped):
//		logger.WarnContext(ctx, "breach check skipped", "err", err) // fail-open: go on
//	case err != nil:
//		return err // fail-closed: ErrBreachCheckFailed, "try again later"
//	case prob != nil:
//		// refuse the password; prob.Message tells why
//	}
//
// A checker that cannot tell (the service is down, slow, rate-limits or
// answers nonsense) returns an error, never "not breached". What happens
// then is a setting: by default the policy fails closed, and no password is
// accepted until the check works again ([ErrBreachCheckFailed]); with
// [PolicyConfig.BreachFailOpen] it fails open, and the password is accepted
// without the check ([ErrBreachCheckSkipped], for the caller to log). The
// other rules still apply in both cases. A request whose context has ended
// always fails closed.
//
// # The common-password list
//
// [DefaultBlocklist] decompresses the embedded list: the 49,233 passwords of
// the "passwords-common" dictionary of the MIT-licensed npm package
// @zxcvbn-ts/language-common 4.1.3 (data/README.md tells how it was made,
// data/LICENSE-zxcvbn-ts.txt holds its licence). It builds a new list on
// each call and keeps nothing in package state; NewPolicy calls it when
// [PolicyConfig.Blocklist] is nil. [NewBlocklist] builds a list of your own.
//
// # Hashing
//
// [NewHasher] takes a [HasherConfig] whose zero value is argon2id with
// 19 MiB of memory, 2 iterations and 1 lane (the OWASP minimum, also the
// lowest accepted), a 16-byte random salt and a 32-byte key, and at most
// runtime.NumCPU() hashes computed at once.
//
//	h, err := password.NewHasher(password.HasherConfig{})
//	encoded, err := h.Hash(ctx, pw)          // "$argon2id$v=19$m=19456,t=2,p=1$salt$key"
//	ok, err := h.Verify(ctx, pw, encoded)    // uses the parameters stored in encoded
//
// For password history, store a random salt, [Hasher.HistoryParams] and the
// key from [Hasher.DeriveKey]; to test a new password, derive its key with
// each stored salt and params and compare (with crypto/subtle):
//
//	params := h.HistoryParams()              // "argon2id$v=19$m=19456,t=2,p=1$32"
//	key, err := h.DeriveKey(ctx, pw, salt, params)
//
// Hash, Verify and DeriveKey each wait for one of MaxConcurrent slots, so
// the memory held by hashing stays below MaxConcurrent × Memory; a caller
// whose context ends while waiting gets ctx.Err(). Verify and DeriveKey
// refuse stored parameters that would panic in argon2 or exceed MaxMemory
// (default 256 MiB) or 64 iterations, with errors wrapping
// [ErrMalformedHash] or [ErrInvalidParams].
//
// Nothing in this package logs, and no error or message contains a
// password.
package password
