-- A toy's request for a pairing code. Codes are six digits: short-lived, single use, and
-- burned by wrong guesses (wrong_tries counts every wrong code entered while it is live).
CREATE TABLE pairings (
    code        TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    identity    BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    wrong_tries INTEGER NOT NULL DEFAULT 0,
    claimed_at  INTEGER
);
CREATE INDEX pairings_by_code ON pairings(code);
CREATE INDEX pairings_by_expiry ON pairings(expires_at);
