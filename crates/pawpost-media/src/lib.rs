//! Ogg Opus voice messages: a validator for untrusted files and a writer.
//!
//! The toy runs [`validate_ogg_opus`] on every decrypted message before playing
//! it, and the server runs it on every upload. It accepts exactly one complete
//! Ogg (RFC 3533) logical stream carrying Opus (RFC 7845, channel mapping
//! family 0) and checks:
//!
//! - every page: capture pattern, version, reserved flags, CRC, a sequence
//!   number one more than the last, one serial number, BOS first and EOS last,
//!   nothing after EOS;
//! - packet lacing across pages (continued flags match unfinished packets);
//! - OpusHead alone on the first page, OpusTags ending its own page, both with
//!   granule position 0, and every length inside them;
//! - every audio packet's TOC byte and framing (RFC 6716 §3.2);
//! - granule positions: never -1 where a packet ends, never backwards, and
//!   within [`GRANULE_TOLERANCE_SAMPLES`] of the packets' summed durations;
//! - the caller's [`Limits`] on size, packet count and duration.
//!
//! It works in one pass over the borrowed input; only a packet that spans
//! pages is copied, into a buffer bounded by [`MAX_AUDIO_PACKET_BYTES`] (or
//! [`MAX_OPUS_TAGS_BYTES`] for the comment header).
//!
//! [`OggOpusWriter`] builds files that the validator accepts.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod crc;
mod error;
pub mod ogg;
pub mod opus;
mod validate;
mod writer;

pub use crc::{ogg_crc, ogg_crc_update, OGG_CRC_POLY};
pub use error::{MediaError, PacketError};
pub use validate::{
    validate_ogg_opus, Limits, OggOpusStream, OpusInfo, DEFAULT_MAX_BYTES, DEFAULT_MAX_DURATION_MS,
    DEFAULT_MAX_PACKETS, DURATION_SLACK_MS, GRANULE_TOLERANCE_SAMPLES, MAX_AUDIO_PACKET_BYTES,
    MAX_OPUS_TAGS_BYTES,
};
pub use writer::{OggOpusWriter, WRITER_PAGE_TARGET_BYTES, WRITER_VENDOR};
