-- 0002_factors: the factors users enrolled (TOTP secrets, WebAuthn
-- credentials, recovery codes).
--
-- An ordinary rowid table, unlike journeys and challenges: data may hold a
-- WebAuthn credential of several hundred bytes, more than a row of a
-- WITHOUT ROWID table should carry with our page size, and factors are
-- written far less often than journeys.
--
-- Empty secrets are stored as NULL. The partial UNIQUE index makes a
-- non-empty secret unique per user and flow, and ConsumeFactor deletes
-- through it: its WHERE clause repeats length(secret) > 0, which SQLite
-- needs to see before it uses a partial index.

CREATE TABLE factors (
	id           TEXT    NOT NULL PRIMARY KEY,
	user_id      TEXT    NOT NULL,
	flow         TEXT    NOT NULL,
	name         TEXT    NOT NULL,
	secret       BLOB,
	data         BLOB,
	counter      INTEGER NOT NULL,
	created_at   INTEGER,
	last_used_at INTEGER
) STRICT;

CREATE INDEX factors_user ON factors (user_id, flow);
CREATE UNIQUE INDEX factors_secret ON factors (user_id, flow, secret) WHERE length(secret) > 0;
