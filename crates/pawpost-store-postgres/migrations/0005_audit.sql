-- The audit trail: append-only, each entry hash-chained to the one before it.
CREATE TABLE audit_log (
    seq       bigint PRIMARY KEY CHECK (seq > 0),
    at        timestamptz NOT NULL,
    actor     uuid,
    household uuid,
    action    text NOT NULL,
    target    text,
    client    text,
    prev_hash bytea NOT NULL,
    hash      bytea NOT NULL
);
CREATE INDEX audit_by_household ON audit_log(household, seq);
