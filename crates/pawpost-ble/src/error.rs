//! What can go wrong when fragmenting or reassembling frames.

use core::fmt;

/// A fragmentation or reassembly error. Each kind of damage a link can do
/// (loss, duplication, reordering, interleaving, corruption, truncation) has
/// its own variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BleError {
    /// The ATT MTU is outside 23..=517.
    InvalidMtu {
        /// The MTU given.
        mtu: u16,
    },
    /// A frame (or a configured maximum) is longer than allowed.
    FrameTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The caller's output buffer cannot hold a fragment.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
    /// A fragment is longer than one ATT payload at this MTU.
    FragmentTooLong {
        /// Its length.
        len: usize,
        /// The ATT payload size.
        max: usize,
    },
    /// A fragment is too short for its header (or a first fragment for its length field).
    TruncatedHeader {
        /// Its length.
        len: usize,
    },
    /// A last fragment is too short to hold the frame's CRC.
    MissingCrc,
    /// A fragment sets flag bits this layout reserves.
    ReservedFlags {
        /// The flags byte.
        flags: u8,
    },
    /// A first fragment has an index other than 0, or a later fragment has index 0.
    BadIndex {
        /// The index found.
        index: u16,
    },
    /// A continuation arrived while no frame was being received: its frame's
    /// first fragment was lost, or the frame was already abandoned.
    NoFrameInProgress {
        /// The fragment's frame sequence number.
        seq: u16,
        /// Its index.
        index: u16,
    },
    /// A fragment was skipped: lost, or arriving out of order. The frame is abandoned.
    MissingFragment {
        /// The frame's sequence number.
        seq: u16,
        /// The index that should have come.
        expected: u16,
        /// The one that came.
        found: u16,
    },
    /// A fragment that was already received came again; it is ignored.
    DuplicateFragment {
        /// The frame's sequence number.
        seq: u16,
        /// The fragment's index.
        index: u16,
    },
    /// The fragment whose absence abandoned a frame arrived late: fragments were reordered.
    OutOfOrderFragment {
        /// The frame's sequence number.
        seq: u16,
        /// The fragment's index.
        index: u16,
    },
    /// A continuation of another frame arrived in the middle of a frame. The
    /// frame in progress is abandoned.
    WrongFrame {
        /// The frame being received.
        expected: u16,
        /// The frame the fragment belongs to.
        found: u16,
    },
    /// A new frame started before the previous one's last fragment: that frame
    /// is abandoned and the new one is being received.
    FrameInterrupted {
        /// The abandoned frame's sequence number.
        abandoned: u16,
    },
    /// A frame that was already delivered started again; it is ignored.
    DuplicateFrame {
        /// Its sequence number.
        seq: u16,
    },
    /// A frame older than the last one delivered started: frames were reordered.
    /// It is ignored.
    StaleFrame {
        /// Its sequence number.
        seq: u16,
        /// The last delivered frame's sequence number.
        last: u16,
    },
    /// The fragments carry more bytes than the first fragment announced.
    LengthOverrun {
        /// The announced length.
        total: usize,
    },
    /// The last fragment arrived before the announced length was reached.
    FrameShort {
        /// The announced length.
        total: usize,
        /// The bytes received.
        received: usize,
    },
    /// The frame's CRC does not match its bytes: it was corrupted.
    CrcMismatch {
        /// The frame's sequence number.
        seq: u16,
    },
}

impl fmt::Display for BleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidMtu { mtu } => write!(f, "ATT MTU {mtu} is outside 23..=517"),
            Self::FrameTooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the {max}-byte limit")
            }
            Self::BufferTooSmall { needed } => {
                write!(f, "output buffer too small: a fragment needs {needed} bytes")
            }
            Self::FragmentTooLong { len, max } => write!(
                f,
                "fragment of {len} bytes exceeds the {max}-byte ATT payload"
            ),
            Self::TruncatedHeader { len } => {
                write!(f, "fragment of {len} bytes is too short for its header")
            }
            Self::MissingCrc => f.write_str("last fragment is too short to hold the frame CRC"),
            Self::ReservedFlags { flags } => {
                write!(f, "fragment flags {flags:#04x} set reserved bits")
            }
            Self::BadIndex { index } => write!(
                f,
                "fragment index {index} contradicts its first-fragment flag"
            ),
            Self::NoFrameInProgress { seq, index } => write!(
                f,
                "fragment {index} of frame {seq} arrived with no frame in progress (its start was lost)"
            ),
            Self::MissingFragment {
                seq,
                expected,
                found,
            } => write!(
                f,
                "frame {seq}: fragment {found} came where {expected} was expected; frame dropped"
            ),
            Self::DuplicateFragment { seq, index } => {
                write!(f, "fragment {index} of frame {seq} received twice; ignored")
            }
            Self::OutOfOrderFragment { seq, index } => write!(
                f,
                "fragment {index} of frame {seq} arrived out of order, after its frame was dropped"
            ),
            Self::WrongFrame { expected, found } => write!(
                f,
                "a fragment of frame {found} arrived inside frame {expected}; frame dropped"
            ),
            Self::FrameInterrupted { abandoned } => write!(
                f,
                "frame {abandoned} never finished: a new frame started; frame dropped"
            ),
            Self::DuplicateFrame { seq } => write!(f, "frame {seq} received twice; ignored"),
            Self::StaleFrame { seq, last } => write!(
                f,
                "frame {seq} arrived after frame {last}: out of order; ignored"
            ),
            Self::LengthOverrun { total } => {
                write!(f, "fragments carry more than the announced {total} bytes")
            }
            Self::FrameShort { total, received } => write!(
                f,
                "frame ended after {received} of its announced {total} bytes"
            ),
            Self::CrcMismatch { seq } => write!(f, "frame {seq} fails its CRC: corrupted"),
        }
    }
}
