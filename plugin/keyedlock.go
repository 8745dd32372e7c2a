package plugin

import (
	"context"
	"sync"
)

// keyedLock lets one holder at a time work on a key (a journey), in this
// process. Its zero value is ready to use.
type keyedLock struct {
	mu   sync.Mutex
	held map[string]chan struct{}
}

// lock waits until no one else holds key, or ctx ends, and returns the
// function that releases it.
func (k *keyedLock) lock(ctx context.Context, key string) (unlock func(), err error) {
	for {
		k.mu.Lock()
		if k.held == nil {
			k.held = map[string]chan struct{}{}
		}
		busy, ok := k.held[key]
		if !ok {
			mine := make(chan struct{})
			k.held[key] = mine
			k.mu.Unlock()
			return func() {
				k.mu.Lock()
				delete(k.held, key)
				k.mu.Unlock()
				close(mine)
			}, nil
		}
		k.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
