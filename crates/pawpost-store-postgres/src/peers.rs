//! The other server processes sharing this database, reached through LISTEN/NOTIFY.
use crate::{PostgresStore, MAX_SCHEMA_NAME_LEN};
use async_trait::async_trait;
use pawpost_store::{PeerListener, Peers, StoreError, StoreResult, MAX_NOTE_BYTES};
use sqlx::postgres::PgListener;

/// The notification channel of the processes sharing `schema`. Channel names are
/// identifiers, cut to [`MAX_SCHEMA_NAME_LEN`] bytes; two long schema names that share a
/// channel only trade hints, which each process checks against its own schema.
pub(crate) fn channel_for(schema: &str) -> String {
    let mut channel = format!("pawpost_{schema}");
    channel.truncate(MAX_SCHEMA_NAME_LEN);
    channel
}

#[async_trait]
impl Peers for PostgresStore {
    async fn announce(&self, note: &str) -> StoreResult<()> {
        if note.len() > MAX_NOTE_BYTES {
            return Err(StoreError::Backend(format!(
                "a note of {} bytes is longer than the {MAX_NOTE_BYTES} PostgreSQL carries",
                note.len()
            )));
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&self.channel)
            .bind(note)
            .execute(&self.pool)
            .await
            .map_err(|e| StoreError::Backend(format!("notifying other processes failed: {e}")))?;
        Ok(())
    }

    async fn listen(&self) -> StoreResult<Box<dyn PeerListener>> {
        let mut listener = PgListener::connect_with(&self.pool).await.map_err(|e| {
            StoreError::Backend(format!("listening for other processes failed: {e}"))
        })?;
        listener.listen(&self.channel).await.map_err(|e| {
            StoreError::Backend(format!("listening for other processes failed: {e}"))
        })?;
        Ok(Box::new(NoteListener(listener)))
    }
}

struct NoteListener(PgListener);

#[async_trait]
impl PeerListener for NoteListener {
    async fn next(&mut self) -> StoreResult<Option<String>> {
        match self.0.try_recv().await {
            Ok(Some(notification)) => Ok(Some(notification.payload().to_owned())),
            Ok(None) => Ok(None),
            Err(e) => Err(StoreError::Backend(format!(
                "receiving notes from other processes failed: {e}"
            ))),
        }
    }
}
