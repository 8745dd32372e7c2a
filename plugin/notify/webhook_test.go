package notify_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sspr-go/sspr/plugin/notify"
)

var (
	testSecret  = []byte("0123456789abcdef0123456789abcdef") // 32 bytes
	otherSecret = []byte("fedcba9876543210fedcba9876543210")
	testNow     = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

// The message sent in the classification tests, and what must never show
// up in an error.
var (
	smsMsg = notify.Message{Channel: "sms", To: "+15551230000",
		Text: "Your reset code is 48151623. Or open https://id.example/r?t=Zx9qLmWv"}
	leaks = []string{"+15551230000", "15551230000", "5551230000", "48151623", "Zx9qLmWv", "reset code", "id.example"}
)

// sign is the documented scheme, written out independently of the package:
// hex(HMAC-SHA256(secret, timestamp + "." + body)).
func sign(secret []byte, ts string, body []byte) string {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts + "."))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// request is one request a test server received.
type request struct {
	method, path string
	header       http.Header
	body         []byte
}

// recorder is a test gateway that records requests and answers with a
// fixed status and body.
type recorder struct {
	mu     sync.Mutex
	reqs   []request
	status int
	answer string
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, request{r.Method, r.URL.Path, r.Header.Clone(), body})
	status, answer := rec.status, rec.answer
	rec.mu.Unlock()
	w.Header().Set("Location", "/moved") // followed, a redirect would show as a second request
	w.WriteHeader(status)
	_, _ = io.WriteString(w, answer)
}

func (rec *recorder) requests() []request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]request(nil), rec.reqs...)
}

func newRecorder(t *testing.T, status int, answer string) (*recorder, *httptest.Server) {
	t.Helper()
	rec := &recorder{status: status, answer: answer}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	return rec, srv
}

func newWebhook(t *testing.T, url string) *notify.Webhook {
	t.Helper()
	wh, err := notify.NewWebhook(notify.WebhookConfig{URL: url, Secret: testSecret, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	return wh
}

func assertNoLeak(t *testing.T, err error, more ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range append(leaks, more...) {
		if strings.Contains(strings.ToLower(err.Error()), strings.ToLower(s)) {
			t.Errorf("error %q holds %q", err, s)
		}
	}
}

func TestWebhookRequestIsSignedAndVerifies(t *testing.T) {
	tests := []struct {
		name     string
		msg      notify.Message
		wantKeys []string
	}{
		{"sms", notify.Message{Channel: "sms", To: "+15551230000", Text: "code 12345678"}, []string{"channel", "text", "to"}},
		{"with subject, without html", notify.Message{Channel: "email", To: "a@example.com", Subject: "Reset", Text: "t", HTML: "<p>t</p>"},
			[]string{"channel", "subject", "text", "to"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			type result struct {
				verr error
				body map[string]string
			}
			results := make(chan result, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				switch {
				case r.Method != http.MethodPost || r.URL.Path != "/hooks/sms" || r.URL.RawQuery != "key=abc":
					t.Errorf("request %s %s", r.Method, r.URL)
				case r.Header.Get("Content-Type") != "application/json":
					t.Errorf("content type %q", r.Header.Get("Content-Type"))
				case r.Header.Get("Sspr-Timestamp") != strconv.FormatInt(testNow.Unix(), 10):
					t.Errorf("timestamp %q", r.Header.Get("Sspr-Timestamp"))
				case r.Header.Get("Sspr-Signature") != "v1="+sign(testSecret, r.Header.Get("Sspr-Timestamp"), body):
					t.Errorf("signature %q does not follow the documented scheme", r.Header.Get("Sspr-Signature"))
				}
				res := result{verr: notify.VerifyWebhook(testSecret, r.Header, body, testNow.Add(time.Minute), time.Minute)}
				if err := json.Unmarshal(body, &res.body); err != nil {
					t.Errorf("body %s: %v", body, err)
				}
				results <- res
				w.WriteHeader(http.StatusNoContent)
			}))
			t.Cleanup(srv.Close)
			if err := newWebhook(t, srv.URL+"/hooks/sms?key=abc").Send(t.Context(), tt.msg); err != nil {
				t.Fatalf("send: %v", err)
			}
			res := <-results
			if res.verr != nil {
				t.Fatalf("VerifyWebhook refused a genuine request: %v", res.verr)
			}
			got := res.body
			if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, tt.wantKeys) {
				t.Fatalf("body keys %v, want %v", keys, tt.wantKeys)
			}
			if got["channel"] != tt.msg.Channel || got["to"] != tt.msg.To || got["text"] != tt.msg.Text || got["subject"] != tt.msg.Subject {
				t.Fatalf("body %v", got)
			}
		})
	}
}

// statusCases are the answers both HTTP senders classify.
var statusCases = []struct {
	status    int
	wantErr   bool
	permanent bool
}{
	{200, false, false},
	{201, false, false},
	{204, false, false},
	{302, true, true},
	{400, true, true},
	{401, true, true},
	{404, true, true},
	{408, true, false},
	{429, true, false},
	{500, true, false},
	{502, true, false},
	{503, true, false},
}

func TestWebhookClassifiesAnswers(t *testing.T) {
	// Gateways echo what they got; none of it may reach the error.
	echo := `{"error":"cannot deliver \"` + smsMsg.Text + `\" to ` + smsMsg.To + `"}`
	for _, tt := range statusCases {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			rec, srv := newRecorder(t, tt.status, echo)
			err := newWebhook(t, srv.URL).Send(t.Context(), smsMsg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got := errors.Is(err, notify.ErrPermanent); got != tt.permanent {
				t.Fatalf("permanent = %v, want %v (err %v)", got, tt.permanent, err)
			}
			if tt.wantErr && !strings.HasPrefix(err.Error(), fmt.Sprintf("notify: webhook: status %d: ", tt.status)) {
				t.Fatalf("err %q lacks the status", err)
			}
			assertNoLeak(t, err)
			if n := len(rec.requests()); n != 1 {
				t.Fatalf("%d requests (redirects must not be followed)", n)
			}
		})
	}
	t.Run("closed server", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		err := newWebhook(t, srv.URL+"/sms?token=s3cr3t-query").Send(t.Context(), smsMsg)
		if err == nil || errors.Is(err, notify.ErrPermanent) {
			t.Fatalf("err = %v, want a retryable error", err)
		}
		if !strings.HasPrefix(err.Error(), "notify: webhook: post: ") {
			t.Fatalf("err %q", err)
		}
		assertNoLeak(t, err, "s3cr3t-query")
	})
	t.Run("canceled context", func(t *testing.T) {
		_, srv := newRecorder(t, 200, "")
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := newWebhook(t, srv.URL).Send(ctx, smsMsg)
		if !errors.Is(err, context.Canceled) || errors.Is(err, notify.ErrPermanent) {
			t.Fatalf("err = %v, want a retryable context.Canceled", err)
		}
	})
}

// TestWebhookErrorDetailIsRedacted checks what is kept of an answer's body.
func TestWebhookErrorDetailIsRedacted(t *testing.T) {
	email := notify.Message{Channel: "email", To: "alice.smith@example.com", Subject: "Reset", Text: "Your token is Qx7vB2nKpL"}
	tests := []struct {
		name   string
		msg    notify.Message
		answer string
		want   string // exact error
		leaks  []string
	}{
		{"plain", smsMsg, "quota exceeded", "notify: webhook: status 400: quota exceeded", nil},
		{"empty body", smsMsg, "", "notify: webhook: status 400", nil},
		{"echoed number", smsMsg, "bad number +15551230000", "notify: webhook: status 400: bad number [redacted]", nil},
		{"formatted number", smsMsg, "bad number +1 (555) 123-0000!", "notify: webhook: status 400: bad number [redacted]!", nil},
		{"echoed code", smsMsg, "rejected: 48151623", "notify: webhook: status 400: rejected: [redacted]", nil},
		{"echoed token", smsMsg, "no links allowed (t=zx9qlmwv)", "notify: webhook: status 400: no links allowed (t=[redacted])", nil},
		{"recipient in other case", email, "unknown user ALICE.SMITH@EXAMPLE.COM", "notify: webhook: status 400: unknown user [redacted]", nil},
		{"part of the recipient", email, "user alice unknown", "notify: webhook: status 400: user [redacted] unknown", nil},
		{"text word", email, "spam filter: Qx7vB2nKpL", "notify: webhook: status 400: spam filter: [redacted]", nil},
		{"control characters and non-ASCII", smsMsg, "bad\r\n\tthing \x00\xff é", "notify: webhook: status 400: bad thing", nil},
		{"truncated", smsMsg, strings.Repeat("a", 2000), "notify: webhook: status 400: " + strings.Repeat("a", 77) + "...", nil},
		{"whole text", smsMsg, smsMsg.Text, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := newRecorder(t, 400, tt.answer)
			err := newWebhook(t, srv.URL).Send(t.Context(), tt.msg)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.want != "" && err.Error() != tt.want {
				t.Fatalf("err %q, want %q", err, tt.want)
			}
			assertNoLeak(t, err, tt.msg.To, tt.msg.Text, "Qx7vB2nKpL", "alice")
		})
	}
}

func TestWebhookConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  notify.WebhookConfig
		want string
	}{
		{"empty", notify.WebhookConfig{},
			"notify: webhook: field 'URL': is required\nnotify: webhook: field 'Secret': is required"},
		{"short secret", notify.WebhookConfig{URL: "https://gw.example/sms", Secret: make([]byte, 31)},
			"notify: webhook: field 'Secret': must be at least 32 bytes"},
		{"http on the network", notify.WebhookConfig{URL: "http://gw.example/sms", Secret: testSecret},
			"notify: webhook: field 'URL': must be https (http only for a loopback host)"},
		{"other scheme", notify.WebhookConfig{URL: "ftp://gw.example/sms", Secret: testSecret},
			"notify: webhook: field 'URL': must be an absolute http or https URL"},
		{"relative", notify.WebhookConfig{URL: "/sms", Secret: testSecret},
			"notify: webhook: field 'URL': must be an absolute http or https URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := notify.NewWebhook(tt.cfg)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("NewWebhook = %v, want %q", err, tt.want)
			}
		})
	}
	for _, u := range []string{"https://gw.example/sms", "https://gw.example/sms?token=t#f", "http://localhost:8080/sms", "http://LOCALHOST:8080/sms", "http://127.0.0.1/sms", "http://[::1]:9/sms"} {
		if _, err := notify.NewWebhook(notify.WebhookConfig{URL: u, Secret: testSecret}); err != nil {
			t.Errorf("NewWebhook(%q): %v", u, err)
		}
	}
}

func TestWebhookCopiesSecret(t *testing.T) {
	secret := append([]byte(nil), testSecret...)
	verified := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		verified <- notify.VerifyWebhook(testSecret, r.Header, body, testNow, 0)
	}))
	t.Cleanup(srv.Close)
	wh, err := notify.NewWebhook(notify.WebhookConfig{URL: srv.URL, Secret: secret, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	clear(secret)
	if err := wh.Send(t.Context(), smsMsg); err != nil {
		t.Fatalf("send: %v", err)
	}
	if err := <-verified; err != nil {
		t.Fatalf("verify: %v", err)
	}
}

func TestVerifyWebhook(t *testing.T) {
	ts := strconv.FormatInt(testNow.Unix(), 10)
	body := []byte(`{"channel":"sms","to":"+15551230000","text":"code 12345678"}`)
	good := sign(testSecret, ts, body)
	other := sign(otherSecret, ts, body)
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	signed := func(sig string) http.Header { return hdr("Sspr-Timestamp", ts, "Sspr-Signature", sig) }
	tests := []struct {
		name      string
		secret    []byte
		header    http.Header
		body      []byte
		now       time.Time
		tolerance time.Duration
		want      error // nil, a sentinel, or errAny
	}{
		{"good", testSecret, signed("v1=" + good), body, testNow, time.Minute, nil},
		{"upper-case hex", testSecret, signed("v1=" + strings.ToUpper(good)), body, testNow, time.Minute, nil},
		{"tampered body", testSecret, signed("v1=" + good), append([]byte(nil), strings.Replace(string(body), "1234", "9999", 1)...), testNow, time.Minute, notify.ErrWebhookSignature},
		{"empty body", testSecret, signed("v1=" + good), nil, testNow, time.Minute, notify.ErrWebhookSignature},
		{"wrong secret", otherSecret, signed("v1=" + good), body, testNow, time.Minute, notify.ErrWebhookSignature},
		{"stale", testSecret, signed("v1=" + good), body, testNow.Add(61 * time.Second), time.Minute, notify.ErrWebhookTimestamp},
		{"from the future", testSecret, signed("v1=" + good), body, testNow.Add(-61 * time.Second), time.Minute, notify.ErrWebhookTimestamp},
		{"at the edge", testSecret, signed("v1=" + good), body, testNow.Add(time.Minute), time.Minute, nil},
		{"default tolerance accepts", testSecret, signed("v1=" + good), body, testNow.Add(4 * time.Minute), 0, nil},
		{"default tolerance refuses", testSecret, signed("v1=" + good), body, testNow.Add(6 * time.Minute), 0, notify.ErrWebhookTimestamp},
		{"timestamp swapped", testSecret, hdr("Sspr-Timestamp", strconv.FormatInt(testNow.Unix()+1, 10), "Sspr-Signature", "v1="+good), body, testNow, time.Minute, notify.ErrWebhookSignature},
		{"rotation, comma", testSecret, signed("v1=" + other + ",v1=" + good), body, testNow, time.Minute, nil},
		{"rotation, space", testSecret, signed("v1=" + other + " v1=" + good), body, testNow, time.Minute, nil},
		{"rotation, both", testSecret, signed("v1=" + other + ", \tv1=" + good), body, testNow, time.Minute, nil},
		{"rotation, two header lines", testSecret, hdr("Sspr-Timestamp", ts, "Sspr-Signature", "v1="+other, "Sspr-Signature", "v1="+good), body, testNow, time.Minute, nil},
		{"other schemes ignored", testSecret, signed("v0=zz,v2=" + other + ",v1=" + good), body, testNow, time.Minute, nil},
		{"only wrong values", testSecret, signed("v1=" + other + ",v1=" + other), body, testNow, time.Minute, notify.ErrWebhookSignature},
		{"missing timestamp", testSecret, hdr("Sspr-Signature", "v1="+good), body, testNow, time.Minute, notify.ErrWebhookMalformed},
		{"missing signature", testSecret, hdr("Sspr-Timestamp", ts), body, testNow, time.Minute, notify.ErrWebhookMalformed},
		{"no headers", testSecret, http.Header{}, body, testNow, time.Minute, notify.ErrWebhookMalformed},
		{"two timestamps", testSecret, hdr("Sspr-Timestamp", ts, "Sspr-Timestamp", ts, "Sspr-Signature", "v1="+good), body, testNow, time.Minute, notify.ErrWebhookMalformed},
		{"timestamp not a number", testSecret, hdr("Sspr-Timestamp", "yesterday", "Sspr-Signature", "v1="+good), body, testNow, time.Minute, notify.ErrWebhookMalformed},
		{"timestamp signed", testSecret, hdr("Sspr-Timestamp", "+"+ts, "Sspr-Signature", "v1="+good), body, testNow, time.Minute, notify.ErrWebhookMalformed},
		{"timestamp empty", testSecret, hdr("Sspr-Timestamp", "", "Sspr-Signature", "v1="+good), body, testNow, time.Minute, notify.ErrWebhookMalformed},
		{"timestamp huge", testSecret, hdr("Sspr-Timestamp", "99999999999999999999", "Sspr-Signature", "v1="+good), body, testNow, time.Minute, notify.ErrWebhookMalformed},
		{"signature empty", testSecret, signed(""), body, testNow, time.Minute, notify.ErrWebhookMalformed},
		{"signature without scheme", testSecret, signed(good), body, testNow, time.Minute, notify.ErrWebhookMalformed},
		{"empty scheme", testSecret, signed("=" + good), body, testNow, time.Minute, notify.ErrWebhookMalformed},
		{"v1 not hex", testSecret, signed("v1=" + strings.Repeat("zz", 32)), body, testNow, time.Minute, notify.ErrWebhookMalformed},
		{"v1 short", testSecret, signed("v1=" + good[:62]), body, testNow, time.Minute, notify.ErrWebhookMalformed},
		{"v1 empty", testSecret, signed("v1="), body, testNow, time.Minute, notify.ErrWebhookMalformed},
		{"garbled v1 beside a good one", testSecret, signed("v1=xyz,v1=" + good), body, testNow, time.Minute, notify.ErrWebhookMalformed},
		{"only other schemes", testSecret, signed("v2=" + good), body, testNow, time.Minute, notify.ErrWebhookMalformed},
		{"short secret", testSecret[:31], signed("v1=" + sign(testSecret[:31], ts, body)), body, testNow, time.Minute, errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := notify.VerifyWebhook(tt.secret, tt.header, tt.body, tt.now, tt.tolerance)
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want == errAny:
				if err == nil || errors.Is(err, notify.ErrWebhookSignature) || errors.Is(err, notify.ErrWebhookMalformed) {
					t.Fatalf("err = %v, want a plain error", err)
				}
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

var errAny = errors.New("any error")

// FuzzVerifyWebhook feeds arbitrary headers and bodies: VerifyWebhook must
// not panic, must accept only when one v1 value is the true HMAC and the
// timestamp is within tolerance, and must accept what the scheme signs.
func FuzzVerifyWebhook(f *testing.F) {
	ts := strconv.FormatInt(testNow.Unix(), 10)
	body := []byte(`{"channel":"sms","to":"+15550100","text":"hi"}`)
	f.Add(ts, "v1="+sign(testSecret, ts, body), body)
	f.Add(ts, "v1="+sign(otherSecret, ts, body)+", v1="+sign(testSecret, ts, body), body)
	f.Add("", "", []byte(nil))
	f.Fuzz(func(t *testing.T, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set("Sspr-Timestamp", ts)
		h.Set("Sspr-Signature", sig)
		err := notify.VerifyWebhook(testSecret, h, body, testNow, time.Minute)
		if err == nil {
			sec, perr := strconv.ParseInt(ts, 10, 64)
			if perr != nil || sec < testNow.Unix()-60 || sec > testNow.Unix()+60 {
				t.Fatalf("accepted timestamp %q", ts)
			}
			if !strings.Contains(strings.ToLower(sig), "v1="+sign(testSecret, ts, body)) {
				t.Fatalf("accepted signature %q", sig)
			}
		} else if !errors.Is(err, notify.ErrWebhookMalformed) && !errors.Is(err, notify.ErrWebhookTimestamp) && !errors.Is(err, notify.ErrWebhookSignature) {
			t.Fatalf("error %v matches no sentinel", err)
		}
		// Whatever the input, a request signed by the scheme verifies.
		if err := notify.VerifyWebhook(testSecret, http.Header{
			"Sspr-Timestamp": {ts}, "Sspr-Signature": {"v1=" + sign(testSecret, ts, body)}}, body, testNow, time.Minute); err == nil {
			return
		} else if sec, perr := strconv.ParseInt(ts, 10, 64); perr == nil && len(ts) <= 12 && strings.Trim(ts, "0123456789") == "" &&
			sec >= testNow.Unix()-60 && sec <= testNow.Unix()+60 {
			t.Fatalf("refused a genuine request with timestamp %q: %v", ts, err)
		}
	})
}

func TestWebhookConcurrentSends(t *testing.T) {
	rec, srv := newRecorder(t, 200, "")
	wh := newWebhook(t, srv.URL)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			errs <- wh.Send(t.Context(), notify.Message{Channel: "sms", To: "+1555010" + strconv.Itoa(i), Text: "t"})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range rec.requests() {
		if err := notify.VerifyWebhook(testSecret, r.header, r.body, testNow, 0); err != nil {
			t.Fatalf("request %s: %v", r.body, err)
		}
	}
	if n := len(rec.requests()); n != 16 {
		t.Fatalf("%d requests", n)
	}
}

// ExampleVerifyWebhook is a gateway that checks a [notify.Webhook]'s
// requests before it sends anything.
func ExampleVerifyWebhook() {
	secret := []byte("a random secret of at least 32 bytes, shared")
	gateway := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
		if err != nil {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		if err := notify.VerifyWebhook(secret, r.Header, body, time.Now(), 0); err != nil {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		var m notify.Message
		if err := json.Unmarshal(body, &m); err != nil || m.Channel != "sms" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		fmt.Println("gateway: send to", m.To) // hand m.Text to the SMS provider here
		w.WriteHeader(http.StatusAccepted)
	})
	srv := httptest.NewServer(gateway)
	defer srv.Close()

	wh, err := notify.NewWebhook(notify.WebhookConfig{URL: srv.URL, Secret: secret})
	if err != nil {
		panic(err)
	}
	err = wh.Send(context.Background(), notify.Message{Channel: "sms", To: "+15550100", Text: "Your code is 12345678"})
	fmt.Println("sent:", err == nil)
	// Output:
	// gateway: send to +15550100
	// sent: true
}
