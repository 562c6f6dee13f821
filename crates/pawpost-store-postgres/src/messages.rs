//! Messages, their receipts (one per recipient device) and parents' approvals.
use crate::rows::{ApprovalRow, MessageRow, ReceiptRow};
use crate::{backend, begin, execute, fetch_all, fetch_optional, unique_violation};
use pawpost_domain::{AccountId, Approval, DeviceId, HouseholdId, Message, Receipt, ReceiptState};
use pawpost_store::stored::{found, to_integer, whole_ms};
use pawpost_store::{columns, select, StoreResult};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

pub(crate) async fn insert_message(
    pool: &PgPool,
    m: &Message,
    recipients: &[DeviceId],
) -> StoreResult<()> {
    insert(pool, m, recipients, None).await
}

/// Concurrent commits share PostgreSQL's write-ahead log flush (its own group commit), so
/// the row and its envelope cost one flush shared with the other uploads of the moment.
pub(crate) async fn insert_message_with_envelope(
    pool: &PgPool,
    m: &Message,
    recipients: &[DeviceId],
    envelope: &[u8],
) -> StoreResult<()> {
    insert(pool, m, recipients, Some(envelope)).await
}

pub(crate) async fn message_envelope(pool: &PgPool, id: Uuid) -> StoreResult<Option<Vec<u8>>> {
    let envelope: Option<Option<Vec<u8>>> =
        sqlx::query_scalar("SELECT envelope FROM messages WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(backend)?;
    Ok(envelope.flatten())
}

async fn insert(
    pool: &PgPool,
    m: &Message,
    recipients: &[DeviceId],
    envelope: Option<&[u8]>,
) -> StoreResult<()> {
    let mut tx = begin(pool).await?;
    sqlx::query(concat!(
        "INSERT INTO messages (",
        columns!(messages),
        ", envelope) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    ))
    .bind(m.id)
    .bind(m.household_id.0)
    .bind(m.sender_device.0)
    .bind(m.sender_account.map(|a| a.0))
    .bind(i16::from(m.media_type))
    .bind(i64::from(m.duration_ms))
    .bind(to_integer(m.envelope_len, "envelope length")?)
    .bind(whole_ms(m.created_at))
    .bind(&m.blob_key)
    .bind(envelope)
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

pub(crate) async fn message(pool: &PgPool, id: Uuid) -> StoreResult<Option<Message>> {
    let query = sqlx::query_as::<_, MessageRow>(select!(messages, "WHERE id = $1")).bind(id);
    fetch_optional(pool, query).await
}

pub(crate) async fn receipts(pool: &PgPool, message: Uuid) -> StoreResult<Vec<Receipt>> {
    let query = sqlx::query_as::<_, ReceiptRow>(
        "SELECT device_id, delivered_at, played_at, refused_at, refusal FROM receipts \
         WHERE message_id = $1 ORDER BY device_id",
    )
    .bind(message);
    fetch_all(pool, query).await
}

pub(crate) async fn messages_for_account(
    pool: &PgPool,
    household: HouseholdId,
    account: AccountId,
) -> StoreResult<Vec<Message>> {
    let query = sqlx::query_as::<_, MessageRow>(select!(
        messages,
        "WHERE household_id = $1 AND (sender_account = $2 OR id IN \
         (SELECT r.message_id FROM receipts r JOIN devices d ON d.id = r.device_id WHERE d.account_id = $2)) \
         ORDER BY created_at, id"
    ))
    .bind(household.0)
    .bind(account.0);
    fetch_all(pool, query).await
}

pub(crate) async fn messages_of_household(
    pool: &PgPool,
    household: HouseholdId,
) -> StoreResult<Vec<Message>> {
    let query = sqlx::query_as::<_, MessageRow>(select!(
        messages,
        "WHERE household_id = $1 ORDER BY created_at, id"
    ))
    .bind(household.0);
    fetch_all(pool, query).await
}

pub(crate) async fn undelivered_for(pool: &PgPool, device: DeviceId) -> StoreResult<Vec<Message>> {
    let query = sqlx::query_as::<_, MessageRow>(select!(
        messages,
        "WHERE id IN \
         (SELECT message_id FROM receipts WHERE device_id = $1 AND delivered_at IS NULL) \
         ORDER BY created_at, id"
    ))
    .bind(device.0);
    fetch_all(pool, query).await
}

pub(crate) async fn set_receipt(
    pool: &PgPool,
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
    let query = sqlx::query(sql)
        .bind(whole_ms(at))
        .bind(message)
        .bind(device.0);
    found(execute(pool, query).await?, "receipt")
}

pub(crate) async fn refuse_receipt(
    pool: &PgPool,
    message: Uuid,
    device: DeviceId,
    reason: &str,
    at: OffsetDateTime,
) -> StoreResult<()> {
    let query = sqlx::query(
        "UPDATE receipts SET delivered_at = COALESCE(delivered_at, $1), \
         refused_at = CASE WHEN played_at IS NULL THEN COALESCE(refused_at, $1) END, \
         refusal = CASE WHEN played_at IS NULL THEN COALESCE(refusal, $2) END \
         WHERE message_id = $3 AND device_id = $4",
    )
    .bind(whole_ms(at))
    .bind(reason)
    .bind(message)
    .bind(device.0);
    found(execute(pool, query).await?, "receipt")
}

pub(crate) async fn insert_approval(pool: &PgPool, a: &Approval) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO approvals (message_id, approver, signature, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (message_id) DO NOTHING",
    )
    .bind(a.message_id)
    .bind(a.approver.0)
    .bind(&a.signature)
    .bind(whole_ms(a.created_at))
    .execute(pool)
    .await
    .map_err(backend)?;
    Ok(())
}

pub(crate) async fn approvals_pending_for(
    pool: &PgPool,
    device: DeviceId,
) -> StoreResult<Vec<Approval>> {
    let query = sqlx::query_as::<_, ApprovalRow>(
        "SELECT a.message_id, a.approver, a.signature, a.created_at FROM approvals a \
         JOIN receipts r ON r.message_id = a.message_id \
         WHERE r.device_id = $1 AND r.played_at IS NULL AND r.refused_at IS NULL ORDER BY a.created_at",
    )
    .bind(device.0);
    fetch_all(pool, query).await
}
