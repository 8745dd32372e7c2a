package sqlite

import (
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"
)

func TestBackgroundCheckpointer(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	autocheckpoint := func(s *Store) int {
		var n int
		if err := s.writer.QueryRowContext(t.Context(), `PRAGMA wal_autocheckpoint`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	on, err := Config{Path: filepath.Join(t.TempDir(), "on.db")}.Open(t.Context(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	if n := autocheckpoint(on); n != 0 || on.ckpt == nil {
		t.Fatalf("default: writer autocheckpoint %d, checkpointer %v", n, on.ckpt != nil)
	}
	if err := on.Checkpoint(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := on.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-on.ckptDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the checkpointer did not stop on Close")
	}

	off, err := Config{Path: filepath.Join(t.TempDir(), "off.db"), CheckpointInterval: -1}.Open(t.Context(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	if n := autocheckpoint(off); n != 1000 || off.ckpt != nil {
		t.Fatalf("CheckpointInterval -1: writer autocheckpoint %d, checkpointer %v", n, off.ckpt != nil)
	}
	if err := off.Checkpoint(t.Context()); err != nil {
		t.Fatal(err)
	}
}
