//! Taking a backup: the database snapshot first, then the blobs, then the manifest.
use crate::bucket::copy_bucket_blobs;
use crate::error::BackupError;
use crate::files;
use crate::manifest::{BlobEntry, DatabaseEntry, Manifest, FORMAT_VERSION, MANIFEST_FILE};
use crate::shared::{blocking, kind_of, open_blobs, Blobs};
use crate::{
    postgres, sqlite, BackupReport, Phase, Progress, BLOBS_DIR, POSTGRES_FILE, SQLITE_FILE,
};
use pawpost_storage::{DatabaseUrl, StorageConfig};
use std::path::Path;

/// Takes a consistent backup of the server described by `config` (which may be running)
/// into `to`, a new or empty folder.
pub async fn backup(
    config: &StorageConfig,
    to: &Path,
    mut progress: impl FnMut(Progress),
) -> Result<BackupReport, BackupError> {
    let kind = kind_of(&config.database);
    if files::holds_files(to)? {
        return Err(BackupError::BackupDirNotEmpty(to.to_owned()));
    }
    let source = open_blobs(config).await?;
    files::create_private_dir_all(to)?;
    if let Blobs::Folder(source_blobs) = &source {
        // A backup inside the blob folder would copy itself as it grows.
        let canonical =
            |p: &Path| std::fs::canonicalize(p).map_err(BackupError::io("cannot resolve", p));
        if source_blobs.exists() && canonical(to)?.starts_with(canonical(source_blobs)?) {
            // Only the empty folder just made is removed; remove_dir refuses anything else.
            let _ = std::fs::remove_dir(to);
            return Err(BackupError::BackupInsideBlobs(to.to_owned()));
        }
    }

    progress(Progress {
        phase: Phase::Database,
        done: 0,
        total: 1,
    });
    let (file, schema) = match &config.database {
        DatabaseUrl::Sqlite { path, .. } => {
            sqlite::snapshot(path, &to.join(SQLITE_FILE)).await?;
            (SQLITE_FILE, None)
        }
        DatabaseUrl::Postgres(url) => {
            let schema = postgres::schema_of(url, config.database_schema.as_deref()).await?;
            postgres::dump(url, &schema, &to.join(POSTGRES_FILE)).await?;
            (POSTGRES_FILE, Some(schema))
        }
    };
    let db_path = to.join(file);
    let db = blocking(move || files::digest_file(&db_path)).await?;
    progress(Progress {
        phase: Phase::Database,
        done: 1,
        total: 1,
    });

    // Only now, after the snapshot, are the blobs listed: see the crate docs.
    let blobs = match &source {
        Blobs::Folder(root) => copy_folder_blobs(root, to, &mut progress).await?,
        Blobs::Bucket(store) => copy_bucket_blobs(store, to, &mut progress).await?,
    };
    let backup_dir = to.to_owned();
    blocking(move || {
        files::walk(&backup_dir)?
            .dirs
            .iter()
            .try_for_each(|d| files::sync_dir(d))
    })
    .await?;

    progress(Progress {
        phase: Phase::Manifest,
        done: 0,
        total: 1,
    });
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        created_at: now_rfc3339(),
        pawpost_version: env!("CARGO_PKG_VERSION").to_owned(),
        database: DatabaseEntry {
            kind,
            file: file.to_owned(),
            bytes: db.bytes,
            sha256: db.sha256,
            schema,
        },
        blobs,
    };
    let manifest_path = to.join(MANIFEST_FILE);
    let bytes = manifest.to_file_bytes();
    blocking(move || files::write_atomically(&manifest_path, &bytes)).await?;
    progress(Progress {
        phase: Phase::Manifest,
        done: 1,
        total: 1,
    });
    Ok(BackupReport {
        dir: to.to_owned(),
        database_bytes: manifest.database.bytes,
        blobs: manifest.blobs.len() as u64,
        blob_bytes: manifest.blob_bytes(),
    })
}

/// Copies every blob in the folder `root` into `to`'s blob folder, in key order.
async fn copy_folder_blobs(
    root: &Path,
    to: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<BlobEntry>, BackupError> {
    let root = root.to_owned();
    let found: Vec<_> = blocking(move || {
        let listed = files::walk(&root)?.files;
        // The store writes regular files only; a link could point anywhere.
        Ok(listed
            .into_iter()
            .filter(|(rel, path)| {
                pawpost_blob_local::is_blob(rel)
                    && std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file())
            })
            .collect())
    })
    .await?;
    let total = found.len() as u64;
    let mut blobs = Vec::with_capacity(found.len());
    progress(Progress {
        phase: Phase::Blobs,
        done: 0,
        total,
    });
    for (done, (key, path)) in found.into_iter().enumerate() {
        let dest = to.join(BLOBS_DIR).join(&key);
        if let Some(d) = blocking(move || files::copy_digested(&path, &dest)).await? {
            blobs.push(BlobEntry {
                key,
                bytes: d.bytes,
                sha256: d.sha256,
            });
        }
        progress(Progress {
            phase: Phase::Blobs,
            done: done as u64 + 1,
            total,
        });
    }
    Ok(blobs)
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("the current time formats as RFC 3339")
}
