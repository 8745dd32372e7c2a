package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sspr-go/sspr/plugin/internal/outbound"
)

// Webhook signature headers and their defaults; see [Webhook] for the
// scheme.
const (
	// WebhookTimestampHeader carries the sending time in Unix seconds.
	WebhookTimestampHeader = "Sspr-Timestamp"
	// WebhookSignatureHeader carries "v1=" and the hex HMAC-SHA256.
	WebhookSignatureHeader = "Sspr-Signature"
	// DefaultWebhookTolerance is how far a timestamp may be from the
	// receiver's clock when [VerifyWebhook] is given no tolerance.
	DefaultWebhookTolerance = 5 * time.Minute
	// MinWebhookSecret is the shortest secret, in bytes, that [NewWebhook]
	// and [VerifyWebhook] accept.
	MinWebhookSecret = 32
)

// Sentinel errors of [VerifyWebhook]. A receiver should answer all of them
// alike (401, no detail).
var (
	// ErrWebhookMalformed reports a missing, repeated or garbled signature
	// header.
	ErrWebhookMalformed = errors.New("notify: webhook: malformed signature headers")
	// ErrWebhookTimestamp reports a timestamp outside the tolerance.
	ErrWebhookTimestamp = errors.New("notify: webhook: timestamp outside tolerance")
	// ErrWebhookSignature reports that no signature matches the body.
	ErrWebhookSignature = errors.New("notify: webhook: signature mismatch")
)

// WebhookConfig configures a [Webhook] sender.
type WebhookConfig struct {
	// URL is the gateway's endpoint. It must be https; http is accepted
	// only for a loopback host (localhost, 127.0.0.0/8, ::1), because the
	// body carries reset codes. Required.
	URL string
	// Secret keys the HMAC-SHA256 signature; the gateway holds the same
	// bytes. At least [MinWebhookSecret] (32) random bytes. Required.
	Secret []byte
	// Client sends the requests and is used as given. Default: a client
	// with a 10-second timeout that follows no redirects.
	Client *http.Client
	// Now is the clock for the timestamp header. Default: time.Now.
	Now func() time.Time
}

// Webhook sends each message as a signed JSON POST to an HTTP endpoint:
// an SMS (or other) gateway that the host runs or adapts. It is safe for
// concurrent use.
//
// # Request
//
// One POST per message, Content-Type application/json:
//
//	{"channel":"sms","to":"+15550100","subject":"…","text":"Your code is …"}
//
// "subject" appears only when the message has one; there is no "html". The
// body decodes into [Message]. Two headers sign it:
//
//	Sspr-Timestamp: 1767225600
//	Sspr-Signature: v1=<64 lower-case hex digits>
//
// The timestamp is the sending time in decimal Unix seconds. The v1 value
// is the hex HMAC-SHA256, keyed with the shared secret, of the timestamp,
// a full stop and the raw body:
//
//	v1 = hex(HMAC-SHA256(secret, timestamp + "." + body))
//
// A receiver recomputes it over the body bytes exactly as received (before
// parsing them), compares in constant time and refuses a timestamp more
// than a few minutes from its own clock. [VerifyWebhook] does all of it.
// Within that window a captured request could be replayed; a receiver that
// minds remembers the signatures it has seen for the window.
//
// # Response
//
// Any 2xx is success. 408, 429, 5xx and network errors are retryable: the
// [Worker] tries again with backoff. Redirects (not followed by the default
// client) and other 4xx match [ErrPermanent]: the message is given up.
// Delivery is at least once: a gateway that answers after the client's
// timeout gets the message again.
//
// Errors carry the status and at most 80 bytes of the response body,
// reduced to printable ASCII, with the recipient, the text, every word of
// six or more letters or digits from the text, and every run of six or more
// digits replaced by "[redacted]"; never the text or the recipient. Network errors
// do not carry the URL, which may hold a token in its query.
type Webhook struct {
	url    string
	secret []byte
	client *http.Client
	now    func() time.Time
}

var _ Sender = (*Webhook)(nil)

// NewWebhook validates cfg and returns a sender. It copies the secret and
// does not connect.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	var errs []error
	if err := checkEndpoint(cfg.URL, true); err != nil {
		errs = append(errs, fmt.Errorf("notify: webhook: field 'URL': %w", err))
	}
	switch {
	case len(cfg.Secret) == 0:
		errs = append(errs, errors.New("notify: webhook: field 'Secret': is required"))
	case len(cfg.Secret) < MinWebhookSecret:
		errs = append(errs, fmt.Errorf("notify: webhook: field 'Secret': must be at least %d bytes", MinWebhookSecret))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	w := &Webhook{url: cfg.URL, secret: bytes.Clone(cfg.Secret), client: cfg.Client, now: cfg.Now}
	if w.client == nil {
		w.client = defaultHTTPClient()
	}
	if w.now == nil {
		w.now = time.Now
	}
	return w, nil
}

// Send POSTs m (see [Webhook]) and classifies the answer. Errors never carry
// m's text or recipient; permanent ones match [ErrPermanent].
func (w *Webhook) Send(ctx context.Context, m Message) error {
	body, err := json.Marshal(Message{Channel: m.Channel, To: m.To, Subject: m.Subject, Text: m.Text})
	if err != nil {
		return Permanent(errors.New("notify: webhook: cannot encode the message"))
	}
	ts := strconv.FormatInt(w.now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("notify: webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(WebhookTimestampHeader, ts)
	req.Header.Set(WebhookSignatureHeader, "v1="+hex.EncodeToString(webhookMAC(w.secret, ts, body)))
	return send(w.client, req, "webhook", 1<<10, func(status int, head []byte) error {
		return statusError("webhook", status, "", sanitize(head, m))
	})
}

// VerifyWebhook checks a request signed by a [Webhook]: header holds its
// headers, body its raw body, now the receiver's clock. It returns nil when
// the timestamp is within tolerance of now (≤ 0 means
// [DefaultWebhookTolerance]) and a v1 signature matches, compared in
// constant time. Otherwise it returns an error matching
// [ErrWebhookMalformed] (a missing, repeated or garbled header),
// [ErrWebhookTimestamp] or [ErrWebhookSignature]; a secret shorter than
// [MinWebhookSecret] is refused with another error.
//
// The signature header may hold several entries "scheme=value", separated
// by commas or white space, and may be repeated. Entries of other schemes
// than v1 are ignored, so new schemes can be added; a garbled v1 value
// refuses the request; any matching v1 value accepts it. To rotate the
// secret, the receiver calls VerifyWebhook with the new secret and, until
// every sender has switched, the old one.
func VerifyWebhook(secret []byte, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) < MinWebhookSecret {
		return fmt.Errorf("notify: webhook: secret shorter than %d bytes", MinWebhookSecret)
	}
	if tolerance <= 0 {
		tolerance = DefaultWebhookTolerance
	}
	tsv := header.Values(WebhookTimestampHeader)
	if len(tsv) != 1 {
		return fmt.Errorf("%w: want one %s header, got %d", ErrWebhookMalformed, WebhookTimestampHeader, len(tsv))
	}
	ts := tsv[0]
	if len(ts) == 0 || len(ts) > 12 || strings.Trim(ts, "0123456789") != "" {
		return fmt.Errorf("%w: %s is not decimal Unix seconds", ErrWebhookMalformed, WebhookTimestampHeader)
	}
	var sigs [][]byte
	for _, v := range header.Values(WebhookSignatureHeader) {
		for _, e := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
			scheme, val, ok := strings.Cut(e, "=")
			if !ok || scheme == "" {
				return fmt.Errorf("%w: %s entry is not scheme=value", ErrWebhookMalformed, WebhookSignatureHeader)
			}
			if scheme != "v1" {
				continue
			}
			sig, err := hex.DecodeString(val)
			if err != nil || len(sig) != sha256.Size {
				return fmt.Errorf("%w: %s v1 value is not 64 hex digits", ErrWebhookMalformed, WebhookSignatureHeader)
			}
			sigs = append(sigs, sig)
		}
	}
	if len(sigs) == 0 {
		return fmt.Errorf("%w: no v1 entry in %s", ErrWebhookMalformed, WebhookSignatureHeader)
	}
	sec, _ := strconv.ParseInt(ts, 10, 64) // at most 12 digits: cannot fail
	if t := time.Unix(sec, 0); t.Before(now.Add(-tolerance)) || t.After(now.Add(tolerance)) {
		return ErrWebhookTimestamp
	}
	want := webhookMAC(secret, ts, body)
	ok := false
	for _, sig := range sigs {
		ok = hmac.Equal(sig, want) || ok
	}
	if !ok {
		return ErrWebhookSignature
	}
	return nil
}

func webhookMAC(secret []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Helpers shared by the HTTP senders.

const userAgent = "sspr-notify"

// defaultHTTPClient times out after 10 s and follows no redirects: a
// redirect is a misconfigured URL, and following it would hand the body
// (and credentials) to another address.
func defaultHTTPClient() *http.Client { return outbound.NewClient(10 * time.Second) }

// checkEndpoint accepts an absolute https URL, or http for a loopback host.
// A query (or fragment) is allowed only when query is true.
func checkEndpoint(raw string, query bool) error {
	if raw == "" {
		return errors.New("is required")
	}
	u := outbound.ParseURL(raw)
	switch {
	case !u.Absolute || !u.HTTP:
		return errors.New("must be an absolute http or https URL")
	case !u.Secure:
		return errors.New("must be https (http only for a loopback host)")
	case !query && (u.Query || u.Fragment):
		return errors.New("must not have a query or fragment")
	}
	return nil
}

// send sends req with client, as who ("webhook", "twilio"), and returns
// nil for a 2xx answer. A request that gets no answer is a retryable error
// without the URL, whose query may hold a token; for any other answer it
// returns describe's error for the status and the first limit bytes of the
// body.
func send(client *http.Client, req *http.Request, who string, limit int64, describe func(status int, head []byte) error) error {
	req.Header.Set("User-Agent", userAgent)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("notify: %s: %w", who, outbound.StripURL(err))
	}
	defer outbound.DrainClose(resp.Body)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	head, _, _ := outbound.ReadAtMost(resp.Body, limit)
	return describe(resp.StatusCode, head)
}

// retryableStatus reports whether a non-2xx status may succeed later.
func retryableStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
}

// statusError describes a non-2xx answer: "notify: <who>: status 400[,
// code][: detail]". Unless the status is retryable it matches
// [ErrPermanent].
func statusError(who string, status int, code, detail string) error {
	msg := fmt.Sprintf("notify: %s: status %d", who, status)
	if code != "" {
		msg += ", code " + code
	}
	if detail != "" {
		msg += ": " + detail
	}
	err := errors.New(msg)
	if retryableStatus(status) {
		return err
	}
	return Permanent(err)
}

const maxDetail = 80

// sanitize turns the start of a response body into a short, printable
// detail without m's recipient or text, which gateways like to echo: the
// recipient, the text, the subject, each word of the recipient (4+ characters) or of the text and
// subject (6+) and every run of six or more digits, however punctuated,
// become "[redacted]". Matching ignores ASCII case.
func sanitize(b []byte, m Message) string {
	low := asciiLower(string(b))
	hide := make([]bool, len(b))
	mark := func(from, to int) {
		for i := from; i < to; i++ {
			hide[i] = true
		}
	}
	secrets := []string{m.To, m.Text, m.Subject}
	for _, f := range []struct {
		s   string
		min int
	}{{m.To, 4}, {m.Text, 6}, {m.Subject, 6}} {
		for _, w := range strings.FieldsFunc(f.s, func(r rune) bool { return !isAlnum(r) }) {
			if len(w) >= f.min {
				secrets = append(secrets, w)
			}
		}
	}
	for _, sec := range secrets {
		sec = asciiLower(sec)
		for i := 0; sec != "" && i < len(low); {
			j := strings.Index(low[i:], sec)
			if j < 0 {
				break
			}
			mark(i+j, i+j+len(sec))
			i += j + len(sec)
		}
	}
	for i := 0; i < len(b); i++ {
		if !isDigit(b[i]) {
			continue
		}
		digits, end, seps := 0, i, 0
		for j := i; j < len(b); j++ {
			if isDigit(b[j]) {
				digits, end, seps = digits+1, j+1, 0
			} else if strings.IndexByte(" \t\n().-", b[j]) >= 0 && seps < 2 {
				seps++
			} else {
				break
			}
		}
		if digits >= 6 {
			if i > 0 && b[i-1] == '+' {
				i--
			}
			mark(i, end)
		}
		i = end
	}
	var out strings.Builder
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case hide[i]:
			if i == 0 || !hide[i-1] {
				out.WriteString("[redacted]")
			}
		case c < 0x20 || c > 0x7e:
			out.WriteByte(' ')
		default:
			out.WriteByte(c)
		}
	}
	s := strings.Join(strings.Fields(out.String()), " ")
	if len(s) > maxDetail {
		s = s[:maxDetail-3] + "..."
	}
	return s
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r > 0x7f
}

// LogValue keeps the signing secret (and a key in the URL) out of logs.
func (c WebhookConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.String("url", outbound.ShowURL(c.URL)), slog.String("secret", "REDACTED"))
}

// String keeps the signing secret out of formatted output (%v, %+v).
func (c WebhookConfig) String() string {
	return "notify.WebhookConfig{URL: " + outbound.ShowURL(c.URL) + ", Secret: REDACTED}"
}

// GoString keeps the signing secret out of %#v too.
func (c WebhookConfig) GoString() string { return c.String() }

// LogValue keeps the signing secret (and a key in the URL) out of logs.
func (w *Webhook) LogValue() slog.Value {
	return slog.GroupValue(slog.String("url", outbound.ShowURL(w.url)))
}

// String keeps the signing secret out of formatted output.
func (w *Webhook) String() string { return "notify.Webhook(" + outbound.ShowURL(w.url) + ")" }

// GoString keeps the signing secret out of %#v too.
func (w *Webhook) GoString() string { return w.String() }
