//! The hash-chained audit trail, one chain across every server process.
use crate::rows::{AuditEndRow, AuditRow};
use crate::{backend, begin, fetch_all};
use pawpost_domain::{AccountId, AuditEntry, AuditRecord, HouseholdId};
use pawpost_store::stored::{bound, next_audit_entry, one, to_integer};
use pawpost_store::{columns, select, StoreError, StoreResult};
use sqlx::PgPool;

pub(crate) async fn append_audit(pool: &PgPool, record: &AuditRecord) -> StoreResult<AuditEntry> {
    let mut entries = append_audits(pool, std::slice::from_ref(record)).await?;
    entries
        .pop()
        .ok_or_else(|| StoreError::Backend("appending to the audit trail gave no entry".into()))
}

pub(crate) async fn append_audits(
    pool: &PgPool,
    records: &[AuditRecord],
) -> StoreResult<Vec<AuditEntry>> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = begin(pool).await?;
    // One chain across every server process: appends take turns.
    sqlx::query("LOCK TABLE audit_log IN EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    let last = sqlx::query_as::<_, AuditEndRow>(
        "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(backend)?;
    let mut end = one(last)?;
    let mut entries = Vec::with_capacity(records.len());
    for record in records {
        let entry = next_audit_entry(end, record);
        let record = &entry.record;
        sqlx::query(concat!(
            "INSERT INTO audit_log (",
            columns!(audit_log),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(to_integer(entry.seq, "audit sequence")?)
        .bind(record.at)
        .bind(record.actor.map(|a| a.0))
        .bind(record.household.map(|h| h.0))
        .bind(&record.action)
        .bind(&record.target)
        .bind(&record.client)
        .bind(entry.prev_hash.as_slice())
        .bind(entry.hash.as_slice())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        end = Some((entry.seq, entry.hash));
        entries.push(entry);
    }
    tx.commit().await.map_err(backend)?;
    Ok(entries)
}

pub(crate) async fn audit_entries(
    pool: &PgPool,
    after_seq: u64,
    limit: u32,
) -> StoreResult<Vec<AuditEntry>> {
    let query =
        sqlx::query_as::<_, AuditRow>(select!(audit_log, "WHERE seq > $1 ORDER BY seq LIMIT $2"))
            .bind(bound(after_seq))
            .bind(i64::from(limit));
    fetch_all(pool, query).await
}

pub(crate) async fn account_audit(
    pool: &PgPool,
    account: AccountId,
    limit: u32,
) -> StoreResult<Vec<AuditEntry>> {
    let query = sqlx::query_as::<_, AuditRow>(select!(
        audit_log,
        "WHERE actor = $1 ORDER BY seq DESC LIMIT $2"
    ))
    .bind(account.0)
    .bind(i64::from(limit));
    fetch_all(pool, query).await
}

pub(crate) async fn household_audit(
    pool: &PgPool,
    household: HouseholdId,
    limit: u32,
) -> StoreResult<Vec<AuditEntry>> {
    let query = sqlx::query_as::<_, AuditRow>(select!(
        audit_log,
        "WHERE household = $1 ORDER BY seq DESC LIMIT $2"
    ))
    .bind(household.0)
    .bind(i64::from(limit));
    fetch_all(pool, query).await
}
