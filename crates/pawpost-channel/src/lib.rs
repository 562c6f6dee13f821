//! The encrypted, authenticated channel between a toy and the server (toy protocol
//! version 3). Every frame of [`pawpost-protocol`] travels inside it, whatever carries
//! the bytes: the WebSocket, `pawpost relay` over the UART, or a phone over Bluetooth.
//! A relay or a neighbour on the link sees only the channel's messages: two handshake
//! messages (three while pairing), then records of a few fixed sizes.
//!
//! Sans-I/O and `no_std`: the caller gives the randomness (ephemeral keys and the
//! pairing nonce as bytes) and moves the messages; the channel only turns bytes into
//! bytes.
//!
//! # Handshakes
//!
//! | when | Noise pattern | the toy knows beforehand |
//! |---|---|---|
//! | pairing (the toy has no household) | `Noise_XX_25519_AESGCM_SHA256` | nothing: it learns the server's static key and pins it once pairing succeeds |
//! | every later connection | `Noise_IK_25519_AESGCM_SHA256` | the server's static key it pinned |
//!
//! Both mix the prologue [`PROLOGUE`] first. A server that does not hold the private
//! half of the pinned key cannot finish an IK handshake, so nothing but the real server
//! can speak to a paired toy, and no neighbour can read or write a frame.
//!
//! # The pairing number
//!
//! While pairing, the toy commits to a random nonce in its first message (the SHA-256 of
//! [`COMMIT_DOMAIN`] and the nonce), the server answers with a random nonce of its own
//! inside its (encrypted) reply, and the toy reveals its nonce in its last message; the
//! server refuses a nonce that does not match the commitment. Both ends then compute
//! the three-digit pairing number from the handshake hash after the second message and
//! the two nonces ([`pairing_number`]): the toy speaks it and the parent's app shows
//! the server's. A man in the middle runs two handshakes, whose hashes differ; the
//! commitment stops him from trying keys until the two numbers agree by chance, so his
//! chance is one in a thousand per pairing the parent starts, and a mismatch makes the
//! parent say "they don't match".
//!
//! # Records
//!
//! After the handshake every frame is one record: `version || KIND_RECORD || ciphertext`,
//! where the plaintext is `length (u32, big-endian) || frame || zeros` padded to the
//! smallest of [`RECORD_SIZES`] it fits. Noise's counter nonces make a replayed,
//! reordered, dropped, altered or reflected record fail to decrypt, and any failure
//! closes the channel for good: the connection must end.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod channel;
mod handshake;
pub mod suite;

pub use channel::{record_size, Channel};
pub use handshake::{
    accept, pairing_number, Accepted, Established, ServerPairing, ToyPairing, ToyResume,
};

use zeroize::{Zeroize, ZeroizeOnDrop};

/// The first byte of every channel message: toy protocol version 3. A version 1 or 2
/// frame starts with 1 instead, so the server tells the two apart from the first byte.
pub const CHANNEL_VERSION: u8 = 3;
/// Mixed into every handshake, so that no other Noise protocol's transcript is ours.
pub const PROLOGUE: &[u8] = b"pawpost/v3/toy-channel";
/// The toy's commitment to its pairing nonce is SHA-256 of this and the nonce.
pub const COMMIT_DOMAIN: &[u8] = b"pawpost/v3/pairing-commit";
/// The pairing number is derived from SHA-256 of this, the handshake hash and the nonces.
pub const NUMBER_DOMAIN: &[u8] = b"pawpost/v3/pairing-number";

/// Pairing, message 1 (toy → server): `e` and the toy's commitment.
pub const KIND_PAIR_1: u8 = 0x01;
/// Pairing, message 2 (server → toy): `e, ee, s, es` and the server's nonce.
pub const KIND_PAIR_2: u8 = 0x02;
/// Pairing, message 3 (toy → server): `s, se` and the toy's nonce.
pub const KIND_PAIR_3: u8 = 0x03;
/// A paired toy's connection, message 1 (toy → server): `e, es, s, ss`.
pub const KIND_RESUME_1: u8 = 0x11;
/// A paired toy's connection, message 2 (server → toy): `e, ee, se`.
pub const KIND_RESUME_2: u8 = 0x12;
/// One frame, encrypted and padded.
pub const KIND_RECORD: u8 = 0x20;

/// The version and kind bytes before every message's Noise bytes.
pub const MESSAGE_HEADER_LEN: usize = 2;
/// A record's plaintext is padded to the smallest of these (bytes, the length prefix
/// included), so that its size tells a neighbour only which of four sizes a frame fits:
/// small control frames, a roster or a delivery's start, and a chunk (a `DeliverChunk`,
/// an `UploadChunk` or a `Names` frame, each at most about 16.4 KB).
pub const RECORD_SIZES: [usize; 4] = [256, 1_024, 8_448, 17_408];
/// The largest frame a record carries.
pub const MAX_RECORD_FRAME_LEN: usize = RECORD_SIZES[RECORD_SIZES.len() - 1] - LENGTH_PREFIX_LEN;
/// AES-GCM's tag after every encrypted part.
pub const TAG_LEN: usize = 16;
/// The largest message the channel sends or accepts (a full record).
pub const MAX_MESSAGE_LEN: usize =
    MESSAGE_HEADER_LEN + RECORD_SIZES[RECORD_SIZES.len() - 1] + TAG_LEN;
/// Digits of the pairing number.
pub const PAIRING_NUMBER_DIGITS: usize = 3;
/// Bytes of a public key, a private key and a nonce.
pub const KEY_LEN: usize = 32;

const LENGTH_PREFIX_LEN: usize = 4;

/// A Noise static or ephemeral public key (X25519).
pub type PublicKey = [u8; KEY_LEN];

/// An X25519 private key with its public half: a toy's or the server's static key, or
/// an ephemeral key made for one handshake. Erased when dropped.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct StaticKey {
    secret: [u8; KEY_LEN],
    #[zeroize(skip)]
    public: PublicKey,
}

impl StaticKey {
    /// The key whose private half is `secret` (32 random bytes, clamped by X25519).
    pub fn from_secret(secret: [u8; KEY_LEN]) -> Self {
        let public =
            x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(secret)).to_bytes();
        Self { secret, public }
    }

    /// The private half, to be saved by its owner (the toy's state, the server's secrets).
    pub fn secret(&self) -> &[u8; KEY_LEN] {
        &self.secret
    }

    /// The public half.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }
}

impl core::fmt::Debug for StaticKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StaticKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// Why the channel refused a message. Every error ends the channel: the connection
/// must be closed and made again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelError {
    /// The message is shorter than its header, or its first byte is not
    /// [`CHANNEL_VERSION`]. A toy or server that speaks only versions 1 and 2 sent it.
    NotVersion3,
    /// The message is not the one expected now (a record during the handshake, a
    /// handshake message afterwards, or one meant for the other direction).
    UnexpectedMessage,
    /// The message is longer than [`MAX_MESSAGE_LEN`] or shorter than its parts.
    WrongLength,
    /// The handshake did not authenticate: someone other than the pinned server
    /// answered, the bytes were altered, or the peer's key is not valid.
    HandshakeFailed,
    /// The toy's nonce does not match the commitment of its first pairing message.
    CommitmentMismatch,
    /// A record did not decrypt: altered, replayed, reordered, injected or reflected.
    RecordRefused,
    /// A record decrypted but its length prefix or padding is wrong.
    BadPadding,
    /// A frame larger than [`MAX_RECORD_FRAME_LEN`] cannot be sent.
    FrameTooLarge,
    /// The channel already failed once (or its counter ran out) and carries nothing more.
    Closed,
}

impl ChannelError {
    /// A stable name for logs and tests.
    pub fn code(self) -> &'static str {
        match self {
            Self::NotVersion3 => "not_version_3",
            Self::UnexpectedMessage => "unexpected_message",
            Self::WrongLength => "wrong_length",
            Self::HandshakeFailed => "handshake_failed",
            Self::CommitmentMismatch => "commitment_mismatch",
            Self::RecordRefused => "record_refused",
            Self::BadPadding => "bad_padding",
            Self::FrameTooLarge => "frame_too_large",
            Self::Closed => "closed",
        }
    }
}

impl core::fmt::Display for ChannelError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::NotVersion3 => {
                "the peer does not speak toy protocol version 3; update it, then connect again"
            }
            Self::UnexpectedMessage => {
                "a channel message arrived out of turn; close the connection and connect again"
            }
            Self::WrongLength => {
                "a channel message has the wrong length; close the connection and connect again"
            }
            Self::HandshakeFailed => {
                "the handshake did not authenticate (not the server the toy paired with, or \
                 the link altered it); close the connection and connect again"
            }
            Self::CommitmentMismatch => {
                "the toy's pairing nonce does not match its commitment; start pairing again"
            }
            Self::RecordRefused => {
                "a record did not decrypt (altered, replayed or injected on the link); close \
                 the connection and connect again"
            }
            Self::BadPadding => {
                "a record's padding is wrong; close the connection and connect again"
            }
            Self::FrameTooLarge => {
                "the frame is larger than a record carries; send it in chunks (protocol \
                 version 2 streaming)"
            }
            Self::Closed => "the channel failed before and carries nothing more; connect again",
        })
    }
}

impl core::error::Error for ChannelError {}

/// The kind byte of a channel message, after checking its version byte.
pub fn message_kind(message: &[u8]) -> Result<u8, ChannelError> {
    match message {
        [CHANNEL_VERSION, kind, ..] => Ok(*kind),
        _ => Err(ChannelError::NotVersion3),
    }
}
