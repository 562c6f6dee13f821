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
use crate::ratelimit::{KeyHash, LimitName};
use crate::state::AppState;
use crate::toyhub::ToyMode;
use pawpost_crypto::SignedRoster;
use pawpost_domain::{Approval, DeviceId, HouseholdId};
use pawpost_store::{BlobKey, PeerListener, Peers, StoreError, StoreResult};
use pawpost_toy::{Frame, MessageId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Devices named in one note; more recipients are announced in several notes, so that
/// each stays well under [`pawpost_store::MAX_NOTE_BYTES`].
pub const MAX_DEVICES_PER_NOTE: usize = 100;
/// Pause before listening again after the store refused to listen.
pub const RELISTEN_DELAY: Duration = Duration::from_secs(1);
/// How often a process tells the others it is alive.
pub const PRESENCE_HEARTBEAT: Duration = Duration::from_secs(10);
/// Toys held by a process not heard from for this long count as offline.
pub const PRESENCE_TTL: Duration = Duration::from_secs(35);

/// This process's link to the others.
pub struct Relay {
    peers: Arc<dyn Peers>,
    /// Names this process in its notes, so that it skips its own.
    origin: Uuid,
    /// The toys other processes hold, and when each process was last heard from.
    presence: Mutex<Presence>,
}

#[derive(Default)]
struct Presence {
    toys: HashMap<DeviceId, Uuid>,
    heard: HashMap<Uuid, Instant>,
}

impl Relay {
    pub fn new(peers: Arc<dyn Peers>) -> Self {
        Self {
            peers,
            origin: Uuid::new_v4(),
            presence: Mutex::new(Presence::default()),
        }
    }

    /// Whether another process that is alive holds `device`, authenticated.
    fn held_elsewhere(&self, device: DeviceId) -> bool {
        let presence = self.presence.lock().expect("presence lock");
        presence.toys.get(&device).is_some_and(|origin| {
            presence
                .heard
                .get(origin)
                .is_some_and(|at| at.elapsed() < PRESENCE_TTL)
        })
    }

    /// Takes in what `origin` says about its toys.
    fn heard(&self, origin: Uuid, note: &Note) {
        let mut presence = self.presence.lock().expect("presence lock");
        presence.heard.insert(origin, Instant::now());
        match note {
            Note::Online { devices } => {
                for device in devices {
                    presence.toys.insert(*device, origin);
                }
            }
            Note::Offline { devices } => {
                for device in devices {
                    if presence.toys.get(device) == Some(&origin) {
                        presence.toys.remove(device);
                    }
                }
            }
            _ => {}
        }
        // Forget processes long gone, and their toys.
        let stale: Vec<Uuid> = presence
            .heard
            .iter()
            .filter(|(_, at)| at.elapsed() >= PRESENCE_TTL)
            .map(|(origin, _)| *origin)
            .collect();
        for gone in stale {
            presence.heard.remove(&gone);
            presence.toys.retain(|_, holder| *holder != gone);
        }
    }

    /// Starts listening; notes announced from now on reach [`run`].
    pub async fn listen(&self) -> StoreResult<Box<dyn PeerListener>> {
        self.peers.listen().await
    }
}

/// What happened, as other processes need to hear it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A message was stored for these devices.
    Message { id: Uuid, devices: Vec<DeviceId> },
    /// A parent approved a held message for these devices.
    Approval { id: Uuid, devices: Vec<DeviceId> },
    /// The household published a new roster.
    Roster { household: HouseholdId },
    /// These toys authenticated on the sending process.
    Online { devices: Vec<DeviceId> },
    /// These toys left the sending process.
    Offline { devices: Vec<DeviceId> },
    /// The sending process is alive (and holds the toys it said were online).
    Alive,
    /// The sending process just started: the others say which toys they hold.
    Hello,
    /// The sending process counted an attempt (a failed sign-in, say) against a key.
    Attempt { limit: LimitName, key: KeyHash },
    /// The sending process forgot a key's attempts (its owner signed in).
    Forgive { limit: LimitName, key: KeyHash },
}

impl Note {
    /// The note as text, split so that no part names more than
    /// [`MAX_DEVICES_PER_NOTE`] devices.
    fn encode(&self, origin: Uuid) -> Vec<String> {
        let (kind, devices) = match self {
            Note::Message { id, devices } => (format!("message {id}"), devices.as_slice()),
            Note::Approval { id, devices } => (format!("approval {id}"), devices.as_slice()),
            Note::Roster { household } => return vec![format!("{origin} roster {}", household.0)],
            Note::Online { devices } => ("online".to_owned(), devices.as_slice()),
            Note::Offline { devices } => ("offline".to_owned(), devices.as_slice()),
            Note::Alive => return vec![format!("{origin} alive")],
            Note::Hello => return vec![format!("{origin} hello")],
            Note::Attempt { limit, key } => {
                return vec![format!(
                    "{origin} attempt {} {}",
                    limit.as_str(),
                    key.to_hex()
                )]
            }
            Note::Forgive { limit, key } => {
                return vec![format!(
                    "{origin} forgive {} {}",
                    limit.as_str(),
                    key.to_hex()
                )]
            }
        };
        devices
            .chunks(MAX_DEVICES_PER_NOTE)
            .map(|chunk| {
                let mut text = format!("{origin} {kind}");
                for device in chunk {
                    text.push(' ');
                    text.push_str(&device.0.to_string());
                }
                text
            })
            .collect()
    }

    /// Reads a note and the process that sent it; `None` for anything else.
    fn decode(text: &str) -> Option<(Uuid, Note)> {
        let mut words = text.split(' ');
        let origin = words.next()?.parse().ok()?;
        let kind = words.next()?;
        if kind == "attempt" || kind == "forgive" {
            let limit = LimitName::parse(words.next()?)?;
            let key = KeyHash::from_hex(words.next()?)?;
            if words.next().is_some() {
                return None;
            }
            let note = if kind == "attempt" {
                Note::Attempt { limit, key }
            } else {
                Note::Forgive { limit, key }
            };
            return Some((origin, note));
        }
        let ids = words
            .map(str::parse)
            .collect::<Result<Vec<Uuid>, _>>()
            .ok()?;
        let devices = |ids: &[Uuid]| ids.iter().copied().map(DeviceId).collect::<Vec<_>>();
        let note = match (kind, ids.as_slice()) {
            ("message", [id, rest @ ..]) => Note::Message {
                id: *id,
                devices: devices(rest),
            },
            ("approval", [id, rest @ ..]) => Note::Approval {
                id: *id,
                devices: devices(rest),
            },
            ("roster", [household]) => Note::Roster {
                household: HouseholdId(*household),
            },
            ("online", rest) => Note::Online {
                devices: devices(rest),
            },
            ("offline", rest) => Note::Offline {
                devices: devices(rest),
            },
            ("alive", []) => Note::Alive,
            ("hello", []) => Note::Hello,
            _ => return None,
        };
        Some((origin, note))
    }
}

/// Tells the other processes about `note`. A failure is logged, not returned: what was
/// stored stays stored, and their toys get it when they next connect.
pub async fn announce(state: &AppState, note: Note) {
    let Some(relay) = &state.relay else {
        return;
    };
    for text in note.encode(relay.origin) {
        if let Err(e) = relay.peers.announce(&text).await {
            tracing::warn!(error = %e, "could not tell the other server processes; their toys catch up when they reconnect");
        }
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
                Some((origin, _)) if origin == relay.origin => {}
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

/// The devices of `devices` that are connected here and authenticated.
fn connected_here(state: &AppState, devices: &[DeviceId]) -> Vec<DeviceId> {
    devices
        .iter()
        .copied()
        .filter(|d| state.toys.mode(*d) == Some(ToyMode::Authenticated))
        .collect()
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
        Note::Message { id, devices } => {
            let here = connected_here(state, &devices);
            if here.is_empty() {
                return Ok(());
            }
            let Some(envelope) = envelope_of(state, id).await? else {
                return Ok(());
            };
            for device in here {
                state.toys.send(
                    device,
                    ToyMode::Authenticated,
                    &Frame::Deliver {
                        envelope: &envelope,
                    },
                );
            }
        }
        Note::Approval { id, devices } => {
            for device in connected_here(state, &devices) {
                for approval in state.store.approvals_pending_for(device).await? {
                    if approval.message_id == id {
                        send_approval(state, device, &approval);
                    }
                }
            }
        }
        Note::Roster { household } => {
            let Some(stored) = state.store.latest_roster(household).await? else {
                return Ok(());
            };
            let signed = SignedRoster::decode(&stored.signed)
                .map_err(|e| StoreError::Backend(format!("stored roster does not decode: {e}")))?;
            crate::routes::keys::hand_roster_to_toys(state, household, &signed)
                .await
                .map_err(|e| StoreError::Backend(e.message.to_string()))?;
        }
    }
    Ok(())
}

/// The stored envelope of message `id`; `None` when it is gone (deleted meanwhile).
async fn envelope_of(state: &AppState, id: Uuid) -> StoreResult<Option<Vec<u8>>> {
    let Some(message) = state.store.message(id).await? else {
        return Ok(None);
    };
    let key = BlobKey::new(message.blob_key).map_err(|e| StoreError::Backend(e.to_string()))?;
    state.blobs.get(&key).await
}

fn send_approval(state: &AppState, device: DeviceId, approval: &Approval) {
    let Ok(signature) = <[u8; 64]>::try_from(approval.signature.as_slice()) else {
        return;
    };
    state.toys.send(
        device,
        ToyMode::Authenticated,
        &Frame::Approval {
            message_id: MessageId(*approval.message_id.as_bytes()),
            approver: pawpost_toy::DeviceId(*approval.approver.0.as_bytes()),
            signature,
        },
    );
}

/// Gives every toy connected here what the store holds for it: the household's latest
/// roster, its undelivered messages and the approvals it waits for (a toy refuses what
/// it already has, so repeating is harmless); then says again which toys are here and
/// asks the others to do the same.
async fn catch_up_all(state: &AppState) {
    let held = state.toys.authenticated();
    for device in &held {
        if let Err(e) = catch_up(state, *device).await {
            tracing::warn!(toy = %device, error = %e, "catching a toy up failed; it catches up when it reconnects");
        }
    }
    // The other processes may have missed which toys are here, and this one theirs.
    announce(state, Note::Online { devices: held }).await;
    announce(state, Note::Hello).await;
}

async fn catch_up(state: &AppState, device: DeviceId) -> StoreResult<()> {
    let Some(household) = state
        .store
        .device(device)
        .await?
        .and_then(|d| d.household_id)
    else {
        return Ok(());
    };
    if let Some(roster) = state.store.latest_roster(household).await? {
        state.toys.send(
            device,
            ToyMode::Authenticated,
            &Frame::RosterUpdate {
                signed_roster: &roster.signed,
            },
        );
    }
    for message in state.store.undelivered_for(device).await? {
        if let Some(envelope) = envelope_of(state, message.id).await? {
            state.toys.send(
                device,
                ToyMode::Authenticated,
                &Frame::Deliver {
                    envelope: &envelope,
                },
            );
        }
    }
    for approval in state.store.approvals_pending_for(device).await? {
        send_approval(state, device, &approval);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_read_back_as_written_and_split_by_device_count() {
        let origin = Uuid::new_v4();
        let devices: Vec<DeviceId> = (0..MAX_DEVICES_PER_NOTE + 1)
            .map(|_| DeviceId(Uuid::new_v4()))
            .collect();
        let id = Uuid::new_v4();
        let texts = Note::Message {
            id,
            devices: devices.clone(),
        }
        .encode(origin);
        assert_eq!(texts.len(), 2);
        assert!(texts
            .iter()
            .all(|t| t.len() <= pawpost_store::MAX_NOTE_BYTES));
        let mut read_back = Vec::new();
        for text in &texts {
            let (from, note) = Note::decode(text).unwrap();
            assert_eq!(from, origin);
            match note {
                Note::Message { id: got, devices } => {
                    assert_eq!(got, id);
                    read_back.extend(devices);
                }
                other => panic!("read back as {other:?}"),
            }
        }
        assert_eq!(read_back, devices);

        let household = HouseholdId(Uuid::new_v4());
        let roster = Note::Roster { household }.encode(origin);
        assert_eq!(
            Note::decode(&roster[0]),
            Some((origin, Note::Roster { household }))
        );
        let approval = Note::Approval {
            id,
            devices: devices[..1].to_vec(),
        };
        assert_eq!(
            Note::decode(&approval.encode(origin)[0]),
            Some((origin, approval))
        );
    }

    #[test]
    fn presence_notes_read_back_as_written() {
        let origin = Uuid::new_v4();
        let devices = vec![DeviceId(Uuid::new_v4()), DeviceId(Uuid::new_v4())];
        for note in [
            Note::Online {
                devices: devices.clone(),
            },
            Note::Offline { devices },
            Note::Alive,
            Note::Hello,
            Note::Attempt {
                limit: LimitName::LoginPerAccount,
                key: KeyHash::of("mum@example.org"),
            },
            Note::Forgive {
                limit: LimitName::WrongPairingCodesPerAccount,
                key: KeyHash::of("an account"),
            },
        ] {
            let texts = note.encode(origin);
            assert_eq!(texts.len(), 1);
            assert_eq!(Note::decode(&texts[0]), Some((origin, note)));
        }
    }

    struct NoPeers;

    #[async_trait::async_trait]
    impl Peers for NoPeers {
        async fn announce(&self, _: &str) -> StoreResult<()> {
            Ok(())
        }
        async fn listen(&self) -> StoreResult<Box<dyn PeerListener>> {
            Err(StoreError::Backend("not in this test".into()))
        }
    }

    #[test]
    fn a_toy_is_held_by_the_process_that_last_said_so_until_that_one_says_it_left() {
        let relay = Relay::new(Arc::new(NoPeers));
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let toy = DeviceId(Uuid::new_v4());
        assert!(!relay.held_elsewhere(toy));
        relay.heard(a, &Note::Online { devices: vec![toy] });
        assert!(relay.held_elsewhere(toy));
        // The toy moves to b; a's late "offline" does not hide it.
        relay.heard(b, &Note::Online { devices: vec![toy] });
        relay.heard(a, &Note::Offline { devices: vec![toy] });
        assert!(relay.held_elsewhere(toy));
        relay.heard(b, &Note::Offline { devices: vec![toy] });
        assert!(!relay.held_elsewhere(toy));
    }

    #[test]
    fn anything_else_is_not_a_note() {
        let origin = Uuid::new_v4();
        let id = Uuid::new_v4();
        for text in [
            String::new(),
            "hello".into(),
            format!("{origin}"),
            format!("{origin} message"),
            format!("{origin} deliver {id}"),
            format!("{origin} message {id} not-a-uuid"),
            format!("{origin} roster {id} {id}"),
            format!("{origin} alive {id}"),
            format!("{origin} hello {id}"),
            format!("{origin} attempt login-account"),
            format!(
                "{origin} attempt no-such-limit {}",
                KeyHash::of("x").to_hex()
            ),
            format!("{origin} attempt login-account 0123"),
            format!(
                "{origin} forgive login-account {} extra",
                KeyHash::of("x").to_hex()
            ),
            format!("not-a-uuid message {id}"),
        ] {
            assert_eq!(Note::decode(&text), None, "{text:?}");
        }
    }
}
