//! Passkeys, their recovery material, and their ceremonies between two requests.
use crate::{backend, execute, fetch_all, fetch_optional, unique_violation};
use pawpost_domain::AccountId;
use pawpost_store::stored::{self, found, from_ms, opt_from_ms, to_ms};
use pawpost_store::{PasskeyCeremony, StoreError, StoreResult, StoredPasskey};
use sqlx::{FromRow, SqlitePool};
use time::OffsetDateTime;
use uuid::Uuid;

/// The columns of a passkey as [`PasskeyRow`] reads them (not its recovery material).
const PASSKEY_COLUMNS: &str = "id, account_id, credential_id, label, credential, created_at, \
    last_used_at, recovery_material IS NOT NULL AS has_recovery_material";

#[derive(FromRow)]
struct PasskeyRow {
    id: String,
    account_id: String,
    credential_id: Vec<u8>,
    label: String,
    credential: String,
    created_at: i64,
    last_used_at: Option<i64>,
    has_recovery_material: i64,
}

impl TryFrom<PasskeyRow> for StoredPasskey {
    type Error = StoreError;
    fn try_from(r: PasskeyRow) -> Result<Self, StoreError> {
        Ok(StoredPasskey {
            id: stored::uuid(&r.id, "id")?,
            account_id: AccountId(stored::uuid(&r.account_id, "account_id")?),
            credential_id: r.credential_id,
            label: r.label,
            credential: r.credential,
            created_at: from_ms(r.created_at)?,
            last_used_at: opt_from_ms(r.last_used_at)?,
            has_recovery_material: r.has_recovery_material != 0,
        })
    }
}

#[derive(FromRow)]
struct CeremonyRow {
    id: String,
    purpose: String,
    account_id: Option<String>,
    state: String,
    expires_at: i64,
}

impl TryFrom<CeremonyRow> for PasskeyCeremony {
    type Error = StoreError;
    fn try_from(r: CeremonyRow) -> Result<Self, StoreError> {
        Ok(PasskeyCeremony {
            id: stored::uuid(&r.id, "id")?,
            purpose: r.purpose,
            account_id: stored::opt_uuid(r.account_id.as_deref(), "account_id")?.map(AccountId),
            state: r.state,
            expires_at: from_ms(r.expires_at)?,
        })
    }
}

pub(crate) async fn create_passkey_ceremony(
    pool: &SqlitePool,
    c: &PasskeyCeremony,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO passkey_ceremonies (id, purpose, account_id, state, expires_at) \
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(c.id.to_string())
    .bind(&c.purpose)
    .bind(c.account_id.map(|a| a.to_string()))
    .bind(&c.state)
    .bind(to_ms(c.expires_at))
    .execute(pool)
    .await
    .map_err(|e| unique_violation(e, "a passkey ceremony with this id"))?;
    Ok(())
}

pub(crate) async fn take_passkey_ceremony(
    pool: &SqlitePool,
    id: Uuid,
) -> StoreResult<Option<PasskeyCeremony>> {
    // One statement: SQLite runs it under the write lock, so of two takes only one
    // finds the row.
    let query = sqlx::query_as::<_, CeremonyRow>(
        "DELETE FROM passkey_ceremonies WHERE id = ? \
         RETURNING id, purpose, account_id, state, expires_at",
    )
    .bind(id.to_string());
    fetch_optional(pool, query).await
}

pub(crate) async fn delete_expired_passkey_ceremonies(
    pool: &SqlitePool,
    cutoff: OffsetDateTime,
) -> StoreResult<u64> {
    let query =
        sqlx::query("DELETE FROM passkey_ceremonies WHERE expires_at <= ?").bind(to_ms(cutoff));
    execute(pool, query).await
}

pub(crate) async fn add_passkey(pool: &SqlitePool, p: &StoredPasskey) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO passkeys (id, account_id, credential_id, label, credential, created_at, \
         last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(p.id.to_string())
    .bind(p.account_id.to_string())
    .bind(p.credential_id.as_slice())
    .bind(&p.label)
    .bind(&p.credential)
    .bind(to_ms(p.created_at))
    .bind(p.last_used_at.map(to_ms))
    .execute(pool)
    .await
    .map_err(|e| unique_violation(e, "a passkey with this credential id"))?;
    Ok(())
}

pub(crate) async fn passkeys_of(
    pool: &SqlitePool,
    account: AccountId,
) -> StoreResult<Vec<StoredPasskey>> {
    let sql = format!(
        "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE account_id = ? ORDER BY created_at, id"
    );
    let query = sqlx::query_as::<_, PasskeyRow>(&sql).bind(account.to_string());
    fetch_all(pool, query).await
}

pub(crate) async fn passkey_by_credential_id(
    pool: &SqlitePool,
    credential_id: &[u8],
) -> StoreResult<Option<StoredPasskey>> {
    let sql = format!("SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE credential_id = ?");
    let query = sqlx::query_as::<_, PasskeyRow>(&sql).bind(credential_id);
    fetch_optional(pool, query).await
}

pub(crate) async fn record_passkey_use(
    pool: &SqlitePool,
    id: Uuid,
    credential: &str,
    at: OffsetDateTime,
) -> StoreResult<()> {
    let query = sqlx::query("UPDATE passkeys SET credential = ?, last_used_at = ? WHERE id = ?")
        .bind(credential)
        .bind(to_ms(at))
        .bind(id.to_string());
    found(execute(pool, query).await?, "passkey")
}

pub(crate) async fn delete_passkey(
    pool: &SqlitePool,
    account: AccountId,
    id: Uuid,
    keep_one: bool,
) -> StoreResult<bool> {
    // One statement, so that two removals at once cannot both see another passkey left.
    let query = sqlx::query(
        "DELETE FROM passkeys WHERE id = ? AND account_id = ? \
         AND (NOT ? OR (SELECT count(*) FROM passkeys WHERE account_id = ?) > 1)",
    )
    .bind(id.to_string())
    .bind(account.to_string())
    .bind(keep_one)
    .bind(account.to_string());
    Ok(execute(pool, query).await? > 0)
}

pub(crate) async fn set_passkey_recovery_material(
    pool: &SqlitePool,
    account: AccountId,
    id: Uuid,
    material: &[u8],
) -> StoreResult<bool> {
    let query =
        sqlx::query("UPDATE passkeys SET recovery_material = ? WHERE id = ? AND account_id = ?")
            .bind(material)
            .bind(id.to_string())
            .bind(account.to_string());
    Ok(execute(pool, query).await? > 0)
}

pub(crate) async fn passkey_recovery_material(
    pool: &SqlitePool,
    account: AccountId,
    id: Uuid,
) -> StoreResult<Option<Vec<u8>>> {
    let material: Option<Option<Vec<u8>>> = sqlx::query_scalar(
        "SELECT recovery_material FROM passkeys WHERE id = ? AND account_id = ?",
    )
    .bind(id.to_string())
    .bind(account.to_string())
    .fetch_optional(pool)
    .await
    .map_err(backend)?;
    Ok(material.flatten())
}
