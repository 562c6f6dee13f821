//! The toy's brain: events in, actions out, no I/O, no clock, no randomness of its own.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use pawpost_crypto::rand_core::CryptoRng;
use pawpost_crypto::{
    open, seal, DeviceId, DeviceKeys, Envelope, HouseholdId, MediaType, MessageId, MessageParams,
    OpenError, PublicIdentity, Role, Roster, RosterError, SealError, SignedRoster,
};
use pawpost_media::{validate_ogg_opus, Limits, MediaError};

use crate::frame::{
    Frame, FrameError, FrameType, PairingCode, RejectReason, RosterRefusal, ServerError,
    MAX_ENVELOPE_LEN, NONCE_LEN,
};
use crate::signing::{
    auth_signature_input, pair_request_signature_input, rotation_signature_input, sign,
    verify_approval,
};
use crate::state::{
    Reader, StateBlob, StateError, Writer, MAX_STORED_OGG_LEN, MAX_STORED_PINS, MAX_STORED_QUEUE,
    MAX_STORED_ROSTER_LEN, MAX_STORED_SEEN, STATE_VERSION,
};

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

const MINUTES_PER_DAY: i64 = 24 * 60;
const MS_PER_MINUTE: u64 = 60_000;

/// Limits on messages the toy plays: 30 s, and never more bytes than a frame carries.
const RECEIVE_LIMITS: Limits = Limits {
    max_duration_ms: MAX_MESSAGE_MS,
    max_bytes: MAX_ENVELOPE_LEN,
    max_packets: Limits::DEFAULT.max_packets,
};

/// Limits on the child's recordings before they are sealed.
const RECORDING_LIMITS: Limits = Limits {
    max_duration_ms: MAX_RECORDING_MS,
    max_bytes: MAX_RECORDING_BYTES,
    max_packets: Limits::DEFAULT.max_packets,
};

/// Something that happened to the toy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// The toy started. `now_ms` is the shell's monotonic clock; `wall_clock_unix_ms` its
    /// real-time clock if it has one (otherwise the server's time from `Challenge` is used).
    PowerOn {
        /// Monotonic milliseconds.
        now_ms: u64,
        /// Unix milliseconds, if the toy has a real-time clock.
        wall_clock_unix_ms: Option<u64>,
    },
    /// The physical paw button. Nothing else may produce this event.
    PawPressed {
        /// Held for the long-press time (the shell decides how long).
        long: bool,
    },
    /// A complete frame from the server (WebSocket message or reassembled BLE frame).
    FrameReceived(&'a [u8]),
    /// Time passed; the shell sends this about once a second.
    Timer {
        /// Monotonic milliseconds.
        now_ms: u64,
    },
    /// The microphone stopped after [`Action::StartRecording`]; the recording as Ogg Opus.
    RecordingFinished {
        /// The recorded file.
        ogg: Vec<u8>,
    },
    /// A connection to the server is open (the server speaks first, with `Challenge`).
    Connected,
    /// The connection closed.
    Disconnected,
}

/// Something the shell must do, in the order given. In particular a `Persist` comes before
/// the `SendFrame` that depends on it having been saved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this frame to the server.
    SendFrame(Vec<u8>),
    /// Play a verified voice message.
    PlayAudio {
        /// Which message.
        message_id: MessageId,
        /// Ogg Opus, already validated.
        ogg: Vec<u8>,
    },
    /// Start the microphone; stop by itself after `max_ms` and report
    /// [`Event::RecordingFinished`].
    StartRecording {
        /// Longest recording.
        max_ms: u32,
    },
    /// Stop the microphone now and report [`Event::RecordingFinished`].
    StopRecording,
    /// Set the heart light.
    SetHeart(Heart),
    /// Say something to the child.
    Speak(Prompt),
    /// Save this state (replacing the previous one) before carrying out the next actions.
    Persist(StateBlob),
    /// Something was refused, for the device's log.
    Report(Report),
}

/// The heart light.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Heart {
    /// Nothing to show.
    Off,
    /// Busy: recording, or pairing.
    On,
    /// A message is waiting to be heard.
    Blink,
}

/// What the toy says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Prompt {
    /// Pairing mode started ("let's find your family").
    PairingStarted,
    /// The code for a parent to type, digit by digit.
    PairingCode(PairingCode),
    /// Pairing finished.
    Paired,
    /// Pairing failed or timed out.
    PairingFailed,
    /// A long press on a toy that already has a household.
    AlreadyPaired,
    /// A short press on a toy without a household.
    NotPaired,
    /// The household removed this toy.
    Unpaired,
    /// Nothing to hear (said before recording starts).
    NoMessages,
    /// The microphone is on.
    Recording,
    /// The recording could not be used.
    RecordingFailed,
    /// The server has the child's message.
    Sent,
    /// It is quiet time: messages wait until morning.
    QuietHours,
    /// Too many recordings wait to be sent; try later.
    TryLater,
}

/// Why the toy refused an approval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApprovalRefusal {
    /// No held message with that id.
    UnknownMessage,
    /// The approver is not an approved owner or guardian.
    NotApprover,
    /// The signature does not verify.
    BadSignature,
    /// The toy is not paired.
    NotPaired,
}

/// Why a recording was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordingProblem {
    /// The toy never started the microphone.
    NotRequested,
    /// The file is not valid Ogg Opus within the recording limits.
    BadMedia(MediaError),
    /// The roster lists nobody to send to.
    NoRecipients,
    /// Sealing failed.
    Seal(SealError),
    /// The roster does not list this toy's keys, so recipients could not verify it.
    NoRosterKeys,
}

/// What the toy refused, and why. Every dropped message is reported here and, with a
/// `Rejected` frame, to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    /// A message was dropped and will never play.
    MessageDropped {
        /// The message, if the envelope parsed far enough.
        message_id: Option<MessageId>,
        /// Why.
        reason: RejectReason,
    },
    /// A roster was refused; the toy keeps the one it had.
    RosterRefused {
        /// Its version, if it parsed.
        version: Option<u64>,
        /// Why.
        reason: RosterRefusal,
    },
    /// An approval was refused; the message stays held.
    ApprovalRefused {
        /// The message named.
        message_id: MessageId,
        /// Why.
        reason: ApprovalRefusal,
    },
    /// A recording was discarded.
    RecordingDiscarded {
        /// Why.
        reason: RecordingProblem,
    },
    /// Bytes that are not a valid frame.
    FrameRefused {
        /// Why.
        error: FrameError,
    },
    /// A valid frame that means nothing in the toy's current state (or travels the other
    /// way); ignored.
    FrameIgnored {
        /// Its type.
        frame_type: FrameType,
    },
    /// The server reported an error.
    ServerError {
        /// Which.
        code: ServerError,
    },
}

/// A verified message waiting to be played.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Queued {
    message_id: MessageId,
    sender: DeviceId,
    created_at_ms: u64,
    /// Waiting for a parent's approval.
    held: bool,
    ogg: Vec<u8>,
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
}

struct Pairing {
    since_ms: u64,
    code: Option<PairingCode>,
    requested: bool,
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
        }
    }

    /// The toy as it was saved by an [`Action::Persist`].
    pub fn restore(state: &[u8]) -> Result<Self, StateError> {
        let mut r = Reader::new(state);
        if r.u8()? != STATE_VERSION {
            return Err(StateError::UnsupportedVersion);
        }
        let mut toy = Self::with_keys(r.keys()?);
        toy.keys_created_unix_ms = r.u64()?;
        toy.pending_keys = r.optional_keys()?;
        toy.retired_keys = r.optional_keys()?;
        if r.flag()? {
            let roster = SignedRoster::decode(r.field(MAX_STORED_ROSTER_LEN)?)
                .map_err(|_| StateError::InvalidContent)?;
            let count = r.count(false, MAX_STORED_PINS)?;
            let mut pinned_owners = Vec::with_capacity(count);
            for _ in 0..count {
                pinned_owners.push(r.array()?);
            }
            toy.household = Some(Household {
                roster,
                pinned_owners,
            });
        }
        toy.seen.floor_ms = r.u64()?;
        for _ in 0..r.count(true, MAX_STORED_SEEN)? {
            let id = MessageId(r.array()?);
            let created = r.u64()?;
            toy.seen.ids.push_back((id, created));
        }
        for _ in 0..r.count(false, MAX_STORED_QUEUE)? {
            toy.queue.push(Queued {
                message_id: MessageId(r.array()?),
                sender: DeviceId(r.array()?),
                created_at_ms: r.u64()?,
                held: r.flag()?,
                ogg: r.field(MAX_STORED_OGG_LEN)?.to_vec(),
            });
        }
        r.finish()?;
        Ok(toy)
    }

    /// The state to save now; the same bytes an [`Action::Persist`] carries.
    pub fn state_blob(&self) -> StateBlob {
        let mut w = Writer(Vec::new());
        w.u8(STATE_VERSION);
        w.keys(&self.keys);
        w.u64(self.keys_created_unix_ms);
        w.optional_keys(self.pending_keys.as_ref());
        w.optional_keys(self.retired_keys.as_ref());
        match &self.household {
            Some(h) => {
                w.u8(1);
                w.field(&h.roster.encode());
                // Bounded by the roster's member limit, which fits in u8.
                w.u8(h.pinned_owners.len() as u8);
                for key in &h.pinned_owners {
                    w.bytes(key);
                }
            }
            None => w.u8(0),
        }
        w.u64(self.seen.floor_ms);
        // At most MAX_SEEN_IDS, which fits in u16.
        w.u16(self.seen.ids.len() as u16);
        for (id, created) in &self.seen.ids {
            w.bytes(&id.0);
            w.u64(*created);
        }
        // At most MAX_QUEUED_MESSAGES, which fits in u8.
        w.u8(self.queue.len() as u8);
        for m in &self.queue {
            w.bytes(&m.message_id.0);
            w.bytes(&m.sender.0);
            w.u64(m.created_at_ms);
            w.u8(u8::from(m.held));
            w.field(&m.ogg);
        }
        StateBlob::new(w.0)
    }

    /// This toy's device id, fixed for its life.
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

    /// Handles one event and returns what the shell must do, in order.
    pub fn handle(&mut self, event: Event<'_>, rng: &mut impl CryptoRng) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::PowerOn {
                now_ms,
                wall_clock_unix_ms,
            } => self.power_on(now_ms, wall_clock_unix_ms, &mut out),
            Event::PawPressed { long } => self.paw_pressed(long, &mut out),
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
            }
            Event::Disconnected => self.link = Link::default(),
        }
        let heart = self.wanted_heart();
        if self.heart != Some(heart) {
            self.heart = Some(heart);
            out.push(Action::SetHeart(heart));
        }
        out
    }

    // ----- events -----

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
            // A short press while pairing repeats the code for the parent.
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
        // Nothing to hear: the press records a message back. This is the only place the
        // microphone is ever started.
        if self.pending_uploads.len() >= MAX_PENDING_UPLOADS {
            out.push(Action::Speak(Prompt::TryLater));
            return;
        }
        out.push(Action::Speak(Prompt::NoMessages));
        out.push(Action::Speak(Prompt::Recording));
        out.push(Action::StartRecording {
            max_ms: MAX_RECORDING_MS,
        });
        self.recording = Some(Recording {
            since_ms: self.clock.now_ms,
            stop_sent: false,
        });
    }

    fn long_press(&mut self, out: &mut Vec<Action>) {
        if self.household.is_some() {
            // Moving a toy to another household takes a reset, not a press: a press would let
            // a compromised server take over a paired toy that a child presses by accident.
            out.push(Action::Speak(Prompt::AlreadyPaired));
            return;
        }
        self.pairing = Some(Pairing {
            since_ms: self.clock.now_ms,
            code: None,
            requested: false,
        });
        out.push(Action::Speak(Prompt::PairingStarted));
        self.request_pairing(out);
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
        self.maybe_rotate(rng, out);
    }

    fn recording_finished(&mut self, ogg: &[u8], rng: &mut impl CryptoRng, out: &mut Vec<Action>) {
        if self.recording.take().is_none() {
            out.push(Action::Report(Report::RecordingDiscarded {
                reason: RecordingProblem::NotRequested,
            }));
            return;
        }
        match self.seal_recording(ogg, rng) {
            Ok((message_id, envelope)) => {
                if let Ok(frame) = (Frame::Upload {
                    envelope: &envelope,
                })
                .encode()
                {
                    if self.link.authenticated {
                        out.push(Action::SendFrame(frame));
                    }
                    self.pending_uploads.push((message_id, envelope));
                }
            }
            Err(reason) => {
                out.push(Action::Speak(Prompt::RecordingFailed));
                out.push(Action::Report(Report::RecordingDiscarded { reason }));
            }
        }
    }

    fn seal_recording(
        &self,
        ogg: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Result<(MessageId, Vec<u8>), RecordingProblem> {
        let info = validate_ogg_opus(ogg, &RECORDING_LIMITS).map_err(RecordingProblem::BadMedia)?;
        let household = self
            .household
            .as_ref()
            .ok_or(RecordingProblem::NoRecipients)?;
        let roster = household.roster();
        let keys = self.roster_keys().ok_or(RecordingProblem::NoRosterKeys)?;
        // Every approved person in the household hears the child; blocked members and toys
        // do not.
        let recipients: Vec<PublicIdentity> = roster
            .members
            .iter()
            .filter(|m| m.is_approved() && m.role != Role::Toy)
            .map(|m| m.public_identity())
            .collect();
        if recipients.is_empty() {
            return Err(RecordingProblem::NoRecipients);
        }
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        id[6] = (id[6] & 0x0f) | 0x40;
        id[8] = (id[8] & 0x3f) | 0x80;
        let message_id = MessageId(id);
        let params = MessageParams {
            message_id,
            household_id: roster.household_id,
            created_at_ms: self.clock.wall_ms().unwrap_or(0),
            media_type: MediaType::OggOpus,
            duration_ms: info.duration_ms,
            recipients: &recipients,
        };
        let envelope = seal(rng, keys, &params, ogg).map_err(RecordingProblem::Seal)?;
        Ok((message_id, envelope))
    }

    // ----- frames -----

    fn frame(&mut self, frame: Frame<'_>, rng: &mut impl CryptoRng, out: &mut Vec<Action>) {
        match frame {
            Frame::Challenge {
                nonce,
                server_time_ms,
            } => self.challenge(nonce, server_time_ms, rng, out),
            Frame::PairCode { code, .. } => match &mut self.pairing {
                Some(pairing) => {
                    pairing.code = Some(code);
                    out.push(Action::Speak(Prompt::PairingCode(code)));
                }
                None => ignored(FrameType::PairCode, out),
            },
            Frame::Paired {
                household_id,
                signed_roster,
            } => self.paired(household_id, signed_roster, out),
            Frame::RosterUpdate { signed_roster } => self.roster_update(signed_roster, out),
            Frame::Deliver { envelope } => self.deliver(envelope, out),
            Frame::Approval {
                message_id,
                approver,
                signature,
            } => self.approval(message_id, approver, &signature, out),
            Frame::UploadAck { message_id } => {
                match self
                    .pending_uploads
                    .iter()
                    .position(|(id, _)| *id == message_id)
                {
                    Some(index) => {
                        self.pending_uploads.remove(index);
                        out.push(Action::Speak(Prompt::Sent));
                    }
                    None => ignored(FrameType::UploadAck, out),
                }
            }
            Frame::RotateAck { ed25519_pub } => {
                if self
                    .pending_keys
                    .as_ref()
                    .is_some_and(|k| k.public().ed25519_pub == ed25519_pub)
                {
                    self.promote_pending_keys(out);
                } else {
                    ignored(FrameType::RotateAck, out);
                }
            }
            Frame::Error { code } => self.server_error(code, out),
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
        self.link = Link {
            connected: true,
            nonce: Some(nonce),
            authenticated: false,
        };
        if !self.clock.own_wall_clock {
            self.clock.wall_anchor = Some((self.clock.now_ms, server_time_ms));
            if self.note_key_birth() {
                self.persist(out);
            }
        }
        if self.household.is_none() {
            if let Some(pairing) = &mut self.pairing {
                pairing.requested = false;
            }
            self.request_pairing(out);
            return;
        }
        let roster_version = self.roster_version();
        let signature = sign(
            &self.keys,
            &auth_signature_input(&nonce, self.device_id(), roster_version),
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
        while let Some(frame) = self.outbox.pop_front() {
            out.push(Action::SendFrame(frame));
        }
        for (_, envelope) in &self.pending_uploads {
            if let Ok(frame) = (Frame::Upload { envelope }).encode() {
                out.push(Action::SendFrame(frame));
            }
        }
        if self.pending_keys.is_some() {
            // The last attempt may not have reached the server: ask again on this connection.
            self.send_rotation(out);
        } else {
            self.maybe_rotate(rng, out);
        }
    }

    fn request_pairing(&mut self, out: &mut Vec<Action>) {
        let (Some(pairing), Some(nonce)) = (&mut self.pairing, self.link.nonce) else {
            return;
        };
        if pairing.requested {
            return;
        }
        pairing.requested = true;
        let identity = self.keys.public();
        let signature = sign(&self.keys, &pair_request_signature_input(&nonce, &identity));
        self.send_now(
            &Frame::PairRequest {
                identity,
                signature,
            },
            out,
        );
    }

    fn paired(&mut self, household_id: HouseholdId, bytes: &[u8], out: &mut Vec<Action>) {
        if self.pairing.is_none() || self.household.is_some() {
            self.refuse_roster(None, RosterRefusal::Unexpected, out);
            return;
        }
        match self.verify_pairing_roster(household_id, bytes) {
            Ok(household) => {
                self.household = Some(household);
                self.pairing = None;
                self.persist(out);
                out.push(Action::Speak(Prompt::Paired));
            }
            Err((version, reason)) => {
                self.refuse_roster(version, reason, out);
                out.push(Action::Speak(Prompt::PairingFailed));
            }
        }
    }

    /// The first roster a toy sees: signed by an approved owner listed in that same roster
    /// (the chain before it cannot be checked, so the parent typing the spoken code is what
    /// vouches for it), for the household the server named, listing this toy with exactly
    /// its keys. The signer's key is pinned.
    fn verify_pairing_roster(
        &self,
        household_id: HouseholdId,
        bytes: &[u8],
    ) -> Result<Household, (Option<u64>, RosterRefusal)> {
        let signed = SignedRoster::decode(bytes).map_err(|_| (None, RosterRefusal::Malformed))?;
        let roster = signed.unverified_roster();
        let version = Some(roster.version);
        if roster.household_id != household_id {
            return Err((version, RosterRefusal::HouseholdMismatch));
        }
        let signer = roster
            .member(signed.signer())
            .filter(|m| m.is_approved_owner())
            .ok_or((version, RosterRefusal::SignerNotOwner))?;
        let verified = if roster.version == 1 {
            signed.verify_genesis()
        } else {
            signed.verify_signed_by(&signer.ed25519_pub)
        };
        verified.map_err(|e| (version, roster_refusal(e)))?;
        let me = self.keys.public();
        if !lists_toy(roster, &me) {
            return Err((version, RosterRefusal::ToyKeyMismatch));
        }
        let pinned_owners = alloc::vec![signer.ed25519_pub];
        Ok(Household {
            roster: signed,
            pinned_owners,
        })
    }

    fn roster_update(&mut self, bytes: &[u8], out: &mut Vec<Action>) {
        let Some(household) = &self.household else {
            self.refuse_roster(None, RosterRefusal::Unexpected, out);
            return;
        };
        let signed = match SignedRoster::decode(bytes) {
            Ok(s) => s,
            Err(_) => {
                self.refuse_roster(None, RosterRefusal::Malformed, out);
                return;
            }
        };
        let version = Some(signed.unverified_roster().version);
        if let Err(e) = signed.verify_successor(&household.roster) {
            self.refuse_roster(version, roster_refusal(e), out);
            return;
        }
        // verify_successor found the signer as an approved owner of the current roster.
        let pinned = household
            .roster()
            .member(signed.signer())
            .is_some_and(|m| household.pinned_owners.contains(&m.ed25519_pub));
        if !pinned {
            self.refuse_roster(version, RosterRefusal::SignerNotPinned, out);
            return;
        }
        let roster = signed.unverified_roster();
        let me = self.device_id();
        let listed = roster
            .approved_member(me)
            .filter(|m| m.role == Role::Toy)
            .map(|m| m.public_identity());
        let Some(listed) = listed else {
            // A pinned owner took the toy out of the household (or blocked it): forget it.
            self.unpair(out);
            return;
        };
        let current = self.keys.public();
        let matches_retired = self
            .retired_keys
            .as_ref()
            .is_some_and(|k| k.public() == listed);
        if listed != current && !matches_retired {
            self.refuse_roster(version, RosterRefusal::ToyKeyMismatch, out);
            return;
        }
        if listed == current {
            // The household now encrypts to the new keys: the old ones can go.
            self.retired_keys = None;
        }
        // A pinned owner vouches for the owners it lists; a removed owner is unpinned.
        let pinned_owners = roster
            .members
            .iter()
            .filter(|m| m.is_approved_owner())
            .map(|m| m.ed25519_pub)
            .collect();
        let approvals_needed = roster.settings.parent_approves_before_play;
        let mut dropped = Vec::new();
        self.queue.retain(|m| {
            let reason = match roster.member(m.sender) {
                None => Some(RejectReason::UnknownSender),
                Some(s) if !s.is_approved() => Some(RejectReason::SenderBlocked),
                Some(_) => None,
            };
            if let Some(reason) = reason {
                dropped.push((m.message_id, reason));
            }
            reason.is_none()
        });
        if !approvals_needed {
            for m in &mut self.queue {
                m.held = false;
            }
        }
        self.household = Some(Household {
            roster: signed,
            pinned_owners,
        });
        self.persist(out);
        for (message_id, reason) in dropped {
            self.reject(Some(message_id), reason, out);
        }
    }

    fn unpair(&mut self, out: &mut Vec<Action>) {
        self.household = None;
        self.queue.clear();
        self.seen = Seen::default();
        self.retired_keys = None;
        self.pending_keys = None;
        self.pending_uploads.clear();
        self.outbox.clear();
        self.persist(out);
        out.push(Action::Speak(Prompt::Unpaired));
    }

    fn refuse_roster(
        &mut self,
        version: Option<u64>,
        reason: RosterRefusal,
        out: &mut Vec<Action>,
    ) {
        out.push(Action::Report(Report::RosterRefused { version, reason }));
        let frame = Frame::RosterRejected {
            version: version.unwrap_or(0),
            reason,
        };
        if self.household.is_some() {
            self.send_or_queue(&frame, out);
        } else {
            self.send_now(&frame, out);
        }
    }

    fn deliver(&mut self, envelope: &[u8], out: &mut Vec<Action>) {
        match self.check_envelope(envelope) {
            Ok(message) => {
                let message_id = message.message_id;
                self.seen.insert(message_id, message.created_at_ms);
                self.queue.push(message);
                // Saved before the ack, so that an ack never outlives a lost message.
                self.persist(out);
                self.send_or_queue(&Frame::Delivered { message_id }, out);
            }
            Err(rejection) => {
                if let (Some(id), Some(created)) = (rejection.message_id, rejection.authentic_at) {
                    // Authentic but unplayable: never accept this id again.
                    self.seen.insert(id, created);
                    self.persist(out);
                }
                self.reject(rejection.message_id, rejection.reason, out);
            }
        }
    }

    fn reject(
        &mut self,
        message_id: Option<MessageId>,
        reason: RejectReason,
        out: &mut Vec<Action>,
    ) {
        out.push(Action::Report(Report::MessageDropped {
            message_id,
            reason,
        }));
        self.send_or_queue(
            &Frame::Rejected {
                message_id: message_id.unwrap_or_default(),
                reason,
            },
            out,
        );
    }

    /// Every check a message passes before it may ever play, cheapest first.
    fn check_envelope(&self, bytes: &[u8]) -> Result<Queued, Rejection> {
        let envelope =
            Envelope::parse(bytes).map_err(|_| Rejection::new(None, RejectReason::Malformed))?;
        let header = envelope.header();
        let id = Some(header.message_id);
        let fail = |reason| Rejection::new(id, reason);
        let household = self
            .household
            .as_ref()
            .ok_or_else(|| fail(RejectReason::NotPaired))?;
        let roster = household.roster();
        if header.household_id != roster.household_id {
            return Err(fail(RejectReason::WrongHousehold));
        }
        let sender = match roster.member(header.sender) {
            None => return Err(fail(RejectReason::UnknownSender)),
            Some(m) if !m.is_approved() => return Err(fail(RejectReason::SenderBlocked)),
            Some(m) => m.public_identity(),
        };
        if header.recipient_index(self.device_id()).is_none() {
            return Err(fail(RejectReason::NotARecipient));
        }
        if self.seen.refuses(header.message_id, header.created_at_ms)
            || self.queue.iter().any(|m| m.message_id == header.message_id)
        {
            return Err(fail(RejectReason::Replayed));
        }
        if header.media_type != MediaType::OggOpus {
            return Err(fail(RejectReason::WrongMediaType));
        }
        let keys = self
            .roster_keys()
            .ok_or_else(|| fail(RejectReason::Undecryptable))?;
        let opened = open(bytes, keys, &sender).map_err(|e| {
            fail(match e {
                OpenError::Malformed(_) => RejectReason::Malformed,
                OpenError::WrongSender | OpenError::BadSignature => RejectReason::BadSignature,
                OpenError::NotARecipient => RejectReason::NotARecipient,
                OpenError::WrongHousehold => RejectReason::WrongHousehold,
                OpenError::SenderNotApproved => RejectReason::UnknownSender,
                _ => RejectReason::Undecryptable,
            })
        })?;
        let created_at_ms = opened.header.created_at_ms;
        if validate_ogg_opus(&opened.payload, &RECEIVE_LIMITS).is_err() {
            return Err(Rejection {
                message_id: id,
                reason: RejectReason::BadMedia,
                authentic_at: Some(created_at_ms),
            });
        }
        if self.queue.len() >= MAX_QUEUED_MESSAGES {
            return Err(fail(RejectReason::QueueFull));
        }
        Ok(Queued {
            message_id: opened.header.message_id,
            sender: opened.header.sender,
            created_at_ms,
            held: roster.settings.parent_approves_before_play,
            ogg: opened.payload,
        })
    }

    fn approval(
        &mut self,
        message_id: MessageId,
        approver: DeviceId,
        signature: &[u8; 64],
        out: &mut Vec<Action>,
    ) {
        let refused = |reason| Action::Report(Report::ApprovalRefused { message_id, reason });
        let Some(household) = &self.household else {
            out.push(refused(ApprovalRefusal::NotPaired));
            return;
        };
        let roster = household.roster();
        let Some(index) = self
            .queue
            .iter()
            .position(|m| m.message_id == message_id && m.held)
        else {
            out.push(refused(ApprovalRefusal::UnknownMessage));
            return;
        };
        let Some(member) = roster
            .approved_member(approver)
            .filter(|m| matches!(m.role, Role::Owner | Role::Guardian))
        else {
            out.push(refused(ApprovalRefusal::NotApprover));
            return;
        };
        if !verify_approval(
            &member.ed25519_pub,
            roster.household_id,
            message_id,
            approver,
            signature,
        ) {
            out.push(refused(ApprovalRefusal::BadSignature));
            return;
        }
        self.queue[index].held = false;
        self.persist(out);
    }

    fn server_error(&mut self, code: ServerError, out: &mut Vec<Action>) {
        out.push(Action::Report(Report::ServerError { code }));
        match code {
            ServerError::AuthFailed => {
                self.link.authenticated = false;
                if self.pending_keys.is_some() {
                    // The server already took the new key (its ack was lost): use it from the
                    // next challenge on.
                    self.promote_pending_keys(out);
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

    // ----- keys -----

    /// Records when the current keys were made, once a wall clock is known.
    fn note_key_birth(&mut self) -> bool {
        match self.clock.wall_ms() {
            Some(wall) if self.keys_created_unix_ms == 0 => {
                self.keys_created_unix_ms = wall;
                true
            }
            _ => false,
        }
    }

    fn maybe_rotate(&mut self, rng: &mut impl CryptoRng, out: &mut Vec<Action>) {
        let due = self.clock.wall_ms().is_some_and(|wall| {
            self.keys_created_unix_ms != 0
                && wall.saturating_sub(self.keys_created_unix_ms) >= KEY_ROTATION_INTERVAL_MS
        });
        // One rotation at a time, and not while the roster still lists retired keys: those
        // are the only keys senders can encrypt to until a parent re-signs the roster.
        if !due
            || !self.link.authenticated
            || self.household.is_none()
            || self.pending_keys.is_some()
            || self.retired_keys.is_some()
            || self.clock.now_ms < self.rotation_not_before_ms
        {
            return;
        }
        self.pending_keys = Some(DeviceKeys::generate(rng, self.device_id()));
        // Saved before it is sent: if the server takes the new key, the toy must have it.
        self.persist(out);
        self.send_rotation(out);
    }

    fn send_rotation(&mut self, out: &mut Vec<Action>) {
        let (Some(new), Some(nonce)) = (&self.pending_keys, self.link.nonce) else {
            return;
        };
        let new_identity = new.public();
        let old = self.keys.public();
        let signature_by_old_key = sign(
            &self.keys,
            &rotation_signature_input(&nonce, &old, &new_identity),
        );
        self.send_now(
            &Frame::RotateKey {
                new_identity,
                signature_by_old_key,
            },
            out,
        );
    }

    fn promote_pending_keys(&mut self, out: &mut Vec<Action>) {
        let Some(new) = self.pending_keys.take() else {
            return;
        };
        let old = core::mem::replace(&mut self.keys, new);
        let roster_lists_old = self.household.as_ref().is_some_and(|h| {
            h.roster()
                .member(old.device_id())
                .is_some_and(|m| m.public_identity() == old.public())
        });
        // Senders keep encrypting to the keys in the roster until an owner signs one with
        // the new keys; until then the old ones open messages (and sign recordings).
        self.retired_keys = roster_lists_old.then_some(old);
        self.keys_created_unix_ms = self.clock.wall_ms().unwrap_or(0);
        self.persist(out);
    }

    /// The key pair the roster lists for this toy: the one senders encrypt to and
    /// recipients check its signatures with.
    fn roster_keys(&self) -> Option<&DeviceKeys> {
        let listed = self.household.as_ref()?.roster().member(self.device_id())?;
        let listed = listed.public_identity();
        [Some(&self.keys), self.retired_keys.as_ref()]
            .into_iter()
            .flatten()
            .find(|k| k.public() == listed)
    }

    // ----- playing, light, time -----

    fn play(&mut self, index: usize, out: &mut Vec<Action>) {
        let message = self.queue.remove(index);
        let message_id = message.message_id;
        out.push(Action::PlayAudio {
            message_id,
            ogg: message.ogg,
        });
        self.persist(out);
        self.send_or_queue(&Frame::Played { message_id }, out);
    }

    fn wanted_heart(&self) -> Heart {
        if self.recording.is_some() || self.pairing.is_some() {
            Heart::On
        } else if self.queue.iter().any(|m| !m.held) && !self.in_quiet_hours() {
            Heart::Blink
        } else {
            Heart::Off
        }
    }

    /// Whether the household's quiet hours hold now, in its own time zone. Without a wall
    /// clock the toy cannot tell and does not hold messages back.
    fn in_quiet_hours(&self) -> bool {
        let Some(household) = &self.household else {
            return false;
        };
        let settings = household.roster().settings;
        let (Some(quiet), Some(wall)) = (settings.quiet_hours, self.clock.wall_ms()) else {
            return false;
        };
        let minutes = i64::try_from(wall / MS_PER_MINUTE).unwrap_or(i64::MAX)
            + i64::from(settings.timezone_offset_minutes);
        // rem_euclid of a day is within 0..1440, so it fits in u16.
        let minute = minutes.rem_euclid(MINUTES_PER_DAY) as u16;
        if quiet.start_minute < quiet.end_minute {
            (quiet.start_minute..quiet.end_minute).contains(&minute)
        } else {
            minute >= quiet.start_minute || minute < quiet.end_minute
        }
    }

    // ----- output -----

    fn persist(&mut self, out: &mut Vec<Action>) {
        self.unsaved = false;
        out.push(Action::Persist(self.state_blob()));
    }

    /// For the handshake frames, which make sense only on the current connection.
    fn send_now(&self, frame: &Frame<'_>, out: &mut Vec<Action>) {
        if self.link.connected {
            if let Ok(bytes) = frame.encode() {
                out.push(Action::SendFrame(bytes));
            }
        }
    }

    /// For acknowledgements: sent at once when authenticated, otherwise after the next `Auth`.
    fn send_or_queue(&mut self, frame: &Frame<'_>, out: &mut Vec<Action>) {
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

struct Rejection {
    message_id: Option<MessageId>,
    reason: RejectReason,
    /// Set when the message was proven authentic (its id is then used up).
    authentic_at: Option<u64>,
}

impl Rejection {
    fn new(message_id: Option<MessageId>, reason: RejectReason) -> Self {
        Self {
            message_id,
            reason,
            authentic_at: None,
        }
    }
}

fn ignored(frame_type: FrameType, out: &mut Vec<Action>) {
    out.push(Action::Report(Report::FrameIgnored { frame_type }));
}

fn lists_toy(roster: &Roster, identity: &PublicIdentity) -> bool {
    roster
        .approved_member(identity.device_id)
        .is_some_and(|m| m.role == Role::Toy && m.public_identity() == *identity)
}

fn roster_refusal(e: RosterError) -> RosterRefusal {
    match e {
        RosterError::NotGenesis | RosterError::SignerNotOwner => RosterRefusal::SignerNotOwner,
        RosterError::HouseholdMismatch => RosterRefusal::HouseholdMismatch,
        RosterError::StaleVersion => RosterRefusal::StaleVersion,
        RosterError::PreviousDigestMismatch => RosterRefusal::PreviousDigestMismatch,
        RosterError::BadSignature => RosterRefusal::BadSignature,
    }
}
