package password

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"strings"
)

// commonPasswords is data/common-passwords.txt.gz: the "passwords-common"
// dictionary of @zxcvbn-ts/language-common, one password per line (see
// data/README.md).
//
//go:embed data/common-passwords.txt.gz
var commonPasswords []byte

// Kinds of key a Blocklist holds.
const (
	formWhole uint8 = 1 << iota // an entry, normalised
	formCore                    // an entry, normalised, digits and symbols stripped from both ends
)

// Blocklist is a set of banned passwords matched after normalisation, the
// way Microsoft Entra's banned-password check does:
//
//   - compatibility forms and case are folded (NFKC, then lower case);
//   - common substitutions are undone: 0→o @→a 4→a 1→l !→i |→i 3→e $→s 5→s
//     7→t +→t 8→b 9→g;
//   - a password is banned when its normalised form, or its normalised form
//     with the leading and/or trailing run of digits and symbols removed,
//     equals an entry normalised the same way (whole, or with both runs
//     removed). Stripped forms shorter than 4 characters take no part.
//
// Matching is exact equality of normalised forms, never substring search,
// so short entries cannot ban every password that contains them. So
// "P@ssw0rd2024!", "Passw0rd!", "qwerty123" and "!!Dragon99" are banned by
// the default list while "correct-horse-battery-staple-42" is not.
//
// A Blocklist is immutable and safe for concurrent use. The zero value and
// a nil *Blocklist ban nothing.
type Blocklist struct {
	keys map[string]uint8 // normalised form -> formWhole|formCore
	n    int              // distinct normalised entries
}

// DefaultBlocklist decompresses the embedded list of common passwords: the
// 49,233 passwords of the MIT-licensed npm package
// @zxcvbn-ts/language-common 4.1.3. Each call builds a new Blocklist
// (25-40 ms and 5 MB of allocations on 2 cores; nothing is cached in
// package state), so build it once and share it.
func DefaultBlocklist() (*Blocklist, error) {
	zr, err := gzip.NewReader(bytes.NewReader(commonPasswords))
	if err != nil {
		return nil, fmt.Errorf("password: default blocklist: %w", err)
	}
	words := make([]string, 0, 50000)
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		words = append(words, strings.TrimSuffix(sc.Text(), "\r"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("password: default blocklist: %w", err)
	}
	if err := zr.Close(); err != nil {
		return nil, fmt.Errorf("password: default blocklist: %w", err)
	}
	return NewBlocklist(words), nil
}

// NewBlocklist builds a Blocklist from words, normalising each as described
// on [Blocklist]. Empty words are ignored.
func NewBlocklist(words []string) *Blocklist {
	b := &Blocklist{keys: make(map[string]uint8, len(words)*3/2)}
	for _, w := range words {
		if w == "" {
			continue
		}
		lower := lowerNFKC(w)
		whole := fold(lower)
		if b.keys[whole]&formWhole == 0 {
			b.n++
		}
		b.keys[whole] |= formWhole
		if c, ok := core(lower); ok {
			b.keys[c] |= formCore
		}
	}
	return b
}

// Contains reports whether password is banned by the list.
func (b *Blocklist) Contains(password string) bool {
	return b.containsLower(lowerNFKC(password))
}

func (b *Blocklist) containsLower(lower string) bool {
	if b == nil || len(b.keys) == 0 {
		return false
	}
	found := false
	passwordForms(lower, func(form string) bool {
		_, found = b.keys[form]
		return !found
	})
	return found
}

// Len reports the number of distinct entries in the list after
// normalisation ("password" and "Passw0rd" count once).
func (b *Blocklist) Len() int {
	if b == nil {
		return 0
	}
	return b.n
}
