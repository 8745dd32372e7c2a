package outbound

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// LoopbackHost reports whether host (a URL's Hostname, without port or
// brackets) names this machine: "localhost" in any case, or a loopback IP
// address (127.0.0.0/8, ::1). A name that merely starts with "localhost"
// ("localhost.example") does not.
func LoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// URL is what [ParseURL] finds out about a URL a client is configured with.
// The zero value is a URL that does not parse.
type URL struct {
	// Absolute reports that the URL parses and has a scheme and a host
	// name ("https://:443" has none).
	Absolute bool
	// HTTP reports that the scheme is http or https.
	HTTP bool
	// Secure reports https, or http to a [LoopbackHost].
	Secure bool
	// UserInfo reports a user name or password.
	UserInfo bool
	// Query reports a query, even an empty "?".
	Query bool
	// Fragment reports a fragment, even an empty "#": anything after it,
	// such as a path a client appends, would not be sent.
	Fragment bool
}

// ParseURL parses raw and reports what an outbound client must know of it
// before sending anything there (see [URL]).
func ParseURL(raw string) URL {
	u, err := url.Parse(raw)
	if err != nil {
		return URL{}
	}
	isHTTPS, isHTTP := u.Scheme == "https", u.Scheme == "http"
	return URL{
		Absolute: u.Scheme != "" && u.Opaque == "" && u.Host != "" && u.Hostname() != "",
		HTTP:     isHTTPS || isHTTP,
		Secure:   isHTTPS || (isHTTP && LoopbackHost(u.Hostname())),
		UserInfo: u.User != nil,
		Query:    u.RawQuery != "" || u.ForceQuery,
		Fragment: u.Fragment != "" || strings.Contains(raw, "#"),
	}
}

// NewClient returns a client with the given timeout that follows no
// redirect: it returns the redirect response itself, for the caller to
// refuse. A redirect means a misconfigured URL, and following it would
// hand the request, its body and its credentials to another address. It
// uses [http.DefaultTransport].
func NewClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// StripURL returns a client's error without the URL its [*url.Error]
// holds, whose path or query may carry a token or part of a hash: "op:
// cause", with the operation in lower case ("post: dial tcp …: connection
// refused"). The cause stays reachable with [errors.Is] and [errors.As]
// (a timeout is still a timeout). An error without a *url.Error is
// returned as it is.
func StripURL(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
	}
	return err
}

// ReadAtMost reads r up to its end, but at most limit bytes. complete
// reports that r ended within them; when it did not, b holds the first
// limit bytes (one more was read to find out). On a read error, b holds
// what was read before it.
func ReadAtMost(r io.Reader, limit int64) (b []byte, complete bool, err error) {
	b, err = io.ReadAll(io.LimitReader(r, limit+1))
	if int64(len(b)) > limit {
		return b[:limit], false, err
	}
	return b, err == nil, err
}

// drainLimit is how much of an answer's rest [DrainClose] reads.
const drainLimit = 64 << 10

// DrainClose reads at most 64 KiB of what is left of body, so that the
// connection can be reused, and closes it.
func DrainClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, drainLimit))
	_ = body.Close()
}

// ShowURL returns a configured URL as it may be shown in logs and
// formatted output: its scheme and host (with port) only, followed by
// "/REDACTED" when there is more. User info, path and query may all hold
// a key (a gateway's "/hooks/<secret>", "?key=…"), so none is shown.
func ShowURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(a URL that cannot be shown)"
	}
	shown := u.Scheme + "://" + u.Host
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		shown += "/REDACTED"
	}
	return shown
}
