//! Messages, their receipts (one per recipient device) and parents' approvals.
use crate::group::{Database, Write};
use crate::rows::{ApprovalRow, MessageRow, ReceiptRow};
use crate::{backend, execute, fetch_all, fetch_optional};
use pawpost_domain::{AccountId, Approval, DeviceId, HouseholdId, Message, Receipt, ReceiptState};
use pawpost_store::stored::{found, to_ms};
use pawpost_store::{select, StoreResult};
use sqlx::SqlitePool;
use time::OffsetDateTime;
use uuid::Uuid;

/// Joins the next group commit (see [`crate::group`]).
pub(crate) async fn insert_message(
    db: &Database,
    m: &Message,
    recipients: &[DeviceId],
) -> StoreResult<()> {
    db.write(Write::Message {
        message: m.clone(),
        recipients: recipients.to_vec(),
        envelope: None,
    })
    .await
}

/// Joins the next group commit (see [`crate::group`]), the envelope in the row.
pub(crate) async fn insert_message_with_envelope(
    db: &Database,
    m: &Message,
    recipients: &[DeviceId],
    envelope: &[u8],
) -> StoreResult<()> {
    db.write(Write::Message {
        message: m.clone(),
        recipients: recipients.to_vec(),
        envelope: Some(envelope.to_vec()),
    })
    .await
}

pub(crate) async fn message_envelope(pool: &SqlitePool, id: Uuid) -> StoreResult<Option<Vec<u8>>> {
    let envelope: Option<Option<Vec<u8>>> =
        sqlx::query_scalar("SELECT envelope FROM messages WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(pool)
            .await
            .map_err(backend)?;
    Ok(envelope.flatten())
}

pub(crate) async fn message(pool: &SqlitePool, id: Uuid) -> StoreResult<Option<Message>> {
    let query =
        sqlx::query_as::<_, MessageRow>(select!(messages, "WHERE id = ?")).bind(id.to_string());
    fetch_optional(pool, query).await
}

pub(crate) async fn receipts(pool: &SqlitePool, message: Uuid) -> StoreResult<Vec<Receipt>> {
    let query = sqlx::query_as::<_, ReceiptRow>(
        "SELECT device_id, delivered_at, played_at, refused_at, refusal FROM receipts \
         WHERE message_id = ? ORDER BY device_id",
    )
    .bind(message.to_string());
    fetch_all(pool, query).await
}

pub(crate) async fn messages_for_account(
    pool: &SqlitePool,
    household: HouseholdId,
    account: AccountId,
) -> StoreResult<Vec<Message>> {
    let query = sqlx::query_as::<_, MessageRow>(select!(
        messages,
        "WHERE household_id = ?1 AND (sender_account = ?2 OR id IN \
         (SELECT r.message_id FROM receipts r JOIN devices d ON d.id = r.device_id WHERE d.account_id = ?2)) \
         ORDER BY created_at, id"
    ))
    .bind(household.to_string())
    .bind(account.to_string());
    fetch_all(pool, query).await
}

pub(crate) async fn messages_of_household(
    pool: &SqlitePool,
    household: HouseholdId,
) -> StoreResult<Vec<Message>> {
    let query = sqlx::query_as::<_, MessageRow>(select!(
        messages,
        "WHERE household_id = ? ORDER BY created_at, id"
    ))
    .bind(household.to_string());
    fetch_all(pool, query).await
}

pub(crate) async fn undelivered_for(
    pool: &SqlitePool,
    device: DeviceId,
) -> StoreResult<Vec<Message>> {
    let query = sqlx::query_as::<_, MessageRow>(select!(
        messages,
        "WHERE id IN \
         (SELECT message_id FROM receipts WHERE device_id = ? AND delivered_at IS NULL) \
         ORDER BY created_at, id"
    ))
    .bind(device.to_string());
    fetch_all(pool, query).await
}

/// Joins the next group commit (see [`crate::group`]): a toy's `Delivered` shares the
/// sync of the uploads and receipts of the moment.
pub(crate) async fn set_receipt(
    db: &Database,
    message: Uuid,
    device: DeviceId,
    state: ReceiptState,
    at: OffsetDateTime,
) -> StoreResult<()> {
    db.write(Write::Receipt {
        message,
        device,
        state,
        at,
    })
    .await
}

pub(crate) async fn refuse_receipt(
    pool: &SqlitePool,
    message: Uuid,
    device: DeviceId,
    reason: &str,
    at: OffsetDateTime,
) -> StoreResult<()> {
    let query = sqlx::query(
        "UPDATE receipts SET delivered_at = COALESCE(delivered_at, ?1), \
         refused_at = CASE WHEN played_at IS NULL THEN COALESCE(refused_at, ?1) END, \
         refusal = CASE WHEN played_at IS NULL THEN COALESCE(refusal, ?2) END \
         WHERE message_id = ?3 AND device_id = ?4",
    )
    .bind(to_ms(at))
    .bind(reason)
    .bind(message.to_string())
    .bind(device.to_string());
    found(execute(pool, query).await?, "receipt")
}

pub(crate) async fn insert_approval(pool: &SqlitePool, a: &Approval) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO approvals (message_id, approver, signature, created_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (message_id) DO NOTHING",
    )
    .bind(a.message_id.to_string())
    .bind(a.approver.to_string())
    .bind(&a.signature)
    .bind(to_ms(a.created_at))
    .execute(pool)
    .await
    .map_err(backend)?;
    Ok(())
}

pub(crate) async fn approvals_pending_for(
    pool: &SqlitePool,
    device: DeviceId,
) -> StoreResult<Vec<Approval>> {
    let query = sqlx::query_as::<_, ApprovalRow>(
        "SELECT a.message_id, a.approver, a.signature, a.created_at FROM approvals a \
         JOIN receipts r ON r.message_id = a.message_id \
         WHERE r.device_id = ? AND r.played_at IS NULL AND r.refused_at IS NULL ORDER BY a.created_at",
    )
    .bind(device.to_string());
    fetch_all(pool, query).await
}
