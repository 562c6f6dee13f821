//! Device certificates: an existing device of an account vouching for a new one (see
//! migration 0017).
use crate::{backend, fetch_all};
use pawpost_domain::DeviceId;
use pawpost_store::stored::{self, from_ms, to_ms};
use pawpost_store::{DeviceCertificate, StoreError, StoreResult};
use sqlx::{FromRow, SqlitePool};

#[derive(FromRow)]
struct CertificateRow {
    device_id: String,
    certifier_device_id: String,
    signature: Vec<u8>,
    created_at: i64,
}

impl TryFrom<CertificateRow> for DeviceCertificate {
    type Error = StoreError;
    fn try_from(r: CertificateRow) -> Result<Self, StoreError> {
        Ok(DeviceCertificate {
            device_id: DeviceId(stored::uuid(&r.device_id, "device_id")?),
            certifier_device_id: DeviceId(stored::uuid(
                &r.certifier_device_id,
                "certifier_device_id",
            )?),
            signature: r
                .signature
                .try_into()
                .map_err(|_| StoreError::Backend("signature is not 64 bytes".into()))?,
            created_at: from_ms(r.created_at)?,
        })
    }
}

pub(crate) async fn add_device_certificate(
    pool: &SqlitePool,
    c: &DeviceCertificate,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO device_certificates (device_id, certifier_device_id, signature, created_at) \
         VALUES (?, ?, ?, ?)",
    )
    .bind(c.device_id.to_string())
    .bind(c.certifier_device_id.to_string())
    .bind(c.signature.as_slice())
    .bind(to_ms(c.created_at))
    .execute(pool)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict("a certificate for this device")
        }
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::NotFound("device")
        }
        _ => backend(e),
    })?;
    Ok(())
}

pub(crate) async fn device_certificates(
    pool: &SqlitePool,
    devices: &[DeviceId],
) -> StoreResult<Vec<DeviceCertificate>> {
    if devices.is_empty() {
        return Ok(Vec::new());
    }
    // One placeholder per id: a household has at most a few dozen devices.
    let sql = format!(
        "SELECT device_id, certifier_device_id, signature, created_at FROM device_certificates \
         WHERE device_id IN ({}) ORDER BY device_id",
        vec!["?"; devices.len()].join(", ")
    );
    let mut query = sqlx::query_as::<_, CertificateRow>(&sql);
    for d in devices {
        query = query.bind(d.to_string());
    }
    fetch_all(pool, query).await
}
