package sms_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/sms"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name, in, region string
		want             string
		notMobile        bool // refused as a valid number of the wrong type
	}{
		{"E.164", "+447400123456", "", "+447400123456", false},
		{"spaced international", "+44 7400 123456", "", "+447400123456", false},
		{"punctuated", " +44 (0)7400-123-456 ", "", "+447400123456", false},
		{"national with region", "07400 123456", "GB", "+447400123456", false},
		{"national German", "0151 12345678", "DE", "+4915112345678", false},
		{"region in lower case", "0151 12345678", "de", "+4915112345678", false},
		{"international prefix with region", "0044 7400 123456", "DE", "+447400123456", false},
		{"foreign number with region", "+33 6 12 34 56 78", "DE", "+33612345678", false},
		{"fixed line or mobile (US)", "+1 202 555 0123", "", "+12025550123", false},
		{"Australian fictional mobile", "+61 491 570 156", "", "+61491570156", false},
		{"national without region", "07400 123456", "", "", false},
		{"international prefix without region", "0044 7400 123456", "", "", false},
		// Ofcom's range for drama (07700 900000-900999) is not valid in
		// libphonenumber's metadata.
		{"Ofcom drama range", "+447700900123", "", "", false},
		{"landline", "+44 20 7946 0000", "", "", true},
		{"German landline", "030 1234567", "DE", "", true},
		{"toll-free", "+1 800 555 0199", "", "", true},
		{"UK freephone", "+44 800 123 4567", "", "", true},
		{"premium rate", "+44 909 876 5432", "", "", true},
		{"German premium rate", "+49 900 1234567", "", "", true},
		{"shared cost", "+49 180 1234567", "", "", true},
		{"personal number", "+44 70 1234 5678", "", "", true},
		{"VoIP", "+44 56 1234 5678", "", "", true},
		{"extension", "+44 7400 123456 ext. 5", "", "", false},
		{"empty", "", "DE", "", false},
		{"spaces", "   ", "DE", "", false},
		{"letters", "call me", "DE", "", false},
		{"too short", "+44 12", "", "", false},
		{"unknown country code", "+999 123456789", "", "", false},
		{"too long to read", "+44 7400 123456" + strings.Repeat(" ", 60), "", "", false},
		{"invalid UTF-8", "+44 7400 \xff123456", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sms.Normalize(tt.in, tt.region)
			if tt.want != "" {
				if err != nil || got != tt.want {
					t.Fatalf("Normalize(%q, %q) = %q, %v; want %q", tt.in, tt.region, got, err, tt.want)
				}
				return
			}
			if err == nil || got != "" || !errors.Is(err, flows.ErrMalformed) || errors.Is(err, sms.ErrNotMobile) != tt.notMobile {
				t.Fatalf("Normalize(%q, %q) = %q, %v; want ErrMalformed (ErrNotMobile %v)", tt.in, tt.region, got, err, tt.notMobile)
			}
			if digits := strings.Trim(tt.in, " +"); len(digits) > 6 && strings.Contains(err.Error(), digits) {
				t.Fatalf("error %q contains the input", err)
			}
		})
	}
}

func TestMask(t *testing.T) {
	tests := []struct{ in, want string }{
		{"+447700900123", "+44 ••••••••23"},
		{"+4915112345678", "+49 •••••••••78"},
		{"+12025550123", "+1 ••••••••23"},
		{"+35312345678", "+353 ••••••78"},
		{"+6834002", "+683 ••02"},
		{"+683400", "•••"},         // too short to show anything
		{"+9991234567", "•••"},     // no such country code
		{"447700900123", "•••"},    // no +
		{"+44 7700 900123", "•••"}, // not E.164
		{"+0447700900123", "•••"},
		{"+4477009001234567", "•••"}, // too long
		{"", "•••"},
		{"+", "•••"},
	}
	for _, tt := range tests {
		if got := sms.Mask(tt.in); got != tt.want {
			t.Errorf("Mask(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
