-- Scans: a whole `scan --db` run and its results, so two runs over the same
-- list can be compared domain by domain. Results are written in batches;
-- a scan whose finished is NULL was interrupted (or is still running) and
-- holds the batches committed until then.

-- +goose Up
CREATE TABLE scans (
	id       INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	started  INTEGER NOT NULL,
	finished INTEGER, -- NULL until the scan ended
	mode     TEXT    NOT NULL,
	input    TEXT    NOT NULL,
	results  INTEGER NOT NULL DEFAULT 0, -- committed results
	errors   INTEGER NOT NULL DEFAULT 0  -- of which status error
) STRICT;

CREATE TABLE scan_results (
	scan_id INTEGER NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
	domain  TEXT    NOT NULL,
	status  TEXT    NOT NULL,
	line    BLOB    NOT NULL, -- the JSON line as scan printed it
	facts   BLOB              -- the watch snapshot; NULL when the line has none
) STRICT;
-- A scan's results in domain order, what the diff of two scans merges.
CREATE INDEX scan_results_domain ON scan_results (scan_id, domain);

-- +goose Down
DROP TABLE scan_results;
DROP TABLE scans;
