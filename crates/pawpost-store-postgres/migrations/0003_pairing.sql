-- A toy's request for a pairing code. Codes are six digits: short-lived, single use, and
-- burned by wrong guesses (wrong_tries counts every wrong code entered while it is live).
CREATE TABLE pairings (
    code        text NOT NULL,
    device_id   uuid NOT NULL,
    identity    bytea NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    wrong_tries bigint NOT NULL DEFAULT 0,
    claimed_at  timestamptz
);
-- At most one unclaimed pairing per code, so a claim can never match two toys. The store
-- deletes expired ones with a code before reusing it.
CREATE UNIQUE INDEX pairings_unclaimed_code ON pairings(code) WHERE claimed_at IS NULL;
CREATE INDEX pairings_by_expiry ON pairings(expires_at);
