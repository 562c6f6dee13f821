//! The embedded metadata store: one SQLite file, no network port at all.
//!
//! Each concern keeps its queries in a module of its own (accounts and sessions,
//! households and invitations, devices and pairing, messages, privacy, audit); the rows
//! they read, and how those become domain values, are in `rows`.
#![forbid(unsafe_code)]

#[macro_use]
mod rows;
mod accounts;
mod audit;
mod devices;
mod households;
mod messages;
mod privacy;
#[cfg(test)]
mod tests;

use async_trait::async_trait;
use pawpost_domain::{
    Account, AccountId, Approval, AuditEntry, AuditRecord, Device, DeviceId, Email, Household,
    HouseholdId, Invitation, Member, MemberStatus, Membership, Message, PairingClaim,
    PairingClaimant, PairingCreated, PendingPairing, Receipt, ReceiptState, Role, Session,
    StoredRoster,
};
use pawpost_store::stored;
use pawpost_store::{MetadataStore, RecentInvitations, Redemption, StoreError, StoreResult};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{FromRow, Sqlite, SqlitePool};
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

/// Copies the write-ahead log into the database file and empties it, so that erased
/// data does not linger in the log either.
async fn checkpoint(pool: &SqlitePool) -> StoreResult<()> {
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(pool)
        .await
        .map_err(backend)?;
    Ok(())
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

/// A `SELECT` whose rows are read as `R`.
type Select<'q, R> = sqlx::query::QueryAs<'q, Sqlite, R, SqliteArguments<'q>>;

/// Runs `query` and turns every row into its domain value.
async fn fetch_all<R, T>(pool: &SqlitePool, query: Select<'_, R>) -> StoreResult<Vec<T>>
where
    R: for<'r> FromRow<'r, SqliteRow> + TryInto<T, Error = StoreError> + Send + Unpin,
{
    stored::all(query.fetch_all(pool).await.map_err(backend)?)
}

/// Runs `query` and turns the row it found, if any, into its domain value.
async fn fetch_optional<R, T>(pool: &SqlitePool, query: Select<'_, R>) -> StoreResult<Option<T>>
where
    R: for<'r> FromRow<'r, SqliteRow> + TryInto<T, Error = StoreError> + Send + Unpin,
{
    stored::one(query.fetch_optional(pool).await.map_err(backend)?)
}

/// A statement that changes rows.
type Change<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>;

/// Runs `query`; returns how many rows it changed.
async fn execute(pool: &SqlitePool, query: Change<'_>) -> StoreResult<u64> {
    Ok(query.execute(pool).await.map_err(backend)?.rows_affected())
}

/// Each method runs the query of its concern's module on the pool.
#[async_trait]
impl MetadataStore for SqliteStore {
    async fn create_account(&self, a: &Account) -> StoreResult<()> {
        accounts::create_account(&self.pool, a).await
    }
    async fn account_by_email(&self, email: &Email) -> StoreResult<Option<Account>> {
        accounts::account_by_email(&self.pool, email).await
    }
    async fn account_by_id(&self, id: AccountId) -> StoreResult<Option<Account>> {
        accounts::account_by_id(&self.pool, id).await
    }
    async fn set_password_hash(&self, id: AccountId, password_hash: &str) -> StoreResult<()> {
        accounts::set_password_hash(&self.pool, id, password_hash).await
    }
    async fn set_account_locked(&self, id: AccountId, locked: bool) -> StoreResult<()> {
        accounts::set_account_locked(&self.pool, id, locked).await
    }
    async fn accounts(&self) -> StoreResult<Vec<Account>> {
        accounts::accounts(&self.pool).await
    }

    async fn create_session(&self, s: &Session) -> StoreResult<()> {
        accounts::create_session(&self.pool, s).await
    }
    async fn session_by_token_hash(
        &self,
        token_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> StoreResult<Option<Session>> {
        accounts::session_by_token_hash(&self.pool, token_hash, now).await
    }
    async fn sessions_of(
        &self,
        account: AccountId,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<Session>> {
        accounts::sessions_of(&self.pool, account, now).await
    }
    async fn delete_session(&self, id: Uuid) -> StoreResult<()> {
        accounts::delete_session(&self.pool, id).await
    }
    async fn delete_other_sessions(&self, account: AccountId, keep: Uuid) -> StoreResult<u64> {
        accounts::delete_other_sessions(&self.pool, account, keep).await
    }
    async fn delete_expired_sessions(&self, now: OffsetDateTime) -> StoreResult<u64> {
        accounts::delete_expired_sessions(&self.pool, now).await
    }

    async fn create_household(&self, h: &Household, owner: AccountId) -> StoreResult<()> {
        households::create_household(&self.pool, h, owner).await
    }
    async fn household(&self, id: HouseholdId) -> StoreResult<Option<Household>> {
        households::household(&self.pool, id).await
    }
    async fn rename_household(&self, id: HouseholdId, name: &str) -> StoreResult<()> {
        households::rename_household(&self.pool, id, name).await
    }
    async fn households_of(&self, account: AccountId) -> StoreResult<Vec<(Household, Membership)>> {
        households::households_of(&self.pool, account).await
    }
    async fn membership(
        &self,
        household: HouseholdId,
        account: AccountId,
    ) -> StoreResult<Option<Membership>> {
        households::membership(&self.pool, household, account).await
    }
    async fn members(&self, household: HouseholdId) -> StoreResult<Vec<Member>> {
        households::members(&self.pool, household).await
    }
    async fn update_member(
        &self,
        household: HouseholdId,
        account: AccountId,
        role: Role,
        status: MemberStatus,
    ) -> StoreResult<()> {
        households::update_member(&self.pool, household, account, role, status).await
    }
    async fn remove_member(&self, household: HouseholdId, account: AccountId) -> StoreResult<()> {
        households::remove_member(&self.pool, household, account).await
    }
    async fn create_invitation(&self, i: &Invitation) -> StoreResult<()> {
        households::create_invitation(&self.pool, i).await
    }
    async fn recent_invitations(
        &self,
        household: HouseholdId,
        account: AccountId,
        since: OffsetDateTime,
    ) -> StoreResult<RecentInvitations> {
        households::recent_invitations(&self.pool, household, account, since).await
    }
    async fn redeem_invitation(
        &self,
        token_hash: &[u8; 32],
        account: AccountId,
        now: OffsetDateTime,
    ) -> StoreResult<Redemption> {
        households::redeem_invitation(&self.pool, token_hash, account, now).await
    }

    async fn create_device(&self, d: &Device) -> StoreResult<()> {
        devices::create_device(&self.pool, d).await
    }
    async fn device(&self, id: DeviceId) -> StoreResult<Option<Device>> {
        devices::device(&self.pool, id).await
    }
    async fn devices_of_account(&self, account: AccountId) -> StoreResult<Vec<Device>> {
        devices::devices_of_account(&self.pool, account).await
    }
    async fn devices_of_household(&self, household: HouseholdId) -> StoreResult<Vec<Device>> {
        devices::devices_of_household(&self.pool, household).await
    }
    async fn update_device_identity(&self, id: DeviceId, identity: &[u8]) -> StoreResult<()> {
        devices::update_device_identity(&self.pool, id, identity).await
    }
    async fn latest_roster(&self, household: HouseholdId) -> StoreResult<Option<StoredRoster>> {
        devices::latest_roster(&self.pool, household).await
    }
    async fn insert_roster(&self, r: &StoredRoster) -> StoreResult<()> {
        devices::insert_roster(&self.pool, r).await
    }
    async fn rosters_since(
        &self,
        household: HouseholdId,
        version: u64,
    ) -> StoreResult<Vec<StoredRoster>> {
        devices::rosters_since(&self.pool, household, version).await
    }
    async fn create_pairing(&self, p: &PendingPairing) -> StoreResult<PairingCreated> {
        devices::create_pairing(&self.pool, p).await
    }
    async fn claim_pairing(
        &self,
        code: &str,
        claimant: &PairingClaimant,
        now: OffsetDateTime,
    ) -> StoreResult<PairingClaim> {
        devices::claim_pairing(&self.pool, code, claimant, now).await
    }
    async fn pairing_of_device(
        &self,
        device: DeviceId,
        now: OffsetDateTime,
    ) -> StoreResult<Option<PendingPairing>> {
        devices::pairing_of_device(&self.pool, device, now).await
    }
    async fn end_pairing(&self, device: DeviceId, code: &str) -> StoreResult<bool> {
        devices::end_pairing(&self.pool, device, code).await
    }

    async fn insert_message(&self, m: &Message, recipients: &[DeviceId]) -> StoreResult<()> {
        messages::insert_message(&self.pool, m, recipients).await
    }
    async fn message(&self, id: Uuid) -> StoreResult<Option<Message>> {
        messages::message(&self.pool, id).await
    }
    async fn receipts(&self, message: Uuid) -> StoreResult<Vec<Receipt>> {
        messages::receipts(&self.pool, message).await
    }
    async fn messages_for_account(
        &self,
        household: HouseholdId,
        account: AccountId,
    ) -> StoreResult<Vec<Message>> {
        messages::messages_for_account(&self.pool, household, account).await
    }
    async fn messages_of_household(&self, household: HouseholdId) -> StoreResult<Vec<Message>> {
        messages::messages_of_household(&self.pool, household).await
    }
    async fn undelivered_for(&self, device: DeviceId) -> StoreResult<Vec<Message>> {
        messages::undelivered_for(&self.pool, device).await
    }
    async fn set_receipt(
        &self,
        message: Uuid,
        device: DeviceId,
        state: ReceiptState,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        messages::set_receipt(&self.pool, message, device, state, at).await
    }
    async fn refuse_receipt(
        &self,
        message: Uuid,
        device: DeviceId,
        reason: &str,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        messages::refuse_receipt(&self.pool, message, device, reason, at).await
    }
    async fn insert_approval(&self, a: &Approval) -> StoreResult<()> {
        messages::insert_approval(&self.pool, a).await
    }
    async fn approvals_pending_for(&self, device: DeviceId) -> StoreResult<Vec<Approval>> {
        messages::approvals_pending_for(&self.pool, device).await
    }

    async fn delete_account(&self, account: AccountId) -> StoreResult<Vec<String>> {
        privacy::delete_account(&self.pool, account).await
    }
    async fn delete_household(&self, household: HouseholdId) -> StoreResult<Vec<String>> {
        privacy::delete_household(&self.pool, household).await
    }
    async fn households_with_messages(&self) -> StoreResult<Vec<HouseholdId>> {
        privacy::households_with_messages(&self.pool).await
    }
    async fn played_messages_before(
        &self,
        household: HouseholdId,
        cutoff: OffsetDateTime,
    ) -> StoreResult<Vec<Message>> {
        privacy::played_messages_before(&self.pool, household, cutoff).await
    }
    async fn unplayed_messages_before(&self, cutoff: OffsetDateTime) -> StoreResult<Vec<Message>> {
        privacy::unplayed_messages_before(&self.pool, cutoff).await
    }
    async fn delete_messages(&self, ids: &[Uuid]) -> StoreResult<()> {
        privacy::delete_messages(&self.pool, ids).await
    }

    async fn append_audit(&self, record: &AuditRecord) -> StoreResult<AuditEntry> {
        audit::append_audit(&self.pool, record).await
    }
    async fn audit_entries(&self, after_seq: u64, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        audit::audit_entries(&self.pool, after_seq, limit).await
    }
    async fn household_audit(
        &self,
        household: HouseholdId,
        limit: u32,
    ) -> StoreResult<Vec<AuditEntry>> {
        audit::household_audit(&self.pool, household, limit).await
    }
    async fn account_audit(&self, account: AccountId, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        audit::account_audit(&self.pool, account, limit).await
    }
}
