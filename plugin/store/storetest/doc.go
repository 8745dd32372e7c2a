// Package storetest is the conformance suite every [store.Store] backend
// runs. A backend's test calls [Run] with a function that opens a new,
// empty store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s, err := sqlite.Config{Path: filepath.Join(t.TempDir(), "sspr.db")}.Open(t.Context(), nil)
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// The suite checks every method of [store.Tx] and every sentinel error the
// contract names, [store.Store.Atomic] (all or nothing, fn's error returned
// unchanged, own writes visible inside, nothing visible outside before
// commit), and the single-use guarantees under concurrency: of 2 or 50
// goroutines redeeming one token, code or recovery code, or advancing one
// factor's counter to the same value, exactly one succeeds; a factor's
// counter never moves back; 4 workers claiming 100 outbox messages claim
// each exactly once.
//
// Times are fixed (no clock, no sleeping) and have microsecond precision in
// a non-UTC zone; values are compared as instants, with empty and nil
// slices treated alike.
//
// Where the contract leaves a choice, the suite pins one down:
//   - A journey or challenge is expired when now >= ExpiresAt; a lease ends
//     at now+lease and a message is due when now >= NextAttemptAt.
//   - UpdateJourney never sets CompletedAt; only CompleteJourney does.
//   - An empty token or code hash matches nothing (a wrong code is counted).
//   - An empty secret never matches [store.FactorStore.ConsumeFactor], even
//     a factor stored without one.
//   - UpdateFactor may clear Data and LastUsedAt and may lower Counter; it
//     leaves UserID, Flow, Secret and CreatedAt as they were.
//   - A completed journey or consumed challenge reports [store.ErrUsed] even
//     when it has also expired.
//   - A sentinel error inside Atomic does not abort the transaction: fn may
//     go on and commit (for example to keep a counted wrong code).
//   - Sweep removes counters once their window can no longer serve as the
//     previous window (windowStart + 2*window), and sent or dead messages by
//     CreatedAt.
package storetest
