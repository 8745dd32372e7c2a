package storetest

import (
	"testing"
	"time"

	"github.com/sspr-go/sspr/plugin/store"
)

func testOutbox(t *testing.T, open opener) {
	base := baseTime()
	msg := func(i int) store.Message {
		return store.Message{
			Channel:       "email",
			Payload:       []byte{'p', byte('0' + i%10)},
			CreatedAt:     base,
			NextAttemptAt: base,
		}
	}
	enqueue := func(t *testing.T, s store.Store, m store.Message) int64 {
		t.Helper()
		id, err := s.Enqueue(t.Context(), m)
		must(t, "Enqueue", err)
		return id
	}
	claim := func(t *testing.T, s store.Store, now time.Time, lease time.Duration, limit int) []int64 {
		t.Helper()
		ms, err := s.Claim(t.Context(), now, lease, limit)
		must(t, "Claim", err)
		ids := make([]int64, 0, len(ms))
		for _, m := range ms {
			ids = append(ids, m.ID)
		}
		return ids
	}
	const lease = 5 * time.Minute

	runCases(t, open, []testCase{
		{"enqueue and get", func(t *testing.T, s store.Store) {
			m := msg(1)
			m.ID, m.Attempts, m.SentAt, m.Dead = 99, 7, base, true // ignored
			m.NextAttemptAt = base.Add(time.Minute)
			id := enqueue(t, s, m)
			if id <= 0 {
				t.Fatalf("Enqueue ID = %d, want > 0", id)
			}
			got, err := s.OutboxMessage(t.Context(), id)
			must(t, "OutboxMessage", err)
			want := m
			want.ID, want.Attempts, want.SentAt, want.Dead = id, 0, time.Time{}, false
			checkEqual(t, "message", normMessage(got), normMessage(want))
		}},
		{"ids are distinct and increasing", func(t *testing.T, s store.Store) {
			var last int64
			for i := range 5 {
				id := enqueue(t, s, msg(i))
				if id <= last {
					t.Fatalf("Enqueue ID %d after %d", id, last)
				}
				last = id
			}
		}},
		{"get missing", func(t *testing.T, s store.Store) {
			_, err := s.OutboxMessage(t.Context(), 12345)
			checkErr(t, "OutboxMessage", err, store.ErrNotFound)
		}},
		{"claim oldest first up to limit", func(t *testing.T, s store.Store) {
			var ids []int64
			for i := range 5 {
				ids = append(ids, enqueue(t, s, msg(i)))
			}
			ms, err := s.Claim(t.Context(), base, lease, 3)
			must(t, "Claim", err)
			if len(ms) != 3 {
				t.Fatalf("Claim returned %d messages, want 3", len(ms))
			}
			for i, m := range ms {
				if m.ID != ids[i] || m.Attempts != 1 || string(m.Payload) != string(msg(i).Payload) {
					t.Fatalf("claimed[%d] = {ID %d, Attempts %d, Payload %q}, want {ID %d, Attempts 1, Payload %q}",
						i, m.ID, m.Attempts, m.Payload, ids[i], msg(i).Payload)
				}
				stored, err := s.OutboxMessage(t.Context(), m.ID)
				must(t, "OutboxMessage", err)
				if stored.Attempts != 1 {
					t.Fatalf("stored Attempts = %d, want 1", stored.Attempts)
				}
			}
			checkEqual(t, "second claim", claim(t, s, base, lease, 3), ids[3:])
			checkEqual(t, "third claim", claim(t, s, base, lease, 3), []int64{})
			checkEqual(t, "claim with limit 0", claim(t, s, base.Add(time.Hour), lease, 0), []int64{})
		}},
		{"lease", func(t *testing.T, s store.Store) {
			id := enqueue(t, s, msg(1))
			checkEqual(t, "claim", claim(t, s, base, lease, 10), []int64{id})
			checkEqual(t, "claim during the lease", claim(t, s, base.Add(lease-time.Microsecond), lease, 10), []int64{})
			ms, err := s.Claim(t.Context(), base.Add(lease), lease, 10)
			must(t, "Claim after the lease", err)
			if len(ms) != 1 || ms[0].ID != id || ms[0].Attempts != 2 {
				t.Fatalf("Claim after the lease = %+v, want message %d with 2 attempts", ms, id)
			}
			checkEqual(t, "claim during the second lease", claim(t, s, base.Add(lease+time.Minute), lease, 10), []int64{})
		}},
		{"due time", func(t *testing.T, s store.Store) {
			m := msg(1)
			m.NextAttemptAt = base.Add(10 * time.Minute)
			late := enqueue(t, s, m)
			now := enqueue(t, s, msg(2))
			checkEqual(t, "claim before due", claim(t, s, base, time.Hour, 10), []int64{now})
			checkEqual(t, "claim just before due", claim(t, s, base.Add(10*time.Minute-time.Microsecond), time.Hour, 10), []int64{})
			checkEqual(t, "claim when due", claim(t, s, base.Add(10*time.Minute), time.Hour, 10), []int64{late})
		}},
		{"mark sent", func(t *testing.T, s store.Store) {
			id := enqueue(t, s, msg(1))
			claim(t, s, base, lease, 10)
			sentAt := base.Add(time.Second)
			must(t, "MarkSent", s.MarkSent(t.Context(), id, sentAt))
			got, err := s.OutboxMessage(t.Context(), id)
			must(t, "OutboxMessage", err)
			if !got.SentAt.Equal(sentAt) || len(got.Payload) != 0 || got.Dead {
				t.Fatalf("sent message = %+v, want SentAt %v, no payload, not dead", got, sentAt)
			}
			checkEqual(t, "claim after sent", claim(t, s, base.Add(time.Hour), lease, 10), []int64{})
			checkErr(t, "MarkSent missing", s.MarkSent(t.Context(), id+100, sentAt), store.ErrNotFound)
		}},
		{"mark failed retries at next", func(t *testing.T, s store.Store) {
			id := enqueue(t, s, msg(1))
			claim(t, s, base, 10*time.Minute, 10)
			next := base.Add(time.Minute)
			must(t, "MarkFailed", s.MarkFailed(t.Context(), id, next, "smtp: 451 try later", false))
			got, err := s.OutboxMessage(t.Context(), id)
			must(t, "OutboxMessage", err)
			want := msg(1)
			want.ID, want.Attempts, want.NextAttemptAt, want.LastError = id, 1, next, "smtp: 451 try later"
			checkEqual(t, "failed message", normMessage(got), normMessage(want))

			checkEqual(t, "claim before next", claim(t, s, next.Add(-time.Microsecond), lease, 10), []int64{})
			ms, err := s.Claim(t.Context(), next, lease, 10)
			must(t, "Claim at next", err)
			if len(ms) != 1 || ms[0].ID != id || ms[0].Attempts != 2 || string(ms[0].Payload) != string(msg(1).Payload) {
				t.Fatalf("Claim at next = %+v, want message %d with 2 attempts and its payload", ms, id)
			}
		}},
		{"mark failed dead", func(t *testing.T, s store.Store) {
			id := enqueue(t, s, msg(1))
			claim(t, s, base, lease, 10)
			must(t, "MarkFailed", s.MarkFailed(t.Context(), id, base.Add(time.Minute), "gave up", true))
			got, err := s.OutboxMessage(t.Context(), id)
			must(t, "OutboxMessage", err)
			if !got.Dead || len(got.Payload) != 0 || got.LastError != "gave up" || !got.SentAt.IsZero() {
				t.Fatalf("dead message = %+v, want dead, no payload, LastError, not sent", got)
			}
			checkEqual(t, "claim after dead", claim(t, s, base.Add(24*time.Hour), lease, 10), []int64{})
			checkErr(t, "MarkFailed missing", s.MarkFailed(t.Context(), id+100, base, "x", false), store.ErrNotFound)
		}},
	})
}
