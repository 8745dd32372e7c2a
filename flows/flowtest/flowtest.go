// Package flowtest is a test kit for verification flows: an [Env] that
// records the messages a flow queues, with a settable clock and fixed MAC
// keys that a test can rotate, so a flow can be tested against a real
// store without the plugin.
package flowtest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"net/url"
	"sync"
	"time"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/plugin/store"
)

// Env is a [flows.Env] for tests.
type Env struct {
	// Base is the URL paths are resolved against. Default:
	// "https://id.example/recovery".
	Base string

	mu     sync.Mutex
	now    time.Time
	queued []flows.Message
	keys   [][]byte // current first; nil means defaultKey alone
}

// defaultKey is the MAC key of a new Env.
const defaultKey = "flowtest key, never use in production"

var _ flows.Env = (*Env)(nil)

// NewEnv returns an Env whose clock starts at now.
func NewEnv(now time.Time) *Env { return &Env{now: now} }

// Queue records m. Like the plugin, it writes nothing the caller can see
// outside tx; it records in memory only.
func (e *Env) Queue(_ context.Context, _ store.Tx, m flows.Message) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.queued = append(e.queued, m)
	return nil
}

// Queued returns the messages queued so far.
func (e *Env) Queued() []flows.Message {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]flows.Message(nil), e.queued...)
}

// MAC is HMAC-SHA-256 under the current key (defaultKey unless
// rotated), length-prefixing each part.
func (e *Env) MAC(purpose string, parts ...[]byte) []byte {
	return e.MACs(purpose, parts...)[0]
}

// MACs is what MAC returns under every key, current first.
func (e *Env) MACs(purpose string, parts ...[]byte) [][]byte {
	e.mu.Lock()
	keys := e.keys
	e.mu.Unlock()
	if len(keys) == 0 {
		keys = [][]byte{[]byte(defaultKey)}
	}
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = mac(k, purpose, parts)
	}
	return out
}

func mac(key []byte, purpose string, parts [][]byte) []byte {
	h := hmac.New(sha256.New, key)
	var n [4]byte
	for _, p := range append([][]byte{[]byte(purpose)}, parts...) {
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	return h.Sum(nil)
}

// SetKeys replaces the MAC keys, current first, as a host rotating the
// plugin's Config.Keys does; with none, the Env goes back to defaultKey
// alone. Put a new key before the old one to rotate, and leave the old
// one out to retire it.
func (e *Env) SetKeys(keys ...[]byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.keys = nil
	for _, k := range keys {
		e.keys = append(e.keys, append([]byte(nil), k...))
	}
}

// URL resolves path and query against Base.
func (e *Env) URL(path string, query url.Values) string {
	base := e.Base
	if base == "" {
		base = "https://id.example/recovery"
	}
	u := base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	return u
}

// Now returns the clock's time.
func (e *Env) Now() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

// Advance moves the clock forward.
func (e *Env) Advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
}
