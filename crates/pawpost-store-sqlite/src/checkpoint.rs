//! Checkpoints off the commit path.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its threshold, on
//! the committing connection: with envelopes kept in their rows that was the group
//! writer's, every hundred or so messages, and the uploads of that moment waited while
//! megabytes were copied into the database file and synced. Every pooled connection
//! therefore has `wal_autocheckpoint=0`, and this task, on a connection no commit is
//! using, copies the log into the database file every [`CHECKPOINT_INTERVAL`] with a `PASSIVE`
//! checkpoint, which never waits for (nor holds up) a writer. Should readers keep the log
//! from being reused so that it holds more than [`WAL_TRUNCATE_FRAMES`], a `TRUNCATE`
//! checkpoint empties it, making writers wait that once.
use sqlx::{SqliteConnection, SqlitePool};
use std::time::Duration;
use tokio::sync::oneshot;

/// How often the log is copied into the database file.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(500);
/// Log frames (pages) beyond which the log is emptied with a `TRUNCATE` checkpoint
/// (32,768 frames of 4 KiB: 128 MiB). A log that passive checkpoints keep up with starts
/// again from its beginning and stays far below it.
pub const WAL_TRUNCATE_FRAMES: i64 = 32_768;

/// Runs the checkpoints until `stop` is dropped or the pool is closed. Each takes a
/// pooled connection for its length (never the one a commit is using), so that closing
/// the pool also waits for a checkpoint under way: whoever closes it (a backup copying
/// the files, say) finds no connection open.
pub(crate) async fn checkpoint_in_background(pool: SqlitePool, stop: oneshot::Receiver<()>) {
    let mut stop = std::pin::pin!(stop);
    let mut every = tokio::time::interval(CHECKPOINT_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = every.tick() => {}
        }
        if pool.is_closed() {
            break;
        }
        let Ok(mut conn) = pool.acquire().await else {
            // Closed meanwhile.
            break;
        };
        match checkpoint(&mut conn, "PASSIVE").await {
            Ok(frames) if frames > WAL_TRUNCATE_FRAMES => {
                tracing::info!(frames, "the write-ahead log stays large; emptying it");
                if let Err(e) = checkpoint(&mut conn, "TRUNCATE").await {
                    tracing::warn!(error = %e, "emptying the write-ahead log failed; trying again later");
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "a background checkpoint failed; trying again later")
            }
        }
    }
}

/// Runs `PRAGMA wal_checkpoint(mode)`; returns the frames in the log.
async fn checkpoint(conn: &mut SqliteConnection, mode: &str) -> Result<i64, sqlx::Error> {
    let (_busy, log, _copied): (i64, i64, i64) =
        sqlx::query_as(&format!("PRAGMA wal_checkpoint({mode})"))
            .fetch_one(&mut *conn)
            .await?;
    // -1 when the database is not in WAL mode (in memory, say): nothing to copy.
    Ok(log)
}
