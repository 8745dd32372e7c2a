package plugin

import (
	"context"
	"testing"
	"testing/synctest"
)

func TestKeyedLock(t *testing.T) { synctest.Test(t, keyedLockTest) }

func keyedLockTest(t *testing.T) {
	var k keyedLock
	unlock, err := k.lock(t.Context(), "j1")
	if err != nil {
		t.Fatal(err)
	}
	// Another key is free.
	other, err := k.lock(t.Context(), "j2")
	if err != nil {
		t.Fatal(err)
	}
	other()
	// The same key waits; a waiter that gives up gets its context's error.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := k.lock(ctx, "j1"); err != context.Canceled {
		t.Fatalf("lock of a held key with an ended context: %v", err)
	}
	got := make(chan func(), 1)
	go func() {
		u, err := k.lock(t.Context(), "j1")
		if err != nil {
			t.Error(err)
		}
		got <- u
	}()
	synctest.Wait() // the waiter is blocked on the held key
	select {
	case <-got:
		t.Fatal("a second holder got a held key")
	default:
	}
	unlock()
	(<-got)()
	if len(k.held) != 0 {
		t.Fatalf("keys left held: %v", k.held)
	}
}
