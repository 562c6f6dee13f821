-- The audit trail: append-only, each entry hash-chained to the one before it.
CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY NOT NULL,
    at        INTEGER NOT NULL,
    actor     TEXT,
    household TEXT,
    action    TEXT NOT NULL,
    target    TEXT,
    client    TEXT,
    prev_hash BLOB NOT NULL,
    hash      BLOB NOT NULL
);
CREATE INDEX audit_by_household ON audit_log(household, seq);
