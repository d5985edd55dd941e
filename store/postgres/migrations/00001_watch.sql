-- The first schema of mxtrace watch. Durations are milliseconds; the check's
-- report and facts are json (kept as the exact text given, unlike jsonb), so
-- a result reads back byte for byte and can still be queried with ->>.

-- +goose Up
CREATE TABLE watches (
	domain      text        NOT NULL PRIMARY KEY,
	every_ms    bigint      NOT NULL CHECK (every_ms > 0),
	alerts      text        NOT NULL DEFAULT '[]', -- JSON array of targets
	next_run    timestamptz NOT NULL,
	added       timestamptz NOT NULL,
	last_run    timestamptz,
	last_status text,
	worker      text,        -- holds the lease until lease_until
	lease_until timestamptz
);
CREATE INDEX watches_due ON watches (next_run);

CREATE TABLE results (
	id        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	domain    text        NOT NULL,
	at        timestamptz NOT NULL,
	status    text        NOT NULL CHECK (status <> ''),
	temporary boolean     NOT NULL DEFAULT false,
	report    json        NOT NULL,
	facts     json        NOT NULL
);
CREATE INDEX results_domain_at ON results (domain, at DESC, id DESC);

CREATE TABLE changes (
	id        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	result_id bigint      NOT NULL REFERENCES results (id),
	domain    text        NOT NULL,
	at        timestamptz NOT NULL,
	kind      text        NOT NULL CHECK (kind <> ''),
	subject   text        NOT NULL,
	severity  text        NOT NULL,
	message   text        NOT NULL,
	old_value text        NOT NULL,
	new_value text        NOT NULL
);
CREATE INDEX changes_domain_at ON changes (domain, at DESC, id DESC);
CREATE INDEX changes_result ON changes (result_id);

CREATE TABLE alerts (
	id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	result_id    bigint      REFERENCES results (id),
	domain       text        NOT NULL,
	target       text        NOT NULL CHECK (target <> ''),
	kind         text        NOT NULL CHECK (kind <> ''),
	body         json        NOT NULL,
	attempts     integer     NOT NULL DEFAULT 0,
	next_attempt timestamptz, -- NULL once sent or given up
	sent         timestamptz,
	last_error   text        NOT NULL DEFAULT '',
	created      timestamptz NOT NULL
);
CREATE INDEX alerts_due ON alerts (next_attempt, id) WHERE next_attempt IS NOT NULL;
CREATE INDEX alerts_domain_created ON alerts (domain, created DESC, id DESC);
CREATE INDEX alerts_result ON alerts (result_id);

-- +goose Down
DROP TABLE alerts;
DROP TABLE changes;
DROP TABLE results;
DROP TABLE watches;
