// Package migrations reads the embedded schema migrations of a store
// backend: files named NNNN_name.sql, applied in version order. Each
// backend applies them its own way (SQLite in a write transaction,
// PostgreSQL under an advisory lock).
package migrations

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// Migration is one schema change.
type Migration struct {
	// Version is the file's leading number.
	Version int
	// Name is the file name.
	Name string
	// SQL is the file's content.
	SQL string
}

// List returns the migrations in dir of fsys in version order. Versions
// must be positive and strictly increasing.
func List(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, e := range entries { // ReadDir sorts by name
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %q: name must start with a positive number and '_'", e.Name())
		}
		if len(ms) > 0 && v <= ms[len(ms)-1].Version {
			return nil, fmt.Errorf("migration %q: version %d is not increasing", e.Name(), v)
		}
		b, err := fs.ReadFile(fsys, dir+"/"+e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: e.Name(), SQL: string(b)})
	}
	return ms, nil
}
