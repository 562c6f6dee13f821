//! The embedded metadata store: one SQLite file, no network port at all.
//!
//! Each concern keeps its queries in a module of its own (accounts and sessions,
//! households and invitations, devices and pairing, messages, privacy, audit); the rows
//! they read, and how those become domain values, are in `rows`.
#![forbid(unsafe_code)]

mod accounts;
mod audit;
mod certificates;
mod checkpoint;
pub use checkpoint::{CHECKPOINT_INTERVAL, WAL_RESTART_FRAMES, WAL_TRUNCATE_FRAMES};
mod devices;
mod farewells;
mod group;
pub use group::GROUP_COMMIT_MAX_WRITES;
mod households;
mod messages;
mod notifications;
mod passkeys;
mod privacy;
mod releases;
mod rows;
#[cfg(test)]
mod tests;
mod toys;
mod write;

use pawpost_store::stored;
use pawpost_store::{StoreError, StoreResult};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{FromRow, Sqlite, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// How long a writer waits for another writer before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections in the pool; SQLite serialises writers anyway.
pub const MAX_CONNECTIONS: u32 = 8;
/// SQLite's own page cache, per connection, in KiB (SQLite's default is about 2 MiB).
/// Every connection keeps its own copy of the pages it read, while the operating
/// system's page cache already holds the file once for all of them: with SQLite's
/// default, a burst of reads (toys authenticating after a deploy) left 2 MiB in each of
/// the pool's connections, 16 MiB in all; a page missing here costs one read from the
/// system's cache.
pub const PAGE_CACHE_KIB_PER_CONNECTION: u32 = 256;
/// Pages a transaction may change before SQLite writes some to the log ahead of its
/// commit (16 MiB of 4 KiB pages; above [`PAGE_CACHE_KIB_PER_CONNECTION`], the cache
/// shrinks back after the commit). A group commit changes some hundreds of pages, many
/// of them (indexes, the last leaf of a table) again and again: written ahead, each
/// change would cost another frame in the log.
pub const DIRTY_PAGES_BEFORE_SPILL: u32 = 4096;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Clone)]
pub struct SqliteStore {
    db: group::Database,
}

impl SqliteStore {
    /// Opens (creating if needed, with mode 0600) the database at `url`
    /// (`sqlite://path/to/file.db`) and applies pending migrations.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Backend(format!("bad SQLite URL {url:?}: {e}")))?
            .create_if_missing(true)
            .foreign_keys(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an acknowledged write survives a power cut, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            // Deleted content is overwritten with zeros, not left in free pages.
            .pragma("secure_delete", "ON")
            // Checkpoints run on a connection of their own, off the commits' path
            // (`checkpoint`).
            .pragma("wal_autocheckpoint", "0")
            // Negative: a size in KiB rather than in pages.
            .pragma("cache_size", format!("-{PAGE_CACHE_KIB_PER_CONNECTION}"))
            .pragma("cache_spill", DIRTY_PAGES_BEFORE_SPILL.to_string());
        create_private_file(options.get_filename())?;
        let file = options.get_filename().to_path_buf();
        // The group writer's connection: its commits write the log, and a thread of the
        // writer's syncs it for every group committed meanwhile (`group`).
        let commits = options.clone().synchronous(SqliteSynchronous::Normal);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            // A connection to a file in this process has no other end to lose: no
            // `ping` before every query (each a round trip to the connection's thread).
            // The pool still pings a connection as it comes back, which finishes a
            // transaction its holder dropped.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(backend)?;
        MIGRATOR.run(&pool).await.map_err(|e| {
            StoreError::Backend(format!("migrating the SQLite database failed: {e}"))
        })?;
        let (commits, log) = if in_memory(&file) {
            (None, None)
        } else {
            let commits = SqlitePoolOptions::new()
                .max_connections(1)
                .test_before_acquire(false)
                .connect_with(commits)
                .await
                .map_err(backend)?;
            let mut log = file.into_os_string();
            log.push("-wal");
            (Some(commits), Some(log.into()))
        };
        Ok(Self {
            db: group::Database::new(pool, commits, log),
        })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.db
    }

    /// Closes every connection, waiting for those in use, so that whoever copies the
    /// files next (a backup, say) finds none open.
    ///
    /// The pool's own `close` can return while a connection that was being handed back
    /// (the background checkpoint's, say) goes into its idle queue after the last look:
    /// that one stays open until the pool is closed again, which closes the idle queue
    /// and returns at once when nothing is left.
    pub async fn close(&self) {
        for _ in 0..CLOSE_ROUNDS {
            self.db.close().await;
            if self.db.size() == 0 {
                return;
            }
            tokio::time::sleep(CLOSE_POLL).await;
        }
        tracing::warn!(
            open = self.db.size(),
            "SQLite connections stayed open after closing the store"
        );
    }
}

/// How many times, [`CLOSE_POLL`] apart, [`SqliteStore::close`] closes the pool again
/// while a connection that was being handed back is still open (10 s in all).
pub const CLOSE_ROUNDS: u32 = 1_000;
/// See [`CLOSE_ROUNDS`].
pub const CLOSE_POLL: Duration = Duration::from_millis(10);

/// A database with no file: nothing to make private, no log to sync.
fn in_memory(path: &Path) -> bool {
    path.as_os_str().is_empty() || path.to_str() == Some(":memory:")
}

/// SQLite gives its -wal and -shm files the mode of the main file, so making the main
/// file 0600 before SQLite opens it keeps all three private.
fn create_private_file(path: &Path) -> StoreResult<()> {
    if in_memory(path) || path.exists() {
        return Ok(());
    }
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(|e| StoreError::Backend(format!("cannot create {}: {e}", path.display())))
}

/// How long a deletion keeps trying to empty the log while another checkpoint (the
/// background one, every [`CHECKPOINT_INTERVAL`]) is under way. SQLite answers such a
/// `TRUNCATE` checkpoint "busy" at once, without waiting, and the erased rows' old pages
/// would stay in the log until the next one.
pub const ERASE_CHECKPOINT_WAIT: Duration = BUSY_TIMEOUT;
/// The pause between two tries of a deletion's `TRUNCATE` checkpoint (a background
/// checkpoint copies 100 ms of writes: a few milliseconds).
pub const ERASE_CHECKPOINT_RETRY: Duration = Duration::from_millis(2);

/// Copies the write-ahead log into the database file and empties it, so that erased
/// data does not linger in the log either. Tries again while another checkpoint is under
/// way, for at most [`ERASE_CHECKPOINT_WAIT`]; past it (a read that never ends, say) the
/// deletion stands, and a warning says the log still holds the old pages.
async fn checkpoint(pool: &SqlitePool) -> StoreResult<()> {
    let mut conn = pool.acquire().await.map_err(backend)?;
    let deadline = tokio::time::Instant::now() + ERASE_CHECKPOINT_WAIT;
    loop {
        let (busy, frames) = checkpoint::checkpoint_busy(&mut conn, "TRUNCATE")
            .await
            .map_err(backend)?;
        if !busy {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                frames,
                "erased rows stay in the SQLite write-ahead log: another connection held it \
                 for {ERASE_CHECKPOINT_WAIT:?}; end long reads (a backup copying the files?) \
                 so that the next deletion empties it"
            );
            return Ok(());
        }
        tokio::time::sleep(ERASE_CHECKPOINT_RETRY).await;
    }
}

fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn unique_violation(e: sqlx::Error, what: &'static str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => backend(e),
    }
}

/// A `SELECT` whose rows are read as `R`.
type Select<'q, R> = sqlx::query::QueryAs<'q, Sqlite, R, SqliteArguments<'q>>;

/// Runs `query` and turns every row into its domain value.
async fn fetch_all<R, T>(pool: &SqlitePool, query: Select<'_, R>) -> StoreResult<Vec<T>>
where
    R: for<'r> FromRow<'r, SqliteRow> + TryInto<T, Error = StoreError> + Send + Unpin,
{
    stored::all(query.fetch_all(pool).await.map_err(backend)?)
}

/// Runs `query` and turns the row it found, if any, into its domain value.
async fn fetch_optional<R, T>(pool: &SqlitePool, query: Select<'_, R>) -> StoreResult<Option<T>>
where
    R: for<'r> FromRow<'r, SqliteRow> + TryInto<T, Error = StoreError> + Send + Unpin,
{
    stored::one(query.fetch_optional(pool).await.map_err(backend)?)
}

/// A statement that changes rows.
type Change<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>;

/// Runs `query`; returns how many rows it changed.
async fn execute(pool: &SqlitePool, query: Change<'_>) -> StoreResult<u64> {
    Ok(query.execute(pool).await.map_err(backend)?.rows_affected())
}

// Each method runs the query of its concern's module on the pool.
pawpost_store::impl_metadata_store!(SqliteStore, db);
