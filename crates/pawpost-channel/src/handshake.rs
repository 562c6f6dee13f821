//! The handshakes: XX while pairing (with the committed nonces of the pairing number),
//! IK on every later connection of a paired toy.

use alloc::vec::Vec;

use clatter::bytearray::{ByteArray, SensitiveByteArray};
use clatter::handshakepattern::{noise_ik, noise_xx};
use clatter::traits::Handshaker;
use clatter::{KeyPair, NqHandshakeCore};
use sha2::{Digest, Sha256 as Sha};

use crate::channel::Channel;
use crate::suite::{AesGcm, NoRng, Sha256, X25519};
use crate::{
    message_kind, ChannelError, PublicKey, StaticKey, CHANNEL_VERSION, COMMIT_DOMAIN, KEY_LEN,
    KIND_PAIR_1, KIND_PAIR_2, KIND_PAIR_3, KIND_RESUME_1, KIND_RESUME_2, MAX_MESSAGE_LEN,
    MESSAGE_HEADER_LEN, NUMBER_DOMAIN, PAIRING_NUMBER_DIGITS, PROLOGUE,
};

type Handshake = NqHandshakeCore<X25519, AesGcm, Sha256, NoRng>;

/// Room for the largest handshake message (XX's second: 32 + 32 + 16 + 32 + 16 bytes).
const HANDSHAKE_BUF_LEN: usize = 192;

/// A finished handshake.
#[derive(Debug)]
pub struct Established {
    /// The channel, ready for records both ways.
    pub channel: Channel,
    /// The peer's static key: for the toy the server's key (learned while pairing, to be
    /// pinned when pairing succeeds; the pinned one otherwise), for the server the toy's.
    pub peer_key: PublicKey,
    /// While pairing, the number the toy speaks and the parent's app shows.
    pub pairing_number: Option<[u8; PAIRING_NUMBER_DIGITS]>,
    /// The Noise handshake hash, the same at both ends of one handshake.
    pub handshake_hash: [u8; KEY_LEN],
}

fn key_pair(key: &StaticKey) -> KeyPair<PublicKey, SensitiveByteArray<[u8; KEY_LEN]>> {
    KeyPair::new(*key.public(), SensitiveByteArray::new(*key.secret()))
}

fn refused(_: clatter::error::HandshakeError) -> ChannelError {
    ChannelError::HandshakeFailed
}

/// The Noise bytes of `message` if it is a version 3 message of `kind`.
fn body(message: &[u8], kind: u8) -> Result<&[u8], ChannelError> {
    if message.len() > MAX_MESSAGE_LEN {
        return Err(ChannelError::WrongLength);
    }
    if message_kind(message)? != kind {
        return Err(ChannelError::UnexpectedMessage);
    }
    Ok(&message[MESSAGE_HEADER_LEN..])
}

/// Writes the next handshake message, of `kind`, with `payload`, to `out`.
fn write(
    hs: &mut Handshake,
    kind: u8,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), ChannelError> {
    let mut buf = [0u8; HANDSHAKE_BUF_LEN];
    let len = hs.write_message(payload, &mut buf).map_err(refused)?;
    out.extend_from_slice(&[CHANNEL_VERSION, kind]);
    out.extend_from_slice(&buf[..len]);
    Ok(())
}

/// Reads the next handshake message, of `kind`, whose payload must be `N` bytes.
fn read<const N: usize>(
    hs: &mut Handshake,
    message: &[u8],
    kind: u8,
) -> Result<[u8; N], ChannelError> {
    let noise = body(message, kind)?;
    let overhead = hs.get_next_message_overhead().map_err(refused)?;
    if noise.len() != overhead + N {
        return Err(ChannelError::WrongLength);
    }
    let mut payload = [0u8; N];
    let mut buf = [0u8; HANDSHAKE_BUF_LEN];
    let len = hs.read_message(noise, &mut buf).map_err(refused)?;
    if len != N {
        return Err(ChannelError::WrongLength);
    }
    payload.copy_from_slice(&buf[..N]);
    Ok(payload)
}

fn hash_now(hs: &Handshake) -> [u8; KEY_LEN] {
    let mut h = [0u8; KEY_LEN];
    h.copy_from_slice(hs.get_state().get_hash().as_slice());
    h
}

fn finish(
    hs: Handshake,
    peer_key: PublicKey,
    pairing_number: Option<[u8; PAIRING_NUMBER_DIGITS]>,
) -> Result<Established, ChannelError> {
    let transport = hs.finalize().map_err(refused)?;
    let mut handshake_hash = [0u8; KEY_LEN];
    handshake_hash.copy_from_slice(transport.get_handshake_hash().as_slice());
    Ok(Established {
        channel: Channel::new(transport),
        peer_key,
        pairing_number,
        handshake_hash,
    })
}

fn remote_static(hs: &Handshake) -> Result<PublicKey, ChannelError> {
    hs.get_remote_static().ok_or(ChannelError::HandshakeFailed)
}

fn commitment(nonce: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    Sha::new()
        .chain_update(COMMIT_DOMAIN)
        .chain_update(nonce)
        .finalize()
        .into()
}

/// The pairing number of a handshake whose hash after its second message was `hash`,
/// with the toy's and the server's nonces: the first four bytes of
/// SHA-256(`NUMBER_DOMAIN || hash || toy_nonce || server_nonce`), big-endian, modulo
/// 1000, as three decimal digits.
pub fn pairing_number(
    hash: &[u8; KEY_LEN],
    toy_nonce: &[u8; KEY_LEN],
    server_nonce: &[u8; KEY_LEN],
) -> [u8; PAIRING_NUMBER_DIGITS] {
    let digest: [u8; 32] = Sha::new()
        .chain_update(NUMBER_DOMAIN)
        .chain_update(hash)
        .chain_update(toy_nonce)
        .chain_update(server_nonce)
        .finalize()
        .into();
    let value = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % 1000;
    let digit = |d: u32| u8::try_from(d % 10).expect("a decimal digit fits a byte");
    [digit(value / 100), digit(value / 10), digit(value)]
}

/// The toy's side of a pairing handshake (Noise XX), between its first message and the
/// server's reply.
pub struct ToyPairing {
    hs: Handshake,
    nonce: [u8; KEY_LEN],
}

impl ToyPairing {
    /// Starts pairing with the toy's static key, a fresh ephemeral key and a fresh random
    /// nonce, and appends the first message to `out`.
    pub fn start(
        toy_key: &StaticKey,
        ephemeral: &StaticKey,
        nonce: [u8; KEY_LEN],
        out: &mut Vec<u8>,
    ) -> Result<Self, ChannelError> {
        let mut hs = Handshake::new(
            noise_xx(),
            PROLOGUE,
            true,
            Some(key_pair(toy_key)),
            Some(key_pair(ephemeral)),
            None,
            None,
        )
        .map_err(refused)?;
        write(&mut hs, KIND_PAIR_1, &commitment(&nonce), out)?;
        Ok(Self { hs, nonce })
    }

    /// Reads the server's reply, appends the toy's last message (which the server must
    /// receive before any record) to `out`, and returns the channel with the server's
    /// key and the pairing number.
    pub fn read_reply(
        mut self,
        message: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Established, ChannelError> {
        let server_nonce: [u8; KEY_LEN] = read(&mut self.hs, message, KIND_PAIR_2)?;
        let number = pairing_number(&hash_now(&self.hs), &self.nonce, &server_nonce);
        let server_key = remote_static(&self.hs)?;
        write(&mut self.hs, KIND_PAIR_3, &self.nonce, out)?;
        finish(self.hs, server_key, Some(number))
    }
}

/// The toy's side of a paired connection (Noise IK with the pinned server key), between
/// its first message and the server's reply.
pub struct ToyResume {
    hs: Handshake,
    server_key: PublicKey,
}

impl ToyResume {
    /// Starts a connection to the server whose key the toy pinned, and appends the first
    /// message to `out`.
    pub fn start(
        toy_key: &StaticKey,
        server_key: &PublicKey,
        ephemeral: &StaticKey,
        out: &mut Vec<u8>,
    ) -> Result<Self, ChannelError> {
        let mut hs = Handshake::new(
            noise_ik(),
            PROLOGUE,
            true,
            Some(key_pair(toy_key)),
            Some(key_pair(ephemeral)),
            Some(*server_key),
            None,
        )
        .map_err(refused)?;
        write(&mut hs, KIND_RESUME_1, &[], out)?;
        Ok(Self {
            hs,
            server_key: *server_key,
        })
    }

    /// Reads the server's reply: only the holder of the pinned key can write one that
    /// authenticates.
    pub fn read_reply(mut self, message: &[u8]) -> Result<Established, ChannelError> {
        read::<0>(&mut self.hs, message, KIND_RESUME_2)?;
        finish(self.hs, self.server_key, None)
    }
}

/// What the server's answer to a toy's first message led to.
pub enum Accepted {
    /// A paired toy's connection (IK): the channel is ready; `peer_key` is the toy's
    /// static key.
    Resumed(alloc::boxed::Box<Established>),
    /// A pairing toy (XX): the server waits for the toy's last message.
    Pairing(alloc::boxed::Box<ServerPairing>),
}

/// The server's side of a pairing handshake, waiting for the toy's last message.
pub struct ServerPairing {
    hs: Handshake,
    commitment: [u8; KEY_LEN],
    nonce: [u8; KEY_LEN],
    hash: [u8; KEY_LEN],
}

/// The server answers a toy's first message with its static key, a fresh ephemeral key
/// and a fresh random nonce (used only if the toy is pairing), appending its reply to
/// `out`.
pub fn accept(
    server_key: &StaticKey,
    ephemeral: &StaticKey,
    nonce: [u8; KEY_LEN],
    first: &[u8],
    out: &mut Vec<u8>,
) -> Result<Accepted, ChannelError> {
    let pairing = match message_kind(first)? {
        KIND_PAIR_1 => true,
        KIND_RESUME_1 => false,
        _ => return Err(ChannelError::UnexpectedMessage),
    };
    let pattern = if pairing { noise_xx() } else { noise_ik() };
    let mut hs = Handshake::new(
        pattern,
        PROLOGUE,
        false,
        Some(key_pair(server_key)),
        Some(key_pair(ephemeral)),
        None,
        None,
    )
    .map_err(refused)?;
    if pairing {
        let commitment: [u8; KEY_LEN] = read(&mut hs, first, KIND_PAIR_1)?;
        write(&mut hs, KIND_PAIR_2, &nonce, out)?;
        let hash = hash_now(&hs);
        Ok(Accepted::Pairing(alloc::boxed::Box::new(ServerPairing {
            hs,
            commitment,
            nonce,
            hash,
        })))
    } else {
        read::<0>(&mut hs, first, KIND_RESUME_1)?;
        let toy_key = remote_static(&hs)?;
        write(&mut hs, KIND_RESUME_2, &[], out)?;
        finish(hs, toy_key, None).map(|e| Accepted::Resumed(alloc::boxed::Box::new(e)))
    }
}

impl ServerPairing {
    /// Reads the toy's last message: its static key and its nonce, which must match the
    /// commitment of its first message.
    pub fn read_final(mut self, message: &[u8]) -> Result<Established, ChannelError> {
        let toy_nonce: [u8; KEY_LEN] = read(&mut self.hs, message, KIND_PAIR_3)?;
        if commitment(&toy_nonce) != self.commitment {
            return Err(ChannelError::CommitmentMismatch);
        }
        let number = pairing_number(&self.hash, &toy_nonce, &self.nonce);
        let toy_key = remote_static(&self.hs)?;
        finish(self.hs, toy_key, Some(number))
    }
}
