//! Device certificates: an existing device of an account vouching for a new one (see
//! migration 0017).
use crate::{backend, fetch_all};
use pawpost_domain::DeviceId;
use pawpost_store::stored::whole_ms;
use pawpost_store::{DeviceCertificate, StoreError, StoreResult};
use sqlx::{FromRow, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(FromRow)]
struct CertificateRow {
    device_id: Uuid,
    certifier_device_id: Uuid,
    signature: Vec<u8>,
    created_at: OffsetDateTime,
}

impl TryFrom<CertificateRow> for DeviceCertificate {
    type Error = StoreError;
    fn try_from(r: CertificateRow) -> Result<Self, StoreError> {
        Ok(DeviceCertificate {
            device_id: DeviceId(r.device_id),
            certifier_device_id: DeviceId(r.certifier_device_id),
            signature: r
                .signature
                .try_into()
                .map_err(|_| StoreError::Backend("signature is not 64 bytes".into()))?,
            created_at: r.created_at,
        })
    }
}

pub(crate) async fn add_device_certificate(
    pool: &PgPool,
    c: &DeviceCertificate,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO device_certificates (device_id, certifier_device_id, signature, created_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(c.device_id.0)
    .bind(c.certifier_device_id.0)
    .bind(c.signature.as_slice())
    .bind(whole_ms(c.created_at))
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
    pool: &PgPool,
    devices: &[DeviceId],
) -> StoreResult<Vec<DeviceCertificate>> {
    let ids: Vec<Uuid> = devices.iter().map(|d| d.0).collect();
    let query = sqlx::query_as::<_, CertificateRow>(
        "SELECT device_id, certifier_device_id, signature, created_at FROM device_certificates \
         WHERE device_id = ANY($1) ORDER BY device_id",
    )
    .bind(ids);
    fetch_all(pool, query).await
}
