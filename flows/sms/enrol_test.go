package sms_test

import (
	"bytes"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/internal/seal"
	"github.com/sspr-go/sspr/flows/sms"
	"github.com/sspr-go/sspr/plugin/store"
)

// finish runs one FinishEnrol step for userID.
func (fx *fixture) finish(t *testing.T, userID string, state []byte, form url.Values) flows.EnrolPage {
	t.Helper()
	page, err := fx.flow.FinishEnrol(t.Context(), flows.EnrolRequest{Env: fx.env, UserID: userID, State: state, Form: form, Locale: "en"})
	if err != nil {
		t.Fatalf("finish enrol: %v", err)
	}
	if page.Page != "enrol-sms" {
		t.Fatalf("page %q", page.Page)
	}
	return page
}

// sendCode submits phone and returns the code step and the code texted.
func (fx *fixture) sendCode(t *testing.T, userID, phone string) (flows.EnrolPage, string) {
	t.Helper()
	page := fx.finish(t, userID, nil, url.Values{"phone": {phone}})
	if page.Error != "" || page.State == nil || page.Data.(sms.EnrolData).Step != sms.StepCode {
		t.Fatalf("number step: %+v", page)
	}
	_, d := fx.last(t)
	return page, d.Code
}

// enrol adds phone for userID through both steps and returns the
// factor's ID.
func (fx *fixture) enrol(t *testing.T, userID, phone string) string {
	t.Helper()
	before, err := fx.st.Factors(t.Context(), userID, sms.ID)
	if err != nil {
		t.Fatal(err)
	}
	page, code := fx.sendCode(t, userID, phone)
	page = fx.finish(t, userID, page.State, url.Values{"code": {code}})
	if !page.Added || page.Error != "" || page.State != nil {
		t.Fatalf("code step: %+v", page)
	}
	after, err := fx.st.Factors(t.Context(), userID, sms.ID)
	if err != nil || len(after) != len(before)+1 {
		t.Fatalf("factors: %d -> %d, %v", len(before), len(after), err)
	}
	known := map[string]bool{}
	for _, fa := range before {
		known[fa.ID] = true
	}
	for _, fa := range after {
		if !known[fa.ID] {
			return fa.ID
		}
	}
	t.Fatal("no new factor")
	return ""
}

func TestEnrol(t *testing.T) {
	fx := setup(t, sms.Config{DefaultRegion: "GB"})
	page, err := fx.flow.StartEnrol(t.Context(), flows.EnrolRequest{Env: fx.env, UserID: "u1"})
	if err != nil || page.Page != "enrol-sms" || page.State != nil || page.Error != "" {
		t.Fatalf("start: %+v, %v", page, err)
	}
	if d := page.Data.(sms.EnrolData); d.Step != sms.StepNumber || d.Hint != "sms.enrol.phone_hint_region" || d.Prefix != "+44" {
		t.Fatalf("start data: %+v", d)
	}
	if len(fx.env.Queued()) != 0 {
		t.Fatal("StartEnrol queued a message")
	}

	page, code := fx.sendCode(t, "u1", "07400 123456")
	m, d := fx.last(t)
	if m.To != ukMobile || m.Template != "enrol" || m.Channel != "sms" || m.Locale != "en" || d.Domain != "id.example" || d.Minutes != 10 {
		t.Fatalf("message %+v", m)
	}
	if pd := page.Data.(sms.EnrolData); pd.Number != "+44 7400 123456" || pd.CodeLength != 8 || pd.Minutes != 10 {
		t.Fatalf("code step data: %+v", pd)
	}
	if bytes.Contains(page.State, []byte(code)) {
		t.Fatal("state carries the code")
	}
	// Nothing is stored before the code is right.
	if fs, _ := fx.st.Factors(t.Context(), "u1", sms.ID); len(fs) != 0 {
		t.Fatalf("factors before confirmation: %d", len(fs))
	}

	fx.env.Advance(time.Minute)
	page = fx.finish(t, "u1", page.State, url.Values{"code": {code[:4] + " " + code[4:]}})
	if !page.Added || page.Data.(sms.EnrolData).Number != "+44 ••••••••56" || page.Data.(sms.EnrolData).Step != sms.StepAdded {
		t.Fatalf("added: %+v", page)
	}
	list, err := fx.flow.Enrolled(t.Context(), "u1")
	if err != nil || len(list) != 1 || list[0].Name != "+44 ••••••••56" || !list[0].CreatedAt.Equal(start.Add(time.Minute)) || !list[0].LastUsedAt.IsZero() {
		t.Fatalf("Enrolled = %+v, %v", list, err)
	}
	opts, err := fx.flow.Options(t.Context(), flows.Subject{UserID: "u1"})
	if err != nil || len(opts) != 1 || opts[0].Ref != "f"+list[0].ID {
		t.Fatalf("Options = %+v, %v", opts, err)
	}
}

func TestEnrolSecretSealed(t *testing.T) {
	fx := setup(t, sms.Config{})
	id := fx.enrol(t, "u1", ukMobile)
	fa, err := fx.st.Factor(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range [][]byte{fa.Secret, fa.Data, []byte(fa.Name), []byte(fa.ID)} {
		if bytes.Contains(field, []byte(ukMobile)) || bytes.Contains(field, []byte(ukMobile[1:])) || bytes.Contains(field, []byte("7400123456")) {
			t.Fatalf("factor stores the number in clear: %q", field)
		}
	}
	if len(fa.Secret) != len(ukMobile)+seal.Overhead {
		t.Fatalf("sealed number has %d bytes", len(fa.Secret))
	}
	// It opens for its user and factor only.
	sealer, err := seal.New([][]byte{fx.key})
	if err != nil {
		t.Fatal(err)
	}
	good := []byte("sspr sms number\x00u1\x00" + id)
	if n, err := sealer.Open(fa.Secret, good); err != nil || string(n) != ukMobile {
		t.Fatalf("open: %q, %v", n, err)
	}
	for _, ad := range []string{"sspr sms number\x00u2\x00" + id, "sspr sms number\x00u1\x00other"} {
		if _, err := sealer.Open(fa.Secret, []byte(ad)); !errors.Is(err, seal.ErrInvalid) {
			t.Fatalf("opened with %q: %v", ad, err)
		}
	}
	// Copied to mallory's row, it does not open: a fault, not a number.
	if err := fx.st.CreateFactor(t.Context(), store.Factor{ID: "copied", UserID: "mallory", Flow: sms.ID, Name: "x", Secret: fa.Secret, CreatedAt: start}); err != nil {
		t.Fatal(err)
	}
	if opts, err := fx.flow.Options(t.Context(), flows.Subject{UserID: "mallory"}); !errors.Is(err, seal.ErrInvalid) {
		t.Fatalf("copied number: %+v, %v", opts, err)
	}
	if err := fx.st.CreateJourney(t.Context(), store.Journey{ID: "j1", UserID: "mallory", CreatedAt: start, ExpiresAt: start.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	err = fx.st.Atomic(t.Context(), func(tx store.Tx) error {
		return fx.flow.Begin(t.Context(), flows.BeginRequest{Tx: tx, Env: fx.env, JourneyID: "j1", Subject: flows.Subject{UserID: "mallory"}, Option: flows.Option{Flow: sms.ID, Ref: "fcopied"}})
	})
	if !errors.Is(err, seal.ErrInvalid) || len(fx.env.Queued()) != 1 {
		t.Fatalf("begin with the copied number: %v, %d queued", err, len(fx.env.Queued()))
	}
}

func TestEnrolWrongCode(t *testing.T) {
	fx := setup(t, sms.Config{MaxAttempts: 3})
	page, code := fx.sendCode(t, "u1", ukMobile)
	state := page.State
	for i := 1; i <= 2; i++ {
		page = fx.finish(t, "u1", state, url.Values{"code": {wrong(code)}})
		d := page.Data.(sms.EnrolData)
		if page.Added || page.Error != "sms.enrol.wrong_code" || d.TriesLeft != 3-i || d.Step != sms.StepCode || !bytes.Equal(page.State, state) {
			t.Fatalf("wrong code %d: %+v", i, page)
		}
	}
	// Malformed codes are not counted.
	page = fx.finish(t, "u1", state, url.Values{"code": {"12ab"}})
	if page.Error != "sms.enrol.malformed" || page.Data.(sms.EnrolData).Step != sms.StepCode {
		t.Fatalf("malformed: %+v", page)
	}
	page = fx.finish(t, "u1", state, url.Values{"code": {wrong(code)}})
	if page.Error != "sms.enrol.exhausted" || page.Data.(sms.EnrolData).Step != sms.StepNumber || page.State != nil {
		t.Fatalf("third wrong code: %+v", page)
	}
	// Dead: the right code no longer works, and resending sends nothing.
	page = fx.finish(t, "u1", state, url.Values{"code": {code}})
	if page.Added || page.Error != "sms.enrol.exhausted" {
		t.Fatalf("right code after exhaustion: %+v", page)
	}
	n := len(fx.env.Queued())
	page = fx.finish(t, "u1", state, url.Values{"resend": {"1"}})
	if page.Error != "sms.enrol.exhausted" || len(fx.env.Queued()) != n {
		t.Fatalf("resend after exhaustion: %+v", page)
	}
	if fs, _ := fx.st.Factors(t.Context(), "u1", sms.ID); len(fs) != 0 {
		t.Fatalf("factors: %d", len(fs))
	}
}

func TestEnrolReplayAndForeignState(t *testing.T) {
	fx := setup(t, sms.Config{})
	page, code := fx.sendCode(t, "u1", ukMobile)
	state := page.State
	// The state and code of u1 do not work for u2: the code is bound to
	// the user (the engine also binds the state to them).
	page = fx.finish(t, "u2", state, url.Values{"code": {code}})
	if page.Added || page.Error != "sms.enrol.wrong_code" {
		t.Fatalf("u1's state for u2: %+v", page)
	}
	page = fx.finish(t, "u1", state, url.Values{"code": {code}})
	if !page.Added {
		t.Fatalf("confirm: %+v", page)
	}
	// Replayed: the challenge is used.
	page = fx.finish(t, "u1", state, url.Values{"code": {code}})
	if page.Added || page.Error != "sms.enrol.expired" || page.Data.(sms.EnrolData).Step != sms.StepNumber {
		t.Fatalf("replay: %+v", page)
	}
	// A state the flow did not write, or none with a code: start over.
	for _, st := range [][]byte{[]byte("garbage"), []byte(`{"v":1,"c":"x","n":"12"}`), nil} {
		page = fx.finish(t, "u1", st, url.Values{"code": {code}})
		if page.Added || page.Error != "sms.enrol.expired" {
			t.Fatalf("state %q: %+v", st, page)
		}
	}
	if fs, _ := fx.st.Factors(t.Context(), "u1", sms.ID); len(fs) != 1 {
		t.Fatalf("factors: %d", len(fs))
	}
}

func TestEnrolExpired(t *testing.T) {
	fx := setup(t, sms.Config{})
	page, code := fx.sendCode(t, "u1", ukMobile)
	fx.env.Advance(10 * time.Minute)
	page = fx.finish(t, "u1", page.State, url.Values{"code": {code}})
	if page.Added || page.Error != "sms.enrol.expired" || page.Data.(sms.EnrolData).Step != sms.StepNumber {
		t.Fatalf("expired: %+v", page)
	}
}

func TestEnrolResend(t *testing.T) {
	fx := setup(t, sms.Config{MaxResends: 1})
	page, first := fx.sendCode(t, "u1", ukMobile)
	state := page.State
	page = fx.finish(t, "u1", state, url.Values{"code": {wrong(first)}})
	if page.Error != "sms.enrol.wrong_code" {
		t.Fatal(page.Error)
	}
	fx.env.Advance(9 * time.Minute)
	page = fx.finish(t, "u1", state, url.Values{"resend": {"1"}})
	m, d := fx.last(t)
	if page.Error != "" || page.Data.(sms.EnrolData).Notice != "sms.enrol.resent" || m.To != ukMobile || m.Template != "enrol" || d.Code == "" {
		t.Fatalf("resend: %+v %+v", page, m)
	}
	page = fx.finish(t, "u1", state, url.Values{"resend": {"1"}})
	if page.Error != "sms.enrol.resend_limit" || page.Data.(sms.EnrolData).Step != sms.StepCode || len(fx.env.Queued()) != 2 {
		t.Fatalf("second resend: %+v", page)
	}
	// The attempt counter survived the resend: 4 wrong codes are left.
	if d.Code != first {
		page = fx.finish(t, "u1", state, url.Values{"code": {first}})
		if page.Error != "sms.enrol.wrong_code" || page.Data.(sms.EnrolData).TriesLeft != 3 {
			t.Fatalf("old code: %+v", page)
		}
	}
	// The new code lives 10 minutes from the resend.
	fx.env.Advance(9 * time.Minute)
	if page = fx.finish(t, "u1", state, url.Values{"code": {d.Code}}); !page.Added {
		t.Fatalf("new code: %+v", page)
	}
}

func TestEnrolRefusals(t *testing.T) {
	fx := setup(t, sms.Config{MaxNumbers: 2})
	for _, tt := range []struct{ phone, err string }{
		{"", "sms.enrol.invalid_number"},
		{"hello", "sms.enrol.invalid_number"},
		{"07400 123456", "sms.enrol.invalid_number"}, // no DefaultRegion: + required
		{"+44 20 7946 0000", "sms.enrol.not_mobile"},
		{"+1 800 555 0199", "sms.enrol.not_mobile"},
	} {
		page := fx.finish(t, "u1", nil, url.Values{"phone": {tt.phone}})
		if page.Error != tt.err || page.State != nil || page.Data.(sms.EnrolData).Phone != tt.phone {
			t.Fatalf("%q: %+v", tt.phone, page)
		}
	}
	if len(fx.env.Queued()) != 0 {
		t.Fatal("a refused number got a message")
	}
	fx.enrol(t, "u1", ukMobile)
	// The same number, however it is written.
	page := fx.finish(t, "u1", nil, url.Values{"phone": {"+44 (0)7400 123-456"}})
	if page.Error != "sms.enrol.duplicate" {
		t.Fatalf("duplicate: %+v", page)
	}
	// A second one may be pending twice; the duplicate check is repeated
	// when the code is confirmed.
	p1, c1 := fx.sendCode(t, "u1", deMobile)
	p2, c2 := fx.sendCode(t, "u1", deMobile)
	if page := fx.finish(t, "u1", p1.State, url.Values{"code": {c1}}); !page.Added {
		t.Fatalf("first: %+v", page)
	}
	if page := fx.finish(t, "u1", p2.State, url.Values{"code": {c2}}); page.Added || page.Error != "sms.enrol.duplicate" {
		t.Fatalf("second of the same number: %+v", page)
	}
	// MaxNumbers reached: said at the start, and refused.
	page, err := fx.flow.StartEnrol(t.Context(), flows.EnrolRequest{Env: fx.env, UserID: "u1"})
	if err != nil || page.Error != "sms.enrol.too_many" {
		t.Fatalf("start with too many: %+v, %v", page, err)
	}
	if page := fx.finish(t, "u1", nil, url.Values{"phone": {ukOther}}); page.Error != "sms.enrol.too_many" {
		t.Fatalf("too many: %+v", page)
	}
	// Other users are not affected.
	fx.enrol(t, "u2", ukMobile)
}

func TestEnrolTooManyAtConfirm(t *testing.T) {
	fx := setup(t, sms.Config{MaxNumbers: 1})
	p1, c1 := fx.sendCode(t, "u1", ukMobile)
	p2, c2 := fx.sendCode(t, "u1", deMobile)
	if page := fx.finish(t, "u1", p1.State, url.Values{"code": {c1}}); !page.Added {
		t.Fatalf("first: %+v", page)
	}
	if page := fx.finish(t, "u1", p2.State, url.Values{"code": {c2}}); page.Added || page.Error != "sms.enrol.too_many" {
		t.Fatalf("second: %+v", page)
	}
}

func TestRemove(t *testing.T) {
	fx := setup(t, sms.Config{})
	id := fx.enrol(t, "u1", ukMobile)
	if err := fx.st.CreateFactor(t.Context(), store.Factor{ID: "totp1", UserID: "u1", Flow: "totp", Name: "x", CreatedAt: start}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ user, factor string }{{"u2", id}, {"u1", "nope"}, {"u1", "totp1"}} {
		if err := fx.flow.Remove(t.Context(), tt.user, tt.factor); !errors.Is(err, flows.ErrNoFactor) {
			t.Fatalf("Remove(%s, %s) = %v", tt.user, tt.factor, err)
		}
	}
	if err := fx.flow.Remove(t.Context(), "u1", id); err != nil {
		t.Fatal(err)
	}
	if list, err := fx.flow.Enrolled(t.Context(), "u1"); err != nil || len(list) != 0 {
		t.Fatalf("after remove: %+v, %v", list, err)
	}
	// A journey begun with the removed number sends nothing.
	if m, _ := fx.begin(t, "j1", flows.Subject{UserID: "u1"}, "f"+id); m.To != "" {
		t.Fatalf("removed number got a message: %q", m.To)
	}
}
