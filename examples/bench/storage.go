package main

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	// sspr's store is SQLite; the bench reads it (read-only) to measure it.
	_ "github.com/mattn/go-sqlite3"
)

// journeyTables are the tables a reset start writes (with their indexes).
var journeyTables = []string{"journeys", "challenges", "outbox", "audit", "counters"}

// ssprDB is a read-only connection to the provider's sspr.db.
type ssprDB struct {
	db     *sql.DB
	path   string
	dbstat bool // SQLite was built with dbstat (-tags sqlite_dbstat)
	owner  map[string]string
	// queuedPayload is the mean size of a pending message's payload, the
	// first time drainOutbox found some pending (after the reset starts,
	// so reset messages).
	queuedPayload float64
}

func openSSPRDB(ctx context.Context, dataDir string) (*ssprDB, error) {
	path := filepath.Join(dataDir, "sspr.db")
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	s := &ssprDB{db: db, path: path, owner: map[string]string{}}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sspr.db: %w", err)
	}
	var one int
	s.dbstat = db.QueryRowContext(ctx, `SELECT 1 FROM dbstat LIMIT 1`).Scan(&one) == nil
	// Which table each B-tree (table or index) belongs to.
	rows, err := db.QueryContext(ctx, `SELECT name, tbl_name FROM sqlite_schema WHERE type IN ('table', 'index')`)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("read sspr.db schema: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, tbl string
		if err := rows.Scan(&name, &tbl); err != nil {
			db.Close()
			return nil, err
		}
		s.owner[name] = tbl
	}
	if err := rows.Err(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *ssprDB) Close() error { return s.db.Close() }

// pendingOutbox counts messages not yet delivered.
func (s *ssprDB) pendingOutbox(ctx context.Context) (int, error) {
	var n int
	var avg sql.NullFloat64
	err := s.db.QueryRowContext(ctx, `SELECT count(*), avg(length(payload)) FROM outbox WHERE sent_at IS NULL AND dead = 0`).Scan(&n, &avg)
	if avg.Valid && s.queuedPayload == 0 {
		s.queuedPayload = avg.Float64
	}
	return n, err
}

// drainOutbox waits until the outbox worker delivered every message and
// returns how long that took.
func (s *ssprDB) drainOutbox(ctx context.Context, timeout time.Duration) (time.Duration, int, error) {
	began := time.Now()
	first := -1
	for {
		n, err := s.pendingOutbox(ctx)
		if err != nil {
			return 0, first, fmt.Errorf("outbox: %w", err)
		}
		if first < 0 {
			first = n
		}
		if n == 0 {
			return time.Since(began), first, nil
		}
		if time.Since(began) > timeout {
			return 0, first, fmt.Errorf("outbox: %d messages still pending after %s", n, timeout)
		}
		select {
		case <-ctx.Done():
			return 0, first, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// usage is the size of sspr.db's tables at one moment.
type usage struct {
	// pages and payload per table (its indexes included), from dbstat;
	// empty without dbstat.
	pages, payload map[string]int64
	// used is (page_count − freelist_count) × page_size: every table.
	used int64
	// rows per journey table.
	rows map[string]int64
}

// usage measures the database as this connection sees it (the WAL
// included, so no checkpoint is needed).
func (s *ssprDB) usage(ctx context.Context) (usage, error) {
	u := usage{pages: map[string]int64{}, payload: map[string]int64{}, rows: map[string]int64{}}
	var pageCount, freelist, pageSize int64
	if err := s.db.QueryRowContext(ctx, `SELECT * FROM pragma_page_count, pragma_freelist_count, pragma_page_size`).
		Scan(&pageCount, &freelist, &pageSize); err != nil {
		return u, fmt.Errorf("sspr.db size: %w", err)
	}
	u.used = (pageCount - freelist) * pageSize
	for _, t := range journeyTables {
		var n int64
		if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM `+t).Scan(&n); err != nil {
			return u, fmt.Errorf("count %s: %w", t, err)
		}
		u.rows[t] = n
	}
	if !s.dbstat {
		return u, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT name, sum(pgsize), sum(payload) FROM dbstat GROUP BY name`)
	if err != nil {
		return u, fmt.Errorf("dbstat: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var pg, pl int64
		if err := rows.Scan(&name, &pg, &pl); err != nil {
			return u, err
		}
		tbl := s.owner[name]
		if tbl == "" {
			tbl = name
		}
		u.pages[tbl] += pg
		u.payload[tbl] += pl
	}
	return u, rows.Err()
}

// fileSizes returns the sizes of sspr.db and its WAL.
func (s *ssprDB) fileSizes() (db, wal int64) {
	if fi, err := os.Stat(s.path); err == nil {
		db = fi.Size()
	}
	if fi, err := os.Stat(s.path + "-wal"); err == nil {
		wal = fi.Size()
	}
	return db, wal
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
