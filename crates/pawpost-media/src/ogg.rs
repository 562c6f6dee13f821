//! Ogg pages (RFC 3533 §6): parsing from a borrowed buffer and writing into a `Vec`.

use alloc::vec::Vec;

use crate::crc::ogg_crc_update;
use crate::MediaError;

/// The four bytes that start every page.
pub const CAPTURE_PATTERN: [u8; 4] = *b"OggS";
/// Length of the fixed part of a page header, before the segment table.
pub const PAGE_HEADER_LEN: usize = 27;
/// A page's segment table holds at most this many lacing values.
pub const MAX_SEGMENTS: usize = 255;
/// A lacing value of this size means the packet goes on in the next segment.
pub const FULL_SEGMENT: u8 = 255;

/// Header type flag: the page's first packet continues one from the previous page.
pub const FLAG_CONTINUED: u8 = 0x01;
/// Header type flag: first page of a logical stream.
pub const FLAG_BOS: u8 = 0x02;
/// Header type flag: last page of a logical stream.
pub const FLAG_EOS: u8 = 0x04;
/// The granule position that means "no packet ends on this page".
pub const NO_GRANULE: u64 = u64::MAX;

const CRC_OFFSET: usize = 22;

/// One page, borrowing its segment table and body from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page<'a> {
    /// Header type flags (`FLAG_*`).
    pub flags: u8,
    /// Raw granule position; [`NO_GRANULE`] when no packet ends here.
    pub granule: u64,
    /// Logical stream serial number.
    pub serial: u32,
    /// Page sequence number.
    pub sequence: u32,
    /// Lacing values.
    pub segments: &'a [u8],
    /// Page body: the concatenated segments.
    pub body: &'a [u8],
}

impl Page<'_> {
    /// Whether the first packet continues from the previous page.
    pub fn is_continued(&self) -> bool {
        self.flags & FLAG_CONTINUED != 0
    }

    /// Whether this is the stream's first page.
    pub fn is_bos(&self) -> bool {
        self.flags & FLAG_BOS != 0
    }

    /// Whether this is the stream's last page.
    pub fn is_eos(&self) -> bool {
        self.flags & FLAG_EOS != 0
    }

    /// Length of the whole page in the input, header included.
    pub fn encoded_len(&self) -> usize {
        PAGE_HEADER_LEN + self.segments.len() + self.body.len()
    }

    /// Whether the last packet on the page goes on in the next page.
    pub fn ends_inside_packet(&self) -> bool {
        self.segments.last() == Some(&FULL_SEGMENT)
    }
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Parses the page at `offset` in `data`, checking its CRC before trusting any
/// field beyond the lengths needed to find the page's end.
pub fn parse_page(data: &[u8], offset: usize) -> Result<Page<'_>, MediaError> {
    let rest = data.get(offset..).unwrap_or_default();
    if rest.len() < CAPTURE_PATTERN.len() || rest[..4] != CAPTURE_PATTERN {
        return Err(
            if rest.len() < CAPTURE_PATTERN.len() && CAPTURE_PATTERN.starts_with(rest) {
                MediaError::Truncated { offset }
            } else {
                MediaError::BadCapturePattern { offset }
            },
        );
    }
    if rest.len() < PAGE_HEADER_LEN {
        return Err(MediaError::Truncated { offset });
    }
    let nsegs = usize::from(rest[26]);
    let table_end = PAGE_HEADER_LEN + nsegs;
    let segments = rest
        .get(PAGE_HEADER_LEN..table_end)
        .ok_or(MediaError::Truncated { offset })?;
    let body_len: usize = segments.iter().map(|&s| usize::from(s)).sum();
    let body = rest
        .get(table_end..table_end + body_len)
        .ok_or(MediaError::Truncated { offset })?;

    let sequence = le_u32(&rest[18..22]);
    let stored_crc = le_u32(&rest[CRC_OFFSET..CRC_OFFSET + 4]);
    let mut crc = ogg_crc_update(0, &rest[..CRC_OFFSET]);
    crc = ogg_crc_update(crc, &[0; 4]);
    crc = ogg_crc_update(crc, &rest[CRC_OFFSET + 4..table_end + body_len]);
    if crc != stored_crc {
        return Err(MediaError::BadCrc { sequence });
    }

    let version = rest[4];
    if version != 0 {
        return Err(MediaError::UnsupportedOggVersion { version });
    }
    let flags = rest[5];
    if flags & !(FLAG_CONTINUED | FLAG_BOS | FLAG_EOS) != 0 {
        return Err(MediaError::ReservedHeaderFlags { flags });
    }
    let mut granule = [0; 8];
    granule.copy_from_slice(&rest[6..14]);
    Ok(Page {
        flags,
        granule: u64::from_le_bytes(granule),
        serial: le_u32(&rest[14..18]),
        sequence,
        segments,
        body,
    })
}

/// Appends one page to `out`, computing its CRC. The caller keeps
/// `segments` within [`MAX_SEGMENTS`] and `body` equal to their sum.
pub(crate) fn write_page(
    out: &mut Vec<u8>,
    flags: u8,
    granule: u64,
    serial: u32,
    sequence: u32,
    segments: &[u8],
    body: &[u8],
) {
    debug_assert!(segments.len() <= MAX_SEGMENTS);
    let start = out.len();
    out.extend_from_slice(&CAPTURE_PATTERN);
    out.push(0);
    out.push(flags);
    out.extend_from_slice(&granule.to_le_bytes());
    out.extend_from_slice(&serial.to_le_bytes());
    out.extend_from_slice(&sequence.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    // A page has at most MAX_SEGMENTS (255) segments.
    out.push(u8::try_from(segments.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(segments);
    out.extend_from_slice(body);
    let crc = ogg_crc_update(0, &out[start..]);
    out[start + CRC_OFFSET..start + CRC_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_page_parses_back() {
        let mut out = Vec::new();
        write_page(&mut out, FLAG_BOS, 7, 0xABCD, 3, &[3, 0], b"abc");
        let page = parse_page(&out, 0).unwrap();
        assert!(page.is_bos() && !page.is_eos() && !page.is_continued());
        assert_eq!((page.granule, page.serial, page.sequence), (7, 0xABCD, 3));
        assert_eq!(page.segments, &[3, 0]);
        assert_eq!(page.body, b"abc");
        assert_eq!(page.encoded_len(), out.len());
    }

    #[test]
    fn a_partial_capture_pattern_at_the_end_is_truncation() {
        assert_eq!(parse_page(b"", 5), Err(MediaError::Truncated { offset: 5 }));
        assert_eq!(
            parse_page(b"Og", 0),
            Err(MediaError::Truncated { offset: 0 })
        );
        assert_eq!(
            parse_page(b"Ogx", 0),
            Err(MediaError::BadCapturePattern { offset: 0 })
        );
    }
}
