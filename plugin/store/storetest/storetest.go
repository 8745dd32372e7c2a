package storetest

import (
	"crypto/sha256"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/sspr-go/sspr/plugin/store"
)

// Run runs the conformance suite against the backend that newStore opens.
// newStore must return a new, empty store on every call (each subtest gets
// its own); Run closes it when the subtest ends. The suite reads through
// the store while an [store.Store.Atomic] transaction of the same store is
// open, so a backend must serve reads concurrently with one transaction.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Helper()
	open := func(t *testing.T) store.Store {
		t.Helper()
		s := newStore(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	}
	t.Run("Journeys", func(t *testing.T) { testJourneys(t, open) })
	t.Run("Challenges", func(t *testing.T) { testChallenges(t, open) })
	t.Run("ConsumeToken", func(t *testing.T) { testConsumeToken(t, open) })
	t.Run("ConsumeCode", func(t *testing.T) { testConsumeCode(t, open) })
	t.Run("ReissueChallenge", func(t *testing.T) { testReissue(t, open) })
	t.Run("Counters", func(t *testing.T) { testCounters(t, open) })
	t.Run("Outbox", func(t *testing.T) { testOutbox(t, open) })
	t.Run("Audit", func(t *testing.T) { testAudit(t, open) })
	t.Run("History", func(t *testing.T) { testHistory(t, open) })
	t.Run("Factors", func(t *testing.T) { testFactors(t, open) })
	t.Run("AdvanceCounter", func(t *testing.T) { testAdvanceCounter(t, open) })
	t.Run("ConsumeFactor", func(t *testing.T) { testConsumeFactor(t, open) })
	t.Run("Sweep", func(t *testing.T) { testSweep(t, open) })
	t.Run("Atomic", func(t *testing.T) { testAtomic(t, open) })
	t.Run("Concurrency", func(t *testing.T) { testConcurrency(t, open) })
}

// opener opens a fresh store for one subtest.
type opener func(t *testing.T) store.Store

// testCase is one row of a table: a name and a body that gets a fresh
// store.
type testCase struct {
	name string
	run  func(t *testing.T, s store.Store)
}

func runCases(t *testing.T, open opener, cases []testCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
	}
}

// baseTime is the fixed "now" of every test. It is not in UTC, to check
// that backends keep the instant, and has microsecond precision, which
// every backend can store.
func baseTime() time.Time {
	return time.Date(2031, time.March, 4, 5, 6, 7, 890123000, time.FixedZone("UTC+2", 2*60*60))
}

// hash stands in for the keyed hashes callers store.
func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// newJourney returns a journey that started at base and expires 15 minutes
// later.
func newJourney(id string, base time.Time) store.Journey {
	return store.Journey{
		ID:        id,
		UserID:    "user-" + id,
		ReturnTo:  "https://app.example.com/",
		Locale:    "en",
		CreatedAt: base,
		ExpiresAt: base.Add(15 * time.Minute),
	}
}

// newChallenge returns an email challenge for journey j with a link token
// hash("token-"+id) and a code hash("code-"+id), 5 attempts, created at
// base and valid 10 minutes.
func newChallenge(id, journeyID string, base time.Time) store.Challenge {
	return store.Challenge{
		ID:          id,
		JourneyID:   journeyID,
		Flow:        "email",
		TokenHash:   hash("token-" + id),
		CodeHash:    hash("code-" + id),
		MaxAttempts: 5,
		CreatedAt:   base,
		ExpiresAt:   base.Add(10 * time.Minute),
	}
}

// mustCreateChallenge creates a journey and challenge c in it.
func mustCreateChallenge(t *testing.T, s store.Store, c store.Challenge) {
	t.Helper()
	if err := s.CreateJourney(t.Context(), newJourney(c.JourneyID, c.CreatedAt)); err != nil && !errors.Is(err, store.ErrConflict) {
		t.Fatalf("CreateJourney: %v", err)
	}
	if err := s.CreateChallenge(t.Context(), c); err != nil {
		t.Fatalf("CreateChallenge: %v", err)
	}
}

// checkErr fails the test unless err matches want (nil means no error).
func checkErr(t *testing.T, op string, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("%s: unexpected error: %v", op, err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("%s: error = %v, want %v", op, err, want)
	}
}

// must fails the test on an error.
func must(t *testing.T, op string, err error) {
	t.Helper()
	checkErr(t, op, err, nil)
}

// checkEqual compares values after the caller normalized them.
func checkEqual[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

// The norm functions make values comparable across backends: times in
// UTC (the same instant), empty slices as nil.

func normBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func normJourney(j store.Journey) store.Journey {
	if len(j.Verified) == 0 {
		j.Verified = nil
	}
	j.CreatedAt, j.ExpiresAt, j.CompletedAt = j.CreatedAt.UTC(), j.ExpiresAt.UTC(), j.CompletedAt.UTC()
	return j
}

func normChallenge(c store.Challenge) store.Challenge {
	c.TokenHash, c.CodeHash, c.Data = normBytes(c.TokenHash), normBytes(c.CodeHash), normBytes(c.Data)
	c.CreatedAt, c.ExpiresAt, c.UsedAt = c.CreatedAt.UTC(), c.ExpiresAt.UTC(), c.UsedAt.UTC()
	return c
}

func normMessage(m store.Message) store.Message {
	m.Payload = normBytes(m.Payload)
	m.CreatedAt, m.NextAttemptAt, m.SentAt = m.CreatedAt.UTC(), m.NextAttemptAt.UTC(), m.SentAt.UTC()
	return m
}

func normEvent(e store.AuditEvent) store.AuditEvent {
	e.Time = e.Time.UTC()
	return e
}

func normHistory(h store.History) store.History {
	h.Salt = normBytes(h.Salt)
	if len(h.Keys) == 0 {
		h.Keys = nil
	}
	for i, k := range h.Keys {
		h.Keys[i] = normBytes(k)
	}
	return h
}

func checkJourney(t *testing.T, s store.Store, want store.Journey) {
	t.Helper()
	got, err := s.Journey(t.Context(), want.ID)
	must(t, "Journey", err)
	checkEqual(t, "journey "+want.ID, normJourney(got), normJourney(want))
}

func checkChallenge(t *testing.T, s store.Store, want store.Challenge) {
	t.Helper()
	got, err := s.Challenge(t.Context(), want.ID)
	must(t, "Challenge", err)
	checkEqual(t, "challenge "+want.ID, normChallenge(got), normChallenge(want))
}
