-- Confirming an account's email address: when a link sent to it was opened (NULL until
-- then), and the links themselves: a random token in the email, kept here only as its
-- SHA-256, used up by its first use, ended once the address is confirmed (by such a
-- link or by a link to choose a new password), and gone with the account.
ALTER TABLE accounts ADD COLUMN email_verified_at timestamptz;
CREATE TABLE email_verifications (
    token_hash bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    account_id uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX email_verifications_by_account ON email_verifications(account_id, created_at);
