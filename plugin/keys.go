package plugin

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// keyring holds the subkeys derived from each configured key. Index 0 is
// the current key; the others are only used to read what they wrote.
type keyring struct {
	sets []keySet
}

type keySet struct {
	cookieHash  []byte // gorilla/securecookie HMAC key
	cookieBlock []byte // gorilla/securecookie AES key
	csrf        []byte
	mac         []byte
	seal        cipher.AEAD
}

func derive(secret []byte, label string, n int) ([]byte, error) {
	return hkdf.Key(sha256.New, secret, nil, "sspr "+label, n)
}

func newKeyring(keys [][]byte) (*keyring, error) {
	kr := &keyring{}
	for i, k := range keys {
		var ks keySet
		var err error
		parts := []struct {
			label string
			n     int
			dst   *[]byte
		}{
			{"cookie hash", 64, &ks.cookieHash},
			{"cookie block", 32, &ks.cookieBlock},
			{"csrf", 32, &ks.csrf},
			{"mac", 32, &ks.mac},
		}
		for _, p := range parts {
			if *p.dst, err = derive(k, p.label, p.n); err != nil {
				return nil, fmt.Errorf("sspr: key %d: %w", i, err)
			}
		}
		sealKey, err := derive(k, "outbox seal", 32)
		if err != nil {
			return nil, fmt.Errorf("sspr: key %d: %w", i, err)
		}
		block, err := aes.NewCipher(sealKey)
		if err != nil {
			return nil, fmt.Errorf("sspr: key %d: %w", i, err)
		}
		if ks.seal, err = cipher.NewGCM(block); err != nil {
			return nil, fmt.Errorf("sspr: key %d: %w", i, err)
		}
		kr.sets = append(kr.sets, ks)
	}
	return kr, nil
}

// cookieKeys returns hash/block pairs for gorilla/sessions, current first.
func (kr *keyring) cookieKeys() [][]byte {
	var out [][]byte
	for _, ks := range kr.sets {
		out = append(out, ks.cookieHash, ks.cookieBlock)
	}
	return out
}

// mac returns HMAC-SHA-256 under the current key of purpose and parts, each
// length-prefixed so that no two different inputs collide.
func (kr *keyring) mac(purpose string, parts ...[]byte) []byte {
	return macWith(kr.sets[0].mac, purpose, parts...)
}

// macs returns what mac returns under every configured key, current
// first, for checking MACs that an older key made.
func (kr *keyring) macs(purpose string, parts ...[]byte) [][]byte {
	out := make([][]byte, len(kr.sets))
	for i, ks := range kr.sets {
		out[i] = macWith(ks.mac, purpose, parts...)
	}
	return out
}

func macWith(key []byte, purpose string, parts ...[]byte) []byte {
	h := hmac.New(sha256.New, key)
	var n [4]byte
	write := func(b []byte) {
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	write([]byte(purpose))
	for _, p := range parts {
		write(p)
	}
	return h.Sum(nil)
}

// csrfToken returns a CSRF token bound to binding (the journey or browser
// ID, or a link token). The token is masked with a fresh random pad so that
// it differs in every response (against BREACH-style compression attacks).
func (kr *keyring) csrfToken(binding string) string {
	mac := macWith(kr.sets[0].csrf, "csrf", []byte(binding))
	pad := make([]byte, len(mac))
	_, _ = rand.Read(pad)
	out := make([]byte, 2*len(mac))
	copy(out, pad)
	subtle.XORBytes(out[len(mac):], mac, pad)
	return base64.RawURLEncoding.EncodeToString(out)
}

// checkCSRF reports whether token is a valid CSRF token for binding under
// any configured key.
func (kr *keyring) checkCSRF(binding, token string) bool {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) != 2*sha256.Size || binding == "" {
		return false
	}
	got := make([]byte, sha256.Size)
	subtle.XORBytes(got, raw[sha256.Size:], raw[:sha256.Size])
	ok := 0
	for _, ks := range kr.sets {
		ok |= subtle.ConstantTimeCompare(got, macWith(ks.csrf, "csrf", []byte(binding)))
	}
	return ok == 1
}

var errUnseal = errors.New("sspr: cannot open sealed payload")

// seal encrypts plaintext with the current key, bound to ad (the purpose
// and context, which open must be given again). The output is the nonce
// followed by the ciphertext.
func (kr *keyring) seal(plaintext []byte, ad string) []byte {
	aead := kr.sets[0].seal
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	_, _ = rand.Read(nonce)
	return aead.Seal(nonce, nonce, plaintext, []byte(ad))
}

// open decrypts what seal produced, with the same ad, under any
// configured key.
func (kr *keyring) open(sealed []byte, ad string) ([]byte, error) {
	for _, ks := range kr.sets {
		n := ks.seal.NonceSize()
		if len(sealed) < n {
			break
		}
		if pt, err := ks.seal.Open(nil, sealed[:n], sealed[n:], []byte(ad)); err == nil {
			return pt, nil
		}
	}
	return nil, errUnseal
}

// randomID returns n random bytes, base64url-encoded.
// journeyID returns a new journey's ID: the Unix time in milliseconds as
// 12 hex digits, then 128 random bits (base64url). The prefix makes IDs
// sort by creation, so new journeys, and the challenges and audit events
// indexed by journey, land at the end of their B-trees, where a group
// commit writes one page for many of them; the random part keeps the ID
// unguessable (the browser only ever holds it sealed in its cookie).
func journeyID(now time.Time) string {
	return fmt.Sprintf("%012x", now.UnixMilli()) + randomID(16)
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}
