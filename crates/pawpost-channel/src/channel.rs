//! Records: one padded, encrypted frame each, in order, never twice.

use alloc::vec::Vec;
use core::ops::Range;

use clatter::transportstate::TransportState;

use crate::suite::{AesGcm, Sha256};
use crate::{
    message_kind, ChannelError, CHANNEL_VERSION, KIND_RECORD, LENGTH_PREFIX_LEN,
    MAX_RECORD_FRAME_LEN, MESSAGE_HEADER_LEN, RECORD_SIZES, TAG_LEN,
};

/// An established channel. Any refused record closes it for good.
pub struct Channel {
    transport: TransportState<AesGcm, Sha256>,
    closed: bool,
}

impl core::fmt::Debug for Channel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Channel")
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

/// The padded size of a frame of `len` bytes, if a record can carry it.
pub fn record_size(len: usize) -> Option<usize> {
    RECORD_SIZES
        .iter()
        .copied()
        .find(|size| len + LENGTH_PREFIX_LEN <= *size)
}

impl Channel {
    pub(crate) fn new(transport: TransportState<AesGcm, Sha256>) -> Self {
        Self {
            transport,
            closed: false,
        }
    }

    /// Whether a refused record (or a counter that ran out) closed the channel.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    fn fail(&mut self, error: ChannelError) -> ChannelError {
        self.closed = true;
        error
    }

    /// Appends `frame` as one record to `out`. A frame over [`MAX_RECORD_FRAME_LEN`] is
    /// refused (the channel stays open).
    pub fn seal(&mut self, frame: &[u8], out: &mut Vec<u8>) -> Result<(), ChannelError> {
        if self.closed {
            return Err(ChannelError::Closed);
        }
        let size = record_size(frame.len()).ok_or(ChannelError::FrameTooLarge)?;
        let length = u32::try_from(frame.len()).map_err(|_| ChannelError::FrameTooLarge)?;
        out.reserve(MESSAGE_HEADER_LEN + size + TAG_LEN);
        out.extend_from_slice(&[CHANNEL_VERSION, KIND_RECORD]);
        let start = out.len();
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(frame);
        out.resize(start + size + TAG_LEN, 0);
        match self.transport.send_in_place(&mut out[start..], size) {
            Ok(_) => Ok(()),
            Err(_) => {
                out.truncate(start - MESSAGE_HEADER_LEN);
                Err(self.fail(ChannelError::Closed))
            }
        }
    }

    /// The frame in `message`, a record. Anything but the next record of the peer, whole
    /// and unaltered, is refused and closes the channel.
    pub fn open(&mut self, message: &[u8]) -> Result<Vec<u8>, ChannelError> {
        let mut buf = message.to_vec();
        let range = self.open_in_place(&mut buf)?;
        buf.truncate(range.end);
        buf.drain(..range.start);
        Ok(buf)
    }

    /// As [`Channel::open`], decrypting where `message` lies (no copy, for a toy whose
    /// receive buffer is the only one a record may take): returns where the frame now lies
    /// in `message`.
    pub fn open_in_place(&mut self, message: &mut [u8]) -> Result<Range<usize>, ChannelError> {
        if self.closed {
            return Err(ChannelError::Closed);
        }
        self.open_record(message).map_err(|e| self.fail(e))
    }

    fn open_record(&mut self, message: &mut [u8]) -> Result<Range<usize>, ChannelError> {
        if message_kind(message)? != KIND_RECORD {
            return Err(ChannelError::UnexpectedMessage);
        }
        let sealed = &mut message[MESSAGE_HEADER_LEN..];
        let sealed_len = sealed.len();
        let size = sealed_len
            .checked_sub(TAG_LEN)
            .filter(|size| RECORD_SIZES.contains(size))
            .ok_or(ChannelError::WrongLength)?;
        self.transport
            .receive_in_place(sealed, sealed_len)
            .map_err(|_| ChannelError::RecordRefused)?;
        let (prefix, rest) = sealed[..size].split_at(LENGTH_PREFIX_LEN);
        let length = usize::try_from(u32::from_be_bytes([
            prefix[0], prefix[1], prefix[2], prefix[3],
        ]))
        .map_err(|_| ChannelError::BadPadding)?;
        if length > MAX_RECORD_FRAME_LEN
            || length > rest.len()
            || record_size(length) != Some(size)
            || rest[length..].iter().any(|b| *b != 0)
        {
            return Err(ChannelError::BadPadding);
        }
        let start = MESSAGE_HEADER_LEN + LENGTH_PREFIX_LEN;
        Ok(start..start + length)
    }
}
