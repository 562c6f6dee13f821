//! Erasing accounts and households, and the retention sweeps over old messages. Every
//! deletion ends with a checkpoint, so that erased rows do not linger in the log.
use crate::rows::MessageRow;
use crate::write::to_the_end;
use crate::{backend, checkpoint, fetch_all};
use pawpost_domain::{AccountId, HouseholdId, Message};
use pawpost_store::stored::{self, found, to_ms};
use pawpost_store::{select, StoreResult};
use sqlx::SqlitePool;
use time::OffsetDateTime;
use uuid::Uuid;

/// Runs [`delete_account_now`] to its end in a task of its own, its write lock taken first
/// (see [`crate::write::to_the_end`]).
pub(crate) async fn delete_account(
    pool: &SqlitePool,
    account: AccountId,
) -> StoreResult<Vec<String>> {
    let pool = pool.clone();
    to_the_end(async move { delete_account_now(&pool, account).await }).await
}

async fn delete_account_now(pool: &SqlitePool, account: AccountId) -> StoreResult<Vec<String>> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
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
    checkpoint(pool).await?;
    Ok(keys)
}

/// Runs [`delete_household_now`] to its end in a task of its own, its write lock taken first
/// (see [`crate::write::to_the_end`]).
pub(crate) async fn delete_household(
    pool: &SqlitePool,
    household: HouseholdId,
) -> StoreResult<Vec<String>> {
    let pool = pool.clone();
    to_the_end(async move { delete_household_now(&pool, household).await }).await
}

async fn delete_household_now(
    pool: &SqlitePool,
    household: HouseholdId,
) -> StoreResult<Vec<String>> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
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
    checkpoint(pool).await?;
    Ok(keys)
}

pub(crate) async fn households_with_messages(pool: &SqlitePool) -> StoreResult<Vec<HouseholdId>> {
    let ids: Vec<String> = sqlx::query_scalar("SELECT DISTINCT household_id FROM messages")
        .fetch_all(pool)
        .await
        .map_err(backend)?;
    ids.iter()
        .map(|id| stored::uuid(id, "household_id").map(HouseholdId))
        .collect()
}

pub(crate) async fn played_messages_before(
    pool: &SqlitePool,
    household: HouseholdId,
    cutoff: OffsetDateTime,
) -> StoreResult<Vec<Message>> {
    let query = sqlx::query_as::<_, MessageRow>(select!(
        messages,
        "WHERE household_id = ? AND id IN \
         (SELECT message_id FROM receipts GROUP BY message_id HAVING MIN(played_at) < ?)"
    ))
    .bind(household.to_string())
    .bind(to_ms(cutoff));
    fetch_all(pool, query).await
}

pub(crate) async fn unplayed_messages_before(
    pool: &SqlitePool,
    cutoff: OffsetDateTime,
) -> StoreResult<Vec<Message>> {
    let query = sqlx::query_as::<_, MessageRow>(select!(
        messages,
        "WHERE created_at < ? AND id NOT IN \
         (SELECT message_id FROM receipts WHERE played_at IS NOT NULL)"
    ))
    .bind(to_ms(cutoff));
    fetch_all(pool, query).await
}

/// Runs [`delete_messages_now`] to its end in a task of its own, its write lock taken first
/// (see [`crate::write::to_the_end`]).
pub(crate) async fn delete_messages(pool: &SqlitePool, ids: &[Uuid]) -> StoreResult<()> {
    let pool = pool.clone();
    let ids = ids.to_vec();
    to_the_end(async move { delete_messages_now(&pool, &ids).await }).await
}

async fn delete_messages_now(pool: &SqlitePool, ids: &[Uuid]) -> StoreResult<()> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    for id in ids {
        sqlx::query("DELETE FROM messages WHERE id = ?")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
    }
    tx.commit().await.map_err(backend)?;
    if !ids.is_empty() {
        checkpoint(pool).await?;
    }
    Ok(())
}
