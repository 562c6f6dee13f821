//! Short notes between the server processes that share one store, so that a toy
//! connected to one process hears at once about a message uploaded through another.
//!
//! Notes are hints, never data: each names rows that the receiver reads back from the
//! store, and a toy that misses a note gets the same rows when it next connects. A
//! backend that only one process can use (SQLite) has no peers.
use crate::StoreResult;
use async_trait::async_trait;

/// The longest note a backend must carry, in bytes.
pub const MAX_NOTE_BYTES: usize = 7_000;

/// Sends notes to every process listening on the same store, this one included.
#[async_trait]
pub trait Peers: Send + Sync + 'static {
    /// Sends `note` (at most [`MAX_NOTE_BYTES`]) to every listener.
    async fn announce(&self, note: &str) -> StoreResult<()>;
    /// Starts listening. Notes announced after this returns are received.
    async fn listen(&self) -> StoreResult<Box<dyn PeerListener>>;
}

/// The receiving end of [`Peers::listen`].
#[async_trait]
pub trait PeerListener: Send + 'static {
    /// The next note, or `Ok(None)` when the connection to the store was lost and notes
    /// may have been missed: the caller should then catch up from the store. The next
    /// call reconnects.
    async fn next(&mut self) -> StoreResult<Option<String>>;
}
