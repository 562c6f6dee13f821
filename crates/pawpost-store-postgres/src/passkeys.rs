//! Passkeys, their recovery material, and their ceremonies between two requests.
use crate::{backend, execute, fetch_all, fetch_optional, unique_violation};
use pawpost_domain::AccountId;
use pawpost_store::stored::{found, whole_ms};
use pawpost_store::{PasskeyCeremony, StoreError, StoreResult, StoredPasskey};
use sqlx::{FromRow, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

/// The columns of a passkey as [`PasskeyRow`] reads them (not its recovery material).
const PASSKEY_COLUMNS: &str = "id, account_id, credential_id, label, credential, created_at, \
    last_used_at, recovery_material IS NOT NULL AS has_recovery_material";

#[derive(FromRow)]
struct PasskeyRow {
    id: Uuid,
    account_id: Uuid,
    credential_id: Vec<u8>,
    label: String,
    credential: String,
    created_at: OffsetDateTime,
    last_used_at: Option<OffsetDateTime>,
    has_recovery_material: bool,
}

impl TryFrom<PasskeyRow> for StoredPasskey {
    type Error = StoreError;
    fn try_from(r: PasskeyRow) -> Result<Self, StoreError> {
        Ok(StoredPasskey {
            id: r.id,
            account_id: AccountId(r.account_id),
            credential_id: r.credential_id,
            label: r.label,
            credential: r.credential,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            has_recovery_material: r.has_recovery_material,
        })
    }
}

#[derive(FromRow)]
struct CeremonyRow {
    id: Uuid,
    purpose: String,
    account_id: Option<Uuid>,
    state: String,
    expires_at: OffsetDateTime,
}

impl TryFrom<CeremonyRow> for PasskeyCeremony {
    type Error = StoreError;
    fn try_from(r: CeremonyRow) -> Result<Self, StoreError> {
        Ok(PasskeyCeremony {
            id: r.id,
            purpose: r.purpose,
            account_id: r.account_id.map(AccountId),
            state: r.state,
            expires_at: r.expires_at,
        })
    }
}

pub(crate) async fn create_passkey_ceremony(pool: &PgPool, c: &PasskeyCeremony) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO passkey_ceremonies (id, purpose, account_id, state, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(c.id)
    .bind(&c.purpose)
    .bind(c.account_id.map(|a| a.0))
    .bind(&c.state)
    .bind(whole_ms(c.expires_at))
    .execute(pool)
    .await
    .map_err(|e| unique_violation(e, "a passkey ceremony with this id"))?;
    Ok(())
}

pub(crate) async fn take_passkey_ceremony(
    pool: &PgPool,
    id: Uuid,
) -> StoreResult<Option<PasskeyCeremony>> {
    // One statement: of two takes at once, the second waits for the first's row lock
    // and then finds the row gone.
    let query = sqlx::query_as::<_, CeremonyRow>(
        "DELETE FROM passkey_ceremonies WHERE id = $1 \
         RETURNING id, purpose, account_id, state, expires_at",
    )
    .bind(id);
    fetch_optional(pool, query).await
}

pub(crate) async fn delete_expired_passkey_ceremonies(
    pool: &PgPool,
    cutoff: OffsetDateTime,
) -> StoreResult<u64> {
    let query =
        sqlx::query("DELETE FROM passkey_ceremonies WHERE expires_at <= $1").bind(whole_ms(cutoff));
    execute(pool, query).await
}

pub(crate) async fn add_passkey(pool: &PgPool, p: &StoredPasskey) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO passkeys (id, account_id, credential_id, label, credential, created_at, \
         last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(p.id)
    .bind(p.account_id.0)
    .bind(p.credential_id.as_slice())
    .bind(&p.label)
    .bind(&p.credential)
    .bind(whole_ms(p.created_at))
    .bind(p.last_used_at.map(whole_ms))
    .execute(pool)
    .await
    .map_err(|e| unique_violation(e, "a passkey with this credential id"))?;
    Ok(())
}

pub(crate) async fn passkeys_of(
    pool: &PgPool,
    account: AccountId,
) -> StoreResult<Vec<StoredPasskey>> {
    let sql = format!(
        "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE account_id = $1 ORDER BY created_at, id"
    );
    let query = sqlx::query_as::<_, PasskeyRow>(&sql).bind(account.0);
    fetch_all(pool, query).await
}

pub(crate) async fn passkey_by_credential_id(
    pool: &PgPool,
    credential_id: &[u8],
) -> StoreResult<Option<StoredPasskey>> {
    let sql = format!("SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE credential_id = $1");
    let query = sqlx::query_as::<_, PasskeyRow>(&sql).bind(credential_id);
    fetch_optional(pool, query).await
}

pub(crate) async fn record_passkey_use(
    pool: &PgPool,
    id: Uuid,
    credential: &str,
    at: OffsetDateTime,
) -> StoreResult<()> {
    let query = sqlx::query("UPDATE passkeys SET credential = $1, last_used_at = $2 WHERE id = $3")
        .bind(credential)
        .bind(whole_ms(at))
        .bind(id);
    found(execute(pool, query).await?, "passkey")
}

pub(crate) async fn delete_passkey(
    pool: &PgPool,
    account: AccountId,
    id: Uuid,
    keep_one: bool,
) -> StoreResult<bool> {
    // One statement, so that two removals at once cannot both see another passkey left.
    let query = sqlx::query(
        "DELETE FROM passkeys WHERE id = $1 AND account_id = $2 \
         AND (NOT $3 OR (SELECT count(*) FROM passkeys WHERE account_id = $2) > 1)",
    )
    .bind(id)
    .bind(account.0)
    .bind(keep_one);
    Ok(execute(pool, query).await? > 0)
}

pub(crate) async fn set_passkey_recovery_material(
    pool: &PgPool,
    account: AccountId,
    id: Uuid,
    material: &[u8],
) -> StoreResult<bool> {
    let query =
        sqlx::query("UPDATE passkeys SET recovery_material = $1 WHERE id = $2 AND account_id = $3")
            .bind(material)
            .bind(id)
            .bind(account.0);
    Ok(execute(pool, query).await? > 0)
}

pub(crate) async fn passkey_recovery_material(
    pool: &PgPool,
    account: AccountId,
    id: Uuid,
) -> StoreResult<Option<Vec<u8>>> {
    let material: Option<Option<Vec<u8>>> = sqlx::query_scalar(
        "SELECT recovery_material FROM passkeys WHERE id = $1 AND account_id = $2",
    )
    .bind(id)
    .bind(account.0)
    .fetch_optional(pool)
    .await
    .map_err(backend)?;
    Ok(material.flatten())
}
