//! What the household keeps about a paired toy besides its keys: its names record, the
//! parents' safety-number check and when it was last connected (see migration 0020).
use crate::group::{Database, Write};
use crate::{execute, fetch_all};
use pawpost_domain::{AccountId, DeviceId, HouseholdId};
use pawpost_store::stored::{self, opt_from_ms, to_ms};
use pawpost_store::{StoreError, StoreResult, ToyProfile};
use sqlx::{FromRow, SqlitePool};
use time::OffsetDateTime;

#[derive(FromRow)]
struct ToyProfileRow {
    toy_device_id: String,
    names_envelope: Option<Vec<u8>>,
    names_updated_at: Option<i64>,
    safety_checked_by: Option<String>,
    safety_checked_at: Option<i64>,
    last_seen_at: Option<i64>,
}

impl TryFrom<ToyProfileRow> for ToyProfile {
    type Error = StoreError;
    fn try_from(r: ToyProfileRow) -> Result<Self, StoreError> {
        Ok(ToyProfile {
            toy_device_id: DeviceId(stored::uuid(&r.toy_device_id, "toy_device_id")?),
            names_envelope: r.names_envelope,
            names_updated_at: opt_from_ms(r.names_updated_at)?,
            safety_checked_by: stored::opt_uuid(
                r.safety_checked_by.as_deref(),
                "safety_checked_by",
            )?
            .map(AccountId),
            safety_checked_at: opt_from_ms(r.safety_checked_at)?,
            last_seen_at: opt_from_ms(r.last_seen_at)?,
        })
    }
}

pub(crate) async fn toy_profiles(
    pool: &SqlitePool,
    household: HouseholdId,
) -> StoreResult<Vec<ToyProfile>> {
    let query = sqlx::query_as::<_, ToyProfileRow>(
        "SELECT p.toy_device_id, p.names_envelope, p.names_updated_at, p.safety_checked_by, \
         p.safety_checked_at, p.last_seen_at FROM toy_profiles p \
         JOIN devices d ON d.id = p.toy_device_id WHERE d.household_id = ? \
         ORDER BY d.created_at, d.id",
    )
    .bind(household.to_string());
    fetch_all(pool, query).await
}

pub(crate) async fn set_toy_names(
    pool: &SqlitePool,
    toy: DeviceId,
    envelope: &[u8],
    at: OffsetDateTime,
) -> StoreResult<bool> {
    let query = sqlx::query(
        "INSERT INTO toy_profiles (toy_device_id, names_envelope, names_updated_at) \
         SELECT id, ?, ? FROM devices WHERE id = ? AND kind = 'toy' \
         ON CONFLICT (toy_device_id) DO UPDATE SET names_envelope = excluded.names_envelope, \
         names_updated_at = excluded.names_updated_at",
    )
    .bind(envelope)
    .bind(to_ms(at))
    .bind(toy.to_string());
    Ok(execute(pool, query).await? > 0)
}

pub(crate) async fn set_toy_safety_checked(
    pool: &SqlitePool,
    toy: DeviceId,
    by: AccountId,
    at: OffsetDateTime,
) -> StoreResult<bool> {
    let query = sqlx::query(
        "INSERT INTO toy_profiles (toy_device_id, safety_checked_by, safety_checked_at) \
         SELECT id, ?, ? FROM devices WHERE id = ? AND kind = 'toy' \
         ON CONFLICT (toy_device_id) DO UPDATE SET safety_checked_by = excluded.safety_checked_by, \
         safety_checked_at = excluded.safety_checked_at",
    )
    .bind(by.to_string())
    .bind(to_ms(at))
    .bind(toy.to_string());
    Ok(execute(pool, query).await? > 0)
}

/// Joins the group commit (see [`crate::group`]): a reconnect storm's last-seen times
/// share the sync of the uploads and receipts of the moment.
pub(crate) async fn set_toys_seen(
    db: &Database,
    seen: &[(DeviceId, OffsetDateTime)],
) -> StoreResult<()> {
    if seen.is_empty() {
        return Ok(());
    }
    db.write(Write::ToysSeen(seen.to_vec())).await
}

/// When toys were last seen, from a JSON array of `[id, ms]` pairs, in one statement
/// (one trip to SQLite's thread for a reconnect storm's batch). A toy named twice keeps
/// its later entry; ids that are not toys are passed over. (`WHERE true` tells SQLite's
/// parser that `ON CONFLICT` is the upsert's, not the join's.)
pub(crate) const SET_SEEN_MANY: &str = "INSERT INTO toy_profiles (toy_device_id, last_seen_at) \
     SELECT d.id, s.value ->> 1 FROM json_each(?1) AS s JOIN devices AS d \
     ON d.id = s.value ->> 0 AND d.kind = 'toy' WHERE true ORDER BY s.key \
     ON CONFLICT (toy_device_id) DO UPDATE SET last_seen_at = excluded.last_seen_at";

pub(crate) async fn set_toy_seen(
    pool: &SqlitePool,
    toy: DeviceId,
    at: OffsetDateTime,
) -> StoreResult<()> {
    let query = sqlx::query(
        "INSERT INTO toy_profiles (toy_device_id, last_seen_at) \
         SELECT id, ? FROM devices WHERE id = ? AND kind = 'toy' \
         ON CONFLICT (toy_device_id) DO UPDATE SET last_seen_at = excluded.last_seen_at",
    )
    .bind(to_ms(at))
    .bind(toy.to_string());
    execute(pool, query).await.map(|_| ())
}
