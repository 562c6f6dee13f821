-- Links to choose a forgotten password: a random token in the email, kept here only as
-- its SHA-256, used up by its first use, ended by any change of the password (a reset
-- or a change with the current one), and gone with the account.
CREATE TABLE password_resets (
    token_hash bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    account_id uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX password_resets_by_account ON password_resets(account_id);
CREATE INDEX password_resets_by_expiry ON password_resets(expires_at);
