package password

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Passwords the test range server knows, with how often each was "seen".
const (
	pwCommon  = "password"    // seen 10,434,004 times
	pwRare    = "P@ssw0rd"    // seen 3 times
	pwLower   = "Tr0ub4dor&3" // served in lower case, seen 7 times
	pwPadded  = "correct-horse-battery-staple-42"
	pwUnknown = "a-password-nobody-has-ever-used-7f3a"
)

// sha1Hex is the upper-case hex SHA-1 of s, computed independently of the
// code under test.
func sha1Hex(s string) string {
	sum := sha1.Sum([]byte(s))
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// rangeRequest is what the test range server saw of one request.
type rangeRequest struct {
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	Body     []byte
}

// rangeServer implements GET /range/{PREFIX} of the Pwned Passwords API
// from a fixed list of hashes, pads every response with count-0 lines and
// records every request.
type rangeServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []rangeRequest
	data map[string][]string // prefix -> "SUFFIX:COUNT" lines
}

var rangePath = regexp.MustCompile(`^/range/[0-9A-F]{5}$`)

func newRangeServer(t *testing.T) *rangeServer {
	t.Helper()
	s := &rangeServer{data: map[string][]string{}}
	add := func(pw string, count int, lower bool) {
		h := sha1Hex(pw)
		suffix := h[5:]
		if lower {
			suffix = strings.ToLower(suffix)
		}
		s.data[h[:5]] = append(s.data[h[:5]], fmt.Sprintf("%s:%d", suffix, count))
	}
	add(pwCommon, 10434004, false)
	add(pwRare, 3, false)
	add(pwLower, 7, true)
	// Padding that happens to carry the suffix of pwPadded: count 0 means
	// "not seen", so it must not count as breached.
	add(pwPadded, 0, false)

	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, rangeRequest{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
		s.mu.Unlock()
		if r.Method != http.MethodGet || !rangePath.MatchString(r.URL.Path) {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		prefix := strings.TrimPrefix(r.URL.Path, "/range/")
		lines := slices.Clone(s.data[prefix])
		if r.Header.Get("Add-Padding") == "true" {
			for i := range 20 {
				lines = append(lines, fmt.Sprintf("%035X:0", i*7919))
			}
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, strings.Join(lines, "\r\n"))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *rangeServer) requests() []rangeRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

// newTestServer serves h on a loopback port for one test.
func newTestServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func mustPwnedRange(t *testing.T, cfg PwnedRangeConfig) *PwnedRange {
	t.Helper()
	r, err := NewPwnedRange(cfg)
	if err != nil {
		t.Fatalf("NewPwnedRange: %v", err)
	}
	return r
}

// secretForms are the strings about pw that must never appear in a
// request (beyond the prefix in the path) nor in an error.
func secretForms(pw string) []string {
	h := sha1Hex(pw)
	return []string{pw, h, strings.ToLower(h), h[5:], strings.ToLower(h[5:])}
}

// assertNoSecret fails when text contains pw, its hash or its suffix, or
// (when noPrefix) the range path with its prefix.
func assertNoSecret(t *testing.T, what, text, pw string, noPrefix bool) {
	t.Helper()
	forms := secretForms(pw)
	if noPrefix {
		forms = append(forms, "/range/"+sha1Hex(pw)[:5])
	}
	for _, f := range forms {
		if strings.Contains(text, f) {
			t.Errorf("%s %q contains %q", what, text, f)
		}
	}
}

func TestPwnedRangeBreached(t *testing.T) {
	srv := newRangeServer(t)
	tests := []struct {
		name     string
		minCount int
		password string
		want     bool
	}{
		{"breached", 0, pwCommon, true},
		{"breached, seen rarely", 0, pwRare, true},
		{"lower-case suffix in response", 0, pwLower, true},
		{"padding with the same suffix ignored", 0, pwPadded, false},
		{"safe", 0, pwUnknown, false},
		{"empty password safe", 0, "", false},
		{"MinCount above the count", 4, pwRare, false},
		{"MinCount equal to the count", 3, pwRare, true},
		{"MinCount below the count", 2, pwRare, true},
		{"MinCount below a large count", 1000, pwCommon, true},
		{"MinCount 1, padding", 1, pwPadded, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustPwnedRange(t, PwnedRangeConfig{BaseURL: srv.URL, MinCount: tt.minCount})
			got, err := r.Breached(t.Context(), tt.password)
			if err != nil {
				t.Fatalf("Breached: %v", err)
			}
			if got != tt.want {
				t.Errorf("Breached(%q) = %v, want %v", tt.password, got, tt.want)
			}
		})
	}
}

// TestPwnedRangeRequest checks that only the 5-character prefix of the
// SHA-1 leaves the process, with exactly the headers expected.
func TestPwnedRangeRequest(t *testing.T) {
	srv := newRangeServer(t)
	tests := []struct {
		name      string
		userAgent string
		wantUA    string
	}{
		{"default user agent", "", "sspr"},
		{"custom user agent", "acme-login/2.1 (+https://acme.example)", "acme-login/2.1 (+https://acme.example)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(srv.requests())
			r := mustPwnedRange(t, PwnedRangeConfig{BaseURL: srv.URL + "/", UserAgent: tt.userAgent})
			for _, pw := range []string{pwCommon, pwRare, pwUnknown} {
				if _, err := r.Breached(t.Context(), pw); err != nil {
					t.Fatalf("Breached(%q): %v", pw, err)
				}
			}
			reqs := srv.requests()[before:]
			if len(reqs) != 3 {
				t.Fatalf("server saw %d requests, want 3", len(reqs))
			}
			for i, pw := range []string{pwCommon, pwRare, pwUnknown} {
				req := reqs[i]
				if req.Method != http.MethodGet {
					t.Errorf("method = %q, want GET", req.Method)
				}
				if want := "/range/" + sha1Hex(pw)[:5]; req.Path != want {
					t.Errorf("path = %q, want %q", req.Path, want)
				}
				if req.RawQuery != "" || len(req.Body) != 0 {
					t.Errorf("query %q, body %q: want none", req.RawQuery, req.Body)
				}
				// Exactly these headers, the last one added by net/http's
				// transport (it then decompresses the body itself).
				want := http.Header{
					"Add-Padding":     {"true"},
					"User-Agent":      {tt.wantUA},
					"Accept-Encoding": {"gzip"},
				}
				if !headersEqual(req.Header, want) {
					t.Errorf("headers = %v, want %v", req.Header, want)
				}
				assertNoSecret(t, "path", req.Path, pw, false)
				for k, vs := range req.Header {
					for _, v := range vs {
						assertNoSecret(t, "header "+k, v, pw, true)
					}
				}
			}
		})
	}
}

func headersEqual(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func TestPwnedRangeBodyAtLimit(t *testing.T) {
	// Exactly MaxPwnedRangeResponse bytes of padding: accepted. The last
	// line's count takes the remainder as leading zeros.
	line := fmt.Sprintf("%035X:0\r\n", 1)
	n := MaxPwnedRangeResponse / len(line)
	body := strings.Repeat(line, n-1) + fmt.Sprintf("%035X:", 2) +
		strings.Repeat("0", MaxPwnedRangeResponse-(n-1)*len(line)-36)
	if len(body) != MaxPwnedRangeResponse {
		t.Fatalf("test body is %d bytes", len(body))
	}
	srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, body) })
	r := mustPwnedRange(t, PwnedRangeConfig{BaseURL: srv.URL})
	if got, err := r.Breached(t.Context(), pwCommon); err != nil || got {
		t.Errorf("Breached = %v, %v; want false, nil", got, err)
	}
}

// TestPwnedRangeErrors checks that every failure is an error, never "not
// breached", and that no error gives away the password or its hash.
func TestPwnedRangeErrors(t *testing.T) {
	// pwRare, not pwCommon: "password" is in every error's prefix.
	h := sha1Hex(pwRare)
	serve := func(status int, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if status == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "2")
			}
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
		}
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	tests := []struct {
		name    string
		handler http.HandlerFunc // nil: use closed
		ctx     func(context.Context) context.Context
		want    string // substring of the error
		wantIs  error
	}{
		{name: "server error", handler: serve(500, h[5:]+":5\r\n"), want: "unexpected status 500 Internal Server Error"},
		{name: "rate limited", handler: serve(429, `{"statusCode":429}`), want: "unexpected status 429 Too Many Requests"},
		{name: "not found", handler: serve(404, ""), want: "unexpected status 404 Not Found"},
		{name: "empty body", handler: serve(200, ""), want: "malformed response: empty body", wantIs: errPwnedMalformed},
		{name: "html body", handler: serve(200, "<html>maintenance</html>"), want: "malformed response: line 1", wantIs: errPwnedMalformed},
		{name: "malformed after a match", handler: serve(200, h[5:]+":5\r\nnot a line\r\n"), want: "malformed response: line 2", wantIs: errPwnedMalformed},
		{name: "short suffix", handler: serve(200, h[6:]+":5"), want: "line 1", wantIs: errPwnedMalformed},
		{name: "full hash instead of suffix", handler: serve(200, h+":5"), want: "line 1", wantIs: errPwnedMalformed},
		{name: "negative count", handler: serve(200, h[5:]+":-1"), want: "line 1", wantIs: errPwnedMalformed},
		{name: "missing count", handler: serve(200, h[5:]+":"), want: "line 1", wantIs: errPwnedMalformed},
		{name: "count overflows", handler: serve(200, h[5:]+":99999999999999999999"), want: "line 1: count out of range", wantIs: errPwnedMalformed},
		{name: "non-hex suffix", handler: serve(200, "G"+h[6:]+":5"), want: "line 1", wantIs: errPwnedMalformed},
		{name: "blank line", handler: serve(200, h[5:]+":5\r\n\r\n"+h[5:]+":5"), want: "line 2", wantIs: errPwnedMalformed},
		{name: "space in line", handler: serve(200, h[5:]+": 5"), want: "line 1", wantIs: errPwnedMalformed},
		{name: "oversize body", handler: serve(200, strings.Repeat(fmt.Sprintf("%035X:0\r\n", 0), MaxPwnedRangeResponse/39+1)), want: "response larger than 1048576 bytes"},
		{name: "redirect not followed", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}, want: "unexpected status 302 Found"},
		{name: "closed server", want: "connection refused"},
		{name: "cancelled context", handler: serve(200, h[5:]+":5"), ctx: func(ctx context.Context) context.Context {
			ctx, cancel := context.WithCancel(ctx)
			cancel()
			return ctx
		}, want: "context canceled", wantIs: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := closed.URL
			if tt.handler != nil {
				base = newTestServer(t, tt.handler).URL
			}
			r := mustPwnedRange(t, PwnedRangeConfig{BaseURL: base})
			ctx := t.Context()
			if tt.ctx != nil {
				ctx = tt.ctx(ctx)
			}
			got, err := r.Breached(ctx, pwRare)
			if err == nil {
				t.Fatalf("Breached = %v, nil; want an error", got)
			}
			if got {
				t.Errorf("Breached = true with error %v; want false", err)
			}
			if !strings.HasPrefix(err.Error(), "password: pwned range: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want one containing %q", err, tt.want)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v does not wrap %v", err, tt.wantIs)
			}
			assertNoSecret(t, "error", err.Error(), pwRare, true)
			if strings.Contains(err.Error(), "/range/") {
				t.Errorf("error %q holds the request's URL", err)
			}
		})
	}
}

// TestPwnedRangeClientTimeout checks that a server that never answers
// ends in an error once the client's timeout passes.
func TestPwnedRangeClientTimeout(t *testing.T) {
	srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // hang until the client gives up
	})
	r := mustPwnedRange(t, PwnedRangeConfig{BaseURL: srv.URL, Client: &http.Client{Timeout: 50 * time.Millisecond}})
	got, err := r.Breached(t.Context(), pwRare)
	if err == nil || got {
		t.Fatalf("Breached = %v, %v; want false and a timeout", got, err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("error %v is not a timeout", err)
	}
	assertNoSecret(t, "error", err.Error(), pwRare, true)
}

func TestPwnedRangeConcurrent(t *testing.T) {
	srv := newRangeServer(t)
	r := mustPwnedRange(t, PwnedRangeConfig{BaseURL: srv.URL, Client: srv.Client()})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			pw, want := pwCommon, true
			if i%2 == 1 {
				pw, want = pwUnknown, false
			}
			got, err := r.Breached(t.Context(), pw)
			if err == nil && got != want {
				err = fmt.Errorf("Breached(%q) = %v, want %v", pw, got, want)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestNewPwnedRangeConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     PwnedRangeConfig
		wantErr string // exact; "" for none
		wantURL string
	}{
		{name: "zero value", wantURL: "https://api.pwnedpasswords.com"},
		{name: "https mirror with path", cfg: PwnedRangeConfig{BaseURL: "https://pwned.example.com/hibp/"}, wantURL: "https://pwned.example.com/hibp"},
		{name: "http localhost", cfg: PwnedRangeConfig{BaseURL: "http://localhost:8080"}, wantURL: "http://localhost:8080"},
		{name: "http 127.0.0.1", cfg: PwnedRangeConfig{BaseURL: "http://127.0.0.1:1"}, wantURL: "http://127.0.0.1:1"},
		{name: "http 127.1.2.3", cfg: PwnedRangeConfig{BaseURL: "http://127.1.2.3"}, wantURL: "http://127.1.2.3"},
		{name: "http ::1", cfg: PwnedRangeConfig{BaseURL: "http://[::1]:8080"}, wantURL: "http://[::1]:8080"},
		{name: "http LOCALHOST", cfg: PwnedRangeConfig{BaseURL: "http://LOCALHOST:8080"}, wantURL: "http://LOCALHOST:8080"},
		{name: "http off loopback", cfg: PwnedRangeConfig{BaseURL: "http://api.pwnedpasswords.com"},
			wantErr: "password: config: field 'BaseURL': must be https (http only for a loopback host)"},
		{name: "http private address", cfg: PwnedRangeConfig{BaseURL: "http://10.0.0.1"},
			wantErr: "password: config: field 'BaseURL': must be https (http only for a loopback host)"},
		{name: "http localhost lookalike", cfg: PwnedRangeConfig{BaseURL: "http://localhost.evil.example"},
			wantErr: "password: config: field 'BaseURL': must be https (http only for a loopback host)"},
		{name: "ftp", cfg: PwnedRangeConfig{BaseURL: "ftp://127.0.0.1"},
			wantErr: "password: config: field 'BaseURL': must be https (http only for a loopback host)"},
		{name: "no scheme", cfg: PwnedRangeConfig{BaseURL: "api.pwnedpasswords.com"},
			wantErr: "password: config: field 'BaseURL': must be an absolute https URL"},
		{name: "no host", cfg: PwnedRangeConfig{BaseURL: "https://"},
			wantErr: "password: config: field 'BaseURL': must be an absolute https URL"},
		{name: "unparsable", cfg: PwnedRangeConfig{BaseURL: "https://exa mple.com"},
			wantErr: "password: config: field 'BaseURL': must be an absolute https URL"},
		{name: "port without host name", cfg: PwnedRangeConfig{BaseURL: "https://:8443"},
			wantErr: "password: config: field 'BaseURL': must be an absolute https URL"},
		{name: "empty fragment", cfg: PwnedRangeConfig{BaseURL: "https://pwned.example.com#"},
			wantErr: "password: config: field 'BaseURL': must have no user info, query or fragment"},
		{name: "user info", cfg: PwnedRangeConfig{BaseURL: "https://user:secret@pwned.example.com"},
			wantErr: "password: config: field 'BaseURL': must have no user info, query or fragment"},
		{name: "query", cfg: PwnedRangeConfig{BaseURL: "https://pwned.example.com?key=1"},
			wantErr: "password: config: field 'BaseURL': must have no user info, query or fragment"},
		{name: "fragment", cfg: PwnedRangeConfig{BaseURL: "https://pwned.example.com#x"},
			wantErr: "password: config: field 'BaseURL': must have no user info, query or fragment"},
		{name: "negative MinCount", cfg: PwnedRangeConfig{MinCount: -1},
			wantErr: "password: config: field 'MinCount': must not be negative"},
		{name: "user agent with newline", cfg: PwnedRangeConfig{UserAgent: "sspr\r\nX-Injected: 1"},
			wantErr: "password: config: field 'UserAgent': must not contain control characters"},
		{name: "every field wrong", cfg: PwnedRangeConfig{BaseURL: "http://example.com", MinCount: -5, UserAgent: "a\x00b"},
			wantErr: "password: config: field 'BaseURL': must be https (http only for a loopback host)\n" +
				"password: config: field 'MinCount': must not be negative\n" +
				"password: config: field 'UserAgent': must not contain control characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			r, err := NewPwnedRange(cfg)
			if cfg != tt.cfg {
				t.Errorf("NewPwnedRange changed its argument: %+v", cfg)
			}
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("NewPwnedRange error = %v, want %q", err, tt.wantErr)
				}
				if r != nil {
					t.Errorf("NewPwnedRange returned %+v with its error", r)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewPwnedRange: %v", err)
			}
			if r.baseURL != tt.wantURL {
				t.Errorf("baseURL = %q, want %q", r.baseURL, tt.wantURL)
			}
		})
	}
}

func TestNewPwnedRangeDefaults(t *testing.T) {
	r := mustPwnedRange(t, PwnedRangeConfig{})
	if r.client == nil || r.client.Timeout != DefaultPwnedRangeTimeout || r.client.CheckRedirect == nil {
		t.Errorf("default client = %+v, want a 5 s timeout and no redirects", r.client)
	}
	if r.minCount != 1 {
		t.Errorf("minCount = %d, want 1", r.minCount)
	}
	if r.userAgent != "sspr" {
		t.Errorf("userAgent = %q, want sspr", r.userAgent)
	}
	c := &http.Client{}
	if r := mustPwnedRange(t, PwnedRangeConfig{Client: c, MinCount: 10}); r.client != c || r.minCount != 10 {
		t.Errorf("client %p, minCount %d; want %p, 10", r.client, r.minCount, c)
	}
}

// breachPolicy is a policy with a tiny blocklist (fast to build) and the
// given breach settings.
func breachPolicy(t *testing.T, checker BreachChecker, failOpen bool) *Policy {
	t.Helper()
	p, err := NewPolicy(PolicyConfig{Blocklist: NewBlocklist([]string{"letmein"}), Breach: checker, BreachFailOpen: failOpen})
	if err != nil {
		t.Fatalf("NewPolicy: %v", err)
	}
	return p
}

func TestPolicyCheckBreached(t *testing.T) {
	errDown := errors.New("checker: service down")
	checker := func(breached bool, err error) BreachChecker {
		return BreachCheckerFunc(func(ctx context.Context, password string) (bool, error) {
			if password != pwRare {
				return false, fmt.Errorf("checker got another password (len %d)", len(password))
			}
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			return breached, err
		})
	}
	// deaf fails without looking at ctx.
	deaf := BreachCheckerFunc(func(context.Context, string) (bool, error) { return false, errDown })
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()

	tests := []struct {
		name     string
		checker  BreachChecker
		failOpen bool
		ctx      context.Context
		wantRule string  // "" for no problem
		wantIs   []error // nil for no error
		wantNot  []error
	}{
		{name: "no checker", checker: nil},
		{name: "not breached", checker: checker(false, nil)},
		{name: "breached", checker: checker(true, nil), wantRule: RuleBreached},
		{name: "breached, fail-open", checker: checker(true, nil), failOpen: true, wantRule: RuleBreached},
		{name: "failure, fail-closed", checker: checker(false, errDown),
			wantIs: []error{ErrBreachCheckFailed, errDown}, wantNot: []error{ErrBreachCheckSkipped}},
		{name: "failure, fail-open", checker: checker(false, errDown), failOpen: true,
			wantIs: []error{ErrBreachCheckSkipped, errDown}, wantNot: []error{ErrBreachCheckFailed}},
		{name: "failure claiming breached is a failure", checker: checker(true, errDown),
			wantIs: []error{ErrBreachCheckFailed, errDown}},
		{name: "cancelled, fail-open still fails", checker: checker(false, nil), failOpen: true, ctx: cancelled,
			wantIs: []error{ErrBreachCheckFailed, context.Canceled}, wantNot: []error{ErrBreachCheckSkipped}},
		{name: "checker ignores cancellation, fail-open still fails", checker: deaf, failOpen: true, ctx: cancelled,
			wantIs: []error{ErrBreachCheckFailed, errDown, context.Canceled}, wantNot: []error{ErrBreachCheckSkipped}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := breachPolicy(t, tt.checker, tt.failOpen)
			ctx := tt.ctx
			if ctx == nil {
				ctx = t.Context()
			}
			prob, err := p.CheckBreached(ctx, pwRare)
			for _, target := range tt.wantIs {
				if !errors.Is(err, target) {
					t.Errorf("error %v does not wrap %v", err, target)
				}
			}
			for _, target := range tt.wantNot {
				if errors.Is(err, target) {
					t.Errorf("error %v wraps %v", err, target)
				}
			}
			if tt.wantIs == nil && err != nil {
				t.Errorf("CheckBreached error: %v", err)
			}
			switch {
			case tt.wantRule == "" && prob != nil:
				t.Errorf("CheckBreached = %+v, want nil", prob)
			case tt.wantRule != "" && (prob == nil || prob.Rule != tt.wantRule || prob.Message == ""):
				t.Errorf("CheckBreached = %+v, want rule %q with a message", prob, tt.wantRule)
			}
			if err != nil {
				assertNoSecret(t, "error", err.Error(), pwRare, true)
			}
		})
	}
}

// TestPolicyCheckBreachedPwnedRange runs the policy against the range
// server, working and failing.
func TestPolicyCheckBreachedPwnedRange(t *testing.T) {
	srv := newRangeServer(t)
	down := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	})
	up := breachPolicy(t, mustPwnedRange(t, PwnedRangeConfig{BaseURL: srv.URL}), false)

	prob, err := up.CheckBreached(t.Context(), pwRare)
	if err != nil || prob == nil || prob.Rule != RuleBreached {
		t.Errorf("CheckBreached(breached) = %+v, %v; want rule %q", prob, err, RuleBreached)
	} else if strings.Contains(prob.Message, pwRare) {
		t.Errorf("message %q contains the password", prob.Message)
	}
	if prob, err := up.CheckBreached(t.Context(), pwUnknown); prob != nil || err != nil {
		t.Errorf("CheckBreached(safe) = %+v, %v; want nil, nil", prob, err)
	}

	for _, failOpen := range []bool{false, true} {
		p := breachPolicy(t, mustPwnedRange(t, PwnedRangeConfig{BaseURL: down.URL}), failOpen)
		prob, err := p.CheckBreached(t.Context(), pwRare)
		want := ErrBreachCheckFailed
		if failOpen {
			want = ErrBreachCheckSkipped
		}
		if prob != nil || !errors.Is(err, want) {
			t.Errorf("failOpen %v: CheckBreached = %+v, %v; want nil and %v", failOpen, prob, err, want)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "unexpected status 503") {
				t.Errorf("failOpen %v: error %q does not give the status", failOpen, err)
			}
			assertNoSecret(t, "error", err.Error(), pwRare, true)
		}
	}
}

func TestNewPolicyBreachConfig(t *testing.T) {
	bl := NewBlocklist([]string{"letmein"})
	_, err := NewPolicy(PolicyConfig{Blocklist: bl, BreachFailOpen: true})
	if want := "password: config: field 'BreachFailOpen': needs a Breach checker"; err == nil || err.Error() != want {
		t.Errorf("NewPolicy error = %v, want %q", err, want)
	}
	p, err := NewPolicy(PolicyConfig{Blocklist: bl})
	if err != nil {
		t.Fatal(err)
	}
	if p.ChecksBreaches() || p.BreachFailOpen() {
		t.Errorf("zero config: ChecksBreaches %v, BreachFailOpen %v; want false, false", p.ChecksBreaches(), p.BreachFailOpen())
	}
	p = breachPolicy(t, BreachCheckerFunc(func(context.Context, string) (bool, error) { return false, nil }), true)
	if !p.ChecksBreaches() || !p.BreachFailOpen() {
		t.Errorf("ChecksBreaches %v, BreachFailOpen %v; want true, true", p.ChecksBreaches(), p.BreachFailOpen())
	}
}
