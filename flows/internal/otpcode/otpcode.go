// Package otpcode makes and reads the short numeric codes that channel
// flows (email, SMS) send: uniformly random digits from crypto/rand, and
// a lenient reading of what a user types back.
package otpcode

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"strings"
)

// Random returns a code of n decimal digits (leading zeros kept), drawn
// uniformly from crypto/rand. n must be between 1 and 18.
func Random(n int) (string, error) {
	if n < 1 || n > 18 {
		return "", fmt.Errorf("otpcode: random: length %d out of range", n)
	}
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
	v, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return "", fmt.Errorf("otpcode: random: %w", err)
	}
	return fmt.Sprintf("%0*d", n, v), nil
}

// Normalize removes spaces, tabs and dashes from s and reports whether
// the rest is exactly n ASCII digits. Input longer than 4n bytes is
// refused before it is read, so hostile input costs nothing.
func Normalize(s string, n int) (string, bool) {
	if len(s) > 4*n {
		return "", false
	}
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			b.WriteRune(c)
		case c == ' ' || c == '-' || c == '\t':
		default:
			return "", false
		}
	}
	if b.Len() != n {
		return "", false
	}
	return b.String(), true
}
