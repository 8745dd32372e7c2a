package factors_test

import (
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/internal/factors"
	"github.com/sspr-go/sspr/plugin/store"
	"github.com/sspr-go/sspr/plugin/store/sqlite"
)

var start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Config{Path: filepath.Join(t.TempDir(), "f.db")}.Open(t.Context(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func factor(id, userID, flow string) store.Factor {
	return store.Factor{ID: id, UserID: userID, Flow: flow, Name: "name " + id, Secret: []byte("secret " + id), Data: []byte(`[1,2]`), CreatedAt: start}
}

// ids returns the IDs of userID's factors of flow.
func ids(t *testing.T, st store.FactorStore, userID, flow string) []string {
	t.Helper()
	fs, err := st.Factors(t.Context(), userID, flow)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, fa := range fs {
		out = append(out, fa.ID)
	}
	return out
}

func create(t *testing.T, st store.FactorStore, fs ...store.Factor) {
	t.Helper()
	for _, fa := range fs {
		if err := st.CreateFactor(t.Context(), fa); err != nil {
			t.Fatal(err)
		}
	}
}

func TestList(t *testing.T) {
	st := openStore(t)
	create(t, st, factor("a1", "alice", "f"), factor("a2", "alice", "other"), factor("b1", "bob", "f"))
	tests := []struct {
		name  string
		count func(store.Factor) int
		want  int
	}{
		{"uncounted", nil, 0},
		{"counted", func(fa store.Factor) int { return len(fa.Data) }, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := factors.ListCounted(t.Context(), st, "alice", "f", tt.count)
			want := flows.Enrolled{ID: "a1", Name: "name a1", Count: tt.want, CreatedAt: start}
			if err != nil || len(got) != 1 || !got[0].CreatedAt.Equal(start) {
				t.Fatalf("ListCounted = %+v, %v", got, err)
			}
			got[0].CreatedAt = start
			if got[0] != want {
				t.Fatalf("ListCounted = %+v, want %+v", got[0], want)
			}
		})
	}
	if got, err := factors.List(t.Context(), st, "carol", "f"); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("List of a user without factors = %#v, %v; want an empty list", got, err)
	}
}

func TestReplace(t *testing.T) {
	ctx := t.Context()
	st := openStore(t)
	create(t, st, factor("old1", "alice", "f"), factor("old2", "alice", "f"), factor("keep", "alice", "other"), factor("bob", "bob", "f"))

	if err := factors.Replace(ctx, st, "alice", "f", factor("new1", "alice", "f"), factor("new2", "alice", "f")); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, st, "alice", "f"); len(got) != 2 || got[0] != "new1" || got[1] != "new2" {
		t.Fatalf("after replace: %v", got)
	}
	if got := ids(t, st, "alice", "other"); len(got) != 1 {
		t.Fatalf("another flow's factors: %v", got)
	}
	if got := ids(t, st, "bob", "f"); len(got) != 1 {
		t.Fatalf("another user's factors: %v", got)
	}

	// All or nothing: the second new factor conflicts (its ID is taken),
	// so the old set stays.
	err := factors.Replace(ctx, st, "alice", "f", factor("new3", "alice", "f"), factor("bob", "alice", "f"))
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("conflicting replace: %v, want ErrConflict", err)
	}
	if got := ids(t, st, "alice", "f"); len(got) != 2 || got[0] != "new1" {
		t.Fatalf("after a failed replace: %v, want the old set", got)
	}

	// In the caller's transaction.
	err = st.Atomic(ctx, func(tx store.Tx) error {
		return factors.Replace(ctx, tx, "alice", "f", factor("new4", "alice", "f"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(t, st, "alice", "f"); len(got) != 1 || got[0] != "new4" {
		t.Fatalf("after replace in a transaction: %v", got)
	}

	// Nothing new: every factor of the flow goes.
	if err := factors.Replace(ctx, st, "alice", "f"); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, st, "alice", "f"); len(got) != 0 {
		t.Fatalf("after an empty replace: %v", got)
	}
}

func TestReplaceRefusesForeignFactors(t *testing.T) {
	st := openStore(t)
	create(t, st, factor("old", "alice", "f"))
	for _, fa := range []store.Factor{factor("x", "bob", "f"), factor("y", "alice", "other")} {
		if err := factors.Replace(t.Context(), st, "alice", "f", fa); err == nil {
			t.Fatalf("Replace with %s's factor of %s: no error", fa.UserID, fa.Flow)
		}
	}
	if got := ids(t, st, "alice", "f"); len(got) != 1 || got[0] != "old" {
		t.Fatalf("after refused replaces: %v", got)
	}
}

func TestRemove(t *testing.T) {
	st := openStore(t)
	create(t, st, factor("a1", "alice", "f"), factor("a2", "alice", "other"))
	for _, tt := range []struct{ name, user, id string }{
		{"another user's", "bob", "a1"},
		{"another flow's", "alice", "a2"},
		{"no such factor", "alice", "nope"},
	} {
		if err := factors.Remove(t.Context(), st, tt.user, tt.id, "f"); !errors.Is(err, flows.ErrNoFactor) {
			t.Fatalf("%s: %v, want ErrNoFactor", tt.name, err)
		}
	}
	if err := factors.Remove(t.Context(), st, "alice", "a1", "f"); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, st, "alice", "f"); len(got) != 0 {
		t.Fatalf("after remove: %v", got)
	}
}
