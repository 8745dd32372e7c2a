-- 0001_init: the first schema of sspr's PostgreSQL store, the same logical
-- schema as the SQLite store's migrations 0001 to 0003.
--
-- Times are timestamptz (microseconds); NULL stands for the zero time.Time
-- and counts as earlier than any other time. Empty byte slices are stored
-- as NULL (CHECKs keep '' out of the unique columns), so that the unique
-- constraints on challenges.token_hash and factors.secret only apply to
-- real tokens and secrets. Identifiers use the "C" collation: they are
-- opaque, compared byte by byte, and sort as in SQLite.

CREATE TABLE journeys (
	id           text COLLATE "C" NOT NULL PRIMARY KEY,
	-- 'reset', 'stepup', or '' (which means 'reset').
	kind         text COLLATE "C" NOT NULL DEFAULT '',
	user_id      text COLLATE "C" NOT NULL,
	verified     text[]           NOT NULL, -- flow IDs, in order
	return_to    text             NOT NULL,
	locale       text             NOT NULL,
	created_at   timestamptz,
	expires_at   timestamptz,
	completed_at timestamptz,
	version      bigint           NOT NULL
);

CREATE INDEX journeys_expires_at ON journeys (expires_at);

CREATE TABLE challenges (
	id           text COLLATE "C" NOT NULL PRIMARY KEY,
	journey_id   text COLLATE "C" NOT NULL,
	flow         text COLLATE "C" NOT NULL,
	token_hash   bytea UNIQUE CHECK (length(token_hash) > 0),
	code_hash    bytea,
	data         bytea,
	attempts     integer NOT NULL,
	max_attempts integer NOT NULL,
	reissues     integer NOT NULL,
	created_at   timestamptz,
	expires_at   timestamptz,
	used_at      timestamptz
);

-- LatestChallenge reads it backwards (created_at DESC NULLS LAST, id DESC).
CREATE INDEX challenges_journey ON challenges (journey_id, flow, created_at NULLS FIRST, id);
CREATE INDEX challenges_expires_at ON challenges (expires_at);

-- The key starts with the expiry (window_start + 2*window), so Sweep deletes
-- a range of the primary key; callers always know the window, so lookups
-- use the whole key.
CREATE TABLE counters (
	expires_at   timestamptz      NOT NULL,
	key          text COLLATE "C" NOT NULL,
	window_start timestamptz      NOT NULL,
	count        bigint           NOT NULL,
	PRIMARY KEY (expires_at, key, window_start)
);

CREATE TABLE outbox (
	id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	channel         text    NOT NULL,
	payload         bytea,
	attempts        integer NOT NULL,
	created_at      timestamptz,
	next_attempt_at timestamptz,
	claimed_until   timestamptz,
	sent_at         timestamptz,
	last_error      text    NOT NULL,
	dead            boolean NOT NULL
);

-- Claim walks the pending messages in ID order (FOR UPDATE SKIP LOCKED).
CREATE INDEX outbox_pending ON outbox (id) WHERE sent_at IS NULL AND NOT dead;

CREATE TABLE audit (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	time       timestamptz,
	event      text COLLATE "C" NOT NULL,
	journey_id text COLLATE "C" NOT NULL,
	user_id    text COLLATE "C" NOT NULL,
	ip         text NOT NULL,
	user_agent text NOT NULL,
	outcome    text NOT NULL,
	detail     text NOT NULL
);

-- Audit lists newest first (time DESC NULLS LAST, id DESC): these indexes
-- are read backwards.
CREATE INDEX audit_time ON audit (time NULLS FIRST, id);
CREATE INDEX audit_user ON audit (user_id, time NULLS FIRST, id);
CREATE INDEX audit_journey ON audit (journey_id, time NULLS FIRST, id);

CREATE TABLE password_history (
	user_id text COLLATE "C" NOT NULL PRIMARY KEY,
	salt    bytea,
	params  text    NOT NULL,
	keys    bytea[] NOT NULL, -- newest first
	version bigint  NOT NULL
);

-- A non-empty secret is unique per user and flow; ConsumeFactor deletes
-- through the partial unique index (secret = $n implies secret IS NOT NULL,
-- so the planner may use it).
CREATE TABLE factors (
	id           text COLLATE "C" NOT NULL PRIMARY KEY,
	user_id      text COLLATE "C" NOT NULL,
	flow         text COLLATE "C" NOT NULL,
	name         text   NOT NULL,
	secret       bytea  CHECK (length(secret) > 0),
	data         bytea,
	counter      bigint NOT NULL,
	created_at   timestamptz,
	last_used_at timestamptz
);

CREATE INDEX factors_user ON factors (user_id, flow, created_at NULLS FIRST, id);
CREATE UNIQUE INDEX factors_secret ON factors (user_id, flow, secret) WHERE secret IS NOT NULL;
