package email_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/email"
	"github.com/sspr-go/sspr/flows/flowtest"
	"github.com/sspr-go/sspr/plugin/store"
	"github.com/sspr-go/sspr/plugin/store/sqlite"
)

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Config{Path: filepath.Join(t.TempDir(), "e.db")}.Open(t.Context(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

var alice = flows.Subject{UserID: "u1", Emails: []string{"alice@example.com", "a2@example.org"}}

// begin starts a journey and returns the link token and code it mailed.
func begin(t *testing.T, f *email.Flow, st store.Store, env *flowtest.Env, journeyID string, s flows.Subject, ref string) (token, code string) {
	t.Helper()
	now := env.Now()
	if err := st.CreateJourney(t.Context(), store.Journey{ID: journeyID, UserID: s.UserID, CreatedAt: now, ExpiresAt: now.Add(15 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	err := st.Atomic(t.Context(), func(tx store.Tx) error {
		return f.Begin(t.Context(), flows.BeginRequest{Tx: tx, Env: env, JourneyID: journeyID, Subject: s, Option: flows.Option{Flow: "email", Ref: ref}})
	})
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	q := env.Queued()
	d := q[len(q)-1].Data.(email.ResetData)
	u, err := url.Parse(d.Link)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("token"), d.Code
}

func verify(t *testing.T, f *email.Flow, st store.Store, env *flowtest.Env, journeyID, code string) error {
	t.Helper()
	var verr error
	err := st.Atomic(t.Context(), func(tx store.Tx) error {
		verr = f.Verify(t.Context(), flows.VerifyRequest{Tx: tx, Env: env, JourneyID: journeyID, Form: url.Values{"code": {code}}})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return verr
}

func TestBeginMailsLinkAndCode(t *testing.T) {
	st := openStore(t)
	env := flowtest.NewEnv(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	f, _ := email.New(email.Config{})
	token, code := begin(t, f, st, env, "j1", alice, "1")
	m := env.Queued()[0]
	if m.To != "a2@example.org" || m.Template != "reset" || m.Channel != "email" {
		t.Fatalf("message %+v", m)
	}
	if len(code) != 8 || strings.Trim(code, "0123456789") != "" {
		t.Fatalf("code %q is not 8 digits", code)
	}
	raw, err := base64URLDecode(token)
	if err != nil || len(raw) < 16 {
		t.Fatalf("token %q has %d bytes (want >= 16): %v", token, len(raw), err)
	}
	// Only the hash of the token is stored, and the code only keyed.
	c, err := st.LatestChallenge(t.Context(), "j1", "email")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(token))
	if !bytes.Equal(c.TokenHash, sum[:]) || bytes.Contains(c.CodeHash, []byte(code)) || bytes.Contains(c.Data, []byte(token)) {
		t.Fatalf("challenge stores secrets: %+v", c)
	}
	if !c.ExpiresAt.Equal(env.Now().Add(10*time.Minute)) || c.MaxAttempts != 5 {
		t.Fatalf("challenge lifetime/attempts: %v %d", c.ExpiresAt, c.MaxAttempts)
	}
}

func TestDecoyQueuesNothingDeliverable(t *testing.T) {
	st := openStore(t)
	env := flowtest.NewEnv(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	f, _ := email.New(email.Config{})
	_, code := begin(t, f, st, env, "j1", flows.Subject{}, "")
	if m := env.Queued()[0]; m.To != "" {
		t.Fatalf("decoy message has recipient %q", m.To)
	}
	// Its code cannot be used by anyone who guesses: it exists, but the
	// journey is a decoy; the flow still verifies codes normally, so the
	// plugin's policy (no user) is what keeps a decoy from completing.
	if err := verify(t, f, st, env, "j1", code); err != nil {
		t.Fatalf("decoy challenge behaves differently: %v", err)
	}
}

func TestVerifyCode(t *testing.T) {
	st := openStore(t)
	env := flowtest.NewEnv(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	f, _ := email.New(email.Config{})
	_, code := begin(t, f, st, env, "j1", alice, "0")
	wrong := "00000000"
	if wrong == code {
		wrong = "99999999"
	}
	err := verify(t, f, st, env, "j1", wrong)
	var ve *flows.VerifyError
	if !errors.Is(err, flows.ErrWrongResponse) || !errors.As(err, &ve) || ve.AttemptsLeft != 4 {
		t.Fatalf("wrong code: %v", err)
	}
	if err := verify(t, f, st, env, "j1", "12-34"); !errors.Is(err, flows.ErrMalformed) {
		t.Fatalf("malformed: %v", err)
	}
	if err := verify(t, f, st, env, "j1", code[:4]+"-"+code[4:]); err != nil {
		t.Fatalf("right code: %v", err)
	}
	if err := verify(t, f, st, env, "j1", code); !errors.Is(err, flows.ErrUsed) {
		t.Fatalf("code reused: %v", err)
	}
}

func TestLinkPeekDoesNotConsume(t *testing.T) {
	st := openStore(t)
	env := flowtest.NewEnv(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	f, _ := email.New(email.Config{})
	token, _ := begin(t, f, st, env, "j1", alice, "0")
	for range 3 {
		if jid, err := f.PeekLink(t.Context(), st, env, token); err != nil || jid != "j1" {
			t.Fatalf("peek: %q %v", jid, err)
		}
	}
	if jid, err := f.RedeemLink(t.Context(), st, env, token); err != nil || jid != "j1" {
		t.Fatalf("redeem: %q %v", jid, err)
	}
	if _, err := f.PeekLink(t.Context(), st, env, token); !errors.Is(err, flows.ErrUsed) {
		t.Fatalf("peek after redeem: %v", err)
	}
	if _, err := f.RedeemLink(t.Context(), st, env, token); !errors.Is(err, flows.ErrUsed) {
		t.Fatalf("second redeem: %v", err)
	}
	for _, bad := range []string{"", "x", strings.Repeat("A", 43) + "'", strings.Repeat("A", 500)} {
		if _, err := f.PeekLink(t.Context(), st, env, bad); !errors.Is(err, flows.ErrNoChallenge) {
			t.Fatalf("hostile token %q: %v", bad, err)
		}
	}
}

func TestConcurrentRedemptionsOneWins(t *testing.T) {
	st := openStore(t)
	env := flowtest.NewEnv(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	f, _ := email.New(email.Config{})
	token, _ := begin(t, f, st, env, "j1", alice, "0")
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, used := 0, 0
	for range 20 {
		wg.Go(func() {
			_, err := f.RedeemLink(t.Context(), st, env, token)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, flows.ErrUsed):
				used++
			default:
				t.Errorf("redeem: %v", err)
			}
		})
	}
	wg.Wait()
	if wins != 1 || used != 19 {
		t.Fatalf("wins %d, used %d", wins, used)
	}
}

func TestExpiry(t *testing.T) {
	st := openStore(t)
	env := flowtest.NewEnv(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	f, _ := email.New(email.Config{})
	token, code := begin(t, f, st, env, "j1", alice, "0")
	env.Advance(10 * time.Minute)
	if _, err := f.PeekLink(t.Context(), st, env, token); !errors.Is(err, flows.ErrExpired) {
		t.Fatalf("expired link: %v", err)
	}
	if err := verify(t, f, st, env, "j1", code); !errors.Is(err, flows.ErrExpired) {
		t.Fatalf("expired code: %v", err)
	}
}

func TestNormalizeCodeAndMask(t *testing.T) {
	codes := []struct {
		in   string
		want string
		ok   bool
	}{
		{"12345678", "12345678", true},
		{" 1234 5678 ", "12345678", true},
		{"1234-5678", "12345678", true},
		{"1234567", "", false},
		{"123456789", "", false},
		{"1234567a", "", false},
		{"１２３４５６７８", "", false}, // full-width digits are not ASCII digits
		{strings.Repeat(" ", 100) + "12345678", "", false},
	}
	for _, c := range codes {
		got, ok := email.NormalizeCode(c.in, 8)
		if got != c.want || ok != c.ok {
			t.Errorf("NormalizeCode(%q) = %q %v", c.in, got, ok)
		}
	}
	masks := map[string]string{"alice@example.com": "a•••@example.com", "émile@x.fr": "é•••@x.fr", "nobody": "•••", "@x": "•••"}
	for in, want := range masks {
		if got := email.Mask(in); got != want {
			t.Errorf("Mask(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConfig(t *testing.T) {
	_, err := email.New(email.Config{CodeTTL: time.Second, CodeLength: 4, MaxAttempts: 50, MaxResends: -1})
	want := "email: config: field 'CodeTTL': must be between 1m and 10m (ASVS V6.5.5)\n" +
		"email: config: field 'CodeLength': must be between 6 and 10\n" +
		"email: config: field 'MaxAttempts': must be between 1 and 10\n" +
		"email: config: field 'MaxResends': must be between 0 and 10"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v", err)
	}
}

func base64URLDecode(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(s)
}

// TestStepUpMessage: a step-up journey's email is the "stepup" template,
// whose code verifies like a reset's.
func TestStepUpMessage(t *testing.T) {
	st := openStore(t)
	env := flowtest.NewEnv(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	f, _ := email.New(email.Config{})
	now := env.Now()
	if err := st.CreateJourney(t.Context(), store.Journey{ID: "j1", UserID: alice.UserID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	err := st.Atomic(t.Context(), func(tx store.Tx) error {
		return f.Begin(t.Context(), flows.BeginRequest{Tx: tx, Env: env, JourneyID: "j1", Subject: alice, Option: flows.Option{Flow: "email", Ref: "0"}, StepUp: true})
	})
	if err != nil {
		t.Fatal(err)
	}
	m := env.Queued()[0]
	if m.Template != "stepup" || m.To != alice.Emails[0] {
		t.Fatalf("step-up message: %+v", m)
	}
	code := m.Data.(email.ResetData).Code
	err = st.Atomic(t.Context(), func(tx store.Tx) error {
		return f.Verify(t.Context(), flows.VerifyRequest{Tx: tx, Env: env, JourneyID: "j1", Subject: alice, Form: url.Values{"code": {code}}})
	})
	if err != nil {
		t.Fatalf("verify the step-up code: %v", err)
	}
}

// TestCodeSurvivesKeyRotation: a code mailed before the keys rotated works
// while the old key is still configured (second), and a wrong code is
// counted once, not once per key; with the old key retired it is refused.
func TestCodeSurvivesKeyRotation(t *testing.T) {
	st := openStore(t)
	env := flowtest.NewEnv(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	f, _ := email.New(email.Config{})
	k1, k2 := []byte("key one, 32 bytes long at least!"), []byte("key two, 32 bytes long at least!")
	env.SetKeys(k1)
	_, code := begin(t, f, st, env, "j1", alice, "0")
	_, code2 := begin(t, f, st, env, "j2", alice, "0")
	env.SetKeys(k2, k1)
	wrong := "00000000"
	if wrong == code {
		wrong = "99999999"
	}
	var ve *flows.VerifyError
	if err := verify(t, f, st, env, "j1", wrong); !errors.As(err, &ve) || ve.AttemptsLeft != 4 {
		t.Fatalf("wrong code after the rotation: %v (want 4 tries left: counted once)", err)
	}
	if err := verify(t, f, st, env, "j1", code); err != nil {
		t.Fatalf("code mailed under the old key: %v", err)
	}
	env.SetKeys(k2)
	if err := verify(t, f, st, env, "j2", code2); !errors.Is(err, flows.ErrWrongResponse) {
		t.Fatalf("code under a retired key: %v", err)
	}
}
