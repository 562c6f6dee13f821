//! Which notification mails a person wants, and the keys the server made for itself
//! (see migration 0018).
use crate::{backend, execute};
use pawpost_domain::AccountId;
use pawpost_store::{StoreError, StoreResult};
use sqlx::SqlitePool;

pub(crate) async fn notification_settings(
    pool: &SqlitePool,
    account: AccountId,
) -> StoreResult<Vec<(String, bool)>> {
    let rows: Vec<(String, bool)> = sqlx::query_as(
        "SELECT kind, enabled FROM notification_settings WHERE account_id = ? ORDER BY kind",
    )
    .bind(account.to_string())
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    Ok(rows)
}

pub(crate) async fn set_notification_setting(
    pool: &SqlitePool,
    account: AccountId,
    kind: &str,
    enabled: bool,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO notification_settings (account_id, kind, enabled) VALUES (?, ?, ?) \
         ON CONFLICT (account_id, kind) DO UPDATE SET enabled = excluded.enabled",
    )
    .bind(account.to_string())
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

pub(crate) async fn server_secret(
    pool: &SqlitePool,
    name: &str,
    fresh: &[u8],
) -> StoreResult<Vec<u8>> {
    let insert = sqlx::query(
        "INSERT INTO server_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(fresh);
    execute(pool, insert).await?;
    let (value,): (Vec<u8>,) = sqlx::query_as("SELECT value FROM server_secrets WHERE name = ?")
        .bind(name)
        .fetch_one(pool)
        .await
        .map_err(backend)?;
    Ok(value)
}
