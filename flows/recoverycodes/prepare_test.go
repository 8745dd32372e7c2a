package recoverycodes_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/internal/challenge"
	"github.com/sspr-go/sspr/flows/recoverycodes"
	"github.com/sspr-go/sspr/plugin/store"
)

// TestHashingOutsideTheWriteTransaction: the one argon2id of a response
// is computed by Prepare, while no write transaction is open, and another
// write transaction on the same SQLite store completes while it runs;
// Verify with the prepared value computes none.
func TestHashingOutsideTheWriteTransaction(t *testing.T) {
	fx := setup(t)
	alice := flows.Subject{UserID: "alice"}
	codes := fx.generate(t, alice.UserID)
	fx.begin(t, "j1", alice)

	writes := 0
	fx.hashes.During = func(ctx context.Context) error {
		if err := fx.st.WriteElsewhere(ctx); err != nil {
			t.Errorf("a write during the hash: %v", err)
		}
		writes++
		return nil
	}
	fx.hashes.Reset()
	prepared := fx.prepare(t, "j1", alice, codes[0])
	if n := fx.hashes.N.Load(); n != 1 || writes != 1 {
		t.Fatalf("prepare: %d argon2id, %d writes during them", n, writes)
	}
	if err := fx.verifyPrepared(t, "j1", alice, codes[0], prepared); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if n, in := fx.hashes.N.Load(), fx.hashes.InTx.Load(); n != 1 || in != 0 {
		t.Fatalf("verify with a prepared value: %d argon2id in all, %d inside the transaction", n, in)
	}

	// Without a prepared value Verify still works: it hashes itself.
	fx.hashes.During = nil
	fx.begin(t, "j2", alice)
	fx.hashes.Reset()
	if err := fx.verifyPrepared(t, "j2", alice, codes[1], nil); err != nil {
		t.Fatalf("verify without a prepared value: %v", err)
	}
	if n := fx.hashes.N.Load(); n != 1 {
		t.Fatalf("verify without a prepared value: %d argon2id", n)
	}
	// A value prepared for another journey is ignored, not trusted.
	fx.begin(t, "j3", alice)
	other := fx.prepare(t, "j2", alice, codes[2])
	fx.hashes.Reset()
	if err := fx.verifyPrepared(t, "j3", alice, codes[2], other); err != nil {
		t.Fatalf("verify with another journey's value: %v", err)
	}
	if n := fx.hashes.N.Load(); n != 1 {
		t.Fatalf("verify with another journey's value: %d argon2id", n)
	}
	// A value prepared for another code does not verify this one.
	fx.begin(t, "j4", alice)
	wrong := fx.prepare(t, "j4", alice, "0000-0000-0000-0000")
	if err := fx.verifyPrepared(t, "j4", alice, codes[3], wrong); !errors.Is(err, flows.ErrWrongResponse) {
		t.Fatalf("verify with another code's value: %v", err)
	}
	// Nor does another of the user's own codes: the entered code is
	// checked against what was prepared, so nothing is used up.
	fx.begin(t, "j5", alice)
	mine := fx.prepare(t, "j5", alice, codes[4])
	if err := fx.verifyPrepared(t, "j5", alice, codes[3], mine); !errors.Is(err, flows.ErrWrongResponse) {
		t.Fatalf("verify with another of the user's codes prepared: %v", err)
	}
	for i, code := range []string{codes[4], codes[3]} {
		jid := fmt.Sprintf("j%d", 6+i)
		fx.begin(t, jid, alice)
		if err := fx.verifyPrepared(t, jid, alice, code, nil); err != nil {
			t.Fatalf("code %d after a mismatched prepared value: %v", 4-i, err)
		}
	}
}

// TestPreparedThenChallengeUsed: a challenge used between Prepare and
// Verify is used, whatever was prepared.
func TestPreparedThenChallengeUsed(t *testing.T) {
	fx := setup(t)
	alice := flows.Subject{UserID: "alice"}
	codes := fx.generate(t, alice.UserID)
	fx.begin(t, "j1", alice)
	prepared := fx.prepare(t, "j1", alice, codes[0])
	if err := fx.verify(t, "j1", alice, codes[1]); err != nil {
		t.Fatalf("another code first: %v", err)
	}
	if err := fx.verifyPrepared(t, "j1", alice, codes[0], prepared); !errors.Is(err, flows.ErrUsed) {
		t.Fatalf("prepared response on a used challenge: %v", err)
	}
	if n := fx.remaining(t, alice.UserID); n != 9 {
		t.Fatalf("remaining %d", n)
	}
	// Prepared on a dead challenge, nothing is hashed and nothing is
	// trusted later.
	fx.hashes.Reset()
	if p := fx.prepare(t, "j1", alice, codes[0]); p == nil || fx.hashes.N.Load() != 0 {
		t.Fatalf("prepare on a used challenge: %v, %d argon2id", p, fx.hashes.N.Load())
	}
	// A malformed code is left to Verify, which refuses it.
	if p := fx.prepare(t, "j1", alice, "not a code"); p != nil || fx.hashes.N.Load() != 0 {
		t.Fatalf("prepare of a malformed code: %v", p)
	}
}

// TestSameHashingForEveryone: a response costs exactly one argon2id,
// prepared or not, for a user with codes (right or wrong), a user whose
// codes predate argon2id, a user without codes and a decoy.
func TestSameHashingForEveryone(t *testing.T) {
	fx := setup(t)
	codes := fx.generate(t, "alice")
	legacyCode := "abcd-efgh-jkmn-pqrs"
	storeLegacy(t, fx, "dave", legacyCode)
	for _, tc := range []struct {
		name    string
		subject flows.Subject
		code    string
		want    error
	}{
		{"right code", flows.Subject{UserID: "alice"}, codes[0], nil},
		{"wrong code", flows.Subject{UserID: "alice"}, "0000-0000-0000-0000", flows.ErrWrongResponse},
		{"code from before argon2id", flows.Subject{UserID: "dave"}, legacyCode, nil},
		{"user without codes", flows.Subject{UserID: "carol"}, codes[1], flows.ErrWrongResponse},
		{"decoy", flows.Subject{}, codes[1], flows.ErrWrongResponse},
	} {
		for _, prepare := range []bool{true, false} {
			name := tc.name + map[bool]string{true: ", prepared", false: ", inline"}[prepare]
			t.Run(name, func(t *testing.T) {
				jid := "j-" + name
				fx.begin(t, jid, tc.subject)
				fx.hashes.Reset()
				var prepared any
				if prepare {
					prepared = fx.prepare(t, jid, tc.subject, tc.code)
				}
				err := fx.verifyPrepared(t, jid, tc.subject, tc.code, prepared)
				if (tc.want == nil && err != nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
					t.Fatalf("verify: %v, want %v", err, tc.want)
				}
				if n := fx.hashes.N.Load(); n != 1 {
					t.Fatalf("%d argon2id computations, want 1", n)
				}
				if in := fx.hashes.InTx.Load(); prepare && in != 0 {
					t.Fatalf("%d argon2id inside the transaction", in)
				}
			})
			// The right codes are used up: the next round gets others.
			if tc.want == nil {
				if tc.subject.UserID == "alice" {
					codes = codes[1:]
					tc.code = codes[0]
				} else {
					storeLegacy(t, fx, "dave", legacyCode)
				}
			}
		}
	}
}

// storeLegacy stores code for userID the way sets were stored before
// argon2id: a factor whose Secret is the keyed hash (under the Env's
// current key) of the user ID and the normalized code, without Data.
func storeLegacy(t *testing.T, fx *fixture, userID, code string) {
	t.Helper()
	norm, ok := recoverycodes.NormalizeCode(code)
	if !ok {
		t.Fatalf("%q is no code", code)
	}
	if _, err := fx.st.DeleteFactors(t.Context(), userID, recoverycodes.ID); err != nil {
		t.Fatal(err)
	}
	err := fx.st.CreateFactor(t.Context(), store.Factor{ID: challenge.RandomID(), UserID: userID, Flow: recoverycodes.ID, Name: recoverycodes.Name,
		Secret: fx.env.MAC("recovery code", []byte(userID), []byte(norm)), CreatedAt: start})
	if err != nil {
		t.Fatal(err)
	}
}

// TestKeyRotationKeepsCodes: putting a new key first keeps every code
// usable, those of argon2id sets and those stored before, prepared or
// not; retiring the old key ends them.
func TestKeyRotationKeepsCodes(t *testing.T) {
	oldKey, newKey := []byte("the old key, 32 bytes long......"), []byte("the new key, 32 bytes long......")
	for _, prepare := range []bool{true, false} {
		t.Run(map[bool]string{true: "prepared", false: "inline"}[prepare], func(t *testing.T) {
			fx := setup(t)
			fx.env.SetKeys(oldKey)
			alice, dave := flows.Subject{UserID: "alice"}, flows.Subject{UserID: "dave"}
			codes := fx.generate(t, alice.UserID)
			legacy := []string{"abcd-efgh-jkmn-pqrs", "0123-4567-89ab-cdef"}
			storeLegacy(t, fx, dave.UserID, legacy[0])
			// storeLegacy replaces the set: add the second code by hand.
			norm, _ := recoverycodes.NormalizeCode(legacy[1])
			if err := fx.st.CreateFactor(t.Context(), store.Factor{ID: challenge.RandomID(), UserID: dave.UserID, Flow: recoverycodes.ID, Name: recoverycodes.Name,
				Secret: fx.env.MAC("recovery code", []byte(dave.UserID), []byte(norm)), CreatedAt: start}); err != nil {
				t.Fatal(err)
			}
			verify := func(jid string, s flows.Subject, code string) error {
				t.Helper()
				fx.begin(t, jid, s)
				if prepare {
					return fx.verify(t, jid, s, code)
				}
				return fx.verifyPrepared(t, jid, s, code, nil)
			}

			fx.env.SetKeys(newKey, oldKey)
			if err := verify("j1", alice, codes[0]); err != nil {
				t.Fatalf("argon2id code after a rotation: %v", err)
			}
			if err := verify("j2", dave, legacy[0]); err != nil {
				t.Fatalf("code from before argon2id after a rotation: %v", err)
			}
			// A set generated now uses the new key, and works too.
			bob := flows.Subject{UserID: "bob"}
			bobCodes := fx.generate(t, bob.UserID)
			if err := verify("j3", bob, bobCodes[0]); err != nil {
				t.Fatalf("code of a set made after the rotation: %v", err)
			}

			fx.env.SetKeys(newKey)
			if err := verify("j4", alice, codes[1]); !errors.Is(err, flows.ErrWrongResponse) {
				t.Fatalf("argon2id code after its key was retired: %v", err)
			}
			if err := verify("j5", dave, legacy[1]); !errors.Is(err, flows.ErrWrongResponse) {
				t.Fatalf("code from before argon2id after its key was retired: %v", err)
			}
			if err := verify("j6", bob, bobCodes[1]); err != nil {
				t.Fatalf("code of the current key: %v", err)
			}
		})
	}
}

// TestPreparedForAnotherUser: a value prepared for one subject
// is never trusted for another.
func TestPreparedForAnotherUser(t *testing.T) {
	fx := setup(t)
	alice, bob := flows.Subject{UserID: "alice"}, flows.Subject{UserID: "bob"}
	codes := fx.generate(t, alice.UserID)
	fx.generate(t, bob.UserID)
	fx.begin(t, "j1", bob)
	prepared, err := fx.flow.Prepare(t.Context(), flows.PrepareRequest{Store: fx.st, Env: fx.env, JourneyID: "j1", Subject: alice, Form: url.Values{"code": {codes[0]}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := fx.verifyPrepared(t, "j1", bob, codes[0], prepared); !errors.Is(err, flows.ErrWrongResponse) {
		t.Fatalf("alice's prepared code for bob: %v", err)
	}
	if n := fx.remaining(t, alice.UserID); n != 10 {
		t.Fatalf("alice's code was used: %d left", n)
	}
}
