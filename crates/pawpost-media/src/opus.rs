//! The Opus side: identification and comment headers (RFC 7845 §5) and the
//! framing of audio packets (RFC 6716 §3).

use alloc::vec::Vec;

use crate::{MediaError, PacketError};

/// Opus granule positions and durations count samples at this rate.
pub const SAMPLE_RATE: u32 = 48_000;
/// RFC 6716 §3.2.1: no frame is longer than this.
pub const MAX_FRAME_BYTES: usize = 1275;
/// RFC 6716 §3.2.5: a packet holds at most 120 ms of audio.
pub const MAX_PACKET_SAMPLES: u32 = 5760;
/// Magic that starts the identification header.
pub const OPUS_HEAD_MAGIC: [u8; 8] = *b"OpusHead";
/// Magic that starts the comment header.
pub const OPUS_TAGS_MAGIC: [u8; 8] = *b"OpusTags";
/// Length of an OpusHead with channel mapping family 0.
pub const OPUS_HEAD_LEN: usize = 19;
/// The OpusHead version this crate writes.
pub const OPUS_HEAD_VERSION: u8 = 1;

/// The identification header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpusHead {
    /// Encapsulation version: major in the high nibble (must be 0), minor in the low one.
    pub version: u8,
    /// 1 or 2.
    pub channels: u8,
    /// Samples (at 48 kHz) to drop from the start of the decoded audio.
    pub pre_skip: u16,
    /// Sample rate of the original input, for information only (0 when unknown).
    pub input_sample_rate: u32,
    /// Gain to apply on output, in dB as Q7.8 fixed point.
    pub output_gain: i16,
    /// Channel mapping family; always 0 here.
    pub mapping_family: u8,
}

impl OpusHead {
    /// Parses an identification header packet.
    ///
    /// Only mapping family 0 (mono or stereo, one Opus stream per packet) is
    /// accepted: voice messages never need more channels, and the other families
    /// carry several Opus streams per packet that a toy's decoder does not handle.
    pub fn parse(packet: &[u8]) -> Result<Self, MediaError> {
        if !packet.starts_with(&OPUS_HEAD_MAGIC) {
            return Err(MediaError::MissingOpusHead);
        }
        let len = packet.len();
        if len < OPUS_HEAD_LEN {
            return Err(MediaError::BadOpusHeadLength { len });
        }
        let version = packet[8];
        // RFC 7845 §5.1: a new major version (high nibble) is incompatible; minor
        // versions may append fields after the ones version 1 defines.
        if version == 0 || version >> 4 != 0 {
            return Err(MediaError::UnsupportedOpusVersion { version });
        }
        let mapping_family = packet[18];
        if mapping_family != 0 {
            return Err(MediaError::UnsupportedMappingFamily {
                family: mapping_family,
            });
        }
        let channels = packet[9];
        if !(1..=2).contains(&channels) {
            return Err(MediaError::BadChannelCount { channels });
        }
        if version == OPUS_HEAD_VERSION && len != OPUS_HEAD_LEN {
            return Err(MediaError::BadOpusHeadLength { len });
        }
        Ok(Self {
            version,
            channels,
            pre_skip: u16::from_le_bytes([packet[10], packet[11]]),
            input_sample_rate: u32::from_le_bytes([packet[12], packet[13], packet[14], packet[15]]),
            output_gain: i16::from_le_bytes([packet[16], packet[17]]),
            mapping_family,
        })
    }

    /// Appends this header as a version 1, family 0 packet.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&OPUS_HEAD_MAGIC);
        out.push(OPUS_HEAD_VERSION);
        out.push(self.channels);
        out.extend_from_slice(&self.pre_skip.to_le_bytes());
        out.extend_from_slice(&self.input_sample_rate.to_le_bytes());
        out.extend_from_slice(&self.output_gain.to_le_bytes());
        out.push(0);
    }
}

/// What the validator keeps of the comment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpusTags {
    /// Length of the vendor string.
    pub vendor_len: u32,
    /// Number of user comments.
    pub comment_count: u32,
}

fn take_u32(data: &mut &[u8]) -> Result<u32, MediaError> {
    let (head, rest) = data.split_at_checked(4).ok_or(MediaError::TagsOverrun)?;
    *data = rest;
    Ok(u32::from_le_bytes([head[0], head[1], head[2], head[3]]))
}

fn skip(data: &mut &[u8], len: u32) -> Result<(), MediaError> {
    let len = usize::try_from(len).map_err(|_| MediaError::TagsOverrun)?;
    *data = data.get(len..).ok_or(MediaError::TagsOverrun)?;
    Ok(())
}

impl OpusTags {
    /// Parses a comment header, checking that every length stays inside it.
    /// Bytes after the last comment are allowed: RFC 7845 §5.2 lets encoders
    /// keep padding or binary data there.
    pub fn parse(packet: &[u8]) -> Result<Self, MediaError> {
        let mut rest = packet
            .strip_prefix(&OPUS_TAGS_MAGIC)
            .ok_or(MediaError::MissingOpusTags)?;
        let vendor_len = take_u32(&mut rest)?;
        skip(&mut rest, vendor_len)?;
        let comment_count = take_u32(&mut rest)?;
        // Every comment needs at least its 4-byte length, so a count larger than
        // that bound is an overrun; checking first keeps the loop short.
        if u64::from(comment_count) * 4 > rest.len() as u64 {
            return Err(MediaError::TagsOverrun);
        }
        for _ in 0..comment_count {
            let len = take_u32(&mut rest)?;
            skip(&mut rest, len)?;
        }
        Ok(Self {
            vendor_len,
            comment_count,
        })
    }

    /// Appends a comment header with `vendor` and no comments.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "the vendor is a short name (the writer passes WRITER_VENDOR), far below the u32 the format gives its length"
    )]
    pub fn write(vendor: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(&OPUS_TAGS_MAGIC);
        out.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        out.extend_from_slice(vendor.as_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
    }
}

/// What a packet's TOC byte and framing say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketInfo {
    /// Configuration number (0..=31): mode, bandwidth and frame duration.
    pub config: u8,
    /// Whether the packet is coded as stereo.
    pub stereo: bool,
    /// Number of frames (1..=48).
    pub frames: u8,
    /// Duration of each frame in 48 kHz samples.
    pub frame_samples: u32,
}

impl PacketInfo {
    /// Duration of the whole packet in 48 kHz samples.
    pub fn samples(&self) -> u32 {
        u32::from(self.frames) * self.frame_samples
    }
}

/// Frame duration in 48 kHz samples for a TOC configuration (RFC 6716 §3.1, table 2).
pub fn config_frame_samples(config: u8) -> u32 {
    let index = usize::from(config);
    match config {
        // SILK-only: 10, 20, 40, 60 ms.
        0..=11 => [480, 960, 1920, 2880][index % 4],
        // Hybrid: 10, 20 ms.
        12..=15 => [480, 960][index % 2],
        // CELT-only: 2.5, 5, 10, 20 ms.
        _ => [120, 240, 480, 960][index % 4],
    }
}

/// Reads one frame length (RFC 6716 §3.2.1): returns it and the bytes it used.
fn frame_length(data: &[u8]) -> Result<(usize, usize), PacketError> {
    match data {
        [] => Err(PacketError::MissingFrameLength),
        [b0, ..] if *b0 < 252 => Ok((usize::from(*b0), 1)),
        [b0, b1, ..] => Ok((usize::from(*b1) * 4 + usize::from(*b0), 2)),
        [_] => Err(PacketError::MissingFrameLength),
    }
}

fn check_frame(len: usize) -> Result<(), PacketError> {
    if len > MAX_FRAME_BYTES {
        Err(PacketError::FrameTooLong)
    } else {
        Ok(())
    }
}

/// Checks a packet's framing against RFC 6716 §3.2 (rules R1 to R7) and returns
/// what its TOC byte says. Frame contents are not decoded.
pub fn parse_packet(packet: &[u8]) -> Result<PacketInfo, PacketError> {
    let (&toc, payload) = packet.split_first().ok_or(PacketError::Empty)?;
    let config = toc >> 3;
    let frame_samples = config_frame_samples(config);
    let frames = match toc & 0b11 {
        0 => {
            check_frame(payload.len())?;
            1
        }
        1 => {
            if payload.len() % 2 != 0 {
                return Err(PacketError::Code1OddLength);
            }
            check_frame(payload.len() / 2)?;
            2
        }
        2 => {
            let (first, used) = frame_length(payload)?;
            let rest = payload.len() - used;
            if first > rest {
                return Err(PacketError::FrameLengthOverrun);
            }
            check_frame(rest - first)?;
            2
        }
        _ => parse_code3(payload, frame_samples)?,
    };
    Ok(PacketInfo {
        config,
        stereo: toc & 0b100 != 0,
        frames,
        frame_samples,
    })
}

/// Code 3: a frame count byte, optional padding, then CBR or VBR frames.
fn parse_code3(payload: &[u8], frame_samples: u32) -> Result<u8, PacketError> {
    let (&count_byte, mut rest) = payload
        .split_first()
        .ok_or(PacketError::MissingFrameCount)?;
    let vbr = count_byte & 0x80 != 0;
    let padded = count_byte & 0x40 != 0;
    let frames = count_byte & 0x3F;
    if frames == 0 {
        return Err(PacketError::ZeroFrames);
    }
    let samples = u32::from(frames) * frame_samples;
    if samples > MAX_PACKET_SAMPLES {
        return Err(PacketError::TooLong { samples });
    }
    if padded {
        // Each 255 adds 254 bytes of padding and says another length byte follows.
        let mut padding = 0usize;
        loop {
            let (&b, after) = rest.split_first().ok_or(PacketError::PaddingOverrun)?;
            rest = after;
            if b == 255 {
                padding += 254;
            } else {
                padding += usize::from(b);
                break;
            }
        }
        let data_len = rest
            .len()
            .checked_sub(padding)
            .ok_or(PacketError::PaddingOverrun)?;
        rest = &rest[..data_len];
    }
    if vbr {
        let mut total = 0usize;
        for _ in 1..frames {
            let (len, used) = frame_length(rest)?;
            rest = &rest[used..];
            total += len;
            if total > rest.len() {
                return Err(PacketError::FrameLengthOverrun);
            }
        }
        check_frame(rest.len() - total)?;
    } else {
        let n = usize::from(frames);
        if rest.len() % n != 0 {
            return Err(PacketError::CbrUneven);
        }
        check_frame(rest.len() / n)?;
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    // TOC for CELT fullband 20 ms (config 31), mono.
    const CELT_20MS: u8 = 31 << 3;

    #[test]
    fn frame_durations_follow_the_config_table() {
        assert_eq!(config_frame_samples(0), 480);
        assert_eq!(config_frame_samples(3), 2880);
        assert_eq!(config_frame_samples(13), 960);
        assert_eq!(config_frame_samples(16), 120);
        assert_eq!(config_frame_samples(31), 960);
    }

    #[test]
    fn each_framing_code_counts_its_frames() {
        assert_eq!(parse_packet(&[CELT_20MS]).unwrap().samples(), 960);
        assert_eq!(parse_packet(&[CELT_20MS | 1, 1, 2]).unwrap().frames, 2);
        assert_eq!(parse_packet(&[CELT_20MS | 2, 1, 9, 8]).unwrap().frames, 2);
        let cbr = parse_packet(&[CELT_20MS | 3, 3, 1, 2, 3]).unwrap();
        assert_eq!((cbr.frames, cbr.samples()), (3, 2880));
        let vbr_padded = [CELT_20MS | 3, 0xC2, 2, 1, 7, 8, 0, 0];
        assert_eq!(parse_packet(&vbr_padded).unwrap().frames, 2);
    }

    #[test]
    fn two_byte_frame_lengths_are_decoded() {
        // 252 + 4 * 1 = 256 bytes in the first frame, none in the second.
        let mut p = alloc::vec![CELT_20MS | 2, 252, 1];
        p.resize(3 + 256, 0);
        assert!(parse_packet(&p).is_ok());
        p.pop();
        assert_eq!(parse_packet(&p), Err(PacketError::FrameLengthOverrun));
    }

    #[test]
    fn long_padding_runs_use_254_per_255_byte() {
        // 255 bytes of padding and an empty frame.
        let mut p = alloc::vec![CELT_20MS | 3, 0x41, 255, 1];
        p.resize(4 + 255, 0);
        assert!(parse_packet(&p).is_ok());
        p.pop();
        assert_eq!(parse_packet(&p), Err(PacketError::PaddingOverrun));
    }
}
