//! Carries pawpost frames (opaque byte strings up to [`MAX_FRAME_LEN`]) over
//! BLE GATT writes and notifications, which hold at most `ATT MTU - 3` bytes.
//! The phone between toy and server relays fragments without reading them.
//!
//! # Fragment layout
//!
//! All integers are little-endian.
//!
//! | offset | size | field | present in |
//! |---|---|---|---|
//! | 0 | 1 | flags: bit 0 [`FLAG_FIRST`], bit 1 [`FLAG_LAST`], bits 2-7 reserved (0) | every fragment |
//! | 1 | 2 | frame sequence number, +1 per frame, wraps | every fragment |
//! | 3 | 2 | fragment index: 0 for the first, then +1 | every fragment |
//! | 5 | 4 | total frame length in bytes | first fragment only |
//! | … | n | the next `n` bytes of the frame | every fragment |
//! | end − 4 | 4 | CRC-32/ISO-HDLC over sequence number (2 bytes), total length (4 bytes) and the frame, see [`frame_crc`] | last fragment only |
//!
//! A frame that fits in one fragment has both flags set and carries its
//! length and CRC. The fragmenter fills every fragment but the last.
//!
//! # What the reassembler detects
//!
//! | damage | error |
//! |---|---|
//! | a fragment lost | [`BleError::MissingFragment`], or [`BleError::FrameInterrupted`] when it was the last one, or [`BleError::NoFrameInProgress`] when it was the first |
//! | a fragment received twice | [`BleError::DuplicateFragment`] (ignored, the frame goes on) |
//! | fragments reordered | [`BleError::MissingFragment`] at the gap, then [`BleError::OutOfOrderFragment`] when the late one comes |
//! | a fragment of another frame interleaved | [`BleError::WrongFrame`] |
//! | a whole frame received twice | [`BleError::DuplicateFrame`] (ignored) |
//! | frames reordered | [`BleError::StaleFrame`] (ignored) |
//! | whole frames lost | [`Frame::missed`] on the next delivered frame |
//! | a length larger than the limit | [`BleError::FrameTooLarge`] |
//! | lengths that disagree with the data | [`BleError::LengthOverrun`], [`BleError::FrameShort`] |
//! | corrupted bytes | [`BleError::CrcMismatch`] |
//! | a header cut short | [`BleError::TruncatedHeader`], [`BleError::MissingCrc`] |
//!
//! After any error that drops a frame the reassembler waits for the next first
//! fragment, so one bad fragment never blocks later frames.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod crc;
mod error;
mod fragmenter;
mod reassembler;

pub use crc::{crc32, frame_crc};
pub use error::BleError;
pub use fragmenter::{Fragmenter, Fragments};
pub use reassembler::{Frame, Reassembler};

/// Smallest ATT MTU (Bluetooth Core, Vol 3 Part F §3.2.8).
pub const MIN_ATT_MTU: u16 = 23;
/// Largest ATT MTU.
pub const MAX_ATT_MTU: u16 = 517;
/// Bytes of an ATT write or notification taken by its opcode and handle.
pub const ATT_OVERHEAD: usize = 3;
/// Largest frame: a toy frame never needs more (voice messages travel in
/// chunks of at most this size).
pub const MAX_FRAME_LEN: usize = 64 * 1024;
/// Bytes of the header every fragment carries.
pub const HEADER_LEN: usize = 5;
/// Bytes of the total-length field in the first fragment.
pub const TOTAL_LEN_LEN: usize = 4;
/// Bytes of the CRC in the last fragment.
pub const CRC_LEN: usize = 4;
/// Flag: the fragment starts a frame.
pub const FLAG_FIRST: u8 = 0x01;
/// Flag: the fragment ends a frame.
pub const FLAG_LAST: u8 = 0x02;

/// The ATT payload size for `mtu`, or an error when the MTU is out of range.
pub fn att_payload_len(mtu: u16) -> Result<usize, BleError> {
    if (MIN_ATT_MTU..=MAX_ATT_MTU).contains(&mtu) {
        Ok(usize::from(mtu) - ATT_OVERHEAD)
    } else {
        Err(BleError::InvalidMtu { mtu })
    }
}
