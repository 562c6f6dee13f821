-- Public keys only: private keys never reach the server.
CREATE TABLE devices (
    id           TEXT PRIMARY KEY NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('member', 'toy')),
    account_id   TEXT REFERENCES accounts(id) ON DELETE CASCADE,
    household_id TEXT REFERENCES households(id) ON DELETE CASCADE,
    identity     BLOB NOT NULL,
    label        TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX devices_by_account ON devices(account_id);
CREATE INDEX devices_by_household ON devices(household_id);

-- Each version as its owner signed it; the server checked the chain before storing.
CREATE TABLE rosters (
    household_id TEXT NOT NULL REFERENCES households(id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    signed       BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (household_id, version)
);

-- Cleartext header fields only; the envelope (ciphertext) is in the blob store.
CREATE TABLE messages (
    id             TEXT PRIMARY KEY NOT NULL,
    household_id   TEXT NOT NULL REFERENCES households(id) ON DELETE CASCADE,
    sender_device  TEXT NOT NULL,
    sender_account TEXT REFERENCES accounts(id) ON DELETE CASCADE,
    media_type     INTEGER NOT NULL,
    duration_ms    INTEGER NOT NULL,
    envelope_len   INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    blob_key       TEXT NOT NULL
);
CREATE INDEX messages_by_household ON messages(household_id, created_at);

CREATE TABLE receipts (
    message_id   TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    device_id    TEXT NOT NULL,
    delivered_at INTEGER,
    played_at    INTEGER,
    PRIMARY KEY (message_id, device_id)
);
CREATE INDEX receipts_by_device ON receipts(device_id);
