package plugin_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/sspr-go/sspr/plugin"
	"github.com/sspr-go/sspr/plugin/plugintest"
)

// The refusals of the OIDC step-up callback, against a fake provider whose
// ID tokens the tests forge. Each bad token differs from the good one in
// one claim (or in its signature), so a check that is removed or broken
// lets that case through. Covered elsewhere, not repeated here:
//   - an ID token of another user's sub, a stale auth_time:
//     oidcstepup_test.go (TestOIDCStepUpChecks, against zitadel's example OP)
//     and examples/provider/server/e2e_mfa_test.go (TestEndToEndOIDCStepUp);
//   - amr ["pwd"] for a user with MFA: TestEndToEndOIDCStepUp.

const (
	fakeClientID     = "sspr-test"
	fakeClientSecret = "sspr-test-client-secret-of-32-bytes-or-more"
	fakeKeyID        = "key-1"
)

// fakeOP is a minimal OpenID provider: discovery, a JWKS with one ES256
// key, an /authorize that answers at once with a code (as if the user had
// signed in), and a /token that checks the client, the code (single use,
// same redirect URI) and PKCE, then returns an ID token the test may
// alter through edit and sign.
type fakeOP struct {
	t      testing.TB
	srv    *httptest.Server
	issuer string
	key    *ecdsa.PrivateKey

	mu       sync.Mutex
	now      func() time.Time
	redirect string
	sub      string
	grants   map[string]*fakeGrant
	// authorized holds the query of every /authorize request.
	authorized []url.Values
	// tokenCalls counts /token requests; refusals are why it refused some.
	tokenCalls int
	refusals   []string
	// edit, when set, changes the claims of the ID token.
	edit func(claims map[string]any)
	// sign, when set, turns the claims into the ID token instead of a
	// signature with key.
	sign func(claims map[string]any) string
	// noIDToken drops id_token from the token response.
	noIDToken bool
}

type fakeGrant struct {
	nonce, challenge, redirect string
	used                       bool
}

func newFakeOP(t testing.TB) *fakeOP {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	op := &fakeOP{t: t, key: key, grants: map[string]*fakeGrant{}, now: time.Now}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", op.discovery)
	mux.HandleFunc("GET /keys", op.keys)
	mux.HandleFunc("GET /authorize", op.authorize)
	mux.HandleFunc("POST /token", op.token)
	op.srv = httptest.NewServer(mux)
	t.Cleanup(op.srv.Close)
	op.issuer = op.srv.URL
	return op
}

func (op *fakeOP) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                op.issuer,
		"authorization_endpoint":                op.issuer + "/authorize",
		"token_endpoint":                        op.issuer + "/token",
		"jwks_uri":                              op.issuer + "/keys",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"code_challenge_methods_supported":      []string{"S256"},
	})
}

func (op *fakeOP) keys(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &op.key.PublicKey, KeyID: fakeKeyID, Algorithm: string(jose.ES256), Use: "sig"},
	}})
}

func (op *fakeOP) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	op.mu.Lock()
	defer op.mu.Unlock()
	op.authorized = append(op.authorized, q)
	if q.Get("client_id") != fakeClientID || q.Get("redirect_uri") != op.redirect || q.Get("response_type") != "code" ||
		q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		op.t.Errorf("fake OP: bad authorization request %v", q)
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	code := randomString(op.t)
	op.grants[code] = &fakeGrant{nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri")}
	http.Redirect(w, r, op.redirect+"?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
}

func (op *fakeOP) token(w http.ResponseWriter, r *http.Request) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.tokenCalls++
	refuse := func(reason string) {
		op.refusals = append(op.refusals, reason)
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": reason})
	}
	if err := r.ParseForm(); err != nil {
		refuse("bad form")
		return
	}
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	g := op.grants[r.PostForm.Get("code")]
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	switch {
	case id != fakeClientID || secret != fakeClientSecret:
		refuse("client authentication failed")
		return
	case r.PostForm.Get("grant_type") != "authorization_code":
		refuse("grant_type")
		return
	case g == nil:
		refuse("unknown code")
		return
	case g.used:
		refuse("code already used")
		return
	case r.PostForm.Get("redirect_uri") != g.redirect:
		refuse("redirect_uri does not match")
		return
	case base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
		refuse("code_verifier does not match")
		return
	}
	g.used = true
	now := op.now()
	claims := map[string]any{
		"iss":       op.issuer,
		"sub":       op.sub,
		"aud":       []string{fakeClientID},
		"exp":       now.Add(5 * time.Minute).Unix(),
		"iat":       now.Unix(),
		"nonce":     g.nonce,
		"auth_time": now.Unix(),
		"amr":       []string{"pwd", "otp"},
	}
	if op.edit != nil {
		op.edit(claims)
	}
	resp := map[string]any{"access_token": randomString(op.t), "token_type": "Bearer", "expires_in": 300}
	if !op.noIDToken {
		if op.sign != nil {
			resp["id_token"] = op.sign(claims)
		} else {
			resp["id_token"] = signES256(op.t, op.key, fakeKeyID, claims)
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// set changes the fake provider's behaviour under its lock.
func (op *fakeOP) set(f func(op *fakeOP)) {
	op.mu.Lock()
	defer op.mu.Unlock()
	f(op)
}

func (op *fakeOP) calls() int {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.tokenCalls
}

func (op *fakeOP) lastAuthorize() url.Values {
	op.mu.Lock()
	defer op.mu.Unlock()
	if len(op.authorized) == 0 {
		op.t.Fatal("fake OP: no authorization request")
	}
	return op.authorized[len(op.authorized)-1]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func randomString(t testing.TB) string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Error(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// signJWT signs claims as a compact JWS with key (an *ecdsa.PrivateKey or
// the []byte of an HMAC).
func signJWT(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Error(err)
		return ""
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Error(err)
		return ""
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Error(err)
		return ""
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Error(err)
	}
	return raw
}

func signES256(t testing.TB, key *ecdsa.PrivateKey, kid string, claims map[string]any) string {
	return signJWT(t, jose.ES256, key, kid, claims)
}

// oidcEnv is a plugin with OIDC step-up through a fake provider, and
// u-alice (who has a bound factor, so she has MFA) signed in with a
// password ten minutes ago in each browser that signs in.
type oidcEnv struct {
	h  *harness
	op *fakeOP
}

func newOIDCEnv(t *testing.T, mutate ...func(*plugin.OIDCStepUp)) *oidcEnv {
	t.Helper()
	op := newFakeOP(t)
	gs := hostSession(t)
	h, _, _ := mfaHarness(t, func(c *plugin.Config) {
		c.Sessions = gs
		su := &plugin.OIDCStepUp{Issuer: op.issuer, ClientID: fakeClientID, ClientSecret: fakeClientSecret}
		for _, m := range mutate {
			m(su)
		}
		c.StepUp = su
	})
	h.mux.HandleFunc("/test-login", func(w http.ResponseWriter, r *http.Request) {
		age, _ := strconv.Atoi(r.URL.Query().Get("age"))
		err := gs.RaiseSession(w, r, plugin.Session{UserID: r.URL.Query().Get("uid"),
			AuthTime: h.clock.Now().Add(-time.Duration(age) * time.Second), AMR: strings.Fields(r.URL.Query().Get("amr"))})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	op.set(func(op *fakeOP) {
		op.now = h.clock.Now
		op.redirect = h.base + "/stepup/callback"
		op.sub = "u-alice"
	})
	return &oidcEnv{h: h, op: op}
}

// browser returns a browser in which u-alice is signed in with a password
// only, ten minutes ago: the change-password page asks for a step-up.
func (e *oidcEnv) browser(t *testing.T) *plugintest.Browser {
	t.Helper()
	b := plugintest.NewBrowser(t)
	signInAs(t, e.h, b, "u-alice", 10*time.Minute, "pwd")
	return b
}

// authorize presses the step-up button in b, lets the fake provider answer
// and returns the callback URL it redirects to (not yet opened).
func (e *oidcEnv) authorize(t *testing.T, b *plugintest.Browser) *url.URL {
	t.Helper()
	p := pressStepUp(t, e.h, b, "/account/password")
	loc := p.Header.Get("Location")
	if p.Status != http.StatusSeeOther || !strings.HasPrefix(loc, e.op.issuer+"/authorize?") {
		t.Fatalf("step-up button: %d %q", p.Status, loc)
	}
	at := b.Get(loc)
	cb, err := url.Parse(at.Header.Get("Location"))
	if at.Status != http.StatusFound || err != nil || !strings.HasPrefix(cb.String(), e.h.base+"/stepup/callback?") {
		t.Fatalf("fake OP /authorize: %d %q %v", at.Status, at.Header.Get("Location"), err)
	}
	return cb
}

// withQuery returns u with its query changed by f.
func withQuery(u *url.URL, f func(q url.Values)) *url.URL {
	c := *u
	q := c.Query()
	f(q)
	c.RawQuery = q.Encode()
	return &c
}

// accepted checks that res is the end of a step-up that counted: back to
// the change-password page, which now shows the form.
func (e *oidcEnv) accepted(t *testing.T, b *plugintest.Browser, res *plugintest.Page) {
	t.Helper()
	if res.Status != http.StatusSeeOther || res.Header.Get("Location") != e.h.base+"/account/password" {
		t.Fatalf("good callback: %d %q %s", res.Status, res.Header.Get("Location"), res.Text())
	}
	if p := b.Follow(res); p.Status != http.StatusOK || !strings.Contains(p.Text(), "Change your password") {
		t.Fatalf("after a good step-up: %d %s", p.Status, p.Text())
	}
}

// refused checks that res is the step-up error page, without any detail
// of why, and that the step-up did not count: the change-password page in
// b still asks to confirm it's you.
func (e *oidcEnv) refused(t *testing.T, b *plugintest.Browser, res *plugintest.Page, reason string) {
	t.Helper()
	if res.Status != http.StatusForbidden || !strings.Contains(res.Text(), "We couldn't confirm it's you") {
		t.Fatalf("callback: want 403 and the step-up error page, got %d %s", res.Status, res.Text())
	}
	noLeak(t, res, reason)
	e.stillAsks(t, b)
}

func noLeak(t *testing.T, res *plugintest.Page, reason string) {
	t.Helper()
	body := strings.ToLower(string(res.Body))
	for _, s := range []string{"goroutine", "panic", ".go:", "oidc:", "go-jose", "id token", "invalid_grant", "access_denied", "<script>alert", strings.ToLower(reason)} {
		if s != "" && strings.Contains(body, s) {
			t.Errorf("error page reveals %q:\n%s", s, res.Body)
		}
	}
}

func (e *oidcEnv) stillAsks(t *testing.T, b *plugintest.Browser) {
	t.Helper()
	p := b.Get(e.h.base + "/account/password")
	if p.Status != http.StatusOK || !strings.Contains(p.Text(), "Confirm it's you") || strings.Contains(p.Text(), "Change your password") {
		t.Fatalf("the refused step-up counted: %d %s", p.Status, p.Text())
	}
}

// verifyAudit returns the stepup.verify events as "outcome: detail",
// oldest first, checking that each names u-alice and a journey.
func (e *oidcEnv) verifyAudit(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, ev := range e.h.audit("stepup.verify") {
		if ev.UserID != "u-alice" || ev.JourneyID == "" {
			t.Errorf("audit event without user or journey: %+v", ev)
		}
		out = append(out, ev.Outcome+": "+ev.Detail)
	}
	slices.Sort(out)
	return out
}

func (e *oidcEnv) wantAudit(t *testing.T, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := e.verifyAudit(t); !slices.Equal(got, want) {
		t.Fatalf("stepup.verify audit: got %q, want %q", got, want)
	}
}

// TestOIDCStepUpFakeProviderAccepts proves the fixture: with the fake
// provider's own, unaltered token the step-up counts, so every refusal
// below is due to the one thing each case breaks.
func TestOIDCStepUpFakeProviderAccepts(t *testing.T) {
	tests := []struct {
		name   string
		stepUp func(*plugin.OIDCStepUp)
		edit   func(claims map[string]any)
		// want are parameters the authorization request must carry.
		want url.Values
	}{
		{name: "amr with otp",
			want: url.Values{"prompt": {"login"}, "max_age": {"0"}, "login_hint": {"alice"}, "scope": {"openid"}}},
		{name: "acr among ACRValues, amr pwd only",
			stepUp: func(su *plugin.OIDCStepUp) { su.ACRValues = []string{"urn:sspr:mfa"} },
			edit:   func(cl map[string]any) { cl["amr"] = []string{"pwd"}; cl["acr"] = "urn:sspr:mfa" },
			want:   url.Values{"acr_values": {"urn:sspr:mfa"}}},
		{name: "auth_time at the start minus the clock skew",
			edit: func(cl map[string]any) { cl["auth_time"] = cl["auth_time"].(int64) - 60 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mutate []func(*plugin.OIDCStepUp)
			if tt.stepUp != nil {
				mutate = append(mutate, tt.stepUp)
			}
			e := newOIDCEnv(t, mutate...)
			e.op.set(func(op *fakeOP) { op.edit = tt.edit })
			b := e.browser(t)
			cb := e.authorize(t, b)
			q := e.op.lastAuthorize()
			for k, v := range tt.want {
				if q.Get(k) != v[0] {
					t.Errorf("authorization request: %s=%q, want %q", k, q.Get(k), v[0])
				}
			}
			if q.Get("nonce") == "" || q.Get("state") == "" {
				t.Errorf("authorization request without nonce or state: %v", q)
			}
			e.accepted(t, b, b.Get(cb.String()))
			if e.op.calls() != 1 {
				t.Errorf("token requests: %d", e.op.calls())
			}
			e.wantAudit(t, "ok: oidc")
		})
	}
}

// TestOIDCStepUpRefusesBadTokens runs one step-up per case, in which the
// fake provider answers with a token that is bad in one way.
func TestOIDCStepUpRefusesBadTokens(t *testing.T) {
	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const notValid = "ID token not valid"
	tests := []struct {
		name   string
		stepUp func(*plugin.OIDCStepUp)
		// op breaks the fake provider's answer; t is the subtest's.
		op     func(t *testing.T, op *fakeOP)
		reason string
	}{
		{name: "signed by another key under the provider's kid", reason: notValid,
			op: func(t *testing.T, op *fakeOP) {
				op.sign = func(cl map[string]any) string { return signES256(t, otherKey, fakeKeyID, cl) }
			}},
		{name: "signed by a key the provider does not publish", reason: notValid,
			op: func(t *testing.T, op *fakeOP) {
				op.sign = func(cl map[string]any) string { return signES256(t, otherKey, "key-2", cl) }
			}},
		{name: "claims altered after signing (amr raised to otp)", reason: notValid,
			op: func(t *testing.T, op *fakeOP) {
				op.sign = func(cl map[string]any) string {
					cl["amr"] = []string{"pwd"}
					raw := signES256(t, op.key, fakeKeyID, cl)
					cl["amr"] = []string{"pwd", "otp"}
					forged, err := json.Marshal(cl)
					if err != nil {
						t.Error(err)
					}
					parts := strings.Split(raw, ".")
					return parts[0] + "." + base64.RawURLEncoding.EncodeToString(forged) + "." + parts[2]
				}
			}},
		{name: "unsigned (alg none)", reason: notValid,
			op: func(t *testing.T, op *fakeOP) {
				op.sign = func(cl map[string]any) string {
					payload, err := json.Marshal(cl)
					if err != nil {
						t.Error(err)
					}
					return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
						base64.RawURLEncoding.EncodeToString(payload) + "."
				}
			}},
		{name: "HS256 keyed with the client secret", reason: notValid,
			op: func(t *testing.T, op *fakeOP) {
				op.sign = func(cl map[string]any) string { return signJWT(t, jose.HS256, []byte(fakeClientSecret), fakeKeyID, cl) }
			}},
		{name: "not a JWT", reason: notValid,
			op: func(t *testing.T, op *fakeOP) {
				op.sign = func(map[string]any) string { return "not-a-jwt" }
			}},
		{name: "wrong issuer", reason: notValid,
			op: func(t *testing.T, op *fakeOP) {
				op.edit = func(cl map[string]any) { cl["iss"] = op.issuer + "/other" }
			}},
		{name: "wrong audience", reason: notValid,
			op: func(t *testing.T, op *fakeOP) {
				op.edit = func(cl map[string]any) { cl["aud"] = []string{"another-client"} }
			}},
		{name: "no audience", reason: notValid,
			op: func(t *testing.T, op *fakeOP) {
				op.edit = func(cl map[string]any) { delete(cl, "aud") }
			}},
		{name: "expired a minute ago", reason: notValid,
			op: func(t *testing.T, op *fakeOP) {
				op.edit = func(cl map[string]any) {
					now := cl["iat"].(int64)
					cl["iat"], cl["exp"] = now-600, now-60
				}
			}},
		{name: "nonce that does not match", reason: "nonce mismatch",
			op: func(t *testing.T, op *fakeOP) {
				op.edit = func(cl map[string]any) { cl["nonce"] = "forged-nonce" }
			}},
		{name: "no nonce", reason: "nonce mismatch",
			op: func(t *testing.T, op *fakeOP) {
				op.edit = func(cl map[string]any) { delete(cl, "nonce") }
			}},
		{name: "no auth_time", reason: "authentication not fresh",
			op: func(t *testing.T, op *fakeOP) {
				op.edit = func(cl map[string]any) { delete(cl, "auth_time") }
			}},
		{name: "auth_time a second before the start minus the clock skew", reason: "authentication not fresh",
			op: func(t *testing.T, op *fakeOP) {
				op.edit = func(cl map[string]any) { cl["auth_time"] = cl["auth_time"].(int64) - 61 }
			}},
		{name: "auth_time in the future", reason: "ID token from the future",
			op: func(t *testing.T, op *fakeOP) {
				op.edit = func(cl map[string]any) { cl["auth_time"] = cl["auth_time"].(int64) + 3600 }
			}},
		{name: "issued in the future", reason: "ID token from the future",
			op: func(t *testing.T, op *fakeOP) {
				op.edit = func(cl map[string]any) { cl["iat"] = cl["iat"].(int64) + 3600; cl["exp"] = cl["iat"].(int64) + 600 }
			}},
		{name: "several audiences, azp another client", reason: "ID token issued to another client",
			op: func(t *testing.T, op *fakeOP) {
				op.edit = func(cl map[string]any) {
					cl["aud"] = []string{cl["aud"].([]string)[0], "another-client"}
					cl["azp"] = "another-client"
				}
			}},
		{name: "no amr and no acr for a user with MFA", reason: "no second factor",
			op: func(t *testing.T, op *fakeOP) {
				op.edit = func(cl map[string]any) { delete(cl, "amr") }
			}},
		{name: "amr of knowledge factors only", reason: "no second factor",
			op: func(t *testing.T, op *fakeOP) {
				op.edit = func(cl map[string]any) { cl["amr"] = []string{"pwd", "kba", "pin"} }
			}},
		{name: "acr not among ACRValues", reason: "no second factor",
			stepUp: func(su *plugin.OIDCStepUp) { su.ACRValues = []string{"urn:sspr:mfa"} },
			op: func(t *testing.T, op *fakeOP) {
				op.edit = func(cl map[string]any) { cl["amr"] = []string{"pwd"}; cl["acr"] = "urn:sspr:pwd" }
			}},
		{name: "empty acr while ACRValues are set", reason: "no second factor",
			stepUp: func(su *plugin.OIDCStepUp) { su.ACRValues = []string{"urn:sspr:mfa"} },
			op: func(t *testing.T, op *fakeOP) {
				op.edit = func(cl map[string]any) { cl["amr"] = []string{"pwd"}; cl["acr"] = "" }
			}},
		{name: "amr a string, not a list", reason: "ID token claims not readable",
			op: func(t *testing.T, op *fakeOP) {
				op.edit = func(cl map[string]any) { cl["amr"] = "otp" }
			}},
		{name: "token response without id_token", reason: "no ID token",
			op: func(t *testing.T, op *fakeOP) { op.noIDToken = true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mutate []func(*plugin.OIDCStepUp)
			if tt.stepUp != nil {
				mutate = append(mutate, tt.stepUp)
			}
			e := newOIDCEnv(t, mutate...)
			e.op.set(func(op *fakeOP) { tt.op(t, op) })
			b := e.browser(t)
			cb := e.authorize(t, b)
			e.refused(t, b, b.Get(cb.String()), tt.reason)
			if n := e.op.calls(); n != 1 {
				t.Errorf("token requests: %d, want 1", n)
			}
			e.wantAudit(t, "failed: "+tt.reason)
		})
	}
}

// TestOIDCStepUpRefusesBadCallbacks alters the callback URL the provider
// sent the browser to.
func TestOIDCStepUpRefusesBadCallbacks(t *testing.T) {
	tests := []struct {
		name   string
		query  func(q url.Values)
		reason string
		// tokenCalls is how many token requests sspr may make.
		tokenCalls int
		// forgedState is set when the callback does not carry the
		// journey's state (first): the real state is then left unspent.
		forgedState bool
	}{
		{name: "error=access_denied", reason: "provider error access_denied",
			query: func(q url.Values) {
				q.Del("code")
				q.Set("error", "access_denied")
				q.Set("error_description", "<script>alert(1)</script> user said no")
			}},
		{name: "error with a code", reason: "provider error login_required",
			query: func(q url.Values) { q.Set("error", "login_required") }},
		{name: "long error, truncated in the audit", reason: "provider error " + strings.Repeat("x", 64),
			query: func(q url.Values) { q.Set("error", strings.Repeat("x", 1000)) }},
		{name: "no code", reason: "no code",
			query: func(q url.Values) { q.Del("code") }},
		{name: "empty code", reason: "no code",
			query: func(q url.Values) { q.Set("code", "") }},
		{name: "malformed code", reason: "code exchange failed", tokenCalls: 2,
			query: func(q url.Values) { q.Set("code", "not a code\x00'\"<>"+strings.Repeat("A", 2000)) }},
		{name: "no state", reason: "state not valid for this journey", forgedState: true,
			query: func(q url.Values) { q.Del("state") }},
		{name: "forged state", reason: "state not valid for this journey", forgedState: true,
			query: func(q url.Values) { q.Set("state", "forged-state") }},
		{name: "two states, the good one second", reason: "state not valid for this journey", forgedState: true,
			query: func(q url.Values) { q["state"] = []string{"forged-state", q.Get("state")} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newOIDCEnv(t)
			b := e.browser(t)
			cb := e.authorize(t, b)
			e.refused(t, b, b.Get(withQuery(cb, tt.query).String()), tt.reason)
			// "malformed code": oauth2 tries client_secret_basic, then the
			// same code with client_secret_post.
			if n := e.op.calls(); n != tt.tokenCalls {
				t.Errorf("token requests: %d, want %d", n, tt.tokenCalls)
			}
			e.wantAudit(t, "failed: "+tt.reason)
			if tt.forgedState {
				// A state that matches nothing spends nothing: the real
				// callback still works.
				e.accepted(t, b, b.Get(cb.String()))
				e.wantAudit(t, "failed: "+tt.reason, "ok: oidc")
				return
			}
			// The refused callback spent the state: the good callback now
			// fails too, and the step-up still does not count.
			e.refused(t, b, b.Get(cb.String()), "state not valid for this journey")
			e.wantAudit(t, "failed: "+tt.reason, "failed: state not valid for this journey")
		})
	}
}

// TestOIDCStepUpCallbackBinding checks that a callback counts only in the
// step-up journey, and the browser, that asked for it, and only once.
func TestOIDCStepUpCallbackBinding(t *testing.T) {
	const stateRefused = "failed: state not valid for this journey"

	t.Run("replayed after success", func(t *testing.T) {
		e := newOIDCEnv(t)
		b := e.browser(t)
		cb := e.authorize(t, b)
		e.accepted(t, b, b.Get(cb.String()))
		res := b.Get(cb.String())
		if res.Status != http.StatusForbidden || !strings.Contains(res.Text(), "We couldn't confirm it's you") {
			t.Fatalf("replayed callback: %d %s", res.Status, res.Text())
		}
		noLeak(t, res, "state not valid")
		if n := e.op.calls(); n != 1 {
			t.Errorf("the replay redeemed the code again: %d token requests", n)
		}
		e.wantAudit(t, "ok: oidc", stateRefused)
	})

	t.Run("replayed after a refusal, now with a good token", func(t *testing.T) {
		e := newOIDCEnv(t)
		e.op.set(func(op *fakeOP) { op.edit = func(cl map[string]any) { cl["nonce"] = "forged-nonce" } })
		b := e.browser(t)
		cb := e.authorize(t, b)
		e.refused(t, b, b.Get(cb.String()), "nonce mismatch")
		e.op.set(func(op *fakeOP) { op.edit = nil })
		e.refused(t, b, b.Get(cb.String()), "state not valid")
		if n := e.op.calls(); n != 1 {
			t.Errorf("token requests: %d, want 1", n)
		}
		e.wantAudit(t, "failed: nonce mismatch", stateRefused)
	})

	t.Run("state of another browser's step-up", func(t *testing.T) {
		// The same user in two browsers; browser b opens the callback
		// meant for browser a (a login-CSRF / session-swap attempt).
		e := newOIDCEnv(t)
		a, b := e.browser(t), e.browser(t)
		cbA := e.authorize(t, a)
		e.authorize(t, b)
		e.refused(t, b, b.Get(cbA.String()), "state not valid")
		if n := e.op.calls(); n != 0 {
			t.Errorf("token requests: %d, want 0", n)
		}
		e.wantAudit(t, stateRefused)
	})

	t.Run("state of an earlier step-up in the same browser", func(t *testing.T) {
		e := newOIDCEnv(t)
		b := e.browser(t)
		first := e.authorize(t, b)
		second := e.authorize(t, b) // the button again: a new journey
		e.refused(t, b, b.Get(first.String()), "state not valid")
		if n := e.op.calls(); n != 0 {
			t.Errorf("token requests: %d, want 0", n)
		}
		e.accepted(t, b, b.Get(second.String()))
		e.wantAudit(t, stateRefused, "ok: oidc")
	})

	t.Run("code of another step-up with this step-up's state", func(t *testing.T) {
		// An attacker injects a code issued for a's step-up into b's
		// callback: PKCE binds the code to a's verifier, so the exchange
		// fails; a can still finish.
		e := newOIDCEnv(t)
		a, b := e.browser(t), e.browser(t)
		cbA := e.authorize(t, a)
		cbB := e.authorize(t, b)
		injected := withQuery(cbB, func(q url.Values) { q.Set("code", cbA.Query().Get("code")) })
		e.refused(t, b, b.Get(injected.String()), "code exchange failed")
		e.op.mu.Lock()
		refusals := slices.Clone(e.op.refusals)
		e.op.mu.Unlock()
		if len(refusals) == 0 || refusals[0] != "code_verifier does not match" {
			t.Errorf("fake OP refusals: %q, want a PKCE mismatch", refusals)
		}
		e.accepted(t, a, a.Get(cbA.String()))
		e.wantAudit(t, "failed: code exchange failed", "ok: oidc")
	})

	t.Run("nonce of another step-up", func(t *testing.T) {
		e := newOIDCEnv(t)
		a, b := e.browser(t), e.browser(t)
		e.authorize(t, b)
		nonceB := e.op.lastAuthorize().Get("nonce")
		e.op.set(func(op *fakeOP) { op.edit = func(cl map[string]any) { cl["nonce"] = nonceB } })
		cbA := e.authorize(t, a)
		if e.op.lastAuthorize().Get("nonce") == nonceB {
			t.Fatal("two step-ups got the same nonce")
		}
		e.refused(t, a, a.Get(cbA.String()), "nonce mismatch")
		e.wantAudit(t, "failed: nonce mismatch")
	})

	t.Run("browser without a step-up journey", func(t *testing.T) {
		// The callback opened in a browser that never started a step-up
		// (not signed in, signed in as alice, or in a password-reset
		// journey): no step-up journey, so the page that says it has
		// ended, as a 400; nothing is redeemed and a's step-up is
		// unharmed.
		e := newOIDCEnv(t)
		a := e.browser(t)
		cbA := e.authorize(t, a)
		inReset := plugintest.NewBrowser(t)
		if p := e.h.start(inReset, "alice"); p.Status != http.StatusSeeOther {
			t.Fatalf("start a reset: %d", p.Status)
		}
		for _, c := range []*plugintest.Browser{plugintest.NewBrowser(t), e.browser(t), inReset} {
			res := c.Get(cbA.String())
			if res.Status != http.StatusBadRequest || strings.Contains(res.Text(), "Change your password") || !strings.Contains(res.Text(), "session has ended") {
				t.Fatalf("callback in another browser: %d %s", res.Status, res.Text())
			}
			noLeak(t, res, "")
		}
		if n := e.op.calls(); n != 0 {
			t.Errorf("token requests: %d, want 0", n)
		}
		// Not a stepup.verify event: there is no step-up journey to record
		// it against (oidccallback_test.go checks the stepup.oidc events).
		e.wantAudit(t)
		e.accepted(t, a, a.Get(cbA.String()))
	})

	t.Run("step-up journey expired", func(t *testing.T) {
		e := newOIDCEnv(t)
		b := e.browser(t)
		cb := e.authorize(t, b)
		e.h.clock.Advance(16 * time.Minute) // JourneyTTL is 15 minutes
		res := b.Get(cb.String())
		if res.Status != http.StatusBadRequest || !strings.Contains(res.Text(), "session has ended") {
			t.Fatalf("callback after the journey expired: %d %s", res.Status, res.Text())
		}
		if n := e.op.calls(); n != 0 {
			t.Errorf("token requests: %d, want 0", n)
		}
	})
}
