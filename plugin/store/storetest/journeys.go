package storetest

import (
	"testing"
	"time"

	"github.com/sspr-go/sspr/plugin/store"
)

func testJourneys(t *testing.T, open opener) {
	base := baseTime()
	runCases(t, open, []testCase{
		{"create and get", func(t *testing.T, s store.Store) {
			j := newJourney("j1", base)
			j.Verified = []string{"email", "totp"}
			must(t, "CreateJourney", s.CreateJourney(t.Context(), j))
			checkJourney(t, s, j)

			decoy := newJourney("j2", base)
			decoy.UserID = ""
			must(t, "CreateJourney decoy", s.CreateJourney(t.Context(), decoy))
			checkJourney(t, s, decoy)

			up := newJourney("j3", base)
			up.Kind = store.KindStepUp
			must(t, "CreateJourney step-up", s.CreateJourney(t.Context(), up))
			checkJourney(t, s, up)
		}},
		{"kind is fixed at creation", func(t *testing.T, s store.Store) {
			j := newJourney("j1", base)
			j.Kind = store.KindReset
			must(t, "CreateJourney", s.CreateJourney(t.Context(), j))
			changed := j
			changed.Kind = store.KindStepUp
			must(t, "UpdateJourney", s.UpdateJourney(t.Context(), changed))
			j.Version = 1
			checkJourney(t, s, j)
		}},
		{"create duplicate id", func(t *testing.T, s store.Store) {
			must(t, "CreateJourney", s.CreateJourney(t.Context(), newJourney("j1", base)))
			other := newJourney("j1", base.Add(time.Minute))
			other.UserID = "someone-else"
			checkErr(t, "CreateJourney again", s.CreateJourney(t.Context(), other), store.ErrConflict)
			checkJourney(t, s, newJourney("j1", base))
		}},
		{"get missing", func(t *testing.T, s store.Store) {
			_, err := s.Journey(t.Context(), "nope")
			checkErr(t, "Journey", err, store.ErrNotFound)
		}},
		{"update", func(t *testing.T, s store.Store) {
			j := newJourney("j1", base)
			must(t, "CreateJourney", s.CreateJourney(t.Context(), j))
			j.Verified = []string{"email"}
			j.Locale = "de"
			j.ReturnTo = "https://other.example.com/"
			j.ExpiresAt = base.Add(20 * time.Minute)
			must(t, "UpdateJourney", s.UpdateJourney(t.Context(), j))
			j.Version = 1
			checkJourney(t, s, j)

			j.Verified = append(j.Verified, "totp")
			must(t, "UpdateJourney again", s.UpdateJourney(t.Context(), j))
			j.Version = 2
			checkJourney(t, s, j)
		}},
		{"update stale version", func(t *testing.T, s store.Store) {
			j := newJourney("j1", base)
			must(t, "CreateJourney", s.CreateJourney(t.Context(), j))
			first := j
			first.Verified = []string{"email"}
			must(t, "UpdateJourney", s.UpdateJourney(t.Context(), first))
			second := j // still version 0
			second.Verified = []string{"sms"}
			checkErr(t, "UpdateJourney stale", s.UpdateJourney(t.Context(), second), store.ErrConflict)
			first.Version = 1
			checkJourney(t, s, first)
		}},
		{"update missing", func(t *testing.T, s store.Store) {
			checkErr(t, "UpdateJourney", s.UpdateJourney(t.Context(), newJourney("nope", base)), store.ErrNotFound)
		}},
		{"update completed", func(t *testing.T, s store.Store) {
			j := newJourney("j1", base)
			must(t, "CreateJourney", s.CreateJourney(t.Context(), j))
			must(t, "CompleteJourney", s.CompleteJourney(t.Context(), "j1", base.Add(time.Minute)))
			stored, err := s.Journey(t.Context(), "j1")
			must(t, "Journey", err)
			upd := stored
			upd.Verified = []string{"email"}
			checkErr(t, "UpdateJourney completed", s.UpdateJourney(t.Context(), upd), store.ErrConflict)
			checkJourney(t, s, stored)
		}},
		{"update does not complete", func(t *testing.T, s store.Store) {
			j := newJourney("j1", base)
			must(t, "CreateJourney", s.CreateJourney(t.Context(), j))
			j.CompletedAt = base.Add(time.Minute)
			must(t, "UpdateJourney", s.UpdateJourney(t.Context(), j))
			j.CompletedAt = time.Time{}
			j.Version = 1
			checkJourney(t, s, j)
		}},
		{"complete", func(t *testing.T, s store.Store) {
			j := newJourney("j1", base)
			must(t, "CreateJourney", s.CreateJourney(t.Context(), j))
			now := base.Add(5 * time.Minute)
			must(t, "CompleteJourney", s.CompleteJourney(t.Context(), "j1", now))
			got, err := s.Journey(t.Context(), "j1")
			must(t, "Journey", err)
			if !got.CompletedAt.Equal(now) {
				t.Fatalf("CompletedAt = %v, want %v", got.CompletedAt, now)
			}
			if got.Version <= j.Version {
				t.Fatalf("Version = %d after completion, want > %d", got.Version, j.Version)
			}
		}},
	})

	// CompleteJourney's sentinels.
	for _, tc := range []struct {
		name     string
		id       string
		before   []time.Time // earlier completions
		now      time.Time
		wantErr  error
		complete bool // CompletedAt stays zero unless true
	}{
		{name: "complete just before expiry", id: "j1", now: base.Add(15*time.Minute - time.Microsecond), complete: true},
		{name: "complete twice", id: "j1", before: []time.Time{base.Add(time.Minute)}, now: base.Add(2 * time.Minute), wantErr: store.ErrUsed, complete: true},
		{name: "complete at expiry", id: "j1", now: base.Add(15 * time.Minute), wantErr: store.ErrExpired},
		{name: "complete after expiry", id: "j1", now: base.Add(time.Hour), wantErr: store.ErrExpired},
		{name: "complete completed and expired", id: "j1", before: []time.Time{base.Add(time.Minute)}, now: base.Add(time.Hour), wantErr: store.ErrUsed, complete: true},
		{name: "complete missing", id: "nope", now: base, wantErr: store.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			must(t, "CreateJourney", s.CreateJourney(t.Context(), newJourney("j1", base)))
			for _, at := range tc.before {
				must(t, "CompleteJourney before", s.CompleteJourney(t.Context(), "j1", at))
			}
			checkErr(t, "CompleteJourney", s.CompleteJourney(t.Context(), tc.id, tc.now), tc.wantErr)
			got, err := s.Journey(t.Context(), "j1")
			must(t, "Journey", err)
			if got.CompletedAt.IsZero() == tc.complete {
				t.Fatalf("CompletedAt = %v, want completed %v", got.CompletedAt, tc.complete)
			}
		})
	}
}
