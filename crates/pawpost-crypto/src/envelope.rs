//! Envelope v1: one message sealed for several recipients.
//!
//! Wire order is `header || payload digest || signature || wrapped keys || chunks`, so that a
//! server can read and check everything but the chunks from the first bytes of an upload,
//! and a toy can decrypt the chunks one at a time. The byte layouts are in docs/ENVELOPE.md.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::Aes256Gcm;
use alloc::vec::Vec;
use hkdf::Hkdf;
use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::codec::{DecodeError, Reader, Writer};
use crate::identity::{DeviceId, DeviceKeys, HouseholdId, MessageId, PublicIdentity};
use crate::roster::Roster;
use crate::FORMAT_VERSION;

/// Plaintext bytes per chunk: the most a toy must hold in memory to decrypt.
pub const CHUNK_SIZE: usize = 16 * 1024;
/// AES-256-GCM tag length appended to every chunk.
pub const TAG_LEN: usize = 16;
/// Most recipients one envelope may name.
pub const MAX_RECIPIENTS: usize = 64;
/// Largest plaintext payload (32 MiB), far above a voice message; bounds what a server stores.
pub const MAX_PAYLOAD_LEN: u64 = 32 * 1024 * 1024;
/// Most chunks an envelope can have; the chunk counter never comes near `u32::MAX`.
#[allow(
    clippy::cast_possible_truncation,
    reason = "2048 chunks; the assertion below proves it fits, and `u32::try_from` is not usable in a const"
)]
pub const MAX_CHUNK_COUNT: u32 = (MAX_PAYLOAD_LEN / CHUNK_SIZE as u64) as u32;
const _: () = assert!(MAX_PAYLOAD_LEN / (CHUNK_SIZE as u64) <= u32::MAX as u64);
/// Length of the header's fixed part, before the recipient list.
pub const HEADER_FIXED_LEN: usize = 72;
/// Length of one wrapped content key: HPKE `enc` (32) then the sealed key and its tag (48).
pub const WRAPPED_KEY_LEN: usize = 32 + 32 + TAG_LEN;
/// Length of the SHA-256 digest of the chunks.
pub const PAYLOAD_DIGEST_LEN: usize = 32;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

const SIGNATURE_DOMAIN: &[u8] = b"pawpost/v1/envelope-signature";
const KEY_WRAP_DOMAIN: &[u8] = b"pawpost/v1/content-key";
const PAYLOAD_KEY_DOMAIN: &[u8] = b"pawpost/v1/payload";
const NONCE_PREFIX_LEN: usize = 7;

type HpkeKem = hpke::kem::X25519HkdfSha256;
type HpkeKdf = hpke::kdf::HkdfSha256;
type HpkeAead = hpke::aead::AesGcm256;

/// What the payload is, so that a device knows how to present it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MediaType {
    /// A voice message: Ogg Opus audio.
    OggOpus = 1,
    /// A picture, such as an avatar.
    Image = 2,
    /// UTF-8 text, such as the child's name.
    Text = 3,
    /// A JSON document.
    Json = 4,
}

impl TryFrom<u8> for MediaType {
    type Error = DecodeError;

    fn try_from(value: u8) -> Result<Self, DecodeError> {
        match value {
            1 => Ok(Self::OggOpus),
            2 => Ok(Self::Image),
            3 => Ok(Self::Text),
            4 => Ok(Self::Json),
            _ => Err(DecodeError::UnknownMediaType),
        }
    }
}

/// Why an envelope could not be sealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum SealError {
    /// A message needs at least one recipient.
    #[error("a message needs at least one recipient")]
    NoRecipients,
    /// More than [`MAX_RECIPIENTS`] recipients.
    #[error("too many recipients")]
    TooManyRecipients,
    /// The same device is listed twice.
    #[error("a recipient is listed twice")]
    DuplicateRecipient,
    /// The payload is longer than [`MAX_PAYLOAD_LEN`].
    #[error("payload too large")]
    PayloadTooLarge,
    /// A recipient's X25519 key cannot be encrypted to (for example a low-order point).
    #[error("a recipient's encryption key is invalid")]
    InvalidRecipientKey,
}

/// Why an envelope was refused. Each variant names the check that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum OpenError {
    /// The bytes are not a well-formed envelope within the limits.
    #[error("malformed envelope: {0}")]
    Malformed(#[from] DecodeError),
    /// The sender named in the header is not the identity the caller expected.
    #[error("the envelope names a different sender")]
    WrongSender,
    /// The sender's signature over header and payload digest does not verify.
    #[error("the sender's signature does not verify")]
    BadSignature,
    /// This device is not among the recipients.
    #[error("this device is not a recipient")]
    NotARecipient,
    /// The envelope belongs to another household than the roster's.
    #[error("the envelope belongs to another household")]
    WrongHousehold,
    /// The sender is not an approved member of the roster (unknown or blocked).
    #[error("the sender is not an approved member of the household")]
    SenderNotApproved,
    /// The chunks are not the ones the sender signed.
    #[error("the payload does not match the signed digest")]
    PayloadDigestMismatch,
    /// The wrapped content key for this device does not decrypt.
    #[error("the content key for this device does not decrypt")]
    KeyUnwrap,
    /// A chunk does not decrypt in this position: altered, moved, replayed or misflagged.
    #[error("a chunk does not authenticate")]
    ChunkAuthentication,
    /// A chunk has the wrong length for its position.
    #[error("a chunk has the wrong length")]
    ChunkLength,
    /// A chunk arrived after the last one.
    #[error("a chunk arrived after the last one")]
    ExtraChunk,
    /// The stream ended before the last chunk.
    #[error("the stream ended before the last chunk")]
    MissingChunks,
}

impl OpenError {
    /// Stable snake_case name, used by the shared test vectors and by other implementations.
    pub const fn code(self) -> &'static str {
        match self {
            Self::Malformed(e) => e.code(),
            Self::WrongSender => "wrong_sender",
            Self::BadSignature => "bad_signature",
            Self::NotARecipient => "not_a_recipient",
            Self::WrongHousehold => "wrong_household",
            Self::SenderNotApproved => "sender_not_approved",
            Self::PayloadDigestMismatch => "payload_digest_mismatch",
            Self::KeyUnwrap => "key_unwrap",
            Self::ChunkAuthentication => "chunk_authentication",
            Self::ChunkLength => "chunk_length",
            Self::ExtraChunk => "extra_chunk",
            Self::MissingChunks => "missing_chunks",
        }
    }
}

/// Number of chunks for a payload: at least one, so that even an empty payload carries an
/// authenticated last chunk.
#[allow(
    clippy::cast_possible_truncation,
    reason = "payload lengths are checked against MAX_PAYLOAD_LEN (MAX_CHUNK_COUNT chunks) before a count is used, and `u32::try_from` is not usable in a `const fn`"
)]
pub const fn chunk_count(payload_len: u64) -> u32 {
    if payload_len == 0 {
        1
    } else {
        // Bounded by MAX_PAYLOAD_LEN before any caller relies on it, so it fits in u32.
        payload_len.div_ceil(CHUNK_SIZE as u64) as u32
    }
}

/// Total length of the chunks (ciphertext and tags) for a payload.
pub const fn ciphertext_len(payload_len: u64) -> u64 {
    payload_len + chunk_count(payload_len) as u64 * TAG_LEN as u64
}

/// Plaintext length of chunk `index`: full chunks, then the remainder in the last one.
fn chunk_plain_len(payload_len: u64, index: u32) -> usize {
    let start = u64::from(index) * CHUNK_SIZE as u64;
    // At most CHUNK_SIZE, so it fits in usize.
    usize::try_from(payload_len.saturating_sub(start))
        .map_or(CHUNK_SIZE, |left| left.min(CHUNK_SIZE))
}

/// The signed, cleartext description of a message. It is the associated data of every chunk.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EnvelopeHeader {
    /// Unique per message.
    pub message_id: MessageId,
    /// The household the message belongs to.
    pub household_id: HouseholdId,
    /// The device that sealed and signed it.
    pub sender: DeviceId,
    /// The devices that can open it, in the order of the wrapped keys.
    pub recipients: Vec<DeviceId>,
    /// When it was sealed, in Unix milliseconds.
    pub created_at_ms: u64,
    /// What the payload is.
    pub media_type: MediaType,
    /// Playing time in milliseconds (0 when not audio).
    pub duration_ms: u32,
    /// Plaintext payload length in bytes.
    pub payload_len: u64,
}

impl EnvelopeHeader {
    /// Strict decode of a header alone (exactly its bytes, nothing after).
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let header = Self::read(&mut r)?;
        r.finish()?;
        Ok(header)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if r.u8()? != FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion);
        }
        let media_type = MediaType::try_from(r.u8()?)?;
        let message_id = MessageId(r.array()?);
        let household_id = HouseholdId(r.array()?);
        let sender = DeviceId(r.array()?);
        let created_at_ms = r.u64()?;
        let duration_ms = r.u32()?;
        let payload_len = r.u64()?;
        if payload_len > MAX_PAYLOAD_LEN {
            return Err(DecodeError::PayloadTooLarge);
        }
        let count = usize::from(r.u16()?);
        check_recipient_count(count)?;
        let mut recipients = Vec::with_capacity(count);
        for _ in 0..count {
            let id = DeviceId(r.array()?);
            if recipients.contains(&id) {
                return Err(DecodeError::DuplicateRecipient);
            }
            recipients.push(id);
        }
        Ok(Self {
            message_id,
            household_id,
            sender,
            recipients,
            created_at_ms,
            media_type,
            duration_ms,
            payload_len,
        })
    }

    /// Canonical encoding; [`EnvelopeHeader::parse`] accepts exactly these bytes back.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.put_u8(FORMAT_VERSION);
        out.put_u8(self.media_type as u8);
        out.put(&self.message_id.0);
        out.put(&self.household_id.0);
        out.put(&self.sender.0);
        out.put_u64(self.created_at_ms);
        out.put_u32(self.duration_ms);
        out.put_u64(self.payload_len);
        // A list too long for u16 encodes as an over-limit count, which parsing refuses.
        out.put_u16(u16::try_from(self.recipients.len()).unwrap_or(u16::MAX));
        for id in &self.recipients {
            out.put(&id.0);
        }
        out
    }

    /// Length of the encoded header.
    pub fn encoded_len(&self) -> usize {
        HEADER_FIXED_LEN + 16 * self.recipients.len()
    }

    /// Position of `device` among the recipients, which is also the index of its wrapped key.
    pub fn recipient_index(&self, device: DeviceId) -> Option<usize> {
        self.recipients.iter().position(|id| *id == device)
    }

    /// Number of chunks that follow the prefix.
    pub fn chunk_count(&self) -> u32 {
        chunk_count(self.payload_len)
    }

    /// Total length of the chunks that follow the prefix.
    pub fn ciphertext_len(&self) -> u64 {
        ciphertext_len(self.payload_len)
    }
}

fn check_recipient_count(count: usize) -> Result<(), DecodeError> {
    match count {
        0 => Err(DecodeError::NoRecipients),
        n if n > MAX_RECIPIENTS => Err(DecodeError::TooManyRecipients),
        _ => Ok(()),
    }
}

/// The bytes the sender signs: domain, header, then the SHA-256 of all chunks.
fn signature_input(header_bytes: &[u8], payload_digest: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SIGNATURE_DOMAIN.len() + header_bytes.len() + 32);
    out.put(SIGNATURE_DOMAIN);
    out.put(header_bytes);
    out.put(payload_digest);
    out
}

/// HPKE `info`: domain, then SHA-256 of the header, so that a wrapped key opens only with
/// the header it was made for.
fn key_wrap_info(header_bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(KEY_WRAP_DOMAIN.len() + 32);
    out.put(KEY_WRAP_DOMAIN);
    out.put(&Sha256::digest(header_bytes));
    out
}

/// Everything before the chunks: enough for a server to check who sent what to whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvelopePrefix<'a> {
    header: EnvelopeHeader,
    header_bytes: &'a [u8],
    payload_digest: [u8; PAYLOAD_DIGEST_LEN],
    signature: [u8; SIGNATURE_LEN],
    wrapped_keys: &'a [u8],
}

impl<'a> EnvelopePrefix<'a> {
    /// How many bytes the prefix takes, read from the first [`HEADER_FIXED_LEN`] bytes of an
    /// envelope, so that a server knows how much of a streamed upload to buffer.
    pub fn required_len(start: &[u8]) -> Result<usize, DecodeError> {
        let mut r = Reader::new(start);
        if r.u8()? != FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion);
        }
        r.bytes(HEADER_FIXED_LEN - 3)?;
        let count = usize::from(r.u16()?);
        check_recipient_count(count)?;
        Ok(HEADER_FIXED_LEN + PAYLOAD_DIGEST_LEN + SIGNATURE_LEN + count * (16 + WRAPPED_KEY_LEN))
    }

    /// Parses the prefix at the start of `bytes` and returns it with the bytes after it (the
    /// start of the chunks). Checks structure and limits; checks no signature.
    pub fn parse(bytes: &'a [u8]) -> Result<(Self, &'a [u8]), DecodeError> {
        let mut r = Reader::new(bytes);
        let header = EnvelopeHeader::read(&mut r)?;
        let header_bytes = &bytes[..bytes.len() - r.remaining()];
        let payload_digest = r.array()?;
        let signature = r.array()?;
        let wrapped_keys = r.bytes(header.recipients.len() * WRAPPED_KEY_LEN)?;
        let prefix = Self {
            header,
            header_bytes,
            payload_digest,
            signature,
            wrapped_keys,
        };
        Ok((prefix, r.rest()))
    }

    /// The parsed header.
    pub fn header(&self) -> &EnvelopeHeader {
        &self.header
    }

    /// The header exactly as received (the chunks' associated data).
    pub fn header_bytes(&self) -> &'a [u8] {
        self.header_bytes
    }

    /// The SHA-256 of all chunks that the sender signed.
    pub fn payload_digest(&self) -> &[u8; PAYLOAD_DIGEST_LEN] {
        &self.payload_digest
    }

    /// Length of the prefix in bytes.
    pub fn encoded_len(&self) -> usize {
        self.header_bytes.len() + PAYLOAD_DIGEST_LEN + SIGNATURE_LEN + self.wrapped_keys.len()
    }

    /// Checks that `sender` is the device the header names and that its signature over the
    /// header and payload digest verifies. Needs no private key: a server can call it.
    pub fn verify_sender(&self, sender: &PublicIdentity) -> Result<(), OpenError> {
        if sender.device_id != self.header.sender {
            return Err(OpenError::WrongSender);
        }
        let input = signature_input(self.header_bytes, &self.payload_digest);
        if sender.verify(&input, &self.signature) {
            Ok(())
        } else {
            Err(OpenError::BadSignature)
        }
    }

    /// Checks that the envelope belongs to the roster's household, that its sender is an
    /// approved member there, and that the sender's signature verifies. Returns the sender.
    pub fn verify_sender_in_roster(&self, roster: &Roster) -> Result<PublicIdentity, OpenError> {
        if roster.household_id != self.header.household_id {
            return Err(OpenError::WrongHousehold);
        }
        // The recovery key signs rosters only: it never sends.
        let sender = roster
            .member(self.header.sender)
            .filter(|m| m.may_send())
            .ok_or(OpenError::SenderNotApproved)?
            .public_identity();
        self.verify_sender(&sender)?;
        Ok(sender)
    }

    /// A running check that the chunks which follow are exactly the ones the sender signed.
    pub fn payload_verifier(&self) -> PayloadVerifier {
        PayloadVerifier {
            hasher: Sha256::new(),
            expected: self.payload_digest,
            remaining: self.header.ciphertext_len(),
        }
    }

    fn wrapped_key(&self, index: usize) -> &'a [u8] {
        &self.wrapped_keys[index * WRAPPED_KEY_LEN..(index + 1) * WRAPPED_KEY_LEN]
    }
}

/// A complete envelope: prefix and all chunks, with nothing after.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope<'a> {
    prefix: EnvelopePrefix<'a>,
    ciphertext: &'a [u8],
}

impl<'a> Envelope<'a> {
    /// Strict parse: the chunks must be exactly as long as the header's payload length says.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let (prefix, rest) = EnvelopePrefix::parse(bytes)?;
        let expected = prefix.header.ciphertext_len();
        // usize is at least 32 bits and the payload is bounded, but compare as u64 anyway.
        let actual = rest.len() as u64;
        if actual < expected {
            return Err(DecodeError::Truncated);
        }
        if actual > expected {
            return Err(DecodeError::TrailingBytes);
        }
        Ok(Self {
            prefix,
            ciphertext: rest,
        })
    }

    /// The prefix (header, digest, signature, wrapped keys).
    pub fn prefix(&self) -> &EnvelopePrefix<'a> {
        &self.prefix
    }

    /// The parsed header.
    pub fn header(&self) -> &EnvelopeHeader {
        &self.prefix.header
    }

    /// All chunks, concatenated.
    pub fn ciphertext(&self) -> &'a [u8] {
        self.ciphertext
    }
}

/// Hashes the chunks of an upload as they stream past and checks them against the signed
/// digest at the end. Holds no key: for a server storing ciphertext.
#[derive(Clone, Debug)]
pub struct PayloadVerifier {
    hasher: Sha256,
    expected: [u8; PAYLOAD_DIGEST_LEN],
    remaining: u64,
}

impl PayloadVerifier {
    /// Feeds the next bytes of the chunks; refuses more bytes than the header announced.
    pub fn update(&mut self, bytes: &[u8]) -> Result<(), OpenError> {
        let len = bytes.len() as u64;
        if len > self.remaining {
            return Err(DecodeError::TrailingBytes.into());
        }
        self.remaining -= len;
        self.hasher.update(bytes);
        Ok(())
    }

    /// Succeeds when all announced bytes arrived and they hash to the signed digest.
    pub fn finish(self) -> Result<(), OpenError> {
        if self.remaining != 0 {
            return Err(DecodeError::Truncated.into());
        }
        if self.hasher.finalize().as_slice() == self.expected {
            Ok(())
        } else {
            Err(OpenError::PayloadDigestMismatch)
        }
    }
}

/// AES-256-GCM over the chunks, STREAM-style: the nonce carries the chunk's position and
/// whether it is the last, so moving, repeating, dropping or adding a chunk fails.
struct ChunkCipher {
    aead: Aes256Gcm,
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
}

impl ChunkCipher {
    /// `HKDF-SHA256(salt = message id, ikm = content key, info = "pawpost/v1/payload")`,
    /// 39 bytes: the AES key then the 7-byte nonce prefix.
    fn new(content_key: &[u8; 32], message_id: &MessageId) -> Self {
        let mut okm = Zeroizing::new([0u8; 32 + NONCE_PREFIX_LEN]);
        Hkdf::<Sha256>::new(Some(&message_id.0), content_key)
            .expand(PAYLOAD_KEY_DOMAIN, okm.as_mut())
            .expect("39 bytes is a valid HKDF-SHA256 output length");
        let aead = Aes256Gcm::new_from_slice(&okm[..32]).expect("AES-256 key is 32 bytes");
        let mut nonce_prefix = [0u8; NONCE_PREFIX_LEN];
        nonce_prefix.copy_from_slice(&okm[32..]);
        Self { aead, nonce_prefix }
    }

    /// `nonce prefix (7) || chunk index (u32, big-endian) || last flag (0x00 or 0x01)`.
    fn nonce(&self, index: u32, last: bool) -> aes_gcm::Nonce<aes_gcm::aead::consts::U12> {
        let mut nonce = [0u8; 12];
        nonce[..NONCE_PREFIX_LEN].copy_from_slice(&self.nonce_prefix);
        nonce[NONCE_PREFIX_LEN..11].copy_from_slice(&index.to_be_bytes());
        nonce[11] = u8::from(last);
        nonce.into()
    }

    fn seal(
        &self,
        header_bytes: &[u8],
        index: u32,
        last: bool,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) {
        let start = out.len();
        out.put(plaintext);
        let tag = self
            .aead
            .encrypt_inout_detached(
                &self.nonce(index, last),
                header_bytes,
                out[start..].as_mut().into(),
            )
            .expect("chunk and header are far below AES-GCM's limits");
        out.put(&tag);
    }

    /// Decrypts `chunk` (ciphertext then tag) in place and returns the plaintext part.
    fn open<'b>(
        &self,
        header_bytes: &[u8],
        index: u32,
        last: bool,
        chunk: &'b mut [u8],
    ) -> Result<&'b [u8], OpenError> {
        let split = chunk
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(OpenError::ChunkLength)?;
        let (body, tag) = chunk.split_at_mut(split);
        let tag = aes_gcm::Tag::try_from(&*tag).map_err(|_| OpenError::ChunkLength)?;
        self.aead
            .decrypt_inout_detached(&self.nonce(index, last), header_bytes, body.into(), &tag)
            .map_err(|_| OpenError::ChunkAuthentication)?;
        Ok(body)
    }
}

/// What a message is about, chosen by the sender.
#[derive(Clone, Copy, Debug)]
pub struct MessageParams<'a> {
    /// A fresh id for this message.
    pub message_id: MessageId,
    /// The sender's household.
    pub household_id: HouseholdId,
    /// Unix milliseconds.
    pub created_at_ms: u64,
    /// What the payload is.
    pub media_type: MediaType,
    /// Playing time in milliseconds (0 when not audio).
    pub duration_ms: u32,
    /// Who can open it; their order is kept in the header.
    pub recipients: &'a [PublicIdentity],
}

/// Seals `payload` for every recipient and signs it as `sender`.
///
/// Randomness drawn from `rng`, in order: the 32-byte content key, then 32 bytes per
/// recipient for its HPKE ephemeral key. Everything else is deterministic, so a seeded `rng`
/// gives reproducible bytes.
pub fn seal(
    rng: &mut impl CryptoRng,
    sender: &DeviceKeys,
    params: &MessageParams<'_>,
    payload: &[u8],
) -> Result<Vec<u8>, SealError> {
    check_recipient_count(params.recipients.len()).map_err(|e| match e {
        DecodeError::NoRecipients => SealError::NoRecipients,
        _ => SealError::TooManyRecipients,
    })?;
    let payload_len = payload.len() as u64;
    if payload_len > MAX_PAYLOAD_LEN {
        return Err(SealError::PayloadTooLarge);
    }
    let mut recipients = Vec::with_capacity(params.recipients.len());
    for r in params.recipients {
        if recipients.contains(&r.device_id) {
            return Err(SealError::DuplicateRecipient);
        }
        recipients.push(r.device_id);
    }
    let header = EnvelopeHeader {
        message_id: params.message_id,
        household_id: params.household_id,
        sender: sender.device_id(),
        recipients,
        created_at_ms: params.created_at_ms,
        media_type: params.media_type,
        duration_ms: params.duration_ms,
        payload_len,
    };
    let header_bytes = header.encode();

    let mut content_key = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(content_key.as_mut());

    let cipher = ChunkCipher::new(&content_key, &header.message_id);
    let count = header.chunk_count();
    // Only a hint: sealing checked the length against MAX_PAYLOAD_LEN.
    let mut ciphertext = Vec::with_capacity(usize::try_from(header.ciphertext_len()).unwrap_or(0));
    for index in 0..count {
        let start = index as usize * CHUNK_SIZE;
        let end = start + chunk_plain_len(payload_len, index);
        cipher.seal(
            &header_bytes,
            index,
            index + 1 == count,
            &payload[start..end],
            &mut ciphertext,
        );
    }
    let payload_digest: [u8; 32] = Sha256::digest(&ciphertext).into();
    let signature = sender.sign(&signature_input(&header_bytes, &payload_digest));

    let info = key_wrap_info(&header_bytes);
    let mut out = Vec::with_capacity(
        header_bytes.len()
            + PAYLOAD_DIGEST_LEN
            + SIGNATURE_LEN
            + WRAPPED_KEY_LEN * params.recipients.len()
            + ciphertext.len(),
    );
    out.put(&header_bytes);
    out.put(&payload_digest);
    out.put(&signature);
    for recipient in params.recipients {
        let pk = <HpkeKem as hpke::Kem>::PublicKey::from_bytes(&recipient.x25519_pub)
            .map_err(|_| SealError::InvalidRecipientKey)?;
        let (enc, mut ctx) = hpke::setup_sender_with_rng::<HpkeAead, HpkeKdf, HpkeKem>(
            &OpModeS::Base,
            &pk,
            &info,
            rng,
        )
        .map_err(|_| SealError::InvalidRecipientKey)?;
        let sealed = ctx
            .seal(content_key.as_slice(), &recipient.device_id.0)
            .expect("a fresh HPKE context seals one message");
        out.put(&enc.to_bytes());
        out.put(&sealed);
    }
    out.put(&ciphertext);
    Ok(out)
}

/// A message opened by one of its recipients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenedMessage {
    /// The verified header.
    pub header: EnvelopeHeader,
    /// The plaintext payload, exactly `header.payload_len` bytes.
    pub payload: Vec<u8>,
}

/// Checks sender, signature and recipient, in that order; returns this device's key index.
fn authenticate(
    prefix: &EnvelopePrefix<'_>,
    recipient: &DeviceKeys,
    sender: &PublicIdentity,
) -> Result<usize, OpenError> {
    prefix.verify_sender(sender)?;
    prefix
        .header
        .recipient_index(recipient.device_id())
        .ok_or(OpenError::NotARecipient)
}

/// Opens this device's wrapped content key with HPKE.
fn unwrap_content_key(
    prefix: &EnvelopePrefix<'_>,
    index: usize,
    recipient: &DeviceKeys,
) -> Result<Zeroizing<[u8; 32]>, OpenError> {
    let wrapped = prefix.wrapped_key(index);
    let (enc, sealed) = wrapped.split_at(32);
    let enc =
        <HpkeKem as hpke::Kem>::EncappedKey::from_bytes(enc).map_err(|_| OpenError::KeyUnwrap)?;
    let sk = <HpkeKem as hpke::Kem>::PrivateKey::from_bytes(recipient.x25519_secret().as_slice())
        .map_err(|_| OpenError::KeyUnwrap)?;
    let info = key_wrap_info(prefix.header_bytes);
    let mut ctx =
        hpke::setup_receiver::<HpkeAead, HpkeKdf, HpkeKem>(&OpModeR::Base, &sk, &enc, &info)
            .map_err(|_| OpenError::KeyUnwrap)?;
    let key = Zeroizing::new(
        ctx.open(sealed, &recipient.device_id().0)
            .map_err(|_| OpenError::KeyUnwrap)?,
    );
    let mut content_key = Zeroizing::new([0u8; 32]);
    if key.len() != 32 {
        return Err(OpenError::KeyUnwrap);
    }
    content_key.copy_from_slice(&key);
    Ok(content_key)
}

/// Opens a complete envelope in one call.
///
/// Checks, in order: structure and limits, that `sender` is the header's sender, the
/// signature, that `recipient` is a recipient, the payload digest, the wrapped key, then
/// every chunk. The caller must already trust `sender` (for example an approved member of
/// the current roster, see [`EnvelopePrefix::verify_sender_in_roster`]).
pub fn open(
    envelope: &[u8],
    recipient: &DeviceKeys,
    sender: &PublicIdentity,
) -> Result<OpenedMessage, OpenError> {
    let envelope = Envelope::parse(envelope)?;
    let prefix = envelope.prefix();
    let index = authenticate(prefix, recipient, sender)?;
    let mut verifier = prefix.payload_verifier();
    verifier.update(envelope.ciphertext)?;
    verifier.finish()?;
    let content_key = unwrap_content_key(prefix, index, recipient)?;
    let cipher = ChunkCipher::new(&content_key, &prefix.header.message_id);

    let payload_len = prefix.header.payload_len;
    let count = prefix.header.chunk_count();
    let mut payload = Vec::with_capacity(envelope.ciphertext.len());
    let mut offset = 0;
    for index in 0..count {
        let len = chunk_plain_len(payload_len, index) + TAG_LEN;
        let start = payload.len();
        payload.put(&envelope.ciphertext[offset..offset + len]);
        offset += len;
        let plain_len = cipher
            .open(
                prefix.header_bytes,
                index,
                index + 1 == count,
                &mut payload[start..],
            )?
            .len();
        payload.truncate(start + plain_len);
    }
    Ok(OpenedMessage {
        header: prefix.header.clone(),
        payload,
    })
}

/// Opens an envelope chunk by chunk in memory bounded by one chunk: for a toy.
///
/// Feed the prefix to [`StreamOpener::new`], then each chunk, in order, to
/// [`StreamOpener::open_chunk`], then call [`StreamOpener::finish`]. Each chunk is
/// authenticated on its own, but only `finish` proves the chunks are the ones the sender
/// signed: keep the plaintext aside and present it only once `finish` succeeds.
#[derive(Debug)]
pub struct StreamOpener {
    cipher: ChunkCipher,
    header: EnvelopeHeader,
    header_bytes: Vec<u8>,
    next_index: u32,
    verifier: PayloadVerifier,
}

impl core::fmt::Debug for ChunkCipher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The key stays out of logs.
        f.write_str("ChunkCipher")
    }
}

impl StreamOpener {
    /// Checks the sender, its signature and that `recipient` is a recipient, then unwraps the
    /// content key.
    pub fn new(
        prefix: &EnvelopePrefix<'_>,
        recipient: &DeviceKeys,
        sender: &PublicIdentity,
    ) -> Result<Self, OpenError> {
        let index = authenticate(prefix, recipient, sender)?;
        let content_key = unwrap_content_key(prefix, index, recipient)?;
        Ok(Self {
            cipher: ChunkCipher::new(&content_key, &prefix.header.message_id),
            header: prefix.header.clone(),
            header_bytes: prefix.header_bytes.to_vec(),
            next_index: 0,
            verifier: prefix.payload_verifier(),
        })
    }

    /// The verified header.
    pub fn header(&self) -> &EnvelopeHeader {
        &self.header
    }

    /// Length (ciphertext and tag) of the next chunk, or `None` once the last one is open.
    pub fn next_chunk_len(&self) -> Option<usize> {
        (self.next_index < self.header.chunk_count())
            .then(|| chunk_plain_len(self.header.payload_len, self.next_index) + TAG_LEN)
    }

    /// Decrypts the next chunk in place and returns its plaintext.
    pub fn open_chunk<'b>(&mut self, chunk: &'b mut [u8]) -> Result<&'b [u8], OpenError> {
        let expected = self.next_chunk_len().ok_or(OpenError::ExtraChunk)?;
        if chunk.len() != expected {
            return Err(OpenError::ChunkLength);
        }
        self.verifier.update(chunk)?;
        let index = self.next_index;
        let last = index + 1 == self.header.chunk_count();
        let plaintext = self.cipher.open(&self.header_bytes, index, last, chunk)?;
        self.next_index += 1;
        Ok(plaintext)
    }

    /// Succeeds once every chunk has been opened and together they match the signed digest.
    pub fn finish(self) -> Result<EnvelopeHeader, OpenError> {
        if self.next_index != self.header.chunk_count() {
            return Err(OpenError::MissingChunks);
        }
        self.verifier.finish()?;
        Ok(self.header)
    }
}
