package webauthn_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gowebauthn "github.com/go-webauthn/webauthn/webauthn"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/flowtest"
	"github.com/sspr-go/sspr/flows/webauthn"
	"github.com/sspr-go/sspr/flows/webauthn/webauthntest"
	"github.com/sspr-go/sspr/plugin/store"
	"github.com/sspr-go/sspr/plugin/store/sqlite"
)

const (
	rpID   = "id.example"
	origin = "https://id.example"
)

var (
	alice = flows.Subject{UserID: "u-alice", Emails: []string{"alice@example.com"}}
	bob   = flows.Subject{UserID: "u-bob", Emails: []string{"bob@example.com"}}
)

// fixture is a flow on a fresh SQLite store with a test clock.
type fixture struct {
	t   *testing.T
	st  store.Store
	env *flowtest.Env
	f   *webauthn.Flow
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := sqlite.Config{Path: filepath.Join(t.TempDir(), "w.db")}.Open(t.Context(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	env := flowtest.NewEnv(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	f, err := webauthn.New(webauthn.Config{Store: st, RPID: rpID, RPOrigins: []string{origin}, Now: env.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, st: st, env: env, f: f}
}

// register enrols a's credential for userID with label and returns the
// stored factor.
func (x *fixture) register(userID string, a *webauthntest.Authenticator, label string) store.Factor {
	x.t.Helper()
	opts, sess, err := x.f.BeginRegistration(x.t.Context(), userID, userID+"@example.com", "")
	if err != nil {
		x.t.Fatalf("begin registration: %v", err)
	}
	resp, err := a.Create(opts)
	if err != nil {
		x.t.Fatalf("authenticator create: %v", err)
	}
	fac, err := x.f.FinishRegistration(x.t.Context(), x.st, userID, sess, resp, label, x.env.Now())
	if err != nil {
		x.t.Fatalf("finish registration: %v", err)
	}
	return fac
}

// begin starts journey jid for s and returns the options the page gets.
func (x *fixture) begin(jid string, s flows.Subject) []byte {
	x.t.Helper()
	now := x.env.Now()
	if err := x.st.CreateJourney(x.t.Context(), store.Journey{ID: jid, UserID: s.UserID, CreatedAt: now, ExpiresAt: now.Add(15 * time.Minute)}); err != nil && !errors.Is(err, store.ErrConflict) {
		x.t.Fatal(err)
	}
	err := x.st.Atomic(x.t.Context(), func(tx store.Tx) error {
		return x.f.Begin(x.t.Context(), flows.BeginRequest{Tx: tx, Env: x.env, JourneyID: jid, Subject: s, Option: flows.Option{Flow: webauthn.ID}})
	})
	if err != nil {
		x.t.Fatalf("begin: %v", err)
	}
	opts, err := x.f.AssertionOptions(x.t.Context(), x.st, jid)
	if err != nil {
		x.t.Fatalf("assertion options: %v", err)
	}
	return opts
}

// verify posts assertion for journey jid the way the engine does.
func (x *fixture) verify(jid string, s flows.Subject, assertion []byte) error {
	x.t.Helper()
	var verr error
	err := x.st.Atomic(x.t.Context(), func(tx store.Tx) error {
		verr = x.f.Verify(x.t.Context(), flows.VerifyRequest{Tx: tx, Env: x.env, JourneyID: jid, Subject: s, Form: url.Values{"assertion": {string(assertion)}}})
		return nil
	})
	if err != nil {
		x.t.Fatal(err)
	}
	return verr
}

func (x *fixture) factor(id string) store.Factor {
	x.t.Helper()
	fa, err := x.st.Factor(x.t.Context(), id)
	if err != nil {
		x.t.Fatal(err)
	}
	return fa
}

func (x *fixture) challenge(jid string) store.Challenge {
	x.t.Helper()
	c, err := x.st.LatestChallenge(x.t.Context(), jid, webauthn.ID)
	if err != nil {
		x.t.Fatal(err)
	}
	return c
}

func get(t *testing.T, a *webauthntest.Authenticator, opts []byte, o ...webauthntest.Option) []byte {
	t.Helper()
	resp, err := a.Get(opts, o...)
	if err != nil {
		t.Fatalf("authenticator get: %v", err)
	}
	return resp
}

func wantWrong(t *testing.T, err error, left int) {
	t.Helper()
	var ve *flows.VerifyError
	if !errors.Is(err, flows.ErrWrongResponse) || !errors.As(err, &ve) || ve.AttemptsLeft != left {
		t.Fatalf("got %v, want wrong response with %d attempts left", err, left)
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestNewConfig(t *testing.T) {
	st := &nopStore{}
	ok := webauthn.Config{Store: st, RPID: "example.com", RPOrigins: []string{"https://id.example.com", "https://example.com:8443"}}
	tests := []struct {
		name string
		edit func(*webauthn.Config)
		want string
	}{
		{"ok", func(*webauthn.Config) {}, ""},
		{"localhost over http", func(c *webauthn.Config) { c.RPID, c.RPOrigins = "localhost", []string{"http://localhost:8080"} }, ""},
		{"everything missing", func(c *webauthn.Config) { *c = webauthn.Config{} },
			"webauthn: config: field 'Store': required\n" +
				"webauthn: config: field 'RPID': required\n" +
				"webauthn: config: field 'RPOrigins': required"},
		{"RPID is an IP address", func(c *webauthn.Config) { c.RPID, c.RPOrigins = "127.0.0.1", []string{"https://127.0.0.1"} },
			"webauthn: config: field 'RPID': the value must be a domain and not an IP address"},
		{"RPID with scheme", func(c *webauthn.Config) { c.RPID = "https://example.com" },
			"webauthn: config: field 'RPID': the scheme component must be empty"},
		{"RPID uppercase", func(c *webauthn.Config) { c.RPID = "Example.com" },
			"webauthn: config: field 'RPID': must be lowercase"},
		{"origin with trailing slash", func(c *webauthn.Config) { c.RPOrigins = []string{"https://example.com/"} }, ""},
		{"origin with a query", func(c *webauthn.Config) { c.RPOrigins = []string{"https://example.com?"} },
			"webauthn: config: field 'RPOrigins': \"https://example.com?\" is not an origin (scheme://host[:port])"},
		{"origin not a URL", func(c *webauthn.Config) { c.RPOrigins = []string{"example.com"} },
			"webauthn: config: field 'RPOrigins': \"example.com\" is not an origin (scheme://host[:port])"},
		{"origin on another domain", func(c *webauthn.Config) { c.RPOrigins = []string{"https://evil-example.com"} },
			"webauthn: config: field 'RPOrigins': \"https://evil-example.com\" is not on the domain of the RP ID \"example.com\""},
		{"origin over http", func(c *webauthn.Config) { c.RPOrigins = []string{"http://example.com"} },
			"webauthn: config: field 'RPOrigins': \"http://example.com\" must be https (http only for localhost)"},
		{"origin with a path", func(c *webauthn.Config) { c.RPOrigins = []string{"https://example.com/recovery"} },
			"webauthn: config: field 'RPOrigins': \"https://example.com/recovery\" is not an origin (scheme://host[:port])"},
		{"timeout too short", func(c *webauthn.Config) { c.Timeout = time.Second },
			"webauthn: config: field 'Timeout': must be between 30s and 10m"},
		{"timeout too long", func(c *webauthn.Config) { c.Timeout = time.Hour },
			"webauthn: config: field 'Timeout': must be between 30s and 10m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			cfg.RPOrigins = append([]string(nil), ok.RPOrigins...)
			tt.edit(&cfg)
			before := cfg
			beforeOrigins := append([]string(nil), cfg.RPOrigins...)
			f, err := webauthn.New(cfg)
			if !slices.Equal(cfg.RPOrigins, beforeOrigins) {
				t.Fatal("New modified the caller's RPOrigins")
			}
			if tt.want == "" {
				if err != nil || f == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("New error:\n%v\nwant:\n%s", err, tt.want)
			}
			if cfg.RPID != before.RPID || cfg.Timeout != before.Timeout {
				t.Fatal("New modified the caller's config")
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	f, err := webauthn.New(webauthn.Config{Store: &nopStore{}, RPID: rpID, RPOrigins: []string{origin}})
	if err != nil {
		t.Fatal(err)
	}
	if f.ID() != "webauthn" || f.Kind() != flows.KindBound || f.Timeout() != 5*time.Minute {
		t.Fatalf("ID %q kind %v timeout %v", f.ID(), f.Kind(), f.Timeout())
	}
	want := flows.Prompt{Page: "webauthn", Heading: "webauthn.heading", Choice: "webauthn.choice", Section: "webauthn.section", Add: "webauthn.add"}
	if got := f.Prompt(); got != want {
		t.Fatalf("prompt %+v", got)
	}
}

func TestRegister(t *testing.T) {
	x := newFixture(t)
	ctx := t.Context()
	a := webauthntest.New(origin)

	opts, sess, err := x.f.BeginRegistration(ctx, alice.UserID, "alice@example.com", "Alice")
	if err != nil {
		t.Fatal(err)
	}
	var o struct {
		RP        struct{ ID, Name string }
		User      struct{ ID, Name, DisplayName string }
		Challenge string
		Timeout   int
		Selection struct {
			ResidentKey      string `json:"residentKey"`
			UserVerification string `json:"userVerification"`
		} `json:"authenticatorSelection"`
		Attestation string
		Exclude     []struct{ ID string } `json:"excludeCredentials"`
	}
	if err := json.Unmarshal(opts, &o); err != nil {
		t.Fatal(err)
	}
	if o.RP.ID != rpID || o.RP.Name != "sspr" || o.User.Name != "alice@example.com" || o.User.DisplayName != "Alice" ||
		o.Timeout != 300000 || o.Selection.ResidentKey != "preferred" || o.Selection.UserVerification != "required" ||
		o.Attestation != "none" || len(o.Exclude) != 0 || len(o.Challenge) < 22 {
		t.Fatalf("creation options: %s", opts)
	}
	if bytes.Contains(opts, []byte(alice.UserID)) {
		t.Fatalf("options reveal the user ID: %s", opts)
	}

	resp, err := a.Create(opts)
	if err != nil {
		t.Fatal(err)
	}
	fac, err := x.f.FinishRegistration(ctx, x.st, alice.UserID, sess, resp, "  ", x.env.Now())
	if err != nil {
		t.Fatal(err)
	}
	stored := x.factor(fac.ID)
	var cred gowebauthn.Credential
	if err := json.Unmarshal(stored.Data, &cred); err != nil {
		t.Fatal(err)
	}
	if stored.UserID != alice.UserID || stored.Flow != "webauthn" || stored.Name != webauthn.DefaultLabel || stored.Counter != 0 ||
		!stored.CreatedAt.Equal(x.env.Now()) || len(stored.Secret) != 0 ||
		!bytes.Equal(cred.ID, a.CredentialID()) || len(cred.PublicKey) == 0 || !cred.Flags.UserVerified {
		t.Fatalf("stored factor %+v, credential %+v", stored, cred)
	}

	// The user handle: 32 random bytes, stored once, the one the
	// authenticator got.
	hs, err := x.st.Factors(ctx, alice.UserID, webauthn.UserHandleFlow)
	if err != nil || len(hs) != 1 || len(hs[0].Data) != 32 || !bytes.Equal(hs[0].Data, a.UserHandle()) || b64(hs[0].Data) != o.User.ID {
		t.Fatalf("user handle factors %+v (%v)", hs, err)
	}

	// A second passkey: the first is excluded, the handle is the same.
	opts2, _, err := x.f.BeginRegistration(ctx, alice.UserID, "alice@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Create(opts2); !errors.Is(err, webauthntest.ErrExcluded) {
		t.Fatalf("existing credential not excluded: %v\n%s", err, opts2)
	}
	a2 := webauthntest.New(origin)
	x.env.Advance(time.Minute)
	fac2 := x.register(alice.UserID, a2, "YubiKey")
	if fac2.Name != "YubiKey" || !bytes.Equal(a2.UserHandle(), a.UserHandle()) {
		t.Fatalf("second passkey %+v, handle %x vs %x", fac2, a2.UserHandle(), a.UserHandle())
	}

	got, err := x.f.Options(ctx, alice)
	if err != nil || len(got) != 2 || got[0] != (flows.Option{Flow: "webauthn", Ref: fac.ID, Hint: webauthn.DefaultLabel}) || got[1].Hint != "YubiKey" {
		t.Fatalf("options %+v (%v)", got, err)
	}
	if got, err := x.f.Options(ctx, bob); err != nil || len(got) != 0 {
		t.Fatalf("bob's options %+v (%v)", got, err)
	}
}

func TestRegisterRefusals(t *testing.T) {
	x := newFixture(t)
	ctx := t.Context()
	tests := []struct {
		name   string
		opts   []webauthntest.Option
		user   string // finishing user, default alice
		label  string
		after  time.Duration
		mangle func([]byte) []byte
		want   error
		reason string
	}{
		{name: "user not verified", opts: []webauthntest.Option{webauthntest.WithoutUV()}, want: flows.ErrWrongResponse, reason: "User verification required"},
		{name: "user not present", opts: []webauthntest.Option{webauthntest.WithoutUP()}, want: flows.ErrWrongResponse, reason: "User presence required"},
		{name: "wrong origin", opts: []webauthntest.Option{webauthntest.WithOrigin("https://id.example.evil")}, want: flows.ErrWrongResponse, reason: "origin"},
		{name: "wrong RP ID", opts: []webauthntest.Option{webauthntest.WithRPID("evil.example")}, want: flows.ErrWrongResponse, reason: "RP Hash mismatch"},
		{name: "assertion type", opts: []webauthntest.Option{webauthntest.WithType("webauthn.get")}, want: flows.ErrWrongResponse, reason: "ceremony type"},
		{name: "expired session", after: 5 * time.Minute, want: flows.ErrExpired},
		{name: "another user's session", user: bob.UserID, want: flows.ErrNoChallenge},
		{name: "label too long", label: strings.Repeat("x", 65), want: flows.ErrMalformed},
		{name: "label with control character", label: "a\nb", want: flows.ErrMalformed},
		{name: "garbage response", mangle: func([]byte) []byte { return []byte(`{"id":`) }, want: flows.ErrMalformed},
		{name: "empty response", mangle: func([]byte) []byte { return nil }, want: flows.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := webauthntest.New(origin)
			opts, sess, err := x.f.BeginRegistration(ctx, alice.UserID, "alice", "")
			if err != nil {
				t.Fatal(err)
			}
			resp, err := a.Create(opts, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if tt.mangle != nil {
				resp = tt.mangle(resp)
			}
			user := alice.UserID
			if tt.user != "" {
				user = tt.user
			}
			_, err = x.f.FinishRegistration(ctx, x.st, user, sess, resp, tt.label, x.env.Now().Add(tt.after))
			if !errors.Is(err, tt.want) || !strings.Contains(fmt.Sprint(err), tt.reason) {
				t.Fatalf("got %v, want %v (%s)", err, tt.want, tt.reason)
			}
			if fs, _ := x.st.Factors(ctx, alice.UserID, webauthn.ID); len(fs) != 0 {
				t.Fatalf("a refused registration stored %+v", fs)
			}
		})
	}
}

func TestRegisterTwiceConflicts(t *testing.T) {
	x := newFixture(t)
	a := webauthntest.New(origin)
	x.register(alice.UserID, a, "")
	// The same credential again, for alice (ignoring the exclusion) and
	// for bob: a credential ID is registered once across all users.
	for _, u := range []string{alice.UserID, bob.UserID} {
		opts, sess, err := x.f.BeginRegistration(t.Context(), u, u, "")
		if err != nil {
			t.Fatal(err)
		}
		resp, err := a.Create(opts, webauthntest.IgnoreAllowCredentials())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := x.f.FinishRegistration(t.Context(), x.st, u, sess, resp, "", x.env.Now()); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("%s: second registration of one credential: %v", u, err)
		}
	}
}

func TestConcurrentFirstEnrolmentsShareOneHandle(t *testing.T) {
	x := newFixture(t)
	var wg sync.WaitGroup
	opts := make([][]byte, 8)
	for i := range opts {
		wg.Go(func() {
			o, _, err := x.f.BeginRegistration(t.Context(), alice.UserID, "alice", "")
			if err != nil {
				t.Error(err)
			}
			opts[i] = o
		})
	}
	wg.Wait()
	hs, err := x.st.Factors(t.Context(), alice.UserID, webauthn.UserHandleFlow)
	if err != nil || len(hs) != 1 {
		t.Fatalf("handles %+v (%v)", hs, err)
	}
	for _, o := range opts {
		if !bytes.Contains(o, []byte(`"id":"`+b64(hs[0].Data)+`"`)) {
			t.Fatalf("options with another handle: %s", o)
		}
	}
}

func TestJourneyLogin(t *testing.T) {
	x := newFixture(t)
	a := webauthntest.New(origin)
	fac := x.register(alice.UserID, a, "")

	opts := x.begin("j1", alice)
	var o struct {
		Challenge        string
		Timeout          int
		RPID             string `json:"rpId"`
		UserVerification string
		Allow            []struct{ Type, ID string } `json:"allowCredentials"`
	}
	if err := json.Unmarshal(opts, &o); err != nil {
		t.Fatal(err)
	}
	if o.RPID != rpID || o.UserVerification != "required" || o.Timeout != 300000 || len(o.Allow) != 1 ||
		o.Allow[0].ID != b64(a.CredentialID()) || o.Allow[0].Type != "public-key" || len(o.Challenge) < 22 {
		t.Fatalf("request options: %s", opts)
	}
	c := x.challenge("j1")
	if c.MaxAttempts != 5 || !c.ExpiresAt.Equal(x.env.Now().Add(5*time.Minute)) || len(c.CodeHash) != 32 || bytes.Contains(c.Data, c.CodeHash) {
		t.Fatalf("challenge %+v", c)
	}

	x.env.Advance(time.Minute)
	assertion := get(t, a, opts)
	if err := x.verify("j1", alice, assertion); err != nil {
		t.Fatalf("verify: %v", err)
	}
	got := x.factor(fac.ID)
	var cred gowebauthn.Credential
	if err := json.Unmarshal(got.Data, &cred); err != nil {
		t.Fatal(err)
	}
	if got.Counter != 1 || cred.Authenticator.SignCount != 1 || cred.Authenticator.CloneWarning || !got.LastUsedAt.Equal(x.env.Now()) || !cred.Flags.UserVerified {
		t.Fatalf("factor after login %+v, credential %+v", got, cred.Authenticator)
	}
	if c := x.challenge("j1"); c.UsedAt.IsZero() {
		t.Fatal("challenge not consumed")
	}

	// Single use: the same session (and assertion) again.
	if err := x.verify("j1", alice, assertion); !errors.Is(err, flows.ErrUsed) {
		t.Fatalf("second verify: %v", err)
	}
	if err := x.verify("j1", alice, get(t, a, opts)); !errors.Is(err, flows.ErrUsed) {
		t.Fatalf("second verify, fresh assertion: %v", err)
	}

	// The next journey goes on counting.
	opts2 := x.begin("j2", alice)
	if err := x.verify("j2", alice, get(t, a, opts2)); err != nil {
		t.Fatalf("second journey: %v", err)
	}
	if got := x.factor(fac.ID); got.Counter != 3 {
		t.Fatalf("counter %d, want 3", got.Counter)
	}
}

func TestJourneyRefusals(t *testing.T) {
	x := newFixture(t)
	a := webauthntest.New(origin)
	fac := x.register(alice.UserID, a, "")
	mallory := webauthntest.New(origin) // bob's credential
	x.register(bob.UserID, mallory, "")
	// One successful login so that the stored counter is 1.
	if err := x.verify("warm-up", alice, get(t, a, x.begin("warm-up", alice))); err != nil {
		t.Fatal(err)
	}

	// Each case refuses, then a good assertion passes, so the stored
	// counter grows by one per case.
	tests := []struct {
		name   string
		auth   *webauthntest.Authenticator
		opts   func(stored uint32) []webauthntest.Option
		reason string
	}{
		{"user not verified", a, func(uint32) []webauthntest.Option { return []webauthntest.Option{webauthntest.WithoutUV()} },
			"User verification required"},
		{"user not present", a, func(uint32) []webauthntest.Option { return []webauthntest.Option{webauthntest.WithoutUP()} },
			"User presence required"},
		{"sign count replayed", a, func(n uint32) []webauthntest.Option { return []webauthntest.Option{webauthntest.WithSignCount(n)} },
			"signature counter did not increase"},
		{"sign count regressed", a, func(n uint32) []webauthntest.Option { return []webauthntest.Option{webauthntest.WithSignCount(n - 1)} },
			"signature counter did not increase"},
		{"sign count regressed to zero", a, func(uint32) []webauthntest.Option { return []webauthntest.Option{webauthntest.WithSignCount(0)} },
			"signature counter did not increase"},
		{"wrong origin", a, func(uint32) []webauthntest.Option {
			return []webauthntest.Option{webauthntest.WithOrigin("https://id.example.evil")}
		}, "origin"},
		{"subdomain origin not configured", a, func(uint32) []webauthntest.Option {
			return []webauthntest.Option{webauthntest.WithOrigin("https://other.id.example")}
		}, "origin"},
		{"wrong RP ID", a, func(uint32) []webauthntest.Option {
			return []webauthntest.Option{webauthntest.WithRPID("evil.example")}
		},
			"RP Hash mismatch"},
		{"registration type", a, func(uint32) []webauthntest.Option {
			return []webauthntest.Option{webauthntest.WithType("webauthn.create")}
		},
			"ceremony type"},
		{"another user's credential", mallory, func(uint32) []webauthntest.Option {
			return []webauthntest.Option{webauthntest.IgnoreAllowCredentials()}
		}, "not owned by the user"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jid := "j" + string(rune('a'+i))
			opts := x.begin(jid, alice)
			before := x.factor(fac.ID)
			err := x.verify(jid, alice, get(t, tt.auth, opts, tt.opts(uint32(before.Counter))...))
			wantWrong(t, err, 4)
			if !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("refused for another reason than %q: %v", tt.reason, err)
			}
			if got := x.factor(fac.ID); got.Counter != before.Counter || !bytes.Equal(got.Data, before.Data) || !got.LastUsedAt.Equal(before.LastUsedAt) {
				t.Fatalf("a refused assertion changed the factor: %+v", got)
			}
			if c := x.challenge(jid); c.Attempts != 1 || !c.UsedAt.IsZero() {
				t.Fatalf("challenge after refusal %+v", c)
			}
			// The challenge still works for a good assertion.
			if err := x.verify(jid, alice, get(t, a, opts)); err != nil {
				t.Fatalf("good assertion after a refusal: %v", err)
			}
		})
	}
}

func TestTamperedAssertion(t *testing.T) {
	x := newFixture(t)
	a := webauthntest.New(origin)
	x.register(alice.UserID, a, "")
	opts := x.begin("j1", alice)
	var m map[string]any
	if err := json.Unmarshal(get(t, a, opts), &m); err != nil {
		t.Fatal(err)
	}
	resp := m["response"].(map[string]any)
	sig, _ := base64.RawURLEncoding.DecodeString(resp["signature"].(string))
	sig[len(sig)-1] ^= 1
	resp["signature"] = b64(sig)
	tampered, _ := json.Marshal(m)
	wantWrong(t, x.verify("j1", alice, tampered), 4)

	// Another journey's challenge.
	other := x.begin("j2", alice)
	wantWrong(t, x.verify("j1", alice, get(t, a, other)), 3)
}

func TestExpiredChallenge(t *testing.T) {
	x := newFixture(t)
	a := webauthntest.New(origin)
	x.register(alice.UserID, a, "")
	opts := x.begin("j1", alice)
	x.env.Advance(5 * time.Minute)
	if err := x.verify("j1", alice, get(t, a, opts)); !errors.Is(err, flows.ErrExpired) {
		t.Fatalf("expired challenge: %v", err)
	}
	if c := x.challenge("j1"); c.Attempts != 0 {
		t.Fatalf("expired challenge counted %d attempts", c.Attempts)
	}
}

func TestMalformedNotCounted(t *testing.T) {
	x := newFixture(t)
	a := webauthntest.New(origin)
	x.register(alice.UserID, a, "")
	x.begin("j1", alice)
	for _, bad := range []string{"", "null", "{", `{"id":"x","type":"public-key"}`, strings.Repeat("a", webauthn.MaxResponseSize+1)} {
		if err := x.verify("j1", alice, []byte(bad)); !errors.Is(err, flows.ErrMalformed) {
			t.Fatalf("%.20q: %v", bad, err)
		}
	}
	if c := x.challenge("j1"); c.Attempts != 0 {
		t.Fatalf("malformed responses counted %d attempts", c.Attempts)
	}
	if err := x.verify("nojourney", alice, []byte("{}")); !errors.Is(err, flows.ErrNoChallenge) {
		t.Fatalf("no challenge: %v", err)
	}
	if _, err := x.f.AssertionOptions(t.Context(), x.st, "nojourney"); !errors.Is(err, flows.ErrNoChallenge) {
		t.Fatalf("options without challenge: %v", err)
	}
}

func TestExhausted(t *testing.T) {
	x := newFixture(t)
	a := webauthntest.New(origin)
	x.register(alice.UserID, a, "")
	opts := x.begin("j1", alice)
	for left := 4; left >= 1; left-- {
		wantWrong(t, x.verify("j1", alice, get(t, a, opts, webauthntest.WithoutUV())), left)
	}
	err := x.verify("j1", alice, get(t, a, opts, webauthntest.WithoutUV()))
	if !errors.Is(err, flows.ErrExhausted) || errors.Is(err, flows.ErrWrongResponse) {
		t.Fatalf("fifth failure: %v", err)
	}
	if err := x.verify("j1", alice, get(t, a, opts)); !errors.Is(err, flows.ErrExhausted) {
		t.Fatalf("good assertion after exhaustion: %v", err)
	}
	// Beginning again in the journey does not grant fresh attempts.
	opts = x.begin("j1", alice)
	if err := x.verify("j1", alice, get(t, a, opts)); !errors.Is(err, flows.ErrExhausted) {
		t.Fatalf("after beginning again: %v", err)
	}
	// The page can still be shown.
	if _, err := x.f.AssertionOptions(t.Context(), x.st, "j1"); err != nil {
		t.Fatalf("options of an exhausted challenge: %v", err)
	}
}

func TestDecoy(t *testing.T) {
	x := newFixture(t)
	decoy := flows.Subject{}
	if got, err := x.f.Options(t.Context(), decoy); err != nil || len(got) != 0 {
		t.Fatalf("decoy options %+v (%v)", got, err)
	}
	a := webauthntest.New(origin)
	x.register(alice.UserID, a, "")
	real := x.begin("real", alice)
	opts := x.begin("j1", decoy)

	// Plausible: the same fields as a real user's options.
	var ro, do map[string]any
	if err := json.Unmarshal(real, &ro); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(opts, &do); err != nil {
		t.Fatal(err)
	}
	for k := range ro {
		if _, ok := do[k]; !ok {
			t.Fatalf("decoy options lack %q: %s vs %s", k, opts, real)
		}
	}
	if allow := do["allowCredentials"].([]any); len(allow) != 1 {
		t.Fatalf("decoy allowCredentials %v", allow)
	}
	c := x.challenge("j1")
	if c.MaxAttempts != 5 || len(c.CodeHash) != 32 {
		t.Fatalf("decoy challenge %+v", c)
	}

	// Never verifies, even with a registered credential answering, and
	// counts like a real user.
	for left := 4; left >= 1; left-- {
		wantWrong(t, x.verify("j1", decoy, get(t, a, opts, webauthntest.IgnoreAllowCredentials())), left)
	}
	if err := x.verify("j1", decoy, get(t, a, opts, webauthntest.IgnoreAllowCredentials())); !errors.Is(err, flows.ErrExhausted) {
		t.Fatalf("decoy fifth failure: %v", err)
	}
}

func TestUserWithoutCredentialsBehavesLikeDecoy(t *testing.T) {
	x := newFixture(t)
	a := webauthntest.New(origin)
	x.register(alice.UserID, a, "")
	opts := x.begin("j1", bob)
	wantWrong(t, x.verify("j1", bob, get(t, a, opts, webauthntest.IgnoreAllowCredentials())), 4)
}

func TestZeroCounterAuthenticator(t *testing.T) {
	x := newFixture(t)
	a := webauthntest.New(origin)
	a.ZeroCounter, a.BackupEligible = true, true
	fac := x.register(alice.UserID, a, "")
	for _, jid := range []string{"j1", "j2"} {
		if err := x.verify(jid, alice, get(t, a, x.begin(jid, alice))); err != nil {
			t.Fatalf("%s: %v", jid, err)
		}
	}
	if got := x.factor(fac.ID); got.Counter != 0 || got.LastUsedAt.IsZero() {
		t.Fatalf("factor %+v", got)
	}
}

func TestSignCountRaceOneWins(t *testing.T) {
	x := newFixture(t)
	a := webauthntest.New(origin)
	x.register(alice.UserID, a, "")
	// Two journeys answered with the same counter, as by a clone.
	o1, o2 := x.begin("j1", alice), x.begin("j2", alice)
	r1 := get(t, a, o1)
	r2 := get(t, a, o2, webauthntest.WithSignCount(a.SignCount()))
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, jr := range []struct {
		jid  string
		resp []byte
	}{{"j1", r1}, {"j2", r2}} {
		wg.Go(func() { errs[i] = x.verify(jr.jid, alice, jr.resp) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, flows.ErrWrongResponse):
		default:
			t.Fatalf("verify: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of two assertions with one counter passed: %v", ok, errs)
	}
}

func TestAuthenticateOutsideJourneys(t *testing.T) {
	x := newFixture(t)
	ctx := t.Context()
	a := webauthntest.New(origin)
	fac := x.register(alice.UserID, a, "")

	if _, _, err := x.f.BeginLogin(ctx, bob.UserID); !errors.Is(err, webauthn.ErrNoCredentials) {
		t.Fatalf("begin login without credentials: %v", err)
	}
	opts, sess, err := x.f.BeginLogin(ctx, alice.UserID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(opts, []byte(`"userVerification":"required"`)) || !bytes.Contains(opts, []byte(b64(a.CredentialID()))) {
		t.Fatalf("login options %s", opts)
	}
	resp := get(t, a, opts)
	if err := x.f.FinishLogin(ctx, x.st, alice.UserID, sess, resp, x.env.Now()); err != nil {
		t.Fatalf("finish login: %v", err)
	}
	if got := x.factor(fac.ID); got.Counter != 1 || !got.LastUsedAt.Equal(x.env.Now()) {
		t.Fatalf("factor after login %+v", got)
	}
	// The caller failed to delete the session: the replayed assertion
	// still fails on its counter.
	if err := x.f.FinishLogin(ctx, x.st, alice.UserID, sess, resp, x.env.Now()); !errors.Is(err, flows.ErrWrongResponse) {
		t.Fatalf("replayed assertion: %v", err)
	}

	tests := []struct {
		name  string
		user  string
		after time.Duration
		opts  []webauthntest.Option
		want  error
	}{
		{name: "ok", want: nil},
		{name: "user not verified", opts: []webauthntest.Option{webauthntest.WithoutUV()}, want: flows.ErrWrongResponse},
		{name: "sign count regressed", opts: []webauthntest.Option{webauthntest.WithSignCount(1)}, want: flows.ErrWrongResponse},
		{name: "wrong origin", opts: []webauthntest.Option{webauthntest.WithOrigin("https://evil.example")}, want: flows.ErrWrongResponse},
		{name: "expired session", after: 5 * time.Minute, want: flows.ErrExpired},
		{name: "another user's session", user: bob.UserID, want: flows.ErrNoChallenge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, sess, err := x.f.BeginLogin(ctx, alice.UserID)
			if err != nil {
				t.Fatal(err)
			}
			user := alice.UserID
			if tt.user != "" {
				user = tt.user
			}
			err = x.f.FinishLogin(ctx, x.st, user, sess, get(t, a, opts, tt.opts...), x.env.Now().Add(tt.after))
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}

	// A registration session is not a login session.
	_, rsess, err := x.f.BeginRegistration(ctx, alice.UserID, "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := x.f.FinishLogin(ctx, x.st, alice.UserID, rsess, get(t, a, opts), x.env.Now()); !errors.Is(err, flows.ErrNoChallenge) {
		t.Fatalf("registration session used for login: %v", err)
	}
}

func TestScript(t *testing.T) {
	s := webauthn.Script()
	for _, want := range []string{"webauthn-options", "webauthn-form", "parseRequestOptionsFromJSON", "parseCreationOptionsFromJSON", "toJSON", `'assertion'`, `'attestation'`, "JSON.stringify"} {
		if !bytes.Contains(s, []byte(want)) {
			t.Errorf("script lacks %q", want)
		}
	}
	for _, bad := range []string{"innerHTML", "eval(", "document.write", "new Function"} {
		if bytes.Contains(s, []byte(bad)) {
			t.Errorf("script uses %q", bad)
		}
	}
	s[0] = 'X'
	if webauthn.Script()[0] == 'X' {
		t.Error("Script returns shared bytes")
	}
}

// nopStore is a FactorStore that New can be configured with.
type nopStore struct{ store.FactorStore }
