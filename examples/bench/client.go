package main

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// newTransport returns a keep-alive transport for up to conns parallel
// connections to the provider.
func newTransport(conns int) *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns + 4,
		MaxIdleConnsPerHost: conns + 4,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
}

// newClient returns a client that never follows redirects: a start's 303
// is its answer.
func newClient(t http.RoundTripper) *http.Client {
	return &http.Client{
		Transport:     t,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// browser is one virtual user: its cookies (by name) and the CSRF token of
// the last page it read. It is not safe for concurrent use.
type browser struct {
	p       *provider
	client  *http.Client
	cookies map[string]string
	csrf    string
}

func newBrowser(p *provider, c *http.Client) *browser {
	return &browser{p: p, client: c, cookies: map[string]string{}}
}

var (
	csrfInput = regexp.MustCompile(`<input\b[^>]*\bname="csrf"[^>]*>`)
	valueAttr = regexp.MustCompile(`\bvalue="([^"]*)"`)
)

// csrfToken returns the value of the first input named csrf on a page.
func csrfToken(page string) string {
	tag := csrfInput.FindString(page)
	if m := valueAttr.FindStringSubmatch(tag); m != nil {
		return html.UnescapeString(m[1])
	}
	return ""
}

func (b *browser) keepCookies(resp *http.Response) {
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
}

func (b *browser) addCookies(req *http.Request) {
	for name, value := range b.cookies {
		req.AddCookie(&http.Cookie{Name: name, Value: value})
	}
}

// get fetches a page, keeps its cookies and its CSRF token and returns the
// body.
func (b *browser) get(ctx context.Context, path string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.p.base+path, nil)
	if err != nil {
		return "", err
	}
	b.addCookies(req)
	resp, err := b.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: status %d", path, resp.StatusCode)
	}
	b.keepCookies(resp)
	if t := csrfToken(string(body)); t != "" {
		b.csrf = t
	}
	return string(body), nil
}

// postResult is what a form POST answered.
type postResult struct {
	status   int
	location string
	latency  time.Duration // request written to body read, on the client
	header   http.Header
	alert    string // the page's role="alert" text, when it was not a redirect
}

// post sends a form with the browser's CSRF token, the provider's Origin
// and the cookies, reads the whole answer and measures the time. It keeps
// the answer's cookies only if keep is set.
func (b *browser) post(ctx context.Context, path string, form url.Values, keep bool) (postResult, error) {
	form.Set("csrf", b.csrf)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.p.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		return postResult{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.p.issuer)
	b.addCookies(req)
	began := time.Now()
	resp, err := b.client.Do(req)
	if err != nil {
		return postResult{}, err
	}
	var page []byte
	if resp.StatusCode == http.StatusSeeOther {
		_, err = io.Copy(io.Discard, resp.Body)
	} else {
		page, err = io.ReadAll(resp.Body)
	}
	resp.Body.Close()
	lat := time.Since(began)
	if err != nil {
		return postResult{}, err
	}
	if keep {
		b.keepCookies(resp)
	}
	return postResult{status: resp.StatusCode, location: resp.Header.Get("Location"), latency: lat, header: resp.Header,
		alert: alertText(string(page))}, nil
}

var (
	alertElem = regexp.MustCompile(`(?s)<[a-z]+\b[^>]*\brole="alert"[^>]*>(.*?)</(?:div|p)>`)
	tags      = regexp.MustCompile(`<[^>]*>`)
)

// alertText returns the text of a page's first role="alert" element: the
// reason sspr gives for a refused form.
func alertText(page string) string {
	m := alertElem.FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return strings.Join(strings.Fields(html.UnescapeString(tags.ReplaceAllString(m[1], " "))), " ")
}

// String describes an answer that was not the expected redirect.
func (r postResult) String() string {
	s := fmt.Sprintf("status %d", r.status)
	if r.location != "" {
		s += fmt.Sprintf(", Location %q", r.location)
	}
	if r.alert != "" {
		s += fmt.Sprintf(", page says %q", r.alert)
	}
	return s
}

// redirectsTo reports whether a POST answered 303 to path under the
// provider.
func (r postResult) redirectsTo(path string) bool {
	if r.status != http.StatusSeeOther {
		return false
	}
	u, err := url.Parse(r.location)
	return err == nil && u.Path == path
}

// mailboxMessage is one entry of /dev/mailbox.json.
type mailboxMessage struct {
	To         string    `json:"to"`
	Text       string    `json:"text"`
	ReceivedAt time.Time `json:"received_at"`
}

// codeLine finds the emailed code: 8 digits at the end of a line.
var codeLine = regexp.MustCompile(`(?m)\s(\d{8})\s*$`)

// waitForCode polls the dev mailbox until a message to addr that arrived
// after since carries a code, and returns the code.
func waitForCode(ctx context.Context, c *http.Client, p *provider, addr string, since time.Time) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	wait := 5 * time.Millisecond
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/dev/mailbox.json", nil)
		if err != nil {
			return "", err
		}
		resp, err := c.Do(req)
		if err != nil {
			return "", fmt.Errorf("dev mailbox: %w", err)
		}
		var box struct {
			Messages []mailboxMessage `json:"messages"`
		}
		err = json.NewDecoder(resp.Body).Decode(&box)
		resp.Body.Close()
		if err != nil {
			return "", fmt.Errorf("dev mailbox: %w", err)
		}
		for _, m := range box.Messages { // newest first
			if strings.EqualFold(m.To, addr) && !m.ReceivedAt.Before(since) {
				if sm := codeLine.FindStringSubmatch(m.Text); sm != nil {
					return sm[1], nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no code for %s in the dev mailbox: %w", addr, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}
