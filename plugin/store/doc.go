// Package store defines the persistence contract of sspr: journeys,
// challenges, rate-limit counters, the outbox of outbound messages, the audit
// trail and password histories.
//
// The contract is composed of small per-aggregate interfaces ([JourneyStore],
// [ChallengeStore], [CounterStore], [OutboxStore], [AuditStore],
// [HistoryStore], [FactorStore], [Sweeper]) gathered in [Tx], plus [Store.Atomic] to run
// several operations in one transaction. Single-use secrets are consumed by
// atomic domain operations ([ChallengeStore.ConsumeToken],
// [ChallengeStore.ConsumeCode], [JourneyStore.CompleteJourney],
// [FactorStore.AdvanceCounter], [FactorStore.ConsumeFactor]), never by a
// read followed by a delete.
//
// Backends live in sub-packages (store/sqlite, the embedded default) so that
// the plugin links no driver it does not use. Every backend passes the
// conformance suite in store/storetest:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return openTestStore(t) })
//	}
//
// Errors are the sentinels of this package wrapped with %w; test them with
// [errors.Is].
package store
