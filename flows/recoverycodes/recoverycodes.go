package recoverycodes

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/internal/challenge"
	"github.com/sspr-go/sspr/flows/internal/factors"
	"github.com/sspr-go/sspr/plugin/password"
	"github.com/sspr-go/sspr/plugin/store"
)

// ID is the flow's ID, also the Flow of its factors in the store.
const ID = "recovery-codes"

// Defaults and bounds.
const (
	// DefaultCount is the default of [Config.Count].
	DefaultCount = 10
	// Name is the name of every recovery-code factor, and the hint of the
	// flow's option.
	Name = "Recovery code"
	// CodeBits is the entropy of a code: 16 characters of a 32-letter
	// alphabet.
	CodeBits = 80

	codeChars = CodeBits / 5
	// alphabet is Crockford's base32 in lower case: digits and letters
	// without i, l, o and u, so no two characters look alike.
	alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	// macPurpose separates the keyed hashes of codes stored before sets
	// were hashed with argon2id (Secret = MAC(userID, code)) from other
	// MACs. Such codes are still accepted, under every configured key.
	macPurpose = "recovery code"
	// setPurpose separates the keyed hashes of argon2id-hashed codes
	// (Secret = MAC(userID, KDF, salt, argon2id(code, salt))) from other
	// MACs.
	setPurpose = "recovery code argon2id"
	// saltLength is the length of a set's random salt.
	saltLength = 16
	// keyLength is the length of a code's argon2id key.
	keyLength = 32
	// maxKDFLength bounds the KDF string read back from a factor.
	maxKDFLength = 100
)

// Config configures the recovery-codes flow.
type Config struct {
	// Store keeps the codes' hashes; [Flow.Options] and [Flow.Remaining]
	// read it. Required.
	Store store.FactorStore
	// Count is how many codes [Flow.Generate] makes. Default: 10; between
	// 5 and 20.
	Count int
	// Hasher computes the codes' argon2id keys and bounds how many are
	// computed at once. Give it the plugin's Config.Hasher so that one
	// bound covers every hash of the service. Default: a
	// [password.NewHasher] with its defaults (as many at once as there
	// are CPUs).
	Hasher flows.KeyDeriver
}

// Flow is the recovery-codes flow: single-use codes the user printed or
// saved when enrolling MFA. It is safe for concurrent use.
type Flow struct {
	cfg Config
	// kdf names the argon2id costs of new sets: the password package's
	// defaults, in the form [flows.KeyDeriver.DeriveKey] takes.
	kdf string
}

var (
	_ flows.Flow     = (*Flow)(nil)
	_ flows.Prompter = (*Flow)(nil)
	_ flows.Preparer = (*Flow)(nil)
)

// New validates cfg and returns the recovery-codes flow. Its error names
// every field that is wrong.
func New(cfg Config) (*Flow, error) {
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, errors.New("recoverycodes: config: field 'Store': required"))
	}
	if cfg.Count == 0 {
		cfg.Count = DefaultCount
	} else if cfg.Count < 5 || cfg.Count > 20 {
		errs = append(errs, errors.New("recoverycodes: config: field 'Count': must be between 5 and 20"))
	}
	if cfg.Hasher == nil {
		h, err := password.NewHasher(password.HasherConfig{})
		if err != nil {
			errs = append(errs, fmt.Errorf("recoverycodes: config: field 'Hasher': %w", err))
		}
		cfg.Hasher = h
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	kdf := fmt.Sprintf("argon2id$v=%d$m=%d,t=%d,p=%d$%d", argon2.Version,
		password.DefaultMemory, password.DefaultIterations, password.DefaultParallelism, keyLength)
	return &Flow{cfg: cfg, kdf: kdf}, nil
}

// ID returns "recovery-codes".
func (f *Flow) ID() string { return ID }

// Kind returns [flows.KindBound]: the codes were issued to the account
// holder as a second factor.
func (f *Flow) Kind() flows.Kind { return flows.KindBound }

// Prompt asks for a recovery code on the generic code page.
func (f *Flow) Prompt() flows.Prompt {
	return flows.Prompt{
		Page:         "code",
		Heading:      "recovery.heading",
		Label:        "recovery.label",
		InputMode:    "text",
		Autocomplete: "off",
		MaxLength:    32,
		Choice:       "recovery.choice",
		Section:      "recovery.section",
		Add:          "recovery.add",
	}
}

// Options offers one option when s has any unused code. A decoy has none.
func (f *Flow) Options(ctx context.Context, s flows.Subject) ([]flows.Option, error) {
	n, err := f.Remaining(ctx, s.UserID)
	if err != nil || n == 0 {
		return nil, err
	}
	return []flows.Option{{Flow: ID, Ref: "codes", Hint: Name}}, nil
}

// Remaining returns how many unused codes userID has (0 for an empty
// userID).
func (f *Flow) Remaining(ctx context.Context, userID string) (int, error) {
	if userID == "" {
		return 0, nil
	}
	codes, err := f.cfg.Store.Factors(ctx, userID, ID)
	if err != nil {
		return 0, fmt.Errorf("recoverycodes: remaining: %w", err)
	}
	return len(codes), nil
}

// Generate replaces userID's codes with Count new ones and returns them,
// formatted "xxxx-xxxx-xxxx-xxxx"; show them once, they are not stored.
// Each code has 80 bits from crypto/rand. The set gets one random 16-byte
// salt; each code is stored as its own factor whose Secret is
// env.MAC("recovery code argon2id", userID, KDF, salt, argon2id(code,
// salt)) and whose Data holds the salt and the argon2id costs (KDF, the
// password package's defaults). The argon2id keys are computed first,
// through [Config.Hasher]; then, when st is a [store.Store], deleting the
// old codes and creating the new ones happen in one [store.Store.Atomic]
// (so the hashing never holds a write transaction); otherwise (a
// [store.Tx]) they happen in the caller's transaction, which then is open
// while the codes are hashed. Call it only after a fresh step-up of
// userID.
//
// Rotating the plugin's keys keeps the codes usable as long as the key
// that made them stays configured (see [flows.Env.MACs]).
func (f *Flow) Generate(ctx context.Context, st store.FactorStore, env flows.Env, userID string) ([]string, error) {
	if userID == "" {
		return nil, errors.New("recoverycodes: generate: empty user ID")
	}
	codes := make([]string, 0, f.cfg.Count)
	seen := make(map[string]bool, f.cfg.Count)
	for len(codes) < f.cfg.Count {
		c := newCode()
		if !seen[c] {
			seen[c] = true
			codes = append(codes, c)
		}
	}
	if err := f.replace(ctx, st, env, userID, codes); err != nil {
		return nil, fmt.Errorf("recoverycodes: generate: %w", err)
	}
	return codes, nil
}

// replace hashes codes as a new set with a fresh salt and replaces
// userID's codes with them, as [Flow.Generate] describes.
func (f *Flow) replace(ctx context.Context, st store.FactorStore, env flows.Env, userID string, codes []string) error {
	set := setData{KDF: f.kdf, Salt: challenge.RandomBytes(saltLength)}
	data, err := json.Marshal(set)
	if err != nil {
		return err
	}
	keys, err := f.deriveAll(ctx, set, codes)
	if err != nil {
		return err
	}
	now := env.Now()
	fs := make([]store.Factor, len(keys))
	for i, k := range keys {
		fs[i] = store.Factor{
			ID:        challenge.RandomID(),
			UserID:    userID,
			Flow:      ID,
			Name:      Name,
			Secret:    env.MAC(setPurpose, setParts(userID, set, k)...),
			Data:      data,
			CreatedAt: now,
		}
	}
	return factors.Replace(ctx, st, userID, ID, fs...)
}

// deriveAll computes the argon2id keys of codes with the set's salt, as
// many at once as the Hasher allows.
func (f *Flow) deriveAll(ctx context.Context, set setData, codes []string) ([][]byte, error) {
	keys := make([][]byte, len(codes))
	errs := make([]error, len(codes))
	var wg sync.WaitGroup
	for i, c := range codes {
		wg.Go(func() { keys[i], errs[i] = f.cfg.Hasher.DeriveKey(ctx, normalized(c), set.Salt, set.KDF) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return keys, nil
}

// Begin gives the journey a challenge that counts wrong codes: at most
// [MaxAttempts] within [ChallengeTTL]. It sends nothing. A live challenge
// is kept, so beginning again (or r.Resend) never resets the count. For a
// decoy it does the same.
func (f *Flow) Begin(ctx context.Context, r flows.BeginRequest) error {
	_, err := challenges().Begin(ctx, r.Tx, r.JourneyID, r.Env.Now(), nil)
	return err
}

// setData is the Data of every factor of a set of argon2id-hashed codes:
// the set's salt and the argon2id costs, never a code. Codes stored
// before (Data empty) were keyed hashes of the code alone.
type setData struct {
	// KDF is the argon2id costs and key length, in the form
	// [flows.KeyDeriver.DeriveKey] takes.
	KDF string `json:"kdf"`
	// Salt is the set's random salt.
	Salt []byte `json:"salt"`
}

// setParts are the parts of the keyed hash stored for a code of set
// whose argon2id key is key. They bind the user, the costs and the salt,
// so a key computed against another set never matches.
func setParts(userID string, set setData, key []byte) [][]byte {
	return [][]byte{[]byte(userID), []byte(set.KDF), set.Salt, key}
}

// prepared is what [Flow.Prepare] hands to [Flow.Verify]: the argon2id key
// of one response against the set it read. It holds no code in clear.
type prepared struct {
	journeyID, userID string
	// code is the SHA-256 of the normalized code the key is of.
	code [sha256.Size]byte
	// set is the set the key was computed against; key is nil when the
	// challenge was not live, so nothing was hashed.
	set setData
	key []byte
}

// String hides the key.
func (p *prepared) String() string { return "recoverycodes: prepared response" }

// Prepare computes, outside the engine's write transaction, the one
// argon2id key a response needs: that of the normalized code in the form
// field "code" with the salt and costs of userID's newest set, as
// r.Store reads it. A decoy, a user without codes and a user whose codes
// predate argon2id (keyed hashes alone) hash against a fresh random salt
// with the same costs instead, so every response costs the same. When
// the journey's challenge is not live it hashes nothing; a malformed code
// returns nil (Verify refuses it). It changes nothing in the store.
func (f *Flow) Prepare(ctx context.Context, r flows.PrepareRequest) (any, error) {
	code, ok := NormalizeCode(r.Form.Get("code"))
	if !ok {
		return nil, nil
	}
	p := &prepared{journeyID: r.JourneyID, userID: r.Subject.UserID, code: sha256.Sum256([]byte(code))}
	_, live, err := challenge.Pending(ctx, r.Store, r.JourneyID, ID, r.Env.Now())
	if err != nil {
		return nil, fmt.Errorf("recoverycodes: prepare: %w", err)
	}
	if !live {
		return p, nil
	}
	if p.set, p.key, err = f.derive(ctx, r.Store, r.Subject.UserID, code); err != nil {
		return nil, fmt.Errorf("recoverycodes: prepare: %w", err)
	}
	return p, nil
}

// derive returns the argon2id key of the normalized code against
// userID's newest argon2id set in st, or against a fresh random salt
// with the default costs when there is none: always exactly one hash.
func (f *Flow) derive(ctx context.Context, st flows.StoreReader, userID, code string) (setData, []byte, error) {
	fs, err := st.Factors(ctx, userID, ID)
	if err != nil {
		return setData{}, nil, err
	}
	set := setData{KDF: f.kdf, Salt: challenge.RandomBytes(saltLength)}
	for i := len(fs) - 1; i >= 0; i-- {
		if len(fs[i].Data) == 0 {
			continue // a code stored before argon2id: no salt
		}
		var d setData
		if err := json.Unmarshal(fs[i].Data, &d); err != nil || len(d.Salt) != saltLength || d.KDF == "" || len(d.KDF) > maxKDFLength {
			return setData{}, nil, fmt.Errorf("factor %s: malformed set data", fs[i].ID)
		}
		set = d
		break
	}
	key, err := f.cfg.Hasher.DeriveKey(ctx, code, set.Salt, set.KDF)
	if err != nil {
		return setData{}, nil, err
	}
	return set, key, nil
}

// Verify checks the code in the form field "code" (case, spaces and dashes
// ignored) and uses it up: the store deletes the matching code atomically,
// so a code works once, and of concurrent requests with one code exactly
// one succeeds. A wrong code is counted on the journey's challenge and
// returns a [*flows.VerifyError] with the attempts left; a malformed one
// returns [flows.ErrMalformed] and is not counted. A decoy's code is always
// wrong.
//
// With r.Prepared from [Flow.Prepare] for this journey and user, Verify
// computes no argon2id: it looks the prepared key up, keyed under every
// configured key ([flows.Env.MACs]) and bound to the salt and costs it
// was computed with, so a set replaced since Prepare makes the response
// wrong. Without it (or with a value prepared for another journey or
// user) Verify reads the set in r.Tx and computes the key itself, the
// same one hash. Either way it also accepts a code stored before sets
// were hashed with argon2id (a keyed hash of the code) under any
// configured key.
func (f *Flow) Verify(ctx context.Context, r flows.VerifyRequest) error {
	code, ok := NormalizeCode(r.Form.Get("code"))
	if !ok {
		return flows.ErrMalformed
	}
	now := r.Env.Now()
	c, err := challenges().Live(ctx, r.Tx, r.JourneyID, now)
	if err != nil {
		return err
	}
	userID := r.Subject.UserID
	var (
		set setData
		key []byte
	)
	if p, ok := r.Prepared.(*prepared); ok && p.journeyID == r.JourneyID && p.userID == userID {
		if p.code == sha256.Sum256([]byte(code)) {
			set, key = p.set, p.key
		}
	} else if set, key, err = f.derive(ctx, r.Tx, userID, code); err != nil {
		return fmt.Errorf("recoverycodes: verify: %w", err)
	}
	// The hash was computed for a decoy too, so both do the same work.
	if userID == "" {
		return challenges().CountWrong(ctx, r.Tx, c, now)
	}
	var secrets [][]byte
	if key != nil {
		secrets = r.Env.MACs(setPurpose, setParts(userID, set, key)...)
	}
	secrets = append(secrets, r.Env.MACs(macPurpose, []byte(userID), []byte(code))...)
	for _, secret := range secrets {
		_, err := r.Tx.ConsumeFactor(ctx, userID, ID, secret)
		switch {
		case err == nil:
			return challenges().Accept(ctx, r.Tx, c, now)
		case !errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("recoverycodes: verify: %w", err)
		}
	}
	return challenges().CountWrong(ctx, r.Tx, c, now)
}

// NormalizeCode lowers s, removes spaces and dashes, reads the look-alikes
// i, l and o as 1, 1 and 0, and reports whether the rest is a code: 16
// characters of the alphabet.
func NormalizeCode(s string) (string, bool) {
	if len(s) > 64 {
		return "", false
	}
	var b strings.Builder
	for _, c := range s {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		switch {
		case c == ' ' || c == '-' || c == '\t':
			continue
		case c == 'i' || c == 'l':
			c = '1'
		case c == 'o':
			c = '0'
		case c > 0x7f || !strings.ContainsRune(alphabet, c):
			return "", false
		}
		b.WriteRune(c)
	}
	if b.Len() != codeChars {
		return "", false
	}
	return b.String(), true
}

// normalized returns the normalized form of a code this package made.
func normalized(c string) string { return strings.ReplaceAll(c, "-", "") }

// newCode returns a fresh code: 80 bits from crypto/rand in 16 characters
// of the alphabet, grouped by four.
func newCode() string {
	s := base32.NewEncoding(alphabet).WithPadding(base32.NoPadding).EncodeToString(challenge.RandomBytes(CodeBits / 8))
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
}

// AuthMethod returns "otp" (RFC 8176): a recovery code is a one-time
// password.
func (f *Flow) AuthMethod() string { return "otp" }
