package sms_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/sms"
)

// e164 is the form of a normalized number: + and 7 to 15 digits, the
// first not 0.
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// fuzzRegions are the regions FuzzNormalize picks from.
var fuzzRegions = []string{"", "DE", "GB", "US", "FR", "IN", "ZZ", "de", "XX"}

// FuzzNormalize checks that Normalize never panics, that every error
// wraps flows.ErrMalformed and never contains the number typed, and that
// every number it accepts is E.164 and normalizes to itself, with and
// without a region.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"+447400123456", "07400 123456", "+447700900123", "+1 800 555 0199", "0151 12345678",
		"+44 7400 123456 ext. 5", "tel:+44-7400-123456", "+1-800-FLOWERS", "＋４４７４００１２３４５６", "", "+", "00"} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(2))
	}
	f.Add("030 1234567", uint8(1))
	f.Fuzz(func(t *testing.T, in string, r uint8) {
		region := fuzzRegions[int(r)%len(fuzzRegions)]
		got, err := sms.Normalize(in, region)
		if err != nil {
			if got != "" || !errors.Is(err, flows.ErrMalformed) {
				t.Fatalf("Normalize(%q, %q) = %q, %v", in, region, got, err)
			}
			// (Inputs with fewer than 4 digits may match the message's own
			// words, such as "E.164".)
			if countDigits(in) >= 4 && strings.Contains(err.Error(), strings.TrimSpace(in)) {
				t.Fatalf("error %q contains the input %q", err, in)
			}
			return
		}
		if len(in) > sms.MaxInputLength {
			t.Fatalf("Normalize accepted %d bytes", len(in))
		}
		if !e164.MatchString(got) {
			t.Fatalf("Normalize(%q, %q) = %q, not E.164", in, region, got)
		}
		for _, r := range []string{"", region, "DE"} {
			if again, err := sms.Normalize(got, r); err != nil || again != got {
				t.Fatalf("Normalize(%q, %q) = %q, %v; not idempotent", got, r, again, err)
			}
		}
		if m := sms.Mask(got); m == "•••" || !strings.HasSuffix(m, got[len(got)-2:]) {
			t.Fatalf("Mask(%q) = %q", got, m)
		}
	})
}

// FuzzMask checks that Mask never panics and shows at most the country
// code and the last 2 digits: its output is "•••" or "+<country code>
// <bullets><2 digits>", with one bullet per hidden digit of the input.
func FuzzMask(f *testing.F) {
	for _, s := range []string{"+447700900123", "+4915112345678", "+12025550123", "+6834002", "+683400", "+9991234567",
		"", "+", "+0", "447700900123", "+44 7700 900123", "+4477009001234567", "+44\xff7700900123", "+８１９０１２３４５６７"} {
		f.Add(s)
	}
	form := regexp.MustCompile(`^\+([1-9][0-9]{0,2}) ((?:•)+)([0-9]{2})$`)
	f.Fuzz(func(t *testing.T, in string) {
		got := sms.Mask(in)
		if !utf8.ValidString(got) {
			t.Fatalf("Mask(%q) = %q is not valid UTF-8", in, got)
		}
		if got == "•••" {
			if e164.MatchString(in) && len(in) >= 9 && strings.HasPrefix(in, "+1") {
				t.Fatalf("Mask(%q) hid a NANP number completely", in) // +1 always exists
			}
			return
		}
		m := form.FindStringSubmatch(got)
		if m == nil {
			t.Fatalf("Mask(%q) = %q, not of the form +cc ••…••dd", in, got)
		}
		cc, bullets, last := m[1], utf8.RuneCountInString(m[2]), m[3]
		if !e164.MatchString(in) || !strings.HasPrefix(in, "+"+cc) {
			t.Fatalf("Mask(%q) = %q for a non-E.164 input", in, got)
		}
		national := in[1+len(cc):]
		if bullets != len(national)-2 || bullets < 2 || !strings.HasSuffix(in, last) {
			t.Fatalf("Mask(%q) = %q shows more or other than the country code and last 2 digits", in, got)
		}
	})
}

func countDigits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			n++
		}
	}
	return n
}
