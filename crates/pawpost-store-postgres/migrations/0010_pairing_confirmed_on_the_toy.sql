-- A pairing code a parent enters only claims the toy for a household; the pairing is
-- confirmed by a press of the toy's paw while it speaks the claim's number. Wrong codes
-- no longer count against live pairings: they burned every other family's code.
-- Pending pairings live ten minutes, so none is carried over.
DROP TABLE pairings;
CREATE TABLE pairings (
    code         text NOT NULL,
    device_id    uuid NOT NULL,
    identity     bytea NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    household_id uuid,
    claimed_by   uuid,
    confirmation text,
    confirm_by   timestamptz
);
CREATE UNIQUE INDEX pairings_by_code ON pairings(code);
CREATE INDEX pairings_by_device ON pairings(device_id);
CREATE INDEX pairings_by_expiry ON pairings(expires_at);
