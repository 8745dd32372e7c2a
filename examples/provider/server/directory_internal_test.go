package server

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"testing"

	"github.com/sspr-go/sspr/plugin"
)

// TestLookupPrefersEmail: when one user's username is another user's
// email address, the identifier finds the user whose email it is, whichever
// row the store returns first.
func TestLookupPrefersEmail(t *testing.T) {
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(t.TempDir(), "u.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	d := &Directory{db: db}
	if err := d.migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := d.FindUser(t.Context(), "dana@example.org"); !errors.Is(err, plugin.ErrUserNotFound) {
		t.Fatalf("empty table: %v", err)
	}
	if _, err := d.User(t.Context(), "u1"); !errors.Is(err, plugin.ErrUserNotFound) {
		t.Fatalf("User on an empty table: %v", err)
	}
	add := func(id, username, email string) {
		t.Helper()
		if _, err := db.ExecContext(t.Context(), `INSERT INTO users (id, username, username_key, email, email_key, display_name, password_hash, password_changed_at, created_at)
			VALUES (?, ?, ?, ?, ?, '', 'x', 0, 0)`, id, username, identifierKey(username), email, identifierKey(email)); err != nil {
			t.Fatal(err)
		}
	}
	// Inserted in both orders, so that neither branch of the lookup wins
	// by position.
	add("u1", "dana@example.org", "dana.one@example.org")
	add("u2", "dana2", "dana@example.org")
	add("u3", "erin", "erin@example.org")
	add("u4", "Erin@Example.org", "erin.two@example.org")
	for identifier, want := range map[string]string{
		"dana@example.org": "u2", "DANA@example.org ": "u2", "dana2": "u2", "dana.one@example.org": "u1",
		"erin@example.org": "u3", "erin": "u3", "erin.two@example.org": "u4",
	} {
		u, err := d.FindUser(t.Context(), identifier)
		if err != nil || u.ID != want {
			t.Errorf("FindUser(%q) = %q, %v; want %q", identifier, u.ID, err, want)
		}
	}
	if _, err := d.FindUser(t.Context(), "nobody@example.org"); !errors.Is(err, plugin.ErrUserNotFound) {
		t.Errorf("unknown identifier: %v", err)
	}
	// User reads a row either way too, and returns only the one asked for.
	for _, id := range []string{"u1", "u4"} {
		if u, err := d.User(t.Context(), id); err != nil || u.ID != id {
			t.Errorf("User(%q) = %q, %v", id, u.ID, err)
		}
	}
	if u, err := d.User(t.Context(), plugin.DecoyUserID); !errors.Is(err, plugin.ErrUserNotFound) {
		t.Errorf("User(DecoyUserID) = %q, %v; want not found", u.ID, err)
	}

	// A lookup starts no goroutine to watch the request's context (it
	// costs more than the lookup), yet refuses a request that has gone.
	created := func() uint64 {
		s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	runtime.GC() // the GC's workers (one per P) start with the first cycle
	before := created()
	for range 50 {
		if _, err := d.FindUser(ctx, "erin"); err != nil {
			t.Fatal(err)
		}
		if _, err := d.User(ctx, "u3"); err != nil {
			t.Fatal(err)
		}
	}
	if n := created() - before; n > 10 {
		t.Errorf("100 lookups started %d goroutines, want (nearly) none", n)
	}
	cancel()
	if _, err := d.FindUser(ctx, "erin"); !errors.Is(err, context.Canceled) {
		t.Errorf("FindUser for a request that has gone = %v, want context.Canceled", err)
	}
}
