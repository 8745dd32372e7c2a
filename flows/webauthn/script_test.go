package webauthn_test

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sspr-go/sspr/flows/webauthn"
	"github.com/sspr-go/sspr/flows/webauthn/webauthntest"
)

// scriptReport is what testdata/harness.js prints.
type scriptReport struct {
	Listener, Prevented                                   bool
	Submitted                                             int
	Field                                                 string
	Disabled, UnsupportedShown, FailedShown, NativeParsed bool
	Challenge, UserID                                     string
	CredentialIDs                                         []string
}

// runScript runs the page script in Node against a fake page whose
// WebAuthn API answers with response.
func runScript(t *testing.T, mode, ceremony string, options, response []byte) scriptReport {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	script := filepath.Join(t.TempDir(), "webauthn.js")
	if err := os.WriteFile(script, webauthn.Script(), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), node, filepath.Join("testdata", "harness.js"))
	cmd.Env = append(os.Environ(), "SCRIPT="+script, "MODE="+mode, "CEREMONY="+ceremony,
		"OPTIONS="+string(options), "RESPONSE="+string(response))
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("node: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("node: %v", err)
	}
	var r scriptReport
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("report %q: %v", out, err)
	}
	return r
}

func optionsField(t *testing.T, options []byte, path ...string) string {
	t.Helper()
	var m any
	if err := json.Unmarshal(options, &m); err != nil {
		t.Fatal(err)
	}
	for _, p := range path {
		m = m.(map[string]any)[p]
	}
	return m.(string)
}

func TestScriptAssertion(t *testing.T) {
	for _, mode := range []string{"native", "fallback"} {
		t.Run(mode, func(t *testing.T) {
			x := newFixture(t)
			a := webauthntest.New(origin)
			x.register(alice.UserID, a, "")
			opts := x.begin("j1", alice)
			r := runScript(t, mode, "get", opts, get(t, a, opts))
			if !r.Prevented || r.Submitted != 1 || r.Field == "" || r.FailedShown || r.UnsupportedShown || r.NativeParsed != (mode == "native") {
				t.Fatalf("report %+v", r)
			}
			if r.Challenge != optionsField(t, opts, "challenge") || !slices.Equal(r.CredentialIDs, []string{b64(a.CredentialID())}) {
				t.Fatalf("the API got challenge %q and credentials %v from %s", r.Challenge, r.CredentialIDs, opts)
			}
			if err := x.verify("j1", alice, []byte(r.Field)); err != nil {
				t.Fatalf("verify the posted field: %v\n%s", err, r.Field)
			}
		})
	}
}

func TestScriptRegistration(t *testing.T) {
	for _, mode := range []string{"native", "fallback"} {
		t.Run(mode, func(t *testing.T) {
			x := newFixture(t)
			first := webauthntest.New(origin)
			x.register(alice.UserID, first, "")
			a := webauthntest.New(origin)
			opts, sess, err := x.f.BeginRegistration(t.Context(), alice.UserID, "alice", "")
			if err != nil {
				t.Fatal(err)
			}
			resp, err := a.Create(opts)
			if err != nil {
				t.Fatal(err)
			}
			// The page may also wrap the options as {"publicKey": …}.
			wrapped := []byte(`{"publicKey":` + string(opts) + `}`)
			r := runScript(t, mode, "create", wrapped, resp)
			if !r.Prevented || r.Submitted != 1 || r.Field == "" || r.NativeParsed != (mode == "native") {
				t.Fatalf("report %+v", r)
			}
			if r.Challenge != optionsField(t, opts, "challenge") || r.UserID != optionsField(t, opts, "user", "id") ||
				!slices.Equal(r.CredentialIDs, []string{b64(first.CredentialID())}) {
				t.Fatalf("the API got %+v from %s", r, opts)
			}
			if _, err := x.f.FinishRegistration(t.Context(), x.st, alice.UserID, sess, []byte(r.Field), "", x.env.Now()); err != nil {
				t.Fatalf("finish registration with the posted field: %v\n%s", err, r.Field)
			}
		})
	}
}

func TestScriptCancelAndUnsupported(t *testing.T) {
	opts := []byte(`{"challenge":"AAAAAAAAAAAAAAAAAAAAAA","allowCredentials":[{"type":"public-key","id":"AQID"}]}`)
	r := runScript(t, "cancel", "get", opts, nil)
	if !r.Prevented || r.Submitted != 0 || r.Field != "" || !r.FailedShown || r.Disabled {
		t.Fatalf("cancelled ceremony: %+v", r)
	}
	r = runScript(t, "unsupported", "get", opts, nil)
	if r.Listener || !r.UnsupportedShown || !r.Disabled {
		t.Fatalf("unsupported browser: %+v", r)
	}
	r = runScript(t, "native", "get", []byte(`null`), nil)
	if r.Listener || !r.UnsupportedShown {
		t.Fatalf("no options: %+v", r)
	}
}
