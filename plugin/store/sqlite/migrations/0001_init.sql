-- 0001_init: the first schema of sspr's SQLite store.
--
-- Times are INTEGER Unix nanoseconds (UTC); NULL stands for the zero
-- time.Time. Empty byte slices are stored as NULL, so that UNIQUE on
-- challenges.token_hash only applies to real link tokens.
--
-- Every B-tree a reset start touches costs a WAL frame per commit, so the
-- hot tables keep few: journeys and challenges are WITHOUT ROWID (their text
-- ID is the table's key), counters need no secondary index, and outbox and
-- audit IDs are plain rowids (no AUTOINCREMENT bookkeeping; an ID can only
-- come back after every newer row was swept).

CREATE TABLE journeys (
	id           TEXT    NOT NULL PRIMARY KEY,
	user_id      TEXT    NOT NULL,
	verified     TEXT    NOT NULL, -- flow IDs joined with ','
	return_to    TEXT    NOT NULL,
	locale       TEXT    NOT NULL,
	created_at   INTEGER,
	expires_at   INTEGER,
	completed_at INTEGER,
	version      INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX journeys_expires_at ON journeys (expires_at);

CREATE TABLE challenges (
	id           TEXT    NOT NULL PRIMARY KEY,
	journey_id   TEXT    NOT NULL,
	flow         TEXT    NOT NULL,
	token_hash   BLOB    UNIQUE,
	code_hash    BLOB,
	data         BLOB,
	attempts     INTEGER NOT NULL,
	max_attempts INTEGER NOT NULL,
	reissues     INTEGER NOT NULL,
	created_at   INTEGER,
	expires_at   INTEGER,
	used_at      INTEGER
) STRICT, WITHOUT ROWID;

CREATE INDEX challenges_journey ON challenges (journey_id, flow, created_at);
CREATE INDEX challenges_expires_at ON challenges (expires_at);

-- The key starts with the expiry (window_start + 2*window), so Sweep deletes
-- a range of the primary key and new counters cluster at its end; callers
-- always know the window, so lookups use the whole key.
CREATE TABLE counters (
	expires_at   INTEGER NOT NULL,
	key          TEXT    NOT NULL,
	window_start INTEGER NOT NULL,
	count        INTEGER NOT NULL,
	PRIMARY KEY (expires_at, key, window_start)
) STRICT, WITHOUT ROWID;

CREATE TABLE outbox (
	id              INTEGER NOT NULL PRIMARY KEY,
	channel         TEXT    NOT NULL,
	payload         BLOB,
	attempts        INTEGER NOT NULL,
	created_at      INTEGER,
	next_attempt_at INTEGER,
	claimed_until   INTEGER,
	sent_at         INTEGER,
	last_error      TEXT    NOT NULL,
	dead            INTEGER NOT NULL
) STRICT;

-- Claim walks the pending messages in ID order.
CREATE INDEX outbox_pending ON outbox (id) WHERE sent_at IS NULL AND dead = 0;

CREATE TABLE audit (
	id         INTEGER NOT NULL PRIMARY KEY,
	time       INTEGER,
	event      TEXT    NOT NULL,
	journey_id TEXT    NOT NULL,
	user_id    TEXT    NOT NULL,
	ip         TEXT    NOT NULL,
	user_agent TEXT    NOT NULL,
	outcome    TEXT    NOT NULL,
	detail     TEXT    NOT NULL
) STRICT;

CREATE INDEX audit_time ON audit (time);
CREATE INDEX audit_user ON audit (user_id, time);
CREATE INDEX audit_journey ON audit (journey_id, time);

CREATE TABLE password_history (
	user_id TEXT    NOT NULL PRIMARY KEY,
	salt    BLOB,
	params  TEXT    NOT NULL,
	keys    BLOB, -- each key as a uvarint length followed by its bytes
	version INTEGER NOT NULL
) STRICT;
