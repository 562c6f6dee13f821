//! Restoring a checked backup: every refusal first, then the blobs into staging places
//! (or straight into the bucket), then the blobs and the database, last, into place.
use crate::bucket::{bucket_holds_blobs, put_blobs, remove_other_blobs};
use crate::error::BackupError;
use crate::files::{self, Digested};
use crate::manifest::{Manifest, MANIFEST_FILE};
use crate::shared::{blocking, expected_of, kind_of, mismatch, open_blobs, Blobs};
use crate::verify::verify_with_progress;
use crate::{postgres, sqlite, Phase, Progress, RestoreOptions, RestoreReport, BLOBS_DIR};
use pawpost_blob_s3::S3BlobStore;
use pawpost_storage::{DatabaseUrl, StorageConfig};
use std::path::{Path, PathBuf};

/// Restores the backup in `from` into the storage `config` names, refusing a target that
/// already holds data. The server must be stopped.
pub async fn restore(
    config: &StorageConfig,
    from: &Path,
    progress: impl FnMut(Progress),
) -> Result<RestoreReport, BackupError> {
    restore_with_options(config, from, RestoreOptions::default(), progress).await
}

/// [`restore`] with options, such as replacing a target that holds data.
pub async fn restore_with_options(
    config: &StorageConfig,
    from: &Path,
    options: RestoreOptions,
    mut progress: impl FnMut(Progress),
) -> Result<RestoreReport, BackupError> {
    let manifest = verify_with_progress(from, &mut progress).await?;
    let configured = kind_of(&config.database);
    if configured != manifest.database.kind {
        return Err(BackupError::KindMismatch {
            backup: manifest.database.kind,
            configured,
        });
    }
    let target = open_blobs(config).await?;

    // Every refusal comes before the first write.
    if !options.force {
        match &target {
            Blobs::Folder(blob_dir) if files::holds_files(blob_dir)? => {
                return Err(BackupError::TargetHasData(format!(
                    "the blob folder {} holds files",
                    blob_dir.display()
                )));
            }
            Blobs::Bucket(store) if bucket_holds_blobs(store).await? => {
                return Err(BackupError::TargetHasData(format!(
                    "the blob bucket prefix {} holds blobs",
                    store.location()
                )));
            }
            _ => {}
        }
    }
    let (db_target, pg_schemas) = match &config.database {
        DatabaseUrl::Sqlite { path, .. } => {
            let path = path.clone();
            if !options.force && sqlite::has_data(&path) {
                return Err(BackupError::TargetHasData(format!(
                    "the database {} exists",
                    path.display()
                )));
            }
            (Some(path), None)
        }
        DatabaseUrl::Postgres(url) => {
            let source =
                manifest
                    .database
                    .schema
                    .clone()
                    .ok_or_else(|| BackupError::BadManifest {
                        path: from.join(MANIFEST_FILE),
                        reason: "a PostgreSQL backup without its schema name".into(),
                    })?;
            let target = postgres::schema_of(url, config.database_schema.as_deref()).await?;
            if source != target && postgres::relations_in(url, &source).await?.is_some() {
                return Err(BackupError::SchemaInUse(source));
            }
            if !options.force {
                if let Some(n) = postgres::relations_in(url, &target)
                    .await?
                    .filter(|n| *n > 0)
                {
                    return Err(BackupError::TargetHasData(format!(
                        "PostgreSQL schema {target} holds {n} relations"
                    )));
                }
            }
            (None, Some((source, target)))
        }
    };

    // With PostgreSQL and a bucket, nothing is written to the data folder.
    if matches!(target, Blobs::Folder(_)) || db_target.is_some() {
        files::create_private_dir_all(&config.data_dir)?;
    }
    let staged_blobs = match &target {
        Blobs::Folder(blob_dir) => Some(staging_path(blob_dir, "restoring")?),
        Blobs::Bucket(_) => None,
    };
    let staged_db = db_target
        .as_deref()
        .map(|p| staging_path(p, "restoring"))
        .transpose()?;
    let blobs = match (&target, &staged_blobs) {
        (Blobs::Folder(target), Some(staged)) => BlobRestore::Folder { target, staged },
        (Blobs::Bucket(store), _) => BlobRestore::Bucket(store),
        (Blobs::Folder(_), None) => unreachable!("a blob folder is always staged"),
    };
    let result = stage_and_commit(
        from,
        &manifest,
        blobs,
        db_target.as_deref().zip(staged_db.as_deref()),
        pg_schemas
            .as_ref()
            .map(|(s, t)| (config.database.as_str(), s.as_str(), t.as_str())),
        options.force,
        &mut progress,
    )
    .await;
    if result.is_err() {
        // Staging copies are hidden and never mistaken for data, but need not linger.
        if let Some(p) = &staged_blobs {
            let _ = std::fs::remove_dir_all(p);
        }
        if let Some(p) = &staged_db {
            let _ = std::fs::remove_file(p);
        }
    }
    result?;
    Ok(RestoreReport {
        database: match (&db_target, &pg_schemas) {
            (Some(path), _) => path.display().to_string(),
            (None, Some((_, target))) => format!("PostgreSQL schema {target}"),
            (None, None) => unreachable!("every database kind has a target"),
        },
        blob_target: match &target {
            Blobs::Folder(blob_dir) => blob_dir.display().to_string(),
            Blobs::Bucket(store) => store.location(),
        },
        blobs: manifest.blobs.len() as u64,
        blob_bytes: manifest.blob_bytes(),
        manifest,
    })
}

/// A hidden sibling of `target`, on the same file system so that a rename moves it.
fn staging_path(target: &Path, what: &str) -> Result<PathBuf, BackupError> {
    let parent = target.parent().unwrap_or(Path::new("."));
    files::create_private_dir_all(parent)?;
    let name = target
        .file_name()
        .ok_or_else(|| BackupError::Io {
            what: "cannot restore to",
            path: target.to_owned(),
            source: std::io::Error::other("the path has no file name"),
        })?
        .to_string_lossy();
    Ok(parent.join(format!(".{name}.{what}-{:016x}", rand::random::<u64>())))
}

/// Where a restore puts the blobs.
#[derive(Clone, Copy)]
enum BlobRestore<'a> {
    /// Copied into `staged`, a hidden sibling, then swapped in for `target`.
    Folder { target: &'a Path, staged: &'a Path },
    /// Put straight under the bucket's prefix.
    Bucket(&'a S3BlobStore),
}

async fn stage_and_commit(
    from: &Path,
    manifest: &Manifest,
    blobs: BlobRestore<'_>,
    sqlite_target: Option<(&Path, &Path)>,
    postgres_target: Option<(&str, &str, &str)>,
    force: bool,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), BackupError> {
    match blobs {
        BlobRestore::Folder { staged, .. } => {
            stage_blobs(from, manifest, staged, progress).await?;
        }
        BlobRestore::Bucket(store) => {
            put_blobs(from, manifest, store, progress).await?;
            if force {
                remove_other_blobs(manifest, store, progress).await?;
            }
        }
    }

    progress(Progress {
        phase: Phase::RestoreDatabase,
        done: 0,
        total: 1,
    });
    if let Some((_, staged_db)) = sqlite_target {
        let source = from.join(&manifest.database.file);
        let dest = staged_db.to_owned();
        let expected = Digested {
            bytes: manifest.database.bytes,
            sha256: manifest.database.sha256.clone(),
        };
        blocking(move || copy_checked(&source, &dest, &expected)).await?;
    }

    // Commit: blobs first, the database last (see the crate docs).
    if let BlobRestore::Folder { target, staged } = blobs {
        let (target, staged) = (target.to_owned(), staged.to_owned());
        blocking(move || swap_in_dir(&staged, &target, force)).await?;
    }
    match (sqlite_target, postgres_target) {
        (Some((target, staged_db)), _) => {
            let (target, staged_db) = (target.to_owned(), staged_db.to_owned());
            blocking(move || sqlite::move_into_place(&staged_db, &target)).await?;
        }
        (None, Some((url, source, target))) => {
            postgres::restore(
                url,
                &from.join(&manifest.database.file),
                source,
                target,
                force,
            )
            .await?;
        }
        (None, None) => {}
    }
    progress(Progress {
        phase: Phase::RestoreDatabase,
        done: 1,
        total: 1,
    });
    Ok(())
}

/// Copies every blob of the backup into the folder `staged`, synced.
async fn stage_blobs(
    from: &Path,
    manifest: &Manifest,
    staged: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), BackupError> {
    // Copies are checked again: the backup may have changed since it was verified.
    files::create_private_dir_all(staged)?;
    let total = manifest.blobs.len() as u64;
    progress(Progress {
        phase: Phase::RestoreBlobs,
        done: 0,
        total,
    });
    for (done, blob) in manifest.blobs.iter().enumerate() {
        let source = from.join(BLOBS_DIR).join(&blob.key);
        let dest = staged.join(&blob.key);
        let expected = expected_of(blob);
        blocking(move || copy_checked(&source, &dest, &expected)).await?;
        progress(Progress {
            phase: Phase::RestoreBlobs,
            done: done as u64 + 1,
            total,
        });
    }
    let staged = staged.to_owned();
    blocking(move || {
        files::walk(&staged)?
            .dirs
            .iter()
            .try_for_each(|d| files::sync_dir(d))
    })
    .await
}

fn copy_checked(source: &Path, dest: &Path, expected: &Digested) -> Result<(), BackupError> {
    match files::copy_digested(source, dest)? {
        Some(found) => mismatch(source, expected, &found),
        None => Err(BackupError::MissingFile(source.to_owned())),
    }
}

/// Replaces the folder `target` with the complete, synced `staged` one. An existing
/// target (empty, or anything when forced) is renamed aside first and deleted after.
fn swap_in_dir(staged: &Path, target: &Path, force: bool) -> Result<(), BackupError> {
    let parent = target.parent().unwrap_or(Path::new("."));
    let aside = if target.exists() {
        if !force && files::holds_files(target)? {
            return Err(BackupError::TargetHasData(format!(
                "the blob folder {} holds files",
                target.display()
            )));
        }
        let aside = staging_path(target, "replaced")?;
        std::fs::rename(target, &aside).map_err(BackupError::io("cannot move aside", target))?;
        Some(aside)
    } else {
        None
    };
    std::fs::rename(staged, target).map_err(BackupError::io("cannot move into place", target))?;
    files::sync_dir(parent)?;
    if let Some(aside) = aside {
        std::fs::remove_dir_all(&aside).map_err(BackupError::io("cannot remove", &aside))?;
    }
    Ok(())
}
