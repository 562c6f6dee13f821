//! The hash-chained audit trail.
use crate::group::{Database, Write, Written};
use crate::rows::{AuditEndRow, AuditRow};
use crate::{backend, fetch_all};
use pawpost_domain::{AccountId, AuditEntry, AuditRecord, HouseholdId};
use pawpost_store::stored::{bound, next_audit_entry, one, to_integer, to_ms};
use pawpost_store::{columns, select, StoreError, StoreResult};
use sqlx::{SqliteConnection, SqlitePool};

pub(crate) async fn append_audit(db: &Database, record: &AuditRecord) -> StoreResult<AuditEntry> {
    let mut entries = append_audits(db, std::slice::from_ref(record)).await?;
    entries
        .pop()
        .ok_or_else(|| StoreError::Backend("appending to the audit trail gave no entry".into()))
}

/// Entries chained to the last, in one commit: see
/// [`pawpost_store::MetadataStore::append_audits`]. They join the group commit (see
/// [`crate::group`]), which runs to its end even when the caller stops waiting.
pub(crate) async fn append_audits(
    db: &Database,
    records: &[AuditRecord],
) -> StoreResult<Vec<AuditEntry>> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    match db.write_returning(Write::Audits(records.to_vec())).await? {
        Written::Audits(entries) => Ok(entries),
        Written::Nothing => Err(StoreError::Backend(
            "appending to the audit trail gave no entries".into(),
        )),
    }
}

/// Chains `records` to the end of the trail inside the writer's transaction, which holds
/// the write lock (`BEGIN IMMEDIATE`), so that no other append chains to the same entry.
///
/// `known_end` is the end of the trail when an earlier write of the same transaction
/// already read or moved it (`None`: read it here); it holds the new end once every entry
/// is in (and is left as it was when one fails).
pub(crate) async fn chain(
    conn: &mut SqliteConnection,
    records: &[AuditRecord],
    known_end: &mut Option<Option<(u64, [u8; 32])>>,
) -> StoreResult<Vec<AuditEntry>> {
    let mut end = match *known_end {
        Some(end) => end,
        None => {
            let last = sqlx::query_as::<_, AuditEndRow>(
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
            )
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
            one(last)?
        }
    };
    let mut entries = Vec::with_capacity(records.len());
    for record in records {
        let entry = next_audit_entry(end, record);
        let record = &entry.record;
        sqlx::query(concat!(
            "INSERT INTO audit_log (",
            columns!(audit_log),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(to_integer(entry.seq, "audit sequence number")?)
        .bind(to_ms(record.at))
        .bind(record.actor.map(|a| a.to_string()))
        .bind(record.household.map(|h| h.to_string()))
        .bind(&record.action)
        .bind(&record.target)
        .bind(&record.client)
        .bind(entry.prev_hash.as_slice())
        .bind(entry.hash.as_slice())
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
        end = Some((entry.seq, entry.hash));
        entries.push(entry);
    }
    *known_end = Some(end);
    Ok(entries)
}

pub(crate) async fn audit_entries(
    pool: &SqlitePool,
    after_seq: u64,
    limit: u32,
) -> StoreResult<Vec<AuditEntry>> {
    let query =
        sqlx::query_as::<_, AuditRow>(select!(audit_log, "WHERE seq > ? ORDER BY seq LIMIT ?"))
            .bind(bound(after_seq))
            .bind(i64::from(limit));
    fetch_all(pool, query).await
}

pub(crate) async fn account_audit(
    pool: &SqlitePool,
    account: AccountId,
    limit: u32,
) -> StoreResult<Vec<AuditEntry>> {
    let query = sqlx::query_as::<_, AuditRow>(select!(
        audit_log,
        "WHERE actor = ? ORDER BY seq DESC LIMIT ?"
    ))
    .bind(account.to_string())
    .bind(i64::from(limit));
    fetch_all(pool, query).await
}

pub(crate) async fn household_audit(
    pool: &SqlitePool,
    household: HouseholdId,
    limit: u32,
) -> StoreResult<Vec<AuditEntry>> {
    let query = sqlx::query_as::<_, AuditRow>(select!(
        audit_log,
        "WHERE household = ? ORDER BY seq DESC LIMIT ?"
    ))
    .bind(household.to_string())
    .bind(i64::from(limit));
    fetch_all(pool, query).await
}
