-- The mail queue of mxtrace relay (package relay/queue). A message is one
-- row with its data; its recipients are grouped by destination domain into
-- deliveries, the unit a delivery process leases, tries and finishes. A
-- delivery with next_attempt NULL has nothing pending; a message with no
-- pending recipient is deleted with its deliveries and recipients. Times
-- are microseconds since the Unix epoch, UTC, as in 00001.

-- +goose Up
CREATE TABLE relay_messages (
	id       INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, -- never reused: it is the ID in the 250 reply
	sender   TEXT    NOT NULL,   -- '' is the null sender
	client   TEXT    NOT NULL DEFAULT '',
	helo     TEXT    NOT NULL DEFAULT '',
	received INTEGER NOT NULL,
	expires  INTEGER NOT NULL,
	held     INTEGER NOT NULL DEFAULT 0 CHECK (held IN (0, 1)),
	size     INTEGER NOT NULL,
	data     BLOB    NOT NULL    -- last: the other columns are read without it
) STRICT;
CREATE INDEX relay_messages_received ON relay_messages (received, id);

CREATE TABLE relay_deliveries (
	id           INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	message_id   INTEGER NOT NULL REFERENCES relay_messages (id) ON DELETE CASCADE,
	domain       TEXT    NOT NULL CHECK (domain <> ''),
	next_attempt INTEGER, -- NULL once no recipient is pending
	attempts     INTEGER NOT NULL DEFAULT 0,
	last_error   TEXT    NOT NULL DEFAULT '',
	owner        TEXT,    -- holds the lease until lease_until
	lease_until  INTEGER,
	UNIQUE (message_id, domain)
) STRICT;
CREATE INDEX relay_deliveries_due ON relay_deliveries (next_attempt, id) WHERE next_attempt IS NOT NULL;
CREATE INDEX relay_deliveries_domain ON relay_deliveries (domain, next_attempt) WHERE next_attempt IS NOT NULL;

CREATE TABLE relay_recipients (
	message_id  INTEGER NOT NULL REFERENCES relay_messages (id) ON DELETE CASCADE,
	position    INTEGER NOT NULL, -- order of RCPT TO
	delivery_id INTEGER NOT NULL REFERENCES relay_deliveries (id) ON DELETE CASCADE,
	address     TEXT    NOT NULL,
	state       TEXT    NOT NULL CHECK (state IN ('queued', 'deferred', 'delivered', 'failed')),
	attempts    INTEGER NOT NULL DEFAULT 0,
	last_error  TEXT    NOT NULL DEFAULT '',
	PRIMARY KEY (message_id, position)
) STRICT;
CREATE INDEX relay_recipients_delivery ON relay_recipients (delivery_id);

-- +goose Down
DROP TABLE relay_recipients;
DROP TABLE relay_deliveries;
DROP TABLE relay_messages;
