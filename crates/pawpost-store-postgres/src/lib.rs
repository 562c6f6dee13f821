//! The metadata store on PostgreSQL, for deployments where several server processes
//! share one database. It keeps exactly the promises of the SQLite store (the same
//! conformance suite runs against both), on native column types.
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

use async_trait::async_trait;
use pawpost_domain::{
    Account, AccountId, Approval, AuditEntry, AuditRecord, Device, DeviceId, DeviceKind, Email,
    Household, HouseholdId, Invitation, Member, MemberStatus, Membership, Message, PairingClaim,
    PendingPairing, Receipt, ReceiptState, Role, Session, StoredRoster,
};
use pawpost_store::{
    MetadataStore, PeerListener, Peers, Redemption, StoreError, StoreResult, MAX_NOTE_BYTES,
};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions, PgRow};
use sqlx::{PgPool, Postgres, Row};
use std::str::FromStr;
use std::time::Duration;
use time::{OffsetDateTime, UtcOffset};
use uuid::Uuid;

/// Connections in each process's pool. Several processes share one server, whose
/// default `max_connections` is 100, so each takes a bounded share.
pub const MAX_CONNECTIONS: u32 = 10;
/// How long a query waits for a free connection before failing.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest schema name PostgreSQL keeps without truncating it.
pub const MAX_SCHEMA_NAME_LEN: usize = 63;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The metadata store on one PostgreSQL database. Clones share one pool.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// The LISTEN/NOTIFY channel of the processes sharing this schema.
    channel: String,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`) and applies
    /// pending migrations in the connection's default schema.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let pool = connect(parse_url(url)?).await?;
        Self::migrated(pool).await
    }

    /// Like [`open`](Self::open), but in `schema`, which is created if missing: every
    /// pooled connection starts with `search_path` set to it alone, so tables, the
    /// migration history and every query land there. The database role needs the
    /// CREATE privilege on the database the first time.
    ///
    /// `schema` must be lowercase ASCII letters, digits and underscores, start with a
    /// letter or underscore, not start with `pg_`, and be at most
    /// [`MAX_SCHEMA_NAME_LEN`] bytes: it is written into SQL and connection options, so
    /// anything else is refused before connecting.
    pub async fn open_in_schema(url: &str, schema: &str) -> StoreResult<Self> {
        check_schema_name(schema)?;
        let options = parse_url(url)?.options([("search_path", schema)]);
        let pool = connect(options).await?;
        let created = sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .execute(&pool)
            .await;
        match created {
            Ok(_) => {}
            // Two processes creating the same schema at once: the loser sees the
            // winner's catalog row as a unique violation, and the schema exists.
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {}
            Err(e) => {
                return Err(StoreError::Backend(format!(
                    "creating schema {schema} failed: {e}"
                )))
            }
        }
        Self::migrated(pool).await
    }

    async fn migrated(pool: PgPool) -> StoreResult<Self> {
        // sqlx holds an advisory lock while migrating, so processes starting together
        // apply each migration once.
        MIGRATOR.run(&pool).await.map_err(|e| {
            StoreError::Backend(format!("migrating the PostgreSQL database failed: {e}"))
        })?;
        let schema: String = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("reading the current schema failed: {e}")))?;
        Ok(Self {
            pool,
            channel: channel_for(&schema),
        })
    }

    /// The pool, for maintenance queries and for closing it.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// The notification channel of the processes sharing `schema`. Channel names are
/// identifiers, cut to [`MAX_SCHEMA_NAME_LEN`] bytes; two long schema names that share a
/// channel only trade hints, which each process checks against its own schema.
fn channel_for(schema: &str) -> String {
    let mut channel = format!("pawpost_{schema}");
    channel.truncate(MAX_SCHEMA_NAME_LEN);
    channel
}

#[async_trait]
impl Peers for PostgresStore {
    async fn announce(&self, note: &str) -> StoreResult<()> {
        if note.len() > MAX_NOTE_BYTES {
            return Err(StoreError::Backend(format!(
                "a note of {} bytes is longer than the {MAX_NOTE_BYTES} PostgreSQL carries",
                note.len()
            )));
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&self.channel)
            .bind(note)
            .execute(&self.pool)
            .await
            .map_err(|e| StoreError::Backend(format!("notifying other processes failed: {e}")))?;
        Ok(())
    }

    async fn listen(&self) -> StoreResult<Box<dyn PeerListener>> {
        let mut listener = PgListener::connect_with(&self.pool).await.map_err(|e| {
            StoreError::Backend(format!("listening for other processes failed: {e}"))
        })?;
        listener.listen(&self.channel).await.map_err(|e| {
            StoreError::Backend(format!("listening for other processes failed: {e}"))
        })?;
        Ok(Box::new(NoteListener(listener)))
    }
}

struct NoteListener(PgListener);

#[async_trait]
impl PeerListener for NoteListener {
    async fn next(&mut self) -> StoreResult<Option<String>> {
        match self.0.try_recv().await {
            Ok(Some(notification)) => Ok(Some(notification.payload().to_owned())),
            Ok(None) => Ok(None),
            Err(e) => Err(StoreError::Backend(format!(
                "receiving notes from other processes failed: {e}"
            ))),
        }
    }
}

/// Starts a transaction in a task of its own, so that a caller that gives up (a client
/// that hangs up, a request timeout) cannot leave the pooled connection inside a
/// transaction nobody ends: sqlx's `begin` counts the transaction only once `BEGIN` has
/// been answered, so a `begin` dropped while it waits would queue no `ROLLBACK`, and
/// whatever the connection's next user wrote would never be committed. Run to its end,
/// `begin` hands back a transaction whose drop rolls it back.
async fn begin(pool: &PgPool) -> StoreResult<sqlx::Transaction<'static, Postgres>> {
    let pool = pool.clone();
    tokio::spawn(async move { pool.begin().await })
        .await
        .map_err(|e| StoreError::Backend(format!("starting a transaction failed: {e}")))?
        .map_err(backend)
}

fn parse_url(url: &str) -> StoreResult<PgConnectOptions> {
    // The URL may carry a password, so it is not repeated in the error.
    PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Backend(format!("bad PostgreSQL URL: {e}")))
}

async fn connect(options: PgConnectOptions) -> StoreResult<PgPool> {
    PgPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|e| StoreError::Backend(format!("connecting to PostgreSQL failed: {e}")))
}

fn check_schema_name(schema: &str) -> StoreResult<()> {
    let mut chars = schema.chars();
    let starts_well = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if starts_well && rest_ok && schema.len() <= MAX_SCHEMA_NAME_LEN && !schema.starts_with("pg_") {
        Ok(())
    } else {
        Err(StoreError::Backend(format!(
            "schema name {schema:?} refused: use at most {MAX_SCHEMA_NAME_LEN} lowercase ASCII \
             letters, digits and underscores, starting with a letter or underscore, not pg_"
        )))
    }
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

/// `t` truncated toward zero to whole milliseconds, in UTC: what the SQLite store keeps,
/// so that a time read back, and every comparison with it, is the same on both.
fn ms(t: OffsetDateTime) -> OffsetDateTime {
    let sub_ms = (t.unix_timestamp_nanos() % 1_000_000) as i64;
    (t - time::Duration::nanoseconds(sub_ms)).to_offset(UtcOffset::UTC)
}

fn get<'r, T>(row: &'r PgRow, col: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(col).map_err(backend)
}

fn hash_col(row: &PgRow, col: &str) -> StoreResult<[u8; 32]> {
    get::<Vec<u8>>(row, col)?
        .try_into()
        .map_err(|_| StoreError::Backend(format!("bad hash length in {col}")))
}

fn parse_col<T: FromStr>(row: &PgRow, col: &str) -> StoreResult<T>
where
    T::Err: std::fmt::Display,
{
    get::<String>(row, col)?
        .parse()
        .map_err(|e: T::Err| StoreError::Backend(format!("bad value in {col}: {e}")))
}

/// A non-negative bigint column read back into the unsigned Rust type it came from.
fn unsigned_col<T: TryFrom<i64>>(row: &PgRow, col: &str) -> StoreResult<T> {
    let v: i64 = get(row, col)?;
    T::try_from(v).map_err(|_| StoreError::Backend(format!("bad value in {col}: {v}")))
}

fn email_col(row: &PgRow, col: &str) -> StoreResult<Email> {
    Email::parse(&get::<String>(row, col)?)
        .map_err(|e| StoreError::Backend(format!("bad stored email: {e}")))
}

fn account_row(row: &PgRow) -> StoreResult<Account> {
    Ok(Account {
        id: AccountId(get(row, "id")?),
        email: email_col(row, "email")?,
        display_name: get(row, "display_name")?,
        password_hash: get(row, "password_hash")?,
        created_at: get(row, "created_at")?,
        locked: get(row, "locked")?,
    })
}

fn session_row(row: &PgRow) -> StoreResult<Session> {
    Ok(Session {
        id: get(row, "id")?,
        account_id: AccountId(get(row, "account_id")?),
        token_hash: hash_col(row, "token_hash")?,
        csrf_token: get(row, "csrf_token")?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
        client_address: get(row, "client_address")?,
        user_agent: get(row, "user_agent")?,
    })
}

fn household_row(row: &PgRow) -> StoreResult<Household> {
    Ok(Household {
        id: HouseholdId(get(row, "id")?),
        name: get(row, "name")?,
        created_at: get(row, "created_at")?,
    })
}

fn membership_row(row: &PgRow) -> StoreResult<Membership> {
    Ok(Membership {
        household_id: HouseholdId(get(row, "household_id")?),
        account_id: AccountId(get(row, "account_id")?),
        role: parse_col(row, "role")?,
        status: parse_col(row, "status")?,
        joined_at: get(row, "joined_at")?,
    })
}

fn device_row(row: &PgRow) -> StoreResult<Device> {
    Ok(Device {
        id: DeviceId(get(row, "id")?),
        kind: parse_col::<DeviceKind>(row, "kind")?,
        account_id: get::<Option<Uuid>>(row, "account_id")?.map(AccountId),
        household_id: get::<Option<Uuid>>(row, "household_id")?.map(HouseholdId),
        identity: get(row, "identity")?,
        label: get(row, "label")?,
        created_at: get(row, "created_at")?,
    })
}

fn message_row(row: &PgRow) -> StoreResult<Message> {
    let media_type: i16 = get(row, "media_type")?;
    Ok(Message {
        id: get(row, "id")?,
        household_id: HouseholdId(get(row, "household_id")?),
        sender_device: DeviceId(get(row, "sender_device")?),
        sender_account: get::<Option<Uuid>>(row, "sender_account")?.map(AccountId),
        media_type: u8::try_from(media_type)
            .map_err(|_| StoreError::Backend(format!("bad value in media_type: {media_type}")))?,
        duration_ms: unsigned_col(row, "duration_ms")?,
        envelope_len: unsigned_col(row, "envelope_len")?,
        created_at: get(row, "created_at")?,
        blob_key: get(row, "blob_key")?,
    })
}

/// A u64 for a bigint column; larger values are refused rather than wrapped.
fn audit_row(row: &PgRow) -> StoreResult<AuditEntry> {
    Ok(AuditEntry {
        seq: unsigned_col(row, "seq")?,
        record: AuditRecord {
            at: get(row, "at")?,
            actor: get::<Option<Uuid>>(row, "actor")?.map(AccountId),
            household: get::<Option<Uuid>>(row, "household")?.map(HouseholdId),
            action: get(row, "action")?,
            target: get(row, "target")?,
            client: get(row, "client")?,
        },
        prev_hash: hash_col(row, "prev_hash")?,
        hash: hash_col(row, "hash")?,
    })
}

const AUDIT_COLUMNS: &str = "seq, at, actor, household, action, target, client, prev_hash, hash";

fn to_bigint(v: u64, what: &str) -> StoreResult<i64> {
    i64::try_from(v).map_err(|_| StoreError::Backend(format!("{what} {v} too large")))
}

const DEVICE_COLUMNS: &str = "id, kind, account_id, household_id, identity, label, created_at";
const MESSAGE_COLUMNS: &str =
    "id, household_id, sender_device, sender_account, media_type, duration_ms, envelope_len, created_at, blob_key";
const ACCOUNT_COLUMNS: &str = "id, email, display_name, password_hash, created_at, locked";
const SESSION_COLUMNS: &str =
    "id, account_id, token_hash, csrf_token, created_at, expires_at, client_address, user_agent";
const MEMBERSHIP_COLUMNS: &str = "household_id, account_id, role, status, joined_at";

#[async_trait]
impl MetadataStore for PostgresStore {
    async fn create_account(&self, a: &Account) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .bind(a.id.0)
        .bind(a.email.as_str())
        .bind(&a.display_name)
        .bind(&a.password_hash)
        .bind(ms(a.created_at))
        .bind(a.locked)
        .execute(&self.pool)
        .await
        .map_err(|e| unique_violation(e, "an account with this email address"))?;
        Ok(())
    }

    async fn account_by_email(&self, email: &Email) -> StoreResult<Option<Account>> {
        sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE email = $1"
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
            "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY created_at, id"
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
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(account_row)
        .transpose()
    }

    async fn set_password_hash(&self, id: AccountId, password_hash: &str) -> StoreResult<()> {
        let done = sqlx::query("UPDATE accounts SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        found(done.rows_affected(), "account")
    }

    async fn set_account_locked(&self, id: AccountId, locked: bool) -> StoreResult<()> {
        let done = sqlx::query("UPDATE accounts SET locked = $1 WHERE id = $2")
            .bind(locked)
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        found(done.rows_affected(), "account")
    }

    async fn create_session(&self, s: &Session) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(s.id)
        .bind(s.account_id.0)
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
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = $1 AND expires_at > $2"
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
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE account_id = $1 AND expires_at > $2 \
             ORDER BY created_at DESC, id DESC"
        ))
        .bind(account.0)
        .bind(ms(now))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(session_row)
        .collect()
    }

    async fn delete_session(&self, id: Uuid) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn delete_other_sessions(&self, account: AccountId, keep: Uuid) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE account_id = $1 AND id <> $2")
            .bind(account.0)
            .bind(keep)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected())
    }

    async fn delete_expired_sessions(&self, now: OffsetDateTime) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(ms(now))
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected())
    }

    async fn create_household(&self, h: &Household, owner: AccountId) -> StoreResult<()> {
        let mut tx = begin(&self.pool).await?;
        sqlx::query("INSERT INTO households (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(h.id.0)
            .bind(&h.name)
            .bind(ms(h.created_at))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        sqlx::query(&format!(
            "INSERT INTO memberships ({MEMBERSHIP_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"
        ))
        .bind(h.id.0)
        .bind(owner.0)
        .bind(Role::Owner.as_str())
        .bind(MemberStatus::Approved.as_str())
        .bind(ms(h.created_at))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn household(&self, id: HouseholdId) -> StoreResult<Option<Household>> {
        sqlx::query("SELECT id, name, created_at FROM households WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .as_ref()
            .map(household_row)
            .transpose()
    }

    async fn rename_household(&self, id: HouseholdId, name: &str) -> StoreResult<()> {
        let done = sqlx::query("UPDATE households SET name = $1 WHERE id = $2")
            .bind(name)
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        found(done.rows_affected(), "household")
    }

    async fn households_of(&self, account: AccountId) -> StoreResult<Vec<(Household, Membership)>> {
        let rows = sqlx::query(
            "SELECT h.id, h.name, h.created_at, m.household_id, m.account_id, m.role, m.status, m.joined_at \
             FROM memberships m JOIN households h ON h.id = m.household_id \
             WHERE m.account_id = $1 ORDER BY h.created_at, h.id",
        )
        .bind(account.0)
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
        sqlx::query(&format!(
            "SELECT {MEMBERSHIP_COLUMNS} FROM memberships WHERE household_id = $1 AND account_id = $2"
        ))
        .bind(household.0)
        .bind(account.0)
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
             WHERE m.household_id = $1 ORDER BY m.joined_at, m.account_id",
        )
        .bind(household.0)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|r| {
                Ok(Member {
                    membership: membership_row(r)?,
                    display_name: get(r, "display_name")?,
                    email: email_col(r, "email")?,
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
            "UPDATE memberships SET role = $1, status = $2 WHERE household_id = $3 AND account_id = $4",
        )
        .bind(role.as_str())
        .bind(status.as_str())
        .bind(household.0)
        .bind(account.0)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        found(done.rows_affected(), "membership")
    }

    async fn remove_member(&self, household: HouseholdId, account: AccountId) -> StoreResult<()> {
        let done =
            sqlx::query("DELETE FROM memberships WHERE household_id = $1 AND account_id = $2")
                .bind(household.0)
                .bind(account.0)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
        found(done.rows_affected(), "membership")
    }

    async fn create_invitation(&self, i: &Invitation) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO invitations (id, household_id, token_hash, role, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(i.id.0)
        .bind(i.household_id.0)
        .bind(i.token_hash.as_slice())
        .bind(i.role.as_str())
        .bind(i.created_by.0)
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
        let now = ms(now);
        // Every early return drops `tx`, which rolls it back: nothing is spent unless
        // the membership is written too.
        let mut tx = begin(&self.pool).await?;
        // FOR UPDATE queues concurrent redeemers of one token behind this one; once it
        // commits, the next sees `used_at` set and gets `Spent`.
        let Some(row) = sqlx::query(
            "SELECT household_id, role, expires_at, used_at FROM invitations WHERE token_hash = $1 FOR UPDATE",
        )
        .bind(token_hash.as_slice())
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?
        else {
            return Ok(Redemption::Unknown);
        };
        let household = HouseholdId(get(&row, "household_id")?);
        let role: Role = parse_col(&row, "role")?;
        let used_at: Option<OffsetDateTime> = get(&row, "used_at")?;
        let expires_at: OffsetDateTime = get(&row, "expires_at")?;
        if used_at.is_some() || expires_at <= now {
            return Ok(Redemption::Spent);
        }
        let existing =
            sqlx::query("SELECT 1 FROM memberships WHERE household_id = $1 AND account_id = $2")
                .bind(household.0)
                .bind(account.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        if existing.is_some() {
            return Ok(Redemption::AlreadyMember(household));
        }
        let spent = sqlx::query(
            "UPDATE invitations SET used_by = $1, used_at = $2 WHERE token_hash = $3 AND used_at IS NULL",
        )
        .bind(account.0)
        .bind(now)
        .bind(token_hash.as_slice())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if spent.rows_affected() != 1 {
            return Ok(Redemption::Spent);
        }
        // The same account redeeming a second invitation of this household at the same
        // moment: the row lock above does not cover that, the primary key does. The
        // loser rolls back, so its invitation stays unused, as `AlreadyMember` promises.
        let inserted = sqlx::query(&format!(
            "INSERT INTO memberships ({MEMBERSHIP_COLUMNS}) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (household_id, account_id) DO NOTHING"
        ))
        .bind(household.0)
        .bind(account.0)
        .bind(role.as_str())
        .bind(MemberStatus::Pending.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if inserted.rows_affected() != 1 {
            return Ok(Redemption::AlreadyMember(household));
        }
        tx.commit().await.map_err(backend)?;
        Ok(Redemption::Joined(Membership {
            household_id: household,
            account_id: account,
            role,
            status: MemberStatus::Pending,
            joined_at: now,
        }))
    }

    async fn create_device(&self, d: &Device) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO devices ({DEVICE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(d.id.0)
        .bind(d.kind.as_str())
        .bind(d.account_id.map(|a| a.0))
        .bind(d.household_id.map(|h| h.0))
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
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(device_row)
        .transpose()
    }

    async fn devices_of_account(&self, account: AccountId) -> StoreResult<Vec<Device>> {
        sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE account_id = $1 ORDER BY created_at, id"
        ))
        .bind(account.0)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(device_row)
        .collect()
    }

    async fn devices_of_household(&self, household: HouseholdId) -> StoreResult<Vec<Device>> {
        sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE household_id = $1 \
             OR account_id IN (SELECT account_id FROM memberships WHERE household_id = $1 AND status = $2) \
             ORDER BY created_at, id"
        ))
        .bind(household.0)
        .bind(MemberStatus::Approved.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(device_row)
        .collect()
    }

    async fn latest_roster(&self, household: HouseholdId) -> StoreResult<Option<StoredRoster>> {
        let row = sqlx::query(
            "SELECT version, signed, created_at FROM rosters WHERE household_id = $1 ORDER BY version DESC LIMIT 1",
        )
        .bind(household.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(|r| {
            Ok(StoredRoster {
                household_id: household,
                version: unsigned_col(&r, "version")?,
                signed: get(&r, "signed")?,
                created_at: get(&r, "created_at")?,
            })
        })
        .transpose()
    }

    async fn insert_roster(&self, r: &StoredRoster) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO rosters (household_id, version, signed, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(r.household_id.0)
        .bind(to_bigint(r.version, "roster version")?)
        .bind(&r.signed)
        .bind(ms(r.created_at))
        .execute(&self.pool)
        .await
        .map_err(|e| unique_violation(e, "a roster with this version"))?;
        Ok(())
    }

    async fn insert_message(&self, m: &Message, recipients: &[DeviceId]) -> StoreResult<()> {
        let mut tx = begin(&self.pool).await?;
        sqlx::query(&format!(
            "INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(m.id)
        .bind(m.household_id.0)
        .bind(m.sender_device.0)
        .bind(m.sender_account.map(|a| a.0))
        .bind(i16::from(m.media_type))
        .bind(i64::from(m.duration_ms))
        .bind(to_bigint(m.envelope_len, "envelope length")?)
        .bind(ms(m.created_at))
        .bind(&m.blob_key)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_violation(e, "a message with this id"))?;
        // One statement for every recipient; a device listed twice gets one receipt.
        let devices: Vec<Uuid> = recipients.iter().map(|d| d.0).collect();
        sqlx::query(
            "INSERT INTO receipts (message_id, device_id) SELECT $1, unnest($2::uuid[]) \
             ON CONFLICT (message_id, device_id) DO NOTHING",
        )
        .bind(m.id)
        .bind(&devices)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn message(&self, id: Uuid) -> StoreResult<Option<Message>> {
        sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(message_row)
        .transpose()
    }

    async fn receipts(&self, message: Uuid) -> StoreResult<Vec<Receipt>> {
        sqlx::query(
            "SELECT device_id, delivered_at, played_at FROM receipts WHERE message_id = $1 ORDER BY device_id",
        )
        .bind(message)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(|r| {
            Ok(Receipt {
                device_id: DeviceId(get(r, "device_id")?),
                delivered_at: get(r, "delivered_at")?,
                played_at: get(r, "played_at")?,
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
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE household_id = $1 AND (sender_account = $2 OR id IN \
             (SELECT r.message_id FROM receipts r JOIN devices d ON d.id = r.device_id WHERE d.account_id = $2)) \
             ORDER BY created_at, id"
        ))
        .bind(household.0)
        .bind(account.0)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(message_row)
        .collect()
    }

    async fn messages_of_household(&self, household: HouseholdId) -> StoreResult<Vec<Message>> {
        sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE household_id = $1 ORDER BY created_at, id"
        ))
        .bind(household.0)
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
                "UPDATE receipts SET delivered_at = COALESCE(delivered_at, $1) WHERE message_id = $2 AND device_id = $3"
            }
            ReceiptState::Played => {
                "UPDATE receipts SET delivered_at = COALESCE(delivered_at, $1), played_at = COALESCE(played_at, $1) \
                 WHERE message_id = $2 AND device_id = $3"
            }
        };
        let done = sqlx::query(sql)
            .bind(ms(at))
            .bind(message)
            .bind(device.0)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        found(done.rows_affected(), "receipt")
    }
    async fn update_device_identity(&self, id: DeviceId, identity: &[u8]) -> StoreResult<()> {
        let done = sqlx::query("UPDATE devices SET identity = $1 WHERE id = $2")
            .bind(identity)
            .bind(id.0)
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
        // No stored version exceeds i64::MAX, so a larger `version` finds nothing.
        let after = i64::try_from(version).unwrap_or(i64::MAX);
        sqlx::query(
            "SELECT version, signed, created_at FROM rosters WHERE household_id = $1 AND version > $2 ORDER BY version",
        )
        .bind(household.0)
        .bind(after)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(|r| {
            Ok(StoredRoster {
                household_id: household,
                version: unsigned_col(r, "version")?,
                signed: get(r, "signed")?,
                created_at: get(r, "created_at")?,
            })
        })
        .collect()
    }

    async fn undelivered_for(&self, device: DeviceId) -> StoreResult<Vec<Message>> {
        sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id IN \
             (SELECT message_id FROM receipts WHERE device_id = $1 AND delivered_at IS NULL) \
             ORDER BY created_at, id"
        ))
        .bind(device.0)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(message_row)
        .collect()
    }

    async fn create_pairing(&self, p: &PendingPairing) -> StoreResult<()> {
        let created_at = ms(p.created_at);
        let mut tx = begin(&self.pool).await?;
        lock_pairings(&mut tx).await?;
        let live = sqlx::query(
            "SELECT 1 FROM pairings WHERE code = $1 AND claimed_at IS NULL AND expires_at > $2",
        )
        .bind(&p.code)
        .bind(created_at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        if live.is_some() {
            return Err(StoreError::Conflict("a live pairing with this code"));
        }
        // Spent and expired pairings are of no further use; going first also clears an
        // expired pairing with this code out of the unique index.
        sqlx::query("DELETE FROM pairings WHERE expires_at <= $1 OR claimed_at IS NOT NULL")
            .bind(created_at)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        sqlx::query(
            "INSERT INTO pairings (code, device_id, identity, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&p.code)
        .bind(p.device_id.0)
        .bind(&p.identity)
        .bind(created_at)
        .bind(ms(p.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_violation(e, "a live pairing with this code"))?;
        tx.commit().await.map_err(backend)
    }

    async fn claim_pairing(
        &self,
        code: &str,
        now: OffsetDateTime,
        max_wrong_tries: u32,
    ) -> StoreResult<PairingClaim> {
        let now = ms(now);
        let mut tx = begin(&self.pool).await?;
        lock_pairings(&mut tx).await?;
        let claimed = sqlx::query(
            "UPDATE pairings SET claimed_at = $1 WHERE code = $2 AND claimed_at IS NULL AND expires_at > $1 \
             AND wrong_tries < $3 RETURNING code, device_id, identity, created_at, expires_at",
        )
        .bind(now)
        .bind(code)
        .bind(i64::from(max_wrong_tries))
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let result = match claimed {
            Some(row) => PairingClaim::Claimed(PendingPairing {
                code: get(&row, "code")?,
                device_id: DeviceId(get(&row, "device_id")?),
                identity: get(&row, "identity")?,
                created_at: get(&row, "created_at")?,
                expires_at: get(&row, "expires_at")?,
            }),
            None => {
                sqlx::query(
                    "UPDATE pairings SET wrong_tries = wrong_tries + 1 WHERE claimed_at IS NULL AND expires_at > $1",
                )
                .bind(now)
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
            "INSERT INTO approvals (message_id, approver, signature, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(a.message_id)
        .bind(a.approver.0)
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
             WHERE r.device_id = $1 AND r.played_at IS NULL ORDER BY a.created_at",
        )
        .bind(device.0)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(|r| {
            Ok(Approval {
                message_id: get(r, "message_id")?,
                approver: DeviceId(get(r, "approver")?),
                signature: get(r, "signature")?,
                created_at: get(r, "created_at")?,
            })
        })
        .collect()
    }

    async fn delete_account(&self, account: AccountId) -> StoreResult<Vec<String>> {
        let mut tx = begin(&self.pool).await?;
        let keys: Vec<String> =
            sqlx::query_scalar("SELECT blob_key FROM messages WHERE sender_account = $1")
                .bind(account.0)
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?;
        sqlx::query("DELETE FROM messages WHERE sender_account = $1")
            .bind(account.0)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        // Receipts name devices, not accounts: remove the account's devices' receipts too.
        sqlx::query("DELETE FROM receipts WHERE device_id IN (SELECT id FROM devices WHERE account_id = $1)")
            .bind(account.0)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let done = sqlx::query("DELETE FROM accounts WHERE id = $1")
            .bind(account.0)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        found(done.rows_affected(), "account")?;
        tx.commit().await.map_err(backend)?;
        Ok(keys)
    }

    async fn delete_household(&self, household: HouseholdId) -> StoreResult<Vec<String>> {
        let mut tx = begin(&self.pool).await?;
        let keys: Vec<String> =
            sqlx::query_scalar("SELECT blob_key FROM messages WHERE household_id = $1")
                .bind(household.0)
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?;
        let done = sqlx::query("DELETE FROM households WHERE id = $1")
            .bind(household.0)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        found(done.rows_affected(), "household")?;
        tx.commit().await.map_err(backend)?;
        Ok(keys)
    }

    async fn households_with_messages(&self) -> StoreResult<Vec<HouseholdId>> {
        let ids: Vec<Uuid> = sqlx::query_scalar("SELECT DISTINCT household_id FROM messages")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        Ok(ids.into_iter().map(HouseholdId).collect())
    }

    async fn played_messages_before(
        &self,
        household: HouseholdId,
        cutoff: OffsetDateTime,
    ) -> StoreResult<Vec<Message>> {
        sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE household_id = $1 AND id IN \
             (SELECT message_id FROM receipts GROUP BY message_id HAVING MIN(played_at) < $2)"
        ))
        .bind(household.0)
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
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE created_at < $1 AND id NOT IN \
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
        sqlx::query("DELETE FROM messages WHERE id = ANY($1)")
            .bind(ids)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn append_audit(&self, record: &AuditRecord) -> StoreResult<AuditEntry> {
        let mut record = record.clone();
        record.at = ms(record.at);
        let mut tx = begin(&self.pool).await?;
        // One chain across every server process: appends take turns.
        sqlx::query("LOCK TABLE audit_log IN EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let last = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        let (prev_seq, prev_hash) = match last {
            Some(row) => (unsigned_col::<u64>(&row, "seq")?, hash_col(&row, "hash")?),
            None => (0, [0u8; 32]),
        };
        let seq = prev_seq + 1;
        let hash = pawpost_domain::audit::chain_hash(&prev_hash, seq, &record);
        sqlx::query(&format!(
            "INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(to_bigint(seq, "audit sequence")?)
        .bind(record.at)
        .bind(record.actor.map(|a| a.0))
        .bind(record.household.map(|h| h.0))
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

    async fn audit_entries(&self, after_seq: u64, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
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

    fn peers(&self) -> Option<std::sync::Arc<dyn Peers>> {
        Some(std::sync::Arc::new(self.clone()))
    }

    async fn account_audit(&self, account: AccountId, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE actor = $1 ORDER BY seq DESC LIMIT $2"
        ))
        .bind(account.0)
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
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE household = $1 ORDER BY seq DESC LIMIT $2"
        ))
        .bind(household.0)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(audit_row)
        .collect()
    }
}

/// Serialises pairing writes across processes, as SQLite's single writer does: a
/// creator's live-code check cannot interleave with another creator's insert, and the
/// statements that count a wrong try against every live pairing cannot deadlock with each
/// other or with the clean-up. SHARE ROW EXCLUSIVE conflicts with itself and with other
/// writers, not with readers; pairings are rare and brief, so the queue stays short.
async fn lock_pairings(tx: &mut sqlx::Transaction<'_, Postgres>) -> StoreResult<()> {
    sqlx::query("LOCK TABLE pairings IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    Ok(())
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

    #[test]
    fn times_keep_whole_milliseconds_like_sqlite() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        let kept = ms(t);
        assert_eq!(kept.unix_timestamp_nanos(), 1_700_000_000_123_000_000);
        assert_eq!(kept.offset(), UtcOffset::UTC);
        let local = t.to_offset(UtcOffset::from_hms(2, 0, 0).unwrap());
        assert_eq!(ms(local), kept, "the offset does not change the instant");
    }

    #[test]
    fn schema_names_that_could_inject_sql_are_refused() {
        for bad in [
            "",
            "Pawpost",
            "1st",
            "pg_catalog",
            "a-b",
            "a\"; DROP SCHEMA public CASCADE; --",
            "a b",
            "é",
            &"a".repeat(MAX_SCHEMA_NAME_LEN + 1),
        ] {
            assert!(
                matches!(check_schema_name(bad), Err(StoreError::Backend(_))),
                "{bad:?}"
            );
        }
        for good in [
            "pawpost",
            "_x",
            "pawpost_test_0a1b",
            &"a".repeat(MAX_SCHEMA_NAME_LEN),
        ] {
            check_schema_name(good).unwrap();
        }
    }
}
