-- Scans: a whole `scan --db` run and its results, so two runs over the same
-- list can be compared domain by domain. Results are written in batches;
-- a scan whose finished is NULL was interrupted (or is still running) and
-- holds the batches committed until then. A domain sorts by its bytes
-- (COLLATE "C"), as Go compares strings, whatever the cluster's locale.

-- +goose Up
CREATE TABLE scans (
	id       bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	started  timestamptz NOT NULL,
	finished timestamptz, -- NULL until the scan ended
	mode     text        NOT NULL,
	input    text        NOT NULL,
	results  bigint      NOT NULL DEFAULT 0, -- committed results
	errors   bigint      NOT NULL DEFAULT 0  -- of which status error
);

CREATE TABLE scan_results (
	scan_id bigint NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
	domain  text COLLATE "C" NOT NULL,
	status  text   NOT NULL,
	line    json   NOT NULL, -- the JSON line as scan printed it
	facts   json             -- the watch snapshot; NULL when the line has none
);
-- A scan's results in domain order, what the diff of two scans merges.
CREATE INDEX scan_results_domain ON scan_results (scan_id, domain);

-- +goose Down
DROP TABLE scan_results;
DROP TABLE scans;
