//! Backups of a running pawpost server, a check of a backup, and a restore that refuses
//! anything it cannot vouch for.
//!
//! The database of the toys this replaces was wiped and held for ransom three times;
//! this crate is what lets an operator start again from a copy kept elsewhere.
//!
//! # A backup folder
//!
//! ```text
//! DIR/                      mode 0700
//!   pawpost.db              SQLite: a VACUUM INTO snapshot          (files 0600)
//!   pawpost.pgdump          PostgreSQL: pg_dump --format=custom of pawpost's schema
//!   blobs/<key>             every encrypted envelope, at its blob store key
//!                           (from the blob folder or the bucket prefix alike)
//!   manifest.json           written last: sizes and SHA-256 of all of the above
//! ```
//!
//! A folder without `manifest.json` is a partial backup: the manifest is written to a
//! temporary file, synced and renamed only after every other file is synced, so its
//! presence means the rest is complete. See [`manifest`] for its fields.
//!
//! # Consistency while the server runs
//!
//! The database is copied first, as of one instant: SQLite with `VACUUM INTO` on a
//! connection of its own, PostgreSQL with `pg_dump` (one repeatable-read snapshot). The
//! blobs are copied afterwards. The server writes a blob before the row that names it,
//! so every blob the snapshot references already exists when the copy starts; a blob
//! newer than the snapshot is merely unreferenced. (A message deleted between the
//! snapshot and the blob copy, by retention or account deletion, comes back as a row
//! whose envelope is gone, which the server answers as a missing message.)
//!
//! # Blobs in a bucket
//!
//! With `--blob-url s3://BUCKET/PREFIX` the blobs are read and written through the same
//! S3 client as the server's, with its credentials from the `AWS_*` environment (named
//! in no message). The argument above holds unchanged: the prefix is listed only after
//! the snapshot, and S3 listings are strongly consistent (an object whose upload was
//! acknowledged is listed; a store that lists late is not S3-compatible enough for
//! this), so every blob the snapshot references is listed. Each listed blob is
//! downloaded into
//! `blobs/<key>`, hashed as it is written; one deleted between the listing and its
//! download is left out, as a file deleted from a folder is. [`BUCKET_TRANSFERS`] blobs
//! move at once, each held in memory whole.
//!
//! A backup folder is the same whichever blob store it came from, so a backup of a
//! folder restores into a bucket and one of a bucket into a folder.
//!
//! # PostgreSQL
//!
//! Backing up and restoring PostgreSQL runs `pg_dump`, `pg_restore` and `psql`, which
//! must be on `PATH` and match the server's major version (Debian:
//! `apt-get install postgresql-client`). The URL's password is handed over in
//! `PGPASSWORD`, never on a command line. The restore runs in one transaction into the
//! configured schema (or the URL's default schema), which must be missing or empty.
//!
//! # Restoring
//!
//! [`restore`] first checks the whole backup as [`verify`] does, refuses a target that
//! already holds data unless [`RestoreOptions::force`] is set, copies every file into
//! hidden staging places beside their targets (0600 files in 0700 folders, synced,
//! checksummed again), and only then moves them into place: the blobs, then the
//! database last, because the database is what makes a data folder look whole. A crash
//! part-way leaves at most blobs without a database, which a second restore refuses
//! until it is given `force`. Restore into a stopped server.
//!
//! A bucket has no staging place and no rename: every blob is checked again against the
//! manifest as it is read and put straight under the prefix, still before the database.
//! A prefix that holds blobs is refused unless `force` is set; then, once every blob of
//! the backup is in, the blobs under the prefix that the backup does not hold are
//! deleted (those it also holds were overwritten). Objects under the prefix that are
//! not blob keys are not blobs, and are neither counted nor deleted.
#![forbid(unsafe_code)]

pub mod error;
mod files;
pub mod manifest;
mod postgres;
mod sqlite;

pub use error::BackupError;
pub use manifest::{
    BlobEntry, DatabaseEntry, DatabaseKind, Manifest, FORMAT_VERSION, MANIFEST_FILE,
};

use files::Digested;
use futures_util::{stream, StreamExt};
use pawpost_blob_s3::S3BlobStore;
use pawpost_server::config::ServerConfig;
use pawpost_store::{BlobCursor, BlobKey, BlobStore, BLOB_LIST_PAGE_SIZE};
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

/// The SQLite snapshot's name in a backup folder (and the server's file name).
pub const SQLITE_FILE: &str = "pawpost.db";
/// The PostgreSQL dump's name in a backup folder.
pub const POSTGRES_FILE: &str = "pawpost.pgdump";
/// The folder holding the blobs in a backup folder.
pub const BLOBS_DIR: &str = "blobs";
/// How many blobs are downloaded from, or uploaded to, a bucket at once; each is held
/// in memory whole while it moves.
pub const BUCKET_TRANSFERS: usize = 8;

/// The step a long operation is in, for a progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Taking the database snapshot (0 of 1, then 1 of 1).
    Database,
    /// Copying blobs into the backup (counted in files).
    Blobs,
    /// Writing the manifest.
    Manifest,
    /// Checking a backup's files against its manifest (database and blobs, in files).
    Verify,
    /// Copying blobs into the staging folder, or into the bucket (in files).
    RestoreBlobs,
    /// Deleting the blobs under a forced restore's bucket prefix that the backup does
    /// not hold (in blobs).
    RemoveBlobs,
    /// Putting the database in place (0 of 1, then 1 of 1).
    RestoreDatabase,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Database => "database snapshot",
            Phase::Blobs => "copying blobs",
            Phase::Manifest => "writing manifest",
            Phase::Verify => "checking files",
            Phase::RestoreBlobs => "restoring blobs",
            Phase::RemoveBlobs => "removing old blobs",
            Phase::RestoreDatabase => "restoring database",
        })
    }
}

/// `done` of `total` units of `phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub phase: Phase,
    pub done: u64,
    pub total: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    pub dir: PathBuf,
    pub database_bytes: u64,
    pub blobs: u64,
    pub blob_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// Where the database went: a file path, or `PostgreSQL schema NAME`.
    pub database: String,
    /// Where the blobs went: the blob folder's path, or `s3://BUCKET/PREFIX at ENDPOINT`.
    pub blob_target: String,
    pub blobs: u64,
    pub blob_bytes: u64,
    /// The manifest of the backup that was restored.
    pub manifest: Manifest,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreOptions {
    /// Replace a target that already holds data (its database and blobs are deleted).
    pub force: bool,
}

fn kind_of(url: &str) -> Result<DatabaseKind, BackupError> {
    if url.starts_with("sqlite:") {
        Ok(DatabaseKind::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(DatabaseKind::Postgres)
    } else {
        // Only the scheme: the rest of a URL may hold a password.
        let scheme = url.split("://").next().unwrap_or("");
        Err(BackupError::DatabaseScheme(format!("{scheme}://...")))
    }
}

/// The server's blob store.
enum Blobs {
    Folder(PathBuf),
    Bucket(S3BlobStore),
}

/// The blob store, read exactly as the server reads `blob_url`; a bucket is opened (the
/// prefix listed once), so that one that cannot be used is refused before any write.
async fn open_blobs(config: &ServerConfig) -> Result<Blobs, BackupError> {
    let url = config.blob_url();
    match url.split_once("://") {
        Some(("file", path)) => Ok(Blobs::Folder(PathBuf::from(path))),
        Some(("s3", _)) => Ok(Blobs::Bucket(
            S3BlobStore::open(&url).await.map_err(BackupError::Bucket)?,
        )),
        // Only the scheme: the rest of a URL may hold a password.
        Some((scheme, _)) => Err(BackupError::BlobScheme(format!("{scheme}://..."))),
        None => Ok(Blobs::Folder(PathBuf::from(url))),
    }
}

/// Whether the bucket holds any blob under its prefix.
async fn bucket_holds_blobs(store: &S3BlobStore) -> Result<bool, BackupError> {
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

/// Runs blocking file work off the async threads, so that a server sharing the runtime
/// keeps answering while large files are hashed.
async fn blocking<T: Send + 'static>(
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

/// Takes a consistent backup of the server described by `config` (which may be running)
/// into `to`, a new or empty folder.
pub async fn backup(
    config: &ServerConfig,
    to: &Path,
    mut progress: impl FnMut(Progress),
) -> Result<BackupReport, BackupError> {
    let url = config.database_url();
    let kind = kind_of(&url)?;
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
    let (file, schema) = match kind {
        DatabaseKind::Sqlite => {
            sqlite::snapshot(&url, &to.join(SQLITE_FILE)).await?;
            (SQLITE_FILE, None)
        }
        DatabaseKind::Postgres => {
            let schema = postgres::schema_of(&url, config.database_schema.as_deref()).await?;
            postgres::dump(&url, &schema, &to.join(POSTGRES_FILE)).await?;
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

/// Downloads every blob under the bucket's prefix into `to`'s blob folder, in key order,
/// [`BUCKET_TRANSFERS`] at a time.
async fn copy_bucket_blobs(
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

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("the current time formats as RFC 3339")
}

/// Checks the backup in `from` without restoring it: the manifest is present, of a known
/// version and intact, every file it lists is there with its size and SHA-256, and
/// nothing else is.
pub async fn verify(from: &Path) -> Result<Manifest, BackupError> {
    verify_with_progress(from, |_| {}).await
}

/// [`verify`], reporting each file checked.
pub async fn verify_with_progress(
    from: &Path,
    mut progress: impl FnMut(Progress),
) -> Result<Manifest, BackupError> {
    let manifest_path = from.join(MANIFEST_FILE);
    let read_path = manifest_path.clone();
    let bytes = match blocking(move || {
        std::fs::read(&read_path).map_err(BackupError::io("cannot read", &read_path))
    })
    .await
    {
        Ok(bytes) => bytes,
        Err(BackupError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound && from.is_dir() =>
        {
            return Err(BackupError::Partial(from.to_owned()));
        }
        Err(e) => return Err(e),
    };
    let manifest = Manifest::from_file_bytes(&manifest_path, &bytes)?;

    // Names come from a file anyone with write access could edit; none may leave `from`.
    let db_file = &manifest.database.file;
    if !files::is_safe_relative(db_file) || db_file.contains('/') || db_file == MANIFEST_FILE {
        return Err(BackupError::UnsafeName(db_file.clone()));
    }
    let mut expected = BTreeSet::from([MANIFEST_FILE.to_owned(), db_file.clone()]);
    for blob in &manifest.blobs {
        if BlobKey::new(blob.key.as_str()).is_err() || !files::is_safe_relative(&blob.key) {
            return Err(BackupError::UnsafeName(blob.key.clone()));
        }
        expected.insert(format!("{BLOBS_DIR}/{}", blob.key));
    }

    let root = from.to_owned();
    let present = blocking(move || files::walk(&root)).await?.files;
    if let Some((_, path)) = present.iter().find(|(rel, _)| !expected.contains(rel)) {
        return Err(BackupError::ExtraFile(path.clone()));
    }

    let mut checks = vec![(
        from.join(db_file),
        manifest.database.bytes,
        manifest.database.sha256.clone(),
    )];
    checks.extend(
        manifest
            .blobs
            .iter()
            .map(|b| (from.join(BLOBS_DIR).join(&b.key), b.bytes, b.sha256.clone())),
    );
    let total = checks.len() as u64;
    progress(Progress {
        phase: Phase::Verify,
        done: 0,
        total,
    });
    for (done, (path, bytes, sha256)) in checks.into_iter().enumerate() {
        let expect = Digested { bytes, sha256 };
        blocking(move || check_file(&path, &expect)).await?;
        progress(Progress {
            phase: Phase::Verify,
            done: done as u64 + 1,
            total,
        });
    }
    Ok(manifest)
}

fn check_file(path: &Path, expected: &Digested) -> Result<(), BackupError> {
    // A link where a file should be is not the file the backup wrote.
    let regular = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file());
    if !regular {
        return Err(BackupError::MissingFile(path.to_owned()));
    }
    let found = files::digest_file(path)?;
    mismatch(path, expected, &found)
}

fn mismatch(path: &Path, expected: &Digested, found: &Digested) -> Result<(), BackupError> {
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

/// Restores the backup in `from` into the storage `config` names, refusing a target that
/// already holds data. The server must be stopped.
pub async fn restore(
    config: &ServerConfig,
    from: &Path,
    progress: impl FnMut(Progress),
) -> Result<RestoreReport, BackupError> {
    restore_with_options(config, from, RestoreOptions::default(), progress).await
}

/// [`restore`] with options, such as replacing a target that holds data.
pub async fn restore_with_options(
    config: &ServerConfig,
    from: &Path,
    options: RestoreOptions,
    mut progress: impl FnMut(Progress),
) -> Result<RestoreReport, BackupError> {
    let manifest = verify_with_progress(from, &mut progress).await?;
    let url = config.database_url();
    let configured = kind_of(&url)?;
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
    let (db_target, pg_schemas) = match configured {
        DatabaseKind::Sqlite => {
            let path = sqlite::database_path(&url)?;
            if !options.force && sqlite::has_data(&path) {
                return Err(BackupError::TargetHasData(format!(
                    "the database {} exists",
                    path.display()
                )));
            }
            (Some(path), None)
        }
        DatabaseKind::Postgres => {
            let source =
                manifest
                    .database
                    .schema
                    .clone()
                    .ok_or_else(|| BackupError::BadManifest {
                        path: from.join(MANIFEST_FILE),
                        reason: "a PostgreSQL backup without its schema name".into(),
                    })?;
            let target = postgres::schema_of(&url, config.database_schema.as_deref()).await?;
            if source != target && postgres::relations_in(&url, &source).await?.is_some() {
                return Err(BackupError::SchemaInUse(source));
            }
            if !options.force {
                if let Some(n) = postgres::relations_in(&url, &target)
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
            .map(|(s, t)| (url.as_str(), s.as_str(), t.as_str())),
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

fn expected_of(blob: &BlobEntry) -> Digested {
    Digested {
        bytes: blob.bytes,
        sha256: blob.sha256.clone(),
    }
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

/// Puts every blob of the backup under the bucket's prefix, [`BUCKET_TRANSFERS`] at a
/// time, each checked against the manifest again as it is read.
async fn put_blobs(
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
async fn remove_other_blobs(
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
