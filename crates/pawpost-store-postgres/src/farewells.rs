//! Farewells: an owner's signed word that a toy leaves its household, kept until the toy
//! has it (see migration 0015).
use crate::{backend, begin, execute, fetch_optional};
use pawpost_domain::{DeviceId, HouseholdId};
use pawpost_store::stored::whole_ms;
use pawpost_store::{Farewell, StoreError, StoreResult};
use sqlx::{FromRow, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(FromRow)]
struct FarewellRow {
    toy_device_id: Uuid,
    identity: Vec<u8>,
    household_id: Uuid,
    signer_device_id: Uuid,
    signature: Vec<u8>,
    created_at: OffsetDateTime,
}

impl TryFrom<FarewellRow> for Farewell {
    type Error = StoreError;
    fn try_from(r: FarewellRow) -> Result<Self, StoreError> {
        Ok(Farewell {
            toy_device_id: DeviceId(r.toy_device_id),
            identity: r.identity,
            household_id: HouseholdId(r.household_id),
            signer_device_id: DeviceId(r.signer_device_id),
            signature: r
                .signature
                .try_into()
                .map_err(|_| StoreError::Backend("signature is not 64 bytes".into()))?,
            created_at: r.created_at,
        })
    }
}

const UPSERT: &str = "INSERT INTO toy_farewells \
     (toy_device_id, identity, household_id, signer_device_id, signature, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (toy_device_id) DO UPDATE SET identity = excluded.identity, \
     household_id = excluded.household_id, signer_device_id = excluded.signer_device_id, \
     signature = excluded.signature, created_at = excluded.created_at";

fn upsert(f: &Farewell) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(UPSERT)
        .bind(f.toy_device_id.0)
        .bind(f.identity.as_slice())
        .bind(f.household_id.0)
        .bind(f.signer_device_id.0)
        .bind(f.signature.as_slice())
        .bind(whole_ms(f.created_at))
}

pub(crate) async fn put_farewell(pool: &PgPool, farewell: &Farewell) -> StoreResult<()> {
    execute(pool, upsert(farewell)).await.map(|_| ())
}

pub(crate) async fn remove_toy(pool: &PgPool, farewell: &Farewell) -> StoreResult<bool> {
    let mut tx = begin(pool).await?;
    let done =
        sqlx::query("DELETE FROM devices WHERE id = $1 AND household_id = $2 AND kind = 'toy'")
            .bind(farewell.toy_device_id.0)
            .bind(farewell.household_id.0)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    // Messages it never received are not pushed to it (or to another household it joins
    // with the same id) any more.
    sqlx::query("DELETE FROM receipts WHERE device_id = $1 AND delivered_at IS NULL")
        .bind(farewell.toy_device_id.0)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    upsert(farewell).execute(&mut *tx).await.map_err(backend)?;
    tx.commit().await.map_err(backend)?;
    Ok(true)
}

pub(crate) async fn farewell(pool: &PgPool, toy: DeviceId) -> StoreResult<Option<Farewell>> {
    let query = sqlx::query_as::<_, FarewellRow>(
        "SELECT toy_device_id, identity, household_id, signer_device_id, signature, created_at \
         FROM toy_farewells WHERE toy_device_id = $1",
    )
    .bind(toy.0);
    fetch_optional(pool, query).await
}

pub(crate) async fn delete_farewell(pool: &PgPool, toy: DeviceId) -> StoreResult<bool> {
    let query = sqlx::query("DELETE FROM toy_farewells WHERE toy_device_id = $1").bind(toy.0);
    Ok(execute(pool, query).await? > 0)
}

pub(crate) async fn delete_farewells_before(
    pool: &PgPool,
    cutoff: OffsetDateTime,
) -> StoreResult<u64> {
    let query =
        sqlx::query("DELETE FROM toy_farewells WHERE created_at < $1").bind(whole_ms(cutoff));
    execute(pool, query).await
}
