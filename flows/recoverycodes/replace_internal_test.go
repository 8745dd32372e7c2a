package recoverycodes

import (
	"errors"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/flowtest"
	"github.com/sspr-go/sspr/plugin/store"
	"github.com/sspr-go/sspr/plugin/store/sqlite"
)

// TestReplacedSetRefusesPreparedKey: a key prepared against one set is
// not trusted once the set was replaced, even by a set that holds the
// same code (under a new salt): the response is wrong and counted. The
// same code verified afresh works, so only the stale key was refused.
func TestReplacedSetRefusesPreparedKey(t *testing.T) {
	ctx := t.Context()
	st, err := sqlite.Config{Path: filepath.Join(t.TempDir(), "r.db")}.Open(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f, err := New(Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	env := flowtest.NewEnv(now)
	alice := flows.Subject{UserID: "alice"}
	codes, err := f.Generate(ctx, st, env, alice.UserID)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateJourney(ctx, store.Journey{ID: "j1", UserID: alice.UserID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := f.Begin(ctx, flows.BeginRequest{Tx: st, Env: env, JourneyID: "j1", Subject: alice}); err != nil {
		t.Fatal(err)
	}
	form := url.Values{"code": {codes[0]}}
	prepared, err := f.Prepare(ctx, flows.PrepareRequest{Store: st, Env: env, JourneyID: "j1", Subject: alice, Form: form})
	if err != nil {
		t.Fatal(err)
	}
	// Meanwhile the set is replaced by one with the same codes.
	if err := f.replace(ctx, st, env, alice.UserID, codes); err != nil {
		t.Fatal(err)
	}
	verify := func(prepared any) error {
		var verr error
		err := st.Atomic(ctx, func(tx store.Tx) error {
			verr = f.Verify(ctx, flows.VerifyRequest{Tx: tx, Env: env, JourneyID: "j1", Subject: alice, Form: form, Prepared: prepared})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return verr
	}
	var ve *flows.VerifyError
	if err := verify(prepared); !errors.As(err, &ve) || !errors.Is(err, flows.ErrWrongResponse) || ve.AttemptsLeft != MaxAttempts-1 {
		t.Fatalf("stale prepared key: %v", err)
	}
	if err := verify(nil); err != nil {
		t.Fatalf("the same code against the new set: %v", err)
	}
}

// TestCodesAreRandom: across many codes every character of the alphabet
// appears.
func TestCodesAreRandom(t *testing.T) {
	var all strings.Builder
	for range 100 {
		all.WriteString(newCode())
	}
	for _, r := range alphabet {
		if !strings.ContainsRune(all.String(), r) {
			t.Fatalf("character %q never appears in 1600 characters", r)
		}
	}
}
