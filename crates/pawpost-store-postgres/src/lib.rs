//! The metadata store on PostgreSQL, for deployments where several server processes
//! share one database. It keeps exactly the promises of the SQLite store (the same
//! conformance suite runs against both), on native column types.
//!
//! Each concern keeps its queries in a module of its own (accounts and sessions,
//! households and invitations, devices and pairing, messages, privacy, audit); the rows
//! they read, and how those become domain values, are in `rows`; connecting and
//! migrating in `connect`, the notes between processes in `peers`.
//!
//! # Authentication
//!
//! The database that held the earlier system's accounts answered anyone who reached its
//! port. In production, connect with a password (`postgres://pawpost:SECRET@host/db`,
//! SCRAM on the server side) or a client certificate, and to a remote host with
//! `sslmode=verify-full`. Never configure `trust` authentication for anything but a
//! throwaway test database on a machine of its own. This crate does not refuse a URL
//! without a password, because peer and certificate authentication need none.
//!
//! # Schema
//!
//! Ids are `uuid`, token hashes and keys `bytea`, times `timestamptz`. Times are written
//! truncated to whole milliseconds, as the SQLite store keeps them, so both backends
//! compare and order alike. Migrations live in this crate's `migrations/` folder and are
//! applied on every [`PostgresStore::open`]; applying them again is a no-op.
//!
//! [`PostgresStore::open`] uses the server's `search_path` (usually `public`, or an
//! `options=-c search_path=...` parameter in the URL); [`PostgresStore::open_in_schema`]
//! keeps everything, the migration history included, in a schema of its own.
//!
//! # Tests
//!
//! The tests run against the server named by `PAWPOST_TEST_DATABASE_URL`, each in a
//! schema named at random and dropped afterwards; without that variable they say they
//! are skipped.
#![forbid(unsafe_code)]

#[macro_use]
mod rows;
mod accounts;
mod audit;
mod connect;
mod devices;
mod households;
mod messages;
mod peers;
mod privacy;

use async_trait::async_trait;
use pawpost_domain::{
    Account, AccountId, Approval, AuditEntry, AuditRecord, Device, DeviceId, Email, Household,
    HouseholdId, Invitation, Member, MemberStatus, Membership, Message, PairingClaim,
    PairingClaimant, PairingCreated, PendingPairing, Receipt, ReceiptState, Role, Session,
    StoredRoster,
};
use pawpost_store::stored;
use pawpost_store::{MetadataStore, Peers, RecentInvitations, Redemption, StoreError, StoreResult};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{FromRow, PgPool, Postgres};
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

pub(crate) use connect::begin;

/// Connections in each process's pool. Several processes share one server, whose
/// default `max_connections` is 100, so each takes a bounded share.
pub const MAX_CONNECTIONS: u32 = 10;
/// How long a query waits for a free connection before failing.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest schema name PostgreSQL keeps without truncating it.
pub const MAX_SCHEMA_NAME_LEN: usize = 63;

/// The metadata store on one PostgreSQL database. Clones share one pool.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// The LISTEN/NOTIFY channel of the processes sharing this schema.
    channel: String,
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
type Select<'q, R> = sqlx::query::QueryAs<'q, Postgres, R, PgArguments>;

/// Runs `query` and turns every row into its domain value.
async fn fetch_all<R, T>(pool: &PgPool, query: Select<'_, R>) -> StoreResult<Vec<T>>
where
    R: for<'r> FromRow<'r, PgRow> + TryInto<T, Error = StoreError> + Send + Unpin,
{
    stored::all(query.fetch_all(pool).await.map_err(backend)?)
}

/// Runs `query` and turns the row it found, if any, into its domain value.
async fn fetch_optional<R, T>(pool: &PgPool, query: Select<'_, R>) -> StoreResult<Option<T>>
where
    R: for<'r> FromRow<'r, PgRow> + TryInto<T, Error = StoreError> + Send + Unpin,
{
    stored::one(query.fetch_optional(pool).await.map_err(backend)?)
}

/// A statement that changes rows.
type Change<'q> = sqlx::query::Query<'q, Postgres, PgArguments>;

/// Runs `query`; returns how many rows it changed.
async fn execute(pool: &PgPool, query: Change<'_>) -> StoreResult<u64> {
    Ok(query.execute(pool).await.map_err(backend)?.rows_affected())
}

/// Each method runs the query of its concern's module on the pool.
#[async_trait]
impl MetadataStore for PostgresStore {
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

    fn peers(&self) -> Option<std::sync::Arc<dyn Peers>> {
        Some(std::sync::Arc::new(self.clone()))
    }
}
