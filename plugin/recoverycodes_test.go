package plugin_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/email"
	"github.com/sspr-go/sspr/flows/flowtest"
	"github.com/sspr-go/sspr/flows/recoverycodes"
	"github.com/sspr-go/sspr/plugin"
	"github.com/sspr-go/sspr/plugin/plugintest"
	"github.com/sspr-go/sspr/plugin/store"
)

// countingHasher is flowtest's counting hasher that, in each derivation
// outside a transaction, first runs a write transaction of its own on the
// store (in another goroutine, and waits for it): that write can only
// complete if the verification does not hold the store's one writer while
// it hashes. midWrite counts those writes.
type countingHasher struct {
	*flowtest.CountingHasher
	midWrite atomic.Int64
}

// newCountingHasher wraps h over st.
func newCountingHasher(h flows.KeyDeriver, st *flowtest.WatchStore) *countingHasher {
	c := &countingHasher{CountingHasher: &flowtest.CountingHasher{H: h, St: st}}
	c.During = func(ctx context.Context) error {
		if err := st.WriteElsewhere(ctx); err != nil {
			return err
		}
		c.midWrite.Add(1)
		return nil
	}
	return c
}

// reset sets the counts to zero.
func (c *countingHasher) reset() {
	c.Reset()
	c.midWrite.Store(0)
}

// recoveryHarness has email and recovery codes (hashed through a
// countingHasher), a host session and its test login for alice. With a
// shared store it runs on that store instead of its own; mutate, when not
// nil, changes the configuration first.
func recoveryHarness(t *testing.T, shared store.Store, mutate func(*plugin.Config)) (*harness, *countingHasher) {
	t.Helper()
	gs := hostSession(t)
	var hashes *countingHasher
	h := newHarness(t, func(c *plugin.Config) {
		if shared != nil {
			c.Store = shared
		}
		if mutate != nil {
			mutate(c)
		}
		st := &flowtest.WatchStore{Store: c.Store}
		c.Store = st
		hashes = newCountingHasher(c.Hasher, st)
		rc, err := recoverycodes.New(recoverycodes.Config{Store: st, Hasher: hashes})
		if err != nil {
			t.Fatal(err)
		}
		mail, err := email.New(email.Config{})
		if err != nil {
			t.Fatal(err)
		}
		c.Flows = []flows.Flow{mail, rc}
		c.Sessions = gs
	})
	if shared != nil {
		h.store = shared
	}
	h.mux.HandleFunc("/test-login", func(w http.ResponseWriter, r *http.Request) {
		_ = gs.RaiseSession(w, r, plugin.Session{UserID: "u-alice", AuthTime: h.clock.Now().Add(-time.Minute), AMR: []string{"pwd"}})
	})
	return h, hashes
}

// addCodes signs alice in freshly and has her add recovery codes on the
// security-info page; it returns the codes shown.
func addCodes(t *testing.T, h *harness) []string {
	t.Helper()
	b := plugintest.NewBrowser(t)
	b.Get(h.srv.URL + "/test-login")
	conf := b.Get(h.base + "/account/security/recovery-codes/add")
	page := b.Submit(conf, "/recovery/account/security/recovery-codes/add", nil)
	var codes []string
	for _, n := range page.Find(func(n *html.Node) bool { return n.Data == "code" }) {
		codes = append(codes, strings.TrimSpace(nodeText(n)))
	}
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes shown: %s", len(codes), page.Text())
	}
	return codes
}

// useCode proves alice's email in a new journey and then submits code.
func useCode(t *testing.T, h *harness, code string) *plugintest.Page {
	t.Helper()
	b := plugintest.NewBrowser(t)
	page := b.Follow(h.emailStep(b, "alice", "alice@example.com"))
	if !strings.Contains(page.Text(), "recovery code") {
		t.Fatalf("second step: %s", page.Text())
	}
	return b.Submit(page, "/recovery/verify", map[string]string{"code": code})
}

// TestRecoveryCodeHashedOutsideWriteTransaction: the engine has the one
// argon2id of a recovery code computed before it opens its write
// transaction, and another write on the same SQLite store completes while
// it runs; the code is accepted.
func TestRecoveryCodeHashedOutsideWriteTransaction(t *testing.T) {
	h, hashes := recoveryHarness(t, nil, nil)
	codes := addCodes(t, h)
	if n, in := hashes.N.Load(), hashes.InTx.Load(); n != 10 || in != 0 {
		t.Fatalf("adding 10 codes: %d argon2id, %d inside a write transaction", n, in)
	}
	b := plugintest.NewBrowser(t)
	page := b.Follow(h.emailStep(b, "alice", "alice@example.com"))
	hashes.reset()
	bad := b.Submit(page, "/recovery/verify", map[string]string{"code": "0000-0000-0000-0000"})
	if bad.Status != http.StatusBadRequest || !strings.Contains(bad.Text(), "4 tries left") {
		t.Fatalf("wrong code: %d %s", bad.Status, bad.Text())
	}
	ok := b.Submit(bad, "/recovery/verify", map[string]string{"code": codes[4]})
	if ok.Header.Get("Location") != "/recovery/password" {
		t.Fatalf("right code: %d %q %s", ok.Status, ok.Header.Get("Location"), ok.Text())
	}
	if n, in, mid := hashes.N.Load(), hashes.InTx.Load(), hashes.midWrite.Load(); n != 2 || in != 0 || mid != 2 {
		t.Fatalf("two submissions: %d argon2id, %d inside the write transaction, %d with a write completing meanwhile; want 2, 0, 2", n, in, mid)
	}
}

// TestRecoveryCodeNotHashedOverTheIPLimit: a submission the per-IP limit
// refuses costs no argon2id.
func TestRecoveryCodeNotHashedOverTheIPLimit(t *testing.T) {
	h, _ := recoveryHarness(t, nil, nil)
	codes := addCodes(t, h)
	// A plugin on the same store whose per-IP verify limit is 2: the
	// email code and one recovery code.
	h2, hashes2 := recoveryHarness(t, h.store, func(c *plugin.Config) {
		c.Limits.VerifiesPerIP = plugin.Limit{N: 2, Window: time.Hour}
	})
	b := plugintest.NewBrowser(t)
	page := b.Follow(h2.emailStep(b, "alice", "alice@example.com"))
	hashes2.reset()
	bad := b.Submit(page, "/recovery/verify", map[string]string{"code": "0000-0000-0000-0000"})
	if bad.Status != http.StatusBadRequest || hashes2.N.Load() != 1 {
		t.Fatalf("wrong code: %d, %d argon2id", bad.Status, hashes2.N.Load())
	}
	limited := b.Submit(bad, "/recovery/verify", map[string]string{"code": codes[0]})
	if limited.Status != http.StatusTooManyRequests || hashes2.N.Load() != 1 {
		t.Fatalf("over the limit: %d, %d argon2id in all", limited.Status, hashes2.N.Load())
	}
}

// TestRecoveryCodesSurviveKeyRotation: codes added under one key work
// after a new key is put first in Config.Keys, and stop working once the
// old key is removed.
func TestRecoveryCodesSurviveKeyRotation(t *testing.T) {
	oldKey, newKey := []byte("0123456789abcdef0123456789abcdef"), []byte("a new plugin key of 32 bytes....")
	keys := func(keys ...[]byte) func(*plugin.Config) {
		return func(c *plugin.Config) { c.Keys = keys }
	}
	h, _ := recoveryHarness(t, nil, keys(oldKey))
	codes := addCodes(t, h)

	rotated, _ := recoveryHarness(t, h.store, keys(newKey, oldKey))
	if p := useCode(t, rotated, codes[0]); p.Header.Get("Location") != "/recovery/password" {
		t.Fatalf("a code after the rotation: %d %s", p.Status, p.Text())
	}
	retired, _ := recoveryHarness(t, h.store, keys(newKey))
	if p := useCode(t, retired, codes[1]); p.Status != http.StatusBadRequest || !strings.Contains(p.Text(), "4 tries left") {
		t.Fatalf("a code after its key was removed: %d %s", p.Status, p.Text())
	}
}

// TestConcurrentAttemptsBuyNoExtraHashes: many simultaneous posts of
// wrong recovery codes to one journey cost no more argon2id computations
// than the per-IP limit allows: each attempt is counted before it hashes,
// and one journey's attempts hash one at a time.
func TestConcurrentAttemptsBuyNoExtraHashes(t *testing.T) {
	h, _ := recoveryHarness(t, nil, nil)
	addCodes(t, h)
	const limit = 3 // the email code and two recovery codes
	h2, hashes2 := recoveryHarness(t, h.store, func(c *plugin.Config) {
		c.Limits.VerifiesPerIP = plugin.Limit{N: limit, Window: time.Hour}
	})
	b := plugintest.NewBrowser(t)
	page := b.Follow(h2.emailStep(b, "alice", "alice@example.com"))
	hashes2.reset()
	_, form := page.Form("/recovery/verify")
	form.Set("code", "0000-0000-0000-0000")
	var wg sync.WaitGroup
	for range 60 {
		wg.Go(func() { b.Post(h2.base+"/verify", form) })
	}
	wg.Wait()
	if n := hashes2.N.Load(); n > limit-1 {
		t.Fatalf("60 concurrent attempts cost %d argon2id computations; the per-IP limit allows %d", n, limit-1)
	}

	// With the per-IP limit out of the way, one journey's attempts hash
	// one at a time: once the challenge's tries are used up, the rest find
	// it dead and hash nothing (without the lock all 60 hashed at once).
	h3, hashes3 := recoveryHarness(t, h.store, func(c *plugin.Config) {
		c.Limits.VerifiesPerIP = plugin.Limit{N: 1000, Window: time.Hour}
	})
	b = plugintest.NewBrowser(t)
	page = b.Follow(h3.emailStep(b, "alice", "alice@example.com"))
	hashes3.reset()
	_, form = page.Form("/recovery/verify")
	form.Set("code", "0000-0000-0000-0000")
	for range 60 {
		wg.Go(func() { b.Post(h3.base+"/verify", form) })
	}
	wg.Wait()
	if n := hashes3.N.Load(); n > 5 {
		t.Fatalf("60 concurrent attempts at one journey cost %d argon2id computations; its challenge allows 5 tries", n)
	}
}
