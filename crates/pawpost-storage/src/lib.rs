//! Where pawpost keeps its data. The storage URLs are read once into a
//! [`StorageConfig`], which `pawpost serve`, `backup`, `restore` and the admin commands
//! share, and [`open`] turns it into the backends behind the storage traits: SQLite or
//! PostgreSQL for the metadata, a folder or an S3-compatible bucket for the blobs. The
//! server itself knows only the traits.
#![forbid(unsafe_code)]

mod open;
mod url;

pub use open::{open, open_blobs, open_metadata, OpenError, Stores};
pub use url::{
    BlobUrl, DatabaseUrl, StorageConfig, UrlError, BLOBS_DIR, BLOB_URL_FORMS, DATABASE_URL_FORMS,
    SQLITE_FILE,
};
