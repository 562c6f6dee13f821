-- Confirming an account's email address: when a link sent to it was opened (NULL until
-- then), and the links themselves: a random token in the email, kept here only as its
-- SHA-256, used up by its first use, ended once the address is confirmed (by such a
-- link or by a link to choose a new password), and gone with the account.
ALTER TABLE accounts ADD COLUMN email_verified_at INTEGER;
CREATE TABLE email_verifications (
    token_hash BLOB PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX email_verifications_by_account ON email_verifications(account_id, created_at);
