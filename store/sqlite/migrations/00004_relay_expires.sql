-- The relay's deliverer asks for expired mail on every pass (every
-- accepted message wakes it): with this index the question reads the
-- messages that have expired, not a row of every message in the queue.

-- +goose Up
CREATE INDEX relay_messages_expires ON relay_messages (expires);

-- +goose Down
DROP INDEX relay_messages_expires;
