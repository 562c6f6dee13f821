//! Every way a backup, check or restore can fail; each message says what to do next.
use crate::manifest::{DatabaseKind, FORMAT_VERSION};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "the backup folder {0} is not empty: choose a new or empty folder, so that no \
         earlier backup is overwritten"
    )]
    BackupDirNotEmpty(PathBuf),

    #[error(
        "the backup folder {0} is inside the blob folder it would copy: choose a folder \
         outside the server's data, ideally on another disk or machine"
    )]
    BackupInsideBlobs(PathBuf),

    #[error(
        "{what} {path}: {source} (check that the path exists, that this user may read and \
         write it, and that the disk has room)"
    )]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    /// The message is complete in itself and says what to check; it names the bucket and
    /// endpoint, never a credential.
    #[error("cannot open the blob bucket, so nothing was copied: {0}")]
    Bucket(pawpost_blob_s3::OpenError),

    #[error(
        "{detail}; the backup folder {dir} has no manifest.json and will never be restored: \
         fix that and back up again into a new folder"
    )]
    BackupFromBucket { detail: String, dir: PathBuf },

    #[error("{0}; nothing was restored: fix that and run the restore again")]
    BucketCheck(String),

    #[error(
        "{0}; the restore stopped part-way: the bucket may hold some of the backup's blobs, \
         and the database was not restored, so do not start the server: fix that and run \
         the restore again with `force` (pawpost restore --force)"
    )]
    RestoreIntoBucket(String),

    #[error(
        "there is no SQLite database at {0}: check that --data-dir or --database-url name \
         the server's data"
    )]
    NoDatabase(PathBuf),

    #[error("SQLite: {0}; check the database path and that the disk has room")]
    Sqlite(String),

    #[error("PostgreSQL: {0}; check --database-url, --database-schema and that the server is up")]
    Postgres(String),

    #[error(
        "`{program}` failed: {message}; pawpost needs the PostgreSQL client tools (pg_dump, \
         pg_restore, psql) of the server's major version on PATH, e.g. \
         `apt-get install postgresql-client`"
    )]
    Tool {
        program: &'static str,
        message: String,
    },

    #[error(
        "{0} holds no manifest.json, so it is a partial backup (interrupted, or the manifest \
         was deleted) and cannot be trusted: restore another backup, or take a new one"
    )]
    Partial(PathBuf),

    #[error(
        "the manifest {path} is unreadable: {reason}; the backup is damaged, restore another copy"
    )]
    BadManifest { path: PathBuf, reason: String },

    #[error(
        "the manifest {path} has format version {found}, but this pawpost reads only version \
         {supported}: restore it with pawpost {pawpost_version} or later",
        supported = FORMAT_VERSION
    )]
    UnknownVersion {
        path: PathBuf,
        found: u64,
        pawpost_version: String,
    },

    #[error(
        "the manifest {0} does not match its own checksum: it was edited or damaged; \
         restore another copy of the backup"
    )]
    ManifestChecksum(PathBuf),

    #[error(
        "{path} is damaged: the manifest says {expected_bytes} bytes with SHA-256 {expected}, \
         the file has {found_bytes} bytes with SHA-256 {found}; do not restore this backup, \
         restore another copy"
    )]
    ChecksumMismatch {
        path: PathBuf,
        expected: String,
        expected_bytes: u64,
        found: String,
        found_bytes: u64,
    },

    #[error(
        "{0} is listed in the manifest but missing from the backup: the backup is \
         incomplete, restore another copy"
    )]
    MissingFile(PathBuf),

    #[error(
        "{0} is in the backup folder but not in its manifest: something was added after the \
         backup was made; restore another copy, or remove that file if you know where it \
         came from"
    )]
    ExtraFile(PathBuf),

    #[error(
        "the manifest lists {0:?}, which is not a safe relative path: the backup is damaged \
         or was tampered with; restore another copy"
    )]
    UnsafeName(String),

    #[error(
        "the restore target already holds data ({0}); restoring over it would mix two \
         servers' data: restore into an empty data folder, schema or bucket prefix, or pass \
         `--force` (pawpost restore --force) to delete what is there and replace it"
    )]
    TargetHasData(String),

    #[error(
        "the backup holds a {backup} database but the configuration uses {configured}: \
         restore with a --database-url of the same kind"
    )]
    KindMismatch {
        backup: DatabaseKind,
        configured: DatabaseKind,
    },

    #[error(
        "the backup's PostgreSQL schema {0:?} already exists in the target database, and it \
         is restored under that name before being renamed: drop or rename it first, or \
         restore into {0:?} itself"
    )]
    SchemaInUse(String),
}

impl BackupError {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| BackupError::Io { what, path, source }
    }
}
