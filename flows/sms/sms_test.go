package sms_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/flowtest"
	"github.com/sspr-go/sspr/flows/sms"
	"github.com/sspr-go/sspr/plugin/store"
	"github.com/sspr-go/sspr/plugin/store/sqlite"
)

var start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Test numbers. UK mobiles and a German one; +447400123456 is
// libphonenumber's own example UK mobile.
const (
	ukMobile = "+447400123456"
	ukOther  = "+447400654321"
	deMobile = "+4915112345678"
)

// alice has two host-verified numbers.
var alice = flows.Subject{UserID: "u1", Phones: []string{ukMobile, deMobile}}

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Config{Path: filepath.Join(t.TempDir(), "s.db")}.Open(t.Context(), slog.New(slog.NewTextHandler(io.Discard, nil)))
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
	key  []byte
	flow *sms.Flow
}

func setup(t *testing.T, cfg sms.Config) *fixture {
	t.Helper()
	fx := &fixture{st: openStore(t), env: flowtest.NewEnv(start), key: newKey()}
	cfg.Store, cfg.Keys, cfg.Now = fx.st, [][]byte{fx.key}, fx.env.Now
	f, err := sms.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	fx.flow = f
	return fx
}

// last returns the last message queued and its code.
func (fx *fixture) last(t *testing.T) (flows.Message, sms.CodeData) {
	t.Helper()
	q := fx.env.Queued()
	if len(q) == 0 {
		t.Fatal("nothing queued")
	}
	m := q[len(q)-1]
	return m, m.Data.(sms.CodeData)
}

// begin starts journey jid for s with option ref and returns the message.
func (fx *fixture) begin(t *testing.T, jid string, s flows.Subject, ref string) (flows.Message, string) {
	t.Helper()
	now := fx.env.Now()
	if err := fx.st.CreateJourney(t.Context(), store.Journey{ID: jid, UserID: s.UserID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	err := fx.st.Atomic(t.Context(), func(tx store.Tx) error {
		return fx.flow.Begin(t.Context(), flows.BeginRequest{Tx: tx, Env: fx.env, JourneyID: jid, Subject: s, Option: flows.Option{Flow: sms.ID, Ref: ref}, Locale: "de"})
	})
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	m, d := fx.last(t)
	return m, d.Code
}

// resend asks for a new code in journey jid.
func (fx *fixture) resend(t *testing.T, jid string, s flows.Subject) (string, error) {
	t.Helper()
	n := len(fx.env.Queued())
	err := fx.st.Atomic(t.Context(), func(tx store.Tx) error {
		return fx.flow.Begin(t.Context(), flows.BeginRequest{Tx: tx, Env: fx.env, JourneyID: jid, Subject: s, Resend: true})
	})
	if err != nil {
		if len(fx.env.Queued()) != n {
			t.Fatal("a failed resend queued a message")
		}
		return "", err
	}
	_, d := fx.last(t)
	return d.Code, nil
}

func (fx *fixture) verify(t *testing.T, jid string, s flows.Subject, code string) error {
	t.Helper()
	var verr error
	err := fx.st.Atomic(t.Context(), func(tx store.Tx) error {
		verr = fx.flow.Verify(t.Context(), flows.VerifyRequest{Tx: tx, Env: fx.env, JourneyID: jid, Subject: s, Form: url.Values{"code": {code}}})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return verr
}

func (fx *fixture) challenge(t *testing.T, jid string) store.Challenge {
	t.Helper()
	c, err := fx.st.LatestChallenge(t.Context(), jid, sms.ID)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wrong returns a well-formed code other than code.
func wrong(code string) string {
	if strings.HasPrefix(code, "0") {
		return "1" + code[1:]
	}
	return "0" + code[1:]
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  sms.Config
		want string
	}{
		{"empty", sms.Config{},
			"sms: config: field 'Store': required\nsms: config: field 'Keys': required"},
		{"bad values", sms.Config{Keys: [][]byte{make([]byte, 16)}, DefaultRegion: "XX", CodeTTL: time.Second, CodeLength: 5,
			MaxAttempts: 11, MaxResends: -1, MaxNumbers: 11},
			"sms: config: field 'Store': required\n" +
				"sms: config: field 'Keys': seal: key 0: must be 32 bytes, got 16\n" +
				"sms: config: field 'DefaultRegion': must be an ISO 3166 region such as \"DE\"\n" +
				"sms: config: field 'CodeTTL': must be between 1m and 10m (ASVS V6.5.5)\n" +
				"sms: config: field 'CodeLength': must be between 6 and 10\n" +
				"sms: config: field 'MaxAttempts': must be between 1 and 10\n" +
				"sms: config: field 'MaxResends': must be between 0 and 10\n" +
				"sms: config: field 'MaxNumbers': must be between 1 and 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := sms.New(tt.cfg)
			if err == nil || err.Error() != tt.want || f != nil {
				t.Fatalf("got %v", err)
			}
		})
	}
	cfg := sms.Config{Store: openStore(t), Keys: [][]byte{newKey()}, DefaultRegion: "de"}
	f, err := sms.New(cfg)
	if err != nil || cfg.CodeTTL != 0 || cfg.DefaultRegion != "de" || len(cfg.Keys) != 1 {
		t.Fatalf("New changed the caller's config or failed: %v", err)
	}
	if f.CodeLength() != 8 || f.CodeTTL() != 10*time.Minute || f.ID() != "sms" || f.Kind() != flows.KindChannel {
		t.Fatalf("defaults: %d %v %q %v", f.CodeLength(), f.CodeTTL(), f.ID(), f.Kind())
	}
}

func TestPrompt(t *testing.T) {
	fx := setup(t, sms.Config{CodeLength: 6})
	p := fx.flow.Prompt()
	want := flows.Prompt{Page: "code", Heading: "sms.heading", Intro: "sms.intro", Label: "sms.label", InputMode: "numeric",
		Autocomplete: "one-time-code", MaxLength: 24, Choice: "sms.choice", Section: "sms.section", Add: "sms.add"}
	if p != want {
		t.Fatalf("Prompt() = %+v", p)
	}
}

func TestOptions(t *testing.T) {
	fx := setup(t, sms.Config{DefaultRegion: "DE"})
	// Alice enrolled the German number the host also has, and another one.
	dup := fx.enrol(t, "u1", "0151 12345678")
	fx.env.Advance(time.Second) // factors are listed oldest first
	own := fx.enrol(t, "u1", ukOther)
	s := flows.Subject{UserID: "u1", Phones: []string{
		"+44 20 7946 0000", // a landline: skipped
		"not a number",     // skipped
		ukMobile,
		"015112345678", // national, read with DefaultRegion
		ukMobile,       // twice
	}}
	got, err := fx.flow.Options(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	want := []flows.Option{
		{Flow: "sms", Ref: "c2", Hint: "+44 ••••••••56"},
		{Flow: "sms", Ref: "c3", Hint: "+49 •••••••••78"},
		{Flow: "sms", Ref: "f" + own, Hint: "+44 ••••••••21"},
	}
	if len(got) != len(want) {
		t.Fatalf("Options = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("option %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	// Only enrolled numbers: their factors.
	got, err = fx.flow.Options(t.Context(), flows.Subject{UserID: "u1"})
	if err != nil || len(got) != 2 || got[0].Ref != "f"+dup || got[1].Ref != "f"+own {
		t.Fatalf("enrolled only: %+v, %v", got, err)
	}
	// Nothing for a decoy, nor for someone else.
	for _, s := range []flows.Subject{{}, {UserID: "u2"}} {
		if got, err := fx.flow.Options(t.Context(), s); err != nil || len(got) != 0 {
			t.Fatalf("Options(%+v) = %+v, %v", s, got, err)
		}
	}
}

// readCounter counts the factor reads of a store.
type readCounter struct {
	store.Store
	reads int
}

func (r *readCounter) Factors(ctx context.Context, userID, flow string) ([]store.Factor, error) {
	r.reads++
	return r.Store.Factors(ctx, userID, flow)
}

// TestDecoyOptionsReadTheStore: options cost one store read whatever the
// subject, one without a user ID too, so that the first page of a reset
// takes as long for an unknown identifier (the engine asks for
// plugin.DecoyUserID's).
func TestDecoyOptionsReadTheStore(t *testing.T) {
	fx := setup(t, sms.Config{})
	rc := &readCounter{Store: fx.st}
	f, err := sms.New(sms.Config{Store: rc, Keys: [][]byte{fx.key}, Now: fx.env.Now})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []flows.Subject{{UserID: "u9"}, {}} {
		rc.reads = 0
		if got, err := f.Options(t.Context(), s); err != nil || len(got) != 0 {
			t.Fatalf("Options(%+v) = %+v, %v", s, got, err)
		}
		if rc.reads != 1 {
			t.Fatalf("Options(%+v) read the factors %d times, want 1", s, rc.reads)
		}
	}
}

func TestBeginTextsCodeThatVerifies(t *testing.T) {
	fx := setup(t, sms.Config{})
	m, code := fx.begin(t, "j1", alice, "c1")
	if m.To != deMobile || m.Template != "code" || m.Channel != "sms" || m.Locale != "de" {
		t.Fatalf("message %+v", m)
	}
	_, d := fx.last(t)
	if len(code) != 8 || strings.Trim(code, "0123456789") != "" || d.Minutes != 10 || d.Domain != "id.example" {
		t.Fatalf("message data %+v", d)
	}
	// Only a keyed hash of the code is stored, and no number.
	c := fx.challenge(t, "j1")
	if bytes.Contains(c.CodeHash, []byte(code)) || string(c.Data) != "c1" || len(c.TokenHash) != 0 {
		t.Fatalf("challenge %+v", c)
	}
	if !c.ExpiresAt.Equal(start.Add(10*time.Minute)) || c.MaxAttempts != 5 {
		t.Fatalf("challenge lifetime/attempts: %v %d", c.ExpiresAt, c.MaxAttempts)
	}
	// Typed with spaces and dashes.
	if err := fx.verify(t, "j1", alice, code[:4]+" - "+code[4:]); err != nil {
		t.Fatalf("verify: %v", err)
	}
	// Single use.
	if err := fx.verify(t, "j1", alice, code); !errors.Is(err, flows.ErrUsed) {
		t.Fatalf("second verify: %v", err)
	}
}

func TestBeginToEnrolledNumber(t *testing.T) {
	fx := setup(t, sms.Config{})
	id := fx.enrol(t, "u1", ukOther)
	m, code := fx.begin(t, "j1", alice, "f"+id)
	if m.To != ukOther {
		t.Fatalf("message to %q", m.To)
	}
	fx.env.Advance(time.Minute)
	if err := fx.verify(t, "j1", alice, code); err != nil {
		t.Fatal(err)
	}
	fa, err := fx.st.Factor(t.Context(), id)
	if err != nil || !fa.LastUsedAt.Equal(start.Add(time.Minute)) {
		t.Fatalf("last used: %v, %v", fa.LastUsedAt, err)
	}
	list, err := fx.flow.Enrolled(t.Context(), "u1")
	if err != nil || len(list) != 1 || list[0].Name != "+44 ••••••••21" || !list[0].LastUsedAt.Equal(start.Add(time.Minute)) {
		t.Fatalf("Enrolled = %+v, %v", list, err)
	}
}

func TestBeginWithoutRecipient(t *testing.T) {
	fx := setup(t, sms.Config{})
	bob := flows.Subject{UserID: "u2"}
	aliceFactor := fx.enrol(t, "u1", ukOther)
	for i, tt := range []struct {
		name string
		s    flows.Subject
		ref  string
	}{
		{"decoy", flows.Subject{}, ""},
		{"decoy with a ref", flows.Subject{}, "c0"},
		{"index out of range", alice, "c7"},
		{"negative index", alice, "c-1"},
		{"junk ref", alice, "x"},
		{"no ref", alice, ""},
		{"unknown factor", alice, "fnope"},
		{"another user's factor", bob, "f" + aliceFactor},
		{"host number that is no mobile", flows.Subject{UserID: "u3", Phones: []string{"+44 20 7946 0000"}}, "c0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			jid := "j" + string(rune('a'+i))
			m, code := fx.begin(t, jid, tt.s, tt.ref)
			if m.To != "" {
				t.Fatalf("message to %q", m.To)
			}
			// The same work as for a real user: a challenge, a code.
			if c := fx.challenge(t, jid); len(c.CodeHash) == 0 || len(code) != 8 {
				t.Fatalf("challenge %+v, code %q", c, code)
			}
		})
	}
}

func TestResend(t *testing.T) {
	fx := setup(t, sms.Config{MaxResends: 2})
	_, first := fx.begin(t, "j1", alice, "c0")
	if err := fx.verify(t, "j1", alice, wrong(first)); !errors.Is(err, flows.ErrWrongResponse) {
		t.Fatal(err)
	}
	fx.env.Advance(9 * time.Minute)
	second, err := fx.resend(t, "j1", alice)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := fx.last(t); m.To != ukMobile || m.Template != "code" {
		t.Fatalf("resent %+v", m)
	}
	c := fx.challenge(t, "j1")
	if c.Attempts != 1 || c.Reissues != 1 || !c.ExpiresAt.Equal(fx.env.Now().Add(10*time.Minute)) {
		t.Fatalf("after resend: %+v", c)
	}
	if _, err := fx.resend(t, "j1", alice); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.resend(t, "j1", alice); !errors.Is(err, flows.ErrExhausted) {
		t.Fatalf("third resend: %v", err)
	}
	_, third := fx.last(t)
	// Only the newest code works; the old ones count as wrong.
	for _, old := range []string{first, second} {
		if old == third.Code {
			continue
		}
		if err := fx.verify(t, "j1", alice, old); !errors.Is(err, flows.ErrWrongResponse) {
			t.Fatalf("old code: %v", err)
		}
	}
	if err := fx.verify(t, "j1", alice, third.Code); err != nil {
		t.Fatalf("newest code: %v", err)
	}
	if _, err := fx.resend(t, "j1", alice); !errors.Is(err, flows.ErrUsed) {
		t.Fatalf("resend after use: %v", err)
	}
	if _, err := fx.resend(t, "nojourney", alice); !errors.Is(err, flows.ErrNoChallenge) {
		t.Fatalf("resend without challenge: %v", err)
	}
}

func TestResendOfDeadCodeSendsNothing(t *testing.T) {
	fx := setup(t, sms.Config{MaxAttempts: 2})
	_, code := fx.begin(t, "j1", alice, "c0")
	for range 2 {
		_ = fx.verify(t, "j1", alice, wrong(code))
	}
	if _, err := fx.resend(t, "j1", alice); !errors.Is(err, flows.ErrExhausted) {
		t.Fatalf("resend of exhausted code: %v", err)
	}
}

func TestWrongCodesExhaust(t *testing.T) {
	fx := setup(t, sms.Config{})
	_, code := fx.begin(t, "j1", alice, "c0")
	for i := 1; i <= 4; i++ {
		err := fx.verify(t, "j1", alice, wrong(code))
		var ve *flows.VerifyError
		if !errors.As(err, &ve) || !errors.Is(err, flows.ErrWrongResponse) || ve.AttemptsLeft != 5-i {
			t.Fatalf("wrong code %d: %v", i, err)
		}
	}
	if err := fx.verify(t, "j1", alice, wrong(code)); !errors.Is(err, flows.ErrExhausted) {
		t.Fatalf("fifth wrong code: %v", err)
	}
	if err := fx.verify(t, "j1", alice, code); !errors.Is(err, flows.ErrExhausted) {
		t.Fatalf("right code after exhaustion: %v", err)
	}
	if c := fx.challenge(t, "j1"); c.Attempts != 5 || !c.UsedAt.IsZero() {
		t.Fatalf("challenge %+v", c)
	}
}

func TestMalformedNotCounted(t *testing.T) {
	fx := setup(t, sms.Config{})
	_, code := fx.begin(t, "j1", alice, "c0")
	for _, in := range []string{"", "1234567", "123456789", "1234567a", "１２３４５６７８", code + "\n", strings.Repeat(" ", 40) + code} {
		if err := fx.verify(t, "j1", alice, in); !errors.Is(err, flows.ErrMalformed) {
			t.Fatalf("%q: %v", in, err)
		}
	}
	if c := fx.challenge(t, "j1"); c.Attempts != 0 {
		t.Fatalf("malformed codes were counted: %d", c.Attempts)
	}
	if err := fx.verify(t, "j1", alice, code); err != nil {
		t.Fatal(err)
	}
}

func TestExpired(t *testing.T) {
	fx := setup(t, sms.Config{CodeTTL: 5 * time.Minute})
	_, code := fx.begin(t, "j1", alice, "c0")
	fx.env.Advance(5 * time.Minute)
	if err := fx.verify(t, "j1", alice, code); !errors.Is(err, flows.ErrExpired) {
		t.Fatalf("expired code: %v", err)
	}
	// A resend gives a new code with a new lifetime.
	fresh, err := fx.resend(t, "j1", alice)
	if err != nil {
		t.Fatal(err)
	}
	if err := fx.verify(t, "j1", alice, fresh); err != nil {
		t.Fatalf("fresh code: %v", err)
	}
}

func TestVerifyWithoutChallenge(t *testing.T) {
	fx := setup(t, sms.Config{})
	if err := fx.verify(t, "nope", alice, "12345678"); !errors.Is(err, flows.ErrNoChallenge) {
		t.Fatalf("got %v", err)
	}
}

func TestCodeIsBoundToJourney(t *testing.T) {
	fx := setup(t, sms.Config{})
	_, c1 := fx.begin(t, "j1", alice, "c0")
	_, c2 := fx.begin(t, "j2", alice, "c0")
	if c1 == c2 {
		t.Skip("two random codes collided")
	}
	if err := fx.verify(t, "j2", alice, c1); !errors.Is(err, flows.ErrWrongResponse) {
		t.Fatalf("j1's code in j2: %v", err)
	}
}

func TestAddressesAndAddNumber(t *testing.T) {
	fx := setup(t, sms.Config{})
	f, st := fx.flow, fx.st
	ctx := t.Context()
	if _, err := f.AddNumber(ctx, "u1", "+61 491 570 156"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.AddNumber(ctx, "u1", "+61491570156"); !errors.Is(err, flows.ErrUsed) {
		t.Fatalf("second AddNumber of the same number: %v, want ErrUsed", err)
	}
	if _, err := f.AddNumber(ctx, "u1", "not a number"); !errors.Is(err, flows.ErrMalformed) {
		t.Fatalf("AddNumber of junk: %v", err)
	}
	got, err := f.Addresses(ctx, flows.Subject{UserID: "u1", Phones: []string{"+61491570156", "+12025550123", "junk"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"+61491570156", "+12025550123"}; !slices.Equal(got, want) {
		t.Fatalf("Addresses = %v, want %v", got, want)
	}
	if got, _ := f.Addresses(ctx, flows.Subject{}); len(got) != 0 {
		t.Fatalf("decoy addresses: %v", got)
	}
	fs, err := st.Factors(ctx, "u1", "sms")
	if err != nil || len(fs) != 1 || strings.Contains(string(fs[0].Secret), "491570156") {
		t.Fatalf("stored factor: %v %+v", err, fs)
	}
}

// TestOptionsAndAddressesAgree: the options offered and the addresses
// notified are the same numbers, in the same order, each once.
func TestOptionsAndAddressesAgree(t *testing.T) {
	fx := setup(t, sms.Config{DefaultRegion: "DE"})
	fx.enrol(t, "u1", deMobile) // the host has it too
	fx.env.Advance(time.Second)
	fx.enrol(t, "u1", ukOther)
	s := flows.Subject{UserID: "u1", Phones: []string{"junk", ukMobile, "0151 12345678", ukMobile}}
	opts, err := fx.flow.Options(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := fx.flow.Addresses(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{ukMobile, deMobile, ukOther}; !slices.Equal(addrs, want) {
		t.Fatalf("Addresses = %v, want %v", addrs, want)
	}
	if len(opts) != len(addrs) {
		t.Fatalf("Options = %+v for addresses %v", opts, addrs)
	}
	for i, o := range opts {
		if o.Hint != sms.Mask(addrs[i]) {
			t.Fatalf("option %d = %+v, address %q", i, o, addrs[i])
		}
	}
}

// TestNumbersThatDoNotOpen: numbers sealed under a key that is no longer
// configured are an error wherever the enrolled numbers are read (never
// skipped, which would offer or notify fewer numbers than the user has),
// and the error names the factor, not the number.
func TestNumbersThatDoNotOpen(t *testing.T) {
	fx := setup(t, sms.Config{})
	id := fx.enrol(t, "u1", ukOther)
	f, err := sms.New(sms.Config{Store: fx.st, Keys: [][]byte{newKey()}, Now: fx.env.Now})
	if err != nil {
		t.Fatal(err)
	}
	s := flows.Subject{UserID: "u1", Phones: []string{ukMobile}}
	_, optErr := f.Options(t.Context(), s)
	_, addrErr := f.Addresses(t.Context(), s)
	_, addErr := f.AddNumber(t.Context(), "u1", deMobile)
	for name, err := range map[string]error{"Options": optErr, "Addresses": addrErr, "AddNumber": addErr} {
		if err == nil || !strings.Contains(err.Error(), "factor "+id) || strings.Contains(err.Error(), ukOther[3:]) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestCodeSurvivesKeyRotation: a code texted under the old key still
// verifies after the plugin's keys rotate (the old key kept second), for
// a reset and for adding a number alike; under a retired key it does not.
func TestCodeSurvivesKeyRotation(t *testing.T) {
	fx := setup(t, sms.Config{})
	k1, k2 := []byte("key one, 32 bytes long at least!"), []byte("key two, 32 bytes long at least!")
	fx.env.SetKeys(k1)
	_, code := fx.begin(t, "j1", alice, "c1")
	_, code2 := fx.begin(t, "j2", alice, "c1")
	page, enrolCode := fx.sendCode(t, "dana", "+61 491 570 157")
	fx.env.SetKeys(k2, k1)
	if err := fx.verify(t, "j1", alice, code); err != nil {
		t.Fatalf("code texted under the old key: %v", err)
	}
	if page = fx.finish(t, "dana", page.State, url.Values{"code": {enrolCode}}); !page.Added {
		t.Fatalf("enrolment code texted under the old key: %+v", page)
	}
	fx.env.SetKeys(k2)
	if err := fx.verify(t, "j2", alice, code2); !errors.Is(err, flows.ErrWrongResponse) {
		t.Fatalf("code under a retired key: %v", err)
	}
}
