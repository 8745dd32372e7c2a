package server

import (
	"context"
	"fmt"
	"strings"
)

// Load-test users ([Config.SeedUsers]). Their password is published here:
// seed them only into a throw-away data folder.
const (
	// LoadTestPassword is the password of every seeded load-test user.
	LoadTestPassword = "load-test-password-2026"
	// LoadTestDomain is the domain of the load-test users' email
	// addresses.
	LoadTestDomain = "example.test"
	// MaxSeedUsers is the largest [Config.SeedUsers]: every load-test
	// username has five digits.
	MaxSeedUsers = 100000
)

// seedBatch is how many users one INSERT statement carries (9 parameters
// each, well below SQLite's limit of 32766).
const seedBatch = 500

// LoadTestUsername returns the username (and user ID) of the i-th load-test
// user, for example "user00042".
func LoadTestUsername(i int) string { return fmt.Sprintf("user%05d", i) }

// LoadTestEmail returns the email address of the i-th load-test user, for
// example "user00042@example.test".
func LoadTestEmail(i int) string { return LoadTestUsername(i) + "@" + LoadTestDomain }

// seedLoadTestUsers creates the load-test users 0 … n-1 that do not exist
// yet, in one transaction, and reports how many it created. It hashes
// [LoadTestPassword] once and gives every new user that hash (one argon2id
// computation instead of n): fine for load tests, where the users are
// throw-away, and never for real accounts, whose hashes must each have
// their own salt. Existing users, and users whose username or email is
// taken, are left as they are.
func (d *Directory) seedLoadTestUsers(ctx context.Context, n int) (int, error) {
	hash, err := d.hasher.Hash(ctx, LoadTestPassword)
	if err != nil {
		return 0, fmt.Errorf("server: seed load-test users: %w", err)
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("server: seed load-test users: %w", err)
	}
	defer tx.Rollback()
	now := d.now().Unix()
	const cols = 9
	var created int64
	args := make([]any, 0, seedBatch*cols)
	for lo := 0; lo < n; lo += seedBatch {
		hi := min(lo+seedBatch, n)
		args = args[:0]
		for i := lo; i < hi; i++ {
			name, email := LoadTestUsername(i), LoadTestEmail(i)
			args = append(args, name, name, identifierKey(name), email, identifierKey(email),
				"Load Test "+name[len("user"):], hash, now, now)
		}
		q := `INSERT INTO users (id, username, username_key, email, email_key, display_name, password_hash, password_changed_at, created_at) VALUES ` +
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?, ?), ", hi-lo), ", ") +
			` ON CONFLICT DO NOTHING`
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return 0, fmt.Errorf("server: seed load-test users: %w", err)
		}
		k, err := res.RowsAffected()
		if err != nil {
			return 0, fmt.Errorf("server: seed load-test users: %w", err)
		}
		created += k
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("server: seed load-test users: %w", err)
	}
	return int(created), nil
}
