package seal_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/sspr-go/sspr/flows/internal/seal"
)

func newKey() []byte {
	k := make([]byte, seal.KeySize)
	_, _ = rand.Read(k)
	return k
}

func mustNew(t *testing.T, keys ...[]byte) *seal.Sealer {
	t.Helper()
	s, err := seal.New(keys)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoundTrip(t *testing.T) {
	s := mustNew(t, newKey())
	for _, pt := range [][]byte{nil, {}, []byte("x"), bytes.Repeat([]byte("secret"), 100)} {
		sealed := s.Seal(pt, []byte("u1\x00f1"))
		if len(sealed) != len(pt)+seal.Overhead {
			t.Fatalf("sealed length %d for %d bytes", len(sealed), len(pt))
		}
		// A random ciphertext may contain a short plaintext by chance
		// (one byte: about 13% of the time); only a long one tells.
		if len(pt) >= 16 && bytes.Contains(sealed, pt) {
			t.Fatal("plaintext visible in sealed value")
		}
		got, err := s.Open(sealed, []byte("u1\x00f1"))
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("open: %q %v", got, err)
		}
		if !s.Current(sealed) {
			t.Fatal("value sealed with the first key is not current")
		}
	}
	a, b := s.Seal([]byte("same"), nil), s.Seal([]byte("same"), nil)
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same plaintext are equal (nonce reused)")
	}
}

func TestRotation(t *testing.T) {
	oldKey, newKey := newKey(), newKey()
	before := mustNew(t, oldKey)
	sealedOld := before.Seal([]byte("totp secret"), []byte("ad"))

	after := mustNew(t, newKey, oldKey)
	got, err := after.Open(sealedOld, []byte("ad"))
	if err != nil || string(got) != "totp secret" {
		t.Fatalf("old value with old key second: %q %v", got, err)
	}
	if after.Current(sealedOld) {
		t.Fatal("old value reported current")
	}
	sealedNew := after.Seal([]byte("fresh"), []byte("ad"))
	if !after.Current(sealedNew) {
		t.Fatal("new value not sealed with the first key")
	}
	// The new value is sealed with the new key: the old key alone cannot
	// open it, the new key alone can.
	if _, err := before.Open(sealedNew, []byte("ad")); !errors.Is(err, seal.ErrUnknownKey) {
		t.Fatalf("old-only sealer opened a new value: %v", err)
	}
	if got, err := mustNew(t, newKey).Open(sealedNew, []byte("ad")); err != nil || string(got) != "fresh" {
		t.Fatalf("new-only sealer: %q %v", got, err)
	}
	// Once the old key is dropped, old values no longer open.
	if _, err := mustNew(t, newKey).Open(sealedOld, []byte("ad")); !errors.Is(err, seal.ErrUnknownKey) {
		t.Fatalf("retired key: %v", err)
	}
}

func TestTamperAndWrongAD(t *testing.T) {
	s := mustNew(t, newKey())
	sealed := s.Seal([]byte("secret"), []byte("u1\x00f1"))
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x01
		if _, err := s.Open(bad, []byte("u1\x00f1")); err == nil {
			t.Fatalf("flipped bit in byte %d opened", i)
		}
	}
	tests := []struct {
		name   string
		sealed []byte
		ad     string
		want   error
	}{
		{"wrong AD", sealed, "u2\x00f1", seal.ErrInvalid},
		{"no AD", sealed, "", seal.ErrInvalid},
		{"truncated", sealed[:len(sealed)-1], "u1\x00f1", seal.ErrInvalid},
		{"too short", sealed[:seal.Overhead-1], "u1\x00f1", seal.ErrInvalid},
		{"empty", nil, "u1\x00f1", seal.ErrInvalid},
		{"extended", append(bytes.Clone(sealed), 0), "u1\x00f1", seal.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Open(tt.sealed, []byte(tt.ad)); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	k := newKey()
	tests := []struct {
		name string
		keys [][]byte
		want string
	}{
		{"none", nil, "seal: no keys"},
		{"short", [][]byte{make([]byte, 16)}, "seal: key 0: must be 32 bytes, got 16"},
		{"several", [][]byte{k, make([]byte, 33), k},
			"seal: key 1: must be 32 bytes, got 33\nseal: key 2: same as key 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := seal.New(tt.keys)
			if err == nil || err.Error() != tt.want || s != nil {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), string(k)) {
				t.Fatal("error leaks a key")
			}
		})
	}
}
