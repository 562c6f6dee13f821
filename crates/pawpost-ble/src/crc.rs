//! CRC-32/ISO-HDLC (the zlib and Ethernet CRC), so that a phone or a debugging
//! tool can check frames with any standard library.

const POLY_REFLECTED: u32 = 0xEDB8_8320;

#[allow(
    clippy::cast_possible_truncation,
    reason = "the loop keeps `i` below 256, and `u32::try_from` is not usable in a `const fn`"
)]
const fn build_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut r = i as u32;
        let mut bit = 0;
        while bit < 8 {
            r = if r & 1 != 0 {
                (r >> 1) ^ POLY_REFLECTED
            } else {
                r >> 1
            };
            bit += 1;
        }
        table[i] = r;
        i += 1;
    }
    table
}

static TABLE: [u32; 256] = build_table();

/// A CRC-32/ISO-HDLC computed over several pieces.
struct Crc32(u32);

impl Crc32 {
    fn new() -> Self {
        Self(!0)
    }

    fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.0 = (self.0 >> 8) ^ TABLE[usize::from(self.0.to_le_bytes()[0] ^ b)];
        }
    }

    fn finish(self) -> u32 {
        !self.0
    }
}

/// CRC-32/ISO-HDLC of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = Crc32::new();
    crc.update(data);
    crc.finish()
}

/// The CRC a frame's last fragment carries: it covers the sequence number
/// and length as well as the bytes, so that a corrupted header cannot pass
/// off intact bytes as another frame.
#[allow(
    clippy::cast_possible_truncation,
    reason = "frames are at most MAX_FRAME_LEN (64 KiB) long, and the wire carries their length as a u32"
)]
pub fn frame_crc(seq: u16, frame: &[u8]) -> u32 {
    let mut crc = Crc32::new();
    crc.update(&seq.to_le_bytes());
    crc.update(&(frame.len() as u32).to_le_bytes());
    crc.update(frame);
    crc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn the_frame_crc_covers_sequence_and_length() {
        let mut prefixed = alloc::vec::Vec::from(7u16.to_le_bytes());
        prefixed.extend_from_slice(&3u32.to_le_bytes());
        prefixed.extend_from_slice(b"abc");
        assert_eq!(frame_crc(7, b"abc"), crc32(&prefixed));
        assert_ne!(frame_crc(7, b"abc"), frame_crc(8, b"abc"));
    }
}
