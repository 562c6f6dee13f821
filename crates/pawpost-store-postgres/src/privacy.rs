//! Erasing accounts and households, and the retention sweeps over old messages.
use crate::rows::MessageRow;
use crate::{backend, begin, fetch_all};
use pawpost_domain::{AccountId, HouseholdId, Message};
use pawpost_store::stored::{found, whole_ms};
use pawpost_store::{select, StoreResult};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

pub(crate) async fn delete_account(pool: &PgPool, account: AccountId) -> StoreResult<Vec<String>> {
    let mut tx = begin(pool).await?;
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
    sqlx::query(
        "DELETE FROM receipts WHERE device_id IN (SELECT id FROM devices WHERE account_id = $1)",
    )
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

pub(crate) async fn delete_household(
    pool: &PgPool,
    household: HouseholdId,
) -> StoreResult<Vec<String>> {
    let mut tx = begin(pool).await?;
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

pub(crate) async fn households_with_messages(pool: &PgPool) -> StoreResult<Vec<HouseholdId>> {
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT DISTINCT household_id FROM messages")
        .fetch_all(pool)
        .await
        .map_err(backend)?;
    Ok(ids.into_iter().map(HouseholdId).collect())
}

pub(crate) async fn played_messages_before(
    pool: &PgPool,
    household: HouseholdId,
    cutoff: OffsetDateTime,
) -> StoreResult<Vec<Message>> {
    let query = sqlx::query_as::<_, MessageRow>(select!(
        messages,
        "WHERE household_id = $1 AND id IN \
         (SELECT message_id FROM receipts GROUP BY message_id HAVING MIN(played_at) < $2)"
    ))
    .bind(household.0)
    .bind(whole_ms(cutoff));
    fetch_all(pool, query).await
}

pub(crate) async fn unplayed_messages_before(
    pool: &PgPool,
    cutoff: OffsetDateTime,
) -> StoreResult<Vec<Message>> {
    let query = sqlx::query_as::<_, MessageRow>(select!(
        messages,
        "WHERE created_at < $1 AND id NOT IN \
         (SELECT message_id FROM receipts WHERE played_at IS NOT NULL)"
    ))
    .bind(whole_ms(cutoff));
    fetch_all(pool, query).await
}

pub(crate) async fn delete_messages(pool: &PgPool, ids: &[Uuid]) -> StoreResult<()> {
    sqlx::query("DELETE FROM messages WHERE id = ANY($1)")
        .bind(ids)
        .execute(pool)
        .await
        .map_err(backend)?;
    Ok(())
}
