package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// TwilioConfig configures a [Twilio] sender.
type TwilioConfig struct {
	// AccountSID is the account ("AC…"), the user name of HTTP basic auth
	// and a segment of the request path: letters, digits and '-' only.
	// Required.
	AccountSID string
	// AuthToken is the account's auth token, the password of HTTP basic
	// auth. Required.
	AuthToken string
	// From is the sending number in E.164 (or an alphanumeric sender ID).
	// Exactly one of From and MessagingServiceSID is required.
	From string
	// MessagingServiceSID ("MG…") lets a Messaging Service pick the sender.
	// Exactly one of From and MessagingServiceSID is required.
	MessagingServiceSID string
	// BaseURL is the API root, which may end in a path for a
	// Twilio-compatible service. It must be https; http is accepted only
	// for a loopback host (for tests). Default: "https://api.twilio.com".
	BaseURL string
	// Client sends the requests and is used as given. Default: a client
	// with a 10-second timeout that follows no redirects.
	Client *http.Client
}

// Twilio sends SMS through Twilio's Programmable Messaging API or a
// service compatible with it. Each message is one POST, form-encoded, with
// HTTP basic auth AccountSID:AuthToken, to
//
//	{BaseURL}/2010-04-01/Accounts/{AccountSID}/Messages.json
//
// with the fields To, Body (the message text) and From or
// MessagingServiceSid. It sends only the "sms" channel; other channels fail
// permanently ([ErrPermanent]). It is safe for concurrent use.
//
// Any 2xx (Twilio answers 201) is success: Twilio has queued the message.
// 408, 429, 5xx and network errors are retryable; redirects and other 4xx
// (such as 400 with code 21211, an invalid To number, or 401 for wrong
// credentials) match [ErrPermanent]. Errors carry the status and Twilio's
// error code ("notify: twilio: status 400, code 21211"), never Twilio's
// message, which may quote the number; an answer without a code carries at
// most 80 bytes of redacted body, as [Webhook] errors do.
type Twilio struct {
	endpoint string
	sid      string
	token    string
	from     string
	service  string
	client   *http.Client
}

var _ Sender = (*Twilio)(nil)

// NewTwilio validates cfg and returns a sender. It does not connect.
func NewTwilio(cfg TwilioConfig) (*Twilio, error) {
	var errs []error
	switch {
	case cfg.AccountSID == "":
		errs = append(errs, errors.New("notify: twilio: field 'AccountSID': is required"))
	case strings.TrimLeft(cfg.AccountSID, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") != "":
		errs = append(errs, errors.New("notify: twilio: field 'AccountSID': must hold only letters, digits and '-'"))
	}
	if cfg.AuthToken == "" {
		errs = append(errs, errors.New("notify: twilio: field 'AuthToken': is required"))
	}
	switch {
	case cfg.From == "" && cfg.MessagingServiceSID == "":
		errs = append(errs, errors.New("notify: twilio: field 'From': set From or MessagingServiceSID"))
	case cfg.From != "" && cfg.MessagingServiceSID != "":
		errs = append(errs, errors.New("notify: twilio: field 'From': set From or MessagingServiceSID, not both"))
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://api.twilio.com"
	}
	if err := checkEndpoint(cfg.BaseURL, false); err != nil {
		errs = append(errs, fmt.Errorf("notify: twilio: field 'BaseURL': %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	t := &Twilio{
		endpoint: strings.TrimRight(cfg.BaseURL, "/") + "/2010-04-01/Accounts/" + cfg.AccountSID + "/Messages.json",
		sid:      cfg.AccountSID,
		token:    cfg.AuthToken,
		from:     cfg.From,
		service:  cfg.MessagingServiceSID,
		client:   cfg.Client,
	}
	if t.client == nil {
		t.client = defaultHTTPClient()
	}
	return t, nil
}

// Send asks Twilio to send m.Text to m.To (see [Twilio]). Errors never
// carry m's text or recipient; permanent ones match [ErrPermanent].
func (t *Twilio) Send(ctx context.Context, m Message) error {
	if m.Channel != "sms" {
		return Permanent(fmt.Errorf("notify: twilio: cannot send channel %q (only \"sms\")", m.Channel))
	}
	form := url.Values{"To": {m.To}, "Body": {m.Text}}
	if t.service != "" {
		form.Set("MessagingServiceSid", t.service)
	} else {
		form.Set("From", t.from)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("notify: twilio: %w", err)
	}
	req.SetBasicAuth(t.sid, t.token)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	return send(t.client, req, "twilio", 4<<10, func(status int, head []byte) error {
		var e struct {
			Code int `json:"code"`
		}
		if json.Unmarshal(head, &e) == nil && e.Code != 0 {
			return statusError("twilio", status, strconv.Itoa(e.Code), "")
		}
		return statusError("twilio", status, "", sanitize(head, m))
	})
}

// LogValue keeps the auth token out of logs.
func (c TwilioConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.String("account", c.AccountSID), slog.String("token", "REDACTED"))
}

// String keeps the auth token out of formatted output (%v, %+v).
func (c TwilioConfig) String() string {
	return "notify.TwilioConfig{AccountSID: " + c.AccountSID + ", AuthToken: REDACTED}"
}

// GoString keeps the auth token out of %#v too.
func (c TwilioConfig) GoString() string { return c.String() }

// LogValue keeps the auth token out of logs.
func (t *Twilio) LogValue() slog.Value { return slog.GroupValue(slog.String("account", t.sid)) }

// String keeps the auth token out of formatted output.
func (t *Twilio) String() string { return "notify.Twilio(" + t.sid + ")" }

// GoString keeps the auth token out of %#v too.
func (t *Twilio) GoString() string { return t.String() }
