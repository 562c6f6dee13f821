//! The SQLite store's own tests; the conformance suite runs from here too.
use super::*;
use pawpost_domain::{Account, AccountId, AuditRecord, Email, Household, HouseholdId};
use pawpost_store::MetadataStore;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions, SqliteSynchronous};
use std::os::unix::fs::PermissionsExt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

#[tokio::test]
async fn sqlite_passes_the_metadata_store_suite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("pawpost.db").display());
    let store = SqliteStore::open(&url).await.unwrap();
    pawpost_store::testsuite::metadata_store(&store).await;
}

#[tokio::test]
async fn the_database_file_is_private_and_reopens_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pawpost.db");
    let url = format!("sqlite://{}", path.display());
    let store = SqliteStore::open(&url).await.unwrap();
    let household = Household {
        id: HouseholdId::new(),
        name: "kept".into(),
        created_at: OffsetDateTime::now_utc(),
    };
    let owner = Account {
        id: AccountId::new(),
        email: Email::parse("o@example.org").unwrap(),
        display_name: "O".into(),
        password_hash: "h".into(),
        created_at: OffsetDateTime::now_utc(),
        locked: false,
        email_verified_at: None,
    };
    store.create_account(&owner).await.unwrap();
    store.create_household(&household, owner.id).await.unwrap();
    store.close().await;
    for file in ["pawpost.db", "pawpost.db-wal", "pawpost.db-shm"] {
        let p = dir.path().join(file);
        if p.exists() {
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600,
                "{file}"
            );
        }
    }
    let reopened = SqliteStore::open(&url).await.unwrap();
    assert_eq!(
        reopened
            .household(household.id)
            .await
            .unwrap()
            .unwrap()
            .name,
        "kept"
    );
}

/// A request given up while its audit entry waits for the write lock (a client that
/// hangs up, a timeout) must not leave a transaction open on a pooled connection:
/// that connection would keep the write lock, every other writer would fail with
/// "database is locked", and what it wrote afterwards would never be committed.
#[tokio::test]
async fn an_audit_append_given_up_while_waiting_for_the_lock_leaves_no_transaction_open() {
    use sqlx::{ConnectOptions, Connection};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("pawpost.db").display());
    let store = SqliteStore::open(&url).await.unwrap();
    // Another writer holds the lock; it waits for nobody (no busy timeout).
    let mut other = SqliteConnectOptions::from_str(&url)
        .unwrap()
        .busy_timeout(Duration::ZERO)
        .connect()
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let record = AuditRecord {
        at: OffsetDateTime::now_utc(),
        actor: None,
        household: None,
        action: "given_up".into(),
        target: None,
        client: None,
    };
    let given_up =
        tokio::time::timeout(Duration::from_millis(200), store.append_audit(&record)).await;
    assert!(given_up.is_err(), "the append waited for the lock");
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    // The abandoned connection goes back to the pool once its worker is done with it.
    let deadline = tokio::time::Instant::now() + BUSY_TIMEOUT * 2;
    while store.pool().num_idle() < usize::try_from(store.pool().size()).unwrap() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a connection never came back"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .expect("no pooled connection still holds the write lock");
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    let entry = store.append_audit(&record).await.unwrap();
    let committed: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
        .fetch_one(&mut other)
        .await
        .unwrap();
    assert_eq!(
        u64::try_from(committed).unwrap(),
        entry.seq,
        "every entry the store returned is committed, and the chain has no gap"
    );
    other.close().await.unwrap();
}

#[tokio::test]
async fn a_deletion_that_reads_first_waits_for_another_writer_instead_of_failing() {
    use sqlx::{ConnectOptions, Connection};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("pawpost.db").display());
    let store = std::sync::Arc::new(SqliteStore::open(&url).await.unwrap());
    let owner = Account {
        id: AccountId::new(),
        email: Email::parse("o@example.org").unwrap(),
        display_name: "O".into(),
        password_hash: "h".into(),
        created_at: OffsetDateTime::now_utc(),
        locked: false,
        email_verified_at: None,
    };
    store.create_account(&owner).await.unwrap();
    let household = Household {
        id: HouseholdId::new(),
        name: "going".into(),
        created_at: OffsetDateTime::now_utc(),
    };
    store.create_household(&household, owner.id).await.unwrap();
    // Another connection (a toy's write, say) is in the middle of a write.
    let mut other = SqliteConnectOptions::from_str(&url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    sqlx::query("UPDATE accounts SET display_name = 'P' WHERE id = ?")
        .bind(owner.id.to_string())
        .execute(&mut other)
        .await
        .unwrap();
    let deleting = tokio::spawn({
        let store = store.clone();
        async move { store.delete_household(household.id).await }
    });
    // A deletion begun deferred would read now, and then find its snapshot stale when
    // the other write commits: "database is locked", at once, whatever the timeout.
    tokio::time::sleep(Duration::from_millis(300)).await;
    sqlx::query("COMMIT").execute(&mut other).await.unwrap();
    deleting
        .await
        .unwrap()
        .expect("the deletion waited for the other write, then ran");
    assert!(store.household(household.id).await.unwrap().is_none());
    other.close().await.unwrap();
}

#[tokio::test]
async fn commits_leave_the_checkpoints_to_the_background_task() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pawpost.db");
    let store = SqliteStore::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    // No pooled connection copies the log into the database file as it commits.
    let mut conn = store.pool().acquire().await.unwrap();
    let (automatic,): (i64,) = sqlx::query_as("PRAGMA wal_autocheckpoint")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(automatic, 0);
    const BYTES: i64 = 4_000_000;
    sqlx::query("CREATE TABLE bulk (data BLOB)")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO bulk VALUES (randomblob(?))")
        .bind(BYTES)
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    // The background task copies it there on its own (polled, bounded; not timed).
    let copied = || std::fs::metadata(&path).unwrap().len() >= BYTES as u64;
    for _ in 0..200 {
        if copied() {
            break;
        }
        tokio::time::sleep(crate::CHECKPOINT_INTERVAL / 5).await;
    }
    assert!(copied(), "the log was never copied into the database file");
}

#[tokio::test]
async fn closing_the_store_closes_every_connection_so_the_files_can_be_copied() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pawpost.db");
    let store = SqliteStore::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("CREATE TABLE bulk (data BLOB)")
        .execute(store.pool())
        .await
        .unwrap();
    // Let a background checkpoint start (polled, bounded; not timed).
    tokio::time::sleep(crate::CHECKPOINT_INTERVAL * 2).await;
    sqlx::query("INSERT INTO bulk VALUES (randomblob(1000000))")
        .execute(store.pool())
        .await
        .unwrap();
    // While the store is open, its connections keep anyone else from holding the
    // database alone: the check below can tell.
    assert!(
        !alone_with(&path).await,
        "a connection of its own got the database while the store was open"
    );
    store.close().await;
    // Once every connection has closed, a new one holds the database alone (an
    // exclusive lock, refused at once while any other connection has the file open).
    // Closing leaves no connection behind, whatever the background checkpoint was doing.
    assert!(alone_with(&path).await, "a connection outlived the store");
}

/// Whether a new connection can take the database at `path` for itself alone: in WAL
/// mode with `locking_mode=EXCLUSIVE` its first write needs an exclusive lock on the
/// file, which SQLite refuses (busy, at once) while another connection has it open.
async fn alone_with(path: &std::path::Path) -> bool {
    use sqlx::Connection;
    let options = SqliteConnectOptions::new()
        .filename(path)
        .locking_mode(sqlx::sqlite::SqliteLockingMode::Exclusive)
        .busy_timeout(Duration::ZERO);
    let Ok(mut conn) = sqlx::SqliteConnection::connect_with(&options).await else {
        return false;
    };
    let took = sqlx::query("INSERT INTO bulk VALUES (NULL)")
        .execute(&mut conn)
        .await
        .is_ok();
    let _ = conn.close().await;
    took
}

/// A pool as the store opens it, without its background checkpoints: nothing copies the
/// log into the database file but what a test runs.
async fn pool_without_checkpoints(dir: &std::path::Path) -> SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(dir.join("pawpost.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(BUSY_TIMEOUT)
        .pragma("wal_autocheckpoint", "0");
    let pool = SqlitePoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .connect_with(options)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE bulk (data BLOB)")
        .execute(&pool)
        .await
        .unwrap();
    pool
}

async fn write(pool: &SqlitePool, bytes: i64) {
    sqlx::query("INSERT INTO bulk VALUES (randomblob(?))")
        .bind(bytes)
        .execute(pool)
        .await
        .unwrap();
}

/// Frames in the log, as a passive checkpoint finds them (copying what it may).
async fn log_frames(pool: &SqlitePool) -> i64 {
    let (_busy, log, _copied): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await
        .unwrap();
    log
}

/// A few hundred frames of 4 KiB.
const BIG: i64 = 400_000;
/// One row of a few bytes: a frame or two.
const SMALL: i64 = 10;

#[tokio::test]
async fn after_a_restart_the_next_commit_writes_the_log_from_its_beginning() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_without_checkpoints(dir.path()).await;
    write(&pool, BIG).await;
    // Without a checkpoint that finished, commits only ever append to the log.
    write(&pool, SMALL).await;
    crate::checkpoint::restart(&pool).await;
    write(&pool, SMALL).await;
    let frames = log_frames(&pool).await;
    assert!(
        (1..10).contains(&frames),
        "the log holds {frames} frames after a restart"
    );
}

#[tokio::test]
async fn a_restart_gives_way_to_a_long_read_instead_of_holding_up_the_writer() {
    use sqlx::Acquire;
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_without_checkpoints(dir.path()).await;
    write(&pool, BIG).await;
    // A reader in the middle of a long read (a backup, say) holds a snapshot of the log,
    // and a write comes after it.
    let mut reader = pool.acquire().await.unwrap();
    let mut read = reader.begin().await.unwrap();
    let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM bulk")
        .fetch_one(&mut *read)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    write(&pool, BIG).await;
    // The restart gives up after its short wait, well before the busy timeout that
    // other writers keep: the writer that runs it goes on with the next commit.
    tokio::time::timeout(BUSY_TIMEOUT / 2, crate::checkpoint::restart(&pool))
        .await
        .expect("the restart waited for the reader");
    write(&pool, SMALL).await;
    assert!(log_frames(&pool).await > 90, "the reader's log was kept");
    // The connection it used went back to the pool with the usual busy timeout.
    let waits = busy_timeouts(&pool).await;
    let usual = i64::try_from(BUSY_TIMEOUT.as_millis()).unwrap();
    assert!(
        waits.iter().all(|w| *w == usual),
        "busy timeouts in the pool: {waits:?}"
    );
    read.rollback().await.unwrap();
    drop(reader);
    crate::checkpoint::restart(&pool).await;
    write(&pool, SMALL).await;
    let frames = log_frames(&pool).await;
    assert!(
        (1..10).contains(&frames),
        "{frames} frames once the reader left"
    );
}

/// The busy timeout of every connection the pool holds but one.
async fn busy_timeouts(pool: &SqlitePool) -> Vec<i64> {
    let mut held = Vec::new();
    let mut waits = Vec::new();
    while held.len() < usize::try_from(MAX_CONNECTIONS).unwrap() - 1 {
        let mut conn = pool.acquire().await.unwrap();
        let (wait,): (i64,) = sqlx::query_as("PRAGMA busy_timeout")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        waits.push(wait);
        held.push(conn);
    }
    waits
}

/// Deletions whose log-emptying checkpoint is checked while another connection copies
/// the log again and again.
const ERASE_ROUNDS: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_empties_the_log_even_while_another_checkpoint_is_under_way() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_without_checkpoints(dir.path()).await;
    // As the background task does, but without pause: SQLite answers a TRUNCATE
    // checkpoint that meets one of these "busy" at once.
    let stop = Arc::new(AtomicBool::new(false));
    let copier = tokio::spawn({
        let (pool, stop) = (pool.clone(), stop.clone());
        async move {
            let mut conn = pool.acquire().await.unwrap();
            let mut copies = 0_u64;
            while !stop.load(Ordering::Relaxed) {
                crate::checkpoint::checkpoint_busy(&mut conn, "PASSIVE")
                    .await
                    .unwrap();
                copies += 1;
            }
            copies
        }
    });
    let wal = dir.path().join("pawpost.db-wal");
    for round in 0..ERASE_ROUNDS {
        write(&pool, BIG).await;
        crate::checkpoint(&pool).await.unwrap();
        let left = std::fs::metadata(&wal).unwrap().len();
        assert_eq!(left, 0, "round {round}: the log still holds {left} bytes");
    }
    stop.store(true, Ordering::Relaxed);
    assert!(copier.await.unwrap() > 0, "the other checkpoints ran");
}

/// A store whose group writer syncs its log with `sync`, on the database at `url`
/// (migrated by a first store, which is returned beside it).
async fn store_syncing_with(url: &str, sync: group::SyncLog) -> (SqliteStore, SqliteStore) {
    let first = SqliteStore::open(url).await.unwrap();
    let commits = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::from_str(url)
                .unwrap()
                .synchronous(SqliteSynchronous::Normal),
        )
        .await
        .unwrap();
    let store = SqliteStore {
        db: group::Database::with_sync(first.pool().clone(), Some(commits), sync),
    };
    (store, first)
}

fn audit_record(action: &str) -> AuditRecord {
    AuditRecord {
        at: OffsetDateTime::now_utc(),
        actor: None,
        household: None,
        action: action.into(),
        target: None,
        client: None,
    }
}

/// The group writer's commits do not sync the log themselves: a write committed (and
/// seen by readers) is answered only once the thread that syncs the log has synced it.
#[tokio::test]
async fn a_write_is_answered_only_once_the_log_is_synced() {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("pawpost.db").display());
    // Each sync waits for a `go` while `hold` is set.
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let wait = std::sync::Mutex::new(wait);
    let hold = Arc::new(AtomicBool::new(true));
    let syncs = Arc::new(AtomicU32::new(0));
    let (held, counted) = (hold.clone(), syncs.clone());
    let (store, _first) = store_syncing_with(
        &url,
        Box::new(move || {
            if held.load(SeqCst) {
                wait.lock().unwrap().recv().ok();
            }
            counted.fetch_add(1, SeqCst);
            Ok(())
        }),
    )
    .await;
    let write = |action: &'static str| {
        let store = store.clone();
        tokio::spawn(async move { store.append_audit(&audit_record(action)).await })
    };
    let committed = |n: i64| {
        let pool = store.pool().clone();
        async move {
            let deadline = tokio::time::Instant::now() + BUSY_TIMEOUT;
            loop {
                let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                if seen == n {
                    break;
                }
                assert!(tokio::time::Instant::now() < deadline, "never committed");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    let writing = write("held");
    // Committed: a reader sees it; but not answered while its sync waits.
    committed(1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!writing.is_finished(), "answered before the log was synced");
    assert_eq!(syncs.load(SeqCst), 0);
    go.send(()).unwrap();
    assert_eq!(writing.await.unwrap().unwrap().seq, 1);
    assert_eq!(syncs.load(SeqCst), 1);

    // Twenty writes: the first group's sync waits; the others commit meanwhile and share
    // the next sync.
    let writing: Vec<_> = (0..20).map(|_| write("together")).collect();
    committed(21).await;
    assert!(writing.iter().all(|w| !w.is_finished()));
    hold.store(false, SeqCst);
    go.send(()).unwrap();
    for w in writing {
        w.await.unwrap().unwrap();
    }
    assert!(
        syncs.load(SeqCst) <= 3,
        "twenty writes committed during one sync took {} more",
        syncs.load(SeqCst) - 1
    );
}

/// A sync the disk refuses fails every write it covered: none of them is answered as
/// kept.
#[tokio::test]
async fn a_sync_that_fails_fails_the_writes_it_covered() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("pawpost.db").display());
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let failing = fail.clone();
    let (store, _first) = store_syncing_with(
        &url,
        Box::new(move || {
            if failing.load(std::sync::atomic::Ordering::SeqCst) {
                Err(std::io::Error::other("the disk went away"))
            } else {
                Ok(())
            }
        }),
    )
    .await;
    let refused = store.append_audit(&audit_record("unsure")).await;
    match refused {
        Err(pawpost_store::StoreError::Backend(e)) => {
            assert!(e.contains("the disk did not confirm the write"), "{e}")
        }
        other => panic!("answered {other:?}"),
    }
    fail.store(false, std::sync::atomic::Ordering::SeqCst);
    store.append_audit(&audit_record("sure")).await.unwrap();
}
