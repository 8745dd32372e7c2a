// Package questions is the security-questions flow: the user answers a few
// questions at enrolment, and a reset journey asks some of them.
//
// Knowledge factors are weak. Answers are often guessable, researchable
// (public records, social media, people who know the user) or reused, and
// users forget what they typed. NIST SP 800-63B does not accept them as
// an authenticator at any assurance level and forbids verifiers to prompt
// for them, and OWASP's Forgot Password Cheat Sheet calls them weak, to be
// used only alongside other methods. That is why this flow is off by default (a host
// enables it by handing it to plugin.New), why it is a [flows.KindKnowledge]
// flow that the engine never lets count alone (a contact channel and, when
// the user has any, a bound authenticator are still required), and why the
// engine never offers it to administrators. It can serve as an extra
// method for users who have no bound authenticator, nothing more. OWASP
// ASVS 5.0 V6.4.2 asks for no secret questions at all: a host that enables
// this flow departs from it by its own choice.
//
// Security properties (each is tested):
//   - nothing is stored in clear: a user's set is one factor whose Data is
//     a JSON list of {question, 16-byte random salt, 32-byte argon2id hash
//     of the normalized answer, costs}; the costs default to OWASP's
//     minimum for argon2id (19 MiB, 2 passes, 1 thread) and are stored with
//     each hash, and costs read back are bounded so a corrupt record cannot
//     exhaust memory;
//   - answers are compared after [Normalize] (NFKC, case folding,
//     punctuation and symbols removed, white space collapsed), so
//     "  o'BRIEN " matches "OBrien"; an answer longer than [MaxAnswerBytes]
//     is refused at enrolment and wrong at verification;
//   - enrolment asks for Enrol (3) distinct questions of the configured
//     list, each answered with at least MinAnswerLength (3) characters,
//     the answers distinct and none repeating its question; errors never
//     echo an answer back; replacing a set deletes the old factor and
//     creates the new one in one transaction;
//   - a journey asks Ask (2) of the user's questions and all must be right;
//     which ones is fixed per journey (by a MAC of the journey ID under the
//     plugin's key, or the journey's previous challenge), so restarting the
//     method or waiting for the challenge to expire never shops for easier
//     questions, and a live challenge is kept so choosing the method again
//     never resets its count;
//   - a wrong submission counts once, however many answers were wrong, and
//     does not say which: MaxAttempts (3) per challenge, surviving expiry;
//     a missing answer is wrong; a form with every answer blank is refused
//     without counting;
//   - verification computes argon2id for every asked answer, also after a
//     wrong or empty one, and compares in constant time (the constant
//     time is the one property here a test cannot observe; the code
//     shows it);
//   - the hashes are computed by [Flow.Prepare], which the engine calls
//     before it opens its write transaction, so that no other write of
//     the service waits for them (on SQLite every write shares one
//     writer); [Flow.Verify] then re-reads the challenge and the set in
//     the transaction and trusts each prepared result only for the same
//     question, answer and stored hash (salt, hash and costs): answers
//     prepared against a set that was replaced meanwhile are wrong, and
//     counted. Called without a prepared value, Verify hashes itself;
//   - every hash, at enrolment and at verification, goes through
//     [Config.Hasher], which bounds how many are computed at once (each
//     holds 19 MiB), so that many parallel attempts cannot exhaust
//     memory;
//   - a decoy journey (an identifier that matched nobody), or a user
//     without a set, does the same store and hashing work (one argon2id
//     per asked question, against a hash nothing matches) and is never
//     verified; a decoy has no option, so the engine does not normally
//     begin it;
//   - the verification page receives only the questions ([Flow.PageData]),
//     never an answer or hash.
//
// A journey started anew may be asked other questions of the set, so an
// attacker who can start journeys learns which questions the user chose;
// the engine's per-account limits and the other methods a journey needs
// bound what that is worth.
//
// The default questions ([DefaultQuestions]) are message keys
// "questions.q.<name>" of the plugin's catalogs; a host may list its own,
// as keys of its catalogs or as literal text.
//
// Use it by handing it to plugin.New, with the plugin's Hasher so that
// one bound covers every argon2id of the service:
//
//	hasher, err := password.NewHasher(password.HasherConfig{})
//	q, err := questions.New(questions.Config{Store: st, Hasher: hasher})
//	p, err := plugin.New(plugin.Config{Flows: []flows.Flow{email, totp, q}, Hasher: hasher, ...})
//
// The engine renders the verification page "questions" (its .Page.Data is
// the []Asked of [Flow.PageData]) and the enrolment page "enrol-questions"
// (its .Page.Data is an [EnrolData]).
package questions
