//! Signed releases of the toy's software and what each toy runs (migration 0025).
use crate::{execute, fetch_all, fetch_optional, unique_violation};
use pawpost_domain::{DeviceId, HouseholdId};
use pawpost_store::stored::{self, from_ms, to_ms};
use pawpost_store::{Release, StoreError, StoreResult, ToySoftware};
use sqlx::{FromRow, SqlitePool};

#[derive(FromRow)]
struct ReleaseRow {
    board: String,
    counter: i64,
    version: i64,
    size: i64,
    manifest: Vec<u8>,
    signature: Vec<u8>,
    blob_key: String,
    created_at: i64,
}

impl TryFrom<ReleaseRow> for Release {
    type Error = StoreError;
    fn try_from(r: ReleaseRow) -> Result<Self, StoreError> {
        Ok(Release {
            board: r.board,
            counter: stored::unsigned(r.counter, "counter")?,
            version: stored::unsigned(r.version, "version")?,
            size: stored::unsigned(r.size, "size")?,
            manifest: r.manifest,
            signature: r
                .signature
                .try_into()
                .map_err(|_| StoreError::Backend("bad signature length in releases".into()))?,
            blob_key: r.blob_key,
            created_at: from_ms(r.created_at)?,
        })
    }
}

#[derive(FromRow)]
struct SoftwareRow {
    toy_device_id: String,
    board: String,
    version: i64,
    counter: i64,
    reported_at: i64,
}

impl TryFrom<SoftwareRow> for ToySoftware {
    type Error = StoreError;
    fn try_from(r: SoftwareRow) -> Result<Self, StoreError> {
        Ok(ToySoftware {
            toy_device_id: DeviceId(stored::uuid(&r.toy_device_id, "toy_device_id")?),
            board: r.board,
            version: stored::unsigned(r.version, "version")?,
            counter: stored::unsigned(r.counter, "counter")?,
            reported_at: from_ms(r.reported_at)?,
        })
    }
}

pub(crate) async fn put_release(pool: &SqlitePool, release: &Release) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO releases (board, counter, version, size, manifest, signature, blob_key, \
         created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&release.board)
    .bind(i64::from(release.counter))
    .bind(i64::from(release.version))
    .bind(i64::from(release.size))
    .bind(&release.manifest)
    .bind(release.signature.as_slice())
    .bind(&release.blob_key)
    .bind(to_ms(release.created_at))
    .execute(pool)
    .await
    .map_err(|e| unique_violation(e, "a release of this board with this counter"))?;
    Ok(())
}

pub(crate) async fn newest_release(
    pool: &SqlitePool,
    board: &str,
    above: u32,
) -> StoreResult<Option<Release>> {
    let query = sqlx::query_as::<_, ReleaseRow>(
        "SELECT board, counter, version, size, manifest, signature, blob_key, created_at \
         FROM releases WHERE board = ? AND counter > ? ORDER BY counter DESC LIMIT 1",
    )
    .bind(board)
    .bind(i64::from(above));
    fetch_optional(pool, query).await
}

pub(crate) async fn set_toy_software(pool: &SqlitePool, software: &ToySoftware) -> StoreResult<()> {
    let query = sqlx::query(
        "INSERT INTO toy_software (toy_device_id, board, version, counter, reported_at) \
         SELECT id, ?, ?, ?, ? FROM devices WHERE id = ? AND kind = 'toy' \
         ON CONFLICT (toy_device_id) DO UPDATE SET board = excluded.board, \
         version = excluded.version, counter = excluded.counter, \
         reported_at = excluded.reported_at",
    )
    .bind(&software.board)
    .bind(i64::from(software.version))
    .bind(i64::from(software.counter))
    .bind(to_ms(software.reported_at))
    .bind(software.toy_device_id.to_string());
    execute(pool, query).await?;
    Ok(())
}

pub(crate) async fn toy_software(
    pool: &SqlitePool,
    household: HouseholdId,
) -> StoreResult<Vec<ToySoftware>> {
    let query = sqlx::query_as::<_, SoftwareRow>(
        "SELECT s.toy_device_id, s.board, s.version, s.counter, s.reported_at \
         FROM toy_software s JOIN devices d ON d.id = s.toy_device_id \
         WHERE d.household_id = ? ORDER BY d.created_at, d.id",
    )
    .bind(household.to_string());
    fetch_all(pool, query).await
}
