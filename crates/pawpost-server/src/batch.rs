//! One writer for small records that many requests make at once (audit entries, when
//! toys were last seen): what arrives while a commit syncs is written by the next one,
//! together, and each submitter waits for the commit that holds its record. A thousand
//! toys reconnecting after a deploy cost a few syncs, not a thousand turns at the
//! database's write lock.
use pawpost_domain::{AuditRecord, DeviceId};
use pawpost_store::MetadataStore;
use std::future::Future;
use std::sync::Arc;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

/// Records written in one commit at most.
pub const MAX_BATCH: usize = 512;
/// Records waiting for the writer at most; submitting waits beyond it.
pub const MAX_QUEUE: usize = 8192;

/// Hands records to a writer task; it stops when the last clone is dropped.
pub struct Batcher<T> {
    queue: mpsc::Sender<(T, oneshot::Sender<()>)>,
}

impl<T> Clone for Batcher<T> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<T: Send + 'static> Batcher<T> {
    /// Starts the writer: `write` gets every record waiting, up to [`MAX_BATCH`], and
    /// reports its own failures (a record that cannot be written must not fail the
    /// request that made it).
    pub fn start<F, Fut>(mut write: F) -> Self
    where
        F: FnMut(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let (queue, mut waiting) = mpsc::channel::<(T, oneshot::Sender<()>)>(MAX_QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::new();
            while waiting.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let (records, done): (Vec<T>, Vec<_>) = batch.drain(..).unzip();
                write(records).await;
                for done in done {
                    let _ = done.send(());
                }
            }
        });
        Self { queue }
    }

    /// Hands `record` to the writer for the next commit without waiting for it, only for
    /// room in the queue: for records that nothing the caller answers depends on.
    pub async fn enqueue(&self, record: T) {
        let (done, _) = oneshot::channel();
        let _ = self.queue.send((record, done)).await;
    }

    /// Writes `record` with whatever else is waiting; returns once its commit is done
    /// (or has failed and been reported).
    pub async fn submit(&self, record: T) {
        let (done, committed) = oneshot::channel();
        if self.queue.send((record, done)).await.is_ok() {
            let _ = committed.await;
        }
    }
}

/// A small write the process makes often.
pub enum Write {
    /// An event for the audit trail.
    Audit(AuditRecord),
    /// A toy was seen connected at this time.
    Seen(DeviceId, OffsetDateTime),
}

/// The one writer of audit entries and of when toys were last seen. One task writes
/// both, one after the other: two writers would take turns at SQLite's write lock by
/// sleeping.
pub fn writer(store: Arc<dyn MetadataStore>) -> Batcher<Write> {
    Batcher::start(move |writes: Vec<Write>| {
        let store = store.clone();
        async move {
            let mut records = Vec::new();
            let mut seen = Vec::new();
            for write in writes {
                match write {
                    Write::Audit(record) => records.push(record),
                    Write::Seen(toy, at) => seen.push((toy, at)),
                }
            }
            if let Err(error) = store.append_audits(&records).await {
                let actions: Vec<_> = records.iter().map(|r| r.action.as_str()).collect();
                tracing::error!(%error, ?actions, "could not record audit events");
            }
            // A failure only makes "last seen" older.
            if let Err(error) = store.set_toys_seen(&seen).await {
                tracing::warn!(%error, toys = seen.len(), "when toys were last seen could not be saved");
            }
        }
    })
}
