-- Times are unix milliseconds (UTC). Ids are UUIDv7 text. Tokens are stored as SHA-256 only.
CREATE TABLE accounts (
    id            TEXT PRIMARY KEY NOT NULL,
    email         TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    locked        INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE sessions (
    id             TEXT PRIMARY KEY NOT NULL,
    account_id     TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    token_hash     BLOB NOT NULL UNIQUE,
    csrf_token     TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    client_address TEXT NOT NULL,
    user_agent     TEXT NOT NULL
);
CREATE INDEX sessions_by_account ON sessions(account_id);
CREATE INDEX sessions_by_expiry ON sessions(expires_at);

CREATE TABLE households (
    id         TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE memberships (
    household_id TEXT NOT NULL REFERENCES households(id) ON DELETE CASCADE,
    account_id   TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    role         TEXT NOT NULL CHECK (role IN ('owner', 'guardian', 'family')),
    status       TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'blocked')),
    joined_at    INTEGER NOT NULL,
    PRIMARY KEY (household_id, account_id)
);
CREATE INDEX memberships_by_account ON memberships(account_id);

CREATE TABLE invitations (
    id           TEXT PRIMARY KEY NOT NULL,
    household_id TEXT NOT NULL REFERENCES households(id) ON DELETE CASCADE,
    token_hash   BLOB NOT NULL UNIQUE,
    role         TEXT NOT NULL CHECK (role IN ('owner', 'guardian', 'family')),
    created_by   TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_by      TEXT REFERENCES accounts(id) ON DELETE SET NULL,
    used_at      INTEGER
);
CREATE INDEX invitations_by_household ON invitations(household_id);
