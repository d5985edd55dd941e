-- The mail queue of mxtrace relay (package relay/queue), shared by every
-- relay node on this database. A message is one row with its data; its
-- recipients are grouped by destination domain into deliveries, the unit a
-- node leases (SELECT ... FOR UPDATE SKIP LOCKED), tries and finishes. A
-- delivery with next_attempt NULL has nothing pending; a message with no
-- pending recipient is deleted with its deliveries and recipients.

-- +goose Up
CREATE TABLE relay_messages (
	id       bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- never reused: it is the ID in the 250 reply
	sender   text        NOT NULL, -- '' is the null sender
	client   text        NOT NULL DEFAULT '',
	helo     text        NOT NULL DEFAULT '',
	received timestamptz NOT NULL,
	expires  timestamptz NOT NULL,
	held     boolean     NOT NULL DEFAULT false,
	size     bigint      NOT NULL,
	data     bytea       NOT NULL
);
CREATE INDEX relay_messages_received ON relay_messages (received, id);

CREATE TABLE relay_deliveries (
	id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	message_id   bigint      NOT NULL REFERENCES relay_messages (id) ON DELETE CASCADE,
	domain       text COLLATE "C" NOT NULL CHECK (domain <> ''),
	next_attempt timestamptz, -- NULL once no recipient is pending
	attempts     integer     NOT NULL DEFAULT 0,
	last_error   text        NOT NULL DEFAULT '',
	owner        text,        -- holds the lease until lease_until
	lease_until  timestamptz,
	UNIQUE (message_id, domain)
);
CREATE INDEX relay_deliveries_due ON relay_deliveries (next_attempt, id) WHERE next_attempt IS NOT NULL;
CREATE INDEX relay_deliveries_domain ON relay_deliveries (domain, next_attempt) WHERE next_attempt IS NOT NULL;

CREATE TABLE relay_recipients (
	message_id  bigint  NOT NULL REFERENCES relay_messages (id) ON DELETE CASCADE,
	position    integer NOT NULL, -- order of RCPT TO
	delivery_id bigint  NOT NULL REFERENCES relay_deliveries (id) ON DELETE CASCADE,
	address     text    NOT NULL,
	state       text    NOT NULL CHECK (state IN ('queued', 'deferred', 'delivered', 'failed')),
	attempts    integer NOT NULL DEFAULT 0,
	last_error  text    NOT NULL DEFAULT '',
	PRIMARY KEY (message_id, position)
);
CREATE INDEX relay_recipients_delivery ON relay_recipients (delivery_id);

-- +goose Down
DROP TABLE relay_recipients;
DROP TABLE relay_deliveries;
DROP TABLE relay_messages;
