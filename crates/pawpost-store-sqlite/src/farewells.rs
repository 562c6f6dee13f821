//! Farewells: an owner's signed word that a toy leaves its household, kept until the toy
//! has it (see migration 0015).
use crate::write::to_the_end;
use crate::{backend, execute, fetch_optional};
use pawpost_domain::{DeviceId, HouseholdId};
use pawpost_store::stored::{self, from_ms, to_ms};
use pawpost_store::{Farewell, StoreError, StoreResult};
use sqlx::{FromRow, SqlitePool};
use time::OffsetDateTime;

#[derive(FromRow)]
struct FarewellRow {
    toy_device_id: String,
    identity: Vec<u8>,
    household_id: String,
    signer_device_id: String,
    signature: Vec<u8>,
    created_at: i64,
}

impl TryFrom<FarewellRow> for Farewell {
    type Error = StoreError;
    fn try_from(r: FarewellRow) -> Result<Self, StoreError> {
        Ok(Farewell {
            toy_device_id: DeviceId(stored::uuid(&r.toy_device_id, "toy_device_id")?),
            identity: r.identity,
            household_id: HouseholdId(stored::uuid(&r.household_id, "household_id")?),
            signer_device_id: DeviceId(stored::uuid(&r.signer_device_id, "signer_device_id")?),
            signature: r
                .signature
                .try_into()
                .map_err(|_| StoreError::Backend("signature is not 64 bytes".into()))?,
            created_at: from_ms(r.created_at)?,
        })
    }
}

const UPSERT: &str = "INSERT INTO toy_farewells \
     (toy_device_id, identity, household_id, signer_device_id, signature, created_at) \
     VALUES (?, ?, ?, ?, ?, ?) \
     ON CONFLICT (toy_device_id) DO UPDATE SET identity = excluded.identity, \
     household_id = excluded.household_id, signer_device_id = excluded.signer_device_id, \
     signature = excluded.signature, created_at = excluded.created_at";

fn upsert(f: &Farewell) -> sqlx::query::Query<'_, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'_>> {
    sqlx::query(UPSERT)
        .bind(f.toy_device_id.to_string())
        .bind(f.identity.as_slice())
        .bind(f.household_id.to_string())
        .bind(f.signer_device_id.to_string())
        .bind(f.signature.as_slice())
        .bind(to_ms(f.created_at))
}

pub(crate) async fn put_farewell(pool: &SqlitePool, farewell: &Farewell) -> StoreResult<()> {
    execute(pool, upsert(farewell)).await.map(|_| ())
}

pub(crate) async fn remove_toy(pool: &SqlitePool, farewell: &Farewell) -> StoreResult<bool> {
    let pool = pool.clone();
    let farewell = farewell.clone();
    to_the_end(async move {
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
        let done =
            sqlx::query("DELETE FROM devices WHERE id = ? AND household_id = ? AND kind = 'toy'")
                .bind(farewell.toy_device_id.to_string())
                .bind(farewell.household_id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        // Messages it never received are not pushed to it (or to another household it
        // joins with the same id) any more.
        sqlx::query("DELETE FROM receipts WHERE device_id = ? AND delivered_at IS NULL")
            .bind(farewell.toy_device_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        upsert(&farewell).execute(&mut *tx).await.map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    })
    .await
}

pub(crate) async fn farewell(pool: &SqlitePool, toy: DeviceId) -> StoreResult<Option<Farewell>> {
    let query = sqlx::query_as::<_, FarewellRow>(
        "SELECT toy_device_id, identity, household_id, signer_device_id, signature, created_at \
         FROM toy_farewells WHERE toy_device_id = ?",
    )
    .bind(toy.to_string());
    fetch_optional(pool, query).await
}

pub(crate) async fn delete_farewell(pool: &SqlitePool, toy: DeviceId) -> StoreResult<bool> {
    let query =
        sqlx::query("DELETE FROM toy_farewells WHERE toy_device_id = ?").bind(toy.to_string());
    Ok(execute(pool, query).await? > 0)
}

pub(crate) async fn delete_farewells_before(
    pool: &SqlitePool,
    cutoff: OffsetDateTime,
) -> StoreResult<u64> {
    let query = sqlx::query("DELETE FROM toy_farewells WHERE created_at < ?").bind(to_ms(cutoff));
    execute(pool, query).await
}
