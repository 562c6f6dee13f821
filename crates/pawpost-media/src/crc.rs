//! The Ogg page checksum (RFC 3533 §6): CRC-32 with polynomial 0x04C11DB7,
//! initial value 0, no bit reflection and no final XOR.

/// The generator polynomial of the Ogg CRC.
pub const OGG_CRC_POLY: u32 = 0x04C1_1DB7;

#[allow(
    clippy::cast_possible_truncation,
    reason = "the loop keeps `i` below 256, and `u32::try_from` is not usable in a `const fn`"
)]
const fn build_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut r = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            r = if r & 0x8000_0000 != 0 {
                (r << 1) ^ OGG_CRC_POLY
            } else {
                r << 1
            };
            bit += 1;
        }
        table[i] = r;
        i += 1;
    }
    table
}

static TABLE: [u32; 256] = build_table();

/// Continues an Ogg CRC over `data`; start with `crc = 0`.
pub fn ogg_crc_update(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = (crc << 8) ^ TABLE[usize::from((crc >> 24) as u8 ^ b)];
    }
    crc
}

/// The Ogg CRC of `data`.
pub fn ogg_crc(data: &[u8]) -> u32 {
    ogg_crc_update(0, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_check_value() {
        // CRC-32 with this polynomial, init 0 and no reflection or XOR
        // gives 0x89A1897F for "123456789".
        assert_eq!(ogg_crc(b"123456789"), 0x89A1_897F);
    }

    #[test]
    fn can_be_computed_in_pieces() {
        let whole = ogg_crc(b"OggS page body");
        let split = ogg_crc_update(ogg_crc(b"OggS "), b"page body");
        assert_eq!(whole, split);
    }
}
