//! The two storage URLs an operator gives (`--database-url`, `--blob-url`), read once
//! into the values that `serve`, `backup`, `restore` and the admin commands share.
use sqlx::sqlite::SqliteConnectOptions;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The SQLite file's name in the data folder (and in a backup folder).
pub const SQLITE_FILE: &str = "pawpost.db";
/// The blob folder's name in the data folder.
pub const BLOBS_DIR: &str = "blobs";

/// What a valid `--database-url` looks like, for messages.
pub const DATABASE_URL_FORMS: &str =
    "sqlite://PATH (the embedded default) or postgres://USER:PASSWORD@HOST/DATABASE";
/// What a valid `--blob-url` looks like, for messages.
pub const BLOB_URL_FORMS: &str = "file://PATH, a plain folder path, or \
    s3://BUCKET/PREFIX?endpoint=https://HOST&region=NAME for S3-compatible storage";

/// A storage URL that cannot be used. Messages name only the scheme of a URL they
/// refuse: the rest may hold a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error(
        "unsupported database URL {0:?} (--database-url, PAWPOST_DATABASE_URL): use \
         {DATABASE_URL_FORMS}"
    )]
    DatabaseScheme(String),
    #[error(
        "bad SQLite URL {url:?} (--database-url, PAWPOST_DATABASE_URL): {detail}; write it \
         as sqlite:///absolute/path/pawpost.db or sqlite://relative/path/pawpost.db"
    )]
    Sqlite { url: String, detail: String },
    #[error("unsupported blob URL {0:?} (--blob-url, PAWPOST_BLOB_URL): use {BLOB_URL_FORMS}")]
    BlobScheme(String),
}

/// `SCHEME://...`, with nothing after the scheme.
fn scheme_only(url: &str) -> String {
    let scheme = url.split("://").next().unwrap_or("");
    format!("{scheme}://...")
}

/// Where the metadata lives.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://PATH`: the embedded database file at `path`.
    Sqlite { url: String, path: PathBuf },
    /// `postgres://...` or `postgresql://...`; may hold a password.
    Postgres(String),
}

impl DatabaseUrl {
    /// The embedded default: `sqlite://<data_dir>/pawpost.db`.
    pub fn sqlite_in(data_dir: &Path) -> Self {
        let path = data_dir.join(SQLITE_FILE);
        Self::Sqlite {
            url: format!("sqlite://{}", path.display()),
            path,
        }
    }

    /// The URL as given, for the store's driver. It may hold a password: never log it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Sqlite { url, .. } => url,
            Self::Postgres(url) => url,
        }
    }
}

impl FromStr for DatabaseUrl {
    type Err = UrlError;

    fn from_str(url: &str) -> Result<Self, UrlError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url).map_err(|e| UrlError::Sqlite {
                url: url.to_owned(),
                detail: e.to_string(),
            })?;
            Ok(Self::Sqlite {
                url: url.to_owned(),
                path: options.get_filename().to_owned(),
            })
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(url.to_owned()))
        } else {
            Err(UrlError::DatabaseScheme(scheme_only(url)))
        }
    }
}

/// A PostgreSQL URL's password stays out of debug output.
impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite { path, .. } => f.debug_tuple("Sqlite").field(path).finish(),
            Self::Postgres(_) => f.write_str("Postgres(..)"),
        }
    }
}

/// Where the encrypted envelopes live.
#[derive(Clone, PartialEq, Eq)]
pub enum BlobUrl {
    /// `file://PATH` or a plain path: a private folder.
    Folder(PathBuf),
    /// `s3://BUCKET/PREFIX?endpoint=URL&region=NAME`, read by `pawpost_blob_s3` when the
    /// bucket is opened (with the `AWS_*` environment; a URL holding credentials is
    /// refused there).
    S3(String),
}

impl BlobUrl {
    /// The embedded default: the folder `<data_dir>/blobs`.
    pub fn folder_in(data_dir: &Path) -> Self {
        Self::Folder(data_dir.join(BLOBS_DIR))
    }
}

/// A bucket URL stays out of debug output: one given with credentials in it is refused
/// only when the bucket is opened.
impl std::fmt::Debug for BlobUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Folder(path) => f.debug_tuple("Folder").field(path).finish(),
            Self::S3(_) => f.write_str("S3(..)"),
        }
    }
}

impl FromStr for BlobUrl {
    type Err = UrlError;

    fn from_str(url: &str) -> Result<Self, UrlError> {
        match url.split_once("://") {
            Some(("file", path)) => Ok(Self::Folder(PathBuf::from(path))),
            Some(("s3", _)) => Ok(Self::S3(url.to_owned())),
            Some(_) => Err(UrlError::BlobScheme(scheme_only(url))),
            None => Ok(Self::Folder(PathBuf::from(url))),
        }
    }
}

/// Where one pawpost installation keeps its data: the data folder, the database and the
/// blob store, with the embedded defaults under the data folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// Created with mode 0700 when storage is opened; holds the defaults below.
    pub data_dir: PathBuf,
    pub database: DatabaseUrl,
    /// PostgreSQL schema to keep pawpost's tables in (created if missing); the URL's
    /// default (usually `public`) when unset.
    pub database_schema: Option<String>,
    pub blobs: BlobUrl,
}

impl StorageConfig {
    /// The embedded defaults: SQLite and a blob folder, both under `data_dir`.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Self {
            database: DatabaseUrl::sqlite_in(&data_dir),
            database_schema: None,
            blobs: BlobUrl::folder_in(&data_dir),
            data_dir,
        }
    }

    /// Reads the options as an operator gives them; what is not given is the embedded
    /// default under `data_dir`.
    pub fn from_options(
        data_dir: impl Into<PathBuf>,
        database_url: Option<&str>,
        database_schema: Option<String>,
        blob_url: Option<&str>,
    ) -> Result<Self, UrlError> {
        let mut config = Self::with_data_dir(data_dir);
        if let Some(url) = database_url {
            config.database = url.parse()?;
        }
        config.database_schema = database_schema;
        if let Some(url) = blob_url {
            config.blobs = url.parse()?;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_live_in_the_data_folder() {
        let c = StorageConfig::with_data_dir("pawpost-data");
        assert_eq!(c.database.as_str(), "sqlite://pawpost-data/pawpost.db");
        assert_eq!(
            c.database,
            DatabaseUrl::Sqlite {
                url: "sqlite://pawpost-data/pawpost.db".into(),
                path: "pawpost-data/pawpost.db".into()
            }
        );
        assert_eq!(c.blobs, BlobUrl::Folder("pawpost-data/blobs".into()));
        assert_eq!(c.database_schema, None);
    }

    #[test]
    fn each_backend_is_named_by_its_scheme() {
        let sqlite: DatabaseUrl = "sqlite:///srv/pawpost/pawpost.db".parse().unwrap();
        assert!(
            matches!(&sqlite, DatabaseUrl::Sqlite { path, .. } if path == Path::new("/srv/pawpost/pawpost.db"))
        );
        for url in ["postgres://p:s3cret@db/pawpost", "postgresql://db/pawpost"] {
            let parsed: DatabaseUrl = url.parse().unwrap();
            assert_eq!(parsed, DatabaseUrl::Postgres(url.into()));
            assert!(!format!("{parsed:?}").contains("s3cret"));
        }
        let folder: BlobUrl = "file:///srv/blobs".parse().unwrap();
        assert_eq!(folder, BlobUrl::Folder("/srv/blobs".into()));
        assert_eq!(
            "relative/blobs".parse::<BlobUrl>().unwrap(),
            BlobUrl::Folder("relative/blobs".into())
        );
        let bucket = "s3://voices/prod?region=eu-west-1";
        assert_eq!(
            bucket.parse::<BlobUrl>().unwrap(),
            BlobUrl::S3(bucket.into())
        );
        let with_key: BlobUrl = "s3://AKID:s3cret@voices/prod".parse().unwrap();
        assert!(!format!("{with_key:?}").contains("s3cret"));
    }

    #[test]
    fn other_schemes_are_refused_saying_what_works_without_the_rest_of_the_url() {
        let err = "mongodb://admin:hunter2@open-to-the-world"
            .parse::<DatabaseUrl>()
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("unsupported database URL \"mongodb://...\""),
            "{text}"
        );
        assert!(
            text.contains("sqlite://PATH") && text.contains("postgres://"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");

        let err = "gs://user:hunter2@bucket/blobs"
            .parse::<BlobUrl>()
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("\"gs://...\"") && text.contains("s3://BUCKET/PREFIX"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");

        let err = StorageConfig::from_options("d", None, None, Some("ftp://x")).unwrap_err();
        assert_eq!(err, UrlError::BlobScheme("ftp://...".into()));
    }
}
