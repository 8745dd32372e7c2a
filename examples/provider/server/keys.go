package server

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"

	jose "github.com/go-jose/go-jose/v4"
)

const secretLength = 32

// signingKey is the RSA key that signs ID tokens. Its ID is the key's JWK
// thumbprint (RFC 7638), so it stays the same across restarts.
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

// publicKey is the public half of a signingKey, published at /keys.
type publicKey struct{ k *signingKey }

func (p publicKey) ID() string                         { return p.k.id }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return &p.k.key.PublicKey }

// loadOrCreateSigningKey reads the PKCS #8 PEM key at path, or generates a
// 2048-bit RSA key and writes it there (mode 0600) on first start.
func loadOrCreateSigningKey(path string) (*signingKey, error) {
	var key *rsa.PrivateKey
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		block, _ := pem.Decode(data)
		if block == nil || block.Type != "PRIVATE KEY" {
			return nil, fmt.Errorf("server: signing key %s: no PRIVATE KEY block", path)
		}
		parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("server: signing key %s: %w", path, err)
		}
		rk, ok := parsed.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("server: signing key %s: not an RSA key", path)
		}
		key = rk
	case errors.Is(err, fs.ErrNotExist):
		key, err = rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("server: generate signing key: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("server: encode signing key: %w", err)
		}
		if err := writeNewFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("server: read signing key: %w", err)
	}
	thumb, err := (&jose.JSONWebKey{Key: &key.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("server: signing key thumbprint: %w", err)
	}
	return &signingKey{id: base64.RawURLEncoding.EncodeToString(thumb), key: key}, nil
}

// loadOrCreateSecret reads the 32-byte secret at path, or generates one and
// writes it there (mode 0600) on first start.
func loadOrCreateSecret(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if len(data) != secretLength {
			return nil, fmt.Errorf("server: secret %s has %d bytes, want %d", path, len(data), secretLength)
		}
		return data, nil
	case errors.Is(err, fs.ErrNotExist):
		secret := make([]byte, secretLength)
		if _, err := rand.Read(secret); err != nil {
			return nil, fmt.Errorf("server: generate secret: %w", err)
		}
		if err := writeNewFile(path, secret); err != nil {
			return nil, err
		}
		return secret, nil
	default:
		return nil, fmt.Errorf("server: read secret: %w", err)
	}
}

// writeNewFile creates path with mode 0600; it fails if the file exists, so
// two processes starting at once cannot overwrite each other's key.
func writeNewFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("server: create %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("server: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("server: write %s: %w", path, err)
	}
	return nil
}

// deriveKey derives an independent 32-byte key for one purpose from a
// secret (HMAC-SHA-256 as a PRF, with the purpose as the message).
func deriveKey(secret []byte, purpose string) [32]byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("sspr-example-provider/" + purpose))
	var out [32]byte
	copy(out[:], m.Sum(nil))
	return out
}

// randomToken returns n random bytes, base64url-encoded without padding.
func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("server: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
