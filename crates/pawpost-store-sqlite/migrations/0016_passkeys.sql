-- Passkeys (WebAuthn credentials) an account signs in with, besides or instead of a
-- password. `credential` is the server's record of one (its public key and signature
-- counter, as webauthn-rs writes it); nothing in it lets anyone sign in. Recovery
-- material is an opaque blob the browser encrypted with a key only the passkey can
-- give it (the PRF extension): the server keeps ciphertext only. All of it goes with
-- the account.
CREATE TABLE passkeys (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    credential_id BLOB NOT NULL UNIQUE,
    label TEXT NOT NULL,
    credential TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    recovery_material BLOB
);
CREATE INDEX passkeys_by_account ON passkeys(account_id, created_at);

-- A passkey ceremony between its two requests (options sent, the browser's answer
-- awaited): the challenge and what the server expects, used up by the answer, and
-- swept once expired. `account_id` is set when a signed-in account adds a passkey.
CREATE TABLE passkey_ceremonies (
    id TEXT PRIMARY KEY NOT NULL,
    purpose TEXT NOT NULL,
    account_id TEXT REFERENCES accounts(id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX passkey_ceremonies_by_expiry ON passkey_ceremonies(expires_at);
