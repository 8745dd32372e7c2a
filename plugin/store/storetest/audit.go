package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/sspr-go/sspr/plugin/store"
)

func testAudit(t *testing.T, open opener) {
	base := baseTime()
	at := func(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }
	// Appended out of time order, to check the listing sorts by time.
	events := []store.AuditEvent{
		{Time: at(2), Event: "journey.started", JourneyID: "j2", UserID: "u2", IP: "192.0.2.2", UserAgent: "UA/2", Outcome: "ok", Detail: "second user"},
		{Time: at(0), Event: "journey.started", JourneyID: "j1", UserID: "u1", IP: "192.0.2.1", UserAgent: "UA/1", Outcome: "ok"},
		{Time: at(1), Event: "challenge.sent", JourneyID: "j1", UserID: "u1", IP: "192.0.2.1", UserAgent: "UA/1", Outcome: "ok", Detail: "email"},
		{Time: at(3), Event: "password.changed", JourneyID: "j3", UserID: "u1", IP: "2001:db8::1", UserAgent: "UA/3", Outcome: "ok"},
		{Time: at(4), Event: "journey.started", JourneyID: "j4", IP: "192.0.2.9", UserAgent: "UA/4", Outcome: "decoy"},
	}
	// Names of events, newest first, for readable expectations.
	name := func(e store.AuditEvent) string { return e.JourneyID + "/" + e.Event }

	t.Run("append and list", func(t *testing.T) {
		s := open(t)
		ids := map[int64]bool{}
		var want []store.AuditEvent
		for _, e := range events {
			id, err := s.AppendAudit(t.Context(), e)
			must(t, "AppendAudit", err)
			if id <= 0 || ids[id] {
				t.Fatalf("AppendAudit ID = %d, want a new positive ID", id)
			}
			ids[id] = true
			e.ID = id
			want = append(want, e)
		}
		got, err := s.Audit(t.Context(), store.AuditFilter{})
		must(t, "Audit", err)
		// Newest first: at(4), at(3), at(2), at(1), at(0).
		order := []int{4, 3, 0, 2, 1}
		if len(got) != len(order) {
			t.Fatalf("Audit returned %d events, want %d", len(got), len(order))
		}
		for i, j := range order {
			checkEqual(t, fmt.Sprintf("event %d", i), normEvent(got[i]), normEvent(want[j]))
		}
	})

	s := open(t)
	for _, e := range events {
		_, err := s.AppendAudit(t.Context(), e)
		must(t, "AppendAudit", err)
	}
	for _, tc := range []struct {
		name   string
		filter store.AuditFilter
		want   []string
	}{
		{"all", store.AuditFilter{}, []string{"j4/journey.started", "j3/password.changed", "j2/journey.started", "j1/challenge.sent", "j1/journey.started"}},
		{"user", store.AuditFilter{UserID: "u1"}, []string{"j3/password.changed", "j1/challenge.sent", "j1/journey.started"}},
		{"journey", store.AuditFilter{JourneyID: "j1"}, []string{"j1/challenge.sent", "j1/journey.started"}},
		{"event", store.AuditFilter{Event: "journey.started"}, []string{"j4/journey.started", "j2/journey.started", "j1/journey.started"}},
		{"user and event", store.AuditFilter{UserID: "u1", Event: "journey.started"}, []string{"j1/journey.started"}},
		{"since inclusive, until exclusive", store.AuditFilter{Since: at(1), Until: at(3)}, []string{"j2/journey.started", "j1/challenge.sent"}},
		{"since", store.AuditFilter{Since: at(3)}, []string{"j4/journey.started", "j3/password.changed"}},
		{"until", store.AuditFilter{Until: at(1)}, []string{"j1/journey.started"}},
		{"limit keeps the newest", store.AuditFilter{Limit: 2}, []string{"j4/journey.started", "j3/password.changed"}},
		{"limit with filter", store.AuditFilter{UserID: "u1", Limit: 1}, []string{"j3/password.changed"}},
		{"no match", store.AuditFilter{UserID: "nobody"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Audit(t.Context(), tc.filter)
			must(t, "Audit", err)
			var names []string
			for _, e := range got {
				names = append(names, name(e))
			}
			checkEqual(t, "events", names, tc.want)
		})
	}

	t.Run("default limit is 100", func(t *testing.T) {
		s := open(t)
		err := s.Atomic(t.Context(), func(tx store.Tx) error {
			for i := range 105 {
				if _, err := tx.AppendAudit(t.Context(), store.AuditEvent{Time: base.Add(time.Duration(i) * time.Second), Event: fmt.Sprint(i)}); err != nil {
					return err
				}
			}
			return nil
		})
		must(t, "AppendAudit", err)
		got, err := s.Audit(t.Context(), store.AuditFilter{})
		must(t, "Audit", err)
		if len(got) != 100 || got[0].Event != "104" || got[99].Event != "5" {
			t.Fatalf("Audit returned %d events from %q to %q, want 100 from \"104\" to \"5\"",
				len(got), got[0].Event, got[len(got)-1].Event)
		}
	})
}
