//! The toy behind the channel of toy protocol version 3 (`pawpost-channel`): every frame
//! the [`Toy`] sends or receives travels as an encrypted, padded record, whatever carries
//! the bytes (WebSocket, `pawpost relay` over a UART, a phone over Bluetooth).
//!
//! [`ChannelToy`] wraps a [`Toy`] and its channel keys: the toy's Noise static key, and the
//! server's static key once pinned. On [`Event::Connected`] it starts a handshake (Noise XX
//! when it has no pinned key, IK with the pinned key otherwise) and sends the toy's frames
//! only once the channel stands. A message that does not belong to the handshake, a record
//! that does not decrypt (injected, altered, replayed, reordered) or a handshake that does
//! not authenticate ends the connection: the toy sees no frame from it and is told the
//! connection ended (`Event::Disconnected`: it keeps what it would send for the next one
//! and drops a half-received delivery), and the shell is asked to reconnect after a wait
//! ([`ReconnectReason::AuthRefused`]).
//!
//! **Pairing.** The `ConfirmPairing` number the toy speaks is the channel's pairing number,
//! computed by the toy from its own side of the handshake, whatever number the frame
//! carries; its `PairConfirmed` carries the same number. When the toy accepts `Paired` on
//! that channel it pins the server's key. A toy that leaves its household (or is reset)
//! forgets the pinned key; a reset also makes a new channel key.
//!
//! **State.** [`ChannelToy::state_blob`] (and every [`Action::Persist`] it returns) is
//! version [`CHANNEL_STATE_VERSION`]:
//!
//! ```text
//! version (1) = 3
//! channel key: secret (32)
//! pinned server key: flag (1) [key (32)]
//! the toy's state, version 2 (crate::state)
//! ```
//!
//! A version 1 or 2 blob still restores: the toy gets a new channel key and no pinned
//! server key. Such a toy, if paired, pins the key of the first server it completes a
//! pairing handshake (XX) with: the trust it placed in the link before version 3.

use alloc::boxed::Box;
use alloc::vec::Vec;

use pawpost_channel::{
    Channel, ChannelError, PublicKey, StaticKey, ToyPairing, ToyResume, KEY_LEN,
    PAIRING_NUMBER_DIGITS,
};
use pawpost_crypto::rand_core::CryptoRng;
use pawpost_crypto::{DeviceId, HouseholdId, MessageId};
use pawpost_protocol::{ConfirmationNumber, Frame, FrameType};
use zeroize::Zeroizing;

use crate::state::{StateBlob, StateError};
use crate::{Action, AudioInFrame, Event, ReconnectReason, Toy};

/// Version byte of a [`ChannelToy`]'s state blob.
pub const CHANNEL_STATE_VERSION: u8 = 3;

/// The channel of the current connection. The handshake states and the channel are
/// boxed: on a chip a [`ChannelToy`] is moved whole through the stack (made, restored,
/// given its firmware), and each move of a handshake state held by value cost its size
/// in every frame it passed through.
enum Link {
    /// No connection.
    Down,
    /// Pairing handshake sent, waiting for the server's reply.
    Pairing(Box<ToyPairing>),
    /// Paired toy's handshake sent, waiting for the server's reply.
    Resuming(Box<ToyResume>),
    /// The channel stands.
    Up {
        channel: Box<Channel>,
        server_key: PublicKey,
        pairing_number: Option<[u8; PAIRING_NUMBER_DIGITS]>,
    },
    /// The channel failed: nothing more is read or sent until the next connection.
    Broken,
}

/// A [`Toy`] that speaks to the server only through the version 3 channel.
pub struct ChannelToy {
    /// Boxed, for the same reason as the [`Link`]: the toy's keys and rosters are
    /// kilobytes, kept once on the heap instead of copied at every move.
    toy: Box<Toy>,
    channel_key: StaticKey,
    server_key: Option<PublicKey>,
    link: Link,
    /// Frames the toy sent before the channel stood, sent once it does.
    waiting: Vec<Vec<u8>>,
    /// The last error that ended a channel, for the shell's log.
    last_error: Option<ChannelError>,
    /// A channel failed during the current event: the toy is told the connection ended.
    failed: bool,
    /// The shell is to be asked for a new connection at the end of the current event.
    reconnect: bool,
    /// The last `UploadAck` received.
    last_upload_ack: Option<MessageId>,
    /// The type of the last frame opened from a record, until taken.
    opened: Option<FrameType>,
}

fn random_key(rng: &mut impl CryptoRng) -> StaticKey {
    let mut secret = Zeroizing::new([0u8; KEY_LEN]);
    rng.fill_bytes(secret.as_mut());
    StaticKey::from_secret(*secret)
}

impl ChannelToy {
    /// A brand-new toy (see [`Toy::first_start`]) with a new channel key.
    pub fn first_start(rng: &mut impl CryptoRng) -> Self {
        let toy = Box::new(Toy::first_start(rng));
        Self::with(toy, random_key(rng), None)
    }

    fn with(toy: Box<Toy>, channel_key: StaticKey, server_key: Option<PublicKey>) -> Self {
        Self {
            toy,
            channel_key,
            server_key,
            link: Link::Down,
            waiting: Vec::new(),
            last_error: None,
            failed: false,
            reconnect: false,
            last_upload_ack: None,
            opened: None,
        }
    }

    /// The toy as saved by an [`Action::Persist`]: a version 3 blob, or an older one (a
    /// new channel key is made for it from `rng`, and no server key is pinned).
    pub fn restore(state: &[u8], rng: &mut impl CryptoRng) -> Result<Self, StateError> {
        // The channel's part first, so that the toy is restored in one place, straight
        // into its box (on a chip each `Toy` held on the stack is kilobytes).
        let (keys, toy_state) = match state.first() {
            Some(&CHANNEL_STATE_VERSION) => {
                let rest = &state[1..];
                let secret: Zeroizing<[u8; KEY_LEN]> = Zeroizing::new(
                    rest.get(..KEY_LEN)
                        .and_then(|s| s.try_into().ok())
                        .ok_or(StateError::Truncated)?,
                );
                let (server_key, toy_state) = match rest.get(KEY_LEN) {
                    Some(0) => (None, &rest[KEY_LEN + 1..]),
                    Some(1) => {
                        let key: PublicKey = rest
                            .get(KEY_LEN + 1..2 * KEY_LEN + 1)
                            .and_then(|s| s.try_into().ok())
                            .ok_or(StateError::Truncated)?;
                        (Some(key), &rest[2 * KEY_LEN + 1..])
                    }
                    Some(_) => return Err(StateError::InvalidFlag),
                    None => return Err(StateError::Truncated),
                };
                (Some((secret, server_key)), toy_state)
            }
            _ => (None, state),
        };
        let toy = Box::new(Toy::restore(toy_state)?);
        Ok(match keys {
            Some((secret, server_key)) => {
                Self::with(toy, StaticKey::from_secret(*secret), server_key)
            }
            None => Self::with(toy, random_key(rng), None),
        })
    }

    /// The state to save now; the same bytes an [`Action::Persist`] carries.
    pub fn state_blob(&self) -> StateBlob {
        let toy = self.toy.state_blob();
        let mut bytes = Vec::with_capacity(2 * KEY_LEN + 2 + toy.as_bytes().len());
        bytes.push(CHANNEL_STATE_VERSION);
        bytes.extend_from_slice(self.channel_key.secret());
        match &self.server_key {
            Some(key) => {
                bytes.push(1);
                bytes.extend_from_slice(key);
            }
            None => bytes.push(0),
        }
        bytes.extend_from_slice(toy.as_bytes());
        StateBlob::new(bytes)
    }

    /// The toy inside.
    pub fn toy(&self) -> &Toy {
        &self.toy
    }

    /// The toy running `firmware`, as [`Toy::with_firmware`].
    pub fn with_firmware(mut self, firmware: crate::Firmware, release_keys: Vec<[u8; 32]>) -> Self {
        let toy = *self.toy;
        *self.toy = toy.with_firmware(firmware, release_keys);
        self
    }

    /// The toy with its board's image slot size, as [`Toy::with_update_slot`].
    #[must_use]
    pub fn with_update_slot(mut self, slot_bytes: u32) -> Self {
        let toy = *self.toy;
        *self.toy = toy.with_update_slot(slot_bytes);
        self
    }

    /// The message id of the last `UploadAck` the server sent on the channel, for a shell
    /// that reports which upload was acknowledged (it sees only records).
    pub fn last_upload_ack(&self) -> Option<MessageId> {
        self.last_upload_ack
    }

    /// The type of the frame opened from a record since the last call, if one was (a
    /// shell that sees only records logs what the toy got and how long it took).
    pub fn take_opened_frame_type(&mut self) -> Option<FrameType> {
        self.opened.take()
    }

    /// The server key the toy pinned at pairing, if any.
    pub fn pinned_server_key(&self) -> Option<&PublicKey> {
        self.server_key.as_ref()
    }

    /// The toy's Noise static public key.
    pub fn channel_public_key(&self) -> &PublicKey {
        self.channel_key.public()
    }

    /// Whether the channel of the current connection stands.
    pub fn channel_up(&self) -> bool {
        matches!(self.link, Link::Up { .. })
    }

    /// Why the last channel ended, if one did.
    pub fn last_channel_error(&self) -> Option<ChannelError> {
        self.last_error
    }

    /// Feeds one event, as [`Toy::handle`]; frames to and from the server go through the
    /// channel.
    pub fn handle(&mut self, event: Event<'_>, rng: &mut impl CryptoRng) -> Vec<Action> {
        let household = self.toy.household_id();
        let device = self.toy.device_id();
        let mut out = Vec::new();
        let mut inner = match event {
            Event::Connected => {
                self.waiting.clear();
                self.start(rng, &mut out);
                self.toy.handle(Event::Connected, rng)
            }
            Event::Disconnected => {
                self.link = Link::Down;
                self.waiting.clear();
                self.toy.handle(Event::Disconnected, rng)
            }
            Event::FrameReceived(message) => match self.receive(message, &mut out) {
                Some(frame) => self.toy.handle(Event::FrameReceived(&frame), rng),
                None => Vec::new(),
            },
            other => self.toy.handle(other, rng),
        };
        self.close_if_failed(&mut inner, rng);
        self.finish(household, device, inner, out, rng)
    }

    /// After a channel failed: the toy learns that the connection ended (so that it keeps
    /// what it would send for the next one, and drops a half-received delivery).
    fn close_if_failed(&mut self, inner: &mut Vec<Action>, rng: &mut impl CryptoRng) {
        if core::mem::take(&mut self.failed) {
            inner.extend(self.toy.handle(Event::Disconnected, rng));
        }
    }

    /// As [`Toy::handle_frame_in_place`], for a message from the link that the toy may
    /// overwrite: a record is decrypted where it lies, and a `DeliverChunk` inside it too,
    /// so that on a chip the receive buffer is the only one a chunk takes. The audio's
    /// range is within `message`.
    pub fn handle_frame_in_place(
        &mut self,
        message: &mut [u8],
        rng: &mut impl CryptoRng,
    ) -> (Vec<Action>, Option<AudioInFrame>) {
        let Link::Up {
            channel,
            pairing_number: None,
            ..
        } = &mut self.link
        else {
            // A handshake message, or a record while pairing (its ConfirmPairing number
            // is replaced): the copying path.
            return (self.handle(Event::FrameReceived(message), rng), None);
        };
        let household = self.toy.household_id();
        let device = self.toy.device_id();
        let out = Vec::new();
        match channel.open_in_place(message) {
            Ok(range) => {
                let opened = Frame::decode(&message[range.clone()]);
                self.opened = opened.as_ref().ok().map(Frame::frame_type);
                if let Ok(Frame::UploadAck { message_id }) = opened {
                    self.last_upload_ack = Some(message_id);
                }
                let start = range.start;
                let (inner, audio) = self.toy.handle_frame_in_place(&mut message[range], rng);
                let audio = audio.map(|a| AudioInFrame {
                    range: a.range.start + start..a.range.end + start,
                    ..a
                });
                (self.finish(household, device, inner, out, rng), audio)
            }
            Err(error) => {
                self.fail(error);
                let mut inner = Vec::new();
                self.close_if_failed(&mut inner, rng);
                (self.finish(household, device, inner, out, rng), None)
            }
        }
    }

    /// The toy's actions after the channel's own: frames sealed, saved states with the
    /// channel keys.
    fn finish(
        &mut self,
        household: Option<HouseholdId>,
        device: DeviceId,
        inner: Vec<Action>,
        mut out: Vec<Action>,
        rng: &mut impl CryptoRng,
    ) -> Vec<Action> {
        let changed = self.follow_toy(household, device, rng);
        let mut persisted = false;
        for action in inner {
            match action {
                Action::SendFrame(frame) => self.send(frame, &mut out),
                Action::Persist(_) => {
                    persisted = true;
                    out.push(Action::Persist(self.state_blob()));
                }
                other => out.push(other),
            }
        }
        if changed && !persisted {
            out.push(Action::Persist(self.state_blob()));
        }
        if core::mem::take(&mut self.reconnect) {
            out.push(Action::Reconnect(ReconnectReason::AuthRefused));
        }
        out
    }

    /// Pins, forgets or renews the channel keys after the toy paired, left or was reset.
    /// Returns whether they changed.
    fn follow_toy(
        &mut self,
        household: Option<HouseholdId>,
        device: DeviceId,
        rng: &mut impl CryptoRng,
    ) -> bool {
        if self.toy.device_id() != device {
            // A factory reset: a new toy, with a new channel key and no server.
            self.channel_key = random_key(rng);
            self.server_key = None;
            return true;
        }
        let now = self.toy.household_id();
        if household.is_some() && now.is_none() && self.server_key.is_some() {
            self.server_key = None;
            return true;
        }
        if now.is_some() && self.server_key.is_none() {
            if let Link::Up { server_key, .. } = &self.link {
                self.server_key = Some(*server_key);
                return true;
            }
        }
        false
    }

    fn start(&mut self, rng: &mut impl CryptoRng, out: &mut Vec<Action>) {
        let ephemeral = random_key(rng);
        let mut message = Vec::new();
        let started = match (&self.server_key, self.toy.household_id()) {
            (Some(server_key), Some(_)) => {
                ToyResume::start(&self.channel_key, server_key, &ephemeral, &mut message)
                    .map(|resume| Link::Resuming(Box::new(resume)))
            }
            _ => {
                let mut nonce = Zeroizing::new([0u8; KEY_LEN]);
                rng.fill_bytes(nonce.as_mut());
                ToyPairing::start(&self.channel_key, &ephemeral, *nonce, &mut message)
                    .map(|pairing| Link::Pairing(Box::new(pairing)))
            }
        };
        match started {
            Ok(link) => {
                self.link = link;
                out.push(Action::SendFrame(message));
            }
            Err(error) => self.fail(error),
        }
    }

    /// Ends the channel: nothing more is read or sent on this connection, the toy is told
    /// it ended, and the shell is asked to reconnect after a wait.
    fn fail(&mut self, error: ChannelError) {
        self.link = Link::Broken;
        self.waiting.clear();
        self.last_error = Some(error);
        self.failed = true;
        self.reconnect = true;
    }

    /// The frame inside `message`, if it is the next record of a standing channel; a
    /// handshake reply completes the handshake. Anything else ends the channel.
    fn receive(&mut self, message: &[u8], out: &mut Vec<Action>) -> Option<Vec<u8>> {
        match core::mem::replace(&mut self.link, Link::Broken) {
            Link::Down | Link::Broken => {
                // Nothing is read on a connection whose channel failed or never started.
                self.link = Link::Broken;
                None
            }
            Link::Pairing(pairing) => {
                let mut last = Vec::new();
                match pairing.read_reply(message, &mut last) {
                    Ok(done) => {
                        out.push(Action::SendFrame(last));
                        self.established(
                            Box::new(done.channel),
                            done.peer_key,
                            done.pairing_number,
                            out,
                        );
                    }
                    Err(error) => self.fail(error),
                }
                None
            }
            Link::Resuming(resume) => {
                match resume.read_reply(message) {
                    Ok(done) => self.established(Box::new(done.channel), done.peer_key, None, out),
                    Err(error) => self.fail(error),
                }
                None
            }
            Link::Up {
                mut channel,
                server_key,
                pairing_number,
            } => match channel.open(message) {
                Ok(frame) => {
                    let opened = Frame::decode(&frame);
                    self.opened = opened.as_ref().ok().map(Frame::frame_type);
                    if let Ok(Frame::UploadAck { message_id }) = opened {
                        self.last_upload_ack = Some(message_id);
                    }
                    let frame = match pairing_number {
                        Some(digits) => with_own_number(frame, digits),
                        None => frame,
                    };
                    self.link = Link::Up {
                        channel,
                        server_key,
                        pairing_number,
                    };
                    Some(frame)
                }
                Err(error) => {
                    self.fail(error);
                    None
                }
            },
        }
    }

    fn established(
        &mut self,
        channel: Box<Channel>,
        server_key: PublicKey,
        pairing_number: Option<[u8; PAIRING_NUMBER_DIGITS]>,
        out: &mut Vec<Action>,
    ) {
        self.link = Link::Up {
            channel,
            server_key,
            pairing_number,
        };
        for frame in core::mem::take(&mut self.waiting) {
            self.send(frame, out);
        }
    }

    fn send(&mut self, frame: Vec<u8>, out: &mut Vec<Action>) {
        match &mut self.link {
            Link::Up { channel, .. } => {
                let mut record = Vec::new();
                match channel.seal(&frame, &mut record) {
                    Ok(()) => out.push(Action::SendFrame(record)),
                    // Too large for a record: the toy sends nothing that large (its
                    // uploads and deliveries go in chunks), so this is a bug; the frame
                    // is not sent in the clear.
                    Err(ChannelError::FrameTooLarge) => {
                        self.last_error = Some(ChannelError::FrameTooLarge);
                    }
                    Err(error) => self.fail(error),
                }
            }
            Link::Pairing(_) | Link::Resuming(_) => self.waiting.push(frame),
            // Not connected, or the channel failed: a frame is never sent in the clear.
            Link::Down | Link::Broken => {}
        }
    }
}

/// A `ConfirmPairing` frame with the channel's number in place of the one the server sent;
/// any other frame unchanged.
fn with_own_number(frame: Vec<u8>, digits: [u8; PAIRING_NUMBER_DIGITS]) -> Vec<u8> {
    if let (Ok(Frame::ConfirmPairing { .. }), Some(number)) =
        (Frame::decode(&frame), ConfirmationNumber::new(digits))
    {
        if let Ok(own) = (Frame::ConfirmPairing { number }).encode() {
            return own;
        }
    }
    frame
}
