package password

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sspr-go/sspr/plugin/internal/outbound"
)

// PwnedRange defaults and bounds.
const (
	// DefaultPwnedRangeBaseURL is the Have I Been Pwned Pwned Passwords
	// service.
	DefaultPwnedRangeBaseURL = "https://api.pwnedpasswords.com"
	// DefaultPwnedRangeTimeout is the timeout of the default HTTP client.
	DefaultPwnedRangeTimeout = 5 * time.Second
	// DefaultPwnedRangeUserAgent is the default User-Agent header.
	DefaultPwnedRangeUserAgent = "sspr"
	// MaxPwnedRangeResponse is the most bytes of a range response read
	// (after content decoding); a longer response is an error. A padded
	// response of the real service is about 40 KiB.
	MaxPwnedRangeResponse = 1 << 20
)

// pwnedPrefixLen is the number of hex characters of the SHA-1 sent, and
// pwnedSuffixLen the number matched locally.
const (
	pwnedPrefixLen = 5
	pwnedSuffixLen = sha1.Size*2 - pwnedPrefixLen
)

// PwnedRangeConfig configures a [PwnedRange]. The zero value asks the Have I
// Been Pwned service.
type PwnedRangeConfig struct {
	// BaseURL is the service, without the "/range/" path: requests go to
	// BaseURL + "/range/" + prefix. It must be an absolute https URL (plain
	// http only for a loopback host: localhost, 127.0.0.0/8, ::1) with no
	// user info, query or fragment; a trailing slash is dropped. Default:
	// "https://api.pwnedpasswords.com".
	BaseURL string

	// Client sends the requests. Default: a client with a 5-second timeout
	// that does not follow redirects (a redirect is an error), using
	// http.DefaultTransport.
	Client *http.Client

	// MinCount is how many times a password must have been seen in breaches
	// to count as breached. Default: 1 (also when 0); must not be negative.
	MinCount int

	// UserAgent is sent as the User-Agent header. Default: "sspr"; must not
	// contain control characters.
	UserAgent string
}

// PwnedRange is a [BreachChecker] for the Have I Been Pwned Pwned
// Passwords "range" API and services compatible with it. It uses
// k-anonymity: only the first 5 hex characters of the password's SHA-1 are
// sent (GET {BaseURL}/range/{PREFIX}, with "Add-Padding: true" so that every
// response has about the same size); the service answers with the
// remaining 35 characters of every breached hash with that prefix, one
// "SUFFIX:COUNT" a line, and the match is made locally. Padding lines (count
// 0) are ignored.
//
// A response other than 200 OK, one longer than [MaxPwnedRangeResponse], an
// empty or malformed body, a redirect (with the default client) and a
// network failure are errors, never "not breached". No error contains the
// password, its hash or the prefix sent.
//
// Create it with [NewPwnedRange]; it is immutable and safe for concurrent
// use. It caches nothing.
type PwnedRange struct {
	baseURL   string
	client    *http.Client
	minCount  int64
	userAgent string
}

var _ BreachChecker = (*PwnedRange)(nil)

// NewPwnedRange copies cfg, fills its defaults and validates every field.
// The error names each bad field, for example
// "password: config: field 'BaseURL': must be https (http only for a
// loopback host)"; several are joined with [errors.Join].
func NewPwnedRange(cfg PwnedRangeConfig) (*PwnedRange, error) {
	var errs []error
	r := &PwnedRange{
		baseURL:   cfg.BaseURL,
		client:    cfg.Client,
		minCount:  int64(cfg.MinCount),
		userAgent: cfg.UserAgent,
	}

	if r.baseURL == "" {
		r.baseURL = DefaultPwnedRangeBaseURL
	}
	r.baseURL = strings.TrimSuffix(r.baseURL, "/")
	if err := checkPwnedBaseURL(r.baseURL); err != "" {
		errs = append(errs, configError("BaseURL", "%s", err))
	}

	if r.client == nil {
		r.client = outbound.NewClient(DefaultPwnedRangeTimeout)
	}

	switch {
	case r.minCount == 0:
		r.minCount = 1
	case r.minCount < 0:
		errs = append(errs, configError("MinCount", "must not be negative"))
	}

	if r.userAgent == "" {
		r.userAgent = DefaultPwnedRangeUserAgent
	}
	if strings.ContainsFunc(r.userAgent, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
		errs = append(errs, configError("UserAgent", "must not contain control characters"))
	}

	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// checkPwnedBaseURL returns what is wrong with the base URL raw, or "".
func checkPwnedBaseURL(raw string) string {
	u := outbound.ParseURL(raw)
	switch {
	case !u.Absolute:
		return "must be an absolute https URL"
	case !u.HTTP:
		return "must be https (http only for a loopback host)"
	case u.UserInfo || u.Query || u.Fragment:
		return "must have no user info, query or fragment"
	case !u.Secure:
		return "must be https (http only for a loopback host)"
	}
	return ""
}

// Breached reports whether password has been seen in breaches at least
// MinCount times. It sends one GET request with the first 5 hex characters
// of the password's SHA-1 and matches the rest locally. Any failure (ctx
// ending, the network, a status other than 200, an oversize, empty or
// malformed body) is an error, which wraps the cause (such as
// context.DeadlineExceeded) and contains neither the password nor any part
// of its hash.
func (r *PwnedRange) Breached(ctx context.Context, password string) (bool, error) {
	sum := sha1.Sum([]byte(password))
	var h [sha1.Size * 2]byte
	hex.Encode(h[:], sum[:])
	hash := bytes.ToUpper(h[:])
	prefix, suffix := string(hash[:pwnedPrefixLen]), hash[pwnedPrefixLen:]

	// The request's URL holds the prefix: errors leave it out.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.baseURL+"/range/"+prefix, nil)
	if err != nil {
		return false, fmt.Errorf("password: pwned range: new request: %w", outbound.StripURL(err))
	}
	req.Header.Set("User-Agent", r.userAgent)
	req.Header.Set("Add-Padding", "true")

	resp, err := r.client.Do(req)
	if err != nil {
		return false, fmt.Errorf("password: pwned range: %w", outbound.StripURL(err))
	}
	defer outbound.DrainClose(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("password: pwned range: unexpected status %s", resp.Status)
	}
	body, complete, err := outbound.ReadAtMost(resp.Body, MaxPwnedRangeResponse)
	switch {
	case err != nil:
		return false, fmt.Errorf("password: pwned range: read response: %w", outbound.StripURL(err))
	case !complete:
		return false, fmt.Errorf("password: pwned range: response larger than %d bytes", MaxPwnedRangeResponse)
	}
	return parsePwnedRange(body, suffix, r.minCount)
}

// errPwnedMalformed is wrapped by the error for a malformed range response.
var errPwnedMalformed = errors.New("password: pwned range: malformed response")

// parsePwnedRange parses a range response, lines of "SUFFIX:COUNT" (35 hex
// characters in any case, a colon, a decimal count) ended by "\n" or
// "\r\n" (the last one optionally), and reports whether suffix (35 upper
// case hex characters) appears with a count of at least minCount (≥ 1, so
// padding lines, count 0, never match). An empty body, an empty line or any
// malformed line makes the whole response an error, which names the line
// number but never its content.
func parsePwnedRange(body, suffix []byte, minCount int64) (bool, error) {
	if len(body) == 0 {
		return false, fmt.Errorf("%w: empty body", errPwnedMalformed)
	}
	breached := false
	for n := 1; len(body) > 0; n++ {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) < pwnedSuffixLen+2 || line[pwnedSuffixLen] != ':' || !isHex(line[:pwnedSuffixLen]) || !isDigits(line[pwnedSuffixLen+1:]) {
			return false, fmt.Errorf("%w: line %d", errPwnedMalformed, n)
		}
		count, err := strconv.ParseInt(string(line[pwnedSuffixLen+1:]), 10, 64)
		if err != nil {
			return false, fmt.Errorf("%w: line %d: count out of range", errPwnedMalformed, n)
		}
		if count >= minCount && bytes.EqualFold(line[:pwnedSuffixLen], suffix) {
			breached = true
		}
	}
	return breached, nil
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}
