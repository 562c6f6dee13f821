//! Builds Ogg Opus files from Opus packets: the reference for what the
//! validator accepts, used by tests, the toy simulator and the web app's remux.

use alloc::vec::Vec;

use crate::ogg::{write_page, FLAG_BOS, FLAG_CONTINUED, FLAG_EOS, MAX_SEGMENTS, NO_GRANULE};
use crate::opus::{parse_packet, OpusHead, OpusTags, OPUS_HEAD_VERSION, SAMPLE_RATE};
use crate::{MediaError, GRANULE_TOLERANCE_SAMPLES, MAX_AUDIO_PACKET_BYTES};

/// Vendor string written in OpusTags.
pub const WRITER_VENDOR: &str = "pawpost";
/// A page is closed before a new packet once its body reaches this size, as
/// libogg does, so that a reader never needs to hold much of a page.
pub const WRITER_PAGE_TARGET_BYTES: usize = 4096;

/// Writes one Ogg Opus stream into memory.
///
/// ```
/// use pawpost_media::{validate_ogg_opus, Limits, OggOpusWriter};
///
/// let mut writer = OggOpusWriter::new(1, 312, 0x5EED)?;
/// for _ in 0..50 {
///     // CELT fullband, 20 ms, mono, one frame of three bytes.
///     writer.push_packet(&[31 << 3, 1, 2, 3])?;
/// }
/// let file = writer.finish(0)?;
/// assert_eq!(validate_ogg_opus(&file, &Limits::DEFAULT)?.duration_ms, 994);
/// # Ok::<(), pawpost_media::MediaError>(())
/// ```
#[derive(Clone, Debug)]
pub struct OggOpusWriter {
    out: Vec<u8>,
    serial: u32,
    sequence: u32,
    pre_skip: u16,
    /// Sum of the durations of the audio packets so far.
    samples: u64,
    packets: u32,
    /// The page being filled.
    segments: Vec<u8>,
    body: Vec<u8>,
    continued: bool,
    granule: u64,
}

impl OggOpusWriter {
    /// Starts a stream and writes its two header pages.
    pub fn new(channels: u8, pre_skip: u16, serial: u32) -> Result<Self, MediaError> {
        if !(1..=2).contains(&channels) {
            return Err(MediaError::BadChannelCount { channels });
        }
        let mut writer = Self {
            out: Vec::new(),
            serial,
            sequence: 0,
            pre_skip,
            samples: 0,
            packets: 0,
            segments: Vec::new(),
            body: Vec::new(),
            continued: false,
            granule: NO_GRANULE,
        };
        let mut header = Vec::new();
        OpusHead {
            version: OPUS_HEAD_VERSION,
            channels,
            pre_skip,
            input_sample_rate: SAMPLE_RATE,
            output_gain: 0,
            mapping_family: 0,
        }
        .write(&mut header);
        // RFC 7845 §3: OpusHead alone on the first page, OpusTags ending its own
        // page, both with granule position 0.
        writer.add_packet(&header, 0);
        writer.flush(FLAG_BOS);
        header.clear();
        OpusTags::write(WRITER_VENDOR, &mut header);
        writer.add_packet(&header, 0);
        writer.flush(0);
        Ok(writer)
    }

    /// Appends one audio packet after checking its framing; returns its
    /// duration in 48 kHz samples, which the granule positions count.
    pub fn push_packet(&mut self, packet: &[u8]) -> Result<u32, MediaError> {
        let info = parse_packet(packet).map_err(|error| MediaError::Packet {
            index: self.packets,
            error,
        })?;
        if packet.len() > MAX_AUDIO_PACKET_BYTES {
            return Err(MediaError::PacketTooLarge {
                max: MAX_AUDIO_PACKET_BYTES,
            });
        }
        if self.body.len() >= WRITER_PAGE_TARGET_BYTES || self.segments.len() == MAX_SEGMENTS {
            self.flush(0);
        }
        let samples = info.samples();
        self.samples += u64::from(samples);
        self.packets += 1;
        self.add_packet(packet, self.samples);
        Ok(samples)
    }

    /// Ends the stream and returns the file. `end_trim` samples are cut from
    /// the end of the last packet through its granule position, as encoders do
    /// to restore the input's exact length.
    pub fn finish(mut self, end_trim: u32) -> Result<Vec<u8>, MediaError> {
        if self.packets == 0 {
            return Err(MediaError::NoAudio);
        }
        if u64::from(end_trim) > GRANULE_TOLERANCE_SAMPLES {
            return Err(MediaError::EndTrimTooLarge);
        }
        let granule = self.samples.saturating_sub(u64::from(end_trim));
        if granule < u64::from(self.pre_skip) {
            return Err(MediaError::PreSkipExceedsLength);
        }
        // The last packet always ends on the page being filled: pages are only
        // closed before a packet or in the middle of one.
        self.granule = granule;
        self.flush(FLAG_EOS);
        Ok(self.out)
    }

    fn add_packet(&mut self, packet: &[u8], granule: u64) {
        let mut rest = packet;
        loop {
            let n = rest.len().min(255);
            self.segments.push(u8::try_from(n).unwrap_or(u8::MAX));
            self.body.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if n < 255 {
                self.granule = granule;
                return;
            }
            if self.segments.len() == MAX_SEGMENTS {
                self.flush(0);
                self.continued = true;
            }
        }
    }

    fn flush(&mut self, flags: u8) {
        let flags = if self.continued {
            flags | FLAG_CONTINUED
        } else {
            flags
        };
        write_page(
            &mut self.out,
            flags,
            self.granule,
            self.serial,
            self.sequence,
            &self.segments,
            &self.body,
        );
        self.sequence += 1;
        self.segments.clear();
        self.body.clear();
        self.continued = false;
        self.granule = NO_GRANULE;
    }
}
