package questions_test

import (
	"cmp"
	"context"
	"errors"
	"net/url"
	"testing"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/questions"
	"github.com/sspr-go/sspr/plugin/store"
)

// prepare is what the engine does before its write transaction.
func (fx *fixture) prepare(t *testing.T, journeyID string, s flows.Subject, form url.Values) any {
	t.Helper()
	p, err := fx.flow.Prepare(t.Context(), flows.PrepareRequest{Store: fx.st, Env: fx.env, JourneyID: journeyID, Subject: s, Form: form})
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	return p
}

// verifyPrepared verifies in a write transaction, as the engine does,
// with a prepared value (nil for none).
func (fx *fixture) verifyPrepared(t *testing.T, journeyID string, s flows.Subject, form url.Values, prepared any) error {
	t.Helper()
	var verr error
	err := fx.st.Atomic(t.Context(), func(tx store.Tx) error {
		verr = fx.flow.Verify(t.Context(), flows.VerifyRequest{Tx: tx, Env: fx.env, JourneyID: journeyID, Subject: s, Form: form, Prepared: prepared})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return verr
}

// TestHashingOutsideTheWriteTransaction: the argon2id hashes of the
// answers are computed by Prepare, while no write transaction is open,
// and another write transaction on the same SQLite store completes while
// each runs; Verify with the prepared value computes none.
func TestHashingOutsideTheWriteTransaction(t *testing.T) {
	fx := setup(t, questions.Config{})
	alice := flows.Subject{UserID: "alice"}
	fx.enrol(t, alice.UserID, answers)
	fx.begin(t, "j1", alice)
	form := answerForm(fx.asked(t, "j1"), answers, same)

	writes := 0
	fx.hashes.During = func(ctx context.Context) error {
		if err := fx.st.WriteElsewhere(ctx); err != nil {
			t.Errorf("a write during the hash: %v", err)
		}
		writes++
		return nil
	}
	fx.hashes.Reset()
	prepared := fx.prepare(t, "j1", alice, form)
	if n := fx.hashes.N.Load(); n != 2 || writes != 2 {
		t.Fatalf("prepare: %d argon2id, %d writes during them; want 2 and 2", n, writes)
	}
	if err := fx.verifyPrepared(t, "j1", alice, form, prepared); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if n, in := fx.hashes.N.Load(), fx.hashes.InTx.Load(); n != 2 || in != 0 {
		t.Fatalf("verify with a prepared value: %d argon2id in all, %d inside the transaction", n, in)
	}

	// Without a prepared value Verify still works: it hashes itself.
	fx.hashes.During = nil
	fx.begin(t, "j2", alice)
	form2 := answerForm(fx.asked(t, "j2"), answers, same)
	fx.hashes.Reset()
	if err := fx.verifyPrepared(t, "j2", alice, form2, nil); err != nil {
		t.Fatalf("verify without a prepared value: %v", err)
	}
	if n := fx.hashes.N.Load(); n != 2 {
		t.Fatalf("verify without a prepared value: %d argon2id", n)
	}
	// Right answers prepared for another form do not verify this one.
	fx.begin(t, "j3", alice)
	asked3 := fx.asked(t, "j3")
	right := fx.prepare(t, "j3", alice, answerForm(asked3, answers, same))
	if err := fx.verifyPrepared(t, "j3", alice, answerForm(asked3, answers, func(string) string { return "wrong" }), right); !errors.Is(err, flows.ErrWrongResponse) {
		t.Fatalf("wrong answers with right ones prepared: %v", err)
	}
}

// TestReplacedSetRefusesPrepared: answers prepared against one set are
// not trusted once the set was replaced, even by a set with the same
// questions and answers (under new salts): the submission is wrong and
// counted. The same answers verified afresh are right.
func TestReplacedSetRefusesPrepared(t *testing.T) {
	fx := setup(t, questions.Config{})
	alice := flows.Subject{UserID: "alice"}
	fx.enrol(t, alice.UserID, answers)
	fx.begin(t, "j1", alice)
	form := answerForm(fx.asked(t, "j1"), answers, same)
	prepared := fx.prepare(t, "j1", alice, form)
	fx.enrol(t, alice.UserID, answers) // replaced meanwhile
	if err := fx.verifyPrepared(t, "j1", alice, form, prepared); !errors.Is(err, flows.ErrWrongResponse) || attemptsLeft(err) != 2 {
		t.Fatalf("stale prepared answers: %v", err)
	}
	if err := fx.verifyPrepared(t, "j1", alice, form, nil); err != nil {
		t.Fatalf("the same answers against the new set: %v", err)
	}
}

// TestPreparedThenChallengeUsed: a challenge used between Prepare and
// Verify is used, whatever was prepared; Prepare on a dead challenge or
// a blank form hashes nothing.
func TestPreparedThenChallengeUsed(t *testing.T) {
	fx := setup(t, questions.Config{})
	alice := flows.Subject{UserID: "alice"}
	fx.enrol(t, alice.UserID, answers)
	fx.begin(t, "j1", alice)
	form := answerForm(fx.asked(t, "j1"), answers, same)
	prepared := fx.prepare(t, "j1", alice, form)
	if err := fx.verify(t, "j1", alice, form); err != nil {
		t.Fatalf("first verify: %v", err)
	}
	if err := fx.verifyPrepared(t, "j1", alice, form, prepared); !errors.Is(err, flows.ErrUsed) {
		t.Fatalf("prepared answers on a used challenge: %v", err)
	}
	fx.hashes.Reset()
	fx.prepare(t, "j1", alice, form)
	fx.begin(t, "j2", alice)
	fx.prepare(t, "j2", alice, url.Values{"answer0": {" "}})
	fx.prepare(t, "nope", alice, form)
	if n := fx.hashes.N.Load(); n != 0 {
		t.Fatalf("%d argon2id for a used challenge, a blank form and no challenge", n)
	}
}

// TestSameHashingForEveryone: a submission costs one argon2id per asked
// question, prepared or not, for a user with a set (right or wrong
// answers), a user without one and a decoy.
func TestSameHashingForEveryone(t *testing.T) {
	fx := setup(t, questions.Config{})
	fx.enrol(t, "alice", answers)
	orGuess := func(s string) string { return cmp.Or(s, "a guess") }
	wrong := func(string) string { return "wrong" }
	for _, tc := range []struct {
		name    string
		subject flows.Subject
		answer  func(string) string
		want    error
	}{
		{"right answers", flows.Subject{UserID: "alice"}, same, nil},
		{"wrong answers", flows.Subject{UserID: "alice"}, wrong, flows.ErrWrongResponse},
		{"user without a set", flows.Subject{UserID: "bob"}, orGuess, flows.ErrWrongResponse},
		{"decoy", flows.Subject{}, orGuess, flows.ErrWrongResponse},
	} {
		for _, prepare := range []bool{true, false} {
			name := tc.name + map[bool]string{true: ", prepared", false: ", inline"}[prepare]
			t.Run(name, func(t *testing.T) {
				jid := "j-" + name
				fx.begin(t, jid, tc.subject)
				form := answerForm(fx.asked(t, jid), answers, tc.answer)
				fx.hashes.Reset()
				var prepared any
				if prepare {
					prepared = fx.prepare(t, jid, tc.subject, form)
				}
				err := fx.verifyPrepared(t, jid, tc.subject, form, prepared)
				if (tc.want == nil && err != nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
					t.Fatalf("verify: %v, want %v", err, tc.want)
				}
				if n := fx.hashes.N.Load(); n != 2 {
					t.Fatalf("%d argon2id computations, want 2 (one per asked question)", n)
				}
				if in := fx.hashes.InTx.Load(); prepare && in != 0 {
					t.Fatalf("%d argon2id inside the transaction", in)
				}
			})
		}
	}
}

// TestPreparedForAnotherUser: answers prepared for one user are never
// trusted for another.
func TestPreparedForAnotherUser(t *testing.T) {
	fx := setup(t, questions.Config{Questions: []string{"Q1?", "Q2?", "Q3?"}, Ask: 3})
	aliceSet := map[string]string{"Q1?": "red fox", "Q2?": "blue whale", "Q3?": "green frog"}
	bobSet := map[string]string{"Q1?": "grey wolf", "Q2?": "white owl", "Q3?": "black cat"}
	fx.enrol(t, "alice", aliceSet)
	fx.enrol(t, "bob", bobSet)
	alice, bob := flows.Subject{UserID: "alice"}, flows.Subject{UserID: "bob"}
	fx.begin(t, "j1", bob)
	form := answerForm(fx.asked(t, "j1"), aliceSet, same)
	prepared := fx.prepare(t, "j1", alice, form)
	if err := fx.verifyPrepared(t, "j1", bob, form, prepared); !errors.Is(err, flows.ErrWrongResponse) {
		t.Fatalf("alice's prepared answers for bob: %v", err)
	}
}
