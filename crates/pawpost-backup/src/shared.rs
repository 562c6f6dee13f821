//! What backing up, checking and restoring share: the database kind and blob store a
//! [`StorageConfig`] names, blocking file work off the async threads, and the checksum
//! comparison.
use crate::error::BackupError;
use crate::files::Digested;
use crate::manifest::{BlobEntry, DatabaseKind};
use pawpost_blob_s3::S3BlobStore;
use pawpost_storage::{BlobUrl, DatabaseUrl, StorageConfig};
use std::path::{Path, PathBuf};

/// The kind of database `url` names, as a manifest records it.
pub(crate) fn kind_of(url: &DatabaseUrl) -> DatabaseKind {
    match url {
        DatabaseUrl::Sqlite { .. } => DatabaseKind::Sqlite,
        DatabaseUrl::Postgres(_) => DatabaseKind::Postgres,
    }
}

/// The server's blob store.
pub(crate) enum Blobs {
    Folder(PathBuf),
    Bucket(S3BlobStore),
}

/// The blob store `config` names, as the server opens it: a bucket is opened (the
/// prefix listed once), so that one that cannot be used is refused before any write.
pub(crate) async fn open_blobs(config: &StorageConfig) -> Result<Blobs, BackupError> {
    match &config.blobs {
        BlobUrl::Folder(path) => Ok(Blobs::Folder(path.clone())),
        BlobUrl::S3(url) => Ok(Blobs::Bucket(
            S3BlobStore::open(url).await.map_err(BackupError::Bucket)?,
        )),
    }
}

/// Runs blocking file work off the async threads, so that a server sharing the runtime
/// keeps answering while large files are hashed.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, BackupError> + Send + 'static,
) -> Result<T, BackupError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| BackupError::Io {
            what: "file task stopped",
            path: PathBuf::new(),
            source: std::io::Error::other(e.to_string()),
        })?
}

pub(crate) fn mismatch(
    path: &Path,
    expected: &Digested,
    found: &Digested,
) -> Result<(), BackupError> {
    if found == expected {
        return Ok(());
    }
    Err(BackupError::ChecksumMismatch {
        path: path.to_owned(),
        expected: expected.sha256.clone(),
        expected_bytes: expected.bytes,
        found: found.sha256.clone(),
        found_bytes: found.bytes,
    })
}

/// What the manifest says `blob` holds.
pub(crate) fn expected_of(blob: &BlobEntry) -> Digested {
    Digested {
        bytes: blob.bytes,
        sha256: blob.sha256.clone(),
    }
}
