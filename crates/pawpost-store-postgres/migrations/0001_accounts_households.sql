-- Native types: ids are uuid, hashes and keys bytea, times timestamptz. The store writes
-- times truncated to whole milliseconds, the precision the SQLite store keeps, so both
-- backends compare and order alike. Tokens are stored as SHA-256 only.
-- Roles and statuses are text with CHECK constraints rather than enum types: a later
-- migration can widen a CHECK inside a transaction, which ALTER TYPE ... ADD VALUE
-- cannot always do.
CREATE TABLE accounts (
    id            uuid PRIMARY KEY,
    email         text NOT NULL UNIQUE,
    display_name  text NOT NULL,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL,
    locked        boolean NOT NULL DEFAULT false
);

CREATE TABLE sessions (
    id             uuid PRIMARY KEY,
    account_id     uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    token_hash     bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    csrf_token     text NOT NULL,
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    client_address text NOT NULL,
    user_agent     text NOT NULL
);
CREATE INDEX sessions_by_account ON sessions(account_id);
CREATE INDEX sessions_by_expiry ON sessions(expires_at);

CREATE TABLE households (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE memberships (
    household_id uuid NOT NULL REFERENCES households(id) ON DELETE CASCADE,
    account_id   uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    role         text NOT NULL CHECK (role IN ('owner', 'guardian', 'family')),
    status       text NOT NULL CHECK (status IN ('pending', 'approved', 'blocked')),
    joined_at    timestamptz NOT NULL,
    PRIMARY KEY (household_id, account_id)
);
CREATE INDEX memberships_by_account ON memberships(account_id);

CREATE TABLE invitations (
    id           uuid PRIMARY KEY,
    household_id uuid NOT NULL REFERENCES households(id) ON DELETE CASCADE,
    token_hash   bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    role         text NOT NULL CHECK (role IN ('owner', 'guardian', 'family')),
    created_by   uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    used_by      uuid REFERENCES accounts(id) ON DELETE SET NULL,
    used_at      timestamptz
);
CREATE INDEX invitations_by_household ON invitations(household_id);
