//! The link between server processes that share one store, without the server's state:
//! the notes they exchange ([`Note`], as JSON) and which toys each process holds
//! ([`Relay`]). [`crate::relay`] acts on the notes.
use crate::ratelimit::{KeyHash, LimitName};
use pawpost_domain::{DeviceId, HouseholdId};
use pawpost_store::{PeerListener, Peers, StoreResult};
use serde::{Deserialize, Serialize};
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
    pub(crate) fn held_elsewhere(&self, device: DeviceId) -> bool {
        let presence = self.presence.lock().expect("presence lock");
        presence.toys.get(&device).is_some_and(|origin| {
            presence
                .heard
                .get(origin)
                .is_some_and(|at| at.elapsed() < PRESENCE_TTL)
        })
    }

    /// Takes in what `origin` says about its toys.
    pub(crate) fn heard(&self, origin: Uuid, note: &Note) {
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

    /// Starts listening; notes announced from now on reach [`crate::relay::run`].
    pub async fn listen(&self) -> StoreResult<Box<dyn PeerListener>> {
        self.peers.listen().await
    }

    /// The id this process signs its notes with.
    pub fn origin(&self) -> Uuid {
        self.origin
    }

    /// Tells the other processes about `note`. A failure is logged, not returned: what
    /// was stored stays stored, and their toys get it when they next connect.
    pub async fn announce(&self, note: &Note) {
        for text in note.encode(self.origin) {
            if let Err(e) = self.peers.announce(&text).await {
                tracing::warn!(error = %e, "could not tell the other server processes; their toys catch up when they reconnect");
            }
        }
    }
}

/// What happened, as other processes need to hear it. It travels as JSON
/// (`{"origin": "…", "kind": "message", "id": "…", "devices": ["…"]}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Note {
    /// A message was stored for these devices.
    Message { id: Uuid, devices: Vec<DeviceId> },
    /// A parent approved a held message for these devices.
    Approval { id: Uuid, devices: Vec<DeviceId> },
    /// The household published a new roster.
    Roster { household: HouseholdId },
    /// A parent claimed this toy's pairing code: it must speak the claim's number.
    Claim { device: DeviceId },
    /// An owner signed this toy out of its household: it gets its stored farewell.
    Farewell { device: DeviceId },
    /// These toys authenticated on the sending process.
    Online { devices: Vec<DeviceId> },
    /// These toys left the sending process.
    Offline { devices: Vec<DeviceId> },
    /// The sending process is alive (and holds the toys it said were online).
    Alive,
    /// The sending process just started: the others say which toys they hold.
    Hello,
    /// The sending process counted an attempt (a failed sign-in, say) against a key.
    Attempt {
        #[serde(with = "limit_name")]
        limit: LimitName,
        #[serde(with = "key_hash")]
        key: KeyHash,
    },
    /// Something changed that open pages should show ([`crate::events`]).
    Live { change: crate::events::Change },
    /// The sending process forgot a key's attempts (its owner signed in).
    Forgive {
        #[serde(with = "limit_name")]
        limit: LimitName,
        #[serde(with = "key_hash")]
        key: KeyHash,
    },
}

/// A note as it travels: the process that sent it, and the note.
#[derive(Serialize, Deserialize)]
struct Wire<N> {
    origin: Uuid,
    #[serde(flatten)]
    note: N,
}

impl Note {
    /// The note as text, split so that no part names more than
    /// [`MAX_DEVICES_PER_NOTE`] devices.
    pub(crate) fn encode(&self, origin: Uuid) -> Vec<String> {
        let split = |devices: &[DeviceId], part: &dyn Fn(Vec<DeviceId>) -> Note| {
            devices
                .chunks(MAX_DEVICES_PER_NOTE)
                .map(|chunk| part(chunk.to_vec()))
                .collect::<Vec<_>>()
        };
        let parts = match self {
            Note::Message { id, devices } => {
                split(devices, &|devices| Note::Message { id: *id, devices })
            }
            Note::Approval { id, devices } => {
                split(devices, &|devices| Note::Approval { id: *id, devices })
            }
            Note::Online { devices } => split(devices, &|devices| Note::Online { devices }),
            Note::Offline { devices } => split(devices, &|devices| Note::Offline { devices }),
            other => vec![other.clone()],
        };
        parts
            .into_iter()
            .map(|note| {
                serde_json::to_string(&Wire { origin, note })
                    .expect("a note is plain JSON: ids, names and hex")
            })
            .collect()
    }

    /// Reads a note and the process that sent it; `None` for anything else.
    pub(crate) fn decode(text: &str) -> Option<(Uuid, Note)> {
        let wire: Wire<Note> = serde_json::from_str(text).ok()?;
        Some((wire.origin, wire.note))
    }
}

/// A [`LimitName`] in a note: its name.
mod limit_name {
    use super::LimitName;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(limit: &LimitName, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(limit.as_str())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<LimitName, D::Error> {
        let name = String::deserialize(d)?;
        LimitName::parse(&name).ok_or_else(|| D::Error::custom("no such limit"))
    }
}

/// A [`KeyHash`] in a note: 32 hex digits.
mod key_hash {
    use super::KeyHash;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(key: &KeyHash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&key.to_hex())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<KeyHash, D::Error> {
        let hex = String::deserialize(d)?;
        KeyHash::from_hex(&hex).ok_or_else(|| D::Error::custom("not a 32-digit hex key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pawpost_store::StoreError;

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
        let claim = Note::Claim {
            device: DeviceId(id),
        };
        assert_eq!(
            Note::decode(&claim.encode(origin)[0]),
            Some((origin, claim))
        );
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
            Note::Live {
                change: crate::events::Change::member(
                    HouseholdId(Uuid::new_v4()),
                    pawpost_domain::AccountId(Uuid::new_v4()),
                ),
            },
            Note::Live {
                change: crate::events::Change::receipt(HouseholdId(Uuid::new_v4()), Uuid::new_v4()),
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
        let key = KeyHash::of("x").to_hex();
        for text in [
            String::new(),
            "hello".into(),
            "{}".into(),
            format!(r#"{{"origin":"{origin}"}}"#),
            format!(r#"{{"origin":"{origin}","kind":"deliver","id":"{id}"}}"#),
            format!(r#"{{"origin":"{origin}","kind":"message","devices":[]}}"#),
            format!(
                r#"{{"origin":"{origin}","kind":"message","id":"{id}","devices":["not-a-uuid"]}}"#
            ),
            format!(r#"{{"origin":"{origin}","kind":"roster"}}"#),
            format!(r#"{{"origin":"{origin}","kind":"claim","device":"{id}x"}}"#),
            r#"{"origin":"not-a-uuid","kind":"alive"}"#.into(),
            r#"{"kind":"hello"}"#.into(),
            format!(r#"{{"origin":"{origin}","kind":"attempt","limit":"login-account"}}"#),
            format!(
                r#"{{"origin":"{origin}","kind":"attempt","limit":"no-such-limit","key":"{key}"}}"#
            ),
            format!(
                r#"{{"origin":"{origin}","kind":"forgive","limit":"login-account","key":"0123"}}"#
            ),
            // The words of an older process.
            format!("{origin} message {id}"),
            format!("{origin} alive"),
        ] {
            assert_eq!(Note::decode(&text), None, "{text:?}");
        }
    }
}
