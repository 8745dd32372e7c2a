package webauthntest_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/sspr-go/sspr/flows/webauthn/webauthntest"
)

const creation = `{"rp":{"id":"id.example","name":"x"},"user":{"id":"AQIDBA","name":"a","displayName":"a"},
	"challenge":"AAECAwQFBgcICQoLDA0ODw","pubKeyCredParams":[{"type":"public-key","alg":-7}]}`

func decode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCreate(t *testing.T) {
	a := webauthntest.New("https://id.example")
	resp, err := a.Create([]byte(creation))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		ID       string
		Response struct {
			ClientDataJSON    string
			AttestationObject string
		}
	}
	if err := json.Unmarshal(resp, &r); err != nil {
		t.Fatal(err)
	}
	var att struct {
		Fmt      string         `cbor:"fmt"`
		AttStmt  map[string]any `cbor:"attStmt"`
		AuthData []byte         `cbor:"authData"`
	}
	if err := cbor.Unmarshal(decode(t, r.Response.AttestationObject), &att); err != nil {
		t.Fatal(err)
	}
	flags := att.AuthData[32]
	if att.Fmt != "none" || len(att.AttStmt) != 0 || flags != webauthntest.FlagUP|webauthntest.FlagUV|webauthntest.FlagAT {
		t.Fatalf("attestation object fmt %q attStmt %v flags %#x", att.Fmt, att.AttStmt, flags)
	}
	var cd struct{ Type, Challenge, Origin string }
	if err := json.Unmarshal(decode(t, r.Response.ClientDataJSON), &cd); err != nil {
		t.Fatal(err)
	}
	if cd.Type != "webauthn.create" || cd.Challenge != "AAECAwQFBgcICQoLDA0ODw" || cd.Origin != "https://id.example" {
		t.Fatalf("client data %+v", cd)
	}
	if string(a.UserHandle()) != "\x01\x02\x03\x04" || r.ID != base64.RawURLEncoding.EncodeToString(a.CredentialID()) {
		t.Fatalf("handle %x, id %s", a.UserHandle(), r.ID)
	}
	if _, err := a.Create([]byte(`{"rp":{"id":"x"},"user":{"id":"AQ"},"challenge":"AQ","pubKeyCredParams":[{"alg":-257}]}`)); !errors.Is(err, webauthntest.ErrOptions) {
		t.Fatalf("create without ES256: %v", err)
	}
}

func TestGet(t *testing.T) {
	a := webauthntest.New("https://id.example")
	req := []byte(`{"challenge":"AAECAwQFBgcICQoLDA0ODw","rpId":"id.example"}`)
	if _, err := a.Get(req); !errors.Is(err, webauthntest.ErrNotAllowed) {
		t.Fatalf("get before create: %v", err)
	}
	if _, err := a.Create([]byte(creation)); err != nil {
		t.Fatal(err)
	}
	for want := uint32(1); want <= 2; want++ {
		if _, err := a.Get(req); err != nil || a.SignCount() != want {
			t.Fatalf("get: %v, count %d", err, a.SignCount())
		}
	}
	if _, err := a.Get(req, webauthntest.WithSignCount(1)); err != nil || a.SignCount() != 2 {
		t.Fatalf("replayed count changed the counter: %v %d", err, a.SignCount())
	}
	other := []byte(`{"challenge":"AAECAwQFBgcICQoLDA0ODw","allowCredentials":[{"type":"public-key","id":"AQID"}]}`)
	if _, err := a.Get(other); !errors.Is(err, webauthntest.ErrNotAllowed) {
		t.Fatalf("get for another credential: %v", err)
	}
	resp, err := a.Get(other, webauthntest.IgnoreAllowCredentials(), webauthntest.WithoutUV())
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Response struct{ AuthenticatorData string }
	}
	if err := json.Unmarshal(resp, &r); err != nil {
		t.Fatal(err)
	}
	if ad := decode(t, r.Response.AuthenticatorData); len(ad) != 37 || ad[32] != webauthntest.FlagUP {
		t.Fatalf("authenticator data %x", ad)
	}
}
