//! What can be wrong with an Ogg Opus file.

use core::fmt;

/// Why an Opus packet's framing (RFC 6716 §3.2) is malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketError {
    /// The packet has no bytes, so not even a TOC byte.
    Empty,
    /// A frame would be longer than the 1275 bytes Opus allows.
    FrameTooLong,
    /// A code 1 packet (two frames of equal size) has an odd payload length.
    Code1OddLength,
    /// A frame length byte is missing (code 2 or VBR code 3).
    MissingFrameLength,
    /// A coded frame length runs past the end of the packet.
    FrameLengthOverrun,
    /// A code 3 packet has no frame count byte.
    MissingFrameCount,
    /// A code 3 packet declares zero frames.
    ZeroFrames,
    /// The packet holds more than 120 ms of audio.
    TooLong {
        /// Its duration in 48 kHz samples.
        samples: u32,
    },
    /// The padding length bytes are missing or the padding is longer than the packet.
    PaddingOverrun,
    /// A constant-bitrate code 3 packet's payload does not split into equal frames.
    CbrUneven,
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty packet (no TOC byte)"),
            Self::FrameTooLong => f.write_str("a frame is longer than 1275 bytes"),
            Self::Code1OddLength => {
                f.write_str("code 1 packet whose payload cannot split into two equal frames")
            }
            Self::MissingFrameLength => f.write_str("a frame length byte is missing"),
            Self::FrameLengthOverrun => f.write_str("a frame length runs past the packet's end"),
            Self::MissingFrameCount => f.write_str("code 3 packet without a frame count byte"),
            Self::ZeroFrames => f.write_str("code 3 packet with zero frames"),
            Self::TooLong { samples } => write!(
                f,
                "packet lasts {} ms, more than the 120 ms Opus allows",
                samples / 48
            ),
            Self::PaddingOverrun => f.write_str("padding runs past the packet's end"),
            Self::CbrUneven => {
                f.write_str("constant-bitrate code 3 payload does not split into equal frames")
            }
        }
    }
}

/// Why a file is not an acceptable Ogg Opus voice message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaError {
    /// The input has no bytes.
    Empty,
    /// The file is larger than the caller's byte limit.
    FileTooLarge {
        /// The file's size in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The file has more audio packets than the caller's limit.
    TooManyPackets {
        /// The limit.
        max: u32,
    },
    /// The audio lasts longer than the caller's limit (plus [`crate::DURATION_SLACK_MS`]).
    TooLong {
        /// The file's duration.
        duration_ms: u32,
        /// The limit, slack included.
        max_ms: u32,
    },
    /// A page header or body runs past the end of the data.
    Truncated {
        /// Byte offset of the page that is cut short.
        offset: usize,
    },
    /// No "OggS" capture pattern where a page should start.
    BadCapturePattern {
        /// Byte offset where a page was expected.
        offset: usize,
    },
    /// A page's stream structure version is not 0.
    UnsupportedOggVersion {
        /// The version found.
        version: u8,
    },
    /// A page's header type sets bits that RFC 3533 reserves.
    ReservedHeaderFlags {
        /// The header type byte.
        flags: u8,
    },
    /// A page's CRC does not match its contents: the file is corrupted.
    BadCrc {
        /// The page's sequence number.
        sequence: u32,
    },
    /// Page sequence numbers skip or repeat: a page is missing or duplicated.
    SequenceGap {
        /// The sequence number that should have come next.
        expected: u32,
        /// The one found.
        found: u32,
    },
    /// The first page does not carry the beginning-of-stream flag.
    FirstPageNotBos,
    /// A page belongs to a second logical stream (multiplexed or chained).
    SecondStream {
        /// The second stream's serial number.
        serial: u32,
    },
    /// A page says it continues a packet but none is unfinished.
    UnexpectedContinuation {
        /// The page's sequence number.
        sequence: u32,
    },
    /// A packet was left unfinished but the next page does not continue it.
    MissingContinuation {
        /// The page's sequence number.
        sequence: u32,
    },
    /// Bytes follow the end-of-stream page.
    DataAfterEos,
    /// The data ends without an end-of-stream page: the file is incomplete.
    MissingEos,
    /// The stream ends in the middle of a packet.
    UnterminatedPacket,
    /// A packet is longer than this stage of the stream allows.
    PacketTooLarge {
        /// The limit in bytes.
        max: usize,
    },
    /// A page's granule position is negative, or -1 on a page where a packet ends.
    InvalidGranule {
        /// The page's sequence number.
        sequence: u32,
    },
    /// A page's granule position is smaller than an earlier page's.
    GranuleBackwards {
        /// The page's sequence number.
        sequence: u32,
    },
    /// A page's granule position disagrees with the audio its packets hold.
    GranuleMismatch {
        /// The page's sequence number.
        sequence: u32,
        /// The page's granule position.
        granule: u64,
        /// The samples its packets add up to.
        samples: u64,
    },
    /// A header page has a granule position other than 0.
    HeaderGranuleNotZero,
    /// The first packet is not an OpusHead identification header.
    MissingOpusHead,
    /// The OpusHead packet is not alone on the first page.
    OpusHeadNotAlone,
    /// The OpusHead packet has the wrong length.
    BadOpusHeadLength {
        /// Its length in bytes.
        len: usize,
    },
    /// The OpusHead version is 0 or has a major version other than 0.
    UnsupportedOpusVersion {
        /// The version byte.
        version: u8,
    },
    /// The channel count is not 1 or 2.
    BadChannelCount {
        /// The channel count.
        channels: u8,
    },
    /// The channel mapping family is not 0 (mono or stereo).
    UnsupportedMappingFamily {
        /// The family.
        family: u8,
    },
    /// The second packet is not an OpusTags comment header.
    MissingOpusTags,
    /// A length inside OpusTags runs past the end of the packet.
    TagsOverrun,
    /// Another packet shares the page where OpusTags ends (audio must start on a new page).
    TagsNotAlone,
    /// The stream has no audio packets.
    NoAudio,
    /// The final granule position is smaller than the pre-skip.
    PreSkipExceedsLength,
    /// The writer was asked to trim more than [`crate::GRANULE_TOLERANCE_SAMPLES`].
    EndTrimTooLarge,
    /// An audio packet is malformed.
    Packet {
        /// Index of the audio packet, counting from 0 after the headers.
        index: u32,
        /// What is wrong with it.
        error: PacketError,
    },
}

impl fmt::Display for MediaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("the file is empty"),
            Self::FileTooLarge { len, max } => {
                write!(f, "file is {len} bytes, more than the {max} allowed")
            }
            Self::TooManyPackets { max } => {
                write!(f, "more than {max} audio packets")
            }
            Self::TooLong {
                duration_ms,
                max_ms,
            } => write!(
                f,
                "message lasts {duration_ms} ms, longer than the {max_ms} ms allowed"
            ),
            Self::Truncated { offset } => {
                write!(f, "the page at byte {offset} is cut short: the file is truncated")
            }
            Self::BadCapturePattern { offset } => {
                write!(f, "no Ogg page (\"OggS\") at byte {offset}")
            }
            Self::UnsupportedOggVersion { version } => {
                write!(f, "Ogg page version {version} (only 0 exists)")
            }
            Self::ReservedHeaderFlags { flags } => {
                write!(f, "Ogg header type {flags:#04x} sets reserved bits")
            }
            Self::BadCrc { sequence } => {
                write!(f, "page {sequence} fails its CRC check: the file is corrupted")
            }
            Self::SequenceGap { expected, found } => write!(
                f,
                "page {found} follows where page {expected} should: a page is missing or repeated"
            ),
            Self::FirstPageNotBos => f.write_str("the first page is not a beginning-of-stream page"),
            Self::SecondStream { serial } => write!(
                f,
                "a second logical stream (serial {serial:#010x}): only one Opus stream is allowed"
            ),
            Self::UnexpectedContinuation { sequence } => write!(
                f,
                "page {sequence} continues a packet, but no packet was unfinished"
            ),
            Self::MissingContinuation { sequence } => write!(
                f,
                "page {sequence} does not continue the unfinished packet before it"
            ),
            Self::DataAfterEos => f.write_str("data follows the end-of-stream page"),
            Self::MissingEos => {
                f.write_str("no end-of-stream page: the file is incomplete")
            }
            Self::UnterminatedPacket => f.write_str("the stream ends inside a packet"),
            Self::PacketTooLarge { max } => write!(f, "a packet is longer than {max} bytes"),
            Self::InvalidGranule { sequence } => {
                write!(f, "page {sequence} has an invalid granule position")
            }
            Self::GranuleBackwards { sequence } => {
                write!(f, "page {sequence}'s granule position goes backwards")
            }
            Self::GranuleMismatch {
                sequence,
                granule,
                samples,
            } => write!(
                f,
                "page {sequence} has granule position {granule} but its packets hold {samples} samples"
            ),
            Self::HeaderGranuleNotZero => {
                f.write_str("a header page has a granule position other than 0")
            }
            Self::MissingOpusHead => f.write_str("the stream does not start with an OpusHead header"),
            Self::OpusHeadNotAlone => f.write_str("the OpusHead header is not alone on the first page"),
            Self::BadOpusHeadLength { len } => {
                write!(f, "OpusHead header of {len} bytes (19 expected)")
            }
            Self::UnsupportedOpusVersion { version } => {
                write!(f, "unsupported OpusHead version {version}")
            }
            Self::BadChannelCount { channels } => {
                write!(f, "{channels} channels (mono or stereo expected)")
            }
            Self::UnsupportedMappingFamily { family } => {
                write!(f, "channel mapping family {family} (only 0 is supported)")
            }
            Self::MissingOpusTags => f.write_str("the second packet is not an OpusTags header"),
            Self::TagsOverrun => f.write_str("a length in OpusTags runs past the header's end"),
            Self::TagsNotAlone => {
                f.write_str("audio shares the page where OpusTags ends")
            }
            Self::NoAudio => f.write_str("the stream has no audio"),
            Self::PreSkipExceedsLength => {
                f.write_str("the pre-skip is longer than the whole stream")
            }
            Self::EndTrimTooLarge => f.write_str("end trim is larger than one maximal packet"),
            Self::Packet { index, error } => write!(f, "audio packet {index}: {error}"),
        }
    }
}
