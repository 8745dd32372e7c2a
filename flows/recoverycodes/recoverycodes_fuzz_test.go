package recoverycodes_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/flowtest"
	"github.com/sspr-go/sspr/flows/recoverycodes"
	"github.com/sspr-go/sspr/plugin/store"
	"github.com/sspr-go/sspr/plugin/store/sqlite"
)

// errFuzzRollback makes Store.Atomic roll back, so that every fuzz input
// starts from the same state.
var errFuzzRollback = errors.New("fuzz: roll back")

// fuzzAlphabet is Crockford's base32 in lower case, the codes' alphabet.
const fuzzAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// fuzzSpec is NormalizeCode's specification written out: ASCII letters
// lowered, spaces, tabs and dashes dropped, i and l read as 1 and o as 0,
// and the rest exactly 16 characters of the alphabet, from input of at
// most 64 bytes.
func fuzzSpec(s string) (string, bool) {
	if len(s) > 64 {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		switch {
		case c == ' ' || c == '\t' || c == '-':
			continue
		case c == 'i' || c == 'l':
			c = '1'
		case c == 'o':
			c = '0'
		case strings.IndexByte(fuzzAlphabet, c) < 0:
			return "", false // also every byte of a non-ASCII character
		}
		b.WriteByte(c)
	}
	if b.Len() != 16 {
		return "", false
	}
	return b.String(), true
}

// FuzzNormalizeCode checks NormalizeCode against its specification, that
// its output is 16 characters of the alphabet and that it is idempotent
// and blind to case, grouping and look-alikes.
func FuzzNormalizeCode(f *testing.F) {
	for _, s := range []string{"abcd-efgh-jkmn-pqrs", "ABCD EFGH JKMN PQRS", "0123456789abcdef", "oiLO-0110-abcd-wxyz",
		"abcd-efgh-jkmn-pqr", "abcd-efgh-jkmn-pqrsu", "abcd-efgh-jkmn-pqr\u0131", "ABCD-EFGH-JKMN-PQR\u212a",
		"abcd\x00efgh-jkmn-pqrs", strings.Repeat("-", 48) + "abcdefghjkmnpqrs", "ａｂｃｄ-efgh-jkmn-pqrs"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := recoverycodes.NormalizeCode(s)
		want, wantOK := fuzzSpec(s)
		if ok != wantOK || got != want {
			t.Fatalf("NormalizeCode(%q) = %q, %v; want %q, %v", s, got, ok, want, wantOK)
		}
		if !ok {
			return
		}
		if len(got) != 16 || strings.Trim(got, fuzzAlphabet) != "" {
			t.Fatalf("NormalizeCode(%q) = %q, not 16 characters of the alphabet", s, got)
		}
		if again, ok := recoverycodes.NormalizeCode(got); !ok || again != got {
			t.Fatalf("not idempotent: %q -> %q, %v", got, again, ok)
		}
		shown := strings.ToUpper(got[0:4] + "-" + got[4:8] + " " + got[8:12] + "\t" + got[12:16])
		if again, ok := recoverycodes.NormalizeCode(shown); !ok || again != got {
			t.Fatalf("%q (as printed, upper case) -> %q, %v; want %q", shown, again, ok, got)
		}
		lookalikes := strings.NewReplacer("1", "l", "0", "O").Replace(got)
		if again, ok := recoverycodes.NormalizeCode(lookalikes); !ok || again != got {
			t.Fatalf("%q (look-alikes) -> %q, %v; want %q", lookalikes, again, ok, got)
		}
	})
}

// FuzzVerify feeds arbitrary "code" form values to Verify for a user with
// ten codes and for a decoy. Only one of the user's codes (in any case,
// grouping or look-alike spelling) verifies, and it uses up that code and
// the challenge; a malformed value is ErrMalformed and counts nothing;
// every other value is a counted *VerifyError wrapping ErrWrongResponse
// and leaves the codes alone. pick > 0 replaces the fuzzed code with one
// of the user's codes (which differ in every fuzzing process), upper-cased
// when pick is odd and spelled with look-alikes when pick&2 is set. Each
// input runs in a transaction that is rolled back.
func FuzzVerify(f *testing.F) {
	ctx := context.Background()
	st, err := sqlite.Config{Path: filepath.Join(f.TempDir(), "fuzz.db")}.Open(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	env := flowtest.NewEnv(now)
	fl, err := recoverycodes.New(recoverycodes.Config{Store: st})
	if err != nil {
		f.Fatal(err)
	}
	codes, err := fl.Generate(ctx, st, env, "u1")
	if err != nil {
		f.Fatal(err)
	}
	valid := map[string]bool{}
	for _, c := range codes {
		n, ok := recoverycodes.NormalizeCode(c)
		if !ok {
			f.Fatalf("generated code %q does not normalise", c)
		}
		valid[n] = true
	}
	if err := st.CreateJourney(ctx, store.Journey{ID: "j1", UserID: "u1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		f.Fatal(err)
	}
	err = st.Atomic(ctx, func(tx store.Tx) error {
		return fl.Begin(ctx, flows.BeginRequest{Tx: tx, Env: env, JourneyID: "j1", Subject: flows.Subject{UserID: "u1"}})
	})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"abcd-efgh-jkmn-pqrs", "ABCD EFGH JKMN PQRS", "", "abcd", "abcd-efgh-jkmn-pqrs-tvwx", "ab\u00e7d-efgh-jkmn-pqrs"} {
		f.Add(s, uint8(0), false)
	}
	for pick := range uint8(4) {
		f.Add("", pick+1, false)
		f.Add("", pick+1, true)
	}

	f.Fuzz(func(t *testing.T, code string, pick uint8, decoy bool) {
		if pick > 0 {
			code = codes[int(pick)%len(codes)]
			if pick&1 == 1 {
				code = strings.ToUpper(code)
			}
			if pick&2 == 2 {
				code = strings.NewReplacer("1", "l", "0", "o").Replace(code)
			}
		}
		subject := flows.Subject{UserID: "u1"}
		if decoy {
			subject.UserID = ""
		}
		var before, after store.Challenge
		var left int
		var verr error
		err := st.Atomic(ctx, func(tx store.Tx) error {
			var err error
			if before, err = tx.LatestChallenge(ctx, "j1", recoverycodes.ID); err != nil {
				return err
			}
			verr = fl.Verify(ctx, flows.VerifyRequest{Tx: tx, Env: env, JourneyID: "j1", Subject: subject, Form: url.Values{"code": {code}}})
			if after, err = tx.LatestChallenge(ctx, "j1", recoverycodes.ID); err != nil {
				return err
			}
			fs, err := tx.Factors(ctx, "u1", recoverycodes.ID)
			left = len(fs)
			if err != nil {
				return err
			}
			return errFuzzRollback
		})
		if !errors.Is(err, errFuzzRollback) {
			t.Fatalf("atomic: %v", err)
		}
		norm, wellFormed := recoverycodes.NormalizeCode(code)
		var ve *flows.VerifyError
		switch {
		case !wellFormed:
			if !errors.Is(verr, flows.ErrMalformed) || after.Attempts != before.Attempts || left != len(codes) {
				t.Fatalf("malformed %q: err %v, attempts %d -> %d, %d codes left", code, verr, before.Attempts, after.Attempts, left)
			}
		case valid[norm] && !decoy:
			if verr != nil || after.UsedAt.IsZero() || left != len(codes)-1 {
				t.Fatalf("the user's code %q: err %v, challenge used %v, %d codes left", code, verr, after.UsedAt, left)
			}
		default:
			if !errors.Is(verr, flows.ErrWrongResponse) || !errors.As(verr, &ve) || after.Attempts != before.Attempts+1 || !after.UsedAt.IsZero() || left != len(codes) {
				t.Fatalf("wrong code %q (decoy %v): err %v, attempts %d -> %d, used %v, %d codes left", code, decoy, verr, before.Attempts, after.Attempts, after.UsedAt, left)
			}
		}
	})
}
