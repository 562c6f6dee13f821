//! Nothing is kept longer than it must be: played messages go after the household's
//! retention period (from its signed roster, capped by the server's maximum), unplayed
//! ones after the server's maximum. Rows go first, then blobs, so that no row ever points
//! to a missing envelope.
//!
//! An envelope is stored before its row, so a server killed in between (or a row refused
//! as a duplicate, or a deletion cut short) leaves an envelope no message names. Each
//! sweep also lists the blob store and deletes such orphans, but only one that was
//! already an orphan at the sweep before: sweeps are [`RETENTION_SWEEP_INTERVAL`]
//! apart, far longer than an upload may take between its envelope and its row, so an
//! upload in progress is never touched.
//!
//! Each sweep also deletes the stored hashes of links to choose a new password that
//! expired more than [`PASSWORD_RESET_KEPT_EXPIRED`] ago, and toys' signed goodbyes kept
//! more than [`FAREWELL_KEPT_DAYS`] for a toy that never came back.
//!
//! [`RETENTION_SWEEP_INTERVAL`]: crate::config::RETENTION_SWEEP_INTERVAL
use crate::config::{DEFAULT_RETENTION_DAYS, PASSWORD_RESET_KEPT_EXPIRED};
use crate::state::AppState;
use pawpost_crypto::SignedRoster;
use pawpost_domain::ENVELOPE_IN_ROW;
use pawpost_store::{BlobKey, StoreResult, BLOB_LIST_PAGE_SIZE};
use std::collections::HashSet;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// The folder of the blob store that holds message envelopes.
pub const ENVELOPES_PREFIX: &str = "envelopes/";

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

/// How long a toy's signed goodbye is kept for a toy that has not connected since an owner
/// removed it (or deleted its household). After that the toy is refused like any unknown
/// one, and a 10-second hold of its paw resets it.
pub const FAREWELL_KEPT_DAYS: i64 = 90;

/// Deletes the toys' goodbyes kept more than [`FAREWELL_KEPT_DAYS`] before `now`; returns
/// how many.
pub async fn sweep_farewells(state: &AppState, now: OffsetDateTime) -> StoreResult<u64> {
    state
        .store
        .delete_farewells_before(now - Duration::days(FAREWELL_KEPT_DAYS))
        .await
}

/// Deletes the links to choose a new password that expired more than
/// [`PASSWORD_RESET_KEPT_EXPIRED`] before `now`; returns how many.
pub async fn sweep_password_resets(state: &AppState, now: OffsetDateTime) -> StoreResult<u64> {
    state
        .store
        .delete_expired_password_resets(now - PASSWORD_RESET_KEPT_EXPIRED)
        .await
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
    // An envelope kept in its row went with the row.
    for key in keys.iter().filter(|k| !k.starts_with(ENVELOPE_IN_ROW)) {
        let deleted = match BlobKey::new(key.as_str()) {
            Ok(key) => state.blobs.delete(&key).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = deleted {
            tracing::warn!(%error, "an expired envelope's blob could not be deleted");
        }
    }
}

/// The message an envelope's key names (`envelopes/<household>/<message>-<random>`).
fn message_of(key: &str) -> Option<Uuid> {
    let name = key.strip_prefix(ENVELOPES_PREFIX)?.split('/').nth(1)?;
    let (id, _) = name.rsplit_once('-')?;
    id.parse().ok()
}

/// Whether no message row names the envelope at `key`.
async fn is_orphan(state: &AppState, key: &BlobKey) -> StoreResult<bool> {
    let Some(id) = message_of(key.as_str()) else {
        return Ok(false);
    };
    Ok(state
        .store
        .message(id)
        .await?
        .is_none_or(|m| m.blob_key != key.as_str()))
}

/// Deletes the envelopes that no message names and that were already in `suspects` (the
/// orphans of the sweep before); `suspects` becomes this sweep's orphans. Returns how
/// many were deleted.
pub async fn sweep_orphans(state: &AppState, suspects: &mut HashSet<String>) -> StoreResult<usize> {
    let mut orphans = HashSet::new();
    let mut deleted = 0;
    let mut cursor = None;
    loop {
        let page = state
            .blobs
            .list_page(cursor.as_ref(), BLOB_LIST_PAGE_SIZE)
            .await?;
        for key in page.keys {
            if !is_orphan(state, &key).await? {
                continue;
            }
            if suspects.contains(key.as_str()) {
                state.blobs.delete(&key).await?;
                deleted += 1;
            } else {
                orphans.insert(key.as_str().to_owned());
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    *suspects = orphans;
    Ok(deleted)
}

/// Sweeps every `RETENTION_SWEEP_INTERVAL`.
pub async fn run(state: AppState) {
    let mut tick = tokio::time::interval(crate::config::RETENTION_SWEEP_INTERVAL);
    let mut suspects = HashSet::new();
    loop {
        tick.tick().await;
        match sweep_orphans(&state, &mut suspects).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "envelopes that no message named were deleted"),
            Err(e) => {
                tracing::warn!(error = %e, "the sweep for envelopes without a message failed")
            }
        }
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
        match sweep_password_resets(&state, OffsetDateTime::now_utc()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "expired password reset links deleted"),
            Err(e) => {
                tracing::warn!(error = %e, "the sweep of expired password reset links failed")
            }
        }
        match sweep_farewells(&state, OffsetDateTime::now_utc()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                deleted = n,
                "old goodbyes of toys that never came back deleted"
            ),
            Err(e) => tracing::warn!(error = %e, "the sweep of toys' old goodbyes failed"),
        }
        state.mailer.prune().await;
    }
}
