package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sspr-go/sspr/plugin/store"
)

// together runs f(0) … f(n-1) on n goroutines released at the same moment
// and returns their errors.
func together(n int, f func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// checkOneWinner checks that exactly one error is nil and all others
// match loser.
func checkOneWinner(t *testing.T, errs []error, loser error) {
	t.Helper()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, loser):
			t.Errorf("unexpected error: %v (want nil or %v)", err, loser)
		}
	}
	if wins != 1 {
		t.Errorf("%d of %d concurrent calls succeeded, want exactly 1", wins, len(errs))
	}
}

// rounds is how often each single-use race is repeated: a read-then-write
// implementation loses only when two goroutines interleave, which one round
// may not provoke.
const rounds = 10

// warmUp calls read from n goroutines at once, so that a backend with a
// connection pool has its connections open before a race.
func warmUp(t *testing.T, n int, read func() error) {
	t.Helper()
	for _, err := range together(n, func(int) error { return read() }) {
		must(t, "warm-up read", err)
	}
}

// readChallenge returns a warm-up read of challenge id.
func readChallenge(t *testing.T, s store.Store, id string) func() error {
	return func() error {
		_, err := s.Challenge(t.Context(), id)
		return err
	}
}

// readFactor returns a warm-up read of factor id.
func readFactor(t *testing.T, s store.Store, id string) func() error {
	return func() error {
		_, err := s.Factor(t.Context(), id)
		return err
	}
}

func testConcurrency(t *testing.T, open opener) {
	base := baseTime()
	now := base.Add(time.Minute)
	for _, n := range []int{2, 50} {
		t.Run(fmt.Sprintf("ConsumeToken/%d", n), func(t *testing.T) {
			s := open(t)
			for r := range rounds {
				c := newChallenge(fmt.Sprint("c", r), fmt.Sprint("j", r), base)
				mustCreateChallenge(t, s, c)
				warmUp(t, n, readChallenge(t, s, c.ID))
				errs := together(n, func(int) error {
					_, err := s.ConsumeToken(t.Context(), c.TokenHash, now)
					return err
				})
				checkOneWinner(t, errs, store.ErrUsed)
			}
		})
		t.Run(fmt.Sprintf("ConsumeCode/%d", n), func(t *testing.T) {
			s := open(t)
			for r := range rounds {
				c := newChallenge(fmt.Sprint("c", r), fmt.Sprint("j", r), base)
				mustCreateChallenge(t, s, c)
				warmUp(t, n, readChallenge(t, s, c.ID))
				errs := together(n, func(int) error {
					_, err := s.ConsumeCode(t.Context(), c.ID, c.CodeHash, now)
					return err
				})
				checkOneWinner(t, errs, store.ErrUsed)
				got, err := s.Challenge(t.Context(), c.ID)
				must(t, "Challenge", err)
				if got.Attempts != 0 {
					t.Errorf("Attempts = %d after right codes, want 0", got.Attempts)
				}
			}
		})
		t.Run(fmt.Sprintf("ConsumeCode wrong/%d", n), func(t *testing.T) {
			// Every wrong code is counted once; the attempts run out at
			// MaxAttempts however the calls interleave.
			s := open(t)
			c := newChallenge("c1", "j1", base)
			mustCreateChallenge(t, s, c)
			errs := together(n, func(int) error {
				_, err := s.ConsumeCode(t.Context(), c.ID, wrongCode(), now)
				return err
			})
			mismatches := 0
			for _, err := range errs {
				switch {
				case errors.Is(err, store.ErrMismatch):
					mismatches++
				case !errors.Is(err, store.ErrExhausted):
					t.Errorf("unexpected error: %v", err)
				}
			}
			got, err := s.Challenge(t.Context(), c.ID)
			must(t, "Challenge", err)
			if want := min(n, c.MaxAttempts); mismatches != want || got.Attempts != want {
				t.Errorf("mismatches = %d, Attempts = %d; want %d", mismatches, got.Attempts, want)
			}
		})
		t.Run(fmt.Sprintf("CompleteJourney/%d", n), func(t *testing.T) {
			s := open(t)
			for r := range rounds {
				id := fmt.Sprint("j", r)
				must(t, "CreateJourney", s.CreateJourney(t.Context(), newJourney(id, base)))
				errs := together(n, func(int) error {
					return s.CompleteJourney(t.Context(), id, now)
				})
				checkOneWinner(t, errs, store.ErrUsed)
			}
		})
		t.Run(fmt.Sprintf("UpdateJourney/%d", n), func(t *testing.T) {
			s := open(t)
			j := newJourney("j1", base)
			must(t, "CreateJourney", s.CreateJourney(t.Context(), j))
			errs := together(n, func(i int) error {
				upd := j
				upd.Verified = []string{fmt.Sprint("flow", i)}
				return s.UpdateJourney(t.Context(), upd)
			})
			checkOneWinner(t, errs, store.ErrConflict)
		})
		t.Run(fmt.Sprintf("AdvanceCounter/%d", n), func(t *testing.T) {
			// A replayed TOTP step: one call with the same value wins.
			s := open(t)
			for r := range rounds {
				f := newFactor(fmt.Sprint("f", r), "u1", base)
				f.Counter = 41
				mustCreateFactor(t, s, f)
				warmUp(t, n, readFactor(t, s, f.ID))
				errs := together(n, func(int) error {
					return s.AdvanceCounter(t.Context(), f.ID, 42, now)
				})
				checkOneWinner(t, errs, store.ErrUsed)
				want := f
				want.Counter, want.LastUsedAt = 42, now
				checkFactor(t, s, want)
			}
		})
		t.Run(fmt.Sprintf("AdvanceCounter increasing/%d", n), func(t *testing.T) {
			// Calls with values 1…n: some win, and the counter ends at n
			// (never moved back by a lower value that lost the race).
			s := open(t)
			f := newFactor("f1", "u1", base)
			mustCreateFactor(t, s, f)
			warmUp(t, n, readFactor(t, s, f.ID))
			errs := together(n, func(i int) error {
				return s.AdvanceCounter(t.Context(), f.ID, int64(i+1), now.Add(time.Duration(i)*time.Second))
			})
			for _, err := range errs {
				if err != nil && !errors.Is(err, store.ErrUsed) {
					t.Errorf("unexpected error: %v (want nil or %v)", err, store.ErrUsed)
				}
			}
			if errs[n-1] != nil {
				t.Errorf("AdvanceCounter to the highest value = %v, want success", errs[n-1])
			}
			want := f
			want.Counter, want.LastUsedAt = int64(n), now.Add(time.Duration(n-1)*time.Second)
			checkFactor(t, s, want)
		})
		t.Run(fmt.Sprintf("ConsumeFactor/%d", n), func(t *testing.T) {
			s := open(t)
			keep := newRecoveryCode("keep", "u1", "keep", base)
			mustCreateFactor(t, s, keep)
			for r := range rounds {
				code := newRecoveryCode(fmt.Sprint("rc", r), "u1", fmt.Sprint("code", r), base)
				mustCreateFactor(t, s, code)
				warmUp(t, n, readFactor(t, s, code.ID))
				got := make([]store.Factor, n)
				errs := together(n, func(i int) error {
					var err error
					got[i], err = s.ConsumeFactor(t.Context(), "u1", "recovery", code.Secret)
					return err
				})
				checkOneWinner(t, errs, store.ErrNotFound)
				for i, err := range errs {
					if err == nil {
						checkEqual(t, "consumed factor", normFactor(got[i]), normFactor(code))
					}
				}
				checkNoFactor(t, s, code.ID)
			}
			checkFactors(t, s, "u1", "recovery", keep)
		})
		t.Run(fmt.Sprintf("Hit/%d", n), func(t *testing.T) {
			s := open(t)
			counts := make([]int64, n)
			errs := together(n, func(i int) error {
				var err error
				counts[i], _, err = s.Hit(t.Context(), "k", base, time.Minute)
				return err
			})
			for _, err := range errs {
				must(t, "Hit", err)
			}
			slices.Sort(counts)
			for i, c := range counts {
				if c != int64(i+1) {
					t.Fatalf("Hit returned counts %v, want 1…%d each once", counts, n)
				}
			}
		})
	}

	t.Run("Claim/4 workers/100 messages", func(t *testing.T) {
		s := open(t)
		const total, workers = 100, 4
		want := make(map[int64]bool, total)
		err := s.Atomic(t.Context(), func(tx store.Tx) error {
			for i := range total {
				id, err := tx.Enqueue(t.Context(), store.Message{Channel: "email", Payload: []byte(fmt.Sprint(i)), CreatedAt: base, NextAttemptAt: base})
				if err != nil {
					return err
				}
				want[id] = true
			}
			return nil
		})
		must(t, "Enqueue", err)

		claimed := make([][]store.Message, workers)
		errs := together(workers, func(w int) error {
			// Bounded, so that a backend that hands out leased messages
			// again fails instead of looping forever.
			for range total + 1 {
				ms, err := s.Claim(t.Context(), now, time.Hour, 3)
				if err != nil {
					return err
				}
				if len(ms) == 0 {
					return nil
				}
				claimed[w] = append(claimed[w], ms...)
			}
			return errors.New("claims never ran dry")
		})
		seen := make(map[int64]int, total)
		for w, err := range errs {
			must(t, fmt.Sprint("worker ", w), err)
			for _, m := range claimed[w] {
				seen[m.ID]++
				if m.Attempts != 1 {
					t.Errorf("message %d claimed with Attempts %d, want 1", m.ID, m.Attempts)
				}
			}
		}
		for id := range want {
			if seen[id] != 1 {
				t.Errorf("message %d claimed %d times, want once", id, seen[id])
			}
		}
		if len(seen) != total {
			t.Errorf("%d distinct messages claimed, want %d", len(seen), total)
		}
	})
}
