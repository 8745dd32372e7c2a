package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/sspr-go/sspr/plugin/store"
)

func testChallenges(t *testing.T, open opener) {
	base := baseTime()
	runCases(t, open, []testCase{
		{"create and get", func(t *testing.T, s store.Store) {
			c := newChallenge("c1", "j1", base)
			c.Data = []byte(`{"webauthn":"session"}`)
			c.Attempts, c.Reissues = 1, 2
			mustCreateChallenge(t, s, c)
			checkChallenge(t, s, c)
			got, err := s.ChallengeByToken(t.Context(), c.TokenHash)
			must(t, "ChallengeByToken", err)
			checkEqual(t, "ChallengeByToken", normChallenge(got), normChallenge(c))
		}},
		{"create duplicate id", func(t *testing.T, s store.Store) {
			mustCreateChallenge(t, s, newChallenge("c1", "j1", base))
			dup := newChallenge("c1", "j1", base)
			dup.TokenHash = hash("another token")
			checkErr(t, "CreateChallenge", s.CreateChallenge(t.Context(), dup), store.ErrConflict)
		}},
		{"create duplicate token", func(t *testing.T, s store.Store) {
			c1 := newChallenge("c1", "j1", base)
			mustCreateChallenge(t, s, c1)
			c2 := newChallenge("c2", "j1", base)
			c2.TokenHash = c1.TokenHash
			checkErr(t, "CreateChallenge", s.CreateChallenge(t.Context(), c2), store.ErrConflict)
			_, err := s.Challenge(t.Context(), "c2")
			checkErr(t, "Challenge c2", err, store.ErrNotFound)
		}},
		{"create several without token", func(t *testing.T, s store.Store) {
			for _, id := range []string{"c1", "c2", "c3"} {
				c := newChallenge(id, "j1", base)
				c.TokenHash = nil
				mustCreateChallenge(t, s, c)
				checkChallenge(t, s, c)
			}
			_, err := s.ChallengeByToken(t.Context(), nil)
			checkErr(t, "ChallengeByToken(nil)", err, store.ErrNotFound)
			_, err = s.ChallengeByToken(t.Context(), []byte{})
			checkErr(t, "ChallengeByToken(empty)", err, store.ErrNotFound)
		}},
		{"get missing", func(t *testing.T, s store.Store) {
			_, err := s.Challenge(t.Context(), "nope")
			checkErr(t, "Challenge", err, store.ErrNotFound)
			_, err = s.ChallengeByToken(t.Context(), hash("nope"))
			checkErr(t, "ChallengeByToken", err, store.ErrNotFound)
			_, err = s.LatestChallenge(t.Context(), "j1", "email")
			checkErr(t, "LatestChallenge", err, store.ErrNotFound)
		}},
		{"by token does not consume", func(t *testing.T, s store.Store) {
			c := newChallenge("c1", "j1", base)
			mustCreateChallenge(t, s, c)
			for range 2 {
				_, err := s.ChallengeByToken(t.Context(), c.TokenHash)
				must(t, "ChallengeByToken", err)
			}
			_, err := s.ConsumeToken(t.Context(), c.TokenHash, base)
			must(t, "ConsumeToken", err)
		}},
		{"latest", func(t *testing.T, s store.Store) {
			// Inserted out of creation order.
			for _, c := range []store.Challenge{
				newChallenge("c-mid", "j1", base.Add(time.Minute)),
				newChallenge("c-new", "j1", base.Add(2*time.Minute)),
				newChallenge("c-old", "j1", base),
				func() store.Challenge {
					c := newChallenge("c-sms", "j1", base.Add(5*time.Minute))
					c.Flow = "sms"
					return c
				}(),
				newChallenge("c-other-journey", "j2", base.Add(9*time.Minute)),
			} {
				mustCreateChallenge(t, s, c)
			}
			for _, tc := range []struct {
				journey, flow, want string
			}{
				{"j1", "email", "c-new"},
				{"j1", "sms", "c-sms"},
				{"j2", "email", "c-other-journey"},
			} {
				got, err := s.LatestChallenge(t.Context(), tc.journey, tc.flow)
				must(t, "LatestChallenge", err)
				if got.ID != tc.want {
					t.Errorf("LatestChallenge(%s, %s) = %s, want %s", tc.journey, tc.flow, got.ID, tc.want)
				}
			}
			_, err := s.LatestChallenge(t.Context(), "j2", "sms")
			checkErr(t, "LatestChallenge(j2, sms)", err, store.ErrNotFound)
		}},
	})
}

// wrongCode is a code hash that matches no challenge.
func wrongCode() []byte { return hash("wrong code") }

func testConsumeToken(t *testing.T, open opener) {
	base := baseTime()
	expiry := base.Add(10 * time.Minute)
	for _, tc := range []struct {
		name    string
		prepare func(c *store.Challenge)                             // before creation
		before  func(t *testing.T, s store.Store, c store.Challenge) // after creation
		token   func(c store.Challenge) []byte                       // default: c.TokenHash
		now     time.Time
		wantErr error
	}{
		{name: "success", now: base.Add(time.Minute)},
		{name: "success just before expiry", now: expiry.Add(-time.Microsecond)},
		{name: "success after wrong codes", now: base.Add(time.Minute), before: wrongCodes(4)},
		{
			name: "used", now: base.Add(2 * time.Minute), wantErr: store.ErrUsed,
			before: func(t *testing.T, s store.Store, c store.Challenge) {
				_, err := s.ConsumeToken(t.Context(), c.TokenHash, base.Add(time.Minute))
				must(t, "ConsumeToken first", err)
			},
		},
		{
			name: "used by code", now: base.Add(2 * time.Minute), wantErr: store.ErrUsed,
			before: func(t *testing.T, s store.Store, c store.Challenge) {
				_, err := s.ConsumeCode(t.Context(), c.ID, c.CodeHash, base.Add(time.Minute))
				must(t, "ConsumeCode", err)
			},
		},
		{
			name: "used and expired", now: expiry.Add(time.Hour), wantErr: store.ErrUsed,
			before: func(t *testing.T, s store.Store, c store.Challenge) {
				_, err := s.ConsumeToken(t.Context(), c.TokenHash, base.Add(time.Minute))
				must(t, "ConsumeToken first", err)
			},
		},
		{name: "expired at expiry", now: expiry, wantErr: store.ErrExpired},
		{name: "expired after expiry", now: expiry.Add(time.Second), wantErr: store.ErrExpired},
		{name: "not found", now: base, wantErr: store.ErrNotFound, token: func(store.Challenge) []byte { return hash("unknown") }},
		{name: "empty token", now: base, wantErr: store.ErrNotFound, token: func(store.Challenge) []byte { return nil }},
		{
			name: "no link", now: base, wantErr: store.ErrNotFound,
			prepare: func(c *store.Challenge) { c.TokenHash = nil },
			token:   func(store.Challenge) []byte { return nil },
		},
		{name: "exhausted", now: base, wantErr: store.ErrExhausted, prepare: func(c *store.Challenge) { c.Attempts = c.MaxAttempts }},
		{name: "exhausted by wrong codes", now: base.Add(time.Minute), wantErr: store.ErrExhausted, before: wrongCodes(5)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			c := newChallenge("c1", "j1", base)
			if tc.prepare != nil {
				tc.prepare(&c)
			}
			mustCreateChallenge(t, s, c)
			if tc.before != nil {
				tc.before(t, s, c)
			}
			stored, err := s.Challenge(t.Context(), c.ID)
			must(t, "Challenge", err)
			token := c.TokenHash
			if tc.token != nil {
				token = tc.token(c)
			}

			got, err := s.ConsumeToken(t.Context(), token, tc.now)
			checkErr(t, "ConsumeToken", err, tc.wantErr)
			if tc.wantErr != nil {
				checkChallenge(t, s, stored) // unchanged
				return
			}
			want := stored
			want.UsedAt = tc.now
			checkEqual(t, "consumed challenge", normChallenge(got), normChallenge(want))
			checkChallenge(t, s, want)
		})
	}
}

// wrongCodes returns a before step that enters n wrong codes.
func wrongCodes(n int) func(t *testing.T, s store.Store, c store.Challenge) {
	return func(t *testing.T, s store.Store, c store.Challenge) {
		t.Helper()
		for range n {
			_, err := s.ConsumeCode(t.Context(), c.ID, wrongCode(), c.CreatedAt)
			checkErr(t, "ConsumeCode wrong", err, store.ErrMismatch)
		}
	}
}

func testConsumeCode(t *testing.T, open opener) {
	base := baseTime()
	expiry := base.Add(10 * time.Minute)
	right := func(c store.Challenge) []byte { return c.CodeHash }
	wrong := func(store.Challenge) []byte { return wrongCode() }
	for _, tc := range []struct {
		name         string
		prepare      func(c *store.Challenge)
		before       func(t *testing.T, s store.Store, c store.Challenge)
		id           string // default: the challenge's
		code         func(c store.Challenge) []byte
		now          time.Time
		wantErr      error
		wantAttempts int  // stored afterwards
		wantUsed     bool // stored afterwards
	}{
		{name: "success", code: right, now: base.Add(time.Minute), wantUsed: true},
		{name: "success just before expiry", code: right, now: expiry.Add(-time.Microsecond), wantUsed: true},
		{name: "success after wrong codes", code: right, now: base.Add(time.Minute), before: wrongCodes(4), wantAttempts: 4, wantUsed: true},
		{name: "mismatch", code: wrong, now: base.Add(time.Minute), wantErr: store.ErrMismatch, wantAttempts: 1},
		{name: "mismatch with empty code", code: func(store.Challenge) []byte { return nil }, now: base, wantErr: store.ErrMismatch, wantAttempts: 1},
		{
			name: "no code never matches", code: func(store.Challenge) []byte { return nil }, now: base,
			prepare: func(c *store.Challenge) { c.CodeHash = nil }, wantErr: store.ErrMismatch, wantAttempts: 1,
		},
		{name: "exhausted with right code", code: right, now: base.Add(time.Minute), before: wrongCodes(5), wantErr: store.ErrExhausted, wantAttempts: 5},
		{name: "exhausted with wrong code is not counted", code: wrong, now: base.Add(time.Minute), before: wrongCodes(5), wantErr: store.ErrExhausted, wantAttempts: 5},
		{
			name: "used", code: right, now: base.Add(2 * time.Minute), wantErr: store.ErrUsed, wantUsed: true,
			before: func(t *testing.T, s store.Store, c store.Challenge) {
				_, err := s.ConsumeCode(t.Context(), c.ID, c.CodeHash, base.Add(time.Minute))
				must(t, "ConsumeCode first", err)
			},
		},
		{
			name: "used with wrong code is not counted", code: wrong, now: base.Add(2 * time.Minute), wantErr: store.ErrUsed, wantUsed: true,
			before: func(t *testing.T, s store.Store, c store.Challenge) {
				_, err := s.ConsumeCode(t.Context(), c.ID, c.CodeHash, base.Add(time.Minute))
				must(t, "ConsumeCode first", err)
			},
		},
		{
			name: "used by token", code: right, now: base.Add(2 * time.Minute), wantErr: store.ErrUsed, wantUsed: true,
			before: func(t *testing.T, s store.Store, c store.Challenge) {
				_, err := s.ConsumeToken(t.Context(), c.TokenHash, base.Add(time.Minute))
				must(t, "ConsumeToken", err)
			},
		},
		{name: "expired at expiry", code: right, now: expiry, wantErr: store.ErrExpired},
		{name: "expired with wrong code is not counted", code: wrong, now: expiry.Add(time.Minute), wantErr: store.ErrExpired},
		{name: "not found", id: "nope", code: right, now: base, wantErr: store.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			c := newChallenge("c1", "j1", base)
			if tc.prepare != nil {
				tc.prepare(&c)
			}
			mustCreateChallenge(t, s, c)
			if tc.before != nil {
				tc.before(t, s, c)
			}
			before, err := s.Challenge(t.Context(), c.ID)
			must(t, "Challenge", err)
			id := c.ID
			if tc.id != "" {
				id = tc.id
			}

			got, err := s.ConsumeCode(t.Context(), id, tc.code(c), tc.now)
			checkErr(t, "ConsumeCode", err, tc.wantErr)

			after, err := s.Challenge(t.Context(), c.ID)
			must(t, "Challenge", err)
			if after.Attempts != tc.wantAttempts {
				t.Errorf("stored Attempts = %d, want %d", after.Attempts, tc.wantAttempts)
			}
			if after.UsedAt.IsZero() == tc.wantUsed {
				t.Errorf("stored UsedAt = %v, want used %v", after.UsedAt, tc.wantUsed)
			}
			switch tc.wantErr {
			case nil:
				want := before
				want.UsedAt = tc.now
				checkEqual(t, "consumed challenge", normChallenge(got), normChallenge(want))
				checkEqual(t, "stored challenge", normChallenge(after), normChallenge(want))
			case store.ErrMismatch:
				// The mismatch result is the updated challenge.
				checkEqual(t, "challenge returned with ErrMismatch", normChallenge(got), normChallenge(after))
			}
		})
	}

	t.Run("counts to exhaustion", func(t *testing.T) {
		s := open(t)
		c := newChallenge("c1", "j1", base)
		mustCreateChallenge(t, s, c)
		for i := 1; i <= c.MaxAttempts; i++ {
			got, err := s.ConsumeCode(t.Context(), c.ID, wrongCode(), base.Add(time.Duration(i)*time.Second))
			checkErr(t, "ConsumeCode wrong", err, store.ErrMismatch)
			if got.Attempts != i || got.MaxAttempts != c.MaxAttempts {
				t.Fatalf("try %d: Attempts/MaxAttempts = %d/%d, want %d/%d", i, got.Attempts, got.MaxAttempts, i, c.MaxAttempts)
			}
		}
		_, err := s.ConsumeCode(t.Context(), c.ID, c.CodeHash, base.Add(time.Minute))
		checkErr(t, "ConsumeCode right after 5 wrong", err, store.ErrExhausted)
		_, err = s.ConsumeToken(t.Context(), c.TokenHash, base.Add(time.Minute))
		checkErr(t, "ConsumeToken after 5 wrong", err, store.ErrExhausted)
	})
}

func testReissue(t *testing.T, open opener) {
	base := baseTime()
	newExpiry := base.Add(30 * time.Minute)
	runCases(t, open, []testCase{
		{"reissue keeps attempts", func(t *testing.T, s store.Store) {
			c := newChallenge("c1", "j1", base)
			mustCreateChallenge(t, s, c)
			wrongCodes(2)(t, s, c)

			got, err := s.ReissueChallenge(t.Context(), c.ID, hash("token-2"), hash("code-2"), newExpiry, 3)
			must(t, "ReissueChallenge", err)
			want := c
			want.TokenHash, want.CodeHash, want.ExpiresAt = hash("token-2"), hash("code-2"), newExpiry
			want.Attempts, want.Reissues = 2, 1
			checkEqual(t, "reissued challenge", normChallenge(got), normChallenge(want))
			checkChallenge(t, s, want)

			_, err = s.ChallengeByToken(t.Context(), c.TokenHash)
			checkErr(t, "ChallengeByToken old", err, store.ErrNotFound)
			_, err = s.ConsumeToken(t.Context(), c.TokenHash, base.Add(time.Minute))
			checkErr(t, "ConsumeToken old", err, store.ErrNotFound)
			_, err = s.ConsumeCode(t.Context(), c.ID, c.CodeHash, base.Add(time.Minute))
			checkErr(t, "ConsumeCode old", err, store.ErrMismatch)
			got, err = s.ConsumeCode(t.Context(), c.ID, hash("code-2"), base.Add(time.Minute))
			must(t, "ConsumeCode new", err)
			if got.Attempts != 3 {
				t.Fatalf("Attempts = %d, want 3", got.Attempts)
			}
		}},
		{"reissue revives an expired challenge", func(t *testing.T, s store.Store) {
			c := newChallenge("c1", "j1", base)
			mustCreateChallenge(t, s, c)
			late := c.ExpiresAt.Add(time.Minute)
			_, err := s.ConsumeToken(t.Context(), c.TokenHash, late)
			checkErr(t, "ConsumeToken expired", err, store.ErrExpired)
			_, err = s.ReissueChallenge(t.Context(), c.ID, hash("token-2"), hash("code-2"), late.Add(10*time.Minute), 3)
			must(t, "ReissueChallenge", err)
			_, err = s.ConsumeToken(t.Context(), hash("token-2"), late)
			must(t, "ConsumeToken new", err)
		}},
		{"reissue does not revive exhausted attempts", func(t *testing.T, s store.Store) {
			c := newChallenge("c1", "j1", base)
			mustCreateChallenge(t, s, c)
			wrongCodes(5)(t, s, c)
			_, err := s.ReissueChallenge(t.Context(), c.ID, hash("token-2"), hash("code-2"), newExpiry, 3)
			must(t, "ReissueChallenge", err)
			_, err = s.ConsumeCode(t.Context(), c.ID, hash("code-2"), base.Add(time.Minute))
			checkErr(t, "ConsumeCode new", err, store.ErrExhausted)
		}},
		{"reissue without link", func(t *testing.T, s store.Store) {
			c := newChallenge("c1", "j1", base)
			mustCreateChallenge(t, s, c)
			got, err := s.ReissueChallenge(t.Context(), c.ID, nil, hash("code-2"), newExpiry, 3)
			must(t, "ReissueChallenge", err)
			if len(got.TokenHash) != 0 {
				t.Fatalf("TokenHash = %x, want empty", got.TokenHash)
			}
			// The old token is free again.
			c2 := newChallenge("c2", "j1", base)
			c2.TokenHash = c.TokenHash
			must(t, "CreateChallenge with the old token", s.CreateChallenge(t.Context(), c2))
		}},
		{"reissue limit", func(t *testing.T, s store.Store) {
			c := newChallenge("c1", "j1", base)
			mustCreateChallenge(t, s, c)
			for i := 1; i <= 2; i++ {
				got, err := s.ReissueChallenge(t.Context(), c.ID, hash(fmt.Sprintf("token-r%d", i)), hash(fmt.Sprintf("code-r%d", i)), newExpiry, 2)
				must(t, "ReissueChallenge", err)
				if got.Reissues != i {
					t.Fatalf("Reissues = %d, want %d", got.Reissues, i)
				}
			}
			before, err := s.Challenge(t.Context(), c.ID)
			must(t, "Challenge", err)
			_, err = s.ReissueChallenge(t.Context(), c.ID, hash("token-r3"), hash("code-r3"), newExpiry.Add(time.Hour), 2)
			checkErr(t, "ReissueChallenge over the limit", err, store.ErrExhausted)
			checkChallenge(t, s, before)
			_, err = s.ReissueChallenge(t.Context(), c.ID, hash("token-r3"), hash("code-r3"), newExpiry, 0)
			checkErr(t, "ReissueChallenge with limit 0", err, store.ErrExhausted)
		}},
		{"reissue used", func(t *testing.T, s store.Store) {
			c := newChallenge("c1", "j1", base)
			mustCreateChallenge(t, s, c)
			_, err := s.ConsumeToken(t.Context(), c.TokenHash, base)
			must(t, "ConsumeToken", err)
			_, err = s.ReissueChallenge(t.Context(), c.ID, hash("token-2"), hash("code-2"), newExpiry, 3)
			checkErr(t, "ReissueChallenge", err, store.ErrUsed)
		}},
		{"reissue missing", func(t *testing.T, s store.Store) {
			_, err := s.ReissueChallenge(t.Context(), "nope", hash("token-2"), hash("code-2"), newExpiry, 3)
			checkErr(t, "ReissueChallenge", err, store.ErrNotFound)
		}},
		{"reissue token conflict", func(t *testing.T, s store.Store) {
			c1, c2 := newChallenge("c1", "j1", base), newChallenge("c2", "j1", base)
			mustCreateChallenge(t, s, c1)
			mustCreateChallenge(t, s, c2)
			_, err := s.ReissueChallenge(t.Context(), c1.ID, c2.TokenHash, hash("code-2"), newExpiry, 3)
			checkErr(t, "ReissueChallenge", err, store.ErrConflict)
			checkChallenge(t, s, c1)
		}},
	})
}
