-- An owner's signed word that a toy leaves its household, kept for a toy that was off
-- when it was removed (or its household deleted): the toy gets it when it next
-- authenticates with the keys kept here, since its device row is gone. No foreign key:
-- the farewell outlives the household. Replaced when the same toy is removed again,
-- deleted when that device id is paired again, pruned by the retention sweep.
CREATE TABLE toy_farewells (
    toy_device_id    uuid PRIMARY KEY,
    identity         bytea NOT NULL,
    household_id     uuid NOT NULL,
    signer_device_id uuid NOT NULL,
    signature        bytea NOT NULL CHECK (octet_length(signature) = 64),
    created_at       timestamptz NOT NULL
);
CREATE INDEX toy_farewells_by_age ON toy_farewells(created_at);
