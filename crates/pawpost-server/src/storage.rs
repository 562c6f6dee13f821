//! Picks the storage backends named by the configuration.
use crate::config::ServerConfig;
use pawpost_blob_local::LocalBlobStore;
use pawpost_blob_s3::S3BlobStore;
use pawpost_store::{BlobStore, MetadataStore};
use pawpost_store_postgres::PostgresStore;
use pawpost_store_sqlite::SqliteStore;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot prepare the data folder {0}: {1}")]
    DataDir(PathBuf, std::io::Error),
    #[error("unsupported database URL scheme in {0:?}: use sqlite://PATH or postgres://USER@HOST/DATABASE")]
    DatabaseScheme(String),
    #[error(
        "unsupported blob URL {0:?}: use file://PATH, a plain folder path, or \
         s3://BUCKET/PREFIX for S3-compatible storage"
    )]
    BlobScheme(String),
    /// The message is complete in itself: no `source`, so it is not printed twice.
    #[error("cannot open the blob bucket: {0}")]
    BlobBucket(pawpost_blob_s3::OpenError),
    #[error("cannot open storage: {0}")]
    Storage(#[from] pawpost_store::StoreError),
    #[error(
        "cannot listen on {0}: {1} (is another server using it? choose another with --listen)"
    )]
    Bind(SocketAddr, std::io::Error),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("{0}")]
    Other(String),
}

/// Creates the data folder with mode 0700, or tightens an existing one to 0700.
fn prepare_private_dir(dir: &Path) -> Result<(), StartError> {
    let fail = |e| StartError::DataDir(dir.to_owned(), e);
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

/// Opens (and migrates) the storage named by `config`, creating the data folder.
pub async fn open(
    config: &ServerConfig,
) -> Result<(Arc<dyn MetadataStore>, Arc<dyn BlobStore>), StartError> {
    prepare_private_dir(&config.data_dir)?;
    let database_url = config.database_url();
    let store: Arc<dyn MetadataStore> = if database_url.starts_with("sqlite:") {
        Arc::new(SqliteStore::open(&database_url).await?)
    } else if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        match &config.database_schema {
            Some(schema) => Arc::new(PostgresStore::open_in_schema(&database_url, schema).await?),
            None => Arc::new(PostgresStore::open(&database_url).await?),
        }
    } else {
        // Only the scheme: the rest of a URL may hold a password.
        let scheme = database_url.split("://").next().unwrap_or("").to_owned();
        return Err(StartError::DatabaseScheme(format!("{scheme}://...")));
    };
    let blob_url = config.blob_url();
    let blobs: Arc<dyn BlobStore> = match blob_url.split_once("://") {
        Some(("file", path)) => Arc::new(LocalBlobStore::open(path)?),
        Some(("s3", _)) => Arc::new(
            S3BlobStore::open(&blob_url)
                .await
                .map_err(StartError::BlobBucket)?,
        ),
        // Only the scheme: the rest of a URL may hold a password.
        Some((scheme, _)) => return Err(StartError::BlobScheme(format!("{scheme}://..."))),
        None => Arc::new(LocalBlobStore::open(&blob_url)?),
    };
    Ok((store, blobs))
}
