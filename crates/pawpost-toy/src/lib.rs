//! The pawpost toy: its logic as a sans-I/O state machine. The wire protocol it speaks with
//! the server is `pawpost-protocol`'s, re-exported here for the toy's shells.
//!
//! - [`Toy`]: fed with [`Event`]s (paw presses, frames, timer ticks, recordings), returns
//!   [`Action`]s (send a frame, play, record, light the heart, speak, persist, report). It
//!   does no I/O, reads no clock and draws randomness only from the `CryptoRng` passed in.
//! - [`Frame`]: every frame of the toy protocol, encoded and decoded the same way by the toy
//!   and the server (from `pawpost-protocol`).
//! - [`signing`]: the byte strings signed in the protocol (auth, pairing, key rotation,
//!   parent approval), their signers and verifiers (from `pawpost-protocol`).
//!
//! The toy plays only messages whose envelope opens for it, signed by an approved member of
//! its household's roster, never seen before, and valid Ogg Opus of at most 30 s. It
//! accepts only rosters that chain from the one it holds and are signed by an owner it has
//! pinned. The microphone starts only from a physical short paw press: no frame can start
//! it. Only holding the paw for [`FACTORY_RESET_HOLD_MS`] resets the toy: no frame can.
//! [`reconnect_wait_ms`] is the wait between connection attempts, the same for every shell. `docs/TOY-PROTOCOL.md` specifies the frames and what each check defends against.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod backoff;
mod link;
mod state;
mod toy;

pub use backoff::{
    reconnect_wait_ms, reconnect_wait_range_ms, RECONNECT_INITIAL_MS, RECONNECT_MAX_MS,
};
pub use link::{ChannelToy, CHANNEL_STATE_VERSION};
/// The channel itself, for a server, a relay's tests or a test's man in the middle.
pub use pawpost_channel as channel;
pub use pawpost_channel::ChannelError;
/// The largest message of the channel on a link (a padded record of the largest size, or a
/// handshake message): what a relay or a toy's reassembler must carry whole.
pub use pawpost_channel::MAX_MESSAGE_LEN as MAX_CHANNEL_MESSAGE_LEN;
pub use pawpost_crypto::{DeviceId, HouseholdId, MessageId, PublicIdentity, SafetyNumber};
pub use pawpost_protocol::signing;
pub use pawpost_protocol::UPDATE_CHUNK_BYTES;
pub use pawpost_protocol::{
    approval_signature_input, auth_signature_input, leave_signature_input,
    pair_request_signature_input, rotation_signature_input,
};
pub use pawpost_protocol::{
    frame_len, ConfirmationNumber, Frame, FrameError, FrameType, PairingCode, RejectReason,
    RosterRefusal, ServerError, CONFIRMATION_DIGITS, FRAME_HEADER_LEN, FRAME_SIGNATURE_LEN,
    MAX_ENVELOPE_LEN, MAX_FRAME_LEN, MAX_NAMES_ENVELOPE_LEN, MAX_SIGNED_ROSTER_LEN, NONCE_LEN,
    PAIRING_CODE_DIGITS, PROTOCOL_VERSION,
};
pub use pawpost_protocol::{MAX_CHUNK_BYTES, MAX_ENVELOPE_PREFIX_LEN, STREAMING_HELLO};
pub use state::{StateBlob, StateError, STATE_VERSION};
pub use toy::AudioInFrame;
pub use toy::{
    parse_names, Action, ApprovalRefusal, Event, Firmware, Heart, LeaveRefusal, NamesRefusal,
    Prompt, ReconnectReason, RecordingProblem, Report, SpokenName, Toy, AUTH_SETTLED_MS,
    FACTORY_RESET_HOLD_MS, KEY_ROTATION_INTERVAL_MS, MAX_MESSAGE_MS, MAX_OUTBOX_FRAMES,
    MAX_PENDING_UPLOADS, MAX_QUEUED_MESSAGES, MAX_RECORDING_BYTES, MAX_RECORDING_MS, MAX_SEEN_IDS,
    MAX_SPOKEN_NAMES, MAX_SPOKEN_NAME_LEN, PAIRING_WINDOW_MS, RECEIVE_WINDOW_CHUNKS,
    RECORDING_GRACE_MS, ROTATION_RETRY_MS, UPLOAD_WINDOW_CHUNKS,
};
pub use toy::{UpdateRefusal, MAX_UPDATE_IMAGE_BYTES, UPDATE_WINDOW_CHUNKS};
