-- A parent's signed release of a held message ("parent approves before the toy plays").
CREATE TABLE approvals (
    message_id TEXT PRIMARY KEY NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    approver   TEXT NOT NULL,
    signature  BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
