package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"github.com/sspr-go/sspr/plugin"
	"github.com/sspr-go/sspr/plugin/password"
)

// errWrongCredentials is what authenticate returns for an unknown user and
// for a wrong password alike.
var errWrongCredentials = errors.New("server: wrong username or password")

// Directory is the provider's user table. The sign-in page checks passwords
// against it and sspr uses it as its plugin.Directory, so a password set by
// a reset is the one the next sign-in checks. It also implements the
// optional plugin.SessionRevoker capability, and keeps each user's session
// epoch, which ends the provider's sign-in sessions (see
// [Directory.RevokeSessions]). It is safe for concurrent use.
type Directory struct {
	db     *sql.DB
	hasher *password.Hasher
	now    func() time.Time
	logger *slog.Logger
	// dummyHash is verified for unknown users, so that a sign-in costs one
	// argon2id computation whether or not the account exists.
	dummyHash string
	// revoke drops every token of a user and reports how many it dropped.
	revoke func(userID string) int
}

var (
	_ plugin.Directory        = (*Directory)(nil)
	_ plugin.SessionRevoker   = (*Directory)(nil)
	_ plugin.PasswordVerifier = (*Directory)(nil)
)

const schema = `
CREATE TABLE IF NOT EXISTS users (
	id                  TEXT PRIMARY KEY,
	username            TEXT NOT NULL,
	username_key        TEXT NOT NULL UNIQUE,
	email               TEXT NOT NULL,
	email_key           TEXT NOT NULL UNIQUE,
	display_name        TEXT NOT NULL,
	password_hash       TEXT NOT NULL,
	password_changed_at INTEGER NOT NULL,
	created_at          INTEGER NOT NULL,
	session_epoch       INTEGER NOT NULL DEFAULT 0
) STRICT;`

// addSessionEpoch upgrades a users table created before sign-in sessions.
const addSessionEpoch = `ALTER TABLE users ADD COLUMN session_epoch INTEGER NOT NULL DEFAULT 0`

// identifierKey is how usernames and emails are compared: surrounding space
// trimmed, Unicode NFC, case folded.
func identifierKey(s string) string {
	return cases.Fold().String(norm.NFC.String(strings.TrimSpace(s)))
}

func (d *Directory) migrate(ctx context.Context) error {
	if _, err := d.db.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("server: migrate users: %w", err)
	}
	hasEpoch := func() (bool, error) {
		var ok bool
		err := d.db.QueryRowContext(ctx,
			`SELECT EXISTS(SELECT 1 FROM pragma_table_info('users') WHERE name = 'session_epoch')`).Scan(&ok)
		return ok, err
	}
	ok, err := hasEpoch()
	if err != nil {
		return fmt.Errorf("server: migrate users: %w", err)
	}
	if !ok {
		if _, err := d.db.ExecContext(ctx, addSessionEpoch); err != nil {
			// Another process may have added it in the meantime.
			if ok, _ := hasEpoch(); !ok {
				return fmt.Errorf("server: migrate users: %w", err)
			}
		}
	}
	return nil
}

func (d *Directory) ping(ctx context.Context) error { return d.db.PingContext(ctx) }

// lookup finds a user and their password hash by username or email key.
func (d *Directory) lookup(ctx context.Context, identifier string) (plugin.User, string, error) {
	key := identifierKey(identifier)
	if key == "" {
		return plugin.User{}, "", fmt.Errorf("server: find user: %w", plugin.ErrUserNotFound)
	}
	// Two point lookups, both always run (an OR of the two keys costs three
	// times as much: SQLite merges and sorts); an email match wins over a
	// username match. An identifier that matches nobody reads a row too
	// (the first user's, rank -1, thrown away), so that a known and an
	// unknown identifier cost the same: reading and scanning a found row
	// made a known one ≈ 10 µs slower, which the timing bench detected.
	var rank int
	var u plugin.User
	var hash string
	err := d.db.QueryRowContext(byKey(ctx), `
		WITH m(rank, rid) AS (
			SELECT 1, rowid FROM users WHERE email_key = ?1
			UNION ALL SELECT 0, rowid FROM users WHERE username_key = ?1
			UNION ALL SELECT -1, min(rowid) FROM users
		), best AS (SELECT rank, rid FROM m ORDER BY rank DESC LIMIT 1)
		SELECT best.rank, u.id, u.username, u.email, u.display_name, u.password_hash
		FROM best JOIN users AS u ON u.rowid = best.rid`, key).
		Scan(&rank, &u.ID, &u.Username, &u.Email, &u.DisplayName, &hash)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && rank < 0) {
		return plugin.User{}, "", fmt.Errorf("server: find user: %w", plugin.ErrUserNotFound)
	}
	if err != nil {
		return plugin.User{}, "", fmt.Errorf("server: find user: %w", err)
	}
	return u, hash, nil
}

// FindUser returns the user whose username or email equals identifier,
// compared the way the sign-in page compares them (trimmed, case-folded).
// An unknown identifier gives an error matching plugin.ErrUserNotFound; a
// known and an unknown identifier cost the same two indexed lookups and
// one row read.
func (d *Directory) FindUser(ctx context.Context, identifier string) (plugin.User, error) {
	u, _, err := d.lookup(ctx, identifier)
	return u, err
}

// User returns the user with the given ID, or an error matching
// plugin.ErrUserNotFound. Like [Directory.FindUser] it reads a row either
// way (the first user's, thrown away, for an ID nobody has): sspr asks for
// plugin.DecoyUserID on an unknown identifier's pages, which must cost
// what a known user's do.
func (d *Directory) User(ctx context.Context, id string) (plugin.User, error) {
	var u plugin.User
	var found bool
	err := d.db.QueryRowContext(byKey(ctx), `
		WITH m(found, rid) AS (
			SELECT 1, rowid FROM users WHERE id = ?1
			UNION ALL SELECT 0, min(rowid) FROM users
		), best AS (SELECT found, rid FROM m ORDER BY found DESC LIMIT 1)
		SELECT best.found, u.id, u.username, u.email, u.display_name
		FROM best JOIN users AS u ON u.rowid = best.rid`, id).
		Scan(&found, &u.ID, &u.Username, &u.Email, &u.DisplayName)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !found) {
		return plugin.User{}, fmt.Errorf("server: user %q: %w", id, plugin.ErrUserNotFound)
	}
	if err != nil {
		return plugin.User{}, fmt.Errorf("server: user: %w", err)
	}
	return u, nil
}

// SetPassword hashes password with argon2id and makes it the user's
// password. An unknown ID gives an error matching plugin.ErrUserNotFound.
// It does not end the user's sessions; see [Directory.RevokeSessions].
func (d *Directory) SetPassword(ctx context.Context, id, password string) error {
	hash, err := d.hasher.Hash(ctx, password)
	if err != nil {
		return fmt.Errorf("server: set password: %w", err)
	}
	res, err := d.db.ExecContext(ctx,
		`UPDATE users SET password_hash = ?, password_changed_at = ? WHERE id = ?`,
		hash, d.now().Unix(), id)
	if err != nil {
		return fmt.Errorf("server: set password: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("server: set password: %w", err)
	} else if n == 0 {
		return fmt.Errorf("server: set password for %q: %w", id, plugin.ErrUserNotFound)
	}
	d.logger.InfoContext(ctx, "password changed", slog.String("user", id))
	return nil
}

// RevokeSessions implements plugin.SessionRevoker. It ends the user's
// sign-in sessions in every browser by raising the user's session epoch
// (a session cookie that carries an older epoch is refused), and drops
// every access and refresh token of the user, every sign-in that was
// completed but not yet redeemed for tokens and every password accepted on
// a sign-in that still waits for its second factor. An unknown user is not
// an error.
func (d *Directory) RevokeSessions(ctx context.Context, userID string) error {
	if _, err := d.db.ExecContext(ctx,
		`UPDATE users SET session_epoch = session_epoch + 1 WHERE id = ?`, userID); err != nil {
		return fmt.Errorf("server: revoke sessions: %w", err)
	}
	n := d.revoke(userID)
	d.logger.InfoContext(ctx, "sessions revoked", slog.String("user", userID), slog.Int("tokens", n))
	return nil
}

// sessionEpoch returns the user's current session epoch, or an error
// matching plugin.ErrUserNotFound.
func (d *Directory) sessionEpoch(ctx context.Context, userID string) (int64, error) {
	var epoch int64
	err := d.db.QueryRowContext(byKey(ctx), `SELECT session_epoch FROM users WHERE id = ?`, userID).Scan(&epoch)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("server: session epoch of %q: %w", userID, plugin.ErrUserNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("server: session epoch: %w", err)
	}
	return epoch, nil
}

// authenticate checks a password. Unknown users and wrong passwords give the
// same error, errWrongCredentials, after the same argon2id work.
func (d *Directory) authenticate(ctx context.Context, identifier, password string) (plugin.User, error) {
	u, hash, err := d.lookup(ctx, identifier)
	if errors.Is(err, plugin.ErrUserNotFound) {
		if _, err := d.hasher.Verify(ctx, password, d.dummyHash); err != nil {
			return plugin.User{}, fmt.Errorf("server: authenticate: %w", err)
		}
		return plugin.User{}, errWrongCredentials
	}
	if err != nil {
		return plugin.User{}, err
	}
	ok, err := d.hasher.Verify(ctx, password, hash)
	if err != nil {
		return plugin.User{}, fmt.Errorf("server: authenticate: %w", err)
	}
	if !ok {
		return plugin.User{}, errWrongCredentials
	}
	return u, nil
}

// seed creates u with password unless a user with u's ID exists. When it
// creates the user it calls created before committing, so that a failure
// there (recording the password in sspr's history) leaves no user behind and
// the next start tries again. It reports whether it created the user.
func (d *Directory) seed(ctx context.Context, u plugin.User, password string, created func(context.Context) error) (bool, error) {
	var exists bool
	if err := d.db.QueryRowContext(ctx, `SELECT EXISTS(SELECT 1 FROM users WHERE id = ?)`, u.ID).Scan(&exists); err != nil {
		return false, fmt.Errorf("server: seed %q: %w", u.ID, err)
	}
	if exists {
		return false, nil
	}
	hash, err := d.hasher.Hash(ctx, password)
	if err != nil {
		return false, fmt.Errorf("server: seed %q: %w", u.ID, err)
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("server: seed %q: %w", u.ID, err)
	}
	defer tx.Rollback()
	now := d.now().Unix()
	res, err := tx.ExecContext(ctx, `
		INSERT INTO users (id, username, username_key, email, email_key, display_name, password_hash, password_changed_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		u.ID, u.Username, identifierKey(u.Username), u.Email, identifierKey(u.Email), u.DisplayName, hash, now, now)
	if err != nil {
		return false, fmt.Errorf("server: seed %q: %w", u.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return false, fmt.Errorf("server: seed %q: %w", u.ID, err)
	} else if n == 0 {
		return false, nil // another process seeded it first
	}
	if err := created(ctx); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("server: seed %q: %w", u.ID, err)
	}
	return true, nil
}

// VerifyPassword implements plugin.PasswordVerifier: sspr's signed-in
// password change asks for the current password too.
func (d *Directory) VerifyPassword(ctx context.Context, id, password string) error {
	var hash string
	err := d.db.QueryRowContext(ctx, `SELECT password_hash FROM users WHERE id = ?`, id).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("server: verify password of %q: %w", id, plugin.ErrUserNotFound)
	}
	if err != nil {
		return fmt.Errorf("server: verify password: %w", err)
	}
	ok, err := d.hasher.Verify(ctx, password, hash)
	if err != nil {
		return fmt.Errorf("server: verify password: %w", err)
	}
	if !ok {
		return plugin.ErrWrongPassword
	}
	return nil
}

// byKey returns ctx without its cancellation for a lookup by key, unless
// ctx has ended already (database/sql then refuses the statement): with a
// cancellable context, database/sql and the SQLite driver start a
// goroutine each per query to watch it, which costs more than a lookup by
// key takes, on every reset start.
func byKey(ctx context.Context) context.Context {
	if ctx.Err() != nil {
		return ctx
	}
	return context.WithoutCancel(ctx)
}
