-- A pairing code a parent enters only claims the toy for a household; the pairing is
-- confirmed by a press of the toy's paw while it speaks the claim's number. Wrong codes
-- no longer count against live pairings: they burned every other family's code.
-- Pending pairings live ten minutes, so none is carried over.
DROP TABLE pairings;
CREATE TABLE pairings (
    code         TEXT NOT NULL,
    device_id    TEXT NOT NULL,
    identity     BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    household_id TEXT,
    claimed_by   TEXT,
    confirmation TEXT,
    confirm_by   INTEGER
);
CREATE UNIQUE INDEX pairings_by_code ON pairings(code);
CREATE INDEX pairings_by_device ON pairings(device_id);
CREATE INDEX pairings_by_expiry ON pairings(expires_at);
