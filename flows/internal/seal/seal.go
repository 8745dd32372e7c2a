package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
)

// KeySize is the size of every key: AES-256.
const KeySize = 32

// Sizes of the parts of a sealed value.
const (
	// FingerprintSize is the size of the key fingerprint that starts a
	// sealed value.
	FingerprintSize = 8
	// Overhead is how many bytes a sealed value has beyond its plaintext:
	// fingerprint, nonce and GCM tag.
	Overhead = FingerprintSize + nonceSize + tagSize

	nonceSize = 12
	tagSize   = 16
)

// Errors of [Sealer.Open], tested with [errors.Is].
var (
	// ErrUnknownKey means the value was sealed with a key that is not in
	// the list (retired too early, or never configured here).
	ErrUnknownKey = errors.New("seal: sealed with an unknown key")
	// ErrInvalid means the value is malformed, was tampered with, or was
	// sealed for other additional data.
	ErrInvalid = errors.New("seal: invalid sealed value")
)

// Sealer encrypts and authenticates small values with AES-256-GCM under a
// list of keys. It is safe for concurrent use.
type Sealer struct {
	keys []key
}

type key struct {
	fp   [FingerprintSize]byte
	aead cipher.AEAD
}

// New returns a Sealer for keys, which must hold at least one key of
// exactly [KeySize] bytes, all different. The first key seals; every key
// opens. Its error names every bad key by its index.
func New(keys [][]byte) (*Sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("seal: no keys")
	}
	s := &Sealer{keys: make([]key, 0, len(keys))}
	var errs []error
	for i, k := range keys {
		if len(k) != KeySize {
			errs = append(errs, fmt.Errorf("seal: key %d: must be %d bytes, got %d", i, KeySize, len(k)))
			continue
		}
		fp := fingerprint(k)
		dup := false
		for j, prev := range s.keys {
			if subtle.ConstantTimeCompare(prev.fp[:], fp[:]) == 1 {
				errs = append(errs, fmt.Errorf("seal: key %d: same as key %d", i, j))
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			errs = append(errs, fmt.Errorf("seal: key %d: %w", i, err))
			continue
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			errs = append(errs, fmt.Errorf("seal: key %d: %w", i, err))
			continue
		}
		s.keys = append(s.keys, key{fp: fp, aead: aead})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// fingerprint identifies a key without revealing it: the first bytes of a
// domain-separated SHA-256 of the key.
func fingerprint(k []byte) [FingerprintSize]byte {
	h := sha256.New()
	h.Write([]byte("sspr seal key fingerprint\x00"))
	h.Write(k)
	var fp [FingerprintSize]byte
	copy(fp[:], h.Sum(nil))
	return fp
}

// Seal encrypts plaintext under the first key and binds it to
// additionalData, which is authenticated but not stored: [Sealer.Open]
// needs the same additionalData. Pass the value's context (for example the
// user and record it belongs to) so that a sealed value copied to another
// record does not open. The result is the key's fingerprint, a random
// 96-bit nonce and the ciphertext with its tag; it is [Overhead] bytes
// longer than plaintext.
//
// Nonces are random, so one key should seal fewer than 2³² values; rotate
// keys long before that.
func (s *Sealer) Seal(plaintext, additionalData []byte) []byte {
	k := s.keys[0]
	out := make([]byte, FingerprintSize+nonceSize, Overhead+len(plaintext))
	copy(out, k.fp[:])
	_, _ = rand.Read(out[FingerprintSize:]) // never fails since Go 1.24
	return k.aead.Seal(out, out[FingerprintSize:], plaintext, additionalData)
}

// Open decrypts a value made by [Sealer.Seal] with the key its fingerprint
// names, which may be any key of the list. It returns [ErrUnknownKey] when
// no key has that fingerprint and [ErrInvalid] when the value is malformed,
// was tampered with, or additionalData differs from the one it was sealed
// with.
func (s *Sealer) Open(sealed, additionalData []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, ErrInvalid
	}
	for _, k := range s.keys {
		if subtle.ConstantTimeCompare(k.fp[:], sealed[:FingerprintSize]) != 1 {
			continue
		}
		nonce := sealed[FingerprintSize : FingerprintSize+nonceSize]
		out, err := k.aead.Open(nil, nonce, sealed[FingerprintSize+nonceSize:], additionalData)
		if err != nil {
			return nil, ErrInvalid
		}
		return out, nil
	}
	return nil, ErrUnknownKey
}

// Current reports whether sealed was sealed with the first key, so that a
// caller rotating keys can tell which values still need sealing again.
func (s *Sealer) Current(sealed []byte) bool {
	return len(sealed) >= FingerprintSize && subtle.ConstantTimeCompare(s.keys[0].fp[:], sealed[:FingerprintSize]) == 1
}
