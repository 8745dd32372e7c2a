package server

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/sspr-go/sspr/plugin/notify"
)

// parseSMTPURL checks the shape of Config.SMTP: "smtp://host:port", or
// "smtps://host:port" for implicit TLS, optionally with "user:password@".
func parseSMTPURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
		return nil, errors.New(`must look like "smtp://host:port"`)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("must have no path, query or fragment")
	}
	return u, nil
}

// newSMTPSender returns the sender for Config.SMTP. Messages come from
// "Demo Provider <no-reply@issuer host>". It does not connect: a server that
// is down shows up as delivery errors in the log, and sspr's outbox retries.
func newSMTPSender(raw, issuerHost string) (notify.Sender, error) {
	if _, err := parseSMTPURL(raw); err != nil {
		return nil, fieldError("SMTP", "%v", err)
	}
	s, err := notify.NewSMTP(notify.SMTPConfig{URL: raw, From: "Demo Provider <no-reply@" + issuerHost + ">"})
	if err != nil {
		return nil, fmt.Errorf("server: config: field 'SMTP': %w", err)
	}
	return s, nil
}
