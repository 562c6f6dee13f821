//! The toy protocol's frames: what the toy and the server say to each other over the
//! WebSocket (or over BLE through a parent's phone, which relays them unread).
//!
//! Every frame is `version (1) || type (1) || body length (u32, big-endian) || body`. The
//! decoder is strict: a known version, a known type, a body exactly as long as announced,
//! every field within its named limit, known codes only, and nothing after the last field.
//! The byte layouts are in `docs/TOY-PROTOCOL.md`.

use alloc::vec::Vec;
use core::fmt;

use pawpost_crypto::{DeviceId, HouseholdId, MessageId, PublicIdentity, PUBLIC_IDENTITY_LEN};

/// The protocol version byte that starts every frame.
pub const PROTOCOL_VERSION: u8 = 1;
/// Bytes before the body: version, type and body length.
pub const FRAME_HEADER_LEN: usize = 1 + 1 + 4;
/// Largest frame, header included (1 MiB). A 30 s voice message at Opus's highest voice
/// bitrates is far below it.
pub const MAX_FRAME_LEN: usize = 1024 * 1024;
/// Largest envelope a `Deliver` or `Upload` frame carries: what is left of a frame after
/// its header and the envelope's length field.
pub const MAX_ENVELOPE_LEN: usize = MAX_FRAME_LEN - FRAME_HEADER_LEN - 4;
/// Largest signed roster a frame carries: 64 members of 98 bytes, the roster's fixed part
/// and the signature fit well within it.
pub const MAX_SIGNED_ROSTER_LEN: usize = 8 * 1024;
/// Largest sealed names record a `Names` frame carries: 32 names of at most 48 bytes, the
/// envelope's header and a recipient entry for each of 64 devices fit within it.
pub const MAX_NAMES_ENVELOPE_LEN: usize = 16 * 1024;
/// Largest envelope prefix (header, digest, signature, wrapped keys) a `DeliverStart`
/// carries: the prefix of an envelope for the most recipients an envelope may name.
pub const MAX_ENVELOPE_PREFIX_LEN: usize = pawpost_crypto::HEADER_FIXED_LEN
    + pawpost_crypto::PAYLOAD_DIGEST_LEN
    + pawpost_crypto::SIGNATURE_LEN
    + pawpost_crypto::MAX_RECIPIENTS * (16 + pawpost_crypto::WRAPPED_KEY_LEN);
/// Largest piece of ciphertext a `DeliverChunk` or an `UploadChunk` carries: one envelope
/// chunk and its tag, so that a toy holds at most this much of a message in memory.
pub const MAX_CHUNK_BYTES: usize = pawpost_crypto::CHUNK_SIZE + pawpost_crypto::TAG_LEN;
/// The message id of the `ChunkRequest` a toy sends after `Auth` to say that it takes
/// deliveries in chunks (protocol version 2); no message has it.
pub const STREAMING_HELLO: MessageId = MessageId([0; 16]);
/// Digits in a pairing code.
pub const PAIRING_CODE_DIGITS: usize = 6;
/// Length of an Ed25519 signature in a frame.
pub const FRAME_SIGNATURE_LEN: usize = 64;
/// Length of a challenge nonce.
pub const NONCE_LEN: usize = 32;
/// Bytes of a software image in every `UpdateChunk` but the last: a flash page multiple
/// small enough for the toy to hold two in memory.
pub const UPDATE_CHUNK_BYTES: usize = 4096;

/// Why bytes are not a valid frame. Small and `Copy`, so that a toy can match on it without
/// allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameError {
    /// The bytes end before the frame does.
    Truncated,
    /// Bytes follow the frame's last field (or the body announced is shorter than the input).
    TrailingBytes,
    /// The version byte is not [`PROTOCOL_VERSION`].
    UnsupportedVersion,
    /// The type byte names no frame.
    UnknownType,
    /// The frame is longer than [`MAX_FRAME_LEN`].
    FrameTooLarge,
    /// A variable-length field is longer than its limit.
    FieldTooLong,
    /// A reason or error code is not one this version defines.
    UnknownCode,
    /// A public key is not a valid Ed25519 point, or a weak one.
    InvalidKey,
    /// A pairing code digit is not 0 to 9.
    InvalidPairingCode,
}

impl FrameError {
    /// Stable snake_case name, for logs and other implementations' tests.
    pub const fn code(self) -> &'static str {
        match self {
            Self::Truncated => "truncated",
            Self::TrailingBytes => "trailing_bytes",
            Self::UnsupportedVersion => "unsupported_version",
            Self::UnknownType => "unknown_type",
            Self::FrameTooLarge => "frame_too_large",
            Self::FieldTooLong => "field_too_long",
            Self::UnknownCode => "unknown_code",
            Self::InvalidKey => "invalid_key",
            Self::InvalidPairingCode => "invalid_pairing_code",
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Truncated => "the frame is cut short",
            Self::TrailingBytes => "bytes follow the end of the frame",
            Self::UnsupportedVersion => "unsupported toy protocol version",
            Self::UnknownType => "unknown frame type",
            Self::FrameTooLarge => "frame larger than 1 MiB",
            Self::FieldTooLong => "a field is longer than its limit",
            Self::UnknownCode => "unknown reason or error code",
            Self::InvalidKey => "invalid public key",
            Self::InvalidPairingCode => "a pairing code digit is not 0 to 9",
        })
    }
}

/// Defines a `u8`-coded enum with strict decoding and a stable name per code.
macro_rules! wire_codes {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $value:literal => $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum $name {
            $($(#[$vdoc])* $variant = $value,)+
        }

        impl $name {
            /// Every code, in wire order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The wire byte.
            pub const fn to_u8(self) -> u8 {
                self as u8
            }

            /// Strict decode of the wire byte.
            pub const fn from_u8(value: u8) -> Option<Self> {
                match value {
                    $($value => Some(Self::$variant),)+
                    _ => None,
                }
            }

            /// Stable snake_case name.
            pub const fn code(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }
    };
}

wire_codes!(
    /// Why the toy refused a delivered message, as reported to the server in `Rejected`.
    RejectReason {
        /// The envelope does not parse.
        Malformed = 1 => "malformed",
        /// The envelope belongs to another household than the toy's roster.
        WrongHousehold = 2 => "wrong_household",
        /// The sender is not in the toy's roster (never added, or removed).
        UnknownSender = 3 => "unknown_sender",
        /// The sender is in the roster but blocked.
        SenderBlocked = 4 => "sender_blocked",
        /// The sender's signature does not verify: forged or altered.
        BadSignature = 5 => "bad_signature",
        /// The toy is not among the recipients.
        NotARecipient = 6 => "not_a_recipient",
        /// The toy already accepted this message id (or one too old to tell).
        Replayed = 7 => "replayed",
        /// The payload is not a voice message.
        WrongMediaType = 8 => "wrong_media_type",
        /// The toy's key or a chunk does not decrypt.
        Undecryptable = 9 => "undecryptable",
        /// The audio is not valid Ogg Opus within the toy's limits.
        BadMedia = 10 => "bad_media",
        /// The toy's queue is full; deliver again later.
        QueueFull = 11 => "queue_full",
        /// The toy has no household yet.
        NotPaired = 12 => "not_paired",
    }
);

wire_codes!(
    /// Why the toy refused a roster, as reported to the server in `RosterRejected`.
    RosterRefusal {
        /// The signed roster does not parse.
        Malformed = 1 => "malformed",
        /// The roster is for another household.
        HouseholdMismatch = 2 => "household_mismatch",
        /// Its version is not above the toy's: a replay or a rollback.
        StaleVersion = 3 => "stale_version",
        /// It does not chain to the toy's current roster.
        PreviousDigestMismatch = 4 => "previous_digest_mismatch",
        /// Its signer is not an approved owner where it had to be.
        SignerNotOwner = 5 => "signer_not_owner",
        /// The signature does not verify.
        BadSignature = 6 => "bad_signature",
        /// Signed by an owner whose key the toy never pinned.
        SignerNotPinned = 7 => "signer_not_pinned",
        /// The roster does not list this toy with the keys it holds.
        ToyKeyMismatch = 8 => "toy_key_mismatch",
        /// The toy was not pairing, or is not paired.
        Unexpected = 9 => "unexpected",
    }
);

wire_codes!(
    /// What went wrong on the server's side, sent to the toy in `Error`.
    ServerError {
        /// The `Auth` signature did not verify against the key the server holds.
        AuthFailed = 1 => "auth_failed",
        /// The pairing code expired, or its confirmation came too late or for another claim.
        PairingExpired = 2 => "pairing_expired",
        /// The server refused to start pairing (rate limit, toy already known).
        PairingRefused = 3 => "pairing_refused",
        /// The server refused an upload (too large, not authenticated, rate limit).
        UploadRefused = 4 => "upload_refused",
        /// The server refused a key rotation.
        RotateRefused = 5 => "rotate_refused",
    }
);

/// A one-time pairing code: six digits, each 0 to 9.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PairingCode([u8; PAIRING_CODE_DIGITS]);

impl PairingCode {
    /// The code from its digits, or `None` if one is not 0 to 9.
    pub fn new(digits: [u8; PAIRING_CODE_DIGITS]) -> Option<Self> {
        digits.iter().all(|d| *d <= 9).then_some(Self(digits))
    }

    /// The code whose decimal form, zero-padded to six digits, is `value` (below 1 000 000).
    pub fn from_number(value: u32) -> Option<Self> {
        if value >= 1_000_000 {
            return None;
        }
        let mut digits = [0u8; PAIRING_CODE_DIGITS];
        let mut rest = value;
        for d in digits.iter_mut().rev() {
            // Always below 10.
            *d = (rest % 10) as u8;
            rest /= 10;
        }
        Some(Self(digits))
    }

    /// The six digits, most significant first.
    pub const fn digits(&self) -> [u8; PAIRING_CODE_DIGITS] {
        self.0
    }
}

impl fmt::Display for PairingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in self.0 {
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PairingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PairingCode({self})")
    }
}

/// Digits in a pairing confirmation number.
pub const CONFIRMATION_DIGITS: usize = 3;

/// The short number a toy speaks, and the parent's app shows, to confirm a pairing.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ConfirmationNumber([u8; CONFIRMATION_DIGITS]);

impl ConfirmationNumber {
    /// The number from its digits, or `None` if one is not 0 to 9.
    pub fn new(digits: [u8; CONFIRMATION_DIGITS]) -> Option<Self> {
        digits.iter().all(|d| *d <= 9).then_some(Self(digits))
    }

    /// The number whose decimal form, zero-padded to three digits, is `value` (below 1000).
    pub fn from_number(value: u16) -> Option<Self> {
        if value >= 1000 {
            return None;
        }
        let digit = |d: u16| u8::try_from(d % 10).ok();
        Some(Self([
            digit(value / 100)?,
            digit(value / 10)?,
            digit(value)?,
        ]))
    }

    /// The digits, most significant first.
    pub const fn digits(&self) -> [u8; CONFIRMATION_DIGITS] {
        self.0
    }
}

impl fmt::Display for ConfirmationNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in self.0 {
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// One frame, borrowing its variable-length fields from the bytes it was decoded from (or
/// from the caller, to encode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    // Toy to server.
    /// The toy asks to be paired, proving it holds the keys it presents.
    PairRequest {
        /// The toy's public keys and device id.
        identity: PublicIdentity,
        /// Ed25519 signature by `identity` over [`crate::pair_request_signature_input`].
        signature: [u8; FRAME_SIGNATURE_LEN],
    },
    /// The toy answers the connection's challenge.
    Auth {
        /// Which toy.
        device_id: DeviceId,
        /// The version of the roster the toy holds (0 before pairing), so that the server
        /// knows which `RosterUpdate`s to send.
        roster_version: u64,
        /// Ed25519 signature over [`crate::auth_signature_input`].
        signature: [u8; FRAME_SIGNATURE_LEN],
    },
    /// The toy replaces its key pair; the server answers `RotateAck`.
    RotateKey {
        /// The new public keys (same device id).
        new_identity: PublicIdentity,
        /// Ed25519 signature by the old key over [`crate::rotation_signature_input`].
        signature_by_old_key: [u8; FRAME_SIGNATURE_LEN],
    },
    /// The toy accepted a message (held for approval or ready to play).
    Delivered {
        /// The message.
        message_id: MessageId,
    },
    /// The toy refused a message and will never play it.
    Rejected {
        /// The message (all zeros when the envelope did not parse).
        message_id: MessageId,
        /// Why.
        reason: RejectReason,
    },
    /// The child heard a message: its sender sees "heard".
    Played {
        /// The message.
        message_id: MessageId,
    },
    /// The child's recorded message, sealed for the household's approved members.
    Upload {
        /// An envelope v1.
        envelope: &'a [u8],
    },
    /// The toy refused a roster.
    RosterRejected {
        /// The refused roster's version (0 when it did not parse).
        version: u64,
        /// Why.
        reason: RosterRefusal,
    },
    /// Someone pressed the paw while the toy spoke the confirmation number: the pairing
    /// a parent claimed may complete.
    PairConfirmed {
        /// The number the toy spoke, so that a press confirms only that claim.
        number: ConfirmationNumber,
    },
    /// Flow control of a streamed delivery: the toy holds every chunk before `next_index`
    /// and may receive up to `window` chunks from there. For [`STREAMING_HELLO`] (sent after
    /// `Auth`), it says that the toy takes deliveries in chunks, `window` at a time.
    ChunkRequest {
        /// The message being streamed, or [`STREAMING_HELLO`].
        message_id: MessageId,
        /// The first chunk the toy does not hold yet.
        next_index: u32,
        /// How many chunks from `next_index` the toy has room for (at least 1).
        window: u8,
    },
    /// The toy asks for `window` pieces of [`UPDATE_CHUNK_BYTES`] of the offered software
    /// image, starting at `offset` (docs/UPDATES.md).
    UpdateRequest {
        /// Where the first piece starts in the image.
        offset: u32,
        /// How many pieces from there (at least 1).
        window: u8,
    },
    /// Sent after `Auth`: the software the toy runs.
    Version {
        /// Its board, as in a release manifest.
        board: &'a str,
        /// The software version.
        version: u32,
        /// The anti-rollback counter of the running image.
        counter: u32,
    },
    /// A piece of the child's sealed recording: `bytes` sit at `offset` of an envelope of
    /// `total_len` bytes. The server stores the envelope once every piece arrived.
    UploadChunk {
        /// The recording's message id (the envelope's).
        message_id: MessageId,
        /// Where `bytes` start in the envelope.
        offset: u32,
        /// The whole envelope's length.
        total_len: u32,
        /// At most [`MAX_CHUNK_BYTES`].
        bytes: &'a [u8],
    },

    // Server to toy.
    /// Sent first on every connection.
    Challenge {
        /// Fresh random bytes the toy signs.
        nonce: [u8; NONCE_LEN],
        /// The server's clock, used by a toy that has no clock of its own.
        server_time_ms: u64,
    },
    /// The code the toy speaks for a parent to type.
    PairCode {
        /// Six digits.
        code: PairingCode,
        /// How long the code stays valid.
        expires_in_s: u32,
    },
    /// A parent entered the code: the toy speaks this number, which the parent's app
    /// shows too, and a press of the paw confirms.
    ConfirmPairing {
        /// Three digits.
        number: ConfirmationNumber,
    },
    /// The pairing was confirmed: the household's roster, signed by an owner.
    Paired {
        /// The household the toy joins.
        household_id: HouseholdId,
        /// A [`pawpost_crypto::SignedRoster`] encoding.
        signed_roster: &'a [u8],
    },
    /// A newer roster.
    RosterUpdate {
        /// A [`pawpost_crypto::SignedRoster`] encoding.
        signed_roster: &'a [u8],
    },
    /// A message for the toy.
    Deliver {
        /// An envelope v1.
        envelope: &'a [u8],
    },
    /// A parent approved a held message.
    Approval {
        /// The message.
        message_id: MessageId,
        /// The owner or guardian device that approved it.
        approver: DeviceId,
        /// Ed25519 signature by `approver` over [`crate::approval_signature_input`].
        signature: [u8; FRAME_SIGNATURE_LEN],
    },
    /// The server stored an upload.
    UploadAck {
        /// The uploaded message.
        message_id: MessageId,
    },
    /// The server now knows the toy by its new key.
    RotateAck {
        /// The new Ed25519 key, which must be the one the toy sent.
        ed25519_pub: [u8; 32],
    },
    /// The server refused something.
    Error {
        /// What.
        code: ServerError,
    },
    /// An owner's device took the toy out of its household (the toy was removed, or the
    /// household deleted): the toy forgets the household and can be paired again.
    Leave {
        /// The household the toy leaves.
        household_id: HouseholdId,
        /// The owner device that signed.
        signer: DeviceId,
        /// Ed25519 signature by `signer` over [`crate::leave_signature_input`], for this
        /// toy.
        signature: [u8; FRAME_SIGNATURE_LEN],
    },
    /// The start of a streamed delivery (version 2): everything of the envelope before its
    /// chunks. The toy checks it and answers `ChunkRequest` (or `Rejected`).
    DeliverStart {
        /// Header, payload digest, signature and wrapped keys of an envelope v1.
        prefix: &'a [u8],
    },
    /// One chunk of a streamed delivery, in order.
    DeliverChunk {
        /// The message (the one of the last `DeliverStart`).
        message_id: MessageId,
        /// The chunk's position in the envelope.
        index: u32,
        /// The chunk's ciphertext and tag.
        chunk: &'a [u8],
    },
    /// The server holds the first `next_offset` bytes of a chunked upload.
    UploadChunkAck {
        /// The recording's message id.
        message_id: MessageId,
        /// The first byte the server does not hold yet.
        next_offset: u32,
    },
    /// A signed release for the toy's board with a counter above the one it runs
    /// (docs/UPDATES.md). The toy checks it and asks for the image with `UpdateRequest`.
    UpdateOffer {
        /// An encoded `pawpost_crypto::Manifest`.
        manifest: &'a [u8],
        /// Ed25519 signature by a release key over
        /// `pawpost_crypto::manifest_signature_input`.
        signature: [u8; FRAME_SIGNATURE_LEN],
    },
    /// A piece of the offered image, in answer to `UpdateRequest`.
    UpdateChunk {
        /// Where `bytes` start in the image.
        offset: u32,
        /// [`UPDATE_CHUNK_BYTES`], fewer only at the image's end.
        bytes: &'a [u8],
    },
    /// The names a parent set for the toy to say who a message is from: an envelope
    /// (text, `docs/TOY-PROTOCOL.md`, "Names") sealed by a parent's device for the toy and
    /// the household's devices. The server relays it unread.
    Names {
        /// The sealed names record.
        envelope: &'a [u8],
    },
}

/// The type byte of every frame. Toy-to-server types are below 0x80, server-to-toy types
/// have the high bit set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameType {
    /// [`Frame::PairRequest`].
    PairRequest = 0x01,
    /// [`Frame::Auth`].
    Auth = 0x02,
    /// [`Frame::RotateKey`].
    RotateKey = 0x03,
    /// [`Frame::Delivered`].
    Delivered = 0x04,
    /// [`Frame::Rejected`].
    Rejected = 0x05,
    /// [`Frame::Played`].
    Played = 0x06,
    /// [`Frame::Upload`].
    Upload = 0x07,
    /// [`Frame::RosterRejected`].
    RosterRejected = 0x08,
    /// [`Frame::PairConfirmed`].
    PairConfirmed = 0x09,
    /// [`Frame::ChunkRequest`].
    ChunkRequest = 0x0A,
    /// [`Frame::UploadChunk`].
    UploadChunk = 0x0B,
    /// [`Frame::UpdateRequest`].
    UpdateRequest = 0x0C,
    /// [`Frame::Version`].
    Version = 0x0D,
    /// [`Frame::Challenge`].
    Challenge = 0x81,
    /// [`Frame::PairCode`].
    PairCode = 0x82,
    /// [`Frame::Paired`].
    Paired = 0x83,
    /// [`Frame::RosterUpdate`].
    RosterUpdate = 0x84,
    /// [`Frame::Deliver`].
    Deliver = 0x85,
    /// [`Frame::Approval`].
    Approval = 0x86,
    /// [`Frame::UploadAck`].
    UploadAck = 0x87,
    /// [`Frame::RotateAck`].
    RotateAck = 0x88,
    /// [`Frame::Error`].
    Error = 0x89,
    /// [`Frame::ConfirmPairing`].
    ConfirmPairing = 0x8A,
    /// [`Frame::Leave`].
    Leave = 0x8B,
    /// [`Frame::DeliverStart`].
    DeliverStart = 0x8C,
    /// [`Frame::DeliverChunk`].
    DeliverChunk = 0x8D,
    /// [`Frame::UploadChunkAck`].
    UploadChunkAck = 0x8E,
    /// [`Frame::Names`].
    Names = 0x8F,
    /// [`Frame::UpdateOffer`].
    UpdateOffer = 0x90,
    /// [`Frame::UpdateChunk`].
    UpdateChunk = 0x91,
}

impl FrameType {
    /// Every frame type, in wire order.
    pub const ALL: &'static [Self] = &[
        Self::PairRequest,
        Self::Auth,
        Self::RotateKey,
        Self::Delivered,
        Self::Rejected,
        Self::Played,
        Self::Upload,
        Self::RosterRejected,
        Self::PairConfirmed,
        Self::ChunkRequest,
        Self::UploadChunk,
        Self::UpdateRequest,
        Self::Version,
        Self::Challenge,
        Self::PairCode,
        Self::Paired,
        Self::RosterUpdate,
        Self::Deliver,
        Self::Approval,
        Self::UploadAck,
        Self::RotateAck,
        Self::Error,
        Self::ConfirmPairing,
        Self::Leave,
        Self::DeliverStart,
        Self::DeliverChunk,
        Self::UploadChunkAck,
        Self::Names,
        Self::UpdateOffer,
        Self::UpdateChunk,
    ];

    /// Strict decode of the type byte.
    pub fn from_u8(value: u8) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| *t as u8 == value)
    }

    /// Whether the server sends this frame to the toy.
    pub const fn is_server_to_toy(self) -> bool {
        self as u8 & 0x80 != 0
    }
}

impl<'a> Frame<'a> {
    /// This frame's type.
    pub const fn frame_type(&self) -> FrameType {
        match self {
            Self::PairRequest { .. } => FrameType::PairRequest,
            Self::Auth { .. } => FrameType::Auth,
            Self::RotateKey { .. } => FrameType::RotateKey,
            Self::Delivered { .. } => FrameType::Delivered,
            Self::Rejected { .. } => FrameType::Rejected,
            Self::Played { .. } => FrameType::Played,
            Self::Upload { .. } => FrameType::Upload,
            Self::RosterRejected { .. } => FrameType::RosterRejected,
            Self::PairConfirmed { .. } => FrameType::PairConfirmed,
            Self::ConfirmPairing { .. } => FrameType::ConfirmPairing,
            Self::Challenge { .. } => FrameType::Challenge,
            Self::PairCode { .. } => FrameType::PairCode,
            Self::Paired { .. } => FrameType::Paired,
            Self::RosterUpdate { .. } => FrameType::RosterUpdate,
            Self::Deliver { .. } => FrameType::Deliver,
            Self::Approval { .. } => FrameType::Approval,
            Self::UploadAck { .. } => FrameType::UploadAck,
            Self::RotateAck { .. } => FrameType::RotateAck,
            Self::Error { .. } => FrameType::Error,
            Self::Leave { .. } => FrameType::Leave,
            Self::ChunkRequest { .. } => FrameType::ChunkRequest,
            Self::UploadChunk { .. } => FrameType::UploadChunk,
            Self::DeliverStart { .. } => FrameType::DeliverStart,
            Self::DeliverChunk { .. } => FrameType::DeliverChunk,
            Self::UploadChunkAck { .. } => FrameType::UploadChunkAck,
            Self::Names { .. } => FrameType::Names,
            Self::UpdateRequest { .. } => FrameType::UpdateRequest,
            Self::Version { .. } => FrameType::Version,
            Self::UpdateOffer { .. } => FrameType::UpdateOffer,
            Self::UpdateChunk { .. } => FrameType::UpdateChunk,
        }
    }

    /// Encodes the frame. Fails only when a variable-length field is over its limit, so that
    /// nothing the decoder would refuse is ever sent.
    pub fn encode(&self) -> Result<Vec<u8>, FrameError> {
        let mut body = Vec::new();
        match self {
            Self::PairRequest {
                identity,
                signature,
            } => {
                body.extend_from_slice(&identity.encode());
                body.extend_from_slice(signature);
            }
            Self::Auth {
                device_id,
                roster_version,
                signature,
            } => {
                body.extend_from_slice(&device_id.0);
                body.extend_from_slice(&roster_version.to_be_bytes());
                body.extend_from_slice(signature);
            }
            Self::RotateKey {
                new_identity,
                signature_by_old_key,
            } => {
                body.extend_from_slice(&new_identity.encode());
                body.extend_from_slice(signature_by_old_key);
            }
            Self::Delivered { message_id }
            | Self::Played { message_id }
            | Self::UploadAck { message_id } => body.extend_from_slice(&message_id.0),
            Self::Rejected { message_id, reason } => {
                body.extend_from_slice(&message_id.0);
                body.push(reason.to_u8());
            }
            Self::Upload { envelope } | Self::Deliver { envelope } => {
                put_field(&mut body, envelope, MAX_ENVELOPE_LEN)?;
            }
            Self::RosterRejected { version, reason } => {
                body.extend_from_slice(&version.to_be_bytes());
                body.push(reason.to_u8());
            }
            Self::PairConfirmed { number } | Self::ConfirmPairing { number } => {
                body.extend_from_slice(&number.digits());
            }
            Self::Challenge {
                nonce,
                server_time_ms,
            } => {
                body.extend_from_slice(nonce);
                body.extend_from_slice(&server_time_ms.to_be_bytes());
            }
            Self::PairCode { code, expires_in_s } => {
                body.extend_from_slice(&code.digits());
                body.extend_from_slice(&expires_in_s.to_be_bytes());
            }
            Self::Paired {
                household_id,
                signed_roster,
            } => {
                body.extend_from_slice(&household_id.0);
                put_field(&mut body, signed_roster, MAX_SIGNED_ROSTER_LEN)?;
            }
            Self::RosterUpdate { signed_roster } => {
                put_field(&mut body, signed_roster, MAX_SIGNED_ROSTER_LEN)?;
            }
            Self::Approval {
                message_id,
                approver,
                signature,
            } => {
                body.extend_from_slice(&message_id.0);
                body.extend_from_slice(&approver.0);
                body.extend_from_slice(signature);
            }
            Self::RotateAck { ed25519_pub } => body.extend_from_slice(ed25519_pub),
            Self::Error { code } => body.push(code.to_u8()),
            Self::Leave {
                household_id,
                signer,
                signature,
            } => {
                body.extend_from_slice(&household_id.0);
                body.extend_from_slice(&signer.0);
                body.extend_from_slice(signature);
            }
            Self::Names { envelope } => put_field(&mut body, envelope, MAX_NAMES_ENVELOPE_LEN)?,
            Self::ChunkRequest {
                message_id,
                next_index,
                window,
            } => {
                body.extend_from_slice(&message_id.0);
                body.extend_from_slice(&next_index.to_be_bytes());
                body.push(*window);
            }
            Self::UploadChunk {
                message_id,
                offset,
                total_len,
                bytes,
            } => {
                body.extend_from_slice(&message_id.0);
                body.extend_from_slice(&offset.to_be_bytes());
                body.extend_from_slice(&total_len.to_be_bytes());
                put_field(&mut body, bytes, MAX_CHUNK_BYTES)?;
            }
            Self::DeliverStart { prefix } => put_field(&mut body, prefix, MAX_ENVELOPE_PREFIX_LEN)?,
            Self::DeliverChunk {
                message_id,
                index,
                chunk,
            } => {
                body.extend_from_slice(&message_id.0);
                body.extend_from_slice(&index.to_be_bytes());
                put_field(&mut body, chunk, MAX_CHUNK_BYTES)?;
            }
            Self::UploadChunkAck {
                message_id,
                next_offset,
            } => {
                body.extend_from_slice(&message_id.0);
                body.extend_from_slice(&next_offset.to_be_bytes());
            }
            Self::UpdateRequest { offset, window } => {
                body.extend_from_slice(&offset.to_be_bytes());
                body.push(*window);
            }
            Self::Version {
                board,
                version,
                counter,
            } => {
                put_field(
                    &mut body,
                    board.as_bytes(),
                    pawpost_crypto::MAX_BOARD_NAME_LEN,
                )?;
                body.extend_from_slice(&version.to_be_bytes());
                body.extend_from_slice(&counter.to_be_bytes());
            }
            Self::UpdateOffer {
                manifest,
                signature,
            } => {
                put_field(&mut body, manifest, pawpost_crypto::MAX_MANIFEST_LEN)?;
                body.extend_from_slice(signature);
            }
            Self::UpdateChunk { offset, bytes } => {
                body.extend_from_slice(&offset.to_be_bytes());
                put_field(&mut body, bytes, UPDATE_CHUNK_BYTES)?;
            }
        }
        if FRAME_HEADER_LEN + body.len() > MAX_FRAME_LEN {
            return Err(FrameError::FrameTooLarge);
        }
        let mut out = Vec::with_capacity(FRAME_HEADER_LEN + body.len());
        out.push(PROTOCOL_VERSION);
        out.push(self.frame_type() as u8);
        let len = u32::try_from(body.len()).map_err(|_| FrameError::FrameTooLarge)?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Strict decode of exactly one frame.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, FrameError> {
        let total = frame_len(bytes)?;
        if bytes.len() < total {
            return Err(FrameError::Truncated);
        }
        if bytes.len() > total {
            return Err(FrameError::TrailingBytes);
        }
        let frame_type = FrameType::from_u8(bytes[1]).ok_or(FrameError::UnknownType)?;
        let mut r = Reader {
            rest: &bytes[FRAME_HEADER_LEN..],
        };
        let frame = match frame_type {
            FrameType::PairRequest => Self::PairRequest {
                identity: r.identity()?,
                signature: r.array()?,
            },
            FrameType::Auth => Self::Auth {
                device_id: DeviceId(r.array()?),
                roster_version: r.u64()?,
                signature: r.array()?,
            },
            FrameType::RotateKey => Self::RotateKey {
                new_identity: r.identity()?,
                signature_by_old_key: r.array()?,
            },
            FrameType::Delivered => Self::Delivered {
                message_id: MessageId(r.array()?),
            },
            FrameType::Rejected => Self::Rejected {
                message_id: MessageId(r.array()?),
                reason: RejectReason::from_u8(r.u8()?).ok_or(FrameError::UnknownCode)?,
            },
            FrameType::Played => Self::Played {
                message_id: MessageId(r.array()?),
            },
            FrameType::Upload => Self::Upload {
                envelope: r.field(MAX_ENVELOPE_LEN)?,
            },
            FrameType::RosterRejected => Self::RosterRejected {
                version: r.u64()?,
                reason: RosterRefusal::from_u8(r.u8()?).ok_or(FrameError::UnknownCode)?,
            },
            FrameType::PairConfirmed => Self::PairConfirmed {
                number: ConfirmationNumber::new(r.array()?)
                    .ok_or(FrameError::InvalidPairingCode)?,
            },
            FrameType::ConfirmPairing => Self::ConfirmPairing {
                number: ConfirmationNumber::new(r.array()?)
                    .ok_or(FrameError::InvalidPairingCode)?,
            },
            FrameType::Challenge => Self::Challenge {
                nonce: r.array()?,
                server_time_ms: r.u64()?,
            },
            FrameType::PairCode => Self::PairCode {
                code: PairingCode::new(r.array()?).ok_or(FrameError::InvalidPairingCode)?,
                expires_in_s: r.u32()?,
            },
            FrameType::Paired => Self::Paired {
                household_id: HouseholdId(r.array()?),
                signed_roster: r.field(MAX_SIGNED_ROSTER_LEN)?,
            },
            FrameType::RosterUpdate => Self::RosterUpdate {
                signed_roster: r.field(MAX_SIGNED_ROSTER_LEN)?,
            },
            FrameType::Deliver => Self::Deliver {
                envelope: r.field(MAX_ENVELOPE_LEN)?,
            },
            FrameType::Approval => Self::Approval {
                message_id: MessageId(r.array()?),
                approver: DeviceId(r.array()?),
                signature: r.array()?,
            },
            FrameType::UploadAck => Self::UploadAck {
                message_id: MessageId(r.array()?),
            },
            FrameType::RotateAck => Self::RotateAck {
                ed25519_pub: r.array()?,
            },
            FrameType::Error => Self::Error {
                code: ServerError::from_u8(r.u8()?).ok_or(FrameError::UnknownCode)?,
            },
            FrameType::Leave => Self::Leave {
                household_id: HouseholdId(r.array()?),
                signer: DeviceId(r.array()?),
                signature: r.array()?,
            },
            FrameType::Names => Self::Names {
                envelope: r.field(MAX_NAMES_ENVELOPE_LEN)?,
            },
            FrameType::ChunkRequest => Self::ChunkRequest {
                message_id: MessageId(r.array()?),
                next_index: r.u32()?,
                window: r.u8()?,
            },
            FrameType::UploadChunk => Self::UploadChunk {
                message_id: MessageId(r.array()?),
                offset: r.u32()?,
                total_len: r.u32()?,
                bytes: r.field(MAX_CHUNK_BYTES)?,
            },
            FrameType::DeliverStart => Self::DeliverStart {
                prefix: r.field(MAX_ENVELOPE_PREFIX_LEN)?,
            },
            FrameType::DeliverChunk => Self::DeliverChunk {
                message_id: MessageId(r.array()?),
                index: r.u32()?,
                chunk: r.field(MAX_CHUNK_BYTES)?,
            },
            FrameType::UploadChunkAck => Self::UploadChunkAck {
                message_id: MessageId(r.array()?),
                next_offset: r.u32()?,
            },
            FrameType::UpdateRequest => Self::UpdateRequest {
                offset: r.u32()?,
                window: r.u8()?,
            },
            FrameType::Version => Self::Version {
                board: core::str::from_utf8(r.field(pawpost_crypto::MAX_BOARD_NAME_LEN)?)
                    .map_err(|_| FrameError::UnknownCode)?,
                version: r.u32()?,
                counter: r.u32()?,
            },
            FrameType::UpdateOffer => Self::UpdateOffer {
                manifest: r.field(pawpost_crypto::MAX_MANIFEST_LEN)?,
                signature: r.array()?,
            },
            FrameType::UpdateChunk => Self::UpdateChunk {
                offset: r.u32()?,
                bytes: r.field(UPDATE_CHUNK_BYTES)?,
            },
        };
        if !r.rest.is_empty() {
            return Err(FrameError::TrailingBytes);
        }
        Ok(frame)
    }
}

/// The total length of the frame that `start` begins, read from its first
/// [`FRAME_HEADER_LEN`] bytes: for a transport that receives a byte stream and must know
/// where a frame ends. Checks the version and the size limit.
pub fn frame_len(start: &[u8]) -> Result<usize, FrameError> {
    if start.len() < FRAME_HEADER_LEN {
        return Err(FrameError::Truncated);
    }
    if start[0] != PROTOCOL_VERSION {
        return Err(FrameError::UnsupportedVersion);
    }
    let body = u32::from_be_bytes([start[2], start[3], start[4], start[5]]);
    usize::try_from(body)
        .ok()
        .and_then(|b| b.checked_add(FRAME_HEADER_LEN))
        .filter(|total| *total <= MAX_FRAME_LEN)
        .ok_or(FrameError::FrameTooLarge)
}

fn put_field(out: &mut Vec<u8>, bytes: &[u8], max: usize) -> Result<(), FrameError> {
    if bytes.len() > max {
        return Err(FrameError::FieldTooLong);
    }
    let len = u32::try_from(bytes.len()).map_err(|_| FrameError::FieldTooLong)?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], FrameError> {
        if self.rest.len() < len {
            return Err(FrameError::Truncated);
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, FrameError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, FrameError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn identity(&mut self) -> Result<PublicIdentity, FrameError> {
        PublicIdentity::decode(self.take(PUBLIC_IDENTITY_LEN)?).map_err(|e| match e {
            pawpost_crypto::DecodeError::UnsupportedVersion => FrameError::UnsupportedVersion,
            _ => FrameError::InvalidKey,
        })
    }

    /// A `u32` length then that many bytes, refused before reading when over `max`.
    fn field(&mut self, max: usize) -> Result<&'a [u8], FrameError> {
        let len = usize::try_from(self.u32()?).map_err(|_| FrameError::FieldTooLong)?;
        if len > max {
            return Err(FrameError::FieldTooLong);
        }
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_announcing_more_than_a_mebibyte_is_refused_from_its_header() {
        let mut bytes = alloc::vec![PROTOCOL_VERSION, FrameType::Deliver as u8];
        bytes.extend_from_slice(&u32::try_from(MAX_FRAME_LEN).unwrap().to_be_bytes());
        assert_eq!(frame_len(&bytes), Err(FrameError::FrameTooLarge));
        assert_eq!(Frame::decode(&bytes), Err(FrameError::FrameTooLarge));
    }

    #[test]
    fn pairing_codes_are_six_decimal_digits() {
        assert_eq!(
            PairingCode::from_number(42).unwrap().digits(),
            [0, 0, 0, 0, 4, 2]
        );
        assert_eq!(
            alloc::format!("{}", PairingCode::from_number(907_113).unwrap()),
            "907113"
        );
        assert!(PairingCode::from_number(1_000_000).is_none());
        assert!(PairingCode::new([1, 2, 3, 4, 5, 10]).is_none());
    }
}
