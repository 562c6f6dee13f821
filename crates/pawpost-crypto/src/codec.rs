//! Strict, big-endian reading and writing of the wire formats.
//!
//! Every decoder in this crate goes through [`Reader`], so every format rejects a short
//! input, a trailing byte and a non-canonical flag in the same way.

use alloc::vec::Vec;

/// Why a byte string is not a valid encoding. Small and `Copy` so that a toy can match on it
/// without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum DecodeError {
    /// The input ends before the structure does: wait for more bytes or reject it.
    #[error("input is truncated")]
    Truncated,
    /// The structure ends before the input does; bytes after it are refused, not ignored.
    #[error("unexpected bytes after the end of the structure")]
    TrailingBytes,
    /// The format version byte is not one this build understands.
    #[error("unsupported format version")]
    UnsupportedVersion,
    /// The media type byte is not a known media type.
    #[error("unknown media type")]
    UnknownMediaType,
    /// The member role byte is not a known role.
    #[error("unknown member role")]
    UnknownRole,
    /// The member status byte is not a known status.
    #[error("unknown member status")]
    UnknownStatus,
    /// A boolean byte is neither 0 nor 1.
    #[error("boolean byte is neither 0 nor 1")]
    InvalidBool,
    /// A public key is not a valid, non-weak key.
    #[error("invalid public key")]
    InvalidKey,
    /// An envelope lists no recipient.
    #[error("envelope has no recipient")]
    NoRecipients,
    /// An envelope lists more than [`crate::MAX_RECIPIENTS`] recipients.
    #[error("too many recipients")]
    TooManyRecipients,
    /// An envelope lists the same recipient twice.
    #[error("recipient listed twice")]
    DuplicateRecipient,
    /// A payload is longer than [`crate::MAX_PAYLOAD_LEN`].
    #[error("payload too large")]
    PayloadTooLarge,
    /// A roster lists no member.
    #[error("roster has no member")]
    NoMembers,
    /// A roster lists more than [`crate::MAX_MEMBERS`] members.
    #[error("too many roster members")]
    TooManyMembers,
    /// Roster members are not in strictly ascending device id order (or one is listed twice).
    #[error("roster members are not sorted by device id or are duplicated")]
    MembersNotSorted,
    /// Household settings are out of range (quiet hours, timezone offset or retention).
    #[error("household settings out of range")]
    InvalidSettings,
    /// A first roster version must have version 1 and an all-zero previous digest, and a later
    /// one a version above 1.
    #[error("roster version and previous digest are inconsistent")]
    InvalidRosterVersion,
}

impl DecodeError {
    /// Stable snake_case name, used by the shared test vectors and by other implementations.
    pub const fn code(self) -> &'static str {
        match self {
            Self::Truncated => "truncated",
            Self::TrailingBytes => "trailing_bytes",
            Self::UnsupportedVersion => "unsupported_version",
            Self::UnknownMediaType => "unknown_media_type",
            Self::UnknownRole => "unknown_role",
            Self::UnknownStatus => "unknown_status",
            Self::InvalidBool => "invalid_bool",
            Self::InvalidKey => "invalid_key",
            Self::NoRecipients => "no_recipients",
            Self::TooManyRecipients => "too_many_recipients",
            Self::DuplicateRecipient => "duplicate_recipient",
            Self::PayloadTooLarge => "payload_too_large",
            Self::NoMembers => "no_members",
            Self::TooManyMembers => "too_many_members",
            Self::MembersNotSorted => "members_not_sorted",
            Self::InvalidSettings => "invalid_settings",
            Self::InvalidRosterVersion => "invalid_roster_version",
        }
    }
}

/// A cursor over borrowed bytes that fails with [`DecodeError::Truncated`] instead of panicking.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// How many bytes are left.
    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// The bytes not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    pub(crate) fn bytes(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < len {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn i16(&mut self) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A boolean is exactly 0 or 1 so that each value has one encoding.
    pub(crate) fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::InvalidBool),
        }
    }

    /// Ends a strict decode: anything left over is an error.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}

/// Appends big-endian fields to a byte vector.
pub(crate) trait Writer {
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_i16(&mut self, v: i16);
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
    fn put(&mut self, bytes: &[u8]);
}

impl Writer for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_i16(&mut self, v: i16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_input_is_truncated_not_a_panic() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16(), Ok(0x0102));
        assert_eq!(r.u16(), Err(DecodeError::Truncated));
    }

    #[test]
    fn leftover_bytes_are_refused() {
        let mut r = Reader::new(&[0, 7]);
        assert_eq!(r.bool(), Ok(false));
        assert_eq!(r.finish(), Err(DecodeError::TrailingBytes));
    }

    #[test]
    fn a_boolean_has_exactly_one_encoding_per_value() {
        assert_eq!(Reader::new(&[2]).bool(), Err(DecodeError::InvalidBool));
    }
}
