package password

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/alexedwards/argon2id"
	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"
)

// Bounds of the fuzz targets' Hasher. NewHasher refuses a MaxMemory below
// 19 MiB, which would make every accepted input cost an argon2id run of
// 19 MiB; the targets check the bounds logic, not the memory-hardness, so
// they shrink the bounds after NewHasher (this is an internal test).
const (
	fuzzMaxMemory     = 64 // KiB
	fuzzMaxIterations = 2
)

// fuzzMaxInput bounds the inputs of the targets: the plugin reads at most
// 16 KiB of form (maxFormBytes in package plugin), and stored hashes and
// parameters are short. Without a bound the fuzzer spends its time on
// megabyte strings, for which every step is merely linear.
const fuzzMaxInput = 16 << 10

func fuzzHasher(tb testing.TB) *Hasher {
	tb.Helper()
	h, err := NewHasher(HasherConfig{MaxConcurrent: 1})
	if err != nil {
		tb.Fatal(err)
	}
	h.maxMemory, h.maxIterations = fuzzMaxMemory, fuzzMaxIterations
	return h
}

// fuzzAllocated runs fn and returns how many bytes it allocated.
func fuzzAllocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// fuzzAllocBound is generous for one argon2id run within the fuzz bounds
// plus parsing n bytes of input, and far below what an unchecked cost
// (up to 4 TiB) would take.
func fuzzAllocBound(n int) uint64 { return 4<<20 + 16*uint64(n) }

var fuzzSalt = []byte("fixed fuzz salt!")

// fuzzPHC encodes an argon2id hash of password with the fixed salt.
func fuzzPHC(password string, m, t uint32, p uint8, keyLen uint32) string {
	key := argon2.IDKey([]byte(password), fuzzSalt, t, m, p, keyLen)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", m, t, p,
		base64.RawStdEncoding.EncodeToString(fuzzSalt), base64.RawStdEncoding.EncodeToString(key))
}

// FuzzHasherVerify feeds arbitrary passwords and encoded hashes to Verify.
// It never panics; it errors with ErrMalformedHash or ErrInvalidParams for
// anything it does not accept; it accepts only hashes whose costs are
// within the Hasher's bounds (so memory stays bounded, which the target
// also measures); and for those its answer is argon2id's.
func FuzzHasherVerify(f *testing.F) {
	h := fuzzHasher(f)
	ctx := context.Background()
	ok := fuzzPHC("hunter2-but-longer", 64, 2, 1, 32)
	f.Add("hunter2-but-longer", ok)
	f.Add("wrong", ok)
	f.Add("hunter2-but-longer", fuzzPHC("hunter2-but-longer", 32, 1, 4, 16))
	f.Add("", fuzzPHC("", 8, 1, 1, 128))
	f.Add("x", strings.Replace(ok, "m=64", "m=19456", 1))
	f.Add("x", strings.Replace(ok, "m=64", "m=4294967295", 1))
	f.Add("x", strings.Replace(ok, "t=2", "t=4294967295", 1))
	f.Add("x", strings.Replace(ok, "p=1", "p=0", 1))
	f.Add("x", strings.Replace(ok, "p=1", "p=255", 1))
	f.Add("x", strings.Replace(ok, "v=19", "v=16", 1))
	f.Add("x", strings.Replace(ok, "argon2id", "argon2i", 1))
	f.Add("x", ok+"$")
	f.Add("x", ok+"=")
	f.Add("x", "$argon2id$v=19$m=64,t=1,p=1$$")
	f.Add("x", "")
	f.Add("x", "$argon2id$v=19$m=-1,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5")

	f.Fuzz(func(t *testing.T, password, encoded string) {
		if len(password)+len(encoded) > fuzzMaxInput {
			return
		}
		var match bool
		var err error
		if n := fuzzAllocated(func() { match, err = h.Verify(ctx, password, encoded) }); n > fuzzAllocBound(len(password)+len(encoded)) {
			t.Fatalf("Verify allocated %d bytes for %q", n, encoded)
		}
		if err != nil {
			if match || (!errors.Is(err, ErrMalformedHash) && !errors.Is(err, ErrInvalidParams)) {
				t.Fatalf("Verify(%q) = %v, %v; want ErrMalformedHash or ErrInvalidParams", encoded, match, err)
			}
			if password != "" && len(password) >= 4 && strings.Contains(err.Error(), password) {
				t.Fatalf("error %q contains the password", err)
			}
			return
		}
		p, salt, key, derr := argon2id.DecodeHash(encoded)
		if derr != nil {
			t.Fatalf("Verify accepted %q, which does not decode: %v", encoded, derr)
		}
		switch {
		case p.Memory > fuzzMaxMemory, p.Memory < 8*uint32(max(p.Parallelism, 1)), p.Iterations < 1, p.Iterations > fuzzMaxIterations,
			p.Parallelism < 1, len(key) < 16, len(key) > 128, len(salt) < 8, len(salt) > 128:
			t.Fatalf("Verify accepted %q with costs %+v, salt %d and key %d bytes, outside its bounds", encoded, *p, len(salt), len(key))
		}
		want := bytes.Equal(argon2.IDKey([]byte(password), salt, p.Iterations, p.Memory, p.Parallelism, uint32(len(key))), key)
		if match != want {
			t.Fatalf("Verify(%q, %q) = %v, argon2id says %v", password, encoded, match, want)
		}
	})
}

// fuzzCanonicalParams is the form HistoryParams writes.
var fuzzCanonicalParams = regexp.MustCompile(`^argon2id\$v=19\$m=(0|[1-9][0-9]*),t=(0|[1-9][0-9]*),p=(0|[1-9][0-9]*)\$(0|[1-9][0-9]*)$`)

// FuzzDeriveKey feeds arbitrary passwords, salts and parameter strings to
// DeriveKey. It accepts exactly the canonical parameter strings (as
// HistoryParams writes them) whose costs lie within the Hasher's bounds,
// with a salt of 8 to 128 bytes, and then returns argon2id's key; it
// refuses everything else with ErrInvalidParams, never panics, and keeps
// its memory bounded.
func FuzzDeriveKey(f *testing.F) {
	h := fuzzHasher(f)
	ctx := context.Background()
	f.Add("hunter2-but-longer", fuzzSalt, "argon2id$v=19$m=64,t=2,p=1$32")
	f.Add("", fuzzSalt, "argon2id$v=19$m=8,t=1,p=1$16")
	f.Add("x", fuzzSalt, h.HistoryParams()) // 19 MiB: over the fuzz bound
	f.Add("x", fuzzSalt, "argon2id$v=19$m=64,t=2,p=8$128")
	f.Add("x", fuzzSalt, "argon2id$v=19$m=064,t=2,p=1$32")
	f.Add("x", fuzzSalt, "argon2id$v=19$m=+64,t=2,p=1$32")
	f.Add("x", fuzzSalt, "argon2id$v=19$m=64,t=2,p=1$32 ")
	f.Add("x", fuzzSalt, "argon2id$v=19$m=64,t=2,p=256$32")
	f.Add("x", fuzzSalt, "argon2id$v=19$m=4294967296,t=2,p=1$32")
	f.Add("x", fuzzSalt, "argon2id$v=19$m=64,t=0,p=1$32")
	f.Add("x", fuzzSalt, "argon2i$v=19$m=64,t=2,p=1$32")
	f.Add("x", []byte("short"), "argon2id$v=19$m=64,t=2,p=1$32")
	f.Add("x", bytes.Repeat([]byte{1}, 129), "argon2id$v=19$m=64,t=2,p=1$32")
	f.Add("x", fuzzSalt, "")

	f.Fuzz(func(t *testing.T, password string, salt []byte, params string) {
		if len(password)+len(salt)+len(params) > fuzzMaxInput {
			return
		}
		var key []byte
		var err error
		if n := fuzzAllocated(func() { key, err = h.DeriveKey(ctx, password, salt, params) }); n > fuzzAllocBound(len(password)+len(salt)+len(params)) {
			t.Fatalf("DeriveKey allocated %d bytes for %q", n, params)
		}
		var m, it, k uint64
		var p uint64
		canonical := false
		if g := fuzzCanonicalParams.FindStringSubmatch(params); g != nil {
			var e1, e2, e3, e4 error
			m, e1 = strconv.ParseUint(g[1], 10, 32)
			it, e2 = strconv.ParseUint(g[2], 10, 32)
			p, e3 = strconv.ParseUint(g[3], 10, 8)
			k, e4 = strconv.ParseUint(g[4], 10, 32)
			canonical = errors.Join(e1, e2, e3, e4) == nil
		}
		accept := canonical && p >= 1 && m >= 8*p && m <= fuzzMaxMemory && it >= 1 && it <= fuzzMaxIterations &&
			k >= 16 && k <= 128 && len(salt) >= 8 && len(salt) <= 128
		if !accept {
			if err == nil || !errors.Is(err, ErrInvalidParams) || key != nil {
				t.Fatalf("DeriveKey(salt %d bytes, %q) = %x, %v; want ErrInvalidParams", len(salt), params, key, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("DeriveKey(salt %d bytes, %q): %v", len(salt), params, err)
		}
		if want := argon2.IDKey([]byte(password), salt, uint32(it), uint32(m), uint8(p), uint32(k)); !bytes.Equal(key, want) {
			t.Fatalf("DeriveKey(%q) = %x, argon2id says %x", params, key, want)
		}
	})
}

// fuzzPolicy is built once per process: loading the default blocklist
// takes tens of milliseconds.
var fuzzPolicy = sync.OnceValues(func() (*Policy, error) { return NewPolicy(PolicyConfig{}) })

// Policy messages, with the default lengths.
const (
	fuzzMsgCommon     = "This password is too common. Choose something less predictable."
	fuzzMsgIdentifier = "Don't use your username or email address in your password."
)

// FuzzPolicyCheck feeds arbitrary passwords and identifiers to Check. It
// never panics and is deterministic; it reports each rule at most once, in
// the order length, common, identifier, with the documented messages; the
// length rules count code points after NFC normalisation; the common rule
// agrees with Blocklist.Contains; and an ASCII password that contains a
// plain ASCII identifier of 4 letters or more is always refused for it.
func FuzzPolicyCheck(f *testing.F) {
	p, err := fuzzPolicy()
	if err != nil {
		f.Fatal(err)
	}
	f.Add("correct-horse-battery-staple-42", "alice", "alice@example.com", true)
	f.Add("P@ssw0rd2024!", "", "", true)
	f.Add("short", "", "", false)
	f.Add("Alice-in-Wonderland-1865", "alice", "Alice Liddell", false)
	f.Add(strings.Repeat("e\u0301", 8), "", "", true)
	f.Add(strings.Repeat("x", 129), "", "", true)
	f.Add("\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8", "\xff", "", true)
	f.Add("ｐａｓｓｗｏｒｄ１２３", "", "", true)
	f.Add("my-name-is-b0b-the-builder", "bob", "b0b@example.com", true)
	f.Add("!!Dragon99", "", "", true)

	f.Fuzz(func(t *testing.T, password, id1, id2 string, hasMFA bool) {
		if len(password)+len(id1)+len(id2) > fuzzMaxInput {
			return
		}
		in := Input{Password: password, Identifiers: []string{id1, id2}, HasMFA: hasMFA}
		got := p.Check(in)
		if again := p.Check(in); !reflect.DeepEqual(got, again) {
			t.Fatalf("Check is not deterministic: %v then %v", got, again)
		}
		rules := make([]string, 0, len(got))
		for _, pr := range got {
			rules = append(rules, pr.Rule)
		}
		n := utf8.RuneCountInString(norm.NFC.String(password))
		var want []Problem
		switch {
		case n < p.MinLength(hasMFA):
			want = append(want, Problem{Rule: RuleTooShort, Message: fmt.Sprintf("Use at least %d characters.", p.MinLength(hasMFA))})
		case n > p.MaxLength():
			want = append(want, Problem{Rule: RuleTooLong, Message: fmt.Sprintf("Use at most %d characters.", p.MaxLength())})
		}
		if p.Blocklist().Contains(password) {
			want = append(want, Problem{Rule: RuleCommon, Message: fuzzMsgCommon})
		}
		if len(got) > 0 && got[len(got)-1].Rule == RuleIdentifier {
			if strings.TrimSpace(id1) == "" && strings.TrimSpace(id2) == "" {
				t.Fatalf("Check(%q) refused it for an identifier, but there is none", password)
			}
			want = append(want, Problem{Rule: RuleIdentifier, Message: fuzzMsgIdentifier})
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Check(%q, %q, %q, mfa %v) = %v, want %v (%d code points)", password, id1, id2, hasMFA, got, want, n)
		}
		if fuzzIsASCII(password) {
			for _, id := range []string{id1, id2} {
				if len(id) >= 4 && fuzzIsASCIILetters(id) && strings.Contains(strings.ToLower(password), strings.ToLower(id)) && !slices.Contains(rules, RuleIdentifier) {
					t.Fatalf("Check(%q) accepted identifier %q inside the password", password, id)
				}
			}
		}
	})
}

// FuzzBlocklistContains checks Blocklist.Contains on arbitrary strings: it
// never panics and is deterministic; it ignores ASCII case; a banned word
// of plain ASCII letters stays banned with digits and symbols around it;
// any word of a list bans itself; and an empty or nil list bans nothing.
func FuzzBlocklistContains(f *testing.F) {
	p, err := fuzzPolicy()
	if err != nil {
		f.Fatal(err)
	}
	b := p.Blocklist()
	for _, s := range [][3]string{{"password", "", "123"}, {"P@ssw0rd", "!", "2024"}, {"dragon", "!!", "99"}, {"qwerty", "", ""},
		{"correct-horse-battery-staple", "", "42"}, {"ﬁrefox", "", ""}, {"ПАРОЛЬ", "", ""}, {"\xff\xfe", "", ""}, {"abc", "1", "1"}} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, pw, pre, suf string) {
		if len(pw)+len(pre)+len(suf) > fuzzMaxInput {
			return
		}
		got := b.Contains(pw)
		if got != b.Contains(pw) {
			t.Fatal("Contains is not deterministic")
		}
		if (*Blocklist)(nil).Contains(pw) || NewBlocklist(nil).Contains(pw) {
			t.Fatal("an empty list banned something")
		}
		if pw != "" && !NewBlocklist([]string{pw}).Contains(pw) {
			t.Fatalf("a list of %q does not ban it", pw)
		}
		if fuzzIsASCII(pw) {
			if swapped := fuzzSwapASCIICase(pw); b.Contains(swapped) != got {
				t.Fatalf("Contains(%q) = %v but Contains(%q) = %v", pw, got, swapped, !got)
			}
		}
		if got && len(pw) >= 4 && fuzzIsASCIILetters(pw) {
			padded := fuzzASCIINonLetters(pre) + pw + fuzzASCIINonLetters(suf)
			if !b.Contains(padded) {
				t.Fatalf("%q is banned but %q is not", pw, padded)
			}
		}
	})
}

func fuzzIsASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func fuzzIsASCIILetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

func fuzzASCIINonLetters(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < utf8.RuneSelf && !fuzzIsASCIILetters(string(c)) {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func fuzzSwapASCIICase(s string) string {
	b := []byte(s)
	for i, c := range b {
		if fuzzIsASCIILetters(string(c)) {
			b[i] = c ^ 0x20
		}
	}
	return string(b)
}
