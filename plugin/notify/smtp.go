package notify

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/sspr-go/sspr/plugin/internal/outbound"
)

// SMTPConfig configures an [SMTP] sender.
type SMTPConfig struct {
	// URL is the server: "smtp://[user:password@]host[:port]" (STARTTLS,
	// required unless the host is a loopback address; default port 587) or
	// "smtps://[user:password@]host[:port]" (implicit TLS; default port
	// 465). Required.
	URL string
	// From is the sender address. Required.
	From string
	// HELO is the name sent in HELO/EHLO. Default: "localhost".
	HELO string
	// Timeout bounds one delivery. Default: 15 seconds.
	Timeout time.Duration
}

// SMTP sends email over SMTP with github.com/wneessen/go-mail.
type SMTP struct {
	host string
	opts []mail.Option
	from string
}

var _ Sender = (*SMTP)(nil)

// NewSMTP validates cfg and returns a sender. It does not connect.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	var errs []error
	u, err := url.Parse(cfg.URL)
	switch {
	case cfg.URL == "":
		errs = append(errs, errors.New("notify: config: field 'URL': is required"))
	case err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "":
		errs = append(errs, errors.New("notify: config: field 'URL': must look like smtp://host:port or smtps://host:port"))
	}
	if cfg.From == "" {
		errs = append(errs, errors.New("notify: config: field 'From': is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.HELO == "" {
		cfg.HELO = "localhost"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	port := 587
	if u.Scheme == "smtps" {
		port = 465
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port <= 0 || port > 65535 {
			return nil, errors.New("notify: config: field 'URL': bad port")
		}
	}
	opts := []mail.Option{mail.WithPort(port), mail.WithHELO(cfg.HELO), mail.WithTimeout(cfg.Timeout)}
	switch {
	case u.Scheme == "smtps":
		opts = append(opts, mail.WithSSL())
	case outbound.LoopbackHost(u.Hostname()):
		opts = append(opts, mail.WithTLSPolicy(mail.TLSOpportunistic))
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	if u.User != nil {
		pw, _ := u.User.Password()
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover), mail.WithUsername(u.User.Username()), mail.WithPassword(pw))
	}
	return &SMTP{host: u.Hostname(), opts: opts, from: cfg.From}, nil
}

// Send delivers m in one SMTP session.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	msg := mail.NewMsg()
	if err := msg.From(s.from); err != nil {
		return fmt.Errorf("notify: smtp: from: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return fmt.Errorf("notify: smtp: to: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetBodyString(mail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(mail.TypeTextHTML, m.HTML)
	}
	c, err := mail.NewClient(s.host, s.opts...)
	if err != nil {
		return fmt.Errorf("notify: smtp: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("notify: smtp: send: %w", err)
	}
	return nil
}
