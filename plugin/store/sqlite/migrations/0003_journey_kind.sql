-- What a journey is for: 'reset' (forgot password; '' in rows written before
-- this migration means the same) or 'stepup' (a signed-in user's step-up).
ALTER TABLE journeys ADD COLUMN kind TEXT NOT NULL DEFAULT '';
