package sms

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"

	"github.com/sspr-go/sspr/flows"
)

// MaxInputLength bounds the phone number input [Normalize] reads, in
// bytes; anything longer is refused before it is parsed.
const MaxInputLength = 64

// ErrNotMobile is returned (wrapped, together with [flows.ErrMalformed])
// by [Normalize] for a valid number that cannot receive text messages: a
// landline, a toll-free, premium-rate or shared-cost number, a personal
// (follow-me) or VoIP number, a pager or voicemail number.
var ErrNotMobile = errors.New("sms: not a mobile number")

// Normalize parses a phone number as a user or a directory wrote it and
// returns it in E.164 ("+4915112345678"). A number without a leading +
// (or international prefix such as 00) is read as a number of region, an
// ISO 3166 code such as "DE"; with an empty region a leading + is
// required.
//
// It accepts only numbers that can receive text messages: those
// libphonenumber's metadata classifies as mobile, or as "fixed line or
// mobile" where the two cannot be told apart (the US and Canada). Every
// error wraps [flows.ErrMalformed]; one for a valid number of another
// type also wraps [ErrNotMobile]. Errors never contain the input.
func Normalize(input, region string) (string, error) {
	if len(input) > MaxInputLength {
		return "", fmt.Errorf("sms: phone number: longer than %d bytes: %w", MaxInputLength, flows.ErrMalformed)
	}
	s := strings.TrimSpace(input)
	if s == "" {
		return "", fmt.Errorf("sms: phone number: empty: %w", flows.ErrMalformed)
	}
	if region == "" {
		region = phonenumbers.UNKNOWN_REGION // a leading + is required
	}
	n, err := phonenumbers.Parse(s, strings.ToUpper(region))
	if err != nil {
		return "", fmt.Errorf("sms: phone number: %w", flows.ErrMalformed)
	}
	if n.GetExtension() != "" {
		return "", fmt.Errorf("sms: phone number: has an extension: %w", flows.ErrMalformed)
	}
	// GetNumberType is UNKNOWN exactly for the numbers IsValidNumber
	// refuses; calling it alone halves the cost.
	switch phonenumbers.GetNumberType(n) {
	case phonenumbers.MOBILE, phonenumbers.FIXED_LINE_OR_MOBILE:
	case phonenumbers.UNKNOWN:
		return "", fmt.Errorf("sms: phone number: not a valid number: %w", flows.ErrMalformed)
	default:
		return "", fmt.Errorf("sms: phone number: %w: %w", ErrNotMobile, flows.ErrMalformed)
	}
	out := phonenumbers.Format(n, phonenumbers.E164)
	if !isE164(out) {
		return "", fmt.Errorf("sms: phone number: not an E.164 number: %w", flows.ErrMalformed)
	}
	return out, nil
}

// isE164 reports whether s is "+" and 7 to 15 ASCII digits, the first not
// 0 (ITU-T E.164 §6).
func isE164(s string) bool {
	if len(s) < 8 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// countryCodeLen returns the length of the country calling code that
// starts digits (E.164 codes are prefix-free), or 0 if none does.
func countryCodeLen(digits string) int {
	for l := 1; l <= 3 && l < len(digits); l++ {
		cc, err := strconv.Atoi(digits[:l])
		if err == nil && phonenumbers.GetRegionCodeForCountryCode(cc) != phonenumbers.UNKNOWN_REGION {
			return l
		}
	}
	return 0
}

// Mask hides most of an E.164 number, for showing it to someone who has
// not proved they own it: the country code and the last 2 digits stay,
// every other digit becomes a bullet, so "+447700900123" becomes
// "+44 ••••••••23". Anything that is not an E.164 number with a known
// country code and at least 4 further digits becomes "•••".
func Mask(e164 string) string {
	if !isE164(e164) {
		return "•••"
	}
	digits := e164[1:]
	cc := countryCodeLen(digits)
	national := digits[cc:]
	if cc == 0 || len(national) < 4 {
		return "•••"
	}
	return "+" + digits[:cc] + " " + strings.Repeat("•", len(national)-2) + national[len(national)-2:]
}

// display formats an E.164 number for its owner to read, in the
// international format ("+44 7400 123456").
func display(e164 string) string {
	n, err := phonenumbers.Parse(e164, phonenumbers.UNKNOWN_REGION)
	if err != nil {
		return e164
	}
	return phonenumbers.Format(n, phonenumbers.INTERNATIONAL)
}
