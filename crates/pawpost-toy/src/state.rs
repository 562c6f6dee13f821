//! What the toy keeps across power cycles, as one versioned byte string the shell stores.
//!
//! The blob holds the toy's secret keys: the shell keeps it in the device's protected
//! storage. Queued audio is not in it: it lives in the shell's audio storage, one file per
//! message (`Action::StoreAudio`), so that saving the small, often-changing state never
//! rewrites audio. Layout (big-endian):
//!
//! ```text
//! version (1) = 2
//! keys: secret (81)                       DeviceKeys::to_secret_bytes
//! keys_created_unix_ms (u64)              0 = not known yet
//! pending keys: flag (1) [secret (81)]    a rotation sent, not yet acknowledged
//! retired keys: flag (1) [secret (81)]    the keys the roster still lists after a rotation
//! paired: flag (1) [
//!   signed roster: len (u32) bytes
//!   pinned owner keys: count (u8) then 32 bytes each
//! ]
//! seen: floor_ms (u64), count (u16), then per id: message_id (16) created_at_ms (u64)
//! queue: count (u8), then per message:
//!   message_id (16) sender (16) created_at_ms (u64) held (1)
//! ```
//!
//! Version 1 had each queued message's audio after `held` (`ogg: len (u32) bytes`); a
//! version 1 blob still restores, and its audio moves to audio storage at the next start.

use alloc::vec::Vec;
use core::fmt;

use pawpost_crypto::{DeviceKeys, DEVICE_SECRET_LEN, MAX_MEMBERS};
use zeroize::Zeroizing;

use crate::{MAX_QUEUED_MESSAGES, MAX_SEEN_IDS};
use pawpost_protocol::{MAX_ENVELOPE_LEN, MAX_SIGNED_ROSTER_LEN};

/// Version byte of the state blob.
pub const STATE_VERSION: u8 = 2;
/// The earlier version, which held queued audio in the blob.
pub(crate) const STATE_VERSION_WITH_AUDIO: u8 = 1;

/// The bytes the shell must store, and hand back to [`crate::Toy::restore`] at the next
/// start. Contains secret keys: zeroed when dropped, and never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct StateBlob(Zeroizing<Vec<u8>>);

impl StateBlob {
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The bytes to store.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for StateBlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The blob holds secret keys: only its size may reach a log.
        write!(f, "StateBlob({} bytes)", self.0.len())
    }
}

/// Why a stored state could not be restored. The shell cannot repair it: the toy must be
/// reset and paired again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StateError {
    /// The blob ends early.
    Truncated,
    /// Bytes follow the blob's end.
    TrailingBytes,
    /// The version byte is not [`STATE_VERSION`].
    UnsupportedVersion,
    /// A flag byte is neither 0 nor 1.
    InvalidFlag,
    /// A count or length is above its limit.
    OverLimit,
    /// A stored key or roster does not decode.
    InvalidContent,
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Truncated => "stored toy state is cut short",
            Self::TrailingBytes => "stored toy state has bytes after its end",
            Self::UnsupportedVersion => "stored toy state has an unknown version",
            Self::InvalidFlag => "stored toy state has an invalid flag",
            Self::OverLimit => "stored toy state is over a limit",
            Self::InvalidContent => "stored toy state holds an undecodable key or roster",
        })
    }
}

pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    pub(crate) fn keys(&mut self, keys: &DeviceKeys) {
        self.bytes(keys.to_secret_bytes().as_slice());
    }
    pub(crate) fn optional_keys(&mut self, keys: Option<&DeviceKeys>) {
        match keys {
            Some(k) => {
                self.u8(1);
                self.keys(k);
            }
            None => self.u8(0),
        }
    }
    /// A count as [`Reader::count`] reads it: a `u16` when `wide`, else a `u8`. Callers keep
    /// counts within their `MAX_STORED_*` limits, which fit; a larger one is written as
    /// the largest value, which a restore refuses as over the limit.
    pub(crate) fn count(&mut self, wide: bool, n: usize) {
        if wide {
            self.u16(u16::try_from(n).unwrap_or(u16::MAX));
        } else {
            self.u8(u8::try_from(n).unwrap_or(u8::MAX));
        }
    }
    /// A `u32` length then the bytes; callers keep the bytes within their limits.
    pub(crate) fn field(&mut self, b: &[u8]) {
        self.u32(u32::try_from(b.len()).unwrap_or(u32::MAX));
        self.bytes(b);
    }
}

pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8], StateError> {
        if self.rest.len() < len {
            return Err(StateError::Truncated);
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], StateError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, StateError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, StateError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, StateError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, StateError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn flag(&mut self) -> Result<bool, StateError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(StateError::InvalidFlag),
        }
    }

    pub(crate) fn keys(&mut self) -> Result<DeviceKeys, StateError> {
        DeviceKeys::from_secret_bytes(self.take(DEVICE_SECRET_LEN)?)
            .map_err(|_| StateError::InvalidContent)
    }

    pub(crate) fn optional_keys(&mut self) -> Result<Option<DeviceKeys>, StateError> {
        if self.flag()? {
            Ok(Some(self.keys()?))
        } else {
            Ok(None)
        }
    }

    pub(crate) fn field(&mut self, max: usize) -> Result<&'a [u8], StateError> {
        let len = usize::try_from(self.u32()?).map_err(|_| StateError::OverLimit)?;
        if len > max {
            return Err(StateError::OverLimit);
        }
        self.take(len)
    }

    pub(crate) fn count(&mut self, wide: bool, max: usize) -> Result<usize, StateError> {
        let n = if wide {
            usize::from(self.u16()?)
        } else {
            usize::from(self.u8()?)
        };
        if n > max {
            return Err(StateError::OverLimit);
        }
        Ok(n)
    }

    pub(crate) fn finish(self) -> Result<(), StateError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(StateError::TrailingBytes)
        }
    }
}

/// Limits the restore path checks, named here so the layout comment and the code agree.
pub(crate) const MAX_STORED_ROSTER_LEN: usize = MAX_SIGNED_ROSTER_LEN;
pub(crate) const MAX_STORED_PINS: usize = MAX_MEMBERS;
pub(crate) const MAX_STORED_SEEN: usize = MAX_SEEN_IDS;
pub(crate) const MAX_STORED_QUEUE: usize = MAX_QUEUED_MESSAGES;
pub(crate) const MAX_STORED_OGG_LEN: usize = MAX_ENVELOPE_LEN;
