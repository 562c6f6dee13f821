-- Which notification mails a person switched off or on; a kind without a row is on.
-- Gone with the account.
CREATE TABLE notification_settings (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    PRIMARY KEY (account_id, kind)
);
-- Keys the server made for itself, shared by every process on the database: the one
-- that signs the unsubscribe links in notification mails. Never sent to anyone.
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
);
