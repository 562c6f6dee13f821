-- Passkeys (WebAuthn credentials) an account signs in with, besides or instead of a
-- password. `credential` is the server's record of one (its public key and signature
-- counter, as webauthn-rs writes it); nothing in it lets anyone sign in. Recovery
-- material is an opaque blob the browser encrypted with a key only the passkey can
-- give it (the PRF extension): the server keeps ciphertext only. All of it goes with
-- the account.
CREATE TABLE passkeys (
    id uuid PRIMARY KEY,
    account_id uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    credential_id bytea NOT NULL UNIQUE,
    label text NOT NULL,
    credential text NOT NULL,
    created_at timestamptz NOT NULL,
    last_used_at timestamptz,
    recovery_material bytea
);
CREATE INDEX passkeys_by_account ON passkeys(account_id, created_at);

-- A passkey ceremony between its two requests (options sent, the browser's answer
-- awaited): the challenge and what the server expects, used up by the answer, and
-- swept once expired. `account_id` is set when a signed-in account adds a passkey.
CREATE TABLE passkey_ceremonies (
    id uuid PRIMARY KEY,
    purpose text NOT NULL,
    account_id uuid REFERENCES accounts(id) ON DELETE CASCADE,
    state text NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX passkey_ceremonies_by_expiry ON passkey_ceremonies(expires_at);
