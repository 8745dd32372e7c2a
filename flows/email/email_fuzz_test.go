package email_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/email"
	"github.com/sspr-go/sspr/flows/flowtest"
	"github.com/sspr-go/sspr/plugin/store"
	"github.com/sspr-go/sspr/plugin/store/sqlite"
)

// errFuzzRollback makes Store.Atomic roll back, so that every fuzz input
// starts from the same state.
var errFuzzRollback = errors.New("fuzz: roll back")

// FuzzNormalizeCode checks NormalizeCode against its specification (drop
// spaces, tabs and dashes; accept exactly n ASCII digits, input at most 4n
// bytes) and that it is idempotent.
func FuzzNormalizeCode(f *testing.F) {
	for _, s := range []string{"12345678", "1234 5678", "1234-5678", " 1 2 3 4 5 6 7 8 ", "\t12345678\t",
		"1234567", "123456789", "1234567a", "１２３４５６７８", "٠١٢٣٤٥٦٧", "12345678\x00", "----------------------------------12345678", "1234\u00a05678"} {
		f.Add(s, uint8(2))
	}
	f.Add("123456", uint8(0))
	f.Add("1234567890", uint8(4))
	f.Fuzz(func(t *testing.T, s string, k uint8) {
		n := 6 + int(k)%5 // the configurable lengths: 6 to 10
		got, ok := email.NormalizeCode(s, n)

		// The specification, written out.
		var digits strings.Builder
		wantOK := len(s) <= 4*n
		for _, r := range s {
			switch {
			case r >= '0' && r <= '9':
				digits.WriteRune(r)
			case r == ' ' || r == '-' || r == '\t':
			default:
				wantOK = false
			}
		}
		wantOK = wantOK && digits.Len() == n
		if ok != wantOK {
			t.Fatalf("NormalizeCode(%q, %d) ok = %v, want %v", s, n, ok, wantOK)
		}
		if !ok {
			if got != "" {
				t.Fatalf("rejected input gave %q", got)
			}
			return
		}
		if got != digits.String() || len(got) != n || strings.Trim(got, "0123456789") != "" {
			t.Fatalf("NormalizeCode(%q, %d) = %q, want the %d ASCII digits %q", s, n, got, n, digits.String())
		}
		if again, ok := email.NormalizeCode(got, n); !ok || again != got {
			t.Fatalf("not idempotent: %q -> %q, %v", got, again, ok)
		}
		// The grouped form a user copies from the email normalises back.
		if grouped, ok := email.NormalizeCode(got[:n/2]+" - "+got[n/2:], n); !ok || grouped != got {
			t.Fatalf("grouped form of %q -> %q, %v", got, grouped, ok)
		}
	})
}

// FuzzMask checks that Mask never panics, keeps only the first character
// of the local part and the domain, and always hides something. Inputs are
// bounded to 1 KiB: Mask's cost grows with the local part (it converts it
// all to runes), and the fuzzer otherwise spends its time on megabyte
// strings no directory holds.
func FuzzMask(f *testing.F) {
	for _, s := range []string{"alice@example.com", "a@b", "@example.com", "", "no-at-sign", "a@b@c.example",
		"élise@exämple.org", "\xff\xfe@example.com", "x@", "\"quoted@local\"@example.com", "ab"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		if len(addr) > 1<<10 {
			return // addresses come from the host's directory; see FuzzMask's doc
		}
		got := email.Mask(addr)
		if !strings.Contains(got, "•••") {
			t.Fatalf("Mask(%q) = %q hides nothing", addr, got)
		}
		at := strings.LastIndexByte(addr, '@')
		if at <= 0 {
			if got != "•••" {
				t.Fatalf("Mask(%q) = %q, want •••", addr, got)
			}
			return
		}
		first, _ := utf8.DecodeRuneInString(addr)
		if want := string(first) + "•••" + addr[at:]; got != want {
			t.Fatalf("Mask(%q) = %q, want %q", addr, got, want)
		}
		if utf8.ValidString(addr) && !utf8.ValidString(got) {
			t.Fatalf("Mask(%q) = %q is not valid UTF-8", addr, got)
		}
	})
}

// fuzzLinkStore counts the store calls a link token reaches.
type fuzzLinkStore struct {
	store.Tx
	calls int
}

func (s *fuzzLinkStore) ChallengeByToken(ctx context.Context, h []byte) (store.Challenge, error) {
	s.calls++
	return s.Tx.ChallengeByToken(ctx, h)
}

func (s *fuzzLinkStore) ConsumeToken(ctx context.Context, h []byte, now time.Time) (store.Challenge, error) {
	s.calls++
	return s.Tx.ConsumeToken(ctx, h, now)
}

// tokenForm is the documented form of a link token: 256 bits, base64url
// without padding.
var tokenForm = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

func fuzzOpenStore(tb testing.TB) store.Store {
	tb.Helper()
	st, err := sqlite.Config{Path: filepath.Join(tb.TempDir(), "fuzz.db")}.Open(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// fuzzBegin starts journey jid for s and returns the token and code mailed.
func fuzzBegin(tb testing.TB, f *email.Flow, st store.Store, env *flowtest.Env, jid string, s flows.Subject) (token, code string) {
	tb.Helper()
	ctx := context.Background()
	now := env.Now()
	if err := st.CreateJourney(ctx, store.Journey{ID: jid, UserID: s.UserID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		tb.Fatal(err)
	}
	err := st.Atomic(ctx, func(tx store.Tx) error {
		return f.Begin(ctx, flows.BeginRequest{Tx: tx, Env: env, JourneyID: jid, Subject: s, Option: flows.Option{Flow: email.ID, Ref: "0"}})
	})
	if err != nil {
		tb.Fatal(err)
	}
	q := env.Queued()
	d := q[len(q)-1].Data.(email.ResetData)
	u, err := url.Parse(d.Link)
	if err != nil {
		tb.Fatal(err)
	}
	return u.Query().Get("token"), d.Code
}

func fuzzVerify(ctx context.Context, f *email.Flow, tx store.Tx, env flows.Env, jid, code string) error {
	return f.Verify(ctx, flows.VerifyRequest{Tx: tx, Env: env, JourneyID: jid, Subject: fuzzAlice, Form: url.Values{"code": {code}}})
}

var fuzzAlice = flows.Subject{UserID: "u1", Emails: []string{"alice@example.com"}}

// FuzzLinkToken feeds arbitrary tokens to PeekLink and RedeemLink on a
// real SQLite store holding a live, a used, an expired and an exhausted
// link. Only the live token redeems (to its journey); the others give
// their documented sentinel; every other string gives ErrNoChallenge, and
// one that is not of the form of a token (43 base64url characters) never
// reaches the store. Each input runs in a transaction that is rolled back.
func FuzzLinkToken(f *testing.F) {
	ctx := context.Background()
	st := fuzzOpenStore(f)
	env := flowtest.NewEnv(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	fl, err := email.New(email.Config{})
	if err != nil {
		f.Fatal(err)
	}
	expired, _ := fuzzBegin(f, fl, st, env, "j-expired", fuzzAlice)
	env.Advance(email.DefaultCodeTTL + time.Minute)
	live, _ := fuzzBegin(f, fl, st, env, "j-live", fuzzAlice)
	used, _ := fuzzBegin(f, fl, st, env, "j-used", fuzzAlice)
	if _, err := fl.RedeemLink(ctx, st, env, used); err != nil {
		f.Fatal(err)
	}
	exhausted, code := fuzzBegin(f, fl, st, env, "j-exhausted", fuzzAlice)
	wrong := "00000000"
	if code == wrong {
		wrong = "11111111"
	}
	for range email.DefaultMaxAttempts {
		_ = st.Atomic(ctx, func(tx store.Tx) error { _ = fuzzVerify(ctx, fl, tx, env, "j-exhausted", wrong); return nil })
	}
	want := map[string]error{live: nil, used: flows.ErrUsed, expired: flows.ErrExpired, exhausted: flows.ErrExhausted}

	f.Add(live)
	f.Add(used)
	f.Add(live[:42])
	f.Add(live + "A")
	f.Add(live[:42] + "=")
	f.Add(strings.ReplaceAll(live, "-", "+"))
	f.Add(strings.Repeat("A", 43))
	f.Add("")
	f.Add(strings.Repeat("A", 40) + "%3D")
	f.Add("../../../../etc/passwd" + strings.Repeat("x", 21))
	f.Add(strings.Repeat("A", 42) + "\x00")

	f.Fuzz(func(t *testing.T, token string) {
		var peekJID, redeemJID string
		var peekErr, redeemErr error
		var reached int
		err := st.Atomic(ctx, func(tx store.Tx) error {
			cs := &fuzzLinkStore{Tx: tx}
			peekJID, peekErr = fl.PeekLink(ctx, cs, env, token)
			redeemJID, redeemErr = fl.RedeemLink(ctx, cs, env, token)
			reached = cs.calls
			return errFuzzRollback
		})
		if !errors.Is(err, errFuzzRollback) {
			t.Fatalf("atomic: %v", err)
		}
		if reached > 0 && !tokenForm.MatchString(token) {
			t.Fatalf("token %q is not of the form of a link token but reached the store (%d calls)", token, reached)
		}
		wantErr, known := want[token]
		if !known {
			wantErr = flows.ErrNoChallenge
		}
		for _, r := range []struct {
			op  string
			jid string
			err error
		}{{"PeekLink", peekJID, peekErr}, {"RedeemLink", redeemJID, redeemErr}} {
			switch {
			case wantErr == nil && (r.err != nil || r.jid != "j-live"):
				t.Fatalf("%s(live token) = %q, %v; want j-live", r.op, r.jid, r.err)
			case wantErr != nil && !errors.Is(r.err, wantErr):
				t.Fatalf("%s(%q) = %q, %v; want %v", r.op, token, r.jid, r.err, wantErr)
			case wantErr != nil && r.jid != "":
				t.Fatalf("%s(%q) returned journey %q with error %v", r.op, token, r.jid, r.err)
			}
		}
	})
}

// FuzzVerifyCode feeds arbitrary "code" form values to Verify against a
// live challenge. A malformed code is ErrMalformed and counts nothing; a
// well-formed wrong code is a *VerifyError with ErrWrongResponse and counts
// one attempt; only the mailed code verifies.
func FuzzVerifyCode(f *testing.F) {
	ctx := context.Background()
	st := fuzzOpenStore(f)
	env := flowtest.NewEnv(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	fl, err := email.New(email.Config{})
	if err != nil {
		f.Fatal(err)
	}
	_, code := fuzzBegin(f, fl, st, env, "j1", fuzzAlice)
	for _, s := range []string{"12345678", "1234 5678", "1234-567", "abcdefgh", "", "123456789", "12345678\n", "１２３４５６７８"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var before, after store.Challenge
		var verr error
		err := st.Atomic(ctx, func(tx store.Tx) error {
			var err error
			if before, err = tx.LatestChallenge(ctx, "j1", email.ID); err != nil {
				return err
			}
			verr = fuzzVerify(ctx, fl, tx, env, "j1", in)
			if after, err = tx.LatestChallenge(ctx, "j1", email.ID); err != nil {
				return err
			}
			return errFuzzRollback
		})
		if !errors.Is(err, errFuzzRollback) {
			t.Fatalf("atomic: %v", err)
		}
		norm, wellFormed := email.NormalizeCode(in, fl.CodeLength())
		var ve *flows.VerifyError
		switch {
		case !wellFormed:
			if !errors.Is(verr, flows.ErrMalformed) || after.Attempts != before.Attempts || !after.UsedAt.IsZero() {
				t.Fatalf("malformed %q: err %v, attempts %d -> %d, used %v", in, verr, before.Attempts, after.Attempts, after.UsedAt)
			}
		case norm == code:
			if verr != nil || after.UsedAt.IsZero() {
				t.Fatalf("the mailed code %q: err %v, used %v", in, verr, after.UsedAt)
			}
		default:
			if !errors.Is(verr, flows.ErrWrongResponse) || !errors.As(verr, &ve) || after.Attempts != before.Attempts+1 || !after.UsedAt.IsZero() {
				t.Fatalf("wrong code %q: err %v, attempts %d -> %d, used %v", in, verr, before.Attempts, after.Attempts, after.UsedAt)
			}
			if ve.AttemptsLeft != after.MaxAttempts-after.Attempts {
				t.Fatalf("wrong code %q: %d attempts left reported, store says %d", in, ve.AttemptsLeft, after.MaxAttempts-after.Attempts)
			}
		}
	})
}
