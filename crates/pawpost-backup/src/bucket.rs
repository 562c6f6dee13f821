//! Moving blobs between a bucket and a backup folder, [`BUCKET_TRANSFERS`] at a time,
//! each held in memory whole while it moves.
use crate::error::BackupError;
use crate::files::{self, Digested};
use crate::manifest::{BlobEntry, Manifest};
use crate::shared::{blocking, expected_of, mismatch};
use crate::{Phase, Progress, BLOBS_DIR, BUCKET_TRANSFERS};
use futures_util::{stream, StreamExt};
use pawpost_blob_s3::S3BlobStore;
use pawpost_store::{BlobCursor, BlobKey, BlobStore, BLOB_LIST_PAGE_SIZE};
use std::collections::HashSet;
use std::path::Path;

/// Downloads every blob under the bucket's prefix into `to`'s blob folder, in key order,
/// [`BUCKET_TRANSFERS`] at a time.
pub(crate) async fn copy_bucket_blobs(
    store: &S3BlobStore,
    to: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<BlobEntry>, BackupError> {
    let failed = |e: pawpost_store::StoreError| BackupError::BackupFromBucket {
        detail: e.to_string(),
        dir: to.to_owned(),
    };
    let keys = store.list().await.map_err(failed)?;
    let total = keys.len() as u64;
    let mut blobs = Vec::with_capacity(keys.len());
    progress(Progress {
        phase: Phase::Blobs,
        done: 0,
        total,
    });
    let mut copies = stream::iter(keys)
        .map(|key| async move {
            // Gone since the listing: deleted by the server meanwhile (see the crate docs).
            let Some(bytes) = store.get(&key).await.map_err(failed)? else {
                return Ok(None);
            };
            let dest = to.join(BLOBS_DIR).join(key.as_str());
            let d = blocking(move || files::write_digested(&dest, &bytes)).await?;
            Ok::<_, BackupError>(Some(BlobEntry {
                key: key.as_str().to_owned(),
                bytes: d.bytes,
                sha256: d.sha256,
            }))
        })
        .buffered(BUCKET_TRANSFERS);
    let mut done = 0;
    while let Some(copied) = copies.next().await {
        blobs.extend(copied?);
        done += 1;
        progress(Progress {
            phase: Phase::Blobs,
            done,
            total,
        });
    }
    Ok(blobs)
}

/// Puts every blob of the backup under the bucket's prefix, [`BUCKET_TRANSFERS`] at a
/// time, each checked against the manifest again as it is read.
pub(crate) async fn put_blobs(
    from: &Path,
    manifest: &Manifest,
    store: &S3BlobStore,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), BackupError> {
    let total = manifest.blobs.len() as u64;
    progress(Progress {
        phase: Phase::RestoreBlobs,
        done: 0,
        total,
    });
    let mut puts = stream::iter(&manifest.blobs)
        .map(|blob| async move {
            // verify() checked every key; a key is still parsed, not trusted.
            let key = BlobKey::new(blob.key.as_str()).map_err(|e| BackupError::UnsafeName(e.0))?;
            let source = from.join(BLOBS_DIR).join(&blob.key);
            let expected = expected_of(blob);
            let bytes = blocking(move || read_checked(&source, &expected)).await?;
            store
                .put(&key, &bytes)
                .await
                .map_err(|e| BackupError::RestoreIntoBucket(e.to_string()))
        })
        .buffered(BUCKET_TRANSFERS);
    let mut done = 0;
    while let Some(put) = puts.next().await {
        put?;
        done += 1;
        progress(Progress {
            phase: Phase::RestoreBlobs,
            done,
            total,
        });
    }
    Ok(())
}

/// Deletes every blob under the bucket's prefix that the backup does not hold.
pub(crate) async fn remove_other_blobs(
    manifest: &Manifest,
    store: &S3BlobStore,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), BackupError> {
    let failed = |e: pawpost_store::StoreError| BackupError::RestoreIntoBucket(e.to_string());
    let restored: HashSet<&str> = manifest.blobs.iter().map(|b| b.key.as_str()).collect();
    let mut others = store.list().await.map_err(failed)?;
    others.retain(|key| !restored.contains(key.as_str()));
    let total = others.len() as u64;
    progress(Progress {
        phase: Phase::RemoveBlobs,
        done: 0,
        total,
    });
    let mut deletes = stream::iter(&others)
        .map(|key| async move { store.delete(key).await.map_err(failed) })
        .buffered(BUCKET_TRANSFERS);
    let mut done = 0;
    while let Some(deleted) = deletes.next().await {
        deleted?;
        done += 1;
        progress(Progress {
            phase: Phase::RemoveBlobs,
            done,
            total,
        });
    }
    Ok(())
}

/// Whether the bucket holds any blob under its prefix.
pub(crate) async fn bucket_holds_blobs(store: &S3BlobStore) -> Result<bool, BackupError> {
    let mut cursor: Option<BlobCursor> = None;
    loop {
        let page = store
            .list_page(cursor.as_ref(), BLOB_LIST_PAGE_SIZE)
            .await
            .map_err(|e| BackupError::BucketCheck(e.to_string()))?;
        if !page.keys.is_empty() {
            return Ok(true);
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(false),
        }
    }
}

/// The whole file at `source`, which must match `expected`.
fn read_checked(source: &Path, expected: &Digested) -> Result<Vec<u8>, BackupError> {
    match files::read_digested(source)? {
        Some((bytes, found)) => {
            mismatch(source, expected, &found)?;
            Ok(bytes)
        }
        None => Err(BackupError::MissingFile(source.to_owned())),
    }
}
