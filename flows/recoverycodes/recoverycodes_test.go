package recoverycodes_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/flowtest"
	"github.com/sspr-go/sspr/flows/recoverycodes"
	"github.com/sspr-go/sspr/plugin/password"
	"github.com/sspr-go/sspr/plugin/store"
	"github.com/sspr-go/sspr/plugin/store/sqlite"
)

var start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type fixture struct {
	// st is the store, watched: it knows when a write transaction is open.
	st   *flowtest.WatchStore
	env  *flowtest.Env
	flow *recoverycodes.Flow
	// hashes counts the flow's argon2id computations.
	hashes *flowtest.CountingHasher
}

func setup(t *testing.T) *fixture {
	t.Helper()
	real, err := sqlite.Config{Path: filepath.Join(t.TempDir(), "r.db")}.Open(t.Context(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { real.Close() })
	st := &flowtest.WatchStore{Store: real}
	h, err := password.NewHasher(password.HasherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	hashes := &flowtest.CountingHasher{H: h, St: st}
	f, err := recoverycodes.New(recoverycodes.Config{Store: st, Hasher: hashes})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{st: st, env: flowtest.NewEnv(start), flow: f, hashes: hashes}
}

func (fx *fixture) generate(t *testing.T, userID string) []string {
	t.Helper()
	codes, err := fx.flow.Generate(t.Context(), fx.st, fx.env, userID)
	if err != nil {
		t.Fatal(err)
	}
	return codes
}

func (fx *fixture) begin(t *testing.T, journeyID string, s flows.Subject) {
	t.Helper()
	now := fx.env.Now()
	if err := fx.st.CreateJourney(t.Context(), store.Journey{ID: journeyID, UserID: s.UserID, CreatedAt: now, ExpiresAt: now.Add(15 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	err := fx.st.Atomic(t.Context(), func(tx store.Tx) error {
		return fx.flow.Begin(t.Context(), flows.BeginRequest{Tx: tx, Env: fx.env, JourneyID: journeyID, Subject: s, Option: flows.Option{Flow: recoverycodes.ID, Ref: "codes"}})
	})
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
}

// prepare is what the engine does before its write transaction.
func (fx *fixture) prepare(t *testing.T, journeyID string, s flows.Subject, code string) any {
	t.Helper()
	p, err := fx.flow.Prepare(t.Context(), flows.PrepareRequest{Store: fx.st, Env: fx.env, JourneyID: journeyID, Subject: s, Form: url.Values{"code": {code}}})
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	return p
}

// verifyPrepared verifies in a write transaction, as the engine does,
// with a prepared value (nil for none).
func (fx *fixture) verifyPrepared(t *testing.T, journeyID string, s flows.Subject, code string, prepared any) error {
	t.Helper()
	var verr error
	err := fx.st.Atomic(t.Context(), func(tx store.Tx) error {
		verr = fx.flow.Verify(t.Context(), flows.VerifyRequest{Tx: tx, Env: fx.env, JourneyID: journeyID, Subject: s, Form: url.Values{"code": {code}}, Prepared: prepared})
		return nil // the engine commits counted attempts
	})
	if err != nil {
		t.Fatal(err)
	}
	return verr
}

// verify prepares and verifies, as the engine does.
func (fx *fixture) verify(t *testing.T, journeyID string, s flows.Subject, code string) error {
	t.Helper()
	return fx.verifyPrepared(t, journeyID, s, code, fx.prepare(t, journeyID, s, code))
}

func (fx *fixture) remaining(t *testing.T, userID string) int {
	t.Helper()
	n, err := fx.flow.Remaining(t.Context(), userID)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func attemptsLeft(err error) int {
	var ve *flows.VerifyError
	if errors.As(err, &ve) {
		return ve.AttemptsLeft
	}
	return -1
}

const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"

func TestGenerate(t *testing.T) {
	fx := setup(t)
	codes := fx.generate(t, "alice")
	if len(codes) != 10 {
		t.Fatalf("%d codes", len(codes))
	}
	seen := map[string]bool{}
	for _, c := range codes {
		groups := strings.Split(c, "-")
		if len(groups) != 4 {
			t.Fatalf("code %q is not four groups", c)
		}
		plain := strings.Join(groups, "")
		// 16 characters of a 32-letter alphabet: 80 bits >= 64.
		if len(plain) != 16 || strings.Trim(plain, alphabet) != "" {
			t.Fatalf("code %q: not 16 characters of the alphabet", c)
		}
		if seen[plain] {
			t.Fatalf("duplicate code %q", c)
		}
		seen[plain] = true
	}
	if n := fx.remaining(t, "alice"); n != 10 {
		t.Fatalf("remaining %d", n)
	}

	// Only keyed hashes of argon2id keys are stored, one per factor, with
	// the set's salt and costs: the password package's defaults.
	factors, err := fx.st.Factors(t.Context(), "alice", recoverycodes.ID)
	if err != nil || len(factors) != 10 {
		t.Fatalf("%d factors: %v", len(factors), err)
	}
	def, err := password.NewHasher(password.HasherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	salt := setOf(t, factors[0]).Salt
	for _, fa := range factors {
		if fa.Name != "Recovery code" || len(fa.Secret) != 32 || !fa.CreatedAt.Equal(start) {
			t.Fatalf("factor %+v", fa)
		}
		set := setOf(t, fa)
		if set.KDF != def.HistoryParams() || len(set.Salt) != 16 || !bytes.Equal(set.Salt, salt) {
			t.Fatalf("factor %s: set data %+v, want the default costs %q and the set's one 16-byte salt", fa.ID, set, def.HistoryParams())
		}
		for _, c := range codes {
			plain := strings.ReplaceAll(c, "-", "")
			if bytes.Equal(fa.Secret, fx.env.MAC("recovery code", []byte("alice"), []byte(plain))) {
				t.Fatalf("factor %s is a keyed hash of the code alone, not of its argon2id key", fa.ID)
			}
			for _, field := range []string{fa.ID, fa.Name, string(fa.Secret), string(fa.Data)} {
				for _, form := range []string{c, plain, strings.ToUpper(plain)} {
					if strings.Contains(field, form) {
						t.Fatalf("factor %s stores code %q in clear", fa.ID, c)
					}
				}
			}
		}
	}
	// One argon2id per code, none inside the write transaction; a new set
	// gets a new salt.
	fx.hashes.Reset()
	fx.generate(t, "alice")
	if n, in := fx.hashes.N.Load(), fx.hashes.InTx.Load(); n != 10 || in != 0 {
		t.Fatalf("generating 10 codes: %d argon2id, %d of them in the transaction", n, in)
	}
	again, err := fx.st.Factors(t.Context(), "alice", recoverycodes.ID)
	if err != nil || len(again) != 10 || bytes.Equal(setOf(t, again[0]).Salt, salt) {
		t.Fatalf("a new set kept the old salt (%d factors, %v)", len(again), err)
	}
}

// setData is a factor's Data: the set's argon2id costs and salt.
type setData struct {
	KDF  string `json:"kdf"`
	Salt []byte `json:"salt"`
}

func setOf(t *testing.T, fa store.Factor) setData {
	t.Helper()
	var d setData
	if err := json.Unmarshal(fa.Data, &d); err != nil {
		t.Fatalf("factor %s: data %q: %v", fa.ID, fa.Data, err)
	}
	return d
}

func TestSingleUse(t *testing.T) {
	fx := setup(t)
	alice := flows.Subject{UserID: "alice"}
	codes := fx.generate(t, alice.UserID)
	fx.begin(t, "j1", alice)
	// Case, spaces and dashes do not matter.
	if err := fx.verify(t, "j1", alice, " "+strings.ToUpper(strings.ReplaceAll(codes[3], "-", " "))+" "); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if n := fx.remaining(t, alice.UserID); n != 9 {
		t.Fatalf("remaining %d", n)
	}
	fx.begin(t, "j2", alice)
	if err := fx.verify(t, "j2", alice, codes[3]); !errors.Is(err, flows.ErrWrongResponse) || attemptsLeft(err) != 4 {
		t.Fatalf("second use: %v", err)
	}
	if err := fx.verify(t, "j2", alice, codes[4]); err != nil {
		t.Fatalf("another code: %v", err)
	}
	if err := fx.verify(t, "j2", alice, codes[5]); !errors.Is(err, flows.ErrUsed) {
		t.Fatalf("verify on a used challenge: %v", err)
	}
	if n := fx.remaining(t, alice.UserID); n != 8 {
		t.Fatalf("remaining %d", n)
	}
}

func TestOtherUsersCodes(t *testing.T) {
	fx := setup(t)
	alice, bob := flows.Subject{UserID: "alice"}, flows.Subject{UserID: "bob"}
	aliceCodes := fx.generate(t, alice.UserID)
	fx.generate(t, bob.UserID)
	fx.begin(t, "j1", bob)
	if err := fx.verify(t, "j1", bob, aliceCodes[0]); !errors.Is(err, flows.ErrWrongResponse) {
		t.Fatalf("alice's code for bob: %v", err)
	}
	if n := fx.remaining(t, alice.UserID); n != 10 {
		t.Fatalf("alice's code was used: %d left", n)
	}
}

func TestRegenerate(t *testing.T) {
	fx := setup(t)
	alice := flows.Subject{UserID: "alice"}
	old := fx.generate(t, alice.UserID)
	fresh := fx.generate(t, alice.UserID)
	if n := fx.remaining(t, alice.UserID); n != 10 {
		t.Fatalf("remaining %d", n)
	}
	fx.begin(t, "j1", alice)
	for _, c := range old[:2] {
		if err := fx.verify(t, "j1", alice, c); !errors.Is(err, flows.ErrWrongResponse) {
			t.Fatalf("old code: %v", err)
		}
	}
	if err := fx.verify(t, "j1", alice, fresh[0]); err != nil {
		t.Fatalf("new code: %v", err)
	}
}

// failingStore fails CreateFactor after some calls, to show that Generate
// replaces the codes all or nothing.
type failingStore struct {
	store.Store
	after int
}

func (s *failingStore) Atomic(ctx context.Context, fn func(tx store.Tx) error) error {
	return s.Store.Atomic(ctx, func(tx store.Tx) error {
		return fn(&failingTx{Tx: tx, left: &s.after})
	})
}

type failingTx struct {
	store.Tx
	left *int
}

func (tx *failingTx) CreateFactor(ctx context.Context, f store.Factor) error {
	if *tx.left == 0 {
		return errBoom
	}
	*tx.left--
	return tx.Tx.CreateFactor(ctx, f)
}

var errBoom = errors.New("boom")

func TestGenerateAtomic(t *testing.T) {
	fx := setup(t)
	alice := flows.Subject{UserID: "alice"}
	old := fx.generate(t, alice.UserID)
	if _, err := fx.flow.Generate(t.Context(), &failingStore{Store: fx.st, after: 4}, fx.env, alice.UserID); !errors.Is(err, errBoom) {
		t.Fatalf("failing generate: %v", err)
	}
	if n := fx.remaining(t, alice.UserID); n != 10 {
		t.Fatalf("remaining after a failed generate: %d", n)
	}
	fx.begin(t, "j1", alice)
	if err := fx.verify(t, "j1", alice, old[9]); err != nil {
		t.Fatalf("old code after a failed generate: %v", err)
	}
	// Inside the caller's transaction, Generate uses it.
	var codes []string
	err := fx.st.Atomic(t.Context(), func(tx store.Tx) error {
		var err error
		codes, err = fx.flow.Generate(t.Context(), tx, fx.env, alice.UserID)
		return err
	})
	if err != nil || len(codes) != 10 || fx.remaining(t, alice.UserID) != 10 {
		t.Fatalf("generate in a tx: %v", err)
	}
	if _, err := fx.flow.Generate(t.Context(), fx.st, fx.env, ""); err == nil {
		t.Fatal("generate for an empty user")
	}
}

// TestConcurrentUse: one code presented in 50 journeys at once, each
// prepared outside the transaction as the engine does, is accepted once.
func TestConcurrentUse(t *testing.T) {
	fx := setup(t)
	alice := flows.Subject{UserID: "alice"}
	codes := fx.generate(t, alice.UserID)
	const n = 50
	for i := range n {
		fx.begin(t, fmt.Sprintf("j%d", i), alice)
	}
	var (
		wg          sync.WaitGroup
		mu          sync.Mutex
		wins, wrong int
	)
	for i := range n {
		wg.Go(func() {
			jid := fmt.Sprintf("j%d", i)
			req := flows.PrepareRequest{Store: fx.st, Env: fx.env, JourneyID: jid, Subject: alice, Form: url.Values{"code": {codes[0]}}}
			prepared, err := fx.flow.Prepare(t.Context(), req)
			if err != nil {
				t.Errorf("prepare: %v", err)
				return
			}
			var verr error
			err = fx.st.Atomic(t.Context(), func(tx store.Tx) error {
				verr = fx.flow.Verify(t.Context(), flows.VerifyRequest{Tx: tx, Env: fx.env, JourneyID: jid, Subject: alice, Form: req.Form, Prepared: prepared})
				return nil
			})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Errorf("atomic: %v", err)
			case verr == nil:
				wins++
			case errors.Is(verr, flows.ErrWrongResponse):
				wrong++
			default:
				t.Errorf("verify: %v", verr)
			}
		})
	}
	wg.Wait()
	if wins != 1 || wrong != n-1 {
		t.Fatalf("wins %d, wrong %d", wins, wrong)
	}
	if left := fx.remaining(t, alice.UserID); left != 9 {
		t.Fatalf("remaining %d", left)
	}
	if in := fx.hashes.InTx.Load(); in != 0 {
		t.Fatalf("%d argon2id computed inside a write transaction", in)
	}
}

func TestAttempts(t *testing.T) {
	fx := setup(t)
	alice := flows.Subject{UserID: "alice"}
	codes := fx.generate(t, alice.UserID)
	fx.begin(t, "j1", alice)
	for _, in := range []string{"", "abcd", "abcd-efgh-jkmn-pqr", "abcd-efgh-jkmn-pqrst", "abcd-efgh-jkmn-pqru", "abcd-éfgh-jkmn-pqrs", strings.Repeat("-", 70)} {
		if err := fx.verify(t, "j1", alice, in); !errors.Is(err, flows.ErrMalformed) {
			t.Fatalf("%q: %v", in, err)
		}
	}
	c, err := fx.st.LatestChallenge(t.Context(), "j1", recoverycodes.ID)
	if err != nil || c.Attempts != 0 || c.MaxAttempts != 5 || !c.ExpiresAt.Equal(start.Add(5*time.Minute)) || len(c.CodeHash) != 32 {
		t.Fatalf("challenge %+v: %v", c, err)
	}
	for left := 4; left >= 1; left-- {
		if err := fx.verify(t, "j1", alice, "0000-0000-0000-0000"); !errors.Is(err, flows.ErrWrongResponse) || attemptsLeft(err) != left {
			t.Fatalf("want %d left: %v", left, err)
		}
	}
	if err := fx.verify(t, "j1", alice, "0000-0000-0000-0000"); !errors.Is(err, flows.ErrExhausted) {
		t.Fatalf("fifth wrong code: %v", err)
	}
	if err := fx.verify(t, "j1", alice, codes[0]); !errors.Is(err, flows.ErrExhausted) {
		t.Fatalf("right code after exhaustion: %v", err)
	}
	if n := fx.remaining(t, alice.UserID); n != 10 {
		t.Fatalf("a code was used on a dead challenge: %d left", n)
	}
	fx.env.Advance(5 * time.Minute)
	fx.begin2(t, "j1", alice)
	if err := fx.verify(t, "j1", alice, codes[0]); !errors.Is(err, flows.ErrExhausted) {
		t.Fatalf("right code after a new begin: %v", err)
	}
}

func (fx *fixture) begin2(t *testing.T, journeyID string, s flows.Subject) {
	t.Helper()
	err := fx.st.Atomic(t.Context(), func(tx store.Tx) error {
		return fx.flow.Begin(t.Context(), flows.BeginRequest{Tx: tx, Env: fx.env, JourneyID: journeyID, Subject: s, Resend: true})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDecoyAndOptions(t *testing.T) {
	fx := setup(t)
	codes := fx.generate(t, "alice")
	decoy := flows.Subject{}
	if opts, err := fx.flow.Options(t.Context(), decoy); err != nil || len(opts) != 0 {
		t.Fatalf("decoy options: %v %v", opts, err)
	}
	if opts, err := fx.flow.Options(t.Context(), flows.Subject{UserID: "carol"}); err != nil || len(opts) != 0 {
		t.Fatalf("options without codes: %v %v", opts, err)
	}
	opts, err := fx.flow.Options(t.Context(), flows.Subject{UserID: "alice"})
	if err != nil || len(opts) != 1 || opts[0] != (flows.Option{Flow: "recovery-codes", Ref: "codes", Hint: "Recovery code"}) {
		t.Fatalf("options %+v: %v", opts, err)
	}
	fx.begin(t, "j1", decoy)
	if err := fx.verify(t, "j1", decoy, codes[0]); !errors.Is(err, flows.ErrWrongResponse) || attemptsLeft(err) != 4 {
		t.Fatalf("decoy: %v", err)
	}
	if n := fx.remaining(t, "alice"); n != 10 {
		t.Fatalf("decoy used a code: %d left", n)
	}
}

func TestNormalizeCode(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"abcd-efgh-jkmn-pqrs", "abcdefghjkmnpqrs", true},
		{"ABCD EFGH JKMN PQRS", "abcdefghjkmnpqrs", true},
		{"abcdefghjkmnpqrs", "abcdefghjkmnpqrs", true},
		{"0O0o-1IiL-l234-5678", "0000111112345678", true},
		{"abcd-efgh-jkmn-pqr", "", false},
		{"abcd-efgh-jkmn-pqru", "", false},
		{"abcd-efgh-jkmn-pqr\u212a", "", false}, // Kelvin sign, which lowers to k
		{"abcd_efgh_jkmn_pqrs", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got, ok := recoverycodes.NormalizeCode(tt.in); got != tt.want || ok != tt.ok {
				t.Fatalf("got %q %v", got, ok)
			}
		})
	}
}

func TestConfigAndPrompt(t *testing.T) {
	_, err := recoverycodes.New(recoverycodes.Config{Count: 4})
	want := "recoverycodes: config: field 'Store': required\nrecoverycodes: config: field 'Count': must be between 5 and 20"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v", err)
	}
	if _, err := recoverycodes.New(recoverycodes.Config{Store: setup(t).st, Count: 21}); err == nil {
		t.Fatal("count 21 accepted")
	}
	fx := setup(t)
	f, err := recoverycodes.New(recoverycodes.Config{Store: fx.st, Count: 5})
	if err != nil {
		t.Fatal(err)
	}
	if codes, err := f.Generate(t.Context(), fx.st, fx.env, "alice"); err != nil || len(codes) != 5 {
		t.Fatalf("count 5: %d %v", len(codes), err)
	}
	wantPrompt := flows.Prompt{Page: "code", Heading: "recovery.heading", Label: "recovery.label",
		InputMode: "text", Autocomplete: "off", MaxLength: 32, Choice: "recovery.choice", Section: "recovery.section", Add: "recovery.add"}
	if got := f.Prompt(); got != wantPrompt {
		t.Fatalf("prompt %+v", got)
	}
	if f.ID() != "recovery-codes" || f.Kind() != flows.KindBound {
		t.Fatal("id or kind")
	}
}
