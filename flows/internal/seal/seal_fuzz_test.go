package seal_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/sspr-go/sspr/flows/internal/seal"
)

// fuzzKey returns a fixed test key (b, b+1, …): the fuzz targets need the
// same keys in every fuzzing process, so that a value sealed once opens in
// all of them.
func fuzzKey(b byte) []byte {
	k := make([]byte, seal.KeySize)
	for i := range k {
		k[i] = b + byte(i)
	}
	return k
}

// genuine is a value Seal produced under one of the fuzz keys, with its
// additional data and plaintext. They were made once with fixed nonces by
// the same construction (fingerprint | nonce | AES-256-GCM), so they are
// the same in every process; Seal's own output (random nonces) cannot be,
// because the fuzzing engine runs a target in several processes.
type genuine struct {
	name, sealed, ad, plaintext string
}

var genuineValues = []genuine{
	{"current key", "2ce9bcb6fc55233501060f141d222b30393e474c41b11177a48effc5e9cef273aaad7fc017ab97cc6fa07106487d99caf3f2768a466a14f391ddc563b83135d1", "u1\x00f1", "JBSWY3DPEHPK3PXP totp secret"},
	{"empty plaintext and AD", "2ce9bcb6fc55233502050c171e2128333a3d444fe5bd1cf128aa479d13ed205e1492d4b6", "", ""},
	{"old key", "aa535b7f7768c89d03040d161f2029323b3c454e11cb2dbda796e51fe63d160ab0c8e633c6aeb94bc507372bc8fa5985", "u2\x00phone", "+15551234567"},
}

// retiredValue was sealed under a key the sealer no longer has.
const retiredValue = "dc4547a3a538b91804030a1118272e353c3b424974101268440c4abcf7ec763c824d1ed66c645891"

func mustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// FuzzOpen checks the tamper property of Open: of all byte strings and
// additional data, only the values Seal produced, with their own
// additional data, open, and they open to their plaintext. Every other
// input fails with ErrUnknownKey (a fingerprint no key has, on a value
// long enough to carry one) or ErrInvalid, and Open leaves its inputs
// alone.
func FuzzOpen(f *testing.F) {
	s, err := seal.New([][]byte{fuzzKey(0x10), fuzzKey(0x40)})
	if err != nil {
		f.Fatal(err)
	}
	type pair struct{ sealed, ad string }
	want := map[pair]string{}
	known := map[string]bool{} // fingerprints of the sealer's keys
	for _, g := range genuineValues {
		b := mustHex(f, g.sealed)
		want[pair{string(b), g.ad}] = g.plaintext
		known[string(b[:seal.FingerprintSize])] = true
		// Sanity: the fixed values really are Seal's format under our keys.
		if pt, err := s.Open(b, []byte(g.ad)); err != nil || string(pt) != g.plaintext {
			f.Fatalf("%s: fixed value does not open: %q %v", g.name, pt, err)
		}
		f.Add(b, []byte(g.ad))
		f.Add(b, []byte(g.ad+"x"))
		flipped := bytes.Clone(b)
		flipped[len(flipped)-1] ^= 0x80
		f.Add(flipped, []byte(g.ad))
		f.Add(b[:len(b)-1], []byte(g.ad))
		f.Add(append(bytes.Clone(b), 0), []byte(g.ad))
	}
	currentFP := mustHex(f, genuineValues[0].sealed)[:seal.FingerprintSize]
	f.Add(mustHex(f, retiredValue), []byte("u1\x00f1"))
	f.Add([]byte{}, []byte{})
	f.Add(make([]byte, seal.Overhead), []byte{})

	f.Fuzz(func(t *testing.T, sealed, ad []byte) {
		if len(sealed)+len(ad) > 64<<10 {
			return // sealed values are small; keep each input cheap
		}
		in, inAD := bytes.Clone(sealed), bytes.Clone(ad)
		pt, err := s.Open(sealed, ad)
		if !bytes.Equal(in, sealed) || !bytes.Equal(inAD, ad) {
			t.Fatal("Open modified its input")
		}
		if plain, ok := want[pair{string(sealed), string(ad)}]; ok {
			if err != nil || string(pt) != plain {
				t.Fatalf("genuine value: Open = %q, %v; want %q", pt, err, plain)
			}
			return
		}
		if err == nil {
			t.Fatalf("Open accepted a value Seal never produced: sealed=%x ad=%q plaintext=%q", sealed, ad, pt)
		}
		if pt != nil {
			t.Fatalf("Open returned plaintext %q with error %v", pt, err)
		}
		switch {
		case len(sealed) < seal.Overhead:
			if !errors.Is(err, seal.ErrInvalid) {
				t.Fatalf("short value (%d bytes): got %v, want ErrInvalid", len(sealed), err)
			}
		case !known[string(sealed[:seal.FingerprintSize])]:
			if !errors.Is(err, seal.ErrUnknownKey) {
				t.Fatalf("unknown fingerprint: got %v, want ErrUnknownKey", err)
			}
		default:
			if !errors.Is(err, seal.ErrInvalid) {
				t.Fatalf("known fingerprint: got %v, want ErrInvalid", err)
			}
		}
		current := len(sealed) >= seal.FingerprintSize && bytes.Equal(sealed[:seal.FingerprintSize], currentFP)
		if s.Current(sealed) != current {
			t.Fatalf("Current = %v, want %v", s.Current(sealed), current)
		}
	})
}

// FuzzSealRoundTrip seals arbitrary plaintext under arbitrary additional
// data and checks that it opens to the same plaintext, is Overhead bytes
// longer, is current, and that flipping any one bit, truncating, extending
// or changing the additional data makes Open fail.
func FuzzSealRoundTrip(f *testing.F) {
	s, err := seal.New([][]byte{fuzzKey(0x10), fuzzKey(0x40)})
	if err != nil {
		f.Fatal(err)
	}
	oldOnly, err := seal.New([][]byte{fuzzKey(0x40)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("JBSWY3DPEHPK3PXP"), []byte("u1\x00f1"), uint16(0), uint8(0))
	f.Add([]byte{}, []byte{}, uint16(7), uint8(7))
	f.Add(bytes.Repeat([]byte{0xff}, 100), []byte("u2\x00phone"), uint16(40), uint8(3))

	f.Fuzz(func(t *testing.T, plaintext, ad []byte, pos uint16, bit uint8) {
		if len(plaintext)+len(ad) > 64<<10 {
			return // sealed values are small; keep each input cheap
		}
		sealed := s.Seal(plaintext, ad)
		if len(sealed) != len(plaintext)+seal.Overhead {
			t.Fatalf("sealed length %d for %d bytes of plaintext", len(sealed), len(plaintext))
		}
		if !s.Current(sealed) {
			t.Fatal("a fresh value is not current")
		}
		pt, err := s.Open(sealed, ad)
		if err != nil || !bytes.Equal(pt, plaintext) {
			t.Fatalf("round trip: %q, %v", pt, err)
		}
		if _, err := oldOnly.Open(sealed, ad); !errors.Is(err, seal.ErrUnknownKey) {
			t.Fatalf("a sealer without the current key: got %v, want ErrUnknownKey", err)
		}

		i := int(pos) % len(sealed)
		flipped := bytes.Clone(sealed)
		flipped[i] ^= 1 << (bit % 8)
		if pt, err := s.Open(flipped, ad); err == nil {
			t.Fatalf("bit %d of byte %d flipped, Open still gave %q", bit%8, i, pt)
		} else if !errors.Is(err, seal.ErrInvalid) && !errors.Is(err, seal.ErrUnknownKey) {
			t.Fatalf("flipped value: unexpected error %v", err)
		}
		if _, err := s.Open(sealed[:len(sealed)-1], ad); err == nil {
			t.Fatal("truncated value opened")
		}
		if _, err := s.Open(append(bytes.Clone(sealed), byte(pos)), ad); err == nil {
			t.Fatal("extended value opened")
		}
		if _, err := s.Open(sealed, append(bytes.Clone(ad), byte(bit))); err == nil {
			t.Fatal("value opened with other additional data")
		}
	})
}
