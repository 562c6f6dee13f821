//! The SQLite side: a `VACUUM INTO` snapshot, and putting a snapshot back in place.
use crate::error::BackupError;
use crate::files;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{ConnectOptions, Connection};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the snapshot waits for the server's writers; it reads, so this only covers
/// a checkpoint or migration holding the database.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes a consistent copy of the live database file `source` to the new file `dest`.
///
/// `VACUUM INTO` runs inside one read transaction on a connection of its own, so the
/// copy is the database as of one instant even while the server keeps writing (WAL mode
/// lets readers and the writer proceed together), and it includes committed pages still
/// in the WAL. The rows of [`crate::TABLES_LEFT_OUT`] are then deleted from the copy.
pub async fn snapshot(source: &Path, dest: &Path) -> Result<(), BackupError> {
    if !source.is_file() {
        return Err(BackupError::NoDatabase(source.to_owned()));
    }
    let options = SqliteConnectOptions::new()
        .filename(source)
        // Never create an empty database where the server's should be.
        .create_if_missing(false)
        .busy_timeout(BUSY_TIMEOUT);
    // VACUUM INTO accepts an existing file only if it is empty; creating it first gives
    // it mode 0600 rather than the umask's.
    drop(files::create_private_file(dest)?);
    let dest_text = dest
        .to_str()
        .ok_or_else(|| BackupError::Sqlite(format!("{} is not UTF-8", dest.display())))?
        .to_owned();
    let mut conn = options
        .connect()
        .await
        .map_err(|e| BackupError::Sqlite(format!("cannot open {}: {e}", source.display())))?;
    let vacuum = sqlx::query("VACUUM INTO ?")
        .bind(dest_text)
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    vacuum
        .map_err(|e| BackupError::Sqlite(format!("VACUUM INTO {} failed: {e}", dest.display())))?;
    leave_out_rows(dest).await?;
    // VACUUM INTO does not sync its output; the manifest must never vouch for a file
    // that a power cut could still take away.
    let dest = dest.to_owned();
    tokio::task::spawn_blocking(move || {
        std::fs::File::open(&dest)
            .and_then(|f| f.sync_all())
            .map_err(BackupError::io("cannot sync", &dest))
    })
    .await
    .map_err(|e| BackupError::Sqlite(format!("sync task stopped: {e}")))?
}

/// Deletes the rows of [`crate::TABLES_LEFT_OUT`] from the snapshot at `path`, their
/// bytes overwritten (`secure_delete`), in the rollback journal mode so that no
/// sidecar file is left beside the snapshot. A table the database does not have yet
/// (one from before it existed) is skipped.
async fn leave_out_rows(path: &Path) -> Result<(), BackupError> {
    let failed = |e: sqlx::Error| {
        BackupError::Sqlite(format!("cannot leave rows out of {}: {e}", path.display()))
    };
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .journal_mode(SqliteJournalMode::Delete)
        .pragma("secure_delete", "ON")
        .connect()
        .await
        .map_err(failed)?;
    let mut result = Ok(());
    for table in crate::TABLES_LEFT_OUT {
        let exists = sqlx::query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?")
            .bind(table)
            .fetch_optional(&mut conn)
            .await;
        result = match exists {
            Ok(Some(_)) => sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&mut conn)
                .await
                .map(drop),
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        if result.is_err() {
            break;
        }
    }
    let _ = conn.close().await;
    result.map_err(failed)
}

/// Whether the database at `path` (or its WAL) holds anything.
pub fn has_data(path: &Path) -> bool {
    let non_empty = |p: &Path| std::fs::metadata(p).map(|m| m.len() > 0).unwrap_or(false);
    non_empty(path) || non_empty(&sidecar(path, "-wal"))
}

pub fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Moves the staged, synced copy `staged` to `target`. The old WAL and shared-memory
/// files go first: SQLite would otherwise replay an old WAL onto the restored file.
pub fn move_into_place(staged: &Path, target: &Path) -> Result<(), BackupError> {
    for suffix in ["-wal", "-shm", "-journal"] {
        let path = sidecar(target, suffix);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(BackupError::io("cannot remove", path)(e)),
        }
    }
    std::fs::rename(staged, target).map_err(BackupError::io("cannot move into place", target))?;
    files::sync_dir(target.parent().unwrap_or(Path::new(".")))
}
