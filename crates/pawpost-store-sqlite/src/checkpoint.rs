//! Checkpoints off the commit path.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its threshold, on
//! the committing connection: with envelopes kept in their rows that was the group
//! writer's, every hundred or so messages, and the uploads of that moment waited while
//! megabytes were copied into the database file and synced. Every pooled connection
//! therefore has `wal_autocheckpoint=0`, and this task, on a connection no commit is
//! using, copies the log into the database file every [`CHECKPOINT_INTERVAL`] with a `PASSIVE`
//! checkpoint, which never waits for (nor holds up) a writer.
//!
//! A passive checkpoint never lets the log start again from its beginning while writes
//! keep coming: the frames appended during one are not in the database file when it
//! ends, so the log only grows. Beyond [`WAL_RESTART_FRAMES`] this task therefore asks
//! the group writer (`group`) to run a `RESTART` checkpoint between two of its commits:
//! the passive one has just copied nearly everything, no other commit is under way, and
//! the readers it waits for are short, so the uploads of that moment wait a moment, not
//! the busy handler's backoff behind a commit. Should the log still reach
//! [`WAL_TRUNCATE_FRAMES`], a `TRUNCATE` checkpoint here empties it, making writers wait
//! that once.
use sqlx::{SqliteConnection, SqlitePool};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// How often the log is copied into the database file. Often, so that each copy is
/// small: its sync of the database file shares the disk with the commits' syncs of the
/// log, and at 200 uploads of 30 KB a second a copy of 500 ms' worth (about 7 MB) held
/// the commits of its moment up by 12 to 15 ms, one of 100 ms' worth by a few.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(100);
/// Log frames (pages) beyond which the log is emptied with a `TRUNCATE` checkpoint
/// (32,768 frames of 4 KiB: 128 MiB). A log that passive checkpoints keep up with starts
/// again from its beginning and stays far below it.
pub const WAL_TRUNCATE_FRAMES: i64 = 32_768;
/// Log frames beyond which the group writer is asked to start the log again from its
/// beginning (4,096 frames of 4 KiB: 16 MiB; at 200 uploads of 30 KB a second, about
/// once a second).
pub const WAL_RESTART_FRAMES: i64 = 4_096;

/// Runs the checkpoints until `stop` is dropped or the pool is closed. Each takes a
/// pooled connection for its length (never the one a commit is using), so that closing
/// the pool also waits for a checkpoint under way: whoever closes it (a backup copying
/// the files, say) finds no connection open.
pub(crate) async fn checkpoint_in_background(
    pool: SqlitePool,
    restart: Arc<AtomicBool>,
    stop: oneshot::Receiver<()>,
) {
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
            Ok(frames) if frames > WAL_RESTART_FRAMES => restart.store(true, Ordering::Relaxed),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "a background checkpoint failed; trying again later")
            }
        }
    }
}

/// How long a `RESTART` checkpoint waits for readers to leave the log before giving up
/// until the checkpoint task asks again (a long read, such as a backup, must not hold up
/// the commits behind it).
pub const RESTART_WAIT: Duration = Duration::from_millis(5);

/// Runs a `RESTART` checkpoint for the group writer, between two of its commits: the
/// next commit writes the log from its beginning. If it cannot finish (another
/// checkpoint is under way, or a reader stays past [`RESTART_WAIT`]), the checkpoint task
/// asks again at its next round.
pub(crate) async fn restart(pool: &SqlitePool) {
    let done = async {
        let mut conn = pool.acquire().await?;
        set_busy_timeout(&mut conn, RESTART_WAIT).await?;
        let checkpointed = checkpoint_busy(&mut conn, "RESTART").await;
        if set_busy_timeout(&mut conn, crate::BUSY_TIMEOUT)
            .await
            .is_err()
        {
            // Not back in the pool with the short wait.
            conn.close_on_drop();
        }
        checkpointed
    };
    match done.await {
        Ok((true, frames)) => {
            tracing::debug!(frames, "the write-ahead log could not start again yet")
        }
        Ok((false, _)) => {}
        Err(e) => tracing::warn!(error = %e, "starting the write-ahead log again failed"),
    }
}

async fn set_busy_timeout(conn: &mut SqliteConnection, wait: Duration) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("PRAGMA busy_timeout = {}", wait.as_millis()))
        .execute(&mut *conn)
        .await
        .map(drop)
}

/// Runs `PRAGMA wal_checkpoint(mode)`; returns the frames in the log.
async fn checkpoint(conn: &mut SqliteConnection, mode: &str) -> Result<i64, sqlx::Error> {
    checkpoint_busy(conn, mode).await.map(|(_, log)| log)
}

/// Runs `PRAGMA wal_checkpoint(mode)`; returns whether it could not finish (busy), and
/// the frames in the log.
pub(crate) async fn checkpoint_busy(
    conn: &mut SqliteConnection,
    mode: &str,
) -> Result<(bool, i64), sqlx::Error> {
    let (busy, log, _copied): (i64, i64, i64) =
        sqlx::query_as(&format!("PRAGMA wal_checkpoint({mode})"))
            .fetch_one(&mut *conn)
            .await?;
    // -1 when the database is not in WAL mode (in memory, say): nothing to copy.
    Ok((busy != 0, log))
}
