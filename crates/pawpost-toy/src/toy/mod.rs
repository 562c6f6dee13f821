//! The toy's brain: events in, actions out, no I/O, no clock, no randomness of its own.
//!
//! This module holds the toy's state and dispatches events and frames; each concern has a
//! module of its own:
//!
//! - `events`: what the shell feeds in and what it must do ([`Event`], [`Action`], ...);
//! - `pairing`: pairing mode, the code, the confirmation, the first roster;
//! - `delivery`: the checks every message passes, approvals, playing, the heart light;
//! - `recording`: the microphone, sealing the child's recording and its upload;
//! - `stream`: deliveries that arrive in chunks and uploads sent in chunks (version 2);
//! - `rotation`: roster updates, removal from the household and key rotation;
//! - `reset`: the factory reset a long hold of the paw makes;
//! - `leave`: leaving the household when an owner signs the toy out;
//! - `names`: the names a parent set, said before a message plays;
//! - `update`: signed updates of the toy's own software, and the version it reports;
//! - `persist`: the state blob the toy is saved as and restored from.

mod delivery;
mod events;
mod leave;
mod names;
mod pairing;
mod persist;
mod recording;
mod reset;
mod rotation;
mod stream;
mod update;

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use pawpost_crypto::rand_core::CryptoRng;
use pawpost_crypto::{
    DeviceId, DeviceKeys, HouseholdId, MessageId, PublicIdentity, Roster, SignedRoster,
};
use pawpost_protocol::signing::sign_auth;
use pawpost_protocol::{ConfirmationNumber, Frame, FrameType, PairingCode, ServerError, NONCE_LEN};

pub use events::{
    Action, ApprovalRefusal, Event, Heart, LeaveRefusal, Prompt, ReconnectReason, RecordingProblem,
    Report,
};
pub use names::{parse_names, NamesRefusal, SpokenName, MAX_SPOKEN_NAMES, MAX_SPOKEN_NAME_LEN};
pub use stream::AudioInFrame;
pub use update::{Firmware, UpdateRefusal, MAX_UPDATE_IMAGE_BYTES, UPDATE_WINDOW_CHUNKS};

/// Longest recording the microphone makes.
pub const MAX_RECORDING_MS: u32 = 30_000;
/// If the shell has not stopped the microphone this long after [`MAX_RECORDING_MS`], the
/// toy tells it to.
pub const RECORDING_GRACE_MS: u64 = 1_000;
/// Largest recording the toy seals: 30 s at 128 kbit/s with room to spare, and an envelope
/// well within one frame.
pub const MAX_RECORDING_BYTES: usize = 512 * 1024;
/// Longest message the toy plays.
pub const MAX_MESSAGE_MS: u32 = 30_000;
/// Message ids remembered to refuse replays. When full, the oldest is forgotten and its
/// creation time becomes a floor: older messages are refused as possible replays.
pub const MAX_SEEN_IDS: usize = 512;
/// Chunks of a streamed delivery the toy has room for at once: the server sends no more
/// until the toy acknowledges one (`ChunkRequest`), so a slow link is never flooded.
pub const RECEIVE_WINDOW_CHUNKS: u8 = 2;
/// Pieces of a chunked upload (each at most one envelope chunk) sent before the server
/// acknowledges them (`UploadChunkAck`).
pub const UPLOAD_WINDOW_CHUNKS: u32 = 2;
/// Messages held at once (waiting to be played or approved).
pub const MAX_QUEUED_MESSAGES: usize = 16;
/// Acknowledgements kept while offline; beyond that the server's redelivery covers them.
pub const MAX_OUTBOX_FRAMES: usize = 64;
/// Recordings kept until the server acknowledges them.
pub const MAX_PENDING_UPLOADS: usize = 4;
/// How long pairing mode lasts, as long as a pairing code.
pub const PAIRING_WINDOW_MS: u64 = 10 * 60 * 1000;
/// How often the toy replaces its key pair (30 days of wall-clock time).
pub const KEY_ROTATION_INTERVAL_MS: u64 = 30 * 24 * 60 * 60 * 1000;
/// How long the toy waits before trying again after the server refused a rotation.
pub const ROTATION_RETRY_MS: u64 = 60 * 60 * 1000;
/// Holding the paw this long resets the toy to a new, unpaired one.
pub const FACTORY_RESET_HOLD_MS: u64 = 10_000;
/// The server answers a refused `Auth` at once: an `Auth` not refused within this time
/// stood, and the toy reports [`Action::ConnectionAccepted`] (sooner if a frame only an
/// authenticated toy receives arrives).
pub const AUTH_SETTLED_MS: u64 = 5_000;

/// A verified message waiting to be played.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Queued {
    message_id: MessageId,
    sender: DeviceId,
    created_at_ms: u64,
    /// Waiting for a parent's approval.
    held: bool,
}

/// The household the toy belongs to.
struct Household {
    /// The current roster, verified when it was accepted.
    roster: SignedRoster,
    /// Owner Ed25519 keys whose signatures the toy accepts on the next roster.
    pinned_owners: Vec<[u8; 32]>,
}

impl Household {
    fn roster(&self) -> &Roster {
        // Verified on acceptance (pairing or successor check) before being stored.
        self.roster.unverified_roster()
    }
}

/// Message ids already accepted, bounded; see [`MAX_SEEN_IDS`].
#[derive(Default)]
struct Seen {
    ids: VecDeque<(MessageId, u64)>,
    floor_ms: u64,
}

impl Seen {
    fn refuses(&self, id: MessageId, created_at_ms: u64) -> bool {
        created_at_ms < self.floor_ms || self.ids.iter().any(|(seen, _)| *seen == id)
    }

    fn insert(&mut self, id: MessageId, created_at_ms: u64) {
        if self.ids.len() == MAX_SEEN_IDS {
            if let Some((_, evicted)) = self.ids.pop_front() {
                self.floor_ms = self.floor_ms.max(evicted);
            }
        }
        self.ids.push_back((id, created_at_ms));
    }
}

#[derive(Default)]
struct Clock {
    now_ms: u64,
    /// A monotonic time and the Unix time at that moment.
    wall_anchor: Option<(u64, u64)>,
    /// The anchor came from the toy's own clock, which the server's does not override.
    own_wall_clock: bool,
}

impl Clock {
    fn advance(&mut self, now_ms: u64) {
        // A monotonic clock never goes back; a shell bug must not rewind the toy's timers.
        self.now_ms = self.now_ms.max(now_ms);
    }

    fn wall_ms(&self) -> Option<u64> {
        self.wall_anchor
            .map(|(mono, wall)| wall.saturating_add(self.now_ms.saturating_sub(mono)))
    }
}

#[derive(Default)]
struct Link {
    connected: bool,
    /// The nonce of the connection's `Challenge`.
    nonce: Option<[u8; NONCE_LEN]>,
    /// `Auth` was sent on this connection and not refused.
    authenticated: bool,
    /// When `Auth` was sent, until the server accepted the toy.
    auth_sent_ms: Option<u64>,
    /// [`Action::ConnectionAccepted`] was reported for this connection.
    accepted: bool,
    /// The server refused the toy's keys on this connection: it answers no more challenges
    /// here and waits for the shell to reconnect.
    refused: bool,
}

struct Pairing {
    since_ms: u64,
    code: Option<PairingCode>,
    requested: bool,
    /// The number of the claim a press confirms, once a parent entered the code.
    confirm: Option<ConfirmationNumber>,
}

struct Recording {
    since_ms: u64,
    stop_sent: bool,
}

/// The toy. Create it with [`Toy::first_start`] once, then [`Toy::restore`] at every later
/// start; feed it [`Event`]s with [`Toy::handle`] and carry out the [`Action`]s it returns.
pub struct Toy {
    keys: DeviceKeys,
    keys_created_unix_ms: u64,
    pending_keys: Option<DeviceKeys>,
    retired_keys: Option<DeviceKeys>,
    household: Option<Household>,
    seen: Seen,
    queue: Vec<Queued>,

    clock: Clock,
    link: Link,
    pairing: Option<Pairing>,
    recording: Option<Recording>,
    outbox: VecDeque<Vec<u8>>,
    pending_uploads: Vec<(MessageId, Vec<u8>)>,
    rotation_not_before_ms: u64,
    heart: Option<Heart>,
    unsaved: bool,
    /// The streamed delivery being received, if any.
    incoming: Option<stream::Incoming>,
    /// `DeliverStart` prefixes that arrived while another delivery streamed, in order.
    waiting_starts: VecDeque<Vec<u8>>,
    /// Bytes of the first pending upload sent and acknowledged on this connection.
    upload_sent: u32,
    upload_acked: u32,
    /// Queued audio read from a version 1 state blob, to be moved to audio storage.
    unstored: Vec<(MessageId, Vec<u8>)>,
    /// Who messages are from, as a parent named them; memory only (see `names`).
    names: Option<names::Names>,
    /// What the toy runs, the release keys it trusts and the update it downloads.
    updates: update::Updates,
}

impl Toy {
    /// A brand-new toy: a random device id and fresh key pairs, no household. Its state is
    /// persisted at the first [`Event::PowerOn`].
    pub fn first_start(rng: &mut impl CryptoRng) -> Self {
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        // A version 4 UUID, like every other device id.
        id[6] = (id[6] & 0x0f) | 0x40;
        id[8] = (id[8] & 0x3f) | 0x80;
        let keys = DeviceKeys::generate(rng, DeviceId(id));
        let mut toy = Self::with_keys(keys);
        toy.unsaved = true;
        toy
    }

    fn with_keys(keys: DeviceKeys) -> Self {
        Self {
            keys,
            keys_created_unix_ms: 0,
            pending_keys: None,
            retired_keys: None,
            household: None,
            seen: Seen::default(),
            queue: Vec::new(),
            clock: Clock::default(),
            link: Link::default(),
            pairing: None,
            recording: None,
            outbox: VecDeque::new(),
            pending_uploads: Vec::new(),
            rotation_not_before_ms: 0,
            heart: None,
            unsaved: false,
            incoming: None,
            waiting_starts: VecDeque::new(),
            upload_sent: 0,
            upload_acked: 0,
            unstored: Vec::new(),
            names: None,
            updates: update::Updates::default(),
        }
    }

    /// This toy's device id, until a factory reset gives it a new one.
    pub fn device_id(&self) -> DeviceId {
        self.keys.device_id()
    }

    /// The public keys the toy authenticates with now.
    pub fn identity(&self) -> PublicIdentity {
        self.keys.public()
    }

    /// The household, once paired.
    pub fn household_id(&self) -> Option<HouseholdId> {
        self.household.as_ref().map(|h| h.roster().household_id)
    }

    /// The version of the roster the toy holds; 0 before pairing.
    pub fn roster_version(&self) -> u64 {
        self.household.as_ref().map_or(0, |h| h.roster().version)
    }

    /// Messages held (playable or waiting for approval).
    pub fn queued_messages(&self) -> usize {
        self.queue.len()
    }

    /// Whether the audio storage should hold `message_id`'s audio: a shell that finds
    /// other audio at start (a delivery cut by a power loss) may delete it.
    pub fn keeps_audio_of(&self, message_id: MessageId) -> bool {
        self.queue.iter().any(|m| m.message_id == message_id)
            || self.unstored.iter().any(|(id, _)| *id == message_id)
    }

    /// Handles one event and returns what the shell must do, in order.
    pub fn handle(&mut self, event: Event<'_>, rng: &mut impl CryptoRng) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::PowerOn {
                now_ms,
                wall_clock_unix_ms,
            } => self.power_on(now_ms, wall_clock_unix_ms, &mut out),
            Event::PawPressed { long } => self.paw_pressed(long, &mut out),
            Event::PawHeld { ms } if ms >= FACTORY_RESET_HOLD_MS => {
                self.factory_reset(rng, &mut out);
            }
            Event::PawHeld { .. } => self.paw_pressed(true, &mut out),
            Event::FrameReceived(bytes) => match Frame::decode(bytes) {
                Ok(frame) => self.frame(frame, rng, &mut out),
                Err(error) => out.push(Action::Report(Report::FrameRefused { error })),
            },
            Event::Timer { now_ms } => self.timer(now_ms, rng, &mut out),
            Event::RecordingFinished { ogg } => self.recording_finished(&ogg, rng, &mut out),
            Event::Connected => {
                self.link = Link {
                    connected: true,
                    ..Link::default()
                };
                // A delivery streamed on an earlier connection never ends on this one.
                self.waiting_starts.clear();
                self.interrupt_incoming(&mut out);
                self.updates.link_lost();
            }
            Event::Disconnected => {
                self.link = Link::default();
                self.waiting_starts.clear();
                self.interrupt_incoming(&mut out);
                self.updates.link_lost();
            }
        }
        let heart = self.wanted_heart();
        if self.heart != Some(heart) {
            self.heart = Some(heart);
            out.push(Action::SetHeart(heart));
        }
        out
    }

    fn power_on(&mut self, now_ms: u64, wall: Option<u64>, out: &mut Vec<Action>) {
        self.clock = Clock {
            now_ms,
            wall_anchor: wall.map(|w| (now_ms, w)),
            own_wall_clock: wall.is_some(),
        };
        self.link = Link::default();
        self.pairing = None;
        self.recording = None;
        self.heart = None;
        self.note_key_birth();
        self.incoming = None;
        self.waiting_starts.clear();
        if !self.unstored.is_empty() {
            // Audio a version 1 state held moves to audio storage before the state that no
            // longer holds it is saved.
            for (message_id, bytes) in core::mem::take(&mut self.unstored) {
                out.push(Action::StoreAudio {
                    message_id,
                    offset: 0,
                    bytes,
                });
            }
            self.unsaved = true;
        }
        if self.unsaved {
            self.persist(out);
        }
    }

    fn paw_pressed(&mut self, long: bool, out: &mut Vec<Action>) {
        if let Some(rec) = &mut self.recording {
            if !rec.stop_sent {
                rec.stop_sent = true;
                out.push(Action::StopRecording);
            }
            return;
        }
        if long {
            self.long_press(out);
            return;
        }
        if let Some(pairing) = &self.pairing {
            // A short press while a parent's claim waits confirms it; before that, it
            // repeats the code for the parent.
            if let Some(number) = pairing.confirm {
                self.send_now(&Frame::PairConfirmed { number }, out);
                return;
            }
            out.push(Action::Speak(match pairing.code {
                Some(code) => Prompt::PairingCode(code),
                None => Prompt::PairingStarted,
            }));
            return;
        }
        if self.household.is_none() {
            out.push(Action::Speak(Prompt::NotPaired));
            return;
        }
        if let Some(index) = self.queue.iter().position(|m| !m.held) {
            if self.in_quiet_hours() {
                out.push(Action::Speak(Prompt::QuietHours));
            } else {
                self.play(index, out);
            }
            return;
        }
        // Nothing to hear: the press records a message back.
        self.start_recording(out);
    }

    fn timer(&mut self, now_ms: u64, rng: &mut impl CryptoRng, out: &mut Vec<Action>) {
        self.clock.advance(now_ms);
        if self
            .pairing
            .as_ref()
            .is_some_and(|p| now_ms.saturating_sub(p.since_ms) >= PAIRING_WINDOW_MS)
        {
            self.pairing = None;
            out.push(Action::Speak(Prompt::PairingFailed));
        }
        if let Some(rec) = &mut self.recording {
            let limit = u64::from(MAX_RECORDING_MS) + RECORDING_GRACE_MS;
            if !rec.stop_sent && now_ms.saturating_sub(rec.since_ms) >= limit {
                rec.stop_sent = true;
                out.push(Action::StopRecording);
            }
        }
        if self.note_key_birth() {
            self.persist(out);
        }
        if self
            .link
            .auth_sent_ms
            .is_some_and(|sent| now_ms.saturating_sub(sent) >= AUTH_SETTLED_MS)
        {
            self.accept_connection(out);
        }
        self.maybe_rotate(rng, out);
    }

    /// The server accepted the toy on this connection; reported once per connection.
    fn accept_connection(&mut self, out: &mut Vec<Action>) {
        self.link.auth_sent_ms = None;
        if self.link.connected && !self.link.accepted {
            self.link.accepted = true;
            out.push(Action::ConnectionAccepted);
            self.confirm_image(out);
        }
    }

    fn frame(&mut self, frame: Frame<'_>, rng: &mut impl CryptoRng, out: &mut Vec<Action>) {
        let for_authenticated_toys = matches!(
            frame,
            Frame::RosterUpdate { .. }
                | Frame::Deliver { .. }
                | Frame::Approval { .. }
                | Frame::UploadAck { .. }
                | Frame::RotateAck { .. }
                | Frame::DeliverStart { .. }
                | Frame::DeliverChunk { .. }
                | Frame::UploadChunkAck { .. }
                | Frame::UpdateOffer { .. }
                | Frame::UpdateChunk { .. }
        );
        if for_authenticated_toys && self.link.authenticated {
            self.accept_connection(out);
        }
        match frame {
            Frame::Challenge {
                nonce,
                server_time_ms,
            } => self.challenge(nonce, server_time_ms, rng, out),
            Frame::PairCode { code, .. } => self.pair_code(code, out),
            Frame::ConfirmPairing { number } => self.confirm_pairing(number, out),
            Frame::Paired {
                household_id,
                signed_roster,
            } => self.paired(household_id, signed_roster, out),
            Frame::RosterUpdate { signed_roster } => self.roster_update(signed_roster, out),
            Frame::Deliver { envelope } => self.deliver(envelope, out),
            Frame::DeliverStart { prefix } => self.deliver_start(prefix, out),
            Frame::DeliverChunk {
                message_id,
                index,
                chunk,
            } => self.deliver_chunk(message_id, index, chunk, out),
            Frame::UploadChunkAck {
                message_id,
                next_offset,
            } => self.upload_chunk_acked(message_id, next_offset, out),
            Frame::Approval {
                message_id,
                approver,
                signature,
            } => self.approval(message_id, approver, &signature, out),
            Frame::UploadAck { message_id } => self.upload_acked(message_id, out),
            Frame::RotateAck { ed25519_pub } => self.rotate_acked(&ed25519_pub, out),
            Frame::Error { code } => self.server_error(code, out),
            Frame::Leave {
                household_id,
                signer,
                signature,
            } => self.leave(household_id, signer, &signature, out),
            Frame::Names { envelope } => self.names(envelope, out),
            Frame::UpdateOffer {
                manifest,
                signature,
            } => self.update_offer(manifest, &signature, out),
            Frame::UpdateChunk { offset, bytes } => self.update_chunk(offset, bytes, out),
            other => ignored(other.frame_type(), out),
        }
    }

    fn challenge(
        &mut self,
        nonce: [u8; NONCE_LEN],
        server_time_ms: u64,
        rng: &mut impl CryptoRng,
        out: &mut Vec<Action>,
    ) {
        let refused = self.link.refused;
        self.link = Link {
            connected: true,
            nonce: Some(nonce),
            accepted: self.link.accepted,
            refused,
            ..Link::default()
        };
        if refused {
            // The server gave a new challenge after refusing the toy's keys; answering it
            // would only be refused again. The shell reconnects after its wait.
            return;
        }
        if !self.clock.own_wall_clock {
            self.clock.wall_anchor = Some((self.clock.now_ms, server_time_ms));
            if self.note_key_birth() {
                self.persist(out);
            }
        }
        if self.household.is_none() {
            if let Some(pairing) = &mut self.pairing {
                // A new connection asks for a new code; a claim of the old one is gone.
                pairing.requested = false;
                pairing.confirm = None;
            }
            // Nothing to prove: the server is there and talks to the toy.
            self.accept_connection(out);
            self.request_pairing(out);
            return;
        }
        let roster_version = self.roster_version();
        let signature = sign_auth(&self.keys, &nonce, roster_version);
        // This toy takes deliveries in chunks (protocol version 2): said before `Auth`, so
        // that the messages waiting for it come in chunks already.
        self.send_now(
            &Frame::ChunkRequest {
                message_id: pawpost_protocol::STREAMING_HELLO,
                next_index: 0,
                window: RECEIVE_WINDOW_CHUNKS,
            },
            out,
        );
        self.send_now(
            &Frame::Auth {
                device_id: self.device_id(),
                roster_version,
                signature,
            },
            out,
        );
        self.link.authenticated = true;
        self.link.auth_sent_ms = Some(self.clock.now_ms);
        self.send_version(out);
        while let Some(frame) = self.outbox.pop_front() {
            out.push(Action::SendFrame(frame));
        }
        self.restart_uploads(out);
        if self.pending_keys.is_some() {
            // The last attempt may not have reached the server: ask again on this connection.
            self.send_rotation(out);
        } else {
            self.maybe_rotate(rng, out);
        }
    }

    fn server_error(&mut self, code: ServerError, out: &mut Vec<Action>) {
        out.push(Action::Report(Report::ServerError { code }));
        match code {
            ServerError::AuthFailed => {
                self.link.authenticated = false;
                self.link.auth_sent_ms = None;
                if self.pending_keys.is_some() {
                    // The server already took the new key (its ack was lost): use it from the
                    // next challenge on.
                    self.promote_pending_keys(out);
                } else if self.household.is_some() && !self.link.refused {
                    // The server does not know these keys (its household was deleted, say):
                    // answering its next challenge would be refused again, and so would
                    // reconnecting at once. The shell waits, longer at each refusal.
                    self.link.refused = true;
                    out.push(Action::Reconnect(ReconnectReason::AuthRefused));
                }
            }
            ServerError::PairingExpired | ServerError::PairingRefused => {
                if self.pairing.take().is_some() {
                    out.push(Action::Speak(Prompt::PairingFailed));
                }
            }
            ServerError::UploadRefused => {
                // Uploads are answered in order, so the refusal is for the oldest one.
                if !self.pending_uploads.is_empty() {
                    self.pending_uploads.remove(0);
                    out.push(Action::Speak(Prompt::RecordingFailed));
                    self.restart_uploads(out);
                }
            }
            ServerError::RotateRefused => {
                if self.pending_keys.take().is_some() {
                    self.rotation_not_before_ms = self.clock.now_ms + ROTATION_RETRY_MS;
                    self.persist(out);
                }
            }
        }
    }

    /// For the handshake frames, which make sense only on the current connection.
    pub(super) fn send_now(&self, frame: &Frame<'_>, out: &mut Vec<Action>) {
        if self.link.connected {
            if let Ok(bytes) = frame.encode() {
                out.push(Action::SendFrame(bytes));
            }
        }
    }

    /// For acknowledgements: sent at once when authenticated, otherwise after the next `Auth`.
    pub(super) fn send_or_queue(&mut self, frame: &Frame<'_>, out: &mut Vec<Action>) {
        let Ok(bytes) = frame.encode() else {
            return;
        };
        if self.link.authenticated {
            out.push(Action::SendFrame(bytes));
        } else if self.outbox.len() < MAX_OUTBOX_FRAMES {
            self.outbox.push_back(bytes);
        }
    }
}

fn ignored(frame_type: FrameType, out: &mut Vec<Action>) {
    out.push(Action::Report(Report::FrameIgnored { frame_type }));
}
