package totp_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"image/png"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	pqtotp "github.com/pquerna/otp/totp"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/flowtest"
	"github.com/sspr-go/sspr/flows/totp"
	"github.com/sspr-go/sspr/plugin/store"
	"github.com/sspr-go/sspr/plugin/store/sqlite"
)

// bobSecret is the example provider's demo secret.
const bobSecret = "JBSWY3DPEHPK3PXP"

// start is 10 seconds into a time step.
var start = time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC)

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Config{Path: filepath.Join(t.TempDir(), "t.db")}.Open(t.Context(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

type fixture struct {
	st   store.Store
	env  *flowtest.Env
	flow *totp.Flow
	key  []byte
}

func setup(t *testing.T) *fixture {
	t.Helper()
	fx := &fixture{st: openStore(t), env: flowtest.NewEnv(start), key: newKey()}
	fx.flow = fx.newFlow(t, fx.key)
	return fx
}

func (fx *fixture) newFlow(t *testing.T, keys ...[]byte) *totp.Flow {
	t.Helper()
	f, err := totp.New(totp.Config{Store: fx.st, Keys: keys, Now: fx.env.Now})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// code returns secret's code at the given time.
func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := pqtotp.GenerateCodeCustom(secret, at, pqtotp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wrongCode returns a 6-digit code that is none of secret's codes around at.
func wrongCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	for _, c := range []string{"000000", "111111", "222222", "333333"} {
		if c != code(t, secret, at.Add(-30*time.Second)) && c != code(t, secret, at) && c != code(t, secret, at.Add(30*time.Second)) {
			return c
		}
	}
	t.Fatal("no wrong code")
	return ""
}

func (fx *fixture) addUser(t *testing.T, userID, secret string) store.Factor {
	t.Helper()
	fa, err := fx.flow.AddSecret(t.Context(), fx.st, userID, "", secret)
	if err != nil {
		t.Fatal(err)
	}
	return fa
}

// begin creates a journey for s and begins the flow in it.
func (fx *fixture) begin(t *testing.T, f *totp.Flow, journeyID string, s flows.Subject) {
	t.Helper()
	now := fx.env.Now()
	if err := fx.st.CreateJourney(t.Context(), store.Journey{ID: journeyID, UserID: s.UserID, CreatedAt: now, ExpiresAt: now.Add(15 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	err := fx.st.Atomic(t.Context(), func(tx store.Tx) error {
		return f.Begin(t.Context(), flows.BeginRequest{Tx: tx, Env: fx.env, JourneyID: journeyID, Subject: s})
	})
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
}

func (fx *fixture) verify(t *testing.T, f *totp.Flow, journeyID string, s flows.Subject, code string) error {
	t.Helper()
	var verr error
	err := fx.st.Atomic(t.Context(), func(tx store.Tx) error {
		verr = f.Verify(t.Context(), flows.VerifyRequest{Tx: tx, Env: fx.env, JourneyID: journeyID, Subject: s, Form: url.Values{"code": {code}}})
		return nil // the engine commits counted attempts
	})
	if err != nil {
		t.Fatal(err)
	}
	return verr
}

func (fx *fixture) attempts(t *testing.T, journeyID string) int {
	t.Helper()
	c, err := fx.st.LatestChallenge(t.Context(), journeyID, totp.ID)
	if err != nil {
		t.Fatal(err)
	}
	return c.Attempts
}

func attemptsLeft(err error) int {
	var ve *flows.VerifyError
	if errors.As(err, &ve) {
		return ve.AttemptsLeft
	}
	return -1
}

func TestWindow(t *testing.T) {
	fx := setup(t)
	tests := []struct {
		name   string
		offset time.Duration
		ok     bool
	}{
		{"current step", 0, true},
		{"previous step", -30 * time.Second, true},
		{"next step", 30 * time.Second, true},
		{"two steps back", -60 * time.Second, false},
		{"two steps ahead", 60 * time.Second, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := flows.Subject{UserID: "window" + string(rune('a'+i))}
			fx.addUser(t, s.UserID, bobSecret)
			jid := "j-" + s.UserID
			fx.begin(t, fx.flow, jid, s)
			err := fx.verify(t, fx.flow, jid, s, code(t, bobSecret, fx.env.Now().Add(tt.offset)))
			if tt.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.ok && (!errors.Is(err, flows.ErrWrongResponse) || attemptsLeft(err) != 4) {
				t.Fatalf("got %v, want a counted wrong response", err)
			}
		})
	}
}

func TestReplay(t *testing.T) {
	fx := setup(t)
	bob := flows.Subject{UserID: "bob"}
	fa := fx.addUser(t, bob.UserID, bobSecret)
	now := fx.env.Now()

	// The same code twice, in two journeys, within its window.
	c := code(t, bobSecret, now)
	fx.begin(t, fx.flow, "j1", bob)
	fx.begin(t, fx.flow, "j2", bob)
	if err := fx.verify(t, fx.flow, "j1", bob, c); err != nil {
		t.Fatalf("first use: %v", err)
	}
	fx.env.Advance(5 * time.Second)
	if err := fx.verify(t, fx.flow, "j2", bob, c); !errors.Is(err, flows.ErrWrongResponse) || attemptsLeft(err) != 4 {
		t.Fatalf("replay: %v", err)
	}
	stored, err := fx.st.Factor(t.Context(), fa.ID)
	if err != nil || stored.Counter != now.Unix()/30 || !stored.LastUsedAt.Equal(now) {
		t.Fatalf("counter %d (want %d), last used %v: %v", stored.Counter, now.Unix()/30, stored.LastUsedAt, err)
	}

	// The next step's code is accepted; then the current one (earlier than
	// an accepted step) is refused even though it is in the window.
	fx.begin(t, fx.flow, "j3", bob)
	if err := fx.verify(t, fx.flow, "j3", bob, code(t, bobSecret, now.Add(30*time.Second))); err != nil {
		t.Fatalf("next step: %v", err)
	}
	fx.begin(t, fx.flow, "j4", bob)
	if err := fx.verify(t, fx.flow, "j4", bob, c); !errors.Is(err, flows.ErrWrongResponse) {
		t.Fatalf("earlier step after a later one: %v", err)
	}
	if err := fx.verify(t, fx.flow, "j4", bob, code(t, bobSecret, now.Add(-30*time.Second))); !errors.Is(err, flows.ErrWrongResponse) {
		t.Fatalf("previous step after a later one: %v", err)
	}
	// A verified challenge is used up.
	if err := fx.verify(t, fx.flow, "j1", bob, code(t, bobSecret, now.Add(60*time.Second))); !errors.Is(err, flows.ErrUsed) {
		t.Fatalf("second verify on a used challenge: %v", err)
	}
}

func TestExhaustion(t *testing.T) {
	fx := setup(t)
	bob := flows.Subject{UserID: "bob"}
	fx.addUser(t, bob.UserID, bobSecret)
	fx.begin(t, fx.flow, "j1", bob)
	wrong := wrongCode(t, bobSecret, fx.env.Now())
	for left := 4; left >= 1; left-- {
		if err := fx.verify(t, fx.flow, "j1", bob, wrong); !errors.Is(err, flows.ErrWrongResponse) || attemptsLeft(err) != left {
			t.Fatalf("want %d left, got %v", left, err)
		}
	}
	if err := fx.verify(t, fx.flow, "j1", bob, wrong); !errors.Is(err, flows.ErrExhausted) {
		t.Fatalf("fifth wrong code: %v", err)
	}
	right := code(t, bobSecret, fx.env.Now())
	if err := fx.verify(t, fx.flow, "j1", bob, right); !errors.Is(err, flows.ErrExhausted) {
		t.Fatalf("right code after exhaustion: %v", err)
	}
	// The dead challenge was checked first: the code's step is not burned.
	if err := fx.flow.Check(t.Context(), fx.st, bob.UserID, right); err != nil {
		t.Fatalf("check after exhaustion: %v", err)
	}
	// Beginning again, even after the challenge expired, resets nothing.
	fx.begin2(t, "j1", bob)
	fx.env.Advance(totp.ChallengeTTL)
	fx.begin2(t, "j1", bob)
	if err := fx.verify(t, fx.flow, "j1", bob, code(t, bobSecret, fx.env.Now())); !errors.Is(err, flows.ErrExhausted) {
		t.Fatalf("right code after a new begin: %v", err)
	}
}

// begin2 begins again in an existing journey.
func (fx *fixture) begin2(t *testing.T, journeyID string, s flows.Subject) {
	t.Helper()
	err := fx.st.Atomic(t.Context(), func(tx store.Tx) error {
		return fx.flow.Begin(t.Context(), flows.BeginRequest{Tx: tx, Env: fx.env, JourneyID: journeyID, Subject: s, Resend: true})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestBeginKeepsLiveChallenge(t *testing.T) {
	fx := setup(t)
	bob := flows.Subject{UserID: "bob"}
	fx.addUser(t, bob.UserID, bobSecret)
	fx.begin(t, fx.flow, "j1", bob)
	c, err := fx.st.LatestChallenge(t.Context(), "j1", totp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxAttempts != 5 || !c.ExpiresAt.Equal(start.Add(5*time.Minute)) || len(c.CodeHash) != 32 || len(c.TokenHash) != 0 {
		t.Fatalf("challenge %+v", c)
	}
	_ = fx.verify(t, fx.flow, "j1", bob, wrongCode(t, bobSecret, fx.env.Now()))
	fx.begin2(t, "j1", bob)
	if n := fx.attempts(t, "j1"); n != 1 {
		t.Fatalf("attempts after a second begin: %d", n)
	}
	fx.env.Advance(totp.ChallengeTTL)
	if err := fx.verify(t, fx.flow, "j1", bob, code(t, bobSecret, fx.env.Now())); !errors.Is(err, flows.ErrExpired) {
		t.Fatalf("expired challenge: %v", err)
	}
	fx.begin2(t, "j1", bob)
	if n := fx.attempts(t, "j1"); n != 1 {
		t.Fatalf("attempts of the replacing challenge: %d", n)
	}
	if err := fx.verify(t, fx.flow, "j1", bob, code(t, bobSecret, fx.env.Now())); err != nil {
		t.Fatalf("right code on the new challenge: %v", err)
	}
	if err := fx.verify(t, fx.flow, "nobody", bob, code(t, bobSecret, fx.env.Now())); !errors.Is(err, flows.ErrNoChallenge) {
		t.Fatalf("journey without challenge: %v", err)
	}
}

func TestMalformedNotCounted(t *testing.T) {
	fx := setup(t)
	bob := flows.Subject{UserID: "bob"}
	fx.addUser(t, bob.UserID, bobSecret)
	fx.begin(t, fx.flow, "j1", bob)
	for _, in := range []string{"", "12345", "1234567", "12345a", "12-3456", "１２３４５６", strings.Repeat(" ", 30) + "123456"} {
		if err := fx.verify(t, fx.flow, "j1", bob, in); !errors.Is(err, flows.ErrMalformed) {
			t.Fatalf("%q: %v", in, err)
		}
	}
	if n := fx.attempts(t, "j1"); n != 0 {
		t.Fatalf("malformed codes counted: %d", n)
	}
	c := code(t, bobSecret, fx.env.Now())
	if err := fx.verify(t, fx.flow, "j1", bob, " "+c[:3]+" "+c[3:]+" "); err != nil {
		t.Fatalf("code with spaces: %v", err)
	}
}

func TestDecoy(t *testing.T) {
	fx := setup(t)
	fx.addUser(t, "bob", bobSecret)
	decoy := flows.Subject{}
	if opts, err := fx.flow.Options(t.Context(), decoy); err != nil || len(opts) != 0 {
		t.Fatalf("decoy options: %v %v", opts, err)
	}
	fx.begin(t, fx.flow, "j1", decoy)
	for left := 4; left >= 1; left-- {
		// Even a code that is right for some user.
		if err := fx.verify(t, fx.flow, "j1", decoy, code(t, bobSecret, fx.env.Now())); !errors.Is(err, flows.ErrWrongResponse) || attemptsLeft(err) != left {
			t.Fatalf("decoy: %v", err)
		}
	}
	if err := fx.verify(t, fx.flow, "j1", decoy, "123456"); !errors.Is(err, flows.ErrExhausted) {
		t.Fatalf("decoy exhausted: %v", err)
	}
}

func TestSecretSealed(t *testing.T) {
	fx := setup(t)
	e, err := fx.flow.Enroll(t.Context(), "alice", "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	fa, err := fx.flow.Confirm(t.Context(), fx.st, e.Token, code(t, e.Secret, fx.env.Now()), "Phone")
	if err != nil {
		t.Fatal(err)
	}
	seeded := fx.addUser(t, "bob", bobSecret)
	for _, c := range []struct {
		id     string
		secret string
	}{{fa.ID, e.Secret}, {seeded.ID, bobSecret}} {
		stored, err := fx.st.Factor(t.Context(), c.id)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(c.secret)
		if err != nil {
			t.Fatal(err)
		}
		for _, field := range [][]byte{stored.Secret, stored.Data, []byte(stored.Name), []byte(stored.ID)} {
			if bytes.Contains(field, raw) || bytes.Contains(bytes.ToUpper(field), []byte(c.secret)) {
				t.Fatalf("factor %s stores its secret in clear", c.id)
			}
		}
		if len(stored.Secret) != len(raw)+8+12+16 {
			t.Fatalf("sealed secret has %d bytes", len(stored.Secret))
		}
	}
	// Bound to user and factor: bob's sealed secret in mallory's factor
	// does not open (a fault, nothing verified).
	bob, _ := fx.st.Factor(t.Context(), seeded.ID)
	if err := fx.st.CreateFactor(t.Context(), store.Factor{ID: "copied", UserID: "mallory", Flow: totp.ID, Name: "x", Secret: bob.Secret, CreatedAt: start}); err != nil {
		t.Fatal(err)
	}
	if err := fx.flow.Check(t.Context(), fx.st, "mallory", code(t, bobSecret, fx.env.Now())); err == nil || errors.Is(err, flows.ErrWrongResponse) {
		t.Fatalf("copied secret: %v", err)
	}
}

func TestKeyRotation(t *testing.T) {
	fx := setup(t)
	oldKey := fx.key
	fx.addUser(t, "bob", bobSecret)

	rotated := fx.newFlow(t, newKey(), oldKey)
	if err := rotated.Check(t.Context(), fx.st, "bob", code(t, bobSecret, fx.env.Now())); err != nil {
		t.Fatalf("old key second: %v", err)
	}
	// New factors are sealed with the new key: the old key alone cannot
	// open them.
	if _, err := rotated.AddSecret(t.Context(), fx.st, "carol", "", bobSecret); err != nil {
		t.Fatal(err)
	}
	if err := fx.flow.Check(t.Context(), fx.st, "carol", code(t, bobSecret, fx.env.Now())); err == nil || errors.Is(err, flows.ErrWrongResponse) {
		t.Fatalf("old-key flow on a new factor: %v", err)
	}
	// Dropping the old key too early is a fault, not a wrong code, and it
	// counts nothing in a journey.
	dropped := fx.newFlow(t, newKey())
	bob := flows.Subject{UserID: "bob"}
	fx.begin(t, dropped, "j1", bob)
	err := fx.verify(t, dropped, "j1", bob, code(t, bobSecret, fx.env.Now().Add(30*time.Second)))
	if err == nil || errors.Is(err, flows.ErrWrongResponse) || fx.attempts(t, "j1") != 0 {
		t.Fatalf("retired key: %v", err)
	}
}

func TestEnrollConfirm(t *testing.T) {
	fx := setup(t)
	e, err := fx.flow.Enroll(t.Context(), "alice", "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Secret) != 32 || !e.ExpiresAt.Equal(start.Add(10*time.Minute).Truncate(time.Second)) {
		t.Fatalf("secret %q, expires %v", e.Secret, e.ExpiresAt)
	}
	u, err := url.Parse(e.URL)
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || u.Query().Get("secret") != e.Secret ||
		u.Query().Get("issuer") != "sspr" || !strings.HasSuffix(u.Path, "sspr:alice@example.com") {
		t.Fatalf("URL %q: %v", e.URL, err)
	}
	img, err := png.Decode(bytes.NewReader(e.QR))
	if err != nil || img.Bounds().Dx() != 256 || img.Bounds().Dy() != 256 {
		t.Fatalf("QR: %v", err)
	}
	if strings.Contains(e.Token, e.Secret) || strings.Contains(e.Token, "alice") {
		t.Fatal("token shows its content")
	}
	if got := slog.AnyValue(e).Resolve().String(); strings.Contains(got, e.Secret) {
		t.Fatalf("enrolment logs its secret: %s", got)
	}

	factors := func() int {
		fs, err := fx.st.Factors(t.Context(), "alice", totp.ID)
		if err != nil {
			t.Fatal(err)
		}
		return len(fs)
	}
	tampered := []byte(e.Token)
	tampered[len(tampered)/2] ^= 1
	tests := []struct {
		name  string
		token string
		code  string
		want  error
	}{
		{"wrong code", e.Token, wrongCode(t, e.Secret, fx.env.Now()), flows.ErrWrongResponse},
		{"malformed code", e.Token, "12345", flows.ErrMalformed},
		{"tampered token", string(tampered), code(t, e.Secret, fx.env.Now()), flows.ErrMalformed},
		{"garbage token", "not a token", code(t, e.Secret, fx.env.Now()), flows.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := fx.flow.Confirm(t.Context(), fx.st, tt.token, tt.code, ""); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if n := factors(); n != 0 {
				t.Fatalf("failed confirm stored %d factors", n)
			}
		})
	}
	if _, err := fx.flow.Confirm(t.Context(), fx.st, e.Token, code(t, e.Secret, fx.env.Now()), strings.Repeat("x", 65)); !errors.Is(err, flows.ErrMalformed) || factors() != 0 {
		t.Fatalf("long name: %v", err)
	}

	c := code(t, e.Secret, fx.env.Now())
	fa, err := fx.flow.Confirm(t.Context(), fx.st, e.Token, c, "  ")
	if err != nil {
		t.Fatal(err)
	}
	if fa.UserID != "alice" || fa.Name != totp.DefaultName || fa.Flow != "totp" || factors() != 1 {
		t.Fatalf("factor %+v", fa)
	}
	// Confirm used the code's step.
	if err := fx.flow.Check(t.Context(), fx.st, "alice", c); !errors.Is(err, flows.ErrWrongResponse) {
		t.Fatalf("confirm code reused: %v", err)
	}
	// A token confirms once.
	if _, err := fx.flow.Confirm(t.Context(), fx.st, e.Token, code(t, e.Secret, fx.env.Now().Add(30*time.Second)), ""); !errors.Is(err, flows.ErrUsed) || factors() != 1 {
		t.Fatalf("token reused: %v", err)
	}
	// The enrolled app verifies in a journey.
	alice := flows.Subject{UserID: "alice"}
	fx.begin(t, fx.flow, "j1", alice)
	if err := fx.verify(t, fx.flow, "j1", alice, code(t, e.Secret, fx.env.Now().Add(30*time.Second))); err != nil {
		t.Fatalf("verify enrolled: %v", err)
	}

	// A token expires.
	e2, err := fx.flow.Enroll(t.Context(), "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := url.Parse(e2.URL); !strings.HasSuffix(u.Path, "sspr:alice") {
		t.Fatalf("default account: %q", e2.URL)
	}
	fx.env.Advance(10 * time.Minute)
	if _, err := fx.flow.Confirm(t.Context(), fx.st, e2.Token, code(t, e2.Secret, fx.env.Now()), ""); !errors.Is(err, flows.ErrExpired) || factors() != 1 {
		t.Fatalf("expired token: %v", err)
	}
	// A token of another flow's keys does not open.
	other := fx.newFlow(t, newKey())
	e3, _ := other.Enroll(t.Context(), "alice", "")
	if _, err := fx.flow.Confirm(t.Context(), fx.st, e3.Token, code(t, e3.Secret, fx.env.Now()), ""); !errors.Is(err, flows.ErrMalformed) {
		t.Fatalf("foreign token: %v", err)
	}
}

func TestCheck(t *testing.T) {
	fx := setup(t)
	fx.addUser(t, "bob", bobSecret)
	c := code(t, bobSecret, fx.env.Now())
	tests := []struct {
		name, user, code string
		want             error
	}{
		{"right", "bob", c, nil},
		{"replayed", "bob", c, flows.ErrWrongResponse},
		{"previous step after a later one", "bob", code(t, bobSecret, fx.env.Now().Add(-30*time.Second)), flows.ErrWrongResponse},
		{"wrong", "bob", wrongCode(t, bobSecret, fx.env.Now()), flows.ErrWrongResponse},
		{"malformed", "bob", "abc", flows.ErrMalformed},
		{"no authenticator", "carol", c, flows.ErrWrongResponse},
		{"empty user", "", c, flows.ErrWrongResponse},
		{"next step", "bob", code(t, bobSecret, fx.env.Now().Add(30*time.Second)), nil},
		{"next step replayed", "bob", code(t, bobSecret, fx.env.Now().Add(30*time.Second)), flows.ErrWrongResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := fx.flow.Check(t.Context(), fx.st, tt.user, tt.code)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	// Time moves on: the following step is new.
	fx.env.Advance(60 * time.Second)
	if err := fx.flow.Check(t.Context(), fx.st, "bob", code(t, bobSecret, fx.env.Now())); err != nil {
		t.Fatalf("later step: %v", err)
	}
}

func TestConcurrentVerify(t *testing.T) {
	fx := setup(t)
	bob := flows.Subject{UserID: "bob"}
	fx.addUser(t, bob.UserID, bobSecret)
	const n = 20
	for i := range n {
		fx.begin(t, fx.flow, "j"+string(rune('a'+i)), bob)
	}
	c := code(t, bobSecret, fx.env.Now())
	var (
		wg          sync.WaitGroup
		mu          sync.Mutex
		wins, wrong int
	)
	for i := range n {
		wg.Go(func() {
			var verr error
			err := fx.st.Atomic(t.Context(), func(tx store.Tx) error {
				verr = fx.flow.Verify(t.Context(), flows.VerifyRequest{Tx: tx, Env: fx.env, JourneyID: "j" + string(rune('a'+i)), Subject: bob, Form: url.Values{"code": {c}}})
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
}

func TestOptionsAndLimits(t *testing.T) {
	fx := setup(t)
	if opts, err := fx.flow.Options(t.Context(), flows.Subject{UserID: "bob"}); err != nil || len(opts) != 0 {
		t.Fatalf("no factors: %v %v", opts, err)
	}
	a := fx.addUser(t, "bob", bobSecret)
	fx.env.Advance(time.Second)
	b, err := fx.flow.AddSecret(t.Context(), fx.st, "bob", "Work phone", "jbsw y3dp ehpk 3pxp====")
	if err != nil {
		t.Fatal(err)
	}
	opts, err := fx.flow.Options(t.Context(), flows.Subject{UserID: "bob"})
	want := []flows.Option{{Flow: "totp", Ref: a.ID, Hint: totp.DefaultName}, {Flow: "totp", Ref: b.ID, Hint: "Work phone"}}
	if err != nil || len(opts) != 2 || opts[0] != want[0] || opts[1] != want[1] {
		t.Fatalf("options %+v: %v", opts, err)
	}
	for range totp.MaxFactors - 2 {
		fx.addUser(t, "bob", bobSecret)
	}
	if _, err := fx.flow.AddSecret(t.Context(), fx.st, "bob", "", bobSecret); !errors.Is(err, totp.ErrTooManyFactors) {
		t.Fatalf("sixth factor: %v", err)
	}
	for _, bad := range []string{"", "JBSWY3DP", "not base32!", strings.Repeat("A", 200)} {
		if _, err := fx.flow.AddSecret(t.Context(), fx.st, "carol", "", bad); !errors.Is(err, flows.ErrMalformed) {
			t.Fatalf("secret %q: %v", bad, err)
		}
	}
}

func TestPromptAndKind(t *testing.T) {
	fx := setup(t)
	want := flows.Prompt{Page: "code", Heading: "totp.heading", Label: "totp.label",
		InputMode: "numeric", Autocomplete: "one-time-code", MaxLength: 8, Choice: "totp.choice", Section: "totp.section", Add: "totp.add"}
	if got := fx.flow.Prompt(); got != want {
		t.Fatalf("prompt %+v", got)
	}
	if fx.flow.ID() != "totp" || fx.flow.Kind() != flows.KindBound {
		t.Fatal("id or kind")
	}
}

func TestNormalizeCode(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"123456", "123456", true},
		{"123 456", "123456", true},
		{"\t123456 ", "123456", true},
		{"12345", "", false},
		{"1234567", "", false},
		{"123-456", "", false},
		{"12345x", "", false},
		{"١٢٣٤٥٦", "", false},
		{strings.Repeat(" ", 40) + "123456", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got, ok := totp.NormalizeCode(tt.in); got != tt.want || ok != tt.ok {
				t.Fatalf("got %q %v", got, ok)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  totp.Config
		want string
	}{
		{"empty", totp.Config{},
			"totp: config: field 'Store': required\ntotp: config: field 'Keys': required"},
		{"bad values", totp.Config{Keys: [][]byte{make([]byte, 16)}, Issuer: "a:b", Skew: 2},
			"totp: config: field 'Store': required\n" +
				"totp: config: field 'Keys': seal: key 0: must be 32 bytes, got 16\n" +
				"totp: config: field 'Issuer': must not contain ':'\n" +
				"totp: config: field 'Skew': must be at most 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := totp.New(tt.cfg)
			if err == nil || err.Error() != tt.want || f != nil {
				t.Fatalf("got %v", err)
			}
		})
	}
	keys := [][]byte{newKey()}
	cfg := totp.Config{Store: openStore(t), Keys: keys}
	if _, err := totp.New(cfg); err != nil || cfg.Issuer != "" || cfg.Skew != 0 || len(cfg.Keys) != 1 {
		t.Fatalf("New changed the caller's config or failed: %v", err)
	}
}
