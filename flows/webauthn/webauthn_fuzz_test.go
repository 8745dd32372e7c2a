package webauthn_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/flowtest"
	"github.com/sspr-go/sspr/flows/webauthn"
	"github.com/sspr-go/sspr/flows/webauthn/webauthntest"
	"github.com/sspr-go/sspr/plugin/store"
	"github.com/sspr-go/sspr/plugin/store/sqlite"
)

// The relying party and user of the fuzz targets.
const (
	fuzzRPID   = "id.example"
	fuzzOrigin = "https://id.example"
)

var fuzzAlice = flows.Subject{UserID: "u-alice", Emails: []string{"alice@example.com"}}

// errFuzzRollback makes Store.Atomic roll back, so that every fuzz input
// starts from the same state.
var errFuzzRollback = errors.New("fuzz: roll back")

type fuzzFixture struct {
	st  store.Store
	env *flowtest.Env
	f   *webauthn.Flow
}

func fuzzSetup(tb testing.TB) *fuzzFixture {
	tb.Helper()
	st, err := sqlite.Config{Path: filepath.Join(tb.TempDir(), "fuzz.db")}.Open(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	env := flowtest.NewEnv(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	f, err := webauthn.New(webauthn.Config{Store: st, RPID: fuzzRPID, RPOrigins: []string{fuzzOrigin}, Now: env.Now})
	if err != nil {
		tb.Fatal(err)
	}
	return &fuzzFixture{st: st, env: env, f: f}
}

// fuzzMutate builds the JSON a page would post from genuine, the response
// of a software authenticator: field 0 posts data as it is; any other
// field names a member of genuine ("response.signature") that op replaces
// with data as a string (0), data base64url-encoded (1), the member's own
// bytes XORed with data (2) or data as raw JSON (3, or a string when data
// is not JSON).
func fuzzMutate(genuine []byte, fields []string, data []byte, field, op uint8) []byte {
	i := int(field) % (len(fields) + 1)
	if i == 0 {
		return data
	}
	var doc map[string]any
	if err := json.Unmarshal(genuine, &doc); err != nil {
		panic(err)
	}
	path := strings.Split(fields[i-1], ".")
	parent := doc
	for _, p := range path[:len(path)-1] {
		parent = parent[p].(map[string]any)
	}
	name := path[len(path)-1]
	switch op % 4 {
	case 0:
		parent[name] = string(data)
	case 1:
		parent[name] = base64.RawURLEncoding.EncodeToString(data)
	case 2:
		old, _ := parent[name].(string)
		b, err := base64.RawURLEncoding.DecodeString(old)
		if err != nil {
			b = []byte(old)
		}
		for j := range data {
			if len(b) == 0 {
				b = append(b, 0)
			}
			b[j%len(b)] ^= data[j]
		}
		parent[name] = base64.RawURLEncoding.EncodeToString(b)
	case 3:
		if json.Valid(data) {
			parent[name] = json.RawMessage(data)
		} else {
			parent[name] = string(data)
		}
	}
	out, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return out
}

var fuzzAssertionFields = []string{"id", "rawId", "type", "authenticatorAttachment", "clientExtensionResults",
	"response", "response.clientDataJSON", "response.authenticatorData", "response.signature", "response.userHandle"}

// FuzzVerify posts arbitrary "assertion" values (raw, or a real assertion
// with one member replaced or bit-flipped, see fuzzMutate) for a user with
// a passkey and for a decoy. Verify never panics, succeeds only with the
// signed content of the real assertion (client data, authenticator data,
// signature, credential), and otherwise returns ErrMalformed without
// counting or a counted ErrWrongResponse. Each input runs in a transaction
// that is rolled back.
func FuzzVerify(f *testing.F) {
	ctx := context.Background()
	fx := fuzzSetup(f)
	a := webauthntest.New(fuzzOrigin)
	opts, sess, err := fx.f.BeginRegistration(ctx, fuzzAlice.UserID, "alice@example.com", "")
	if err != nil {
		f.Fatal(err)
	}
	resp, err := a.Create(opts)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := fx.f.FinishRegistration(ctx, fx.st, fuzzAlice.UserID, sess, resp, "", fx.env.Now()); err != nil {
		f.Fatal(err)
	}
	now := fx.env.Now()
	if err := fx.st.CreateJourney(ctx, store.Journey{ID: "j1", UserID: fuzzAlice.UserID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		f.Fatal(err)
	}
	err = fx.st.Atomic(ctx, func(tx store.Tx) error {
		return fx.f.Begin(ctx, flows.BeginRequest{Tx: tx, Env: fx.env, JourneyID: "j1", Subject: fuzzAlice, Option: flows.Option{Flow: webauthn.ID}})
	})
	if err != nil {
		f.Fatal(err)
	}
	reqOpts, err := fx.f.AssertionOptions(ctx, fx.st, "j1")
	if err != nil {
		f.Fatal(err)
	}
	genuine, err := a.Get(reqOpts)
	if err != nil {
		f.Fatal(err)
	}
	want, err := protocol.ParseCredentialRequestResponseBytes(genuine)
	if err != nil {
		f.Fatal(err)
	}

	f.Add(genuine, uint8(0), uint8(0), false)
	f.Add(genuine, uint8(0), uint8(0), true)
	f.Add([]byte(`{}`), uint8(0), uint8(0), false)
	f.Add([]byte(``), uint8(0), uint8(0), false)
	f.Add([]byte(`{"id":"","rawId":"","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"","signature":""}}`), uint8(0), uint8(0), false)
	f.Add(bytes.Repeat([]byte("["), 100), uint8(0), uint8(0), false)
	for field := range uint8(len(fuzzAssertionFields)) {
		for op := range uint8(4) {
			f.Add([]byte{0x01}, field+1, op, false)
		}
	}
	f.Add([]byte(`{"type":"webauthn.get","challenge":"AAAA","origin":"https://id.example"}`), uint8(7), uint8(1), false)
	f.Add([]byte(`null`), uint8(10), uint8(3), false)

	f.Fuzz(func(t *testing.T, data []byte, field, op uint8, decoy bool) {
		if len(data) > 2*webauthn.MaxResponseSize {
			return // refused by size alone, as seeds show; keep inputs cheap
		}
		assertion := fuzzMutate(genuine, fuzzAssertionFields, data, field, op)
		subject := fuzzAlice
		if decoy {
			subject = flows.Subject{}
		}
		var before, after store.Challenge
		var verr error
		err := fx.st.Atomic(ctx, func(tx store.Tx) error {
			var err error
			if before, err = tx.LatestChallenge(ctx, "j1", webauthn.ID); err != nil {
				return err
			}
			verr = fx.f.Verify(ctx, flows.VerifyRequest{Tx: tx, Env: fx.env, JourneyID: "j1", Subject: subject, Form: url.Values{"assertion": {string(assertion)}}})
			if after, err = tx.LatestChallenge(ctx, "j1", webauthn.ID); err != nil {
				return err
			}
			return errFuzzRollback
		})
		if !errors.Is(err, errFuzzRollback) {
			t.Fatalf("atomic: %v", err)
		}
		switch {
		case verr == nil:
			got, err := protocol.ParseCredentialRequestResponseBytes(assertion)
			if decoy || err != nil ||
				!bytes.Equal(got.RawID, want.RawID) ||
				!bytes.Equal(got.Raw.AssertionResponse.ClientDataJSON, want.Raw.AssertionResponse.ClientDataJSON) ||
				!bytes.Equal(got.Raw.AssertionResponse.AuthenticatorData, want.Raw.AssertionResponse.AuthenticatorData) ||
				!bytes.Equal(got.Raw.AssertionResponse.Signature, want.Raw.AssertionResponse.Signature) {
				t.Fatalf("Verify accepted an assertion that is not the authenticator's (decoy %v): %s", decoy, assertion)
			}
			if after.UsedAt.IsZero() {
				t.Fatal("a successful Verify left the challenge unused")
			}
		case errors.Is(verr, flows.ErrMalformed):
			if after.Attempts != before.Attempts {
				t.Fatalf("malformed assertion counted an attempt: %v", verr)
			}
		case errors.Is(verr, flows.ErrWrongResponse):
			var ve *flows.VerifyError
			if !errors.As(verr, &ve) || after.Attempts != before.Attempts+1 || !after.UsedAt.IsZero() {
				t.Fatalf("refused assertion: %v, attempts %d -> %d", verr, before.Attempts, after.Attempts)
			}
		default:
			t.Fatalf("Verify returned %v, not a documented error, for %s", verr, assertion)
		}
		if bytes.Equal(assertion, genuine) && !decoy && verr != nil {
			t.Fatalf("the authenticator's own assertion was refused: %v", verr)
		}
	})
}

var fuzzRegistrationFields = []string{"id", "rawId", "type", "authenticatorAttachment", "clientExtensionResults",
	"response", "response.clientDataJSON", "response.attestationObject", "response.authenticatorData",
	"response.publicKey", "response.publicKeyAlgorithm", "response.transports"}

// FuzzFinishRegistration posts arbitrary registration responses (raw, or a
// real one with one member replaced or bit-flipped) and labels. It never
// panics; it stores a credential only for a response to this session's
// challenge, from the configured origin, for the RP ID, with user presence
// and verification, under a clean label; every refusal stores nothing and
// matches a documented sentinel. Each input runs in a transaction that is
// rolled back.
func FuzzFinishRegistration(f *testing.F) {
	ctx := context.Background()
	fx := fuzzSetup(f)
	a := webauthntest.New(fuzzOrigin)
	opts, sess, err := fx.f.BeginRegistration(ctx, fuzzAlice.UserID, "alice@example.com", "")
	if err != nil {
		f.Fatal(err)
	}
	var created struct {
		Challenge string `json:"challenge"`
	}
	if err := json.Unmarshal(opts, &created); err != nil || created.Challenge == "" {
		f.Fatalf("creation options without a challenge: %s", opts)
	}
	genuine, err := a.Create(opts)
	if err != nil {
		f.Fatal(err)
	}
	rpHash := sha256.Sum256([]byte(fuzzRPID))

	f.Add(genuine, uint8(0), uint8(0), "")
	f.Add(genuine, uint8(0), uint8(0), "  YubiKey 5  ")
	f.Add(genuine, uint8(0), uint8(0), "bad\x00label")
	f.Add(genuine, uint8(0), uint8(0), strings.Repeat("é", 65))
	f.Add([]byte(`{}`), uint8(0), uint8(0), "")
	f.Add([]byte(``), uint8(0), uint8(0), "")
	for field := range uint8(len(fuzzRegistrationFields)) {
		for op := range uint8(4) {
			f.Add([]byte{0x01}, field+1, op, "")
		}
	}
	f.Add([]byte{0xa0}, uint8(8), uint8(1), "") // an empty CBOR map as the attestation object
	f.Add([]byte(`{"type":"webauthn.create","challenge":"AAAA","origin":"https://id.example"}`), uint8(7), uint8(1), "")

	f.Fuzz(func(t *testing.T, data []byte, field, op uint8, label string) {
		if len(data) > 2*webauthn.MaxResponseSize || len(label) > 1<<10 {
			return // refused by size alone, as seeds show; keep inputs cheap
		}
		response := fuzzMutate(genuine, fuzzRegistrationFields, data, field, op)
		var fa store.Factor
		var ferr error
		var n int
		err := fx.st.Atomic(ctx, func(tx store.Tx) error {
			fa, ferr = fx.f.FinishRegistration(ctx, tx, fuzzAlice.UserID, sess, response, label, fx.env.Now())
			facs, err := tx.Factors(ctx, fuzzAlice.UserID, webauthn.ID)
			n = len(facs)
			if err != nil {
				return err
			}
			return errFuzzRollback
		})
		if !errors.Is(err, errFuzzRollback) {
			t.Fatalf("atomic: %v", err)
		}
		trimmed := strings.TrimSpace(label)
		labelOK := trimmed == "" || (utf8.ValidString(trimmed) && utf8.RuneCountInString(trimmed) <= webauthn.MaxLabelLength && !strings.ContainsFunc(trimmed, unicode.IsControl))
		if ferr != nil {
			for _, s := range []error{flows.ErrMalformed, flows.ErrWrongResponse, flows.ErrNoChallenge, flows.ErrExpired, store.ErrConflict} {
				if errors.Is(ferr, s) {
					if n != 0 {
						t.Fatalf("refused registration (%v) stored %d credentials", ferr, n)
					}
					if bytes.Equal(response, genuine) && labelOK {
						t.Fatalf("the authenticator's own response was refused: %v", ferr)
					}
					return
				}
			}
			t.Fatalf("FinishRegistration returned %v, not a documented error, for %s", ferr, response)
		}
		if !labelOK {
			t.Fatalf("label %q accepted", label)
		}
		if want := trimmed; (want == "" && fa.Name != webauthn.DefaultLabel) || (want != "" && fa.Name != want) {
			t.Fatalf("label %q stored as %q", label, fa.Name)
		}
		if n != 1 || fa.UserID != fuzzAlice.UserID || fa.Flow != webauthn.ID {
			t.Fatalf("registration returned %+v and stored %d credentials", fa, n)
		}
		p, err := protocol.ParseCredentialCreationResponseBytes(response)
		if err != nil {
			t.Fatalf("accepted a response go-webauthn cannot parse: %v", err)
		}
		cd, ad := p.Response.CollectedClientData, p.Response.AttestationObject.AuthData
		if cd.Type != "webauthn.create" || cd.Challenge != created.Challenge || cd.Origin != fuzzOrigin ||
			!bytes.Equal(ad.RPIDHash, rpHash[:]) || !ad.Flags.UserPresent() || !ad.Flags.UserVerified() {
			t.Fatalf("accepted a registration with client data %+v and flags %08b: %s", cd, ad.Flags, response)
		}
	})
}
