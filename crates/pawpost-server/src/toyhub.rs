//! The toys connected to this server process, and the way other requests reach them: a
//! message upload or a new roster pushes frames to a connected toy at once.
//!
//! Every connection is bound to the keys it proved (a pairing request signed over its
//! challenge, or an authentication against the stored keys). A device id alone never
//! routes a frame: a second connection that names the same id with other keys cannot
//! take the first one's place, so a stranger who learns a toy's id (it is sent in clear
//! over Bluetooth while pairing) receives nothing meant for the toy.
use pawpost_domain::DeviceId;
use pawpost_protocol::Frame;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Where a connected toy stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToyMode {
    /// It asked for a pairing code and waits for a parent to enter it.
    Pairing,
    /// It proved the keys the store holds for it; frames may flow.
    Authenticated,
}

/// A connection that another one, proving other keys, may not replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occupied;

struct Connection {
    id: u64,
    mode: ToyMode,
    /// The encoded public identity this connection proved.
    identity: Vec<u8>,
    /// The newest roster version the toy holds: the one it named when it authenticated,
    /// or the last one sent to it since.
    roster_version: u64,
    outbox: mpsc::Sender<Vec<u8>>,
    /// The toy takes deliveries in chunks (protocol version 2, docs/TOY-PROTOCOL.md).
    streams: bool,
}

#[derive(Default)]
pub struct ToyHub {
    connections: Mutex<HashMap<DeviceId, Connection>>,
    next_id: std::sync::atomic::AtomicU64,
    /// Sockets per client address (an IPv6 /64 counts as one) that have not yet
    /// authenticated or asked to pair.
    waiting: Arc<Mutex<HashMap<String, usize>>>,
}

/// One socket from `addr` that has not proved anything yet; dropping it stops counting it.
pub struct Unauthenticated {
    waiting: Arc<Mutex<HashMap<String, usize>>>,
    addr: String,
}

impl Drop for Unauthenticated {
    fn drop(&mut self) {
        let mut waiting = self.waiting.lock().expect("waiting lock");
        if let Some(n) = waiting.get_mut(&self.addr) {
            *n -= 1;
            if *n == 0 {
                waiting.remove(&self.addr);
            }
        }
    }
}

impl ToyHub {
    /// Counts a new socket from `addr` (a [`crate::ratelimit::address_key`]) until it
    /// proves something; `None` when `max` from
    /// that address already wait.
    pub fn unauthenticated(&self, addr: String, max: usize) -> Option<Unauthenticated> {
        let mut waiting = self.waiting.lock().expect("waiting lock");
        let n = waiting.entry(addr.clone()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Unauthenticated {
            waiting: self.waiting.clone(),
            addr,
        })
    }

    /// Registers a connection for `device` that proved `identity`; returns its id, for
    /// `leave`. An older connection that proved the same keys is replaced (and so closed):
    /// the toy reconnected. One that proved other keys is replaced only by a connection
    /// that authenticated against the stored keys; a pairing request is refused with
    /// [`Occupied`] instead.
    pub fn join(
        &self,
        device: DeviceId,
        identity: &[u8],
        mode: ToyMode,
        roster_version: u64,
        outbox: mpsc::Sender<Vec<u8>>,
    ) -> Result<u64, Occupied> {
        let mut connections = self.connections.lock().expect("hub lock");
        if let Some(existing) = connections.get(&device) {
            if existing.identity != identity && mode == ToyMode::Pairing {
                return Err(Occupied);
            }
        }
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        connections.insert(
            device,
            Connection {
                id,
                mode,
                identity: identity.to_vec(),
                roster_version,
                outbox,
                streams: false,
            },
        );
        Ok(id)
    }

    /// The toy on `connection` said that it takes deliveries in chunks.
    pub fn set_streaming(&self, device: DeviceId, connection: u64) {
        let mut connections = self.connections.lock().expect("hub lock");
        if let Some(c) = connections.get_mut(&device).filter(|c| c.id == connection) {
            c.streams = true;
        }
    }

    /// Whether `device`, connected here, takes deliveries in chunks.
    pub fn streams(&self, device: DeviceId) -> bool {
        let connections = self.connections.lock().expect("hub lock");
        connections.get(&device).is_some_and(|c| c.streams)
    }

    /// A pairing toy whose keys are `identity` (the keys its household's roster lists)
    /// is handed `frame` and becomes authenticated: its pairing request was signed over
    /// this connection's challenge. Returns whether it was; a connection that proved other
    /// keys gets nothing.
    pub fn promote(
        &self,
        device: DeviceId,
        identity: &[u8],
        roster_version: u64,
        frame: &Frame<'_>,
    ) -> bool {
        let Ok(bytes) = frame.encode() else {
            return false;
        };
        let mut connections = self.connections.lock().expect("hub lock");
        match connections.get_mut(&device) {
            Some(c) if c.mode == ToyMode::Pairing && c.identity == identity => {
                if c.outbox.try_send(bytes).is_err() {
                    return false;
                }
                c.mode = ToyMode::Authenticated;
                c.roster_version = roster_version;
                true
            }
            _ => false,
        }
    }

    /// The newest roster version `device` holds, if it is connected here authenticated.
    pub fn roster_version(&self, device: DeviceId) -> Option<u64> {
        self.connections
            .lock()
            .expect("hub lock")
            .get(&device)
            .filter(|c| c.mode == ToyMode::Authenticated)
            .map(|c| c.roster_version)
    }

    /// Roster `version` was sent to `device`: later catch-ups start after it.
    pub fn roster_sent(&self, device: DeviceId, version: u64) {
        if let Some(c) = self.connections.lock().expect("hub lock").get_mut(&device) {
            c.roster_version = c.roster_version.max(version);
        }
    }

    /// Sends `frame` to `device` if it is connected here in `mode` with the keys of
    /// `identity`.
    pub fn send_if_keys(
        &self,
        device: DeviceId,
        mode: ToyMode,
        identity: &[u8],
        frame: &Frame<'_>,
    ) -> bool {
        let Ok(bytes) = frame.encode() else {
            return false;
        };
        let connections = self.connections.lock().expect("hub lock");
        match connections.get(&device) {
            Some(c) if c.mode == mode && c.identity == identity => c.outbox.try_send(bytes).is_ok(),
            _ => false,
        }
    }

    /// The toy rotated its keys on `connection`: it now proves `identity`.
    pub fn rotated(&self, device: DeviceId, connection: u64, identity: &[u8]) {
        let mut connections = self.connections.lock().expect("hub lock");
        if let Some(c) = connections.get_mut(&device).filter(|c| c.id == connection) {
            c.identity = identity.to_vec();
        }
    }

    /// Forgets `device`'s connection if it is still `connection`; returns whether it was
    /// (and so the toy is no longer connected here).
    pub fn leave(&self, device: DeviceId, connection: u64) -> bool {
        let mut connections = self.connections.lock().expect("hub lock");
        if connections.get(&device).is_some_and(|c| c.id == connection) {
            connections.remove(&device);
            true
        } else {
            false
        }
    }

    /// The mode of `device`'s connection, if it is still `connection`.
    pub fn mode_of(&self, device: DeviceId, connection: u64) -> Option<ToyMode> {
        self.connections
            .lock()
            .expect("hub lock")
            .get(&device)
            .filter(|c| c.id == connection)
            .map(|c| c.mode)
    }

    pub fn mode(&self, device: DeviceId) -> Option<ToyMode> {
        self.connections
            .lock()
            .expect("hub lock")
            .get(&device)
            .map(|c| c.mode)
    }

    pub fn online(&self, device: DeviceId) -> bool {
        self.mode(device) == Some(ToyMode::Authenticated)
    }

    /// Sends `frame` to `device` if it is connected in `mode`. A toy whose outbox is full
    /// is not reading; it gets the frame again when it reconnects (undelivered messages
    /// are kept), so nothing is lost by dropping it here.
    pub fn send(&self, device: DeviceId, mode: ToyMode, frame: &Frame<'_>) -> bool {
        let Ok(bytes) = frame.encode() else {
            return false;
        };
        let connections = self.connections.lock().expect("hub lock");
        match connections.get(&device) {
            Some(c) if c.mode == mode => c.outbox.try_send(bytes).is_ok(),
            _ => false,
        }
    }

    /// The authenticated toys connected here.
    pub fn authenticated(&self) -> Vec<DeviceId> {
        self.connections
            .lock()
            .expect("hub lock")
            .iter()
            .filter(|(_, c)| c.mode == ToyMode::Authenticated)
            .map(|(device, _)| *device)
            .collect()
    }

    pub fn connected(&self) -> usize {
        self.connections.lock().expect("hub lock").len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox() -> (mpsc::Sender<Vec<u8>>, mpsc::Receiver<Vec<u8>>) {
        mpsc::channel(4)
    }

    #[test]
    fn a_pairing_connection_with_other_keys_cannot_take_a_toys_place() {
        let hub = ToyHub::default();
        let toy = DeviceId(uuid::Uuid::new_v4());
        let (real, mut real_rx) = outbox();
        let (stranger, mut stranger_rx) = outbox();
        let first = hub
            .join(toy, b"real keys", ToyMode::Pairing, 0, real)
            .unwrap();
        assert_eq!(
            hub.join(toy, b"stranger keys", ToyMode::Pairing, 0, stranger.clone()),
            Err(Occupied)
        );
        let frame = Frame::UploadAck {
            message_id: pawpost_protocol::MessageId([1; 16]),
        };
        assert!(!hub.promote(toy, b"stranger keys", 1, &frame));
        assert!(hub.promote(toy, b"real keys", 1, &frame));
        assert!(real_rx.try_recv().is_ok());
        assert!(stranger_rx.try_recv().is_err());
        assert_eq!(hub.mode_of(toy, first), Some(ToyMode::Authenticated));

        // The same keys reconnecting replace the old connection.
        let (again, _rx) = outbox();
        let second = hub
            .join(toy, b"real keys", ToyMode::Pairing, 0, again)
            .unwrap();
        assert_eq!(hub.mode_of(toy, first), None);
        assert_eq!(hub.mode_of(toy, second), Some(ToyMode::Pairing));
        // A connection that authenticated against the stored keys wins over anyone.
        let (stored, _rx) = outbox();
        let hub2 = ToyHub::default();
        hub2.join(toy, b"stranger keys", ToyMode::Pairing, 0, stranger)
            .unwrap();
        let third = hub2
            .join(toy, b"real keys", ToyMode::Authenticated, 0, stored)
            .unwrap();
        assert_eq!(hub2.mode_of(toy, third), Some(ToyMode::Authenticated));
    }
}
