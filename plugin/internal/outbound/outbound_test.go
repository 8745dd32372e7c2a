package outbound_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/sspr-go/sspr/plugin/internal/outbound"
)

func TestLoopbackHost(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"localhost", true},
		{"LocalHost", true},
		{"127.0.0.1", true},
		{"127.1.2.3", true},
		{"::1", true},
		{"", false},
		{"localhost.example", false},
		{"example.localhost.com", false},
		{"10.0.0.1", false},
		{"0.0.0.0", false},
		{"::", false},
		{"[::1]", false}, // a Hostname has no brackets
		{"example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			if got := outbound.LoopbackHost(tt.host); got != tt.want {
				t.Fatalf("LoopbackHost(%q) = %v, want %v", tt.host, got, tt.want)
			}
		})
	}
}

func TestParseURL(t *testing.T) {
	secure := outbound.URL{Absolute: true, HTTP: true, Secure: true}
	with := func(f func(*outbound.URL)) outbound.URL {
		u := secure
		f(&u)
		return u
	}
	tests := []struct {
		name, raw string
		want      outbound.URL
	}{
		{"https", "https://gw.example/sms", secure},
		{"https with port", "https://gw.example:8443", secure},
		{"http localhost", "http://localhost:8080/x", secure},
		{"http LOCALHOST", "http://LOCALHOST:8080/x", secure},
		{"http 127.0.0.1", "http://127.0.0.1/x", secure},
		{"http ::1", "http://[::1]:9/x", secure},
		{"http on the network", "http://gw.example/sms", with(func(u *outbound.URL) { u.Secure = false })},
		{"http localhost lookalike", "http://localhost.evil.example", with(func(u *outbound.URL) { u.Secure = false })},
		{"other scheme", "ftp://127.0.0.1", with(func(u *outbound.URL) { u.HTTP, u.Secure = false, false })},
		{"user info", "https://user:pw@gw.example", with(func(u *outbound.URL) { u.UserInfo = true })},
		{"query", "https://gw.example/sms?token=x", with(func(u *outbound.URL) { u.Query = true })},
		{"empty query", "https://gw.example/sms?", with(func(u *outbound.URL) { u.Query = true })},
		{"fragment", "https://gw.example/#x", with(func(u *outbound.URL) { u.Fragment = true })},
		{"empty fragment", "https://gw.example#", with(func(u *outbound.URL) { u.Fragment = true })},
		{"no scheme", "gw.example/sms", outbound.URL{}},
		{"relative", "/sms", outbound.URL{}},
		{"no host", "https://", outbound.URL{HTTP: true, Secure: true}},
		{"port without host name", "https://:443", outbound.URL{HTTP: true, Secure: true}},
		{"opaque", "https:gw.example", outbound.URL{HTTP: true, Secure: true}},
		{"unparsable", "https://gw example", outbound.URL{}},
		{"empty", "", outbound.URL{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := outbound.ParseURL(tt.raw); got != tt.want {
				t.Fatalf("ParseURL(%q) = %+v, want %+v", tt.raw, got, tt.want)
			}
		})
	}
}

func TestNewClientFollowsNoRedirect(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	c := outbound.NewClient(7 * time.Second)
	if c.Timeout != 7*time.Second {
		t.Fatalf("timeout %v", c.Timeout)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/sms", strings.NewReader("body"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	outbound.DrainClose(resp.Body)
	if resp.StatusCode != http.StatusTemporaryRedirect || hits.Load() != 1 {
		t.Fatalf("status %d after %d requests; want the redirect itself, one request", resp.StatusCode, hits.Load())
	}
}

func TestStripURL(t *testing.T) {
	const token = "s3cr3t-query"
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(hang.Close)

	send := func(t *testing.T, c *http.Client, ctx context.Context, base string) error {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/range/ABCDE?token="+token, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err == nil {
			outbound.DrainClose(resp.Body)
			t.Fatal("no error")
		}
		return outbound.StripURL(err)
	}
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name    string
		err     func(t *testing.T) error
		prefix  string
		is      error
		timeout bool
	}{
		{"connection refused", func(t *testing.T) error {
			return send(t, outbound.NewClient(time.Minute), t.Context(), closed.URL)
		}, "post: dial tcp ", nil, false},
		{"canceled", func(t *testing.T) error {
			return send(t, outbound.NewClient(time.Minute), canceled, hang.URL)
		}, "post: ", context.Canceled, false},
		{"client timeout", func(t *testing.T) error {
			return send(t, outbound.NewClient(20*time.Millisecond), t.Context(), hang.URL)
		}, "post: ", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err(t)
			for _, leak := range []string{token, "ABCDE", "/range/", "http://"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error %q holds %q", err, leak)
				}
			}
			if !strings.HasPrefix(err.Error(), tt.prefix) {
				t.Errorf("error %q, want prefix %q", err, tt.prefix)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v does not match %v", err, tt.is)
			}
			if ne, ok := errors.AsType[net.Error](err); tt.timeout && (!ok || !ne.Timeout()) {
				t.Errorf("error %v is not a timeout", err)
			}
		})
	}
	plain := errors.New("plain")
	if got := outbound.StripURL(plain); got != plain {
		t.Fatalf("StripURL(plain) = %v", got)
	}
	if outbound.StripURL(nil) != nil {
		t.Fatal("StripURL(nil) is not nil")
	}
}

func TestReadAtMost(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name         string
		r            io.Reader
		limit        int64
		want         string
		wantComplete bool
		wantErr      error
	}{
		{"shorter", strings.NewReader("abc"), 4, "abc", true, nil},
		{"exactly the limit", strings.NewReader("abcd"), 4, "abcd", true, nil},
		{"one byte more", strings.NewReader("abcde"), 4, "abcd", false, nil},
		{"much more", strings.NewReader(strings.Repeat("x", 1<<20)), 4, "xxxx", false, nil},
		{"empty", strings.NewReader(""), 4, "", true, nil},
		{"error after data", io.MultiReader(strings.NewReader("ab"), iotest.ErrReader(boom)), 4, "ab", false, boom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, complete, err := outbound.ReadAtMost(tt.r, tt.limit)
			if string(b) != tt.want || complete != tt.wantComplete || !errors.Is(err, tt.wantErr) {
				t.Fatalf("ReadAtMost = %q, %v, %v; want %q, %v, %v", b, complete, err, tt.want, tt.wantComplete, tt.wantErr)
			}
		})
	}
}

// body counts what is read of it and whether it was closed.
type body struct {
	r      io.Reader
	read   int
	closed bool
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read += n
	return n, err
}

func (b *body) Close() error { b.closed = true; return nil }

func TestDrainClose(t *testing.T) {
	for _, size := range []int{0, 100, 64 << 10, 1 << 20} {
		b := &body{r: bytes.NewReader(make([]byte, size))}
		outbound.DrainClose(b)
		if want := min(size, 64<<10); b.read != want || !b.closed {
			t.Fatalf("size %d: read %d, closed %v; want %d read and closed", size, b.read, b.closed, want)
		}
	}
}

func TestShowURL(t *testing.T) {
	for raw, want := range map[string]string{
		"https://sms.example":                         "https://sms.example",
		"https://sms.example/":                        "https://sms.example",
		"https://sms.example/send":                    "https://sms.example/REDACTED",
		"https://sms.example/hooks/T0/B0/s3cr3t":      "https://sms.example/REDACTED",
		"https://sms.example/send?key=s3cr3t&to=x":    "https://sms.example/REDACTED",
		"https://user:s3cr3t@sms.example/send#s3cr3t": "https://sms.example/REDACTED",
		"https://user:s3cr3t@sms.example":             "https://sms.example/REDACTED",
		"http://[::1]:8080/hook?":                     "http://[::1]:8080/REDACTED",
		"https:s3cr3t@sms.example":                    "(a URL that cannot be shown)",
		"%zz":                                         "(a URL that cannot be shown)",
	} {
		if got := outbound.ShowURL(raw); got != want || strings.Contains(got, "s3cr3t") {
			t.Errorf("ShowURL(%q) = %q, want %q", raw, got, want)
		}
	}
}
