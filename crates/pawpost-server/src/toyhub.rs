//! The toys connected to this server process, and the way other requests reach them: a
//! message upload or a new roster pushes frames to a connected toy at once.
use pawpost_domain::DeviceId;
use pawpost_toy::Frame;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::mpsc;

/// Where a connected toy stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToyMode {
    /// It asked for a pairing code and waits for a parent to enter it.
    Pairing,
    /// It proved its key; frames may flow.
    Authenticated,
}

struct Connection {
    id: u64,
    mode: ToyMode,
    outbox: mpsc::Sender<Vec<u8>>,
}

#[derive(Default)]
pub struct ToyHub {
    connections: Mutex<HashMap<DeviceId, Connection>>,
    next_id: std::sync::atomic::AtomicU64,
}

impl ToyHub {
    /// Registers a connection for `device`, replacing (and so closing) an older one.
    /// Returns the connection's id, for `leave`.
    pub fn join(&self, device: DeviceId, mode: ToyMode, outbox: mpsc::Sender<Vec<u8>>) -> u64 {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.connections
            .lock()
            .expect("hub lock")
            .insert(device, Connection { id, mode, outbox });
        id
    }

    /// A pairing toy that was handed its roster has proved its key (its pairing request
    /// was signed over this connection's challenge): it is now authenticated.
    pub fn promote(&self, device: DeviceId) {
        if let Some(c) = self.connections.lock().expect("hub lock").get_mut(&device) {
            c.mode = ToyMode::Authenticated;
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

    pub fn mode(&self, device: DeviceId) -> Option<ToyMode> {
        self.connections
            .lock()
            .expect("hub lock")
            .get(&device)
            .map(|c| c.mode)
    }

    pub fn online(&self, device: DeviceId) -> bool {
        self.connections
            .lock()
            .expect("hub lock")
            .get(&device)
            .is_some_and(|c| c.mode == ToyMode::Authenticated)
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
