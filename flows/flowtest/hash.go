package flowtest

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/plugin/store"
)

// WatchStore is a store that counts its open write transactions, for tests
// that show some work happens outside them.
type WatchStore struct {
	store.Store
	open atomic.Int32
}

// Atomic runs fn in a transaction of the wrapped store, counted as open
// while it runs.
func (s *WatchStore) Atomic(ctx context.Context, fn func(tx store.Tx) error) error {
	s.open.Add(1)
	defer s.open.Add(-1)
	return s.Store.Atomic(ctx, fn)
}

// Open reports how many write transactions are open now.
func (s *WatchStore) Open() int { return int(s.open.Load()) }

// CountingHasher counts the argon2id keys it derives (N), and those
// derived while a write transaction of St was open (InTx). During, when
// set, runs in each derivation made outside a transaction, before the key
// is computed (a test can write to the store there, which only works if
// the verification does not hold the store's writer); its error fails the
// derivation.
type CountingHasher struct {
	H       flows.KeyDeriver
	St      *WatchStore
	N, InTx atomic.Int64
	During  func(ctx context.Context) error
}

// DeriveKey counts, runs During outside a transaction, and derives the
// key with H.
func (c *CountingHasher) DeriveKey(ctx context.Context, secret string, salt []byte, params string) ([]byte, error) {
	c.N.Add(1)
	if c.St.Open() > 0 {
		c.InTx.Add(1)
	} else if c.During != nil {
		if err := c.During(ctx); err != nil {
			return nil, err
		}
	}
	return c.H.DeriveKey(ctx, secret, salt, params)
}

// Reset sets the counts to zero.
func (c *CountingHasher) Reset() {
	c.N.Store(0)
	c.InTx.Store(0)
}

// WriteElsewhere runs a write transaction on the wrapped store in another
// goroutine and waits for it. The store has one writer: called while a
// verification hashes, it completes only if that verification does not
// hold the writer (it would wait for the hash, which waits for it).
func (s *WatchStore) WriteElsewhere(ctx context.Context) error {
	done := make(chan error, 1)
	go func() {
		done <- s.Store.Atomic(ctx, func(tx store.Tx) error {
			_, _, err := tx.Hit(ctx, "flowtest: a write elsewhere", time.Unix(0, 0), time.Minute)
			return err
		})
	}()
	return <-done
}
