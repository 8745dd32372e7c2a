package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sspr-go/sspr/plugin/store"
)

// newFactor returns a TOTP factor of user with the secret
// hash("secret-"+id), enrolled at created and never used.
func newFactor(id, userID string, created time.Time) store.Factor {
	return store.Factor{
		ID:        id,
		UserID:    userID,
		Flow:      "totp",
		Name:      "Authenticator app",
		Secret:    hash("secret-" + id),
		Data:      []byte(`{"digits":6,"period":30}`),
		CreatedAt: created,
	}
}

// newRecoveryCode returns recovery code factor id of user whose secret is
// hash("recovery-"+code), so two users may hold the same code.
func newRecoveryCode(id, userID, code string, created time.Time) store.Factor {
	return store.Factor{
		ID:        id,
		UserID:    userID,
		Flow:      "recovery",
		Name:      "Recovery code",
		Secret:    hash("recovery-" + code),
		CreatedAt: created,
	}
}

func normFactor(f store.Factor) store.Factor {
	f.Secret, f.Data = normBytes(f.Secret), normBytes(f.Data)
	f.CreatedAt, f.LastUsedAt = f.CreatedAt.UTC(), f.LastUsedAt.UTC()
	return f
}

func normFactors(fs []store.Factor) []store.Factor {
	if len(fs) == 0 {
		return nil
	}
	out := make([]store.Factor, len(fs))
	for i, f := range fs {
		out[i] = normFactor(f)
	}
	return out
}

func mustCreateFactor(t *testing.T, s store.Tx, f store.Factor) {
	t.Helper()
	must(t, "CreateFactor "+f.ID, s.CreateFactor(t.Context(), f))
}

func checkFactor(t *testing.T, s store.Tx, want store.Factor) {
	t.Helper()
	got, err := s.Factor(t.Context(), want.ID)
	must(t, "Factor "+want.ID, err)
	checkEqual(t, "factor "+want.ID, normFactor(got), normFactor(want))
}

func checkNoFactor(t *testing.T, s store.Tx, id string) {
	t.Helper()
	_, err := s.Factor(t.Context(), id)
	checkErr(t, "Factor "+id, err, store.ErrNotFound)
}

func checkFactors(t *testing.T, s store.Tx, userID, flow string, want ...store.Factor) {
	t.Helper()
	got, err := s.Factors(t.Context(), userID, flow)
	must(t, "Factors", err)
	checkEqual(t, "Factors("+userID+", "+flow+")", normFactors(got), normFactors(want))
}

func testFactors(t *testing.T, open opener) {
	base := baseTime()
	runCases(t, open, []testCase{
		{"create and get", func(t *testing.T, s store.Store) {
			f := newFactor("f1", "u1", base)
			f.Counter, f.LastUsedAt = 7, base.Add(time.Minute)
			mustCreateFactor(t, s, f)
			checkFactor(t, s, f)
			bare := store.Factor{ID: "f2", UserID: "u1", Flow: "webauthn"}
			mustCreateFactor(t, s, bare)
			checkFactor(t, s, bare)
		}},
		{"get missing", func(t *testing.T, s store.Store) {
			checkNoFactor(t, s, "nope")
		}},
		{"create duplicate id", func(t *testing.T, s store.Store) {
			f := newFactor("f1", "u1", base)
			mustCreateFactor(t, s, f)
			dup := newFactor("f1", "u2", base.Add(time.Minute))
			dup.Secret = hash("another secret")
			checkErr(t, "CreateFactor", s.CreateFactor(t.Context(), dup), store.ErrConflict)
			checkFactor(t, s, f)
		}},
		{"create duplicate secret", func(t *testing.T, s store.Store) {
			c := newRecoveryCode("rc1", "u1", "1234-5678", base)
			mustCreateFactor(t, s, c)
			dup := newRecoveryCode("rc2", "u1", "1234-5678", base)
			checkErr(t, "CreateFactor", s.CreateFactor(t.Context(), dup), store.ErrConflict)
			checkNoFactor(t, s, "rc2")
			// The secret is unique per user and flow only.
			mustCreateFactor(t, s, newRecoveryCode("rc3", "u2", "1234-5678", base))
			otherFlow := newRecoveryCode("rc4", "u1", "1234-5678", base)
			otherFlow.Flow = "backup"
			mustCreateFactor(t, s, otherFlow)
		}},
		{"empty secret may repeat", func(t *testing.T, s store.Store) {
			for i, secret := range [][]byte{nil, {}, nil} {
				f := newFactor(fmt.Sprint("f", i), "u1", base)
				f.Flow, f.Secret = "webauthn", secret
				mustCreateFactor(t, s, f)
				checkFactor(t, s, f)
			}
		}},
		{"list", func(t *testing.T, s store.Store) {
			at := func(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }
			totpNew, totpOld := newFactor("totp-new", "u1", at(5)), newFactor("totp-old", "u1", at(1))
			rc1, rc2 := newRecoveryCode("rc1", "u1", "one", at(3)), newRecoveryCode("rc2", "u1", "two", at(4))
			other := newFactor("other-user", "u2", at(2))
			// Inserted out of creation order.
			for _, f := range []store.Factor{totpNew, rc2, other, totpOld, rc1} {
				mustCreateFactor(t, s, f)
			}
			checkFactors(t, s, "u1", "totp", totpOld, totpNew)
			checkFactors(t, s, "u1", "recovery", rc1, rc2)
			checkFactors(t, s, "u1", "", totpOld, rc1, rc2, totpNew)
			checkFactors(t, s, "u2", "", other)
			checkFactors(t, s, "u2", "recovery")
			checkFactors(t, s, "u3", "")
		}},
		{"update", func(t *testing.T, s store.Store) {
			f := newFactor("f1", "u1", base)
			mustCreateFactor(t, s, f)
			upd := f
			upd.Name, upd.Data, upd.Counter, upd.LastUsedAt = "Phone", []byte(`{"digits":8}`), 99, base.Add(time.Hour)
			// Fields other than Name, Data, Counter and LastUsedAt are not stored.
			upd.UserID, upd.Flow, upd.Secret, upd.CreatedAt = "u2", "sms", hash("other"), base.Add(time.Hour)
			must(t, "UpdateFactor", s.UpdateFactor(t.Context(), upd))
			want := f
			want.Name, want.Data, want.Counter, want.LastUsedAt = upd.Name, upd.Data, upd.Counter, upd.LastUsedAt
			checkFactor(t, s, want)

			// Clearing Data and LastUsedAt, and lowering Counter, is allowed.
			cleared := want
			cleared.Data, cleared.Counter, cleared.LastUsedAt = nil, 3, time.Time{}
			must(t, "UpdateFactor", s.UpdateFactor(t.Context(), cleared))
			checkFactor(t, s, cleared)
		}},
		{"update missing", func(t *testing.T, s store.Store) {
			checkErr(t, "UpdateFactor", s.UpdateFactor(t.Context(), newFactor("nope", "u1", base)), store.ErrNotFound)
			checkNoFactor(t, s, "nope")
		}},
		{"delete", func(t *testing.T, s store.Store) {
			f, keep := newFactor("f1", "u1", base), newFactor("f2", "u1", base)
			mustCreateFactor(t, s, f)
			mustCreateFactor(t, s, keep)
			must(t, "DeleteFactor", s.DeleteFactor(t.Context(), "u1", f.ID))
			checkNoFactor(t, s, f.ID)
			checkFactor(t, s, keep)
			checkErr(t, "DeleteFactor again", s.DeleteFactor(t.Context(), "u1", f.ID), store.ErrNotFound)
			checkErr(t, "DeleteFactor missing", s.DeleteFactor(t.Context(), "u1", "nope"), store.ErrNotFound)
		}},
		{"delete another user's factor", func(t *testing.T, s store.Store) {
			f := newFactor("f1", "u1", base)
			mustCreateFactor(t, s, f)
			checkErr(t, "DeleteFactor", s.DeleteFactor(t.Context(), "u2", f.ID), store.ErrNotFound)
			checkFactor(t, s, f)
		}},
		{"delete all of a flow", func(t *testing.T, s store.Store) {
			totp := newFactor("totp", "u1", base)
			u2code := newRecoveryCode("u2-rc1", "u2", "one", base)
			mustCreateFactor(t, s, totp)
			mustCreateFactor(t, s, u2code)
			for _, code := range []string{"one", "two", "three"} {
				mustCreateFactor(t, s, newRecoveryCode("u1-rc-"+code, "u1", code, base))
			}
			n, err := s.DeleteFactors(t.Context(), "u1", "recovery")
			must(t, "DeleteFactors", err)
			if n != 3 {
				t.Errorf("DeleteFactors deleted %d factors, want 3", n)
			}
			checkFactors(t, s, "u1", "", totp)
			checkFactors(t, s, "u2", "", u2code)
			n, err = s.DeleteFactors(t.Context(), "u1", "recovery")
			must(t, "DeleteFactors again", err)
			if n != 0 {
				t.Errorf("DeleteFactors again deleted %d factors, want 0", n)
			}
			// Codes can be issued again with the secrets just deleted.
			mustCreateFactor(t, s, newRecoveryCode("u1-rc-new", "u1", "one", base))
		}},
		{"atomic rollback", func(t *testing.T, s store.Store) {
			ctx := t.Context()
			kept, code := newFactor("kept", "u1", base), newRecoveryCode("rc1", "u1", "one", base)
			mustCreateFactor(t, s, kept)
			mustCreateFactor(t, s, code)
			errBoom := errors.New("boom")
			err := s.Atomic(ctx, func(tx store.Tx) error {
				created := newFactor("created", "u1", base.Add(time.Minute))
				mustCreateFactor(t, tx, created)
				checkFactor(t, tx, created) // own write visible inside
				checkFactors(t, tx, "u1", "totp", kept, created)
				checkNoFactor(t, s, created.ID) // not visible outside
				must(t, "AdvanceCounter", tx.AdvanceCounter(ctx, kept.ID, 5, base))
				_, err := tx.ConsumeFactor(ctx, "u1", "recovery", code.Secret)
				must(t, "ConsumeFactor", err)
				checkNoFactor(t, tx, code.ID)
				checkFactor(t, s, code)
				return errBoom
			})
			if err != errBoom { //nolint:errorlint // Atomic must return fn's error unchanged
				t.Fatalf("Atomic = %v, want fn's error unchanged", err)
			}
			checkNoFactor(t, s, "created")
			checkFactor(t, s, kept)
			checkFactor(t, s, code)
		}},
		{"atomic commit", func(t *testing.T, s store.Store) {
			f := newFactor("f1", "u1", base)
			err := s.Atomic(t.Context(), func(tx store.Tx) error {
				return tx.CreateFactor(t.Context(), f)
			})
			must(t, "Atomic", err)
			checkFactor(t, s, f)
		}},
	})
}

func testAdvanceCounter(t *testing.T, open opener) {
	base := baseTime()
	now := base.Add(time.Hour)
	for _, tc := range []struct {
		name    string
		stored  int64  // the factor's Counter before the call
		id      string // default: the factor's
		value   int64
		wantErr error
	}{
		{name: "next", stored: 5, value: 6},
		{name: "jump", stored: 5, value: 1 << 40},
		{name: "from zero", stored: 0, value: 1},
		{name: "same", stored: 5, value: 5, wantErr: store.ErrUsed},
		{name: "lower", stored: 5, value: 4, wantErr: store.ErrUsed},
		{name: "zero at zero", stored: 0, value: 0, wantErr: store.ErrUsed},
		{name: "missing", id: "nope", stored: 5, value: 6, wantErr: store.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			f := newFactor("f1", "u1", base)
			f.Counter, f.LastUsedAt = tc.stored, base.Add(time.Minute)
			mustCreateFactor(t, s, f)
			id := f.ID
			if tc.id != "" {
				id = tc.id
			}
			err := s.AdvanceCounter(t.Context(), id, tc.value, now)
			checkErr(t, "AdvanceCounter", err, tc.wantErr)
			want := f
			if tc.wantErr == nil {
				want.Counter, want.LastUsedAt = tc.value, now
			}
			checkFactor(t, s, want)
		})
	}

	t.Run("replay after advance", func(t *testing.T) {
		s := open(t)
		f := newFactor("f1", "u1", base)
		mustCreateFactor(t, s, f)
		must(t, "AdvanceCounter", s.AdvanceCounter(t.Context(), f.ID, 10, now))
		checkErr(t, "AdvanceCounter replay", s.AdvanceCounter(t.Context(), f.ID, 10, now.Add(time.Second)), store.ErrUsed)
		must(t, "AdvanceCounter next", s.AdvanceCounter(t.Context(), f.ID, 11, now.Add(time.Minute)))
		want := f
		want.Counter, want.LastUsedAt = 11, now.Add(time.Minute)
		checkFactor(t, s, want)
	})
}

func testConsumeFactor(t *testing.T, open opener) {
	base := baseTime()
	for _, tc := range []struct {
		name    string
		user    string
		flow    string
		secret  []byte
		wantErr error
	}{
		{name: "success", user: "u1", flow: "recovery", secret: hash("recovery-one")},
		{name: "another user's secret", user: "u2", flow: "recovery", secret: hash("recovery-one"), wantErr: store.ErrNotFound},
		{name: "other flow", user: "u1", flow: "backup", secret: hash("recovery-one"), wantErr: store.ErrNotFound},
		{name: "wrong secret", user: "u1", flow: "recovery", secret: hash("recovery-nope"), wantErr: store.ErrNotFound},
		{name: "empty secret", user: "u1", flow: "recovery", secret: nil, wantErr: store.ErrNotFound},
		{name: "empty secret, non-nil", user: "u1", flow: "recovery", secret: []byte{}, wantErr: store.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			target := newRecoveryCode("rc1", "u1", "one", base)
			target.Data = []byte("shown once")
			others := []store.Factor{
				newRecoveryCode("rc2", "u1", "two", base),
				newRecoveryCode("u2-rc1", "u2", "two", base), // u2 holds u1's other code
				func() store.Factor { // no secret: an empty secret must not match it
					f := newRecoveryCode("rc-empty", "u1", "", base)
					f.Secret = nil
					return f
				}(),
			}
			for _, f := range append([]store.Factor{target}, others...) {
				mustCreateFactor(t, s, f)
			}

			got, err := s.ConsumeFactor(t.Context(), tc.user, tc.flow, tc.secret)
			checkErr(t, "ConsumeFactor", err, tc.wantErr)
			for _, f := range others {
				checkFactor(t, s, f)
			}
			if tc.wantErr != nil {
				checkFactor(t, s, target)
				return
			}
			checkEqual(t, "consumed factor", normFactor(got), normFactor(target))
			checkNoFactor(t, s, target.ID)
			_, err = s.ConsumeFactor(t.Context(), tc.user, tc.flow, tc.secret)
			checkErr(t, "ConsumeFactor again", err, store.ErrNotFound)
		})
	}

	t.Run("same secret of two users", func(t *testing.T) {
		s := open(t)
		u1, u2 := newRecoveryCode("u1-rc", "u1", "same", base), newRecoveryCode("u2-rc", "u2", "same", base)
		mustCreateFactor(t, s, u1)
		mustCreateFactor(t, s, u2)
		got, err := s.ConsumeFactor(t.Context(), "u2", "recovery", u2.Secret)
		must(t, "ConsumeFactor", err)
		checkEqual(t, "consumed factor", normFactor(got), normFactor(u2))
		checkNoFactor(t, s, u2.ID)
		checkFactor(t, s, u1)
	})
}
