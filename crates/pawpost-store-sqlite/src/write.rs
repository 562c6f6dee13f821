//! Transactions that read before they write.
//!
//! They begin `IMMEDIATE`, taking the write lock (waiting up to the busy timeout) before
//! their first read: a deferred transaction that read first could not later take the
//! lock if another connection wrote in between, and would fail at once with "database is
//! locked" (deleting a household while its toy was connected did, now and then).
//!
//! Each runs to its end in a task of its own even when the caller stops waiting (a client
//! that hangs up, a timeout): a transaction given up half way would stay open on its
//! pooled connection, keeping the write lock.
use pawpost_store::{StoreError, StoreResult};
use std::future::Future;

/// Runs `write` to its end, whether or not the caller still waits for it.
pub(crate) async fn to_the_end<T: Send + 'static>(
    write: impl Future<Output = StoreResult<T>> + Send + 'static,
) -> StoreResult<T> {
    tokio::spawn(write)
        .await
        .map_err(|e| StoreError::Backend(format!("a write to the database stopped: {e}")))?
}
