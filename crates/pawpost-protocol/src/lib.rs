//! The toy protocol: the frames the toy and the server exchange, and the byte strings signed
//! in it. Shared by the toy (`pawpost-toy`), the server, the simulator and the firmware, so
//! that each encodes and checks them the same way; it holds no state machine and no media
//! code.
//!
//! - [`Frame`]: every frame of the toy protocol; strict decoding from borrowed bytes, small
//!   `Copy` errors, and the limits each field is held to ([`MAX_ENVELOPE_LEN`] and friends).
//! - [`signing`]: the byte strings signed in the protocol (auth, pairing, key rotation,
//!   parent approval, leaving a household), their signers and their verifiers.
//! - [`websocket`]: the server's reading of a toy's WebSocket frames, sans I/O.
//!
//! `docs/TOY-PROTOCOL.md` specifies the byte layouts and what each check defends against.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod frame;
pub mod signing;
#[cfg(feature = "testing")]
pub mod testing;
pub mod websocket;

pub use frame::UPDATE_CHUNK_BYTES;
pub use frame::{
    frame_len, ConfirmationNumber, Frame, FrameError, FrameType, PairingCode, RejectReason,
    RosterRefusal, ServerError, CONFIRMATION_DIGITS, FRAME_HEADER_LEN, FRAME_SIGNATURE_LEN,
    MAX_CHUNK_BYTES, MAX_ENVELOPE_LEN, MAX_ENVELOPE_PREFIX_LEN, MAX_FRAME_LEN,
    MAX_NAMES_ENVELOPE_LEN, MAX_SIGNED_ROSTER_LEN, NONCE_LEN, PAIRING_CODE_DIGITS,
    PROTOCOL_VERSION, STREAMING_HELLO,
};
pub use pawpost_crypto::{DeviceId, HouseholdId, MessageId, PublicIdentity};
pub use signing::{
    approval_signature_input, auth_signature_input, leave_signature_input,
    pair_request_signature_input, rotation_signature_input,
};
