//! The toys connected to this server process, and the way other requests reach them: a
//! message upload or a new roster pushes frames to a connected toy at once.
//!
//! Every connection is bound to the keys it proved (a pairing request signed over its
//! challenge, or an authentication against the stored keys). A device id alone never
//! routes a frame: a second connection that names the same id with other keys cannot
//! take the first one's place, so a stranger who learns a toy's id (it is sent in clear
//! over Bluetooth while pairing) receives nothing meant for the toy.
use pawpost_domain::DeviceId;
use pawpost_protocol::{Frame, MessageId};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use tokio::sync::Notify;

/// The frames waiting to be written to one toy's connection, at most the capacity it was
/// made with. A clone is another handle on the same queue: the hub's entry and the
/// connection's session put frames in, the connection's own task (the one receiver)
/// takes them out. It costs a few words while empty (no block of slots is kept, unlike
/// a channel), which is the common case of an idle toy, and the receiver waits on it
/// without a future of its own ([`Outbox::poll_recv`]).
#[derive(Clone)]
pub struct Outbox(Arc<OutboxInner>);

struct OutboxInner {
    capacity: usize,
    queue: Mutex<Queue>,
    /// Woken when a frame is taken out.
    taken: Notify,
}

#[derive(Default)]
struct Queue {
    frames: VecDeque<Vec<u8>>,
    closed: bool,
    /// The receiver, waiting for a frame.
    receiver: Option<Waker>,
}

/// The outbox is full (the toy is not reading) or its connection is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotSent;

impl Outbox {
    pub fn new(capacity: usize) -> Self {
        Self(Arc::new(OutboxInner {
            capacity,
            queue: Mutex::default(),
            taken: Notify::new(),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.0.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts `frame` in unless the outbox is full or closed.
    pub fn try_send(&self, frame: Vec<u8>) -> Result<(), NotSent> {
        let mut queue = self.lock();
        if queue.closed || queue.frames.len() >= self.0.capacity {
            return Err(NotSent);
        }
        queue.frames.push_back(frame);
        let receiver = queue.receiver.take();
        drop(queue);
        if let Some(receiver) = receiver {
            receiver.wake();
        }
        Ok(())
    }

    /// Puts `frame` in, waiting for room; fails only once the connection is over.
    pub async fn send(&self, frame: Vec<u8>) -> Result<(), NotSent> {
        let mut frame = Some(frame);
        loop {
            let taken = self.0.taken.notified();
            {
                let mut queue = self.lock();
                if queue.closed {
                    return Err(NotSent);
                }
                if queue.frames.len() < self.0.capacity {
                    queue.frames.extend(frame.take());
                    let receiver = queue.receiver.take();
                    drop(queue);
                    if let Some(receiver) = receiver {
                        receiver.wake();
                    }
                    return Ok(());
                }
            }
            taken.await;
        }
    }

    /// The next frame, once there is one; `None` once closed and empty. For the one
    /// receiver (the connection's task): a later poll's waker replaces an earlier one's.
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<Vec<u8>>> {
        let mut queue = self.lock();
        if let Some(frame) = queue.frames.pop_front() {
            if queue.frames.is_empty() {
                // Emptied: give its slots back while the toy is idle.
                queue.frames = VecDeque::new();
            }
            drop(queue);
            self.0.taken.notify_one();
            return Poll::Ready(Some(frame));
        }
        if queue.closed {
            return Poll::Ready(None);
        }
        match &mut queue.receiver {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// [`Outbox::poll_recv`] as a future. Cancel-safe.
    pub async fn recv(&self) -> Option<Vec<u8>> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// No more frames are put in (those in it can still be taken); wakes a sender
    /// waiting for room.
    pub fn close(&self) {
        let receiver = {
            let mut queue = self.lock();
            queue.closed = true;
            queue.receiver.take()
        };
        self.0.taken.notify_waiters();
        if let Some(receiver) = receiver {
            receiver.wake();
        }
    }
}

/// Where a connected toy stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToyMode {
    /// It asked for a pairing code and waits for a parent to enter it.
    Pairing,
    /// It proved the keys the store holds for it; frames may flow.
    Authenticated,
}

/// The most deliveries a toy that takes them in chunks is sent the `DeliverStart` of
/// before it finishes one: the toy keeps the starts it cannot stream yet and stores at
/// most 16 messages (`pawpost_toy::MAX_QUEUED_MESSAGES`), answering `queue_full` beyond.
/// The next start is sent as each delivery finishes, so a toy with hundreds of messages
/// waiting receives them all on one connection.
pub const DELIVER_STARTS_AHEAD: usize = 16;

/// Whether a `DeliverStart` should go to a toy now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartWanted {
    /// Send it (a toy that takes whole messages is always sent them).
    Send,
    /// Its start is out already; the toy has not finished it yet.
    Ahead,
    /// The toy's window is full: it follows when a delivery finishes.
    Full,
}

/// How a delivery the toy was streamed ended, or what made room for more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFinished {
    /// Delivered, or refused for a reason of its own (the message stays or is dropped).
    Done(MessageId),
    /// Refused for want of room (`queue_full`): it waits for room to be made.
    NoRoom(MessageId),
    /// The child played a message: room for one more.
    Played,
}

/// A connection that another one, proving other keys, may not replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occupied;

struct Connection {
    id: u64,
    mode: ToyMode,
    /// The encoded public identity this connection proved (shared with the connection's
    /// own session).
    identity: Arc<[u8]>,
    /// The newest roster version the toy holds: the one it named when it authenticated,
    /// or the last one sent to it since.
    roster_version: u64,
    outbox: Outbox,
    /// The toy takes deliveries in chunks (protocol version 2, docs/TOY-PROTOCOL.md).
    streams: bool,
    /// Deliveries whose `DeliverStart` was sent and that the toy has not finished, at
    /// most [`DELIVER_STARTS_AHEAD`].
    starts_ahead: Vec<MessageId>,
    /// A start was held back for want of room; more are sent as deliveries finish.
    starts_held: bool,
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
        identity: Arc<[u8]>,
        mode: ToyMode,
        roster_version: u64,
        outbox: Outbox,
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
                identity,
                roster_version,
                outbox,
                streams: false,
                starts_ahead: Vec::new(),
                starts_held: false,
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

    /// Whether `message`'s `DeliverStart` should go to `device` now; a toy whose window
    /// is full is noted as waiting for more.
    pub fn start_wanted(&self, device: DeviceId, message: MessageId) -> StartWanted {
        let mut connections = self.connections.lock().expect("hub lock");
        match connections.get_mut(&device) {
            Some(c) if c.streams => start_wanted(c, message),
            _ => StartWanted::Send,
        }
    }

    /// Sends `message`'s `DeliverStart` (`frame`) to `device`, connected here
    /// authenticated, if its window has room; returns whether it is out.
    pub fn send_start(&self, device: DeviceId, message: MessageId, frame: &Frame<'_>) -> bool {
        let Ok(bytes) = frame.encode() else {
            return false;
        };
        let mut connections = self.connections.lock().expect("hub lock");
        let Some(c) = connections
            .get_mut(&device)
            .filter(|c| c.mode == ToyMode::Authenticated)
        else {
            return false;
        };
        match start_wanted(c, message) {
            StartWanted::Ahead => true,
            StartWanted::Full => false,
            StartWanted::Send => {
                if c.outbox.try_send(bytes).is_err() {
                    // Not reading: the message waits for the next connection.
                    return false;
                }
                c.starts_ahead.push(message);
                true
            }
        }
    }

    /// A delivery streamed to `device` on `connection` ended, or the toy made room, as
    /// `finished` says; returns whether starts were held back that may go now (the
    /// caller sends them, see [`crate::delivery::deliver_waiting`]).
    pub fn start_finished(
        &self,
        device: DeviceId,
        connection: u64,
        finished: StartFinished,
    ) -> bool {
        let mut connections = self.connections.lock().expect("hub lock");
        let Some(c) = connections.get_mut(&device).filter(|c| c.id == connection) else {
            return false;
        };
        match finished {
            StartFinished::Done(message) => c.starts_ahead.retain(|m| *m != message),
            StartFinished::NoRoom(message) => {
                c.starts_ahead.retain(|m| *m != message);
                // Sent again once the toy makes room, not at once.
                c.starts_held = true;
                return false;
            }
            StartFinished::Played => {}
        }
        let more = c.starts_held && c.starts_ahead.len() < DELIVER_STARTS_AHEAD;
        if more {
            c.starts_held = false;
        }
        more
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
            Some(c) if c.mode == ToyMode::Pairing && *c.identity == *identity => {
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
            Some(c) if c.mode == mode && *c.identity == *identity => {
                c.outbox.try_send(bytes).is_ok()
            }
            _ => false,
        }
    }

    /// The toy rotated its keys on `connection`: it now proves `identity`.
    pub fn rotated(&self, device: DeviceId, connection: u64, identity: Arc<[u8]>) {
        let mut connections = self.connections.lock().expect("hub lock");
        if let Some(c) = connections.get_mut(&device).filter(|c| c.id == connection) {
            c.identity = identity;
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

fn start_wanted(c: &mut Connection, message: MessageId) -> StartWanted {
    if c.starts_ahead.contains(&message) {
        StartWanted::Ahead
    } else if c.starts_ahead.len() >= DELIVER_STARTS_AHEAD {
        c.starts_held = true;
        StartWanted::Full
    } else {
        StartWanted::Send
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    fn outbox() -> (Outbox, Outbox) {
        let outbox = Outbox::new(4);
        (outbox.clone(), outbox)
    }

    fn taken(outbox: &Outbox) -> Option<Vec<u8>> {
        outbox.recv().now_or_never().flatten()
    }

    #[test]
    fn an_outbox_holds_its_capacity_and_gives_what_it_holds_after_closing() {
        let outbox = Outbox::new(2);
        assert_eq!(outbox.try_send(vec![1]), Ok(()));
        assert_eq!(outbox.try_send(vec![2]), Ok(()));
        assert_eq!(outbox.try_send(vec![3]), Err(NotSent), "full");
        assert_eq!(taken(&outbox), Some(vec![1]));
        assert_eq!(outbox.try_send(vec![3]), Ok(()));
        outbox.close();
        assert_eq!(outbox.try_send(vec![4]), Err(NotSent), "closed");
        assert_eq!(outbox.send(vec![4]).now_or_never(), Some(Err(NotSent)));
        assert_eq!(taken(&outbox), Some(vec![2]));
        assert_eq!(taken(&outbox), Some(vec![3]));
        assert_eq!(outbox.recv().now_or_never(), Some(None));
    }

    #[test]
    fn a_pairing_connection_with_other_keys_cannot_take_a_toys_place() {
        let hub = ToyHub::default();
        let toy = DeviceId(uuid::Uuid::new_v4());
        let (real, real_rx) = outbox();
        let (stranger, stranger_rx) = outbox();
        let first = hub
            .join(toy, (&b"real keys"[..]).into(), ToyMode::Pairing, 0, real)
            .unwrap();
        assert_eq!(
            hub.join(
                toy,
                (&b"stranger keys"[..]).into(),
                ToyMode::Pairing,
                0,
                stranger.clone()
            ),
            Err(Occupied)
        );
        let frame = Frame::UploadAck {
            message_id: pawpost_protocol::MessageId([1; 16]),
        };
        assert!(!hub.promote(toy, b"stranger keys", 1, &frame));
        assert!(hub.promote(toy, b"real keys", 1, &frame));
        assert!(taken(&real_rx).is_some());
        assert!(taken(&stranger_rx).is_none());
        assert_eq!(hub.mode_of(toy, first), Some(ToyMode::Authenticated));

        // The same keys reconnecting replace the old connection.
        let (again, _rx) = outbox();
        let second = hub
            .join(toy, (&b"real keys"[..]).into(), ToyMode::Pairing, 0, again)
            .unwrap();
        assert_eq!(hub.mode_of(toy, first), None);
        assert_eq!(hub.mode_of(toy, second), Some(ToyMode::Pairing));
        // A connection that authenticated against the stored keys wins over anyone.
        let (stored, _rx) = outbox();
        let hub2 = ToyHub::default();
        hub2.join(
            toy,
            (&b"stranger keys"[..]).into(),
            ToyMode::Pairing,
            0,
            stranger,
        )
        .unwrap();
        let third = hub2
            .join(
                toy,
                (&b"real keys"[..]).into(),
                ToyMode::Authenticated,
                0,
                stored,
            )
            .unwrap();
        assert_eq!(hub2.mode_of(toy, third), Some(ToyMode::Authenticated));
    }
}
