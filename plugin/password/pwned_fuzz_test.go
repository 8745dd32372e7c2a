package password

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// fuzzRangeSuffix is the suffix of SHA-1("password"), the one the
// FuzzPwnedRangeParse target looks for.
const fuzzRangeSuffix = "1E4C9B93F3F0682250B6CF8331B7EE68FD8"

var fuzzRangeLine = regexp.MustCompile(`^[0-9A-Fa-f]{35}:[0-9]+$`)

// referencePwnedRange is a second, plain reading of the range format:
// lines split on "\n", one optional "\r" before each "\n" and one optional
// "\n" at the end.
func referencePwnedRange(body, suffix string, minCount int64) (breached, ok bool) {
	if body == "" {
		return false, false
	}
	for _, line := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if !fuzzRangeLine.MatchString(line) {
			return false, false
		}
		s, c, _ := strings.Cut(line, ":")
		n, err := strconv.ParseInt(c, 10, 64)
		if err != nil {
			return false, false
		}
		if n >= minCount && strings.EqualFold(s, suffix) {
			breached = true
		}
	}
	return breached, true
}

// FuzzPwnedRangeParse checks the parser of range responses against
// referencePwnedRange: it must never panic, must agree on which bodies are
// valid and on the answer, and its errors must not quote the body.
func FuzzPwnedRangeParse(f *testing.F) {
	f.Add([]byte(fuzzRangeSuffix+":10434004\r\n00000000000000000000000000000000000:0"), uint8(0))
	f.Add([]byte(strings.ToLower(fuzzRangeSuffix)+":3\n"), uint8(3))
	f.Add([]byte(fuzzRangeSuffix+":0\r\n"), uint8(0))
	f.Add([]byte("0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n"+fuzzRangeSuffix+":2"), uint8(1))
	f.Add([]byte(fuzzRangeSuffix+":99999999999999999999"), uint8(0))
	f.Add([]byte(fuzzRangeSuffix+":5\r\n\r\n"), uint8(0))
	f.Add([]byte("<html>maintenance</html>"), uint8(0))
	f.Add([]byte(""), uint8(0))
	f.Add([]byte("\r\n"), uint8(0))

	suffix := []byte(fuzzRangeSuffix)
	f.Fuzz(func(t *testing.T, body []byte, extra uint8) {
		if len(body) > MaxPwnedRangeResponse {
			return
		}
		minCount := int64(extra) + 1 // NewPwnedRange never allows less than 1
		got, err := parsePwnedRange(body, suffix, minCount)
		want, ok := referencePwnedRange(string(body), fuzzRangeSuffix, minCount)
		if (err == nil) != ok {
			t.Fatalf("parsePwnedRange(%q) error = %v, reference valid = %v", body, err, ok)
		}
		if err != nil {
			if got {
				t.Fatalf("parsePwnedRange(%q) = true with error %v", body, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "password: pwned range: malformed response: ") {
				t.Fatalf("error %q lacks the prefix", msg)
			}
			if strings.Contains(strings.ToUpper(msg), fuzzRangeSuffix) {
				t.Fatalf("error %q contains the suffix", msg)
			}
			if len(body) >= 8 && bytes.Contains([]byte(msg), body) {
				t.Fatalf("error %q quotes the body", msg)
			}
			return
		}
		if got != want {
			t.Fatalf("parsePwnedRange(%q, min %d) = %v, reference %v", body, minCount, got, want)
		}
	})
}
