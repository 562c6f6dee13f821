//! What the household keeps about a paired toy besides its keys: its names record, the
//! parents' safety-number check and when it was last connected (see migration 0020).
use crate::{execute, fetch_all};
use pawpost_domain::{AccountId, DeviceId, HouseholdId};
use pawpost_store::stored::whole_ms;
use pawpost_store::{StoreError, StoreResult, ToyProfile};
use sqlx::{FromRow, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(FromRow)]
struct ToyProfileRow {
    toy_device_id: Uuid,
    names_envelope: Option<Vec<u8>>,
    names_updated_at: Option<OffsetDateTime>,
    safety_checked_by: Option<Uuid>,
    safety_checked_at: Option<OffsetDateTime>,
    last_seen_at: Option<OffsetDateTime>,
}

impl TryFrom<ToyProfileRow> for ToyProfile {
    type Error = StoreError;
    fn try_from(r: ToyProfileRow) -> Result<Self, StoreError> {
        Ok(ToyProfile {
            toy_device_id: DeviceId(r.toy_device_id),
            names_envelope: r.names_envelope,
            names_updated_at: r.names_updated_at,
            safety_checked_by: r.safety_checked_by.map(AccountId),
            safety_checked_at: r.safety_checked_at,
            last_seen_at: r.last_seen_at,
        })
    }
}

pub(crate) async fn toy_profiles(
    pool: &PgPool,
    household: HouseholdId,
) -> StoreResult<Vec<ToyProfile>> {
    let query = sqlx::query_as::<_, ToyProfileRow>(
        "SELECT p.toy_device_id, p.names_envelope, p.names_updated_at, p.safety_checked_by, \
         p.safety_checked_at, p.last_seen_at FROM toy_profiles p \
         JOIN devices d ON d.id = p.toy_device_id WHERE d.household_id = $1 \
         ORDER BY d.created_at, d.id",
    )
    .bind(household.0);
    fetch_all(pool, query).await
}

pub(crate) async fn set_toy_names(
    pool: &PgPool,
    toy: DeviceId,
    envelope: &[u8],
    at: OffsetDateTime,
) -> StoreResult<bool> {
    let query = sqlx::query(
        "INSERT INTO toy_profiles (toy_device_id, names_envelope, names_updated_at) \
         SELECT id, $1, $2 FROM devices WHERE id = $3 AND kind = 'toy' \
         ON CONFLICT (toy_device_id) DO UPDATE SET names_envelope = excluded.names_envelope, \
         names_updated_at = excluded.names_updated_at",
    )
    .bind(envelope)
    .bind(whole_ms(at))
    .bind(toy.0);
    Ok(execute(pool, query).await? > 0)
}

pub(crate) async fn set_toy_safety_checked(
    pool: &PgPool,
    toy: DeviceId,
    by: AccountId,
    at: OffsetDateTime,
) -> StoreResult<bool> {
    let query = sqlx::query(
        "INSERT INTO toy_profiles (toy_device_id, safety_checked_by, safety_checked_at) \
         SELECT id, $1, $2 FROM devices WHERE id = $3 AND kind = 'toy' \
         ON CONFLICT (toy_device_id) DO UPDATE SET safety_checked_by = excluded.safety_checked_by, \
         safety_checked_at = excluded.safety_checked_at",
    )
    .bind(by.0)
    .bind(whole_ms(at))
    .bind(toy.0);
    Ok(execute(pool, query).await? > 0)
}

pub(crate) async fn set_toys_seen(
    pool: &PgPool,
    seen: &[(DeviceId, OffsetDateTime)],
) -> StoreResult<()> {
    if seen.is_empty() {
        return Ok(());
    }
    let mut tx = crate::begin(pool).await?;
    for (toy, at) in seen {
        sqlx::query(
            "INSERT INTO toy_profiles (toy_device_id, last_seen_at) \
             SELECT id, $1 FROM devices WHERE id = $2 AND kind = 'toy' \
             ON CONFLICT (toy_device_id) DO UPDATE SET last_seen_at = excluded.last_seen_at",
        )
        .bind(whole_ms(*at))
        .bind(toy.0)
        .execute(&mut *tx)
        .await
        .map_err(crate::backend)?;
    }
    tx.commit().await.map_err(crate::backend)
}

pub(crate) async fn set_toy_seen(
    pool: &PgPool,
    toy: DeviceId,
    at: OffsetDateTime,
) -> StoreResult<()> {
    let query = sqlx::query(
        "INSERT INTO toy_profiles (toy_device_id, last_seen_at) \
         SELECT id, $1 FROM devices WHERE id = $2 AND kind = 'toy' \
         ON CONFLICT (toy_device_id) DO UPDATE SET last_seen_at = excluded.last_seen_at",
    )
    .bind(whole_ms(at))
    .bind(toy.0);
    execute(pool, query).await.map(|_| ())
}
