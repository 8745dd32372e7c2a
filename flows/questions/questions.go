package questions

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/internal/challenge"
	"github.com/sspr-go/sspr/plugin/password"
	"github.com/sspr-go/sspr/plugin/store"
)

// ID is the flow's ID, also the Flow of its factors in the store.
const ID = "questions"

// Defaults of [Config].
const (
	// DefaultEnrol is the default of [Config.Enrol].
	DefaultEnrol = 3
	// DefaultAsk is the default of [Config.Ask].
	DefaultAsk = 2
	// DefaultMinAnswerLength is the default of [Config.MinAnswerLength].
	DefaultMinAnswerLength = 3
	// DefaultMaxAttempts is the default of [Config.MaxAttempts].
	DefaultMaxAttempts = 3
	// DefaultChallengeTTL is the default of [Config.ChallengeTTL].
	DefaultChallengeTTL = 10 * time.Minute

	// maxQuestionBytes bounds a configured question.
	maxQuestionBytes = 256
	// pickPurpose separates the MAC that picks a journey's questions from
	// other MACs.
	pickPurpose = "questions pick"
	// setRef is the Ref of the flow's one option.
	setRef = "set"
	// setName is the Name of every stored set: a message key using {n}.
	setName = "questions.enrolled_name"
)

// Config configures the security-questions flow. The zero value of every
// field but Store takes its default.
type Config struct {
	// Store keeps the users' answer sets; Options, Enrolled and the
	// enrolment read and write it. Required.
	Store store.Store
	// Questions are the questions offered at enrolment: message keys of
	// the plugin's catalogs, or literal text (shown as it is). Default:
	// [DefaultQuestions]. No duplicates, none empty or longer than 256
	// bytes, and at least Enrol of them. Removing a question later does
	// not invalidate the sets that use it.
	Questions []string
	// Enrol is how many questions a user answers. Default: 3; between 2
	// and len(Questions).
	Enrol int
	// Ask is how many of the user's questions a journey asks; all of them
	// must be answered right. Default: 2; between 1 and Enrol.
	Ask int
	// MinAnswerLength is the least number of characters an answer has
	// after [Normalize]. Default: 3; between 1 and 64.
	MinAnswerLength int
	// MaxAttempts is the number of wrong submissions a journey's challenge
	// accepts. Default: 3; between 1 and 10.
	MaxAttempts int
	// ChallengeTTL is how long a journey's challenge accepts answers; an
	// expired one is replaced by one that asks the same questions and keeps
	// the count of wrong submissions. Default: 10 minutes; between 1 minute
	// and 1 hour.
	ChallengeTTL time.Duration
	// Argon2 are the argon2id costs of new answers' hashes. Default:
	// 19 MiB, 2 passes, 1 thread (OWASP's minimum for argon2id).
	Argon2 Argon2
	// InsecureWeakArgon2 accepts Argon2 costs below OWASP's minimum (down
	// to what argon2id itself allows). Only for tests. Default: false.
	InsecureWeakArgon2 bool
	// Hasher computes the argon2id hashes (at enrolment and verification)
	// and bounds how many are computed at once, so that many parallel
	// attempts cannot exhaust memory. Give it the plugin's Config.Hasher
	// so that one bound covers every hash of the service; its MaxMemory
	// must allow Argon2.Memory. Default: a [password.NewHasher] with its
	// defaults (as many at once as there are CPUs).
	Hasher flows.KeyDeriver
	// Now is the clock that dates new sets. Default: time.Now. Journeys
	// use the engine's clock ([flows.Env.Now]).
	Now func() time.Time
}

// Flow is the security-questions flow. It is safe for concurrent use.
type Flow struct {
	cfg     Config
	offered map[string]bool
	texts   map[string][][]string
}

var (
	_ flows.Flow       = (*Flow)(nil)
	_ flows.Prompter   = (*Flow)(nil)
	_ flows.PageDataer = (*Flow)(nil)
	_ flows.Enroller   = (*Flow)(nil)
	_ flows.Preparer   = (*Flow)(nil)
)

// New copies cfg, fills its defaults, validates every field and returns
// the flow. Its error names every field that is wrong, for example
// "questions: config: field 'Ask': must be between 1 and Enrol (3)".
func New(cfg Config) (*Flow, error) {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("questions: config: field '%s': "+format, append([]any{field}, args...)...))
	}
	if cfg.Store == nil {
		bad("Store", "required")
	}
	if len(cfg.Questions) == 0 {
		cfg.Questions = DefaultQuestions()
	} else {
		cfg.Questions = slices.Clone(cfg.Questions)
	}
	offered := make(map[string]bool, len(cfg.Questions))
	for _, q := range cfg.Questions {
		switch {
		case strings.TrimSpace(q) == "" || len(q) > maxQuestionBytes:
			bad("Questions", "%q: must be 1 to %d bytes and not blank", q, maxQuestionBytes)
		case offered[q]:
			bad("Questions", "%q: listed twice", q)
		}
		offered[q] = true
	}
	if cfg.Enrol == 0 {
		cfg.Enrol = DefaultEnrol
	}
	if cfg.Enrol < 2 || cfg.Enrol > len(cfg.Questions) {
		bad("Enrol", "must be between 2 and the number of Questions (%d)", len(cfg.Questions))
	}
	if cfg.Ask == 0 {
		cfg.Ask = DefaultAsk
	}
	if cfg.Ask < 1 || cfg.Ask > cfg.Enrol {
		bad("Ask", "must be between 1 and Enrol (%d)", cfg.Enrol)
	}
	if cfg.MinAnswerLength == 0 {
		cfg.MinAnswerLength = DefaultMinAnswerLength
	}
	if cfg.MinAnswerLength < 1 || cfg.MinAnswerLength > 64 {
		bad("MinAnswerLength", "must be between 1 and 64")
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.MaxAttempts < 1 || cfg.MaxAttempts > 10 {
		bad("MaxAttempts", "must be between 1 and 10")
	}
	if cfg.ChallengeTTL == 0 {
		cfg.ChallengeTTL = DefaultChallengeTTL
	}
	if cfg.ChallengeTTL < time.Minute || cfg.ChallengeTTL > time.Hour {
		bad("ChallengeTTL", "must be between 1m0s and 1h0m0s")
	}
	a := &cfg.Argon2
	if a.Memory == 0 {
		a.Memory = DefaultArgon2Memory
	}
	if a.Time == 0 {
		a.Time = DefaultArgon2Time
	}
	if a.Threads == 0 {
		a.Threads = DefaultArgon2Threads
	}
	switch {
	case a.Threads > MaxArgon2Threads:
		bad("Argon2.Threads", "must be between 1 and %d", MaxArgon2Threads)
	case a.Memory > MaxArgon2Memory:
		bad("Argon2.Memory", "must be at most %d (KiB)", MaxArgon2Memory)
	case a.Memory < DefaultArgon2Memory && !cfg.InsecureWeakArgon2:
		bad("Argon2.Memory", "must be at least %d (KiB)", DefaultArgon2Memory)
	case a.Memory < 8*uint32(a.Threads):
		bad("Argon2.Memory", "must be at least 8 KiB per thread")
	}
	switch {
	case a.Time > MaxArgon2Time:
		bad("Argon2.Time", "must be at most %d", MaxArgon2Time)
	case a.Time < DefaultArgon2Time && !cfg.InsecureWeakArgon2:
		bad("Argon2.Time", "must be at least %d", DefaultArgon2Time)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Hasher == nil {
		h, err := password.NewHasher(password.HasherConfig{})
		if err != nil {
			bad("Hasher", "%w", err)
		}
		cfg.Hasher = h
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	texts, err := questionTexts(cfg.Questions)
	if err != nil {
		return nil, err
	}
	return &Flow{cfg: cfg, offered: offered, texts: texts}, nil
}

// ID returns "questions".
func (f *Flow) ID() string { return ID }

// Kind returns [flows.KindKnowledge]: the engine never lets it count
// alone and never offers it to administrators.
func (f *Flow) Kind() flows.Kind { return flows.KindKnowledge }

// Prompt asks for the answers on the "questions" page.
func (f *Flow) Prompt() flows.Prompt {
	return flows.Prompt{
		Page:         "questions",
		Heading:      "questions.heading",
		Intro:        "questions.intro",
		InputMode:    "text",
		Autocomplete: "off",
		MaxLength:    MaxAnswerBytes,
		Choice:       "questions.choice",
		Section:      "questions.section",
		Add:          "questions.add",
	}
}

// Options offers one option when s has a set of answers. A decoy has none.
func (f *Flow) Options(ctx context.Context, s flows.Subject) ([]flows.Option, error) {
	if s.UserID == "" {
		return nil, nil
	}
	fs, err := f.cfg.Store.Factors(ctx, s.UserID, ID)
	if err != nil {
		return nil, fmt.Errorf("questions: options: %w", err)
	}
	if len(fs) == 0 {
		return nil, nil
	}
	return []flows.Option{{Flow: ID, Ref: setRef, Hint: "questions.choice"}}, nil
}

// challenges counts the attempts of this flow's challenges.
func (f *Flow) challenges() challenge.Counter {
	return challenge.Counter{Flow: ID, TTL: f.cfg.ChallengeTTL, MaxAttempts: f.cfg.MaxAttempts}
}

// challengeData is what a challenge's Data holds: the questions asked.
type challengeData struct {
	Questions []string `json:"q"`
}

// Begin gives the journey a challenge that names the questions to ask and
// counts wrong submissions. It sends nothing. A live challenge (unused and
// unexpired, even one without attempts left) is kept as it is, so choosing
// the method again never resets its count nor changes its questions. A
// journey is always asked the same questions: those of its previous
// challenge when the user still has them, else Ask of the user's
// questions picked by MAC("questions pick", journeyID), so neither
// restarting the method nor waiting for expiry shops for easier ones. An
// expired challenge is replaced by one that keeps its count. A decoy, or
// a user without a set, does the same store work and is asked questions
// of the configured list.
func (f *Flow) Begin(ctx context.Context, r flows.BeginRequest) error {
	now := r.Env.Now()
	prev, err := r.Tx.LatestChallenge(ctx, r.JourneyID, ID)
	switch {
	case err == nil && prev.UsedAt.IsZero() && now.Before(prev.ExpiresAt):
		return nil
	case err == nil, errors.Is(err, store.ErrNotFound):
	default:
		return fmt.Errorf("questions: begin: %w", err)
	}
	_, set, err := f.userSet(ctx, r.Tx, r.Subject.UserID)
	if err != nil {
		return fmt.Errorf("questions: begin: %w", err)
	}
	candidates := f.cfg.Questions
	if len(set) > 0 {
		candidates = make([]string, len(set))
		for i, a := range set {
			candidates[i] = a.Question
		}
	}
	var asked []string
	if prevAsked, err := askedIn(prev); err == nil && len(prevAsked) > 0 && allIn(prevAsked, candidates) {
		asked = prevAsked
	} else {
		asked = f.pick(r.Env, r.JourneyID, candidates)
	}
	data, err := json.Marshal(challengeData{Questions: asked})
	if err != nil {
		return fmt.Errorf("questions: begin: %w", err)
	}
	_, err = f.challenges().Begin(ctx, r.Tx, r.JourneyID, now, data)
	return err
}

// pick returns Ask of candidates (all of them when there are fewer), in
// their order, chosen by a permutation seeded with the journey's MAC: the
// same journey always gets the same questions, and nobody without the
// plugin's key can predict them.
func (f *Flow) pick(env flows.Env, journeyID string, candidates []string) []string {
	seed := sha256.Sum256(env.MAC(pickPurpose, []byte(journeyID))) // 32 bytes whatever the MAC's length
	perm := rand.New(rand.NewChaCha8(seed)).Perm(len(candidates))
	idx := perm[:min(f.cfg.Ask, len(perm))]
	slices.Sort(idx)
	out := make([]string, len(idx))
	for i, j := range idx {
		out[i] = candidates[j]
	}
	return out
}

// askedIn returns the questions a challenge asks.
func askedIn(c store.Challenge) ([]string, error) {
	var d challengeData
	if err := json.Unmarshal(c.Data, &d); err != nil {
		return nil, fmt.Errorf("questions: challenge data: %w", err)
	}
	return d.Questions, nil
}

func allIn(xs, set []string) bool {
	for _, x := range xs {
		if !slices.Contains(set, x) {
			return false
		}
	}
	return true
}

// userSet returns userID's set of answers and its factor. A user without
// one (and a decoy, whose empty ID matches no factor after the same
// query) gets none. Should a race have left two sets, the newest counts.
func (f *Flow) userSet(ctx context.Context, st flows.StoreReader, userID string) (store.Factor, []storedAnswer, error) {
	fs, err := st.Factors(ctx, userID, ID)
	if err != nil || len(fs) == 0 || userID == "" {
		return store.Factor{}, nil, err
	}
	fa := fs[len(fs)-1]
	set, err := decodeSet(fa.Data)
	if err != nil {
		return store.Factor{}, nil, fmt.Errorf("factor %s: %w", fa.ID, err)
	}
	return fa, set, nil
}

// Asked is one question of the verification page, as [Flow.PageData]
// returns it.
type Asked struct {
	// Field is the name of the answer's form field: "answer0", "answer1"…
	Field string
	// Question is the question: a message key of the catalogs or literal
	// text.
	Question string
}

// answerField names the form field of the i-th asked answer.
func answerField(i int) string { return "answer" + strconv.Itoa(i) }

// PageData returns the questions the journey's challenge asks, in order,
// as a []Asked; never an answer or a hash. It returns an error matching
// [flows.ErrNoChallenge] when the journey has no challenge of this flow.
func (f *Flow) PageData(ctx context.Context, st store.Tx, journeyID string) (any, error) {
	c, err := st.LatestChallenge(ctx, journeyID, ID)
	if err != nil {
		return nil, challenge.MapStoreError(fmt.Errorf("questions: page data: %w", err))
	}
	asked, err := askedIn(c)
	if err != nil {
		return nil, err
	}
	out := make([]Asked, len(asked))
	for i, q := range asked {
		out[i] = Asked{Field: answerField(i), Question: q}
	}
	return out, nil
}

// prepared is what [Flow.Prepare] hands to [Flow.Verify]: the outcome
// of each asked answer against the stored hash it was computed with. It
// holds no answer in clear.
type prepared struct {
	journeyID, userID string
	answers           []checked
}

// String hides the content.
func (p *prepared) String() string { return "questions: prepared response" }

// checked is the outcome of one asked answer.
type checked struct {
	// question is the question asked; answer the SHA-256 of the
	// normalized answer given.
	question string
	answer   [sha256.Size]byte
	// against is the stored hash (or decoy) the answer was hashed with,
	// and found whether it was the user's; ok reports a match.
	against   storedAnswer
	found, ok bool
}

// Prepare computes, outside the engine's write transaction, the argon2id
// hash of every answer the journey's challenge asks, against the user's
// set as r.Store reads it (a decoy's, or one that is no longer in the
// set, against a hash nothing matches). It does the same work as Verify
// would, for a decoy too, and changes nothing in the store. When the
// challenge is not live, or every answer is blank, it hashes nothing.
func (f *Flow) Prepare(ctx context.Context, r flows.PrepareRequest) (any, error) {
	p := &prepared{journeyID: r.JourneyID, userID: r.Subject.UserID}
	c, live, err := challenge.Pending(ctx, r.Store, r.JourneyID, ID, r.Env.Now())
	if err != nil {
		return nil, fmt.Errorf("questions: prepare: %w", err)
	}
	if !live {
		return p, nil
	}
	asked, err := askedIn(c)
	if err != nil {
		return p, nil // Verify reports it
	}
	answers, blank := formAnswers(r.Form, len(asked))
	if blank {
		return p, nil
	}
	_, set, err := f.userSet(ctx, r.Store, r.Subject.UserID)
	if err != nil {
		return nil, fmt.Errorf("questions: prepare: %w", err)
	}
	if p.answers, err = f.check(ctx, asked, answers, set); err != nil {
		return nil, fmt.Errorf("questions: prepare: %w", err)
	}
	return p, nil
}

// formAnswers returns the n answers of the form, and whether all are
// blank.
func formAnswers(form url.Values, n int) ([]string, bool) {
	answers := make([]string, n)
	blank := true
	for i := range answers {
		answers[i] = form.Get(answerField(i))
		blank = blank && strings.TrimSpace(answers[i]) == ""
	}
	return answers, blank
}

// check computes the argon2id hash of every asked answer, also after a
// wrong or empty one, and compares each in constant time with the user's
// stored hash of its question, or with a decoy hash nothing matches when
// the set has none (a decoy, or a set replaced since the challenge
// began): always one hash per asked question.
func (f *Flow) check(ctx context.Context, asked, answers []string, set []storedAnswer) ([]checked, error) {
	out := make([]checked, len(asked))
	for i, q := range asked {
		stored, found := findAnswer(set, q)
		if !found {
			stored = f.cfg.Argon2.decoy()
		}
		norm := Normalize(answers[i])
		got, err := stored.derive(ctx, f.cfg.Hasher, norm)
		if err != nil {
			return nil, err
		}
		out[i] = checked{question: q, answer: sha256.Sum256([]byte(norm)), against: stored, found: found,
			ok: subtle.ConstantTimeCompare(got, stored.Hash) == 1}
	}
	return out, nil
}

// findAnswer returns the set's entry for question q.
func findAnswer(set []storedAnswer, q string) (storedAnswer, bool) {
	for _, a := range set {
		if a.Question == q {
			return a, true
		}
	}
	return storedAnswer{}, false
}

// right reports whether every asked answer was checked right against the
// set as it is now: each outcome counts only for the same question, the
// same answer and the exact stored hash (salt, hash, costs) it was
// computed against. It looks at every answer, whatever the first says.
func right(results []checked, asked, answers []string, set []storedAnswer) bool {
	ok := len(set) > 0 && len(results) == len(asked)
	for i, q := range asked {
		if i >= len(results) {
			break
		}
		r := results[i]
		stored, found := findAnswer(set, q)
		trusted := r.question == q && r.answer == sha256.Sum256([]byte(Normalize(answers[i]))) &&
			r.found && found && r.against.same(stored)
		ok = ok && trusted && r.ok
	}
	return ok
}

// Verify checks the answers in the form fields "answer0", "answer1"… to
// the questions of the journey's challenge. It computes the argon2id hash
// of every asked answer, also after a wrong or empty one, and compares
// each in constant time, so the time taken tells nothing about which
// answer was wrong. When all are right it consumes the challenge (single
// use) and records the set's use; otherwise the submission is counted as
// one wrong attempt and it returns a [*flows.VerifyError] with the
// attempts left (wrapping [flows.ErrExhausted] after the last). A missing
// or over-long answer is wrong; a form with every answer blank is
// [flows.ErrMalformed] and is not counted. A decoy's answers are always
// wrong, after the same work.
//
// With r.Prepared from [Flow.Prepare] for this journey and user, Verify
// computes no hash: it re-reads the challenge and the set in r.Tx and
// trusts each prepared outcome only for the same question, answer and
// stored hash (salt, hash and costs); an answer whose stored hash changed
// since (the set was replaced) is wrong, and counted. Without it (or with
// a value prepared for another journey or user), Verify computes the
// hashes itself, inside r.Tx.
func (f *Flow) Verify(ctx context.Context, r flows.VerifyRequest) error {
	now := r.Env.Now()
	c, err := f.challenges().Live(ctx, r.Tx, r.JourneyID, now)
	if err != nil {
		return err
	}
	asked, err := askedIn(c)
	if err != nil {
		return err
	}
	answers, blank := formAnswers(r.Form, len(asked))
	if blank {
		return flows.ErrMalformed
	}
	fa, set, err := f.userSet(ctx, r.Tx, r.Subject.UserID)
	if err != nil {
		return fmt.Errorf("questions: verify: %w", err)
	}
	var results []checked
	if p, ok := r.Prepared.(*prepared); ok && p.journeyID == r.JourneyID && p.userID == r.Subject.UserID {
		results = p.answers
	} else if results, err = f.check(ctx, asked, answers, set); err != nil {
		return fmt.Errorf("questions: verify: %w", err)
	}
	if !right(results, asked, answers, set) {
		return f.challenges().CountWrong(ctx, r.Tx, c, now)
	}
	if err := f.challenges().Accept(ctx, r.Tx, c, now); err != nil {
		return err
	}
	fa.LastUsedAt = now
	if err := r.Tx.UpdateFactor(ctx, fa); err != nil {
		return fmt.Errorf("questions: verify: %w", err)
	}
	return nil
}
