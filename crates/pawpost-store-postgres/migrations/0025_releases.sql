-- Signed releases of the toy's software (docs/UPDATES.md): the manifest and its signature
-- exactly as the release key made them (the server cannot make one), and where the image
-- is in the blob store. One release per board and anti-rollback counter.
CREATE TABLE releases (
    board      text NOT NULL,
    counter    bigint NOT NULL,
    version    bigint NOT NULL,
    size       bigint NOT NULL,
    manifest   bytea NOT NULL,
    signature  bytea NOT NULL,
    blob_key   text NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (board, counter)
);

-- What each paired toy last said it runs (its `Version` frame), for its parents to see.
-- Goes with the toy's device row.
CREATE TABLE toy_software (
    toy_device_id uuid PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    board         text NOT NULL,
    version       bigint NOT NULL,
    counter       bigint NOT NULL,
    reported_at   timestamptz NOT NULL
);
