package password

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/alexedwards/argon2id"
	"golang.org/x/crypto/argon2"
)

// Hasher defaults and bounds. Memory is in KiB.
const (
	// DefaultMemory is the argon2id memory cost: 19 MiB, the OWASP minimum
	// for argon2id, and the lowest Memory accepted.
	DefaultMemory = 19456
	// DefaultIterations is the argon2id time cost, and the lowest
	// Iterations accepted.
	DefaultIterations = 2
	// DefaultParallelism is the argon2id degree of parallelism.
	DefaultParallelism = 1
	// DefaultMaxMemory is the default bound on the memory cost accepted
	// from a stored hash or history parameters: 256 MiB.
	DefaultMaxMemory = 256 * 1024
	// maxStoredIterations bounds the time cost accepted from a stored hash
	// (or Iterations, when that is larger).
	maxStoredIterations = 64

	saltLength   = 16
	keyLength    = 32
	minSaltLen   = 8   // RFC 9106
	maxSaltLen   = 128 // sanity
	minKeyLength = 16
	maxKeyLength = 128
)

// Errors returned, wrapped, by [Hasher.Verify] and [Hasher.DeriveKey]. They
// never contain the password.
var (
	// ErrMalformedHash means an encoded hash could not be parsed as an
	// argon2id PHC string.
	ErrMalformedHash = errors.New("password: malformed hash")
	// ErrInvalidParams means argon2id parameters could not be parsed, or
	// lie outside the bounds the Hasher accepts.
	ErrInvalidParams = errors.New("password: invalid argon2id parameters")
)

// HasherConfig configures a [Hasher]. The zero value takes every default.
type HasherConfig struct {
	// Memory is the argon2id memory cost of new hashes in KiB. Default:
	// 19456 (19 MiB); must be at least 19456.
	Memory uint32

	// Iterations is the argon2id time cost of new hashes. Default: 2; must
	// be at least 2.
	Iterations uint32

	// Parallelism is the argon2id degree of parallelism of new hashes.
	// Default: 1.
	Parallelism uint8

	// MaxConcurrent is how many hashes may be computed at once; each holds
	// about Memory KiB, so this bounds the memory hashing uses. Callers
	// beyond it wait. Default: runtime.NumCPU(); must be at least 1.
	MaxConcurrent int

	// MaxMemory is the greatest memory cost in KiB that Verify and
	// DeriveKey accept from a stored hash or history parameters, so a
	// corrupt or hostile record cannot exhaust memory. Default: 262144
	// (256 MiB), or Memory when that is larger; must be at least Memory.
	MaxMemory uint32
}

// Hasher hashes and verifies passwords with argon2id (RFC 9106), a
// per-password 16-byte random salt and the parameters stored with the hash.
// It bounds the number of hashes computed at once. Create it with
// [NewHasher]; it is safe for concurrent use.
//
// Passwords are hashed as the bytes given; the Hasher applies no Unicode
// normalisation.
type Hasher struct {
	params        argon2id.Params
	maxMemory     uint32
	maxIterations uint32
	sem           chan struct{}
}

// argonParams are argon2id costs and key length, as stored with a hash.
type argonParams struct {
	memory, iterations uint32
	parallelism        uint8
	keyLength          uint32
}

// NewHasher copies cfg, fills its defaults and validates every field. The
// error names each bad field, for example
// "password: config: field 'Memory': must be at least 19456".
func NewHasher(cfg HasherConfig) (*Hasher, error) {
	var errs []error
	switch {
	case cfg.Memory == 0:
		cfg.Memory = DefaultMemory
	case cfg.Memory < DefaultMemory:
		errs = append(errs, configError("Memory", "must be at least %d", DefaultMemory))
	}
	switch {
	case cfg.Iterations == 0:
		cfg.Iterations = DefaultIterations
	case cfg.Iterations < DefaultIterations:
		errs = append(errs, configError("Iterations", "must be at least %d", DefaultIterations))
	}
	if cfg.Parallelism == 0 {
		cfg.Parallelism = DefaultParallelism
	}
	switch {
	case cfg.MaxConcurrent == 0:
		cfg.MaxConcurrent = runtime.NumCPU()
	case cfg.MaxConcurrent < 0:
		errs = append(errs, configError("MaxConcurrent", "must be at least 1"))
	}
	switch {
	case cfg.MaxMemory == 0:
		cfg.MaxMemory = max(DefaultMaxMemory, cfg.Memory)
	case cfg.MaxMemory < cfg.Memory:
		errs = append(errs, configError("MaxMemory", "must be at least Memory (%d)", cfg.Memory))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Hasher{
		params: argon2id.Params{
			Memory:      cfg.Memory,
			Iterations:  cfg.Iterations,
			Parallelism: cfg.Parallelism,
			SaltLength:  saltLength,
			KeyLength:   keyLength,
		},
		maxMemory:     cfg.MaxMemory,
		maxIterations: max(maxStoredIterations, cfg.Iterations),
		sem:           make(chan struct{}, cfg.MaxConcurrent),
	}, nil
}

// acquire waits for a hashing slot, or returns ctx.Err() when ctx ends
// first (or has already ended).
func (h *Hasher) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hasher) release() { <-h.sem }

// Hash returns password hashed with the configured parameters and a fresh
// 16-byte salt, as a PHC string: "$argon2id$v=19$m=19456,t=2,p=1$salt$key"
// (salt and key in unpadded standard base64). It waits for a hashing slot
// and returns ctx.Err() if ctx ends first.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	encoded, err := argon2id.CreateHash(password, &h.params)
	if err != nil {
		return "", fmt.Errorf("password: hash: %w", err)
	}
	return encoded, nil
}

// Verify reports whether password matches encoded, a PHC string made by
// [Hasher.Hash] or any argon2id implementation, using the parameters and
// salt stored in it (which may differ from the Hasher's). It returns an
// error wrapping [ErrMalformedHash] when encoded cannot be parsed and
// [ErrInvalidParams] when its costs exceed MaxMemory or 64 iterations. It
// waits for a hashing slot and returns ctx.Err() if ctx ends first.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (bool, error) {
	p, salt, _, err := argon2id.DecodeHash(encoded)
	if err != nil {
		return false, fmt.Errorf("password: verify: %w: %w", ErrMalformedHash, err)
	}
	if err := h.checkParams(argonParams{p.Memory, p.Iterations, p.Parallelism, p.KeyLength}, len(salt)); err != nil {
		return false, fmt.Errorf("password: verify: %w", err)
	}
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	ok, err := argon2id.ComparePasswordAndHash(password, encoded)
	if err != nil {
		return false, fmt.Errorf("password: verify: %w: %w", ErrMalformedHash, err)
	}
	return ok, nil
}

// HistoryParams returns the Hasher's parameters in the form DeriveKey
// takes, to be stored beside each password-history key, for example
// "argon2id$v=19$m=19456,t=2,p=1$32" (the last field is the key length in
// bytes).
func (h *Hasher) HistoryParams() string {
	return formatParams(argonParams{h.params.Memory, h.params.Iterations, h.params.Parallelism, keyLength})
}

// DeriveKey returns the raw argon2id key of password with salt and params,
// a string from [Hasher.HistoryParams] (possibly of an earlier
// configuration): comparing it with a stored key tells whether a password
// was used before. It returns an error wrapping [ErrInvalidParams] when
// params cannot be parsed or exceed the Hasher's bounds, and when salt is
// shorter than 8 bytes. It waits for a hashing slot and returns ctx.Err() if
// ctx ends first.
func (h *Hasher) DeriveKey(ctx context.Context, password string, salt []byte, params string) ([]byte, error) {
	p, err := parseParams(params)
	if err != nil {
		return nil, fmt.Errorf("password: derive key: %w", err)
	}
	if err := h.checkParams(p, len(salt)); err != nil {
		return nil, fmt.Errorf("password: derive key: %w", err)
	}
	if err := h.acquire(ctx); err != nil {
		return nil, err
	}
	defer h.release()
	return argon2.IDKey([]byte(password), salt, p.iterations, p.memory, p.parallelism, p.keyLength), nil
}

func formatParams(p argonParams) string {
	return fmt.Sprintf("argon2id$v=%d$m=%d,t=%d,p=%d$%d", argon2.Version, p.memory, p.iterations, p.parallelism, p.keyLength)
}

// parseParams parses the output of formatParams, strictly: anything that
// does not format back to the same string is refused.
func parseParams(s string) (argonParams, error) {
	var p argonParams
	fields := strings.Split(s, "$")
	if len(fields) != 4 || fields[0] != "argon2id" {
		return p, fmt.Errorf("%w: want \"argon2id$v=19$m=M,t=T,p=P$KEYLEN\"", ErrInvalidParams)
	}
	var version int
	if _, err := fmt.Sscanf(fields[1], "v=%d", &version); err != nil || version != argon2.Version {
		return p, fmt.Errorf("%w: unsupported version", ErrInvalidParams)
	}
	if _, err := fmt.Sscanf(fields[2], "m=%d,t=%d,p=%d", &p.memory, &p.iterations, &p.parallelism); err != nil {
		return p, fmt.Errorf("%w: costs: %w", ErrInvalidParams, err)
	}
	if _, err := fmt.Sscanf(fields[3], "%d", &p.keyLength); err != nil {
		return p, fmt.Errorf("%w: key length: %w", ErrInvalidParams, err)
	}
	if formatParams(p) != s {
		return p, fmt.Errorf("%w: not in canonical form", ErrInvalidParams)
	}
	return p, nil
}

// checkParams refuses costs that would panic in argon2 or that exceed the
// Hasher's bounds.
func (h *Hasher) checkParams(p argonParams, saltLen int) error {
	switch {
	case p.memory < 8*uint32(max(p.parallelism, 1)):
		return fmt.Errorf("%w: memory below 8 KiB per lane", ErrInvalidParams)
	case p.memory > h.maxMemory:
		return fmt.Errorf("%w: memory %d KiB exceeds MaxMemory %d KiB", ErrInvalidParams, p.memory, h.maxMemory)
	case p.iterations < 1:
		return fmt.Errorf("%w: iterations must be at least 1", ErrInvalidParams)
	case p.iterations > h.maxIterations:
		return fmt.Errorf("%w: iterations %d exceed %d", ErrInvalidParams, p.iterations, h.maxIterations)
	case p.parallelism < 1:
		return fmt.Errorf("%w: parallelism must be at least 1", ErrInvalidParams)
	case p.keyLength < minKeyLength || p.keyLength > maxKeyLength:
		return fmt.Errorf("%w: key length must be between %d and %d bytes", ErrInvalidParams, minKeyLength, maxKeyLength)
	case saltLen < minSaltLen || saltLen > maxSaltLen:
		return fmt.Errorf("%w: salt length must be between %d and %d bytes", ErrInvalidParams, minSaltLen, maxSaltLen)
	}
	return nil
}
