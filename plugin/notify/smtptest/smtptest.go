// Package smtptest runs a real SMTP server (github.com/emersion/go-smtp) on
// a loopback port for tests, and decodes what it receives: the plain-text
// and HTML parts of each message, quoted-printable and base64 undone.
package smtptest

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Message is one received message, decoded.
type Message struct {
	// From is the envelope sender.
	From string
	// To are the envelope recipients.
	To []string
	// Header is the parsed message header.
	Header mail.Header
	// Subject is the decoded subject.
	Subject string
	// Text is the decoded text/plain part.
	Text string
	// HTML is the decoded text/html part, if any.
	HTML string
	// Raw is the message as received.
	Raw []byte
}

// Server is an in-process SMTP server on 127.0.0.1.
type Server struct {
	// Addr is host:port of the server.
	Addr string

	srv     *smtp.Server
	mu      sync.Mutex
	msgs    []Message
	arrived chan struct{} // closed and replaced on every message
	reject  error
}

// NewServer starts a server and stops it when the test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	s := &Server{Addr: ln.Addr().String(), arrived: make(chan struct{})}
	s.srv = smtp.NewServer(backend{s})
	s.srv.Domain = "localhost"
	s.srv.ReadTimeout = 10 * time.Second
	s.srv.WriteTimeout = 10 * time.Second
	s.srv.MaxMessageBytes = 1 << 20
	s.srv.AllowInsecureAuth = true
	go func() { _ = s.srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.srv.Shutdown(ctx)
	})
	return s
}

// URL returns "smtp://" + Addr.
func (s *Server) URL() string { return "smtp://" + s.Addr }

// Reject makes the server refuse every message with err until it is
// called with nil.
func (s *Server) Reject(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reject = err
}

// Messages returns every message received so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// To returns the messages received for addr.
func (s *Server) To(addr string) []Message {
	var out []Message
	for _, m := range s.Messages() {
		for _, to := range m.To {
			if strings.EqualFold(to, addr) {
				out = append(out, m)
			}
		}
	}
	return out
}

// Wait blocks until at least n messages for addr have arrived, and returns
// the newest, or ctx's error.
func (s *Server) Wait(ctx context.Context, addr string, n int) (Message, error) {
	for {
		s.mu.Lock()
		ch := s.arrived
		s.mu.Unlock()
		if got := s.To(addr); len(got) >= n {
			return got[len(got)-1], nil
		}
		select {
		case <-ctx.Done():
			return Message{}, fmt.Errorf("smtptest: waiting for message %d to %s: %w", n, addr, ctx.Err())
		case <-ch:
		}
	}
}

func (s *Server) add(m Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reject != nil {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: s.reject.Error()}
	}
	s.msgs = append(s.msgs, m)
	close(s.arrived)
	s.arrived = make(chan struct{})
	return nil
}

type backend struct{ s *Server }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s: b.s}, nil }

type session struct {
	s    *Server
	from string
	to   []string
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error { ss.from = from; return nil }

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := Decode(raw)
	if err != nil {
		return &smtp.SMTPError{Code: 554, Message: "smtptest: cannot parse message: " + err.Error()}
	}
	m.From, m.To = ss.from, append([]string(nil), ss.to...)
	return ss.s.add(m)
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }

// Decode parses a raw message and decodes its text and HTML parts.
func Decode(raw []byte) (Message, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Message{}, err
	}
	m := Message{Header: msg.Header, Raw: raw}
	dec := new(mime.WordDecoder)
	if m.Subject, err = dec.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		m.Subject = msg.Header.Get("Subject")
	}
	if err := m.walk(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body); err != nil {
		return Message{}, err
	}
	return m, nil
}

func (m *Message) walk(contentType, encoding string, body io.Reader) error {
	if contentType == "" {
		contentType = "text/plain"
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return err
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			part, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := m.walk(part.Header.Get("Content-Type"), part.Header.Get("Content-Transfer-Encoding"), part); err != nil {
				return err
			}
		}
	}
	switch strings.ToLower(encoding) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	switch mt {
	case "text/plain":
		m.Text += string(b)
	case "text/html":
		m.HTML += string(b)
	}
	return nil
}
