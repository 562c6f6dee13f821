-- What the household keeps about a paired toy besides its keys: the names record a parent
-- sealed for the toy and the household's devices (who the toy says a message is from, and
-- the toy's own name; the server relays it and cannot read it), when a parent confirmed
-- that the toy speaks the safety number the app shows, and when the toy was last
-- connected. Goes with the toy's device row, so a toy paired again starts afresh.
CREATE TABLE toy_profiles (
    toy_device_id     TEXT PRIMARY KEY NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    names_envelope    BLOB,
    names_updated_at  INTEGER,
    safety_checked_by TEXT,
    safety_checked_at INTEGER,
    last_seen_at      INTEGER
);
