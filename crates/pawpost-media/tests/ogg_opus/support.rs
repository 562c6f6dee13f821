//! Builders for hand-made Ogg Opus files, so that each test can break exactly
//! one rule and keep every other one (CRCs included).

use pawpost_media::ogg::{parse_page, FLAG_BOS, FLAG_EOS};
use pawpost_media::ogg_crc;

pub const SERIAL: u32 = 0x7061_7770;
/// CELT fullband 20 ms, mono: one frame.
pub const TOC_20MS: u8 = 31 << 3;

pub fn head_packet(version: u8, channels: u8, pre_skip: u16, family: u8) -> Vec<u8> {
    let mut p = b"OpusHead".to_vec();
    p.push(version);
    p.push(channels);
    p.extend_from_slice(&pre_skip.to_le_bytes());
    p.extend_from_slice(&48_000u32.to_le_bytes());
    p.extend_from_slice(&0i16.to_le_bytes());
    p.push(family);
    p
}

pub fn tags_packet(vendor: &[u8], comments: &[&[u8]]) -> Vec<u8> {
    let mut p = b"OpusTags".to_vec();
    p.extend_from_slice(&u32::try_from(vendor.len()).unwrap().to_le_bytes());
    p.extend_from_slice(vendor);
    p.extend_from_slice(&u32::try_from(comments.len()).unwrap().to_le_bytes());
    for c in comments {
        p.extend_from_slice(&u32::try_from(c.len()).unwrap().to_le_bytes());
        p.extend_from_slice(c);
    }
    p
}

/// A page holding whole packets.
pub fn page(flags: u8, granule: u64, seq: u32, packets: &[&[u8]]) -> Vec<u8> {
    let mut segments = Vec::new();
    let mut body = Vec::new();
    for p in packets {
        segments.extend(std::iter::repeat_n(255u8, p.len() / 255));
        segments.push(u8::try_from(p.len() % 255).unwrap());
        body.extend_from_slice(p);
    }
    raw_page(flags, granule, SERIAL, seq, &segments, &body)
}

/// A page with exactly the given segment table and body.
pub fn raw_page(
    flags: u8,
    granule: u64,
    serial: u32,
    seq: u32,
    segments: &[u8],
    body: &[u8],
) -> Vec<u8> {
    assert!(segments.len() <= 255);
    let mut out = b"OggS".to_vec();
    out.push(0);
    out.push(flags);
    out.extend_from_slice(&granule.to_le_bytes());
    out.extend_from_slice(&serial.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(u8::try_from(segments.len()).unwrap());
    out.extend_from_slice(segments);
    out.extend_from_slice(body);
    fix_crc(&mut out);
    out
}

/// Recomputes a page's CRC after a test changed it.
pub fn fix_crc(page: &mut [u8]) {
    page[22..26].copy_from_slice(&[0; 4]);
    let crc = ogg_crc(page);
    page[22..26].copy_from_slice(&crc.to_le_bytes());
}

/// A file with standard headers and one EOS page holding `audio`.
pub fn file_with_audio(audio: &[&[u8]], granule: u64) -> Vec<u8> {
    let mut f = page(FLAG_BOS, 0, 0, &[&head_packet(1, 1, 0, 0)]);
    f.extend(page(0, 0, 1, &[&tags_packet(b"test", &[])]));
    f.extend(page(FLAG_EOS, granule, 2, audio));
    f
}

/// Splits a file into its pages' bytes.
pub fn split_pages(file: &[u8]) -> Vec<Vec<u8>> {
    let mut pages = Vec::new();
    let mut offset = 0;
    while offset < file.len() {
        let len = parse_page(file, offset).unwrap().encoded_len();
        pages.push(file[offset..offset + len].to_vec());
        offset += len;
    }
    pages
}

/// Reassembles a valid file's packets, headers included.
pub fn packets(file: &[u8]) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    let mut current = Vec::new();
    let mut offset = 0;
    while offset < file.len() {
        let page = parse_page(file, offset).unwrap();
        let mut pos = 0;
        for &lacing in page.segments {
            current.extend_from_slice(&page.body[pos..pos + usize::from(lacing)]);
            pos += usize::from(lacing);
            if lacing < 255 {
                packets.push(std::mem::take(&mut current));
            }
        }
        offset += page.encoded_len();
    }
    packets
}

/// A small deterministic PRNG (xorshift64*), so property tests need no crate.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next_u64() % n as u64).unwrap()
    }
}
