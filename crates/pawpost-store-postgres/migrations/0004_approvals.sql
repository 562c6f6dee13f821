-- A parent's signed release of a held message ("parent approves before the toy plays").
CREATE TABLE approvals (
    message_id uuid PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    approver   uuid NOT NULL,
    signature  bytea NOT NULL,
    created_at timestamptz NOT NULL
);
