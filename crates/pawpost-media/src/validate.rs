//! The validator: walks the pages once, reassembling only packets that span
//! pages, and checks the Ogg framing, the Opus headers and every audio packet.

use alloc::vec::Vec;

use crate::ogg::{parse_page, Page, FULL_SEGMENT, NO_GRANULE, PAGE_HEADER_LEN};
use crate::opus::{parse_packet, OpusHead, OpusTags, SAMPLE_RATE};
use crate::MediaError;

/// Default longest voice message.
pub const DEFAULT_MAX_DURATION_MS: u32 = 30_000;
/// Added to every duration limit: encoders pad the last frame and a recording
/// stopped at the limit runs a little over it.
pub const DURATION_SLACK_MS: u32 = 500;
/// Default largest file: 30.5 s at Opus's highest bitrate (510 kbit/s) is about
/// 1.95 MB, plus Ogg's overhead of about 1 %.
pub const DEFAULT_MAX_BYTES: usize = 2 * 1024 * 1024;
/// Default most audio packets: a full-length message of the shortest (2.5 ms) packets.
pub const DEFAULT_MAX_PACKETS: u32 = (DEFAULT_MAX_DURATION_MS + DURATION_SLACK_MS) * 2 / 5;
/// Largest OpusTags packet accepted: room for tags and encoder padding, not album art.
pub const MAX_OPUS_TAGS_BYTES: usize = 64 * 1024;
/// Largest audio packet accepted: 48 frames of 1275 bytes plus their length bytes.
pub const MAX_AUDIO_PACKET_BYTES: usize = 60 * 1024;
/// How far (in 48 kHz samples, 120 ms) a granule position may differ from the
/// samples its packets hold: encoders trim up to one packet at the end.
pub const GRANULE_TOLERANCE_SAMPLES: u64 = 5760;

/// What the caller accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest duration; [`DURATION_SLACK_MS`] is added before comparing.
    pub max_duration_ms: u32,
    /// Largest file in bytes.
    pub max_bytes: usize,
    /// Most audio packets.
    pub max_packets: u32,
}

impl Limits {
    /// The limits for a voice message.
    pub const DEFAULT: Self = Self {
        max_duration_ms: DEFAULT_MAX_DURATION_MS,
        max_bytes: DEFAULT_MAX_BYTES,
        max_packets: DEFAULT_MAX_PACKETS,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What a valid file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpusInfo {
    /// 1 or 2.
    pub channels: u8,
    /// Samples at 48 kHz that the decoder drops from the start.
    pub pre_skip: u16,
    /// Sample rate of the original input (information only; 0 when unknown).
    pub input_sample_rate: u32,
    /// Output gain, dB in Q7.8.
    pub output_gain: i16,
    /// The stream's serial number.
    pub serial: u32,
    /// Playable length in 48 kHz samples: final granule position minus pre-skip.
    pub duration_samples: u64,
    /// Playable length in milliseconds, rounded to the nearest.
    pub duration_ms: u32,
    /// Number of audio packets (headers not counted).
    pub packet_count: u32,
    /// Number of Ogg pages.
    pub page_count: u32,
    /// Number of user comments in OpusTags.
    pub comment_count: u32,
}

/// Checks that `bytes` is one complete Ogg Opus stream within `limits`.
///
/// Memory use is bounded by the largest packet that spans pages; packets
/// inside a page are checked in place.
pub fn validate_ogg_opus(bytes: &[u8], limits: &Limits) -> Result<OpusInfo, MediaError> {
    if bytes.is_empty() {
        return Err(MediaError::Empty);
    }
    if bytes.len() > limits.max_bytes {
        return Err(MediaError::FileTooLarge {
            len: bytes.len(),
            max: limits.max_bytes,
        });
    }
    let mut page = parse_page(bytes, 0)?;
    if !page.is_bos() {
        return Err(MediaError::FirstPageNotBos);
    }
    let mut v = Validator::new(limits, &page);
    let mut offset = 0;
    loop {
        v.page(&page)?;
        offset += page.encoded_len();
        if page.is_eos() {
            if offset == bytes.len() {
                return v.finish();
            }
            return Err(match parse_page(bytes, offset) {
                Ok(next) if next.is_bos() || next.serial != v.serial => MediaError::SecondStream {
                    serial: next.serial,
                },
                _ => MediaError::DataAfterEos,
            });
        }
        if offset == bytes.len() {
            return Err(MediaError::MissingEos);
        }
        page = parse_page(bytes, offset)?;
        if page.is_bos() || page.serial != v.serial {
            return Err(MediaError::SecondStream {
                serial: page.serial,
            });
        }
    }
}

/// Checks an Ogg Opus stream that arrives in pieces (a toy decrypting a message chunk by
/// chunk) by the rules of [`validate_ogg_opus`]. It holds at most one page that has not
/// arrived whole (an Ogg page is at most 65 307 bytes) and a packet that spans pages.
pub struct OggOpusStream {
    limits: Limits,
    /// The start of a page whose end has not arrived yet.
    pending: Vec<u8>,
    received: usize,
    validator: Option<Validator>,
    ended: bool,
}

impl OggOpusStream {
    /// A stream checked against `limits`.
    pub fn new(limits: &Limits) -> Self {
        Self {
            limits: *limits,
            pending: Vec::new(),
            received: 0,
            validator: None,
            ended: false,
        }
    }

    /// Feeds the next bytes; checks every page that is now complete.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), MediaError> {
        self.received = self.received.saturating_add(bytes.len());
        if self.received > self.limits.max_bytes {
            return Err(MediaError::FileTooLarge {
                len: self.received,
                max: self.limits.max_bytes,
            });
        }
        if self.ended {
            return if bytes.is_empty() {
                Ok(())
            } else {
                Err(MediaError::DataAfterEos)
            };
        }
        let mut input = bytes;
        // A page begun in an earlier piece: take from this one only the bytes it lacks.
        while !self.pending.is_empty() {
            match parse_page(&self.pending, 0) {
                Ok(page) => {
                    self.ended = check_page(&mut self.validator, &self.limits, &page)?;
                    self.pending.clear();
                }
                Err(MediaError::Truncated { .. }) if input.is_empty() => return Ok(()),
                Err(MediaError::Truncated { .. }) => {
                    let take = page_bytes_missing(&self.pending).clamp(1, input.len());
                    self.pending.extend_from_slice(&input[..take]);
                    input = &input[take..];
                }
                Err(e) => return Err(e),
            }
        }
        // Whole pages are checked where they are; only an unfinished last one is kept.
        while !input.is_empty() && !self.ended {
            match parse_page(input, 0) {
                Ok(page) => {
                    self.ended = check_page(&mut self.validator, &self.limits, &page)?;
                    input = &input[page.encoded_len()..];
                }
                Err(MediaError::Truncated { .. }) => {
                    self.pending.extend_from_slice(input);
                    input = &[];
                }
                Err(e) => return Err(e),
            }
        }
        if self.ended && !input.is_empty() {
            return Err(MediaError::DataAfterEos);
        }
        Ok(())
    }

    /// Succeeds when the stream ended with its last page and was valid throughout.
    pub fn finish(self) -> Result<OpusInfo, MediaError> {
        if self.received == 0 {
            return Err(MediaError::Empty);
        }
        match self.validator {
            Some(v) if self.ended => v.finish(),
            Some(_) if self.pending.is_empty() => Err(MediaError::MissingEos),
            _ => Err(MediaError::Truncated {
                offset: self.received,
            }),
        }
    }
}

/// Checks one page of a stream against the pages before it; returns whether it is the
/// last.
fn check_page(
    validator: &mut Option<Validator>,
    limits: &Limits,
    page: &Page<'_>,
) -> Result<bool, MediaError> {
    let v = match validator {
        Some(v) => {
            if page.is_bos() || page.serial != v.serial {
                return Err(MediaError::SecondStream {
                    serial: page.serial,
                });
            }
            v
        }
        None if !page.is_bos() => return Err(MediaError::FirstPageNotBos),
        None => validator.insert(Validator::new(limits, page)),
    };
    v.page(page)?;
    Ok(page.is_eos())
}

/// How many more bytes the page that `start` begins needs, as far as its header tells:
/// the rest of the fixed header, then of the segment table, then of the body.
fn page_bytes_missing(start: &[u8]) -> usize {
    let Some(&nsegs) = start.get(PAGE_HEADER_LEN - 1) else {
        return PAGE_HEADER_LEN - start.len();
    };
    let table_end = PAGE_HEADER_LEN + usize::from(nsegs);
    let Some(segments) = start.get(PAGE_HEADER_LEN..table_end) else {
        return table_end - start.len();
    };
    let page_len = table_end + segments.iter().map(|&s| usize::from(s)).sum::<usize>();
    page_len.saturating_sub(start.len())
}

struct Validator {
    limits: Limits,
    serial: u32,
    next_sequence: u32,
    page_count: u32,
    head: Option<OpusHead>,
    tags: Option<OpusTags>,
    /// Page count at the page where OpusTags ended: audio may not share it.
    tags_page: u32,
    /// Bytes of a packet that goes on in the next page.
    partial: Vec<u8>,
    in_packet: bool,
    audio_packets: u32,
    /// Sum of the durations of all audio packets so far.
    samples: u64,
    granule: Option<u64>,
}

impl Validator {
    fn new(limits: &Limits, first: &Page<'_>) -> Self {
        Self {
            limits: *limits,
            serial: first.serial,
            next_sequence: first.sequence,
            page_count: 0,
            head: None,
            tags: None,
            tags_page: 0,
            partial: Vec::new(),
            in_packet: false,
            audio_packets: 0,
            samples: 0,
            granule: None,
        }
    }

    fn max_packet_len(&self) -> usize {
        if self.tags.is_none() {
            MAX_OPUS_TAGS_BYTES
        } else {
            MAX_AUDIO_PACKET_BYTES
        }
    }

    fn check_len(&self, len: usize) -> Result<(), MediaError> {
        let max = self.max_packet_len();
        if len > max {
            return Err(MediaError::PacketTooLarge { max });
        }
        Ok(())
    }

    fn page(&mut self, page: &Page<'_>) -> Result<(), MediaError> {
        if page.sequence != self.next_sequence {
            return Err(MediaError::SequenceGap {
                expected: self.next_sequence,
                found: page.sequence,
            });
        }
        self.next_sequence = self.next_sequence.wrapping_add(1);
        self.page_count += 1;
        let sequence = page.sequence;
        if page.is_continued() != self.in_packet {
            return Err(if self.in_packet {
                MediaError::MissingContinuation { sequence }
            } else {
                MediaError::UnexpectedContinuation { sequence }
            });
        }

        let header_page = self.tags.is_none();
        let mut ended = 0u32;
        let mut start = 0;
        let mut end = 0;
        for &lacing in page.segments {
            end += usize::from(lacing);
            if lacing == FULL_SEGMENT {
                continue;
            }
            let piece = &page.body[start..end];
            start = end;
            ended += 1;
            if self.in_packet {
                self.check_len(self.partial.len() + piece.len())?;
                self.partial.extend_from_slice(piece);
                // Taken out so that `packet` can borrow `self` mutably; put back
                // afterwards to reuse its allocation.
                let packet = core::mem::take(&mut self.partial);
                self.in_packet = false;
                let checked = self.packet(&packet);
                self.partial = packet;
                self.partial.clear();
                checked?;
            } else {
                self.check_len(piece.len())?;
                self.packet(piece)?;
            }
        }
        if page.ends_inside_packet() {
            let piece = &page.body[start..];
            self.check_len(self.partial.len() + piece.len())?;
            self.partial.extend_from_slice(piece);
            self.in_packet = true;
        }

        if self.page_count == 1 {
            if ended == 0 && !self.in_packet {
                return Err(MediaError::MissingOpusHead);
            }
            if self.in_packet {
                return Err(MediaError::OpusHeadNotAlone);
            }
        }
        if self.tags_page == self.page_count && self.in_packet {
            return Err(MediaError::TagsNotAlone);
        }

        let granule = match page.granule {
            NO_GRANULE if ended > 0 => return Err(MediaError::InvalidGranule { sequence }),
            NO_GRANULE => None,
            // RFC 7845 §4: negative granule positions other than -1 are invalid.
            g if g > i64::MAX as u64 => return Err(MediaError::InvalidGranule { sequence }),
            g => Some(g),
        };
        if let Some(granule) = granule {
            if header_page {
                if granule != 0 {
                    return Err(MediaError::HeaderGranuleNotZero);
                }
            } else {
                if self.granule.is_some_and(|previous| granule < previous) {
                    return Err(MediaError::GranuleBackwards { sequence });
                }
                if granule.abs_diff(self.samples) > GRANULE_TOLERANCE_SAMPLES {
                    return Err(MediaError::GranuleMismatch {
                        sequence,
                        granule,
                        samples: self.samples,
                    });
                }
                self.granule = Some(granule);
            }
        }
        if page.is_eos() && self.in_packet {
            return Err(MediaError::UnterminatedPacket);
        }
        Ok(())
    }

    fn packet(&mut self, packet: &[u8]) -> Result<(), MediaError> {
        if self.head.is_none() {
            self.head = Some(OpusHead::parse(packet)?);
        } else if self.tags.is_none() {
            if self.page_count == 1 {
                return Err(MediaError::OpusHeadNotAlone);
            }
            self.tags = Some(OpusTags::parse(packet)?);
            self.tags_page = self.page_count;
        } else {
            if self.tags_page == self.page_count {
                return Err(MediaError::TagsNotAlone);
            }
            if self.audio_packets >= self.limits.max_packets {
                return Err(MediaError::TooManyPackets {
                    max: self.limits.max_packets,
                });
            }
            let index = self.audio_packets;
            let info = parse_packet(packet).map_err(|error| MediaError::Packet { index, error })?;
            self.samples += u64::from(info.samples());
            self.audio_packets += 1;
        }
        Ok(())
    }

    fn finish(self) -> Result<OpusInfo, MediaError> {
        let head = self.head.ok_or(MediaError::MissingOpusHead)?;
        let tags = self.tags.ok_or(MediaError::MissingOpusTags)?;
        let granule = match self.granule {
            Some(g) if self.audio_packets > 0 => g,
            _ => return Err(MediaError::NoAudio),
        };
        let duration_samples = granule
            .checked_sub(u64::from(head.pre_skip))
            .ok_or(MediaError::PreSkipExceedsLength)?;
        let rate = u64::from(SAMPLE_RATE);
        let duration_ms = u32::try_from(
            duration_samples
                .saturating_mul(1000)
                .saturating_add(rate / 2)
                / rate,
        )
        .unwrap_or(u32::MAX);
        let max_ms = self
            .limits
            .max_duration_ms
            .saturating_add(DURATION_SLACK_MS);
        if duration_ms > max_ms {
            return Err(MediaError::TooLong {
                duration_ms,
                max_ms,
            });
        }
        Ok(OpusInfo {
            channels: head.channels,
            pre_skip: head.pre_skip,
            input_sample_rate: head.input_sample_rate,
            output_gain: head.output_gain,
            serial: self.serial,
            duration_samples,
            duration_ms,
            packet_count: self.audio_packets,
            page_count: self.page_count,
            comment_count: tags.comment_count,
        })
    }
}
