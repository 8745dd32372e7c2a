package totp_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pquerna/otp"
	pqtotp "github.com/pquerna/otp/totp"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/flowtest"
	"github.com/sspr-go/sspr/flows/totp"
	"github.com/sspr-go/sspr/plugin/store"
	"github.com/sspr-go/sspr/plugin/store/sqlite"
)

// errFuzzRollback makes Store.Atomic roll back, so that every fuzz input
// starts from the same state.
var errFuzzRollback = errors.New("fuzz: roll back")

// fuzzNow is fixed, so that the right codes are the same in every fuzzing
// process and can be seeds.
var fuzzNow = time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC)

// fuzzCodes returns the codes of secret (base32) for the steps within one
// step of now, by step.
func fuzzCodes(tb testing.TB, secret string, now time.Time) map[string]int64 {
	tb.Helper()
	out := map[string]int64{}
	cur := now.Unix() / 30
	for s := cur - 1; s <= cur+1; s++ {
		c, err := pqtotp.GenerateCodeCustom(secret, time.Unix(s*30, 0), pqtotp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			tb.Fatal(err)
		}
		out[c] = s // a later step wins when two steps share a code
	}
	return out
}

type fuzzFixture struct {
	st   store.Store
	env  *flowtest.Env
	flow *totp.Flow
}

func fuzzSetup(tb testing.TB) *fuzzFixture {
	tb.Helper()
	st, err := sqlite.Config{Path: filepath.Join(tb.TempDir(), "fuzz.db")}.Open(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	env := flowtest.NewEnv(fuzzNow)
	f, err := totp.New(totp.Config{Store: st, Keys: [][]byte{key}, Now: env.Now})
	if err != nil {
		tb.Fatal(err)
	}
	return &fuzzFixture{st: st, env: env, flow: f}
}

// FuzzNormalizeCode checks NormalizeCode against its specification (drop
// spaces and tabs; accept exactly 6 ASCII digits, input at most 24 bytes)
// and that it is idempotent.
func FuzzNormalizeCode(f *testing.F) {
	for _, s := range []string{"123456", "123 456", " 1 2 3 4 5 6 ", "\t123456", "123-456", "12345", "1234567",
		"12345a", "１２３４５６", "123456\x00", "                  123456", "१२३४५६"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := totp.NormalizeCode(s)
		var digits strings.Builder
		wantOK := len(s) <= 4*totp.Digits
		for _, r := range s {
			switch {
			case r >= '0' && r <= '9':
				digits.WriteRune(r)
			case r == ' ' || r == '\t':
			default:
				wantOK = false
			}
		}
		wantOK = wantOK && digits.Len() == totp.Digits
		if ok != wantOK {
			t.Fatalf("NormalizeCode(%q) ok = %v, want %v", s, ok, wantOK)
		}
		if !ok {
			if got != "" {
				t.Fatalf("rejected input gave %q", got)
			}
			return
		}
		if got != digits.String() {
			t.Fatalf("NormalizeCode(%q) = %q, want %q", s, got, digits.String())
		}
		if again, ok := totp.NormalizeCode(got); !ok || again != got {
			t.Fatalf("not idempotent: %q -> %q, %v", got, again, ok)
		}
		if spaced, ok := totp.NormalizeCode(got[:3] + " " + got[3:]); !ok || spaced != got {
			t.Fatalf("the app's spaced form of %q -> %q, %v", got, spaced, ok)
		}
	})
}

// FuzzVerify feeds arbitrary "code" form values to Verify for a user with
// an authenticator (bobSecret), a user without one and a decoy. Only one of
// the user's codes for the current step ±1 verifies, and it consumes its
// time step and the challenge; a malformed value is ErrMalformed and counts
// nothing; any other value is a counted *VerifyError wrapping
// ErrWrongResponse. Each input runs in a transaction that is rolled back.
func FuzzVerify(f *testing.F) {
	ctx := context.Background()
	fx := fuzzSetup(f)
	fa, err := fx.flow.AddSecret(ctx, fx.st, "u1", "", bobSecret)
	if err != nil {
		f.Fatal(err)
	}
	if err := fx.st.CreateJourney(ctx, store.Journey{ID: "j1", UserID: "u1", CreatedAt: fuzzNow, ExpiresAt: fuzzNow.Add(time.Hour)}); err != nil {
		f.Fatal(err)
	}
	err = fx.st.Atomic(ctx, func(tx store.Tx) error {
		return fx.flow.Begin(ctx, flows.BeginRequest{Tx: tx, Env: fx.env, JourneyID: "j1", Subject: flows.Subject{UserID: "u1"}})
	})
	if err != nil {
		f.Fatal(err)
	}
	right := fuzzCodes(f, bobSecret, fuzzNow)
	subjects := []flows.Subject{{UserID: "u1"}, {UserID: ""}, {UserID: "u-none"}}
	for c := range right {
		f.Add(c, uint8(0))
		f.Add(c[:3]+" "+c[3:], uint8(0))
		f.Add(c, uint8(1)) // a decoy with a right code
		f.Add(c, uint8(2))
	}
	for _, s := range []string{"000000", "12345", "1234567", "abcdef", "", "123 456\n", "１２３４５６"} {
		f.Add(s, uint8(0))
	}

	f.Fuzz(func(t *testing.T, code string, who uint8) {
		subject := subjects[int(who)%len(subjects)]
		var before, after store.Challenge
		var counter int64
		var verr error
		err := fx.st.Atomic(ctx, func(tx store.Tx) error {
			var err error
			if before, err = tx.LatestChallenge(ctx, "j1", totp.ID); err != nil {
				return err
			}
			verr = fx.flow.Verify(ctx, flows.VerifyRequest{Tx: tx, Env: fx.env, JourneyID: "j1", Subject: subject, Form: url.Values{"code": {code}}})
			if after, err = tx.LatestChallenge(ctx, "j1", totp.ID); err != nil {
				return err
			}
			stored, err := tx.Factor(ctx, fa.ID)
			if err != nil {
				return err
			}
			counter = stored.Counter
			return errFuzzRollback
		})
		if !errors.Is(err, errFuzzRollback) {
			t.Fatalf("atomic: %v", err)
		}
		norm, wellFormed := totp.NormalizeCode(code)
		step, isRight := right[norm]
		var ve *flows.VerifyError
		switch {
		case !wellFormed:
			if !errors.Is(verr, flows.ErrMalformed) || after.Attempts != before.Attempts || !after.UsedAt.IsZero() {
				t.Fatalf("malformed %q: err %v, attempts %d -> %d", code, verr, before.Attempts, after.Attempts)
			}
		case isRight && subject.UserID == "u1":
			if verr != nil || after.UsedAt.IsZero() || counter != step {
				t.Fatalf("right code %q: err %v, challenge used %v, counter %d (want step %d)", code, verr, after.UsedAt, counter, step)
			}
		default:
			if !errors.Is(verr, flows.ErrWrongResponse) || !errors.As(verr, &ve) || after.Attempts != before.Attempts+1 || !after.UsedAt.IsZero() {
				t.Fatalf("wrong code %q for %q: err %v, attempts %d -> %d, used %v", code, subject.UserID, verr, before.Attempts, after.Attempts, after.UsedAt)
			}
			if counter != 0 {
				t.Fatalf("wrong code %q moved the factor's counter to %d", code, counter)
			}
		}
	})
}

// FuzzConfirm feeds arbitrary enrolment tokens, codes and names to
// Confirm. A factor is stored only for a token Enroll issued (its base64
// decodes to the same sealed bytes), a right code for its secret and an
// acceptable name; every refusal stores nothing and matches its
// documented sentinel. tokenMode 0 uses the fuzzed token, 1 the genuine
// one, 2 the genuine one with the fuzzed string spliced in; codeMode 0
// uses the fuzzed code, 1 a right one, 2 a right one with the fuzzed code
// spliced in after its third digit.
func FuzzConfirm(f *testing.F) {
	ctx := context.Background()
	fx := fuzzSetup(f)
	e, err := fx.flow.Enroll(ctx, "u1", "alice@example.com")
	if err != nil {
		f.Fatal(err)
	}
	genuine, err := base64.RawURLEncoding.DecodeString(e.Token)
	if err != nil {
		f.Fatal(err)
	}
	right := fuzzCodes(f, e.Secret, fuzzNow)
	var aRight string
	for c := range right {
		aRight = c
		break
	}
	// A token of the same shape sealed under another process's key.
	f.Add(e.Token, uint8(0), "123456", uint8(0), "Phone")
	f.Add("", uint8(1), "", uint8(1), "")
	f.Add("", uint8(1), "", uint8(1), "  Phone  ")
	f.Add("", uint8(1), "", uint8(1), strings.Repeat("é", 65))
	f.Add("", uint8(1), "", uint8(1), "\xff")
	f.Add("", uint8(1), " ", uint8(2), "")
	f.Add("", uint8(1), "000000", uint8(0), "")
	f.Add("\n", uint8(2), "", uint8(1), "")
	f.Add("A", uint8(2), "", uint8(1), "")
	f.Add("", uint8(0), "123456", uint8(0), "")
	f.Add(strings.Repeat("A", 200), uint8(0), "123456", uint8(0), "")

	f.Fuzz(func(t *testing.T, token string, tokenMode uint8, code string, codeMode uint8, name string) {
		switch tokenMode % 3 {
		case 1:
			token = e.Token
		case 2:
			i := len(token) % (len(e.Token) + 1)
			token = e.Token[:i] + token + e.Token[i:]
		}
		switch codeMode % 3 {
		case 1:
			code = aRight
		case 2:
			code = aRight[:3] + code + aRight[3:]
		}
		var fa store.Factor
		var cerr error
		var n int
		err := fx.st.Atomic(ctx, func(tx store.Tx) error {
			fa, cerr = fx.flow.Confirm(ctx, tx, token, code, name)
			all, err := tx.Factors(ctx, "u1", totp.ID)
			n = len(all)
			if err != nil {
				return err
			}
			return errFuzzRollback
		})
		if !errors.Is(err, errFuzzRollback) {
			t.Fatalf("atomic: %v", err)
		}

		raw, decErr := base64.RawURLEncoding.DecodeString(token)
		tokenOK := len(token) <= 4096 && decErr == nil && bytes.Equal(raw, genuine)
		norm, codeOK := totp.NormalizeCode(code)
		_, codeRight := right[norm]
		trimmed := strings.TrimSpace(name)
		nameOK := trimmed == "" || (utf8.ValidString(trimmed) && utf8.RuneCountInString(trimmed) <= totp.MaxNameLength)
		wantName := trimmed
		if trimmed == "" {
			wantName = totp.DefaultName
		}

		var want error
		switch {
		case !tokenOK, !codeOK, !nameOK:
			want = flows.ErrMalformed
		case !codeRight:
			want = flows.ErrWrongResponse
		}
		if want == nil {
			if cerr != nil || fa.UserID != "u1" || fa.Name != wantName || fa.Counter != right[norm] || n != 1 {
				t.Fatalf("Confirm(genuine token, right code %q, name %q) = %+v, %v; %d factors", code, name, fa, cerr, n)
			}
			return
		}
		if !errors.Is(cerr, want) {
			t.Fatalf("Confirm(token %q, code %q, name %q) = %v, want %v", token, code, name, cerr, want)
		}
		if n != 0 || fa.ID != "" {
			t.Fatalf("a refused Confirm (%v) stored a factor (%d factors, %+v)", cerr, n, fa)
		}
	})
}
