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
//! # What a backup leaves out
//!
//! The rows of [`TABLES_LEFT_OUT`] are not copied (their tables are, empty): the
//! stored hashes of links to choose a new password, and of links to confirm an email
//! address. Such a link is used up by its first use (a password link lives 30 minutes,
//! an address link 7 days); a restore that brought it back would make a used link work
//! again. A restored server answers every earlier link as unknown, and whoever needs
//! one asks again. Passkey ceremonies waiting for the browser's answer (5 minutes at
//! most) are left out for the same reason. Passkeys themselves are kept, with the
//! recovery material sealed under a key only the passkey gives a browser: public keys
//! and ciphertext, like the rest of a backup, and an account without a password needs
//! its passkeys after a restore.
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

mod backup;
mod bucket;
pub mod error;
mod files;
pub mod manifest;
mod postgres;
mod restore;
mod shared;
mod sqlite;
mod verify;

pub use backup::backup;
pub use error::BackupError;
pub use manifest::{
    BlobEntry, DatabaseEntry, DatabaseKind, Manifest, FORMAT_VERSION, MANIFEST_FILE,
};
pub use pawpost_storage::StorageConfig;
pub use restore::{restore, restore_with_options};
pub use verify::{verify, verify_with_progress};

use std::path::PathBuf;

/// The SQLite snapshot's name in a backup folder (the server's file name too).
pub const SQLITE_FILE: &str = pawpost_storage::SQLITE_FILE;
/// The PostgreSQL dump's name in a backup folder.
pub const POSTGRES_FILE: &str = "pawpost.pgdump";
/// The folder holding the blobs in a backup folder.
pub const BLOBS_DIR: &str = "blobs";
/// Tables whose rows a backup leaves out: see the crate docs.
pub const TABLES_LEFT_OUT: &[&str] = &[
    "password_resets",
    "email_verifications",
    "passkey_ceremonies",
];
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
