-- The first schema of mxtrace watch. Times are microseconds since the Unix
-- epoch, UTC (INTEGER compares and sorts exactly, unlike SQLite's text
-- dates); durations are milliseconds; JSON is stored as the bytes given.

-- +goose Up
CREATE TABLE watches (
	domain      TEXT    NOT NULL PRIMARY KEY,
	every_ms    INTEGER NOT NULL CHECK (every_ms > 0),
	alerts      TEXT    NOT NULL DEFAULT '[]', -- JSON array of targets
	next_run    INTEGER NOT NULL,
	added       INTEGER NOT NULL,
	last_run    INTEGER,
	last_status TEXT,
	worker      TEXT,    -- holds the lease until lease_until
	lease_until INTEGER
) STRICT;
CREATE INDEX watches_due ON watches (next_run);

CREATE TABLE results (
	id        INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	domain    TEXT    NOT NULL,
	at        INTEGER NOT NULL,
	status    TEXT    NOT NULL CHECK (status <> ''),
	temporary INTEGER NOT NULL DEFAULT 0,
	report    BLOB    NOT NULL,
	facts     BLOB    NOT NULL
) STRICT;
CREATE INDEX results_domain_at ON results (domain, at DESC, id DESC);

CREATE TABLE changes (
	id        INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	result_id INTEGER NOT NULL REFERENCES results (id),
	domain    TEXT    NOT NULL,
	at        INTEGER NOT NULL,
	kind      TEXT    NOT NULL CHECK (kind <> ''),
	subject   TEXT    NOT NULL,
	severity  TEXT    NOT NULL,
	message   TEXT    NOT NULL,
	old_value TEXT    NOT NULL,
	new_value TEXT    NOT NULL
) STRICT;
CREATE INDEX changes_domain_at ON changes (domain, at DESC, id DESC);
CREATE INDEX changes_result ON changes (result_id);

CREATE TABLE alerts (
	id           INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	result_id    INTEGER REFERENCES results (id),
	domain       TEXT    NOT NULL,
	target       TEXT    NOT NULL CHECK (target <> ''),
	kind         TEXT    NOT NULL CHECK (kind <> ''),
	body         BLOB    NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_attempt INTEGER, -- NULL once sent or given up
	sent         INTEGER,
	last_error   TEXT    NOT NULL DEFAULT '',
	created      INTEGER NOT NULL
) STRICT;
CREATE INDEX alerts_due ON alerts (next_attempt, id) WHERE next_attempt IS NOT NULL;
CREATE INDEX alerts_domain_created ON alerts (domain, created DESC, id DESC);
CREATE INDEX alerts_result ON alerts (result_id);

-- +goose Down
DROP TABLE alerts;
DROP TABLE changes;
DROP TABLE results;
DROP TABLE watches;
