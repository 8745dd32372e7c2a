package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sspr-go/sspr/plugin/store"
)

func testAtomic(t *testing.T, open opener) {
	base := baseTime()
	const window = time.Minute
	hist := store.History{UserID: "u1", Salt: []byte("salt"), Params: "p", Keys: [][]byte{hash("k")}}

	// writeAll performs one write of every kind through tx and returns the
	// outbox message ID.
	writeAll := func(t *testing.T, tx store.Tx) int64 {
		t.Helper()
		ctx := t.Context()
		must(t, "CreateJourney", tx.CreateJourney(ctx, newJourney("j1", base)))
		must(t, "CreateChallenge", tx.CreateChallenge(ctx, newChallenge("c1", "j1", base)))
		_, _, err := tx.Hit(ctx, "k", base, window)
		must(t, "Hit", err)
		id, err := tx.Enqueue(ctx, store.Message{Channel: "email", Payload: []byte("p"), CreatedAt: base, NextAttemptAt: base})
		must(t, "Enqueue", err)
		_, err = tx.AppendAudit(ctx, store.AuditEvent{Time: base, Event: "journey.started", JourneyID: "j1"})
		must(t, "AppendAudit", err)
		must(t, "SaveHistory", tx.SaveHistory(ctx, hist))
		return id
	}
	// checkAll checks whether every write of writeAll is visible.
	checkAll := func(t *testing.T, s store.Store, msgID int64, visible bool) {
		t.Helper()
		ctx := t.Context()
		var want error
		if !visible {
			want = store.ErrNotFound
		}
		_, err := s.Journey(ctx, "j1")
		checkErr(t, "Journey", err, want)
		_, err = s.Challenge(ctx, "c1")
		checkErr(t, "Challenge", err, want)
		_, err = s.OutboxMessage(ctx, msgID)
		checkErr(t, "OutboxMessage", err, want)
		_, err = s.PasswordHistory(ctx, "u1")
		checkErr(t, "PasswordHistory", err, want)
		cur, _, err := s.Count(ctx, "k", base, window)
		must(t, "Count", err)
		events, err := s.Audit(ctx, store.AuditFilter{JourneyID: "j1"})
		must(t, "Audit", err)
		n := int64(0)
		if visible {
			n = 1
		}
		if cur != n || int64(len(events)) != n {
			t.Fatalf("counter = %d, audit events = %d; want %d of each", cur, len(events), n)
		}
	}
	errBoom := errors.New("boom")

	runCases(t, open, []testCase{
		{"commit", func(t *testing.T, s store.Store) {
			var id int64
			err := s.Atomic(t.Context(), func(tx store.Tx) error {
				id = writeAll(t, tx)
				return nil
			})
			must(t, "Atomic", err)
			checkAll(t, s, id, true)
		}},
		{"error rolls back every write", func(t *testing.T, s store.Store) {
			ctx := t.Context()
			j0, c0 := newJourney("j0", base), newChallenge("c0", "j0", base)
			mustCreateChallenge(t, s, c0)
			var id int64
			err := s.Atomic(ctx, func(tx store.Tx) error {
				id = writeAll(t, tx)
				upd := j0
				upd.Verified = []string{"email"}
				must(t, "UpdateJourney", tx.UpdateJourney(ctx, upd))
				must(t, "CompleteJourney", tx.CompleteJourney(ctx, "j0", base))
				_, err := tx.ConsumeToken(ctx, c0.TokenHash, base)
				must(t, "ConsumeToken", err)
				_, err = tx.Claim(ctx, base, time.Minute, 10)
				must(t, "Claim", err)
				return errBoom
			})
			if err != errBoom { //nolint:errorlint // Atomic must return fn's error unchanged
				t.Fatalf("Atomic = %v, want fn's error unchanged", err)
			}
			checkAll(t, s, id, false)
			checkJourney(t, s, j0)
			checkChallenge(t, s, c0)
		}},
		{"store error rolls back earlier writes", func(t *testing.T, s store.Store) {
			ctx := t.Context()
			must(t, "CreateJourney", s.CreateJourney(ctx, newJourney("j0", base)))
			err := s.Atomic(ctx, func(tx store.Tx) error {
				must(t, "CreateJourney", tx.CreateJourney(ctx, newJourney("j1", base)))
				return tx.CreateJourney(ctx, newJourney("j0", base))
			})
			checkErr(t, "Atomic", err, store.ErrConflict)
			_, err = s.Journey(ctx, "j1")
			checkErr(t, "Journey j1", err, store.ErrNotFound)
		}},
		{"sentinel errors do not abort the transaction", func(t *testing.T, s store.Store) {
			ctx := t.Context()
			c := newChallenge("c0", "j0", base)
			mustCreateChallenge(t, s, c)
			err := s.Atomic(ctx, func(tx store.Tx) error {
				checkErr(t, "CreateJourney duplicate", tx.CreateJourney(ctx, newJourney("j0", base)), store.ErrConflict)
				_, err := tx.ConsumeCode(ctx, c.ID, wrongCode(), base)
				checkErr(t, "ConsumeCode", err, store.ErrMismatch)
				_, err = tx.AppendAudit(ctx, store.AuditEvent{Time: base, Event: "code.mismatch", JourneyID: "j0"})
				must(t, "AppendAudit", err)
				return nil
			})
			must(t, "Atomic", err)
			got, err := s.Challenge(ctx, c.ID)
			must(t, "Challenge", err)
			events, err := s.Audit(ctx, store.AuditFilter{JourneyID: "j0"})
			must(t, "Audit", err)
			if got.Attempts != 1 || len(events) != 1 {
				t.Fatalf("after commit: Attempts = %d, audit events = %d; want 1 and 1", got.Attempts, len(events))
			}
		}},
		{"reads see own writes, others do not", func(t *testing.T, s store.Store) {
			ctx := t.Context()
			err := s.Atomic(ctx, func(tx store.Tx) error {
				id := writeAll(t, tx)
				_, err := tx.Journey(ctx, "j1")
				must(t, "tx.Journey", err)
				_, err = tx.Challenge(ctx, "c1")
				must(t, "tx.Challenge", err)
				_, err = tx.ChallengeByToken(ctx, hash("token-c1"))
				must(t, "tx.ChallengeByToken", err)
				_, err = tx.LatestChallenge(ctx, "j1", "email")
				must(t, "tx.LatestChallenge", err)
				_, err = tx.OutboxMessage(ctx, id)
				must(t, "tx.OutboxMessage", err)
				_, err = tx.PasswordHistory(ctx, "u1")
				must(t, "tx.PasswordHistory", err)
				cur, _, err := tx.Count(ctx, "k", base, window)
				must(t, "tx.Count", err)
				events, err := tx.Audit(ctx, store.AuditFilter{})
				must(t, "tx.Audit", err)
				if cur != 1 || len(events) != 1 {
					t.Fatalf("inside: counter = %d, audit events = %d; want 1 and 1", cur, len(events))
				}
				// Not visible outside before commit.
				checkAll(t, s, id, false)
				return nil
			})
			must(t, "Atomic", err)
			_, err = s.Journey(ctx, "j1")
			must(t, "Journey after commit", err)
		}},
		{"ended context rolls back", func(t *testing.T, s store.Store) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var id int64
			err := s.Atomic(ctx, func(tx store.Tx) error {
				id = writeAll(t, tx)
				cancel()
				return nil
			})
			if err == nil {
				t.Fatal("Atomic with a canceled context returned nil")
			}
			checkAll(t, s, id, false)
			// The store still works.
			must(t, "CreateJourney", s.CreateJourney(t.Context(), newJourney("j2", base)))
		}},
	})
}
