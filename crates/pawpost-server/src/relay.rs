//! Pushes between the server processes that share one store. A toy stays connected to
//! one process; a message, a roster or an approval may arrive through any other. The
//! process that accepts it pushes to its own toys at once and announces it to the
//! others through the store ([`pawpost_store::Peers`], PostgreSQL's LISTEN/NOTIFY),
//! whose listeners read the rows back from the store and push to theirs.
//!
//! Processes also tell each other which toys they hold, so that a parent's app shows a
//! toy online whichever process answers it. Each process says it is alive every
//! [`PRESENCE_HEARTBEAT`]; the toys of a process not heard from for [`PRESENCE_TTL`]
//! (killed, or cut off from the database) count as offline.
//!
//! A note is only a hint. Every frame it leads to comes from the store, so a forged or
//! stale note can at worst repeat what a toy would get on reconnecting; a toy that
//! misses a note (its process lost the database connection for a moment) is caught up
//! from the store, exactly as when it connects.
use crate::delivery;
use crate::ratelimit::{KeyHash, LimitName};
use crate::state::AppState;
use pawpost_crypto::SignedRoster;
use pawpost_domain::DeviceId;
use pawpost_store::{PeerListener, StoreError, StoreResult};

pub mod link;
pub use link::{
    Note, Relay, MAX_DEVICES_PER_NOTE, PRESENCE_HEARTBEAT, PRESENCE_TTL, RELISTEN_DELAY,
};

/// Tells the other processes about `note`. A failure is logged, not returned: what was
/// stored stays stored, and their toys get it when they next connect.
pub async fn announce(state: &AppState, note: Note) {
    if let Some(relay) = &state.relay {
        relay.announce(&note).await;
    }
}

/// Whether `device` is connected and authenticated here or on another live process.
pub fn online(state: &AppState, device: DeviceId) -> bool {
    state.toys.online(device)
        || state
            .relay
            .as_ref()
            .is_some_and(|relay| relay.held_elsewhere(device))
}

/// Says that `device` authenticated here.
pub async fn toy_online(state: &AppState, device: DeviceId) {
    announce(
        state,
        Note::Online {
            devices: vec![device],
        },
    )
    .await;
}

/// Says that `devices` (just paired, say) authenticated here.
pub async fn toys_online(state: &AppState, devices: Vec<DeviceId>) {
    if !devices.is_empty() {
        announce(state, Note::Online { devices }).await;
    }
}

/// Says that `device` left this process.
pub async fn toy_offline(state: &AppState, device: DeviceId) {
    announce(
        state,
        Note::Offline {
            devices: vec![device],
        },
    )
    .await;
}

/// Counts an attempt against `key` here and in every other process, so that a limit
/// holds however a load balancer spreads the attempts.
pub async fn attempt(state: &AppState, limit: LimitName, key: &str) {
    state.limits.get(limit).record(key);
    let key = KeyHash::of(key);
    announce(state, Note::Attempt { limit, key }).await;
}

/// Forgets `key`'s attempts here and in every other process.
pub async fn forgive(state: &AppState, limit: LimitName, key: &str) {
    state.limits.get(limit).reset(key);
    let key = KeyHash::of(key);
    announce(state, Note::Forgive { limit, key }).await;
}

/// Says this process is alive every [`PRESENCE_HEARTBEAT`], until the process ends.
pub async fn heartbeat(state: AppState) {
    announce(&state, Note::Hello).await;
    let mut tick = tokio::time::interval(PRESENCE_HEARTBEAT);
    loop {
        tick.tick().await;
        announce(&state, Note::Alive).await;
    }
}

/// Pushes what other processes announce to the toys connected here, until the process
/// ends. When the store's connection drops, notes may have been missed: every toy
/// connected here is caught up from the store.
pub async fn run(state: AppState, mut listener: Box<dyn PeerListener>) {
    let Some(relay) = state.relay.clone() else {
        return;
    };
    loop {
        match listener.next().await {
            Ok(Some(text)) => match Note::decode(&text) {
                Some((origin, _)) if origin == relay.origin() => {}
                Some((origin, note)) => {
                    relay.heard(origin, &note);
                    if let Err(e) = handle(&state, note).await {
                        tracing::warn!(error = %e, "a note from another server process could not be followed; its toys catch up when they reconnect");
                    }
                }
                None => tracing::debug!("ignored a note in an unknown form"),
            },
            Ok(None) => {
                tracing::warn!("lost the database connection that carries notes between server processes; listening again");
                listener = listen_again(&state, &relay, false).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "listening for other server processes failed; trying again");
                listener = listen_again(&state, &relay, true).await;
            }
        }
    }
}

/// Listens on a new connection (trying every [`RELISTEN_DELAY`] until the store answers),
/// then catches up every toy connected here: in that order, so that nothing announced
/// while no connection listened is missed.
async fn listen_again(state: &AppState, relay: &Relay, pause_first: bool) -> Box<dyn PeerListener> {
    if pause_first {
        tokio::time::sleep(RELISTEN_DELAY).await;
    }
    loop {
        match relay.listen().await {
            Ok(fresh) => {
                catch_up_all(state).await;
                return fresh;
            }
            Err(e) => {
                tracing::warn!(error = %e, "listening again failed; trying again");
                tokio::time::sleep(RELISTEN_DELAY).await;
            }
        }
    }
}

async fn handle(state: &AppState, note: Note) -> StoreResult<()> {
    match note {
        Note::Online { .. } | Note::Offline { .. } | Note::Alive => {}
        Note::Attempt { limit, key } => state.limits.get(limit).record_hashed(key),
        Note::Forgive { limit, key } => state.limits.get(limit).reset_hashed(key),
        Note::Hello => {
            announce(
                state,
                Note::Online {
                    devices: state.toys.authenticated(),
                },
            )
            .await;
        }
        Note::Message { id, devices } => delivery::deliver_stored(state, id, &devices).await?,
        Note::Approval { id, devices } => delivery::approval_stored(state, id, &devices).await?,
        Note::Farewell { device } => delivery::farewell_stored(state, device).await?,
        Note::Live { change } => crate::events::fan_out(state, &change).await?,
        Note::Claim { device } => {
            let now = time::OffsetDateTime::now_utc();
            if let Some(pairing) = state.store.pairing_of_device(device, now).await? {
                delivery::ask_the_toy_here(state, &pairing);
            }
        }
        Note::Roster { household } => {
            let Some(stored) = state.store.latest_roster(household).await? else {
                return Ok(());
            };
            let signed = SignedRoster::decode(&stored.signed)
                .map_err(|e| StoreError::Backend(format!("stored roster does not decode: {e}")))?;
            let paired = delivery::hand_roster(state, household, &signed).await?;
            toys_online(state, paired).await;
        }
    }
    Ok(())
}

/// Catches up every toy connected here from the store; then says again which toys are
/// here and asks the others to do the same.
async fn catch_up_all(state: &AppState) {
    let held = state.toys.authenticated();
    for device in &held {
        if let Err(e) = delivery::catch_up(state, *device).await {
            tracing::warn!(toy = %device, error = %e, "catching a toy up failed; it catches up when it reconnects");
        }
    }
    // The other processes may have missed which toys are here, and this one theirs.
    announce(state, Note::Online { devices: held }).await;
    announce(state, Note::Hello).await;
}
