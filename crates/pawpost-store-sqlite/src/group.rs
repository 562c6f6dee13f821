//! Group commit: the writes that make an upload or a delivery durable share one commit.
//!
//! With `synchronous=FULL` in WAL mode every commit costs one sync of the log, whatever
//! it holds. New messages (with their receipts, and their envelope when it is kept in the
//! row), receipts marked delivered or played, audit entries and when toys were last seen
//! therefore go to one writer task, which
//! takes every write waiting when it is free and commits them together: one sync for all
//! the uploads that arrived meanwhile. A lone write waits for no one. Being the only
//! writer of all of them, it never waits for the write lock behind another (a reconnect
//! storm's audit entries used to, and the uploads of the moment with them).
//!
//! Each write runs inside a savepoint of the shared transaction, so that one that fails
//! (a replayed message id, a receipt that does not exist) fails alone. Each caller hears
//! of its own write only once the whole group is committed and synced (or hears the
//! commit's failure), so an answer still means durable. A write runs to its end in the
//! writer task whether or not its caller still waits (see [`crate::write`]).
//!
//! The writer commits on a connection of its own with `synchronous=NORMAL` (its commit
//! writes the log without syncing it), and hands each committed group to a thread that
//! syncs the log ([`answer_when_synced`]) and only then answers: while one sync is under
//! way, the writer commits the next groups, and the next sync covers all of them. With
//! `synchronous=FULL` the writer waited for each sync before taking the next group.
//! A crash of the process loses nothing written (the operating system holds it); a power
//! cut loses only commits not yet answered. What a commit wrote is visible to readers
//! from its commit on, a moment before its sync: the toys are handed a message only once
//! its upload's answer came, after the sync.
use crate::backend;
use pawpost_domain::{AuditEntry, AuditRecord, DeviceId, Message, ReceiptState};
use pawpost_store::stored::{found, to_integer, to_ms};
use pawpost_store::{columns, StoreError, StoreResult};
use sqlx::{SqliteConnection, SqlitePool};
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// The most writes one commit takes; those waiting beyond it go in the next commit.
pub const GROUP_COMMIT_MAX_WRITES: usize = 256;

/// A write that joins the next group commit.
pub(crate) enum Write {
    /// A message row with one receipt per recipient, and its envelope when kept in the row.
    Message {
        message: Message,
        recipients: Vec<DeviceId>,
        envelope: Option<Vec<u8>>,
    },
    /// A recipient's progress; `Played` implies `Delivered`. Earlier times are kept.
    Receipt {
        message: Uuid,
        device: DeviceId,
        state: ReceiptState,
        at: OffsetDateTime,
    },
    /// Audit entries, chained to the end of the trail in this commit.
    Audits(Vec<AuditRecord>),
    /// When toys were last seen (see [`crate::toys::set_toys_seen`]).
    ToysSeen(Vec<(DeviceId, OffsetDateTime)>),
}

/// What a write made that its caller needs.
pub(crate) enum Written {
    Nothing,
    /// The entries [`Write::Audits`] appended, with their sequence numbers and hashes.
    Audits(Vec<AuditEntry>),
}

struct Job {
    write: Write,
    done: oneshot::Sender<StoreResult<Written>>,
}

/// The connection pool, with the writer task that commits [`Write`]s in groups and the
/// task that checkpoints the log (see [`crate::checkpoint`]). Reads and the other writes
/// use the pool as before (it is what this dereferences to).
#[derive(Clone)]
pub(crate) struct Database {
    pool: SqlitePool,
    /// The group writer's own connection (`synchronous=NORMAL`, see the module's
    /// documentation); `None` for a database in memory, whose writer uses `pool`.
    commits: Option<SqlitePool>,
    writer: mpsc::UnboundedSender<Job>,
    /// Dropped with the last clone, which ends the checkpoint task.
    _checkpoints: Arc<oneshot::Sender<()>>,
}

impl Deref for Database {
    type Target = SqlitePool;

    fn deref(&self) -> &SqlitePool {
        &self.pool
    }
}

fn writer_stopped() -> StoreError {
    StoreError::Backend("the database's group-commit writer stopped".into())
}

impl Database {
    /// Starts the writer task and the checkpoint task on the current Tokio runtime, and
    /// the thread that syncs the log at `log` (the database file's `-wal`; `None` for a
    /// database in memory); they end when the last clone of this value is dropped.
    /// `commits` is the writer's pool: one connection with `synchronous=NORMAL`.
    pub(crate) fn new(pool: SqlitePool, commits: Option<SqlitePool>, log: Option<PathBuf>) -> Self {
        Self::with_sync(
            pool,
            commits,
            Box::new(move || match &log {
                Some(log) => sync_log(log),
                None => Ok(()),
            }),
        )
    }

    /// [`Database::new`] with the log synced by `sync`.
    pub(crate) fn with_sync(pool: SqlitePool, commits: Option<SqlitePool>, sync: SyncLog) -> Self {
        let (writer, waiting) = mpsc::unbounded_channel();
        let restart = Arc::new(AtomicBool::new(false));
        let (committed, to_sync) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("pawpost-sqlite-sync".into())
            .spawn(move || answer_when_synced(to_sync, sync))
            .expect("the thread that syncs the SQLite log starts");
        tokio::spawn(commit_in_groups(
            commits.clone().unwrap_or_else(|| pool.clone()),
            pool.clone(),
            waiting,
            restart.clone(),
            committed,
        ));
        let (checkpoints, stop) = oneshot::channel();
        tokio::spawn(crate::checkpoint::checkpoint_in_background(
            pool.clone(),
            restart,
            stop,
        ));
        Self {
            pool,
            commits,
            writer,
            _checkpoints: Arc::new(checkpoints),
        }
    }

    /// Closes the writer's connection and the pool's, waiting for those in use.
    pub(crate) async fn close(&self) {
        if let Some(commits) = &self.commits {
            commits.close().await;
        }
        self.pool.close().await;
    }

    /// The connections open, the writer's included.
    pub(crate) fn size(&self) -> u32 {
        self.pool.size() + self.commits.as_ref().map_or(0, SqlitePool::size)
    }

    /// Queues `write` for the next group commit and waits until that commit is durable.
    pub(crate) async fn write(&self, write: Write) -> StoreResult<()> {
        self.write_returning(write).await.map(drop)
    }

    /// [`Database::write`], returning what the write made.
    pub(crate) async fn write_returning(&self, write: Write) -> StoreResult<Written> {
        let (done, answer) = oneshot::channel();
        self.writer
            .send(Job { write, done })
            .map_err(|_| writer_stopped())?;
        answer.await.map_err(|_| writer_stopped())?
    }
}

/// Syncs the log: what every commit before wrote is on the disk when it returns.
pub(crate) type SyncLog = Box<dyn Fn() -> std::io::Result<()> + Send>;

/// Syncs the log file at `log`. A log that does not exist holds nothing: the last
/// connection to close copied it into the database file, synced, and removed it.
fn sync_log(log: &std::path::Path) -> std::io::Result<()> {
    match std::fs::File::open(log) {
        Ok(file) => file.sync_data(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// A committed write's caller, with what to tell it once the log is synced.
type Answer = (oneshot::Sender<StoreResult<Written>>, StoreResult<Written>);

/// Answers the writers of committed groups once the log is synced: one sync for every
/// group committed before it began (those committed during a sync wait for the next).
/// Ends when the writer task ends.
fn answer_when_synced(committed: std::sync::mpsc::Receiver<Vec<Answer>>, sync: SyncLog) {
    while let Ok(first) = committed.recv() {
        let mut groups = vec![first];
        groups.extend(committed.try_iter());
        let synced = sync();
        if let Err(e) = &synced {
            tracing::error!(error = %e, "syncing the SQLite log failed; the writes it covered were answered with an error");
        }
        for (done, result) in groups.into_iter().flatten() {
            let result = match &synced {
                Ok(()) => result,
                Err(e) => Err(StoreError::Backend(format!(
                    "the disk did not confirm the write ({e}); it may not have been kept"
                ))),
            };
            // A caller that stopped waiting needs no answer.
            let _ = done.send(result);
        }
    }
}

/// Commits the waiting writes in groups on `commits`, handing each committed group to
/// the syncing thread (`committed`); between two groups, starts the log again from its
/// beginning (on `pool`) when the checkpoint task asks (`restart`, see
/// [`crate::checkpoint`]).
async fn commit_in_groups(
    commits: SqlitePool,
    pool: SqlitePool,
    mut waiting: mpsc::UnboundedReceiver<Job>,
    restart: Arc<AtomicBool>,
    committed: std::sync::mpsc::Sender<Vec<Answer>>,
) {
    let mut jobs = Vec::with_capacity(GROUP_COMMIT_MAX_WRITES);
    while waiting.recv_many(&mut jobs, GROUP_COMMIT_MAX_WRITES).await > 0 {
        let (writes, answers): (Vec<Write>, Vec<_>) =
            jobs.drain(..).map(|j| (j.write, j.done)).unzip();
        match commit_group(&commits, &writes).await {
            Ok(results) => {
                if committed
                    .send(answers.into_iter().zip(results).collect())
                    .is_err()
                {
                    tracing::error!("the thread that syncs the SQLite log stopped");
                    break;
                }
            }
            Err(e) => {
                let message = e.to_string();
                tracing::warn!(error = %message, writes = writes.len(), "a group commit failed");
                for done in answers {
                    let _ = done.send(Err(StoreError::Backend(message.clone())));
                }
            }
        }
        if restart.swap(false, Ordering::Relaxed) {
            crate::checkpoint::restart(&pool).await;
        }
    }
}

/// Applies `writes` in one transaction, each in a savepoint of its own, and commits;
/// returns each write's own result once committed (durable once the log is synced: see
/// [`answer_when_synced`]).
///
/// Each statement sent to SQLite is a trip to the connection's own thread and back (a
/// wake-up each way), and the writes of a group wait for one another's trips: a write
/// therefore goes as one batch of statements, its savepoint included, and a write alone
/// in its group as one batch with its `BEGIN` and `COMMIT`.
async fn commit_group(
    pool: &SqlitePool,
    writes: &[Write],
) -> StoreResult<Vec<StoreResult<Written>>> {
    if let [write] = writes {
        if let Some(result) = commit_alone(pool, write).await? {
            return Ok(vec![result]);
        }
    }
    // IMMEDIATE: the write lock first (see `crate::write`).
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    if let [write] = writes {
        // Alone in its group (the usual case when uploads are not many at once): the
        // transaction is the write's own, and one that fails rolls all of it back.
        return match apply(&mut tx, write).await {
            Ok(written) => {
                tx.commit().await.map_err(backend)?;
                Ok(vec![Ok(written)])
            }
            Err(e) => {
                tx.rollback().await.map_err(backend)?;
                Ok(vec![Err(e)])
            }
        };
    }
    let mut results = Vec::with_capacity(writes.len());
    // The end of the audit trail, once read in this transaction (which holds the write
    // lock, so no one else appends meanwhile).
    let mut trail_end = None;
    for write in writes {
        match write {
            Write::Receipt { .. } | Write::ToysSeen(_) => {
                // One statement that no constraint can refuse: it needs no savepoint of
                // its own. A receipt that does not exist changes nothing and fails alone;
                // a database error (the disk, say) fails the group, as it would have
                // failed its savepoint.
                let result = apply(&mut tx, write).await;
                if let Err(StoreError::Backend(e)) = &result {
                    return Err(StoreError::Backend(e.clone()));
                }
                results.push(result);
            }
            Write::Message {
                message,
                recipients,
                envelope,
            } => {
                // The savepoint, the message and its receipts in one batch; a replayed
                // id stops the batch at the message's insert.
                let result = message_query(IN_SAVEPOINT, message, recipients, envelope)?
                    .execute(&mut *tx)
                    .await
                    .map(drop)
                    .map_err(|e| crate::unique_violation(e, "a message with this id"));
                match result {
                    Ok(()) => results.push(Ok(Written::Nothing)),
                    Err(e) => {
                        run(&mut tx, UNDO_SAVEPOINT).await?;
                        results.push(Err(e));
                    }
                }
            }
            Write::Audits(records) => {
                run(&mut tx, "SAVEPOINT one_write").await?;
                let result = crate::audit::chain(&mut tx, records, &mut trail_end).await;
                match &result {
                    Ok(_) => run(&mut tx, "RELEASE one_write").await?,
                    Err(_) => {
                        // What the savepoint undid may have moved the end read.
                        trail_end = None;
                        run(&mut tx, UNDO_SAVEPOINT).await?;
                    }
                }
                results.push(result.map(Written::Audits));
            }
        }
    }
    tx.commit().await.map_err(backend)?;
    Ok(results)
}

/// Undoes the write of the savepoint `one_write` and ends the savepoint.
const UNDO_SAVEPOINT: &str = "ROLLBACK TO one_write; RELEASE one_write";

/// A message and its receipts, alone in their transaction.
const ALONE: usize = 0;
/// A message and its receipts, in a savepoint of the group's transaction.
const IN_SAVEPOINT: usize = 1;
/// A message and its receipts, in a transaction the caller began.
const IN_TRANSACTION: usize = 2;

/// The statements that store a message with one receipt per recipient (`?11`, a JSON
/// array of device ids), between `$before` and `$after`.
macro_rules! insert_message {
    ($before:literal, $after:literal) => {
        concat!(
            $before,
            "INSERT INTO messages (",
            columns!(messages),
            ", envelope) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10); ",
            "INSERT OR IGNORE INTO receipts (message_id, device_id) SELECT ?1, value FROM json_each(?11)",
            $after
        )
    };
}

/// [`insert_message!`] as a batch alone in its transaction, in a savepoint, or in the
/// caller's transaction.
const INSERT_MESSAGE: [&str; 3] = [
    insert_message!("BEGIN IMMEDIATE; ", "; COMMIT"),
    insert_message!("SAVEPOINT one_write; ", "; RELEASE one_write"),
    insert_message!("", ""),
];

fn message_query<'q>(
    batch: usize,
    m: &'q Message,
    recipients: &[DeviceId],
    envelope: &'q Option<Vec<u8>>,
) -> StoreResult<sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>> {
    Ok(sqlx::query(INSERT_MESSAGE[batch])
        .bind(m.id.to_string())
        .bind(m.household_id.to_string())
        .bind(m.sender_device.to_string())
        .bind(m.sender_account.map(|a| a.to_string()))
        .bind(i64::from(m.media_type))
        .bind(i64::from(m.duration_ms))
        .bind(to_integer(m.envelope_len, "envelope length")?)
        .bind(to_ms(m.created_at))
        .bind(&m.blob_key)
        .bind(envelope.as_deref())
        .bind(json_ids(recipients)))
}

/// Device ids as a JSON array of strings (a UUID's text needs no escaping).
fn json_ids(ids: &[DeviceId]) -> String {
    let mut json = String::with_capacity(2 + ids.len() * 39);
    json.push('[');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push('"');
        json.push_str(&id.to_string());
        json.push('"');
    }
    json.push(']');
    json
}

/// Toys and when they were last seen as a JSON array of `[id, ms]` pairs.
fn json_seen(seen: &[(DeviceId, OffsetDateTime)]) -> String {
    let mut json = String::with_capacity(2 + seen.len() * 56);
    json.push('[');
    for (i, (toy, at)) in seen.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&format!("[\"{toy}\",{}]", to_ms(*at)));
    }
    json.push(']');
    json
}

/// A write alone in its group that is one batch of statements with its own `BEGIN` and
/// `COMMIT`, or one statement that commits by itself: a single trip to SQLite's thread.
/// `None` for the writes that take the usual transaction.
async fn commit_alone(
    pool: &SqlitePool,
    write: &Write,
) -> StoreResult<Option<StoreResult<Written>>> {
    if let Write::Audits(_) | Write::ToysSeen(_) = write {
        return Ok(None);
    }
    let mut conn = pool.acquire().await.map_err(backend)?;
    match write {
        Write::Message {
            message,
            recipients,
            envelope,
        } => {
            let done = message_query(ALONE, message, recipients, envelope)?
                .execute(&mut *conn)
                .await;
            match done {
                Ok(_) => Ok(Some(Ok(Written::Nothing))),
                Err(e) => {
                    // The batch stopped at the failing statement with its transaction
                    // open (unless the failure was the `BEGIN` or ended it): end it here.
                    let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                    match crate::unique_violation(e, "a message with this id") {
                        StoreError::Conflict(what) => Ok(Some(Err(StoreError::Conflict(what)))),
                        e => Err(e),
                    }
                }
            }
        }
        // One statement, its own transaction (its write lock is waited for by the busy
        // handler: it has read nothing before).
        Write::Receipt { .. } => match apply(&mut conn, write).await {
            Err(StoreError::Backend(e)) => Err(StoreError::Backend(e)),
            result => Ok(Some(result)),
        },
        Write::Audits(_) | Write::ToysSeen(_) => Ok(None),
    }
}

async fn run(conn: &mut SqliteConnection, sql: &'static str) -> StoreResult<()> {
    sqlx::query(sql)
        .execute(conn)
        .await
        .map(drop)
        .map_err(backend)
}

async fn apply(conn: &mut SqliteConnection, write: &Write) -> StoreResult<Written> {
    match write {
        Write::Message {
            message,
            recipients,
            envelope,
        } => {
            message_query(IN_TRANSACTION, message, recipients, envelope)?
                .execute(&mut *conn)
                .await
                .map_err(|e| crate::unique_violation(e, "a message with this id"))?;
            Ok(Written::Nothing)
        }
        Write::Receipt {
            message,
            device,
            state,
            at,
        } => {
            let sql = match state {
                ReceiptState::Delivered => {
                    "UPDATE receipts SET delivered_at = COALESCE(delivered_at, ?1) WHERE message_id = ?2 AND device_id = ?3"
                }
                ReceiptState::Played => {
                    "UPDATE receipts SET delivered_at = COALESCE(delivered_at, ?1), played_at = COALESCE(played_at, ?1) \
                     WHERE message_id = ?2 AND device_id = ?3"
                }
            };
            let done = sqlx::query(sql)
                .bind(to_ms(*at))
                .bind(message.to_string())
                .bind(device.to_string())
                .execute(&mut *conn)
                .await
                .map_err(backend)?;
            found(done.rows_affected(), "receipt").map(|()| Written::Nothing)
        }
        Write::Audits(records) => crate::audit::chain(conn, records, &mut None)
            .await
            .map(Written::Audits),
        Write::ToysSeen(seen) => {
            sqlx::query(crate::toys::SET_SEEN_MANY)
                .bind(json_seen(seen))
                .execute(&mut *conn)
                .await
                .map_err(backend)?;
            Ok(Written::Nothing)
        }
    }
}
