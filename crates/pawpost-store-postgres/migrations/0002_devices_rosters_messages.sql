-- Public keys only: private keys never reach the server.
CREATE TABLE devices (
    id           uuid PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('member', 'toy')),
    account_id   uuid REFERENCES accounts(id) ON DELETE CASCADE,
    household_id uuid REFERENCES households(id) ON DELETE CASCADE,
    identity     bytea NOT NULL,
    label        text NOT NULL,
    created_at   timestamptz NOT NULL
);
CREATE INDEX devices_by_account ON devices(account_id);
CREATE INDEX devices_by_household ON devices(household_id);

-- Each version as its owner signed it; the server checked the chain before storing.
-- Versions are u64 in Rust; bigint holds those up to i64::MAX and the store refuses more.
CREATE TABLE rosters (
    household_id uuid NOT NULL REFERENCES households(id) ON DELETE CASCADE,
    version      bigint NOT NULL CHECK (version >= 0),
    signed       bytea NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (household_id, version)
);

-- Cleartext header fields only; the envelope (ciphertext) is in the blob store.
-- The CHECKs hold each column to the range of its Rust type (u8, u32, u64).
CREATE TABLE messages (
    id             uuid PRIMARY KEY,
    household_id   uuid NOT NULL REFERENCES households(id) ON DELETE CASCADE,
    sender_device  uuid NOT NULL,
    sender_account uuid REFERENCES accounts(id) ON DELETE CASCADE,
    media_type     smallint NOT NULL CHECK (media_type BETWEEN 0 AND 255),
    duration_ms    bigint NOT NULL CHECK (duration_ms BETWEEN 0 AND 4294967295),
    envelope_len   bigint NOT NULL CHECK (envelope_len >= 0),
    created_at     timestamptz NOT NULL,
    blob_key       text NOT NULL
);
CREATE INDEX messages_by_household ON messages(household_id, created_at);

CREATE TABLE receipts (
    message_id   uuid NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    device_id    uuid NOT NULL,
    delivered_at timestamptz,
    played_at    timestamptz,
    PRIMARY KEY (message_id, device_id)
);
CREATE INDEX receipts_by_device ON receipts(device_id);
