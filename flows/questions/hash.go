package questions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/crypto/argon2"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/internal/challenge"
)

// Argon2 defaults and bounds. Memory is in KiB.
const (
	// DefaultArgon2Memory is the default of [Argon2.Memory]: 19 MiB,
	// OWASP's minimum for argon2id, and the lowest accepted unless
	// [Config.InsecureWeakArgon2] is set.
	DefaultArgon2Memory = 19456
	// DefaultArgon2Time is the default of [Argon2.Time], and the lowest
	// accepted unless [Config.InsecureWeakArgon2] is set.
	DefaultArgon2Time = 2
	// DefaultArgon2Threads is the default of [Argon2.Threads].
	DefaultArgon2Threads = 1
	// MaxArgon2Memory bounds [Argon2.Memory] and the memory cost accepted
	// from a stored set: 256 MiB.
	MaxArgon2Memory = 256 * 1024
	// MaxArgon2Time bounds [Argon2.Time] and the time cost accepted from a
	// stored set.
	MaxArgon2Time = 16
	// MaxArgon2Threads bounds [Argon2.Threads].
	MaxArgon2Threads = 16

	saltLength = 16
	hashLength = 32
)

// Argon2 holds the argon2id costs (RFC 9106) of the hashes of new answers.
// They are stored with each hash, so changing them affects only answers
// set afterwards.
type Argon2 struct {
	// Memory is the memory cost in KiB. Default: 19456 (19 MiB); at most
	// 262144 (256 MiB), and at least 19456 unless
	// [Config.InsecureWeakArgon2].
	Memory uint32
	// Time is the number of passes. Default: 2; at most 16, and at least 2
	// unless [Config.InsecureWeakArgon2].
	Time uint32
	// Threads is the degree of parallelism. Default: 1; at most 16.
	Threads uint8
}

// storedAnswer is one answer of a user's set as the factor's Data keeps
// it: the question, a random salt and the argon2id hash of the normalized
// answer, with the costs it was made with. Never the answer.
type storedAnswer struct {
	Question string `json:"q"`
	Salt     []byte `json:"salt"`
	Hash     []byte `json:"hash"`
	Memory   uint32 `json:"m"`
	Time     uint32 `json:"t"`
	Threads  uint8  `json:"p"`
}

// errBadSet means a stored set cannot be used: corrupt, or with costs
// outside the bounds.
var errBadSet = errors.New("questions: stored set is malformed")

// hashAnswer returns the argon2id hash of the normalized answer under a
// fresh salt, computed by h.
func (p Argon2) hashAnswer(ctx context.Context, h flows.KeyDeriver, question, normalized string) (storedAnswer, error) {
	a := storedAnswer{
		Question: question,
		Salt:     challenge.RandomBytes(saltLength),
		Memory:   p.Memory,
		Time:     p.Time,
		Threads:  p.Threads,
	}
	var err error
	a.Hash, err = a.derive(ctx, h, normalized)
	return a, err
}

// decoy returns an entry with the configured costs that no answer
// matches (its hash is random), for the same work where there is no
// stored answer.
func (p Argon2) decoy() storedAnswer {
	return storedAnswer{
		Salt:    challenge.RandomBytes(saltLength),
		Hash:    challenge.RandomBytes(hashLength),
		Memory:  p.Memory,
		Time:    p.Time,
		Threads: p.Threads,
	}
}

// kdf names a's costs in the form [flows.KeyDeriver.DeriveKey] takes.
func (a storedAnswer) kdf() string {
	return fmt.Sprintf("argon2id$v=%d$m=%d,t=%d,p=%d$%d", argon2.Version, a.Memory, a.Time, a.Threads, hashLength)
}

// derive computes, through h, the argon2id hash of the normalized answer
// with a's salt and costs. It always does the full work.
func (a storedAnswer) derive(ctx context.Context, h flows.KeyDeriver, normalized string) ([]byte, error) {
	return h.DeriveKey(ctx, normalized, a.Salt, a.kdf())
}

// same reports whether a and b are the same stored hash: question, salt,
// hash and costs.
func (a storedAnswer) same(b storedAnswer) bool {
	return a.Question == b.Question && bytes.Equal(a.Salt, b.Salt) && bytes.Equal(a.Hash, b.Hash) &&
		a.Memory == b.Memory && a.Time == b.Time && a.Threads == b.Threads
}

// decodeSet parses a factor's Data and checks every entry, so that a
// corrupt or hostile record can neither panic argon2 nor exhaust memory.
func decodeSet(data []byte) ([]storedAnswer, error) {
	var set []storedAnswer
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadSet, err)
	}
	if len(set) == 0 {
		return nil, fmt.Errorf("%w: no answers", errBadSet)
	}
	for _, a := range set {
		switch {
		case a.Question == "":
			return nil, fmt.Errorf("%w: an answer without its question", errBadSet)
		case len(a.Salt) != saltLength || len(a.Hash) != hashLength:
			return nil, fmt.Errorf("%w: salt or hash of the wrong length", errBadSet)
		case a.Threads < 1 || a.Threads > MaxArgon2Threads, a.Time < 1 || a.Time > MaxArgon2Time,
			a.Memory < 8*uint32(a.Threads) || a.Memory > MaxArgon2Memory:
			return nil, fmt.Errorf("%w: argon2id costs out of bounds", errBadSet)
		}
	}
	return set, nil
}
