//! Nothing is kept longer than it must be: played messages go after the household's
//! retention period (from its signed roster, capped by the server's maximum), unplayed
//! ones after the server's maximum. Rows go first, then blobs, so that no row ever points
//! to a missing envelope.
use crate::config::DEFAULT_RETENTION_DAYS;
use crate::state::AppState;
use pawpost_crypto::SignedRoster;
use pawpost_store::{BlobKey, StoreResult};
use time::{Duration, OffsetDateTime};

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub played: usize,
    pub unplayed: usize,
}

/// Deletes every message expired at `now`. Takes the time as an argument so that tests
/// (and operators checking a policy) can run it at any moment.
pub async fn sweep_expired(state: &AppState, now: OffsetDateTime) -> StoreResult<SweepReport> {
    let mut report = SweepReport::default();
    for household in state.store.households_with_messages().await? {
        let days = state
            .store
            .latest_roster(household)
            .await?
            .and_then(|r| SignedRoster::decode(&r.signed).ok())
            .map_or(DEFAULT_RETENTION_DAYS, |r| {
                r.unverified_roster().settings.retention_days
            })
            .clamp(1, state.config.max_retention_days.max(1));
        let expired = state
            .store
            .played_messages_before(household, now - Duration::days(i64::from(days)))
            .await?;
        report.played += expired.len();
        forget(state, &expired).await?;
    }
    let cutoff = now - Duration::days(i64::from(state.config.max_unplayed_days.max(1)));
    let expired = state.store.unplayed_messages_before(cutoff).await?;
    report.unplayed = expired.len();
    forget(state, &expired).await?;
    Ok(report)
}

async fn forget(state: &AppState, messages: &[pawpost_domain::Message]) -> StoreResult<()> {
    if messages.is_empty() {
        return Ok(());
    }
    let ids: Vec<_> = messages.iter().map(|m| m.id).collect();
    state.store.delete_messages(&ids).await?;
    let keys: Vec<String> = messages.iter().map(|m| m.blob_key.clone()).collect();
    delete_blobs(state, &keys).await;
    Ok(())
}

/// Deletes blobs whose rows are gone. A failure leaves ciphertext nobody can reach, so
/// it is logged, not returned.
pub async fn delete_blobs(state: &AppState, keys: &[String]) {
    for key in keys {
        let deleted = match BlobKey::new(key.as_str()) {
            Ok(key) => state.blobs.delete(&key).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = deleted {
            tracing::warn!(%error, "an expired envelope's blob could not be deleted");
        }
    }
}

/// Sweeps every `RETENTION_SWEEP_INTERVAL`.
pub async fn run(state: AppState) {
    let mut tick = tokio::time::interval(crate::config::RETENTION_SWEEP_INTERVAL);
    loop {
        tick.tick().await;
        match sweep_expired(&state, OffsetDateTime::now_utc()).await {
            Ok(r) if r.played + r.unplayed > 0 => {
                tracing::info!(
                    played = r.played,
                    unplayed = r.unplayed,
                    "expired messages deleted"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "the retention sweep failed"),
        }
    }
}
