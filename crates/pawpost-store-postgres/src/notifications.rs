//! Which notification mails a person wants, and the keys the server made for itself
//! (see migration 0018).
use crate::{backend, execute};
use pawpost_domain::AccountId;
use pawpost_store::{StoreError, StoreResult};
use sqlx::PgPool;

pub(crate) async fn notification_settings(
    pool: &PgPool,
    account: AccountId,
) -> StoreResult<Vec<(String, bool)>> {
    let rows: Vec<(String, bool)> = sqlx::query_as(
        "SELECT kind, enabled FROM notification_settings WHERE account_id = $1 ORDER BY kind",
    )
    .bind(account.0)
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    Ok(rows)
}

pub(crate) async fn set_notification_setting(
    pool: &PgPool,
    account: AccountId,
    kind: &str,
    enabled: bool,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO notification_settings (account_id, kind, enabled) VALUES ($1, $2, $3) \
         ON CONFLICT (account_id, kind) DO UPDATE SET enabled = excluded.enabled",
    )
    .bind(account.0)
    .bind(kind)
    .bind(enabled)
    .execute(pool)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::NotFound("account")
        }
        _ => backend(e),
    })?;
    Ok(())
}

pub(crate) async fn server_secret(pool: &PgPool, name: &str, fresh: &[u8]) -> StoreResult<Vec<u8>> {
    let insert = sqlx::query(
        "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(fresh);
    execute(pool, insert).await?;
    let (value,): (Vec<u8>,) = sqlx::query_as("SELECT value FROM server_secrets WHERE name = $1")
        .bind(name)
        .fetch_one(pool)
        .await
        .map_err(backend)?;
    Ok(value)
}
