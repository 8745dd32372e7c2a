package password

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/alexedwards/argon2id"
)

const testPassword = "hunter2-but-longer-Secret!"

func newTestHasher(tb testing.TB, cfg HasherConfig) *Hasher {
	tb.Helper()
	h, err := NewHasher(cfg)
	if err != nil {
		tb.Fatalf("NewHasher: %v", err)
	}
	return h
}

func TestNewHasherDefaults(t *testing.T) {
	h := newTestHasher(t, HasherConfig{})
	want := argon2id.Params{Memory: 19456, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}
	if h.params != want {
		t.Errorf("params = %+v, want %+v", h.params, want)
	}
	if got := cap(h.sem); got != runtime.NumCPU() {
		t.Errorf("MaxConcurrent = %d, want runtime.NumCPU() = %d", got, runtime.NumCPU())
	}
	if h.maxMemory != 262144 {
		t.Errorf("MaxMemory = %d, want 262144", h.maxMemory)
	}
	if got, want := h.HistoryParams(), "argon2id$v=19$m=19456,t=2,p=1$32"; got != want {
		t.Errorf("HistoryParams() = %q, want %q", got, want)
	}

	h = newTestHasher(t, HasherConfig{Memory: 512 * 1024, Iterations: 3, Parallelism: 4, MaxConcurrent: 3})
	if got, want := h.HistoryParams(), "argon2id$v=19$m=524288,t=3,p=4$32"; got != want {
		t.Errorf("HistoryParams() = %q, want %q", got, want)
	}
	if cap(h.sem) != 3 || h.maxMemory != 512*1024 {
		t.Errorf("MaxConcurrent, MaxMemory = %d, %d; want 3, %d", cap(h.sem), h.maxMemory, 512*1024)
	}
}

func TestNewHasherErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  HasherConfig
		want string
	}{
		{"Memory below 19 MiB", HasherConfig{Memory: 19455},
			"password: config: field 'Memory': must be at least 19456"},
		{"Iterations below 2", HasherConfig{Iterations: 1},
			"password: config: field 'Iterations': must be at least 2"},
		{"MaxConcurrent negative", HasherConfig{MaxConcurrent: -1},
			"password: config: field 'MaxConcurrent': must be at least 1"},
		{"MaxMemory below default Memory", HasherConfig{MaxMemory: 1024},
			"password: config: field 'MaxMemory': must be at least Memory (19456)"},
		{"MaxMemory below Memory", HasherConfig{Memory: 300000, MaxMemory: 200000},
			"password: config: field 'MaxMemory': must be at least Memory (300000)"},
		{"every problem at once", HasherConfig{Memory: 1024, Iterations: 1, MaxConcurrent: -4},
			"password: config: field 'Memory': must be at least 19456\n" +
				"password: config: field 'Iterations': must be at least 2\n" +
				"password: config: field 'MaxConcurrent': must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewHasher(tt.cfg)
			if err == nil {
				t.Fatalf("NewHasher(%+v) = %v, nil; want error %q", tt.cfg, h, tt.want)
			}
			if h != nil {
				t.Error("NewHasher returned a hasher with the error")
			}
			if err.Error() != tt.want {
				t.Errorf("error = %q\nwant    %q", err, tt.want)
			}
		})
	}
}

var phc = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashVerify(t *testing.T) {
	ctx := t.Context()
	h := newTestHasher(t, HasherConfig{MaxConcurrent: 2})

	encoded, err := h.Hash(ctx, testPassword)
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	if !phc.MatchString(encoded) {
		t.Errorf("Hash = %q, want a PHC string matching %s", encoded, phc)
	}
	again, err := h.Hash(ctx, testPassword)
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	if again == encoded {
		t.Error("two hashes of one password are equal; want a fresh salt each time")
	}

	tests := []struct {
		name     string
		password string
		want     bool
	}{
		{"right password", testPassword, true},
		{"wrong password", "hunter2-but-longer-Secret?", false},
		{"different case", strings.ToUpper(testPassword), false},
		{"prefix", testPassword[:len(testPassword)-1], false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := h.Verify(ctx, tt.password, encoded)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if ok != tt.want {
				t.Errorf("Verify(%q) = %v, want %v", tt.password, ok, tt.want)
			}
		})
	}
	if n := len(h.sem); n != 0 {
		t.Errorf("%d hashing slots still held", n)
	}
}

func TestVerifyHonoursStoredParams(t *testing.T) {
	ctx := t.Context()
	h := newTestHasher(t, HasherConfig{})

	// A hash made elsewhere with weaker, older parameters.
	old, err := argon2id.CreateHash(testPassword, &argon2id.Params{Memory: 8192, Iterations: 1, Parallelism: 2, SaltLength: 8, KeyLength: 16})
	if err != nil {
		t.Fatal(err)
	}
	// A hash made by a stronger Hasher.
	strong := newTestHasher(t, HasherConfig{Memory: 32768, Iterations: 3, Parallelism: 2})
	newer, err := strong.Hash(ctx, testPassword)
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	if !strings.HasPrefix(newer, "$argon2id$v=19$m=32768,t=3,p=2$") {
		t.Errorf("Hash = %q, want the configured parameters", newer)
	}
	for _, encoded := range []string{old, newer} {
		ok, err := h.Verify(ctx, testPassword, encoded)
		if err != nil || !ok {
			t.Errorf("Verify(%s) = %v, %v; want true, nil", encoded[:strings.LastIndexByte(encoded, '$')], ok, err)
		}
		ok, err = h.Verify(ctx, "not the password", encoded)
		if err != nil || ok {
			t.Errorf("Verify(wrong password) = %v, %v; want false, nil", ok, err)
		}
	}
}

func TestVerifyErrors(t *testing.T) {
	h := newTestHasher(t, HasherConfig{})
	salt := base64.RawStdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 16))
	key := base64.RawStdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
	withParams := func(p string) string { return "$argon2id$v=19$" + p + "$" + salt + "$" + key }
	tests := []struct {
		name    string
		encoded string
		want    error
	}{
		{"empty", "", ErrMalformedHash},
		{"plain text", testPassword, ErrMalformedHash},
		{"argon2i", "$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + key, ErrMalformedHash},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", ErrMalformedHash},
		{"old version", "$argon2id$v=16$m=19456,t=2,p=1$" + salt + "$" + key, ErrMalformedHash},
		{"bad salt", "$argon2id$v=19$m=19456,t=2,p=1$!!!$" + key, ErrMalformedHash},
		{"bad key", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$***", ErrMalformedHash},
		{"parallelism overflow", withParams("m=19456,t=2,p=256"), ErrMalformedHash},
		{"zero iterations (would panic in argon2)", withParams("m=19456,t=0,p=1"), ErrInvalidParams},
		{"zero parallelism (would panic in argon2)", withParams("m=19456,t=2,p=0"), ErrInvalidParams},
		{"memory over MaxMemory", withParams("m=4294967295,t=2,p=1"), ErrInvalidParams},
		{"iterations over 64", withParams("m=19456,t=1000000,p=1"), ErrInvalidParams},
		{"memory below 8 KiB per lane", withParams("m=7,t=2,p=1"), ErrInvalidParams},
		{"short key", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$AAAA", ErrInvalidParams},
		{"short salt", "$argon2id$v=19$m=19456,t=2,p=1$AAAA$" + key, ErrInvalidParams},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := h.Verify(t.Context(), testPassword, tt.encoded)
			if ok || !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, %v; want false and an error wrapping %v", ok, err, tt.want)
			}
			if strings.Contains(err.Error(), testPassword) {
				t.Errorf("error %q contains the password", err)
			}
		})
	}
}

func TestDeriveKey(t *testing.T) {
	ctx := t.Context()
	h := newTestHasher(t, HasherConfig{})
	params := h.HistoryParams()
	salt1 := bytes.Repeat([]byte{0x11}, 16)
	salt2 := bytes.Repeat([]byte{0x22}, 16)

	k1, err := h.DeriveKey(ctx, testPassword, salt1, params)
	if err != nil {
		t.Fatalf("DeriveKey: %v", err)
	}
	if len(k1) != 32 {
		t.Errorf("len(key) = %d, want 32", len(k1))
	}
	k1again, err := h.DeriveKey(ctx, testPassword, salt1, params)
	if err != nil {
		t.Fatalf("DeriveKey: %v", err)
	}
	if !bytes.Equal(k1, k1again) {
		t.Error("DeriveKey differs for the same password, salt and params")
	}
	k2, err := h.DeriveKey(ctx, testPassword, salt2, params)
	if err != nil {
		t.Fatalf("DeriveKey: %v", err)
	}
	if bytes.Equal(k1, k2) {
		t.Error("DeriveKey is equal for different salts")
	}
	kOther, err := h.DeriveKey(ctx, "another password", salt1, params)
	if err != nil {
		t.Fatalf("DeriveKey: %v", err)
	}
	if bytes.Equal(k1, kOther) {
		t.Error("DeriveKey is equal for different passwords")
	}

	// Params of another (older) configuration are honoured.
	kOld, err := h.DeriveKey(ctx, testPassword, salt1, "argon2id$v=19$m=8192,t=1,p=2$16")
	if err != nil {
		t.Fatalf("DeriveKey(old params): %v", err)
	}
	if len(kOld) != 16 || bytes.Equal(kOld, k1[:16]) {
		t.Errorf("DeriveKey(old params) = %x, want 16 bytes unlike %x", kOld, k1[:16])
	}
}

func TestDeriveKeyAgreesWithHash(t *testing.T) {
	ctx := t.Context()
	h := newTestHasher(t, HasherConfig{})
	encoded, err := h.Hash(ctx, testPassword)
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	_, salt, key, err := argon2id.DecodeHash(encoded)
	if err != nil {
		t.Fatal(err)
	}
	got, err := h.DeriveKey(ctx, testPassword, salt, h.HistoryParams())
	if err != nil {
		t.Fatalf("DeriveKey: %v", err)
	}
	if !bytes.Equal(got, key) {
		t.Errorf("DeriveKey = %x, want the key of Hash %x", got, key)
	}
}

func TestDeriveKeyErrors(t *testing.T) {
	h := newTestHasher(t, HasherConfig{})
	salt := bytes.Repeat([]byte{0x11}, 16)
	tests := []struct {
		name   string
		params string
		salt   []byte
	}{
		{"empty", "", salt},
		{"no key length", "argon2id$v=19$m=19456,t=2,p=1", salt},
		{"PHC prefix", "$argon2id$v=19$m=19456,t=2,p=1$32", salt},
		{"argon2i", "argon2i$v=19$m=19456,t=2,p=1$32", salt},
		{"old version", "argon2id$v=16$m=19456,t=2,p=1$32", salt},
		{"trailing junk", "argon2id$v=19$m=19456,t=2,p=1$32x", salt},
		{"trailing junk in costs", "argon2id$v=19$m=19456,t=2,p=1x$32", salt},
		{"leading zero", "argon2id$v=19$m=019456,t=2,p=1$32", salt},
		{"reordered costs", "argon2id$v=19$t=2,m=19456,p=1$32", salt},
		{"negative memory", "argon2id$v=19$m=-1,t=2,p=1$32", salt},
		{"zero iterations", "argon2id$v=19$m=19456,t=0,p=1$32", salt},
		{"zero parallelism", "argon2id$v=19$m=19456,t=2,p=0$32", salt},
		{"parallelism overflow", "argon2id$v=19$m=19456,t=2,p=256$32", salt},
		{"memory over MaxMemory", "argon2id$v=19$m=4194304,t=2,p=1$32", salt},
		{"iterations over 64", "argon2id$v=19$m=19456,t=65,p=1$32", salt},
		{"short key", "argon2id$v=19$m=19456,t=2,p=1$8", salt},
		{"long key", "argon2id$v=19$m=19456,t=2,p=1$4096", salt},
		{"short salt", "argon2id$v=19$m=19456,t=2,p=1$32", []byte("1234567")},
		{"no salt", "argon2id$v=19$m=19456,t=2,p=1$32", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := h.DeriveKey(t.Context(), testPassword, tt.salt, tt.params)
			if key != nil || !errors.Is(err, ErrInvalidParams) {
				t.Fatalf("DeriveKey(%q) = %x, %v; want nil and an error wrapping ErrInvalidParams", tt.params, key, err)
			}
			if strings.Contains(err.Error(), testPassword) {
				t.Errorf("error %q contains the password", err)
			}
		})
	}
}

// TestHasherConcurrencyCap holds the only hashing slot and checks that each
// method waits for it, and gives up with ctx.Err() when its context ends.
func TestHasherConcurrencyCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newTestHasher(t, HasherConfig{MaxConcurrent: 1})
		salt := bytes.Repeat([]byte{0x11}, 16)
		encoded := "$argon2id$v=19$m=19456,t=2,p=1$" +
			base64.RawStdEncoding.EncodeToString(salt) + "$" +
			base64.RawStdEncoding.EncodeToString(make([]byte, 32))
		calls := map[string]func(context.Context) error{
			"Hash": func(ctx context.Context) error {
				_, err := h.Hash(ctx, testPassword)
				return err
			},
			"Verify": func(ctx context.Context) error {
				_, err := h.Verify(ctx, testPassword, encoded)
				return err
			},
			"DeriveKey": func(ctx context.Context) error {
				_, err := h.DeriveKey(ctx, testPassword, salt, h.HistoryParams())
				return err
			},
		}

		h.sem <- struct{}{} // occupy the only slot
		for name, call := range calls {
			// A waiting call returns ctx.Err() when its context is cancelled.
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- call(ctx) }()
			synctest.Wait()
			select {
			case err := <-done:
				t.Fatalf("%s returned %v while the only slot was held", name, err)
			default:
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled context = %v, want context.Canceled", name, err)
			}

			// An already cancelled context fails at once.
			if err := call(ctx); !errors.Is(err, context.Canceled) {
				t.Errorf("%s with an already cancelled context = %v, want context.Canceled", name, err)
			}
		}

		// A waiting call proceeds once the slot is released.
		done := make(chan error, 1)
		go func() { done <- calls["Hash"](t.Context()) }()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Hash returned %v while the only slot was held", err)
		default:
		}
		h.release()
		if err := <-done; err != nil {
			t.Errorf("Hash after release: %v", err)
		}
		if n := len(h.sem); n != 0 {
			t.Errorf("%d hashing slots still held", n)
		}
	})
}

func BenchmarkHash(b *testing.B) {
	h := newTestHasher(b, HasherConfig{})
	for b.Loop() {
		if _, err := h.Hash(b.Context(), testPassword); err != nil {
			b.Fatal(err)
		}
	}
}
