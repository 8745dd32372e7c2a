// Package webauthn is the WebAuthn (passkey) verification flow: the person
// proves possession of a credential bound to the account, with user
// verification (a PIN, fingerprint or face). It is a bound authenticator
// ([flows.KindBound]) built on github.com/go-webauthn/webauthn, which
// checks the protocol; this package stores credentials as
// [store.Factor]s, binds ceremonies to journeys and enforces sspr's rules.
//
// Security properties (each is tested):
//   - user verification is required, at registration and at every
//     assertion: the options ask for it and an assertion without the UV
//     flag (or UP flag) is refused, whatever the browser did;
//   - an assertion must be for the configured RP ID (rpIdHash) and one of
//     the configured origins (clientDataJSON), answer the server's
//     challenge, be signed by a credential of this user that the options
//     allowed, and carry this user's handle;
//   - signature-counter regressions are refused: a counter that does not
//     increase (unless it is 0 both stored and received, as for synced
//     passkeys) is treated as a cloned authenticator. The stored counter
//     is raised with one conditional update ([store.FactorStore.AdvanceCounter]),
//     so of two assertions with the same counter only one passes; the new
//     counter and flags are written back after every success;
//   - a journey's challenge is single use (consumed atomically by
//     [store.ChallengeStore.ConsumeCode]; a second Verify is
//     [flows.ErrUsed]), lives [Config.Timeout] (5 minutes) measured with
//     the engine's clock, never go-webauthn's, and dies after
//     [MaxAttempts] (5) refused assertions; beginning again carries the
//     count over;
//   - the session data never leaves the server: the challenge keeps it in
//     its Data, and the browser gets only the request options;
//   - a credential ID can be registered once across all users: a
//     credential's factor ID is derived from its credential ID, so a second
//     registration conflicts (WebAuthn §7.1);
//   - for a decoy subject (an identifier that matched nobody) Begin does the
//     same store work and stores plausible options for an invented
//     credential; Verify refuses and counts like for a real user.
//
// # Storage
//
// Each credential is a [store.Factor] with Flow [ID]: Name is the user's
// label ([DefaultLabel], a message key), Data the JSON of go-webauthn's
// Credential (public key, flags, transports, attestation), Counter the
// signature counter. Nothing in it is secret. Each user with a passkey
// also has one factor with Flow [UserHandleFlow] whose Data is the user's
// WebAuthn user handle: 32 random bytes created on first enrolment and
// kept for good. A random stored handle was chosen over one derived with
// [flows.Env.MAC]: it survives key rotation, reveals nothing about the
// user ID, and enrolment outside journeys has no Env. Its factor ID is
// derived from the user ID, so concurrent first enrolments agree on one.
//
// # Journeys
//
// [Flow.Options] offers one option per credential. [Flow.Begin] stores a
// challenge (Data: go-webauthn's SessionData and the request options);
// the engine renders the "webauthn" page ([Flow.Prompt]) with
// [Flow.AssertionOptions] in <script type="application/json"
// id="webauthn-options"> and serves [Script]; the script posts the
// assertion in the form field "assertion", and [Flow.Verify] checks it.
//
// # Enrolment and the host's own login
//
// [Flow.BeginRegistration] and [Flow.FinishRegistration] enrol a passkey;
// [Flow.BeginLogin] and [Flow.FinishLogin] verify one outside journeys
// (for example as the second factor of the host's login). They return an
// opaque session that the caller keeps server side (or in a signed and
// encrypted cookie), uses once and deletes; its expiry is enforced here.
//
// Use it by handing it to plugin.New:
//
//	f, err := webauthn.New(webauthn.Config{
//		Store:     st,
//		RPID:      "example.com",
//		RPOrigins: []string{"https://id.example.com"},
//	})
//	p, err := plugin.New(plugin.Config{Flows: []flows.Flow{emailFlow, f}, ...})
package webauthn
