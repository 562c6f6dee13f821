//! Splits frames into fragments.

use alloc::vec::Vec;

use crate::{
    att_payload_len, frame_crc, BleError, CRC_LEN, FLAG_FIRST, FLAG_LAST, HEADER_LEN,
    MAX_FRAME_LEN, TOTAL_LEN_LEN,
};

/// Splits frames for one connection, numbering them.
#[derive(Clone, Debug)]
pub struct Fragmenter {
    payload_len: usize,
    next_seq: u16,
}

impl Fragmenter {
    /// A fragmenter for a connection with this ATT MTU; frames are numbered from 0.
    pub fn new(mtu: u16) -> Result<Self, BleError> {
        Self::with_first_seq(mtu, 0)
    }

    /// A fragmenter whose first frame gets sequence number `seq`.
    pub fn with_first_seq(mtu: u16, seq: u16) -> Result<Self, BleError> {
        Ok(Self {
            payload_len: att_payload_len(mtu)?,
            next_seq: seq,
        })
    }

    /// Largest fragment this fragmenter produces: the ATT payload size.
    pub fn payload_len(&self) -> usize {
        self.payload_len
    }

    /// Sequence number the next frame will get.
    pub fn next_seq(&self) -> u16 {
        self.next_seq
    }

    /// Starts fragmenting `frame` under the next sequence number.
    pub fn fragment<'a>(&mut self, frame: &'a [u8]) -> Result<Fragments<'a>, BleError> {
        if frame.len() > MAX_FRAME_LEN {
            return Err(BleError::FrameTooLarge {
                len: frame.len(),
                max: MAX_FRAME_LEN,
            });
        }
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        Ok(Fragments {
            frame,
            seq,
            payload_len: self.payload_len,
            offset: 0,
            index: 0,
            crc: frame_crc(seq, frame),
            done: false,
        })
    }
}

/// The fragments of one frame, in order: write each into a caller buffer
/// with [`Fragments::encode_next`], or collect them as the iterator's `Vec`s.
#[derive(Clone, Debug)]
pub struct Fragments<'a> {
    frame: &'a [u8],
    seq: u16,
    payload_len: usize,
    offset: usize,
    index: u16,
    crc: u32,
    done: bool,
}

impl Fragments<'_> {
    /// The frame's sequence number.
    pub fn seq(&self) -> u16 {
        self.seq
    }

    /// Writes the next fragment into `out` (at least [`Fragmenter::payload_len`]
    /// bytes) and returns its length, or `None` after the last one.
    pub fn encode_next(&mut self, out: &mut [u8]) -> Result<Option<usize>, BleError> {
        if out.len() < self.payload_len {
            return Err(BleError::BufferTooSmall {
                needed: self.payload_len,
            });
        }
        Ok(self.write_next(out))
    }

    /// `encode_next` once `out` is known to be large enough.
    fn write_next(&mut self, out: &mut [u8]) -> Option<usize> {
        if self.done {
            return None;
        }
        let first = self.index == 0;
        let mut pos = HEADER_LEN;
        if first {
            // `new` refused frames longer than MAX_FRAME_LEN, which fits in u32.
            let total = u32::try_from(self.frame.len()).unwrap_or(u32::MAX);
            out[pos..pos + TOTAL_LEN_LEN].copy_from_slice(&total.to_le_bytes());
            pos += TOTAL_LEN_LEN;
        }
        let room = self.payload_len - pos;
        let remaining = self.frame.len() - self.offset;
        // The CRC never splits: a fragment is last only if the rest of the
        // frame and the CRC both fit; otherwise it is filled with data.
        let last = remaining + CRC_LEN <= room;
        let n = remaining.min(room);
        out[pos..pos + n].copy_from_slice(&self.frame[self.offset..self.offset + n]);
        pos += n;
        self.offset += n;
        if last {
            out[pos..pos + CRC_LEN].copy_from_slice(&self.crc.to_le_bytes());
            pos += CRC_LEN;
            self.done = true;
        }
        out[0] = if first { FLAG_FIRST } else { 0 } | if last { FLAG_LAST } else { 0 };
        out[1..3].copy_from_slice(&self.seq.to_le_bytes());
        out[3..5].copy_from_slice(&self.index.to_le_bytes());
        // At the smallest MTU a MAX_FRAME_LEN frame needs about 4400
        // fragments, far below u16::MAX.
        self.index += 1;
        Some(pos)
    }
}

impl Iterator for Fragments<'_> {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        let mut out = alloc::vec![0; self.payload_len];
        let len = self.write_next(&mut out)?;
        out.truncate(len);
        Some(out)
    }
}
