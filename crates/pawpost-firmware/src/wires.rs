//! The wires inside the toy, as text lines on a second UART: the test harness presses the
//! paw and feeds the microphone, and reads what the speaker plays, what the toy says and
//! the heart light. On a real board these are a GPIO, an I2S codec and an LED; nothing on
//! the radio link reaches them.
//!
//! Lines to the toy ([`Input`]): `seed HEX64` (the entropy a real board's TRNG gives, once
//! at power-on), `press`, `long`, `hold MS`, `mic HEX` (what the microphone recorded, after
//! the toy said `mic on`), `heap` (the heap used and its peak since the last `heap reset`,
//! and the stack's deepest use since power-on),
//! `heap reset`, `status`, `bench` (times the public-key operations, [`crate::bench`]).
//!
//! Lines from the toy: `build ID`, `ready DEVICE-ID-HEX FINGERPRINT`, `link up MTU`,
//! `link down`, `heart off|on|blink`, `say PROMPT`, `code DIGITS`, `confirm DIGITS`,
//! `paired HOUSEHOLD-HEX`, `play MESSAGE-HEX OGG-HEX`, `took FRAME-TYPE MS` (how long the
//! toy took over a frame from the link), `mic on`, `mic off`, `sent MESSAGE-HEX` (the
//! server has the child's recording), `saved BYTES`, `report TEXT`,
//! `heap used=N peak=N stack=N`, `status ...`, `bench NAME REPEATS MS`, `error TEXT`.

use alloc::string::String;
use alloc::vec::Vec;

/// Longest line the toy reads: a whole recording in hex, and its command word.
pub const MAX_LINE: usize = 2 * pawpost_toy::MAX_RECORDING_BYTES + 16;
/// Bytes of entropy in a `seed` line.
pub const SEED_LEN: usize = 32;

/// A line from the harness.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// The board's entropy at power-on.
    Seed([u8; SEED_LEN]),
    /// A short press of the paw.
    Press,
    /// A long press of the paw.
    LongPress,
    /// The paw held down this long, then released.
    Hold {
        /// Milliseconds.
        ms: u64,
    },
    /// The microphone's recording, finished.
    Microphone(Vec<u8>),
    /// Report the heap; with `reset`, start a new peak.
    Heap {
        /// Start measuring a new peak after reporting.
        reset: bool,
    },
    /// Report the toy's status.
    Status,
    /// Time the public-key operations (see [`crate::bench`]).
    Bench,
    /// A line that is none of these, with why.
    Invalid(&'static str),
}

/// Parses one line (without its end of line).
pub fn parse(line: &str) -> Input {
    let line = line.trim();
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    let rest = rest.trim();
    match (word, rest) {
        ("press", "") => Input::Press,
        ("long", "") => Input::LongPress,
        ("hold", ms) => ms
            .parse()
            .map_or(Input::Invalid("hold needs milliseconds"), |ms| {
                Input::Hold { ms }
            }),
        ("mic", hex) => decode_hex(hex)
            .map_or(Input::Invalid("mic needs the recording in hex"), |ogg| {
                Input::Microphone(ogg)
            }),
        ("seed", hex) => decode_hex(hex)
            .and_then(|bytes| <[u8; SEED_LEN]>::try_from(bytes).ok())
            .map_or(Input::Invalid("seed needs 32 bytes in hex"), Input::Seed),
        ("heap", "") => Input::Heap { reset: false },
        ("heap", "reset") => Input::Heap { reset: true },
        ("status", "") => Input::Status,
        ("bench", "") => Input::Bench,
        _ => Input::Invalid("unknown command"),
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// The bytes of a hex string (either case), or `None`.
pub fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    if digits.len() % 2 != 0 {
        return None;
    }
    let nibble = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    digits
        .chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// Cuts the byte stream into lines of at most [`MAX_LINE`] bytes.
#[derive(Clone, Debug, Default)]
pub struct Lines {
    buf: Vec<u8>,
    overlong: bool,
}

impl Lines {
    /// No line started.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one byte; returns the line it ends (`\n`; a `\r` before it is dropped). A
    /// line longer than [`MAX_LINE`] comes back as an invalid one.
    pub fn push(&mut self, byte: u8) -> Option<Input> {
        if byte != b'\n' {
            if self.buf.len() < MAX_LINE {
                self.buf.push(byte);
            } else {
                self.overlong = true;
            }
            return None;
        }
        let line = core::mem::take(&mut self.buf);
        if core::mem::take(&mut self.overlong) {
            return Some(Input::Invalid("line too long"));
        }
        Some(match core::str::from_utf8(&line) {
            Ok(text) => parse(text.trim_end_matches('\r')),
            Err(_) => Input::Invalid("not text"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn each_command_parses() {
        assert_eq!(parse("press"), Input::Press);
        assert_eq!(parse(" long "), Input::LongPress);
        assert_eq!(parse("hold 10000"), Input::Hold { ms: 10_000 });
        assert_eq!(parse("mic 4f6767"), Input::Microphone(b"Ogg".to_vec()));
        assert_eq!(parse("heap"), Input::Heap { reset: false });
        assert_eq!(parse("heap reset"), Input::Heap { reset: true });
        assert_eq!(parse("status"), Input::Status);
        assert_eq!(parse("bench"), Input::Bench);
        let seed = hex(&[0xab; SEED_LEN]);
        assert_eq!(
            parse(&alloc::format!("seed {seed}")),
            Input::Seed([0xab; SEED_LEN])
        );
    }

    #[test]
    fn malformed_lines_are_invalid_not_guessed() {
        for bad in [
            "",
            "press now",
            "hold",
            "hold soon",
            "mic 4f6",
            "mic zz",
            "seed 00",
        ] {
            assert!(matches!(parse(bad), Input::Invalid(_)), "{bad:?}");
        }
    }

    #[test]
    fn hex_round_trips() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(decode_hex(&hex(&bytes)).unwrap(), bytes);
        assert_eq!(decode_hex("ABcd").unwrap(), vec![0xab, 0xcd]);
    }

    #[test]
    fn lines_end_at_newline_and_overlong_ones_are_refused() {
        let mut lines = Lines::new();
        let got: Vec<Input> = b"press\r\nlong\n"
            .iter()
            .filter_map(|b| lines.push(*b))
            .collect();
        assert_eq!(got, vec![Input::Press, Input::LongPress]);
        for _ in 0..=MAX_LINE {
            assert_eq!(lines.push(b'0'), None);
        }
        assert_eq!(lines.push(b'\n'), Some(Input::Invalid("line too long")));
        assert_eq!(lines.push(b'p'), None);
        assert_eq!(lines.push(b'\n'), Some(Input::Invalid("unknown command")));
    }
}
