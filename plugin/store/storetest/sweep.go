package storetest

import (
	"testing"
	"time"

	"github.com/sspr-go/sspr/plugin/store"
)

func testSweep(t *testing.T, open opener) {
	base := baseTime()
	cutoff := base
	const window = time.Minute

	for _, tc := range []struct {
		name        string
		auditCutoff time.Time
		wantDeleted int64
	}{
		{"with audit cutoff", base.Add(-24 * time.Hour), 6},
		{"zero audit cutoff keeps audit", time.Time{}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			ctx := t.Context()

			// Journeys: one expired before cutoff, one live, one live and completed.
			must(t, "CreateJourney", s.CreateJourney(ctx, newJourney("j-old", base.Add(-20*time.Minute))))
			must(t, "CreateJourney", s.CreateJourney(ctx, newJourney("j-live", base)))
			must(t, "CreateJourney", s.CreateJourney(ctx, newJourney("j-done", base)))
			must(t, "CompleteJourney", s.CompleteJourney(ctx, "j-done", base))

			// Challenges: one expired, one live, one live and used.
			must(t, "CreateChallenge", s.CreateChallenge(ctx, newChallenge("c-old", "j-old", base.Add(-20*time.Minute))))
			must(t, "CreateChallenge", s.CreateChallenge(ctx, newChallenge("c-live", "j-live", base)))
			must(t, "CreateChallenge", s.CreateChallenge(ctx, newChallenge("c-used", "j-live", base)))
			_, err := s.ConsumeToken(ctx, hash("token-c-used"), base)
			must(t, "ConsumeToken", err)

			// Counters: a window that expired (start+2*window) before
			// cutoff, the previous window, the current window.
			for _, start := range []time.Time{base.Add(-3 * window), base.Add(-window), base} {
				_, _, err := s.Hit(ctx, "k", start, window)
				must(t, "Hit", err)
			}

			// Outbox: sent and dead messages created before cutoff go; a
			// pending old one and a sent newer one stay.
			enqueue := func(created time.Time) int64 {
				id, err := s.Enqueue(ctx, store.Message{Channel: "email", Payload: []byte("p"), CreatedAt: created, NextAttemptAt: created})
				must(t, "Enqueue", err)
				return id
			}
			sentOld, deadOld, pendingOld := enqueue(base.Add(-time.Hour)), enqueue(base.Add(-time.Hour)), enqueue(base.Add(-time.Hour))
			sentNew := enqueue(base.Add(time.Minute))
			must(t, "MarkSent", s.MarkSent(ctx, sentOld, base.Add(-time.Hour)))
			must(t, "MarkFailed", s.MarkFailed(ctx, deadOld, base, "gave up", true))
			must(t, "MarkSent", s.MarkSent(ctx, sentNew, base.Add(time.Minute)))

			// Audit: one event older than the audit cutoff.
			_, err = s.AppendAudit(ctx, store.AuditEvent{Time: base.Add(-48 * time.Hour), Event: "old"})
			must(t, "AppendAudit", err)
			_, err = s.AppendAudit(ctx, store.AuditEvent{Time: base.Add(-time.Hour), Event: "new"})
			must(t, "AppendAudit", err)

			n, err := s.Sweep(ctx, cutoff, tc.auditCutoff)
			must(t, "Sweep", err)
			if n != tc.wantDeleted {
				t.Errorf("Sweep deleted %d rows, want %d", n, tc.wantDeleted)
			}

			for id, want := range map[string]error{"j-old": store.ErrNotFound, "j-live": nil, "j-done": nil} {
				_, err := s.Journey(ctx, id)
				checkErr(t, "Journey "+id, err, want)
			}
			for id, want := range map[string]error{"c-old": store.ErrNotFound, "c-live": nil, "c-used": nil} {
				_, err := s.Challenge(ctx, id)
				checkErr(t, "Challenge "+id, err, want)
			}
			for _, c := range []struct {
				start         time.Time
				current, prev int64
			}{
				{base.Add(-2 * window), 0, 0}, // the expired window is gone
				{base, 1, 1},
			} {
				cur, prev, err := s.Count(ctx, "k", c.start, window)
				must(t, "Count", err)
				if cur != c.current || prev != c.prev {
					t.Errorf("Count(%v) = %d, %d; want %d, %d", c.start.Sub(base), cur, prev, c.current, c.prev)
				}
			}
			for id, want := range map[int64]error{sentOld: store.ErrNotFound, deadOld: store.ErrNotFound, pendingOld: nil, sentNew: nil} {
				_, err := s.OutboxMessage(ctx, id)
				checkErr(t, "OutboxMessage", err, want)
			}
			events, err := s.Audit(ctx, store.AuditFilter{})
			must(t, "Audit", err)
			wantEvents := []string{"new"}
			if tc.auditCutoff.IsZero() {
				wantEvents = []string{"new", "old"}
			}
			var got []string
			for _, e := range events {
				got = append(got, e.Event)
			}
			checkEqual(t, "audit events", got, wantEvents)

			n, err = s.Sweep(ctx, cutoff, tc.auditCutoff)
			must(t, "Sweep again", err)
			if n != 0 {
				t.Errorf("second Sweep deleted %d rows, want 0", n)
			}
		})
	}
}
