-- Signed releases of the toy's software (docs/UPDATES.md): the manifest and its signature
-- exactly as the release key made them (the server cannot make one), and where the image
-- is in the blob store. One release per board and anti-rollback counter.
CREATE TABLE releases (
    board      TEXT NOT NULL,
    counter    INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    size       INTEGER NOT NULL,
    manifest   BLOB NOT NULL,
    signature  BLOB NOT NULL,
    blob_key   TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (board, counter)
);

-- What each paired toy last said it runs (its `Version` frame), for its parents to see.
-- Goes with the toy's device row.
CREATE TABLE toy_software (
    toy_device_id TEXT PRIMARY KEY NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    board         TEXT NOT NULL,
    version       INTEGER NOT NULL,
    counter       INTEGER NOT NULL,
    reported_at   INTEGER NOT NULL
);
