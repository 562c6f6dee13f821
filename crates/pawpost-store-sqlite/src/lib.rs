//! The embedded metadata store: one SQLite file, no network port at all.
#![forbid(unsafe_code)]

use async_trait::async_trait;
use pawpost_domain::{
    Account, AccountId, Approval, AuditEntry, AuditRecord, Device, DeviceId, DeviceKind, Email,
    Household, HouseholdId, Invitation, Member, MemberStatus, Membership, Message, PairingClaim,
    PendingPairing, Receipt, ReceiptState, Role, Session, StoredRoster,
};
use pawpost_store::{MetadataStore, Redemption, StoreError, StoreResult};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

/// How long a writer waits for another writer before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections in the pool; SQLite serialises writers anyway.
pub const MAX_CONNECTIONS: u32 = 8;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed, with mode 0600) the database at `url`
    /// (`sqlite://path/to/file.db`) and applies pending migrations.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Backend(format!("bad SQLite URL {url:?}: {e}")))?
            .create_if_missing(true)
            .foreign_keys(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an acknowledged write survives a power cut, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            // Deleted content is overwritten with zeros, not left in free pages.
            .pragma("secure_delete", "ON");
        create_private_file(options.get_filename())?;
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(backend)?;
        MIGRATOR.run(&pool).await.map_err(|e| {
            StoreError::Backend(format!("migrating the SQLite database failed: {e}"))
        })?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// One audit entry, chained to the last: see [`MetadataStore::append_audit`].
    async fn append_audit_to_end(&self, mut record: AuditRecord) -> StoreResult<AuditEntry> {
        record.at = from_ms(ms(record.at))?;
        // IMMEDIATE takes the write lock before reading the chain's end, so that two
        // appends cannot both chain to the same entry.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        let last = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        let (prev_seq, prev_hash) = match last {
            Some(row) => (
                row.try_get::<i64, _>("seq").map_err(backend)? as u64,
                hash_col(&row, "hash")?,
            ),
            None => (0, [0u8; 32]),
        };
        let seq = prev_seq + 1;
        let hash = pawpost_domain::audit::chain_hash(&prev_hash, seq, &record);
        sqlx::query(&format!(
            "INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(seq as i64)
        .bind(ms(record.at))
        .bind(record.actor.map(|a| a.to_string()))
        .bind(record.household.map(|h| h.to_string()))
        .bind(&record.action)
        .bind(&record.target)
        .bind(&record.client)
        .bind(prev_hash.as_slice())
        .bind(hash.as_slice())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(AuditEntry {
            seq,
            record,
            prev_hash,
            hash,
        })
    }

    /// Copies the write-ahead log into the database file and empties it, so that erased
    /// data does not linger in the log either.
    async fn checkpoint(&self) -> StoreResult<()> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

/// SQLite gives its -wal and -shm files the mode of the main file, so making the main
/// file 0600 before SQLite opens it keeps all three private.
fn create_private_file(path: &Path) -> StoreResult<()> {
    if path.as_os_str().is_empty() || path.to_str() == Some(":memory:") || path.exists() {
        return Ok(());
    }
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(|e| StoreError::Backend(format!("cannot create {}: {e}", path.display())))
}

fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn unique_violation(e: sqlx::Error, what: &'static str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => backend(e),
    }
}

fn ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn from_ms(v: i64) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(v as i128 * 1_000_000)
        .map_err(|e| StoreError::Backend(format!("bad timestamp {v}: {e}")))
}

fn uuid_col(row: &SqliteRow, col: &str) -> StoreResult<Uuid> {
    let text: String = row.try_get(col).map_err(backend)?;
    Uuid::parse_str(&text).map_err(|e| StoreError::Backend(format!("bad id in {col}: {e}")))
}

fn hash_col(row: &SqliteRow, col: &str) -> StoreResult<[u8; 32]> {
    let bytes: Vec<u8> = row.try_get(col).map_err(backend)?;
    bytes
        .try_into()
        .map_err(|_| StoreError::Backend(format!("bad hash length in {col}")))
}

fn parse_col<T: FromStr>(row: &SqliteRow, col: &str) -> StoreResult<T>
where
    T::Err: std::fmt::Display,
{
    let text: String = row.try_get(col).map_err(backend)?;
    text.parse()
        .map_err(|e: T::Err| StoreError::Backend(format!("bad value in {col}: {e}")))
}

fn account_row(row: &SqliteRow) -> StoreResult<Account> {
    let email: String = row.try_get("email").map_err(backend)?;
    Ok(Account {
        id: AccountId(uuid_col(row, "id")?),
        email: Email::parse(&email)
            .map_err(|e| StoreError::Backend(format!("bad stored email: {e}")))?,
        display_name: row.try_get("display_name").map_err(backend)?,
        password_hash: row.try_get("password_hash").map_err(backend)?,
        created_at: from_ms(row.try_get("created_at").map_err(backend)?)?,
        locked: row.try_get::<i64, _>("locked").map_err(backend)? != 0,
    })
}

fn session_row(row: &SqliteRow) -> StoreResult<Session> {
    Ok(Session {
        id: uuid_col(row, "id")?,
        account_id: AccountId(uuid_col(row, "account_id")?),
        token_hash: hash_col(row, "token_hash")?,
        csrf_token: row.try_get("csrf_token").map_err(backend)?,
        created_at: from_ms(row.try_get("created_at").map_err(backend)?)?,
        expires_at: from_ms(row.try_get("expires_at").map_err(backend)?)?,
        client_address: row.try_get("client_address").map_err(backend)?,
        user_agent: row.try_get("user_agent").map_err(backend)?,
    })
}

fn household_row(row: &SqliteRow) -> StoreResult<Household> {
    Ok(Household {
        id: HouseholdId(uuid_col(row, "id")?),
        name: row.try_get("name").map_err(backend)?,
        created_at: from_ms(row.try_get("created_at").map_err(backend)?)?,
    })
}

fn membership_row(row: &SqliteRow) -> StoreResult<Membership> {
    Ok(Membership {
        household_id: HouseholdId(uuid_col(row, "household_id")?),
        account_id: AccountId(uuid_col(row, "account_id")?),
        role: parse_col(row, "role")?,
        status: parse_col(row, "status")?,
        joined_at: from_ms(row.try_get("joined_at").map_err(backend)?)?,
    })
}

fn opt_uuid_col(row: &SqliteRow, col: &str) -> StoreResult<Option<Uuid>> {
    let text: Option<String> = row.try_get(col).map_err(backend)?;
    text.map(|t| {
        Uuid::parse_str(&t).map_err(|e| StoreError::Backend(format!("bad id in {col}: {e}")))
    })
    .transpose()
}

fn opt_time_col(row: &SqliteRow, col: &str) -> StoreResult<Option<OffsetDateTime>> {
    let v: Option<i64> = row.try_get(col).map_err(backend)?;
    v.map(from_ms).transpose()
}

fn device_row(row: &SqliteRow) -> StoreResult<Device> {
    Ok(Device {
        id: DeviceId(uuid_col(row, "id")?),
        kind: parse_col::<DeviceKind>(row, "kind")?,
        account_id: opt_uuid_col(row, "account_id")?.map(AccountId),
        household_id: opt_uuid_col(row, "household_id")?.map(HouseholdId),
        identity: row.try_get("identity").map_err(backend)?,
        label: row.try_get("label").map_err(backend)?,
        created_at: from_ms(row.try_get("created_at").map_err(backend)?)?,
    })
}

fn message_row(row: &SqliteRow) -> StoreResult<Message> {
    Ok(Message {
        id: uuid_col(row, "id")?,
        household_id: HouseholdId(uuid_col(row, "household_id")?),
        sender_device: DeviceId(uuid_col(row, "sender_device")?),
        sender_account: opt_uuid_col(row, "sender_account")?.map(AccountId),
        media_type: row.try_get::<i64, _>("media_type").map_err(backend)? as u8,
        duration_ms: row.try_get::<i64, _>("duration_ms").map_err(backend)? as u32,
        envelope_len: row.try_get::<i64, _>("envelope_len").map_err(backend)? as u64,
        created_at: from_ms(row.try_get("created_at").map_err(backend)?)?,
        blob_key: row.try_get("blob_key").map_err(backend)?,
    })
}

const DEVICE_COLUMNS: &str = "id, kind, account_id, household_id, identity, label, created_at";
const MESSAGE_COLUMNS: &str =
    "id, household_id, sender_device, sender_account, media_type, duration_ms, envelope_len, created_at, blob_key";

fn audit_row(row: &SqliteRow) -> StoreResult<AuditEntry> {
    Ok(AuditEntry {
        seq: row.try_get::<i64, _>("seq").map_err(backend)? as u64,
        record: AuditRecord {
            at: from_ms(row.try_get("at").map_err(backend)?)?,
            actor: opt_uuid_col(row, "actor")?.map(AccountId),
            household: opt_uuid_col(row, "household")?.map(HouseholdId),
            action: row.try_get("action").map_err(backend)?,
            target: row.try_get("target").map_err(backend)?,
            client: row.try_get("client").map_err(backend)?,
        },
        prev_hash: hash_col(row, "prev_hash")?,
        hash: hash_col(row, "hash")?,
    })
}

const AUDIT_COLUMNS: &str = "seq, at, actor, household, action, target, client, prev_hash, hash";

const ACCOUNT_COLUMNS: &str = "id, email, display_name, password_hash, created_at, locked";
const SESSION_COLUMNS: &str =
    "id, account_id, token_hash, csrf_token, created_at, expires_at, client_address, user_agent";

#[async_trait]
impl MetadataStore for SqliteStore {
    async fn create_account(&self, a: &Account) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO accounts (id, email, display_name, password_hash, created_at, locked) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(a.id.to_string())
        .bind(a.email.as_str())
        .bind(&a.display_name)
        .bind(&a.password_hash)
        .bind(ms(a.created_at))
        .bind(a.locked as i64)
        .execute(&self.pool)
        .await
        .map_err(|e| unique_violation(e, "an account with this email address"))?;
        Ok(())
    }

    async fn account_by_email(&self, email: &Email) -> StoreResult<Option<Account>> {
        sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE email = ?"
        ))
        .bind(email.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(account_row)
        .transpose()
    }

    async fn accounts(&self) -> StoreResult<Vec<Account>> {
        sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY created_at"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(account_row)
        .collect()
    }

    async fn account_by_id(&self, id: AccountId) -> StoreResult<Option<Account>> {
        sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(account_row)
        .transpose()
    }

    async fn set_password_hash(&self, id: AccountId, password_hash: &str) -> StoreResult<()> {
        let done = sqlx::query("UPDATE accounts SET password_hash = ? WHERE id = ?")
            .bind(password_hash)
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        found(done.rows_affected(), "account")
    }

    async fn set_account_locked(&self, id: AccountId, locked: bool) -> StoreResult<()> {
        let done = sqlx::query("UPDATE accounts SET locked = ? WHERE id = ?")
            .bind(locked as i64)
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        found(done.rows_affected(), "account")
    }

    async fn create_session(&self, s: &Session) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(s.id.to_string())
        .bind(s.account_id.to_string())
        .bind(s.token_hash.as_slice())
        .bind(&s.csrf_token)
        .bind(ms(s.created_at))
        .bind(ms(s.expires_at))
        .bind(&s.client_address)
        .bind(&s.user_agent)
        .execute(&self.pool)
        .await
        .map_err(|e| unique_violation(e, "a session with this token"))?;
        Ok(())
    }

    async fn session_by_token_hash(
        &self,
        token_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> StoreResult<Option<Session>> {
        sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = ? AND expires_at > ?"
        ))
        .bind(token_hash.as_slice())
        .bind(ms(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(session_row)
        .transpose()
    }

    async fn sessions_of(
        &self,
        account: AccountId,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<Session>> {
        sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE account_id = ? AND expires_at > ? ORDER BY created_at DESC"
        ))
        .bind(account.to_string())
        .bind(ms(now))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(session_row)
        .collect()
    }

    async fn delete_session(&self, id: Uuid) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE id = ?")
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn delete_other_sessions(&self, account: AccountId, keep: Uuid) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE account_id = ? AND id <> ?")
            .bind(account.to_string())
            .bind(keep.to_string())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected())
    }

    async fn delete_expired_sessions(&self, now: OffsetDateTime) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?")
            .bind(ms(now))
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected())
    }

    async fn create_household(&self, h: &Household, owner: AccountId) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query("INSERT INTO households (id, name, created_at) VALUES (?, ?, ?)")
            .bind(h.id.to_string())
            .bind(&h.name)
            .bind(ms(h.created_at))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        sqlx::query(
            "INSERT INTO memberships (household_id, account_id, role, status, joined_at) VALUES (?, ?, 'owner', 'approved', ?)",
        )
        .bind(h.id.to_string())
        .bind(owner.to_string())
        .bind(ms(h.created_at))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn household(&self, id: HouseholdId) -> StoreResult<Option<Household>> {
        sqlx::query("SELECT id, name, created_at FROM households WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .as_ref()
            .map(household_row)
            .transpose()
    }

    async fn rename_household(&self, id: HouseholdId, name: &str) -> StoreResult<()> {
        let done = sqlx::query("UPDATE households SET name = ? WHERE id = ?")
            .bind(name)
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        found(done.rows_affected(), "household")
    }

    async fn households_of(&self, account: AccountId) -> StoreResult<Vec<(Household, Membership)>> {
        let rows = sqlx::query(
            "SELECT h.id, h.name, h.created_at, m.household_id, m.account_id, m.role, m.status, m.joined_at \
             FROM memberships m JOIN households h ON h.id = m.household_id \
             WHERE m.account_id = ? ORDER BY h.created_at",
        )
        .bind(account.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|r| Ok((household_row(r)?, membership_row(r)?)))
            .collect()
    }

    async fn membership(
        &self,
        household: HouseholdId,
        account: AccountId,
    ) -> StoreResult<Option<Membership>> {
        sqlx::query(
            "SELECT household_id, account_id, role, status, joined_at FROM memberships WHERE household_id = ? AND account_id = ?",
        )
        .bind(household.to_string())
        .bind(account.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(membership_row)
        .transpose()
    }

    async fn members(&self, household: HouseholdId) -> StoreResult<Vec<Member>> {
        let rows = sqlx::query(
            "SELECT m.household_id, m.account_id, m.role, m.status, m.joined_at, a.display_name, a.email \
             FROM memberships m JOIN accounts a ON a.id = m.account_id \
             WHERE m.household_id = ? ORDER BY m.joined_at",
        )
        .bind(household.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|r| {
                let email: String = r.try_get("email").map_err(backend)?;
                Ok(Member {
                    membership: membership_row(r)?,
                    display_name: r.try_get("display_name").map_err(backend)?,
                    email: Email::parse(&email)
                        .map_err(|e| StoreError::Backend(format!("bad stored email: {e}")))?,
                })
            })
            .collect()
    }

    async fn update_member(
        &self,
        household: HouseholdId,
        account: AccountId,
        role: Role,
        status: MemberStatus,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE memberships SET role = ?, status = ? WHERE household_id = ? AND account_id = ?",
        )
        .bind(role.as_str())
        .bind(status.as_str())
        .bind(household.to_string())
        .bind(account.to_string())
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        found(done.rows_affected(), "membership")
    }

    async fn remove_member(&self, household: HouseholdId, account: AccountId) -> StoreResult<()> {
        let done = sqlx::query("DELETE FROM memberships WHERE household_id = ? AND account_id = ?")
            .bind(household.to_string())
            .bind(account.to_string())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        found(done.rows_affected(), "membership")
    }

    async fn create_invitation(&self, i: &Invitation) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO invitations (id, household_id, token_hash, role, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(i.id.to_string())
        .bind(i.household_id.to_string())
        .bind(i.token_hash.as_slice())
        .bind(i.role.as_str())
        .bind(i.created_by.to_string())
        .bind(ms(i.created_at))
        .bind(ms(i.expires_at))
        .execute(&self.pool)
        .await
        .map_err(|e| unique_violation(e, "an invitation with this token"))?;
        Ok(())
    }

    async fn redeem_invitation(
        &self,
        token_hash: &[u8; 32],
        account: AccountId,
        now: OffsetDateTime,
    ) -> StoreResult<Redemption> {
        // BEGIN IMMEDIATE would be ideal; the conditional UPDATE below is the real guard:
        // only one redeemer can flip `used_at` from NULL.
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let Some(row) = sqlx::query(
            "SELECT id, household_id, role, expires_at, used_at FROM invitations WHERE token_hash = ?",
        )
        .bind(token_hash.as_slice())
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?
        else {
            return Ok(Redemption::Unknown);
        };
        let household = HouseholdId(uuid_col(&row, "household_id")?);
        let role: Role = parse_col(&row, "role")?;
        let used_at: Option<i64> = row.try_get("used_at").map_err(backend)?;
        let expires_at: i64 = row.try_get("expires_at").map_err(backend)?;
        if used_at.is_some() || expires_at <= ms(now) {
            return Ok(Redemption::Spent);
        }
        let existing =
            sqlx::query("SELECT 1 FROM memberships WHERE household_id = ? AND account_id = ?")
                .bind(household.to_string())
                .bind(account.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        if existing.is_some() {
            return Ok(Redemption::AlreadyMember(household));
        }
        let spent = sqlx::query(
            "UPDATE invitations SET used_by = ?, used_at = ? WHERE token_hash = ? AND used_at IS NULL",
        )
        .bind(account.to_string())
        .bind(ms(now))
        .bind(token_hash.as_slice())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if spent.rows_affected() != 1 {
            return Ok(Redemption::Spent);
        }
        let membership = Membership {
            household_id: household,
            account_id: account,
            role,
            status: MemberStatus::Pending,
            joined_at: now,
        };
        sqlx::query(
            "INSERT INTO memberships (household_id, account_id, role, status, joined_at) VALUES (?, ?, ?, 'pending', ?)",
        )
        .bind(household.to_string())
        .bind(account.to_string())
        .bind(role.as_str())
        .bind(ms(now))
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_violation(e, "a membership in this household"))?;
        tx.commit().await.map_err(backend)?;
        Ok(Redemption::Joined(membership))
    }

    async fn create_device(&self, d: &Device) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO devices ({DEVICE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(d.id.to_string())
        .bind(d.kind.as_str())
        .bind(d.account_id.map(|a| a.to_string()))
        .bind(d.household_id.map(|h| h.to_string()))
        .bind(&d.identity)
        .bind(&d.label)
        .bind(ms(d.created_at))
        .execute(&self.pool)
        .await
        .map_err(|e| unique_violation(e, "a device with this id"))?;
        Ok(())
    }

    async fn device(&self, id: DeviceId) -> StoreResult<Option<Device>> {
        sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(device_row)
        .transpose()
    }

    async fn devices_of_account(&self, account: AccountId) -> StoreResult<Vec<Device>> {
        sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE account_id = ? ORDER BY created_at"
        ))
        .bind(account.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(device_row)
        .collect()
    }

    async fn devices_of_household(&self, household: HouseholdId) -> StoreResult<Vec<Device>> {
        sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE household_id = ?1 \
             OR account_id IN (SELECT account_id FROM memberships WHERE household_id = ?1 AND status = 'approved') \
             ORDER BY created_at"
        ))
        .bind(household.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(device_row)
        .collect()
    }

    async fn latest_roster(&self, household: HouseholdId) -> StoreResult<Option<StoredRoster>> {
        let row = sqlx::query(
            "SELECT version, signed, created_at FROM rosters WHERE household_id = ? ORDER BY version DESC LIMIT 1",
        )
        .bind(household.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(|r| {
            Ok(StoredRoster {
                household_id: household,
                version: r.try_get::<i64, _>("version").map_err(backend)? as u64,
                signed: r.try_get("signed").map_err(backend)?,
                created_at: from_ms(r.try_get("created_at").map_err(backend)?)?,
            })
        })
        .transpose()
    }

    async fn insert_roster(&self, r: &StoredRoster) -> StoreResult<()> {
        let version = i64::try_from(r.version)
            .map_err(|_| StoreError::Backend(format!("roster version {} too large", r.version)))?;
        sqlx::query(
            "INSERT INTO rosters (household_id, version, signed, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(r.household_id.to_string())
        .bind(version)
        .bind(&r.signed)
        .bind(ms(r.created_at))
        .execute(&self.pool)
        .await
        .map_err(|e| unique_violation(e, "a roster with this version"))?;
        Ok(())
    }

    async fn insert_message(&self, m: &Message, recipients: &[DeviceId]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query(&format!(
            "INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(m.id.to_string())
        .bind(m.household_id.to_string())
        .bind(m.sender_device.to_string())
        .bind(m.sender_account.map(|a| a.to_string()))
        .bind(i64::from(m.media_type))
        .bind(i64::from(m.duration_ms))
        .bind(m.envelope_len as i64)
        .bind(ms(m.created_at))
        .bind(&m.blob_key)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_violation(e, "a message with this id"))?;
        for device in recipients {
            sqlx::query("INSERT OR IGNORE INTO receipts (message_id, device_id) VALUES (?, ?)")
                .bind(m.id.to_string())
                .bind(device.to_string())
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn message(&self, id: Uuid) -> StoreResult<Option<Message>> {
        sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(message_row)
        .transpose()
    }

    async fn receipts(&self, message: Uuid) -> StoreResult<Vec<Receipt>> {
        sqlx::query("SELECT device_id, delivered_at, played_at FROM receipts WHERE message_id = ? ORDER BY device_id")
            .bind(message.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(|r| {
                Ok(Receipt {
                    device_id: DeviceId(uuid_col(r, "device_id")?),
                    delivered_at: opt_time_col(r, "delivered_at")?,
                    played_at: opt_time_col(r, "played_at")?,
                })
            })
            .collect()
    }

    async fn messages_for_account(
        &self,
        household: HouseholdId,
        account: AccountId,
    ) -> StoreResult<Vec<Message>> {
        sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE household_id = ?1 AND (sender_account = ?2 OR id IN \
             (SELECT r.message_id FROM receipts r JOIN devices d ON d.id = r.device_id WHERE d.account_id = ?2)) \
             ORDER BY created_at, id"
        ))
        .bind(household.to_string())
        .bind(account.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(message_row)
        .collect()
    }

    async fn messages_of_household(&self, household: HouseholdId) -> StoreResult<Vec<Message>> {
        sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE household_id = ? ORDER BY created_at, id"
        ))
        .bind(household.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(message_row)
        .collect()
    }

    async fn set_receipt(
        &self,
        message: Uuid,
        device: DeviceId,
        state: ReceiptState,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        let sql = match state {
            ReceiptState::Delivered => {
                "UPDATE receipts SET delivered_at = COALESCE(delivered_at, ?1) WHERE message_id = ?2 AND device_id = ?3"
            }
            ReceiptState::Played => {
                "UPDATE receipts SET delivered_at = COALESCE(delivered_at, ?1), played_at = COALESCE(played_at, ?1) \
                 WHERE message_id = ?2 AND device_id = ?3"
            }
        };
        let done = sqlx::query(sql)
            .bind(ms(at))
            .bind(message.to_string())
            .bind(device.to_string())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        found(done.rows_affected(), "receipt")
    }

    async fn update_device_identity(&self, id: DeviceId, identity: &[u8]) -> StoreResult<()> {
        let done = sqlx::query("UPDATE devices SET identity = ? WHERE id = ?")
            .bind(identity)
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        found(done.rows_affected(), "device")
    }

    async fn rosters_since(
        &self,
        household: HouseholdId,
        version: u64,
    ) -> StoreResult<Vec<StoredRoster>> {
        let rows = sqlx::query(
            "SELECT version, signed, created_at FROM rosters WHERE household_id = ? AND version > ? ORDER BY version",
        )
        .bind(household.to_string())
        .bind(i64::try_from(version).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|r| {
                Ok(StoredRoster {
                    household_id: household,
                    version: r.try_get::<i64, _>("version").map_err(backend)? as u64,
                    signed: r.try_get("signed").map_err(backend)?,
                    created_at: from_ms(r.try_get("created_at").map_err(backend)?)?,
                })
            })
            .collect()
    }

    async fn undelivered_for(&self, device: DeviceId) -> StoreResult<Vec<Message>> {
        sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id IN \
             (SELECT message_id FROM receipts WHERE device_id = ? AND delivered_at IS NULL) \
             ORDER BY created_at, id"
        ))
        .bind(device.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(message_row)
        .collect()
    }

    async fn create_pairing(&self, p: &PendingPairing) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let live = sqlx::query(
            "SELECT 1 FROM pairings WHERE code = ? AND claimed_at IS NULL AND expires_at > ?",
        )
        .bind(&p.code)
        .bind(ms(p.created_at))
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        if live.is_some() {
            return Err(StoreError::Conflict("a live pairing with this code"));
        }
        sqlx::query(
            "INSERT INTO pairings (code, device_id, identity, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&p.code)
        .bind(p.device_id.to_string())
        .bind(&p.identity)
        .bind(ms(p.created_at))
        .bind(ms(p.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        // Spent and expired pairings are of no further use.
        sqlx::query("DELETE FROM pairings WHERE expires_at <= ? OR claimed_at IS NOT NULL")
            .bind(ms(p.created_at))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn claim_pairing(
        &self,
        code: &str,
        now: OffsetDateTime,
        max_wrong_tries: u32,
    ) -> StoreResult<PairingClaim> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let claimed = sqlx::query(
            "UPDATE pairings SET claimed_at = ?1 WHERE code = ?2 AND claimed_at IS NULL AND expires_at > ?1 \
             AND wrong_tries < ?3 RETURNING code, device_id, identity, created_at, expires_at",
        )
        .bind(ms(now))
        .bind(code)
        .bind(i64::from(max_wrong_tries))
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let result = match claimed {
            Some(row) => PairingClaim::Claimed(PendingPairing {
                code: row.try_get("code").map_err(backend)?,
                device_id: DeviceId(uuid_col(&row, "device_id")?),
                identity: row.try_get("identity").map_err(backend)?,
                created_at: from_ms(row.try_get("created_at").map_err(backend)?)?,
                expires_at: from_ms(row.try_get("expires_at").map_err(backend)?)?,
            }),
            None => {
                sqlx::query("UPDATE pairings SET wrong_tries = wrong_tries + 1 WHERE claimed_at IS NULL AND expires_at > ?")
                    .bind(ms(now))
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                PairingClaim::NoMatch
            }
        };
        tx.commit().await.map_err(backend)?;
        Ok(result)
    }

    async fn insert_approval(&self, a: &Approval) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO approvals (message_id, approver, signature, created_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(a.message_id.to_string())
        .bind(a.approver.to_string())
        .bind(&a.signature)
        .bind(ms(a.created_at))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn approvals_pending_for(&self, device: DeviceId) -> StoreResult<Vec<Approval>> {
        sqlx::query(
            "SELECT a.message_id, a.approver, a.signature, a.created_at FROM approvals a \
             JOIN receipts r ON r.message_id = a.message_id \
             WHERE r.device_id = ? AND r.played_at IS NULL ORDER BY a.created_at",
        )
        .bind(device.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(|r| {
            Ok(Approval {
                message_id: uuid_col(r, "message_id")?,
                approver: DeviceId(uuid_col(r, "approver")?),
                signature: r.try_get("signature").map_err(backend)?,
                created_at: from_ms(r.try_get("created_at").map_err(backend)?)?,
            })
        })
        .collect()
    }

    async fn delete_account(&self, account: AccountId) -> StoreResult<Vec<String>> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let keys: Vec<String> =
            sqlx::query_scalar("SELECT blob_key FROM messages WHERE sender_account = ?")
                .bind(account.to_string())
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?;
        sqlx::query("DELETE FROM messages WHERE sender_account = ?")
            .bind(account.to_string())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        // Receipts name devices, not accounts: remove the account's devices' receipts too.
        sqlx::query(
            "DELETE FROM receipts WHERE device_id IN (SELECT id FROM devices WHERE account_id = ?)",
        )
        .bind(account.to_string())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        let done = sqlx::query("DELETE FROM accounts WHERE id = ?")
            .bind(account.to_string())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        found(done.rows_affected(), "account")?;
        tx.commit().await.map_err(backend)?;
        self.checkpoint().await?;
        Ok(keys)
    }

    async fn delete_household(&self, household: HouseholdId) -> StoreResult<Vec<String>> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let keys: Vec<String> =
            sqlx::query_scalar("SELECT blob_key FROM messages WHERE household_id = ?")
                .bind(household.to_string())
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?;
        let done = sqlx::query("DELETE FROM households WHERE id = ?")
            .bind(household.to_string())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        found(done.rows_affected(), "household")?;
        tx.commit().await.map_err(backend)?;
        self.checkpoint().await?;
        Ok(keys)
    }

    async fn households_with_messages(&self) -> StoreResult<Vec<HouseholdId>> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT DISTINCT household_id FROM messages")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        ids.iter()
            .map(|t| {
                Uuid::parse_str(t)
                    .map(HouseholdId)
                    .map_err(|e| StoreError::Backend(format!("bad household id: {e}")))
            })
            .collect()
    }

    async fn played_messages_before(
        &self,
        household: HouseholdId,
        cutoff: OffsetDateTime,
    ) -> StoreResult<Vec<Message>> {
        sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE household_id = ? AND id IN \
             (SELECT message_id FROM receipts GROUP BY message_id HAVING MIN(played_at) < ?)"
        ))
        .bind(household.to_string())
        .bind(ms(cutoff))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(message_row)
        .collect()
    }

    async fn unplayed_messages_before(&self, cutoff: OffsetDateTime) -> StoreResult<Vec<Message>> {
        sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE created_at < ? AND id NOT IN \
             (SELECT message_id FROM receipts WHERE played_at IS NOT NULL)"
        ))
        .bind(ms(cutoff))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(message_row)
        .collect()
    }

    async fn delete_messages(&self, ids: &[Uuid]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        for id in ids {
            sqlx::query("DELETE FROM messages WHERE id = ?")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn append_audit(&self, record: &AuditRecord) -> StoreResult<AuditEntry> {
        // The append runs to its end even when the caller stops waiting (a client that
        // hangs up, a timeout): a transaction given up half way would stay open on its
        // pooled connection, keeping the write lock, and what that connection wrote
        // afterwards would be acknowledged but never committed.
        let store = self.clone();
        let record = record.clone();
        tokio::spawn(async move { store.append_audit_to_end(record).await })
            .await
            .map_err(|e| {
                StoreError::Backend(format!("appending to the audit trail stopped: {e}"))
            })?
    }

    async fn audit_entries(&self, after_seq: u64, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?"
        ))
        .bind(i64::try_from(after_seq).unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(audit_row)
        .collect()
    }

    async fn account_audit(&self, account: AccountId, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE actor = ? ORDER BY seq DESC LIMIT ?"
        ))
        .bind(account.to_string())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(audit_row)
        .collect()
    }

    async fn household_audit(
        &self,
        household: HouseholdId,
        limit: u32,
    ) -> StoreResult<Vec<AuditEntry>> {
        sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE household = ? ORDER BY seq DESC LIMIT ?"
        ))
        .bind(household.to_string())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(audit_row)
        .collect()
    }
}

fn found(rows: u64, what: &'static str) -> StoreResult<()> {
    if rows == 0 {
        Err(StoreError::NotFound(what))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn sqlite_passes_the_metadata_store_suite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("pawpost.db").display());
        let store = SqliteStore::open(&url).await.unwrap();
        pawpost_store::testsuite::metadata_store(&store).await;
    }

    #[tokio::test]
    async fn the_database_file_is_private_and_reopens_with_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pawpost.db");
        let url = format!("sqlite://{}", path.display());
        let store = SqliteStore::open(&url).await.unwrap();
        let household = Household {
            id: HouseholdId::new(),
            name: "kept".into(),
            created_at: OffsetDateTime::now_utc(),
        };
        let owner = Account {
            id: AccountId::new(),
            email: Email::parse("o@example.org").unwrap(),
            display_name: "O".into(),
            password_hash: "h".into(),
            created_at: OffsetDateTime::now_utc(),
            locked: false,
        };
        store.create_account(&owner).await.unwrap();
        store.create_household(&household, owner.id).await.unwrap();
        store.pool().close().await;
        for file in ["pawpost.db", "pawpost.db-wal", "pawpost.db-shm"] {
            let p = dir.path().join(file);
            if p.exists() {
                assert_eq!(
                    std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                    0o600,
                    "{file}"
                );
            }
        }
        let reopened = SqliteStore::open(&url).await.unwrap();
        assert_eq!(
            reopened
                .household(household.id)
                .await
                .unwrap()
                .unwrap()
                .name,
            "kept"
        );
    }

    /// A request given up while its audit entry waits for the write lock (a client that
    /// hangs up, a timeout) must not leave a transaction open on a pooled connection:
    /// that connection would keep the write lock, every other writer would fail with
    /// "database is locked", and what it wrote afterwards would never be committed.
    #[tokio::test]
    async fn an_audit_append_given_up_while_waiting_for_the_lock_leaves_no_transaction_open() {
        use sqlx::{ConnectOptions, Connection};
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("pawpost.db").display());
        let store = SqliteStore::open(&url).await.unwrap();
        // Another writer holds the lock; it waits for nobody (no busy timeout).
        let mut other = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .busy_timeout(Duration::ZERO)
            .connect()
            .await
            .unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut other)
            .await
            .unwrap();
        let record = AuditRecord {
            at: OffsetDateTime::now_utc(),
            actor: None,
            household: None,
            action: "given_up".into(),
            target: None,
            client: None,
        };
        let given_up =
            tokio::time::timeout(Duration::from_millis(200), store.append_audit(&record)).await;
        assert!(given_up.is_err(), "the append waited for the lock");
        sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
        // The abandoned connection goes back to the pool once its worker is done with it.
        let deadline = tokio::time::Instant::now() + BUSY_TIMEOUT * 2;
        while store.pool().num_idle() < store.pool().size() as usize {
            assert!(
                tokio::time::Instant::now() < deadline,
                "a connection never came back"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut other)
            .await
            .expect("no pooled connection still holds the write lock");
        sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
        let entry = store.append_audit(&record).await.unwrap();
        let committed: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
            .fetch_one(&mut other)
            .await
            .unwrap();
        assert_eq!(
            committed as u64, entry.seq,
            "every entry the store returned is committed, and the chain has no gap"
        );
        other.close().await.unwrap();
    }
}
