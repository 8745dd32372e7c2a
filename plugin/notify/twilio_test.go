package notify_test

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sspr-go/sspr/plugin/notify"
)

const (
	testSID   = "AC0123456789abcdef0123456789abcdef"
	testToken = "tok-0123456789"
)

func newTwilio(t *testing.T, cfg notify.TwilioConfig) *notify.Twilio {
	t.Helper()
	cfg.AccountSID, cfg.AuthToken = testSID, testToken
	tw, err := notify.NewTwilio(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tw
}

func TestTwilioRequest(t *testing.T) {
	tests := []struct {
		name     string
		cfg      notify.TwilioConfig
		base     string // appended to the server's URL
		path     string
		wantForm url.Values
	}{
		{"from", notify.TwilioConfig{From: "+15550000"}, "", "/2010-04-01/Accounts/" + testSID + "/Messages.json",
			url.Values{"To": {smsMsg.To}, "Body": {smsMsg.Text}, "From": {"+15550000"}}},
		{"messaging service", notify.TwilioConfig{MessagingServiceSID: "MG0123"}, "", "/2010-04-01/Accounts/" + testSID + "/Messages.json",
			url.Values{"To": {smsMsg.To}, "Body": {smsMsg.Text}, "MessagingServiceSid": {"MG0123"}}},
		{"compatible service under a path", notify.TwilioConfig{From: "+15550000"}, "/api/laml/", "/api/laml/2010-04-01/Accounts/" + testSID + "/Messages.json",
			url.Values{"To": {smsMsg.To}, "Body": {smsMsg.Text}, "From": {"+15550000"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				user, pass, ok := r.BasicAuth()
				switch {
				case r.Method != http.MethodPost || r.URL.Path != tt.path || r.URL.RawQuery != "":
					t.Errorf("request %s %s, want POST %s", r.Method, r.URL, tt.path)
				case !ok || user != testSID || pass != testToken:
					t.Errorf("basic auth %q %q %v", user, pass, ok)
				case r.Header.Get("Content-Type") != "application/x-www-form-urlencoded":
					t.Errorf("content type %q", r.Header.Get("Content-Type"))
				}
				if err := r.ParseForm(); err != nil {
					t.Errorf("form: %v", err)
				}
				if r.PostForm.Encode() != tt.wantForm.Encode() {
					t.Errorf("form %v, want %v", r.PostForm, tt.wantForm)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusCreated)
				_, _ = w.Write([]byte(`{"sid":"SM0123","status":"queued","to":"` + smsMsg.To + `"}`))
			}))
			t.Cleanup(srv.Close)
			tt.cfg.BaseURL = srv.URL + tt.base
			if err := newTwilio(t, tt.cfg).Send(t.Context(), smsMsg); err != nil {
				t.Fatalf("send: %v", err)
			}
			if n := calls.Load(); n != 1 {
				t.Fatalf("%d calls", n)
			}
		})
	}
}

func TestTwilioRefusesOtherChannels(t *testing.T) {
	rec, srv := newRecorder(t, 201, "{}")
	tw := newTwilio(t, notify.TwilioConfig{From: "+15550000", BaseURL: srv.URL})
	err := tw.Send(t.Context(), notify.Message{Channel: "email", To: "a@example.com", Text: "t"})
	if !errors.Is(err, notify.ErrPermanent) || !strings.Contains(err.Error(), `"email"`) {
		t.Fatalf("err = %v, want a permanent error naming the channel", err)
	}
	if n := len(rec.requests()); n != 0 {
		t.Fatalf("%d requests", n)
	}
}

func TestTwilioClassifiesAnswers(t *testing.T) {
	for _, tt := range statusCases {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			// Twilio's error body, whose message quotes the number.
			answer := `{"code":2` + strconv.Itoa(tt.status) + `1,"message":"The 'To' number ` + smsMsg.To + ` is not a valid phone number.","more_info":"https://www.twilio.com/docs/errors/21211","status":` + strconv.Itoa(tt.status) + `}`
			if !tt.wantErr {
				answer = `{"sid":"SM0123","status":"queued","body":"` + smsMsg.Text + `"}`
			}
			rec, srv := newRecorder(t, tt.status, answer)
			err := newTwilio(t, notify.TwilioConfig{From: "+15550000", BaseURL: srv.URL}).Send(t.Context(), smsMsg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got := errors.Is(err, notify.ErrPermanent); got != tt.permanent {
				t.Fatalf("permanent = %v, want %v (err %v)", got, tt.permanent, err)
			}
			if want := "notify: twilio: status " + strconv.Itoa(tt.status) + ", code 2" + strconv.Itoa(tt.status) + "1"; tt.wantErr && err.Error() != want {
				t.Fatalf("err %q, want %q", err, want)
			}
			assertNoLeak(t, err)
			if n := len(rec.requests()); n != 1 {
				t.Fatalf("%d requests (redirects must not be followed)", n)
			}
		})
	}
	t.Run("answer without a code", func(t *testing.T) {
		_, srv := newRecorder(t, 502, "<html>upstream failed for "+smsMsg.To+"</html>")
		err := newTwilio(t, notify.TwilioConfig{From: "+15550000", BaseURL: srv.URL}).Send(t.Context(), smsMsg)
		if err == nil || errors.Is(err, notify.ErrPermanent) || err.Error() != "notify: twilio: status 502: <html>upstream failed for [redacted]</html>" {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("closed server", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		err := newTwilio(t, notify.TwilioConfig{From: "+15550000", BaseURL: srv.URL}).Send(t.Context(), smsMsg)
		if err == nil || errors.Is(err, notify.ErrPermanent) || !strings.HasPrefix(err.Error(), "notify: twilio: post: ") {
			t.Fatalf("err = %v, want a retryable error", err)
		}
		assertNoLeak(t, err, testToken)
	})
}

func TestTwilioConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  notify.TwilioConfig
		want string
	}{
		{"empty", notify.TwilioConfig{}, "notify: twilio: field 'AccountSID': is required\n" +
			"notify: twilio: field 'AuthToken': is required\n" +
			"notify: twilio: field 'From': set From or MessagingServiceSID"},
		{"both senders", notify.TwilioConfig{AccountSID: testSID, AuthToken: "t", From: "+1", MessagingServiceSID: "MG1"},
			"notify: twilio: field 'From': set From or MessagingServiceSID, not both"},
		{"sid escapes the path", notify.TwilioConfig{AccountSID: "AC1/../x", AuthToken: "t", From: "+1"},
			"notify: twilio: field 'AccountSID': must hold only letters, digits and '-'"},
		{"http on the network", notify.TwilioConfig{AccountSID: testSID, AuthToken: "t", From: "+1", BaseURL: "http://api.twilio.com"},
			"notify: twilio: field 'BaseURL': must be https (http only for a loopback host)"},
		{"query", notify.TwilioConfig{AccountSID: testSID, AuthToken: "t", From: "+1", BaseURL: "https://api.twilio.com/?x=1"},
			"notify: twilio: field 'BaseURL': must not have a query or fragment"},
		{"not a URL", notify.TwilioConfig{AccountSID: testSID, AuthToken: "t", From: "+1", BaseURL: "api.twilio.com"},
			"notify: twilio: field 'BaseURL': must be an absolute http or https URL"},
		// The path appended to it would be a fragment, never sent.
		{"empty fragment", notify.TwilioConfig{AccountSID: testSID, AuthToken: "t", From: "+1", BaseURL: "https://api.twilio.com#"},
			"notify: twilio: field 'BaseURL': must not have a query or fragment"},
		{"port without host name", notify.TwilioConfig{AccountSID: testSID, AuthToken: "t", From: "+1", BaseURL: "https://:8443"},
			"notify: twilio: field 'BaseURL': must be an absolute http or https URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := notify.NewTwilio(tt.cfg)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("NewTwilio = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := notify.NewTwilio(notify.TwilioConfig{AccountSID: testSID, AuthToken: "t", From: "+15550000"}); err != nil {
		t.Fatalf("default BaseURL: %v", err)
	}
}

// TestSendersKeepSecretsOutOfLogsAndFormatting: the gateway credentials
// never show in %v/%+v/%#v output or slog lines.
func TestSendersKeepSecretsOutOfLogsAndFormatting(t *testing.T) {
	const token, secret, key, pathKey = "twilio-auth-token-0123456789", "webhook-secret-0123456789-0123456789", "gateway-key-in-query-0123456789", "gateway-key-in-path-0123456789"
	tcfg := notify.TwilioConfig{AccountSID: "AC123", AuthToken: token, From: "+15005550006", BaseURL: "http://127.0.0.1:1"}
	// A gateway that takes keys in its path and query: the URL is
	// allowed, but the keys must not show either.
	wcfg := notify.WebhookConfig{URL: "http://127.0.0.1:1/hooks/" + pathKey + "/sms?key=" + key, Secret: []byte(secret)}
	tw, err := notify.NewTwilio(tcfg)
	if err != nil {
		t.Fatal(err)
	}
	wh, err := notify.NewWebhook(wcfg)
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	for _, v := range []any{tcfg, wcfg, tw, wh} {
		out := fmt.Sprintf("%v %+v %s %#v", v, v, v, v)
		log.Info("sender", "v", v)
		for _, s := range []string{out, logs.String()} {
			if strings.Contains(s, token) || strings.Contains(s, secret) || strings.Contains(s, key) || strings.Contains(s, pathKey) {
				t.Fatalf("%T shows its secret: %s", v, s)
			}
		}
	}
}
