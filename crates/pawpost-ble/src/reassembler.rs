//! Rebuilds frames from fragments, detecting every kind of damage.

use alloc::vec::Vec;

use crate::{
    att_payload_len, frame_crc, BleError, CRC_LEN, FLAG_FIRST, FLAG_LAST, HEADER_LEN,
    MAX_FRAME_LEN, TOTAL_LEN_LEN,
};

/// A reassembled frame, borrowed from the reassembler until the next `push`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The frame's sequence number.
    pub seq: u16,
    /// How many frames were lost between the previously delivered frame and this one.
    pub missed: u16,
    /// The frame's bytes.
    pub data: &'a [u8],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Idle,
    Receiving {
        seq: u16,
        next_index: u16,
        total: usize,
    },
}

/// One fragment's fields, checked for shape but not yet against the state.
struct Parsed<'a> {
    first: bool,
    last: bool,
    seq: u16,
    index: u16,
    total: usize,
    data: &'a [u8],
    crc: u32,
}

fn parse(fragment: &[u8], payload_len: usize) -> Result<Parsed<'_>, BleError> {
    let len = fragment.len();
    if len > payload_len {
        return Err(BleError::FragmentTooLong {
            len,
            max: payload_len,
        });
    }
    if len < HEADER_LEN {
        return Err(BleError::TruncatedHeader { len });
    }
    let flags = fragment[0];
    if flags & !(FLAG_FIRST | FLAG_LAST) != 0 {
        return Err(BleError::ReservedFlags { flags });
    }
    let first = flags & FLAG_FIRST != 0;
    let last = flags & FLAG_LAST != 0;
    let seq = u16::from_le_bytes([fragment[1], fragment[2]]);
    let index = u16::from_le_bytes([fragment[3], fragment[4]]);
    if first != (index == 0) {
        return Err(BleError::BadIndex { index });
    }
    let mut data = &fragment[HEADER_LEN..];
    let mut total = 0;
    if first {
        let (field, rest) = data
            .split_at_checked(TOTAL_LEN_LEN)
            .ok_or(BleError::TruncatedHeader { len })?;
        total = u32::from_le_bytes([field[0], field[1], field[2], field[3]]) as usize;
        data = rest;
    }
    let mut crc = 0;
    if last {
        let split = data
            .len()
            .checked_sub(CRC_LEN)
            .ok_or(BleError::MissingCrc)?;
        let (rest, field) = data.split_at(split);
        crc = u32::from_le_bytes([field[0], field[1], field[2], field[3]]);
        data = rest;
    }
    Ok(Parsed {
        first,
        last,
        seq,
        index,
        total,
        data,
        crc,
    })
}

/// Rebuilds frames for one connection. Memory is bounded by the maximum frame
/// length given at creation.
#[derive(Clone, Debug)]
pub struct Reassembler {
    payload_len: usize,
    max_frame_len: usize,
    buf: Vec<u8>,
    state: State,
    last_delivered: Option<u16>,
    /// The frame dropped for a gap and the fragment it lacked, so that the
    /// late arrival of that fragment is recognised as reordering.
    gap: Option<(u16, u16)>,
    /// Whether `buf` holds the frame the last `push` returned.
    delivered: bool,
}

impl Reassembler {
    /// A reassembler for this ATT MTU that accepts frames up to `max_frame_len`
    /// (at most [`MAX_FRAME_LEN`]).
    pub fn new(mtu: u16, max_frame_len: usize) -> Result<Self, BleError> {
        let payload_len = att_payload_len(mtu)?;
        if max_frame_len > MAX_FRAME_LEN {
            return Err(BleError::FrameTooLarge {
                len: max_frame_len,
                max: MAX_FRAME_LEN,
            });
        }
        Ok(Self {
            payload_len,
            max_frame_len,
            buf: Vec::new(),
            state: State::Idle,
            last_delivered: None,
            gap: None,
            delivered: false,
        })
    }

    /// Forgets everything, as for a new connection.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.state = State::Idle;
        self.last_delivered = None;
        self.gap = None;
        self.delivered = false;
    }

    /// The frame the last [`Reassembler::push`] returned, to change where it lies (a
    /// receiver decrypting it in place instead of copying it). `None` when the last push
    /// returned no frame.
    pub fn delivered_mut(&mut self) -> Option<&mut [u8]> {
        self.delivered.then_some(&mut self.buf[..])
    }

    /// Whether a frame is partly received.
    pub fn in_progress(&self) -> bool {
        self.state != State::Idle
    }

    /// Takes one fragment. Returns a frame when this fragment completes one.
    ///
    /// Errors for duplicates ([`BleError::DuplicateFragment`],
    /// [`BleError::DuplicateFrame`], [`BleError::StaleFrame`]) leave the frame in
    /// progress untouched. [`BleError::FrameInterrupted`] drops the old frame and
    /// goes on with the new one. Every other error drops the frame in progress
    /// and waits for a first fragment.
    pub fn push(&mut self, fragment: &[u8]) -> Result<Option<Frame<'_>>, BleError> {
        self.delivered = false;
        let parsed = match parse(fragment, self.payload_len) {
            Ok(parsed) => parsed,
            Err(e) => return Err(self.drop_frame(e)),
        };
        if parsed.first {
            return self.start(&parsed);
        }
        if Some(parsed.seq) == self.last_delivered {
            return Err(BleError::DuplicateFragment {
                seq: parsed.seq,
                index: parsed.index,
            });
        }
        let State::Receiving {
            seq,
            next_index,
            total,
        } = self.state
        else {
            return Err(match self.gap {
                Some((seq, index)) if seq == parsed.seq && index == parsed.index => {
                    BleError::OutOfOrderFragment { seq, index }
                }
                _ => BleError::NoFrameInProgress {
                    seq: parsed.seq,
                    index: parsed.index,
                },
            });
        };
        if parsed.seq != seq {
            return Err(self.drop_frame(BleError::WrongFrame {
                expected: seq,
                found: parsed.seq,
            }));
        }
        if parsed.index < next_index {
            return Err(BleError::DuplicateFragment {
                seq,
                index: parsed.index,
            });
        }
        if parsed.index > next_index {
            let e = self.drop_frame(BleError::MissingFragment {
                seq,
                expected: next_index,
                found: parsed.index,
            });
            self.gap = Some((seq, next_index));
            return Err(e);
        }
        self.state = State::Receiving {
            seq,
            next_index: next_index.wrapping_add(1),
            total,
        };
        self.append(&parsed, total)
    }

    /// A first fragment: check the frame order, then begin (and maybe end) the frame.
    fn start(&mut self, parsed: &Parsed<'_>) -> Result<Option<Frame<'_>>, BleError> {
        if let State::Receiving { seq, .. } = self.state {
            if seq == parsed.seq {
                // The first fragment of the frame in progress, again.
                return Err(BleError::DuplicateFragment { seq, index: 0 });
            }
        }
        if let Some(last) = self.last_delivered {
            let distance = parsed.seq.wrapping_sub(last);
            if distance == 0 {
                return Err(BleError::DuplicateFrame { seq: parsed.seq });
            }
            if distance >= 0x8000 {
                return Err(BleError::StaleFrame {
                    seq: parsed.seq,
                    last,
                });
            }
        }
        if parsed.total > self.max_frame_len {
            return Err(self.drop_frame(BleError::FrameTooLarge {
                len: parsed.total,
                max: self.max_frame_len,
            }));
        }
        let interrupted = match self.state {
            State::Receiving { seq, .. } => Some(seq),
            State::Idle => None,
        };
        self.gap = None;
        self.buf.clear();
        self.buf.reserve(parsed.total);
        self.state = State::Receiving {
            seq: parsed.seq,
            next_index: 1,
            total: parsed.total,
        };
        match (interrupted, parsed.last) {
            // The new frame is whole: deliver it; `missed` counts the dropped one.
            (_, true) | (None, false) => self.append(parsed, parsed.total),
            (Some(abandoned), false) => {
                // Keep the new frame's first bytes; report the dropped one.
                self.append(parsed, parsed.total)?;
                Err(BleError::FrameInterrupted { abandoned })
            }
        }
    }

    /// Adds a fragment's data to the frame in progress; finishes it on the last fragment.
    fn append(&mut self, parsed: &Parsed<'_>, total: usize) -> Result<Option<Frame<'_>>, BleError> {
        if self.buf.len() + parsed.data.len() > total {
            return Err(self.drop_frame(BleError::LengthOverrun { total }));
        }
        self.buf.extend_from_slice(parsed.data);
        if !parsed.last {
            return Ok(None);
        }
        let received = self.buf.len();
        if received != total {
            return Err(self.drop_frame(BleError::FrameShort { total, received }));
        }
        if frame_crc(parsed.seq, &self.buf) != parsed.crc {
            return Err(self.drop_frame(BleError::CrcMismatch { seq: parsed.seq }));
        }
        let missed = match self.last_delivered {
            Some(last) => parsed.seq.wrapping_sub(last).wrapping_sub(1),
            None => 0,
        };
        self.state = State::Idle;
        self.last_delivered = Some(parsed.seq);
        self.delivered = true;
        Ok(Some(Frame {
            seq: parsed.seq,
            missed,
            data: &self.buf,
        }))
    }

    /// Drops the frame in progress and passes `error` on.
    fn drop_frame(&mut self, error: BleError) -> BleError {
        self.state = State::Idle;
        self.buf.clear();
        self.gap = None;
        error
    }
}
