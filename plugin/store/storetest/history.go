package storetest

import (
	"testing"

	"github.com/sspr-go/sspr/plugin/store"
)

func testHistory(t *testing.T, open opener) {
	key := func(s string) []byte { return hash("key-" + s) } // 32 bytes
	h := store.History{
		UserID: "u1",
		Salt:   []byte("0123456789abcdef"),
		Params: "argon2id$v=19$m=19456,t=2,p=1",
		Keys:   [][]byte{key("3"), key("2"), []byte("short"), key("1")},
	}
	runCases(t, open, []testCase{
		{"missing", func(t *testing.T, s store.Store) {
			_, err := s.PasswordHistory(t.Context(), "u1")
			checkErr(t, "PasswordHistory", err, store.ErrNotFound)
		}},
		{"save and get", func(t *testing.T, s store.Store) {
			must(t, "SaveHistory", s.SaveHistory(t.Context(), h))
			got, err := s.PasswordHistory(t.Context(), "u1")
			must(t, "PasswordHistory", err)
			want := h
			want.Version = 1
			checkEqual(t, "history", normHistory(got), normHistory(want))
		}},
		{"save empty", func(t *testing.T, s store.Store) {
			empty := store.History{UserID: "u1", Salt: []byte("salt"), Params: "p"}
			must(t, "SaveHistory", s.SaveHistory(t.Context(), empty))
			got, err := s.PasswordHistory(t.Context(), "u1")
			must(t, "PasswordHistory", err)
			empty.Version = 1
			checkEqual(t, "history", normHistory(got), normHistory(empty))
		}},
		{"create twice", func(t *testing.T, s store.Store) {
			must(t, "SaveHistory", s.SaveHistory(t.Context(), h))
			other := h
			other.Keys = [][]byte{key("other")}
			checkErr(t, "SaveHistory again with version 0", s.SaveHistory(t.Context(), other), store.ErrConflict)
		}},
		{"update and stale version", func(t *testing.T, s store.Store) {
			must(t, "SaveHistory", s.SaveHistory(t.Context(), h))
			next := h
			next.Version = 1
			next.Keys = append([][]byte{key("4")}, h.Keys[:3]...)
			must(t, "SaveHistory v1", s.SaveHistory(t.Context(), next))
			got, err := s.PasswordHistory(t.Context(), "u1")
			must(t, "PasswordHistory", err)
			want := next
			want.Version = 2
			checkEqual(t, "history", normHistory(got), normHistory(want))

			stale := h
			stale.Version = 1
			checkErr(t, "SaveHistory stale", s.SaveHistory(t.Context(), stale), store.ErrConflict)
			got, err = s.PasswordHistory(t.Context(), "u1")
			must(t, "PasswordHistory", err)
			checkEqual(t, "history after conflict", normHistory(got), normHistory(want))
		}},
		{"update missing", func(t *testing.T, s store.Store) {
			missing := h
			missing.Version = 3
			checkErr(t, "SaveHistory", s.SaveHistory(t.Context(), missing), store.ErrConflict)
			_, err := s.PasswordHistory(t.Context(), "u1")
			checkErr(t, "PasswordHistory", err, store.ErrNotFound)
		}},
		{"users are separate", func(t *testing.T, s store.Store) {
			must(t, "SaveHistory u1", s.SaveHistory(t.Context(), h))
			u2 := store.History{UserID: "u2", Salt: []byte("salt2"), Params: "p2", Keys: [][]byte{key("u2")}}
			must(t, "SaveHistory u2", s.SaveHistory(t.Context(), u2))
			got, err := s.PasswordHistory(t.Context(), "u2")
			must(t, "PasswordHistory", err)
			u2.Version = 1
			checkEqual(t, "history u2", normHistory(got), normHistory(u2))
		}},
	})
}
