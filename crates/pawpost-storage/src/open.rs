//! Opens the backends a [`StorageConfig`] names.
use crate::url::{BlobUrl, DatabaseUrl, StorageConfig};
use pawpost_blob_local::LocalBlobStore;
use pawpost_blob_s3::S3BlobStore;
use pawpost_store::{BlobStore, MetadataStore};
use pawpost_store_postgres::PostgresStore;
use pawpost_store_sqlite::SqliteStore;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The two stores a server runs on.
pub type Stores = (Arc<dyn MetadataStore>, Arc<dyn BlobStore>);

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot prepare the data folder {0}: {1}")]
    DataDir(PathBuf, std::io::Error),
    /// The message is complete in itself: no `source`, so it is not printed twice.
    #[error("cannot open the blob bucket: {0}")]
    BlobBucket(pawpost_blob_s3::OpenError),
    #[error("cannot open storage: {0}")]
    Storage(#[from] pawpost_store::StoreError),
}

/// Creates the data folder with mode 0700, or tightens an existing one to 0700.
fn prepare_private_dir(dir: &Path) -> Result<(), OpenError> {
    let fail = |e| OpenError::DataDir(dir.to_owned(), e);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(fail)?;
    let mode = std::fs::metadata(dir).map_err(fail)?.permissions().mode() & 0o777;
    if mode != 0o700 {
        tracing::warn!(dir = %dir.display(), mode = format!("{mode:o}"), "data folder was readable by others; setting it to 0700");
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(fail)?;
    }
    Ok(())
}

/// Opens (and migrates) the database and the blob store `config` names, creating the
/// data folder first.
pub async fn open(config: &StorageConfig) -> Result<Stores, OpenError> {
    prepare_private_dir(&config.data_dir)?;
    let store = open_metadata(&config.database, config.database_schema.as_deref()).await?;
    let blobs = open_blobs(&config.blobs).await?;
    Ok((store, blobs))
}

/// Opens (and migrates) the database at `url`, in `schema` on PostgreSQL when given.
pub async fn open_metadata(
    url: &DatabaseUrl,
    schema: Option<&str>,
) -> Result<Arc<dyn MetadataStore>, OpenError> {
    Ok(match (url, schema) {
        (DatabaseUrl::Sqlite { url, .. }, _) => Arc::new(SqliteStore::open(url).await?),
        (DatabaseUrl::Postgres(url), Some(schema)) => {
            Arc::new(PostgresStore::open_in_schema(url, schema).await?)
        }
        (DatabaseUrl::Postgres(url), None) => Arc::new(PostgresStore::open(url).await?),
    })
}

/// Opens the blob folder (creating it) or the bucket (listing its prefix once).
pub async fn open_blobs(url: &BlobUrl) -> Result<Arc<dyn BlobStore>, OpenError> {
    Ok(match url {
        BlobUrl::Folder(path) => Arc::new(LocalBlobStore::open(path)?),
        BlobUrl::S3(url) => Arc::new(
            S3BlobStore::open(url)
                .await
                .map_err(OpenError::BlobBucket)?,
        ),
    })
}
