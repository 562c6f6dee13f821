//! Files made by a real encoder (opus-tools' opusenc with libopus 1.3.1).
//!
//! - `hello-mono-20ms.ogg`: espeak-ng speech, 22.05 kHz mono, 24 kbit/s, 20 ms frames.
//! - `chime-stereo-60ms.ogg`: sox two-tone sine, 48 kHz stereo, 32 kbit/s, 60 ms frames.
//! - `beep-mono-cbr-2.5ms.ogg`: sox sine, 16 kHz mono, hard CBR 48 kbit/s, 2.5 ms frames.

use pawpost_media::{validate_ogg_opus, Limits, MediaError, OggOpusWriter};

use crate::support::packets;

const HELLO: &[u8] = include_bytes!("../fixtures/hello-mono-20ms.ogg");
const CHIME: &[u8] = include_bytes!("../fixtures/chime-stereo-60ms.ogg");
const BEEP: &[u8] = include_bytes!("../fixtures/beep-mono-cbr-2.5ms.ogg");

/// (file, channels, duration in ms as the encoder's input had it)
const FIXTURES: [(&[u8], u8, u32); 3] = [(HELLO, 1, 3633), (CHIME, 2, 2000), (BEEP, 1, 1000)];

#[test]
fn encoder_output_validates_with_its_true_duration() {
    for (file, channels, ms) in FIXTURES {
        let info = validate_ogg_opus(file, &Limits::DEFAULT).unwrap();
        assert_eq!(info.channels, channels);
        assert_eq!(info.pre_skip, 312);
        assert!(
            info.duration_ms.abs_diff(ms) <= 20,
            "{} ms instead of {ms}",
            info.duration_ms
        );
        assert!(info.comment_count >= 1);
    }
}

#[test]
fn every_bit_flip_in_the_first_two_kilobytes_is_caught() {
    let mut file = HELLO.to_vec();
    let mut crc_failures = 0;
    for byte in 0..2048 {
        for bit in 0..8 {
            file[byte] ^= 1 << bit;
            match validate_ogg_opus(&file, &Limits::DEFAULT) {
                Ok(_) => panic!("flipping bit {bit} of byte {byte} went unnoticed"),
                Err(MediaError::BadCrc { .. }) => crc_failures += 1,
                Err(_) => {}
            }
            file[byte] ^= 1 << bit;
        }
    }
    // Only flips in capture patterns and page lengths escape the CRC check itself.
    assert!(crc_failures > 2048 * 8 * 9 / 10, "{crc_failures}");
}

#[test]
fn the_writer_rebuilds_encoder_output_with_the_same_duration() {
    for (file, channels, _) in FIXTURES {
        let original = validate_ogg_opus(file, &Limits::DEFAULT).unwrap();
        let mut w = OggOpusWriter::new(channels, original.pre_skip, 1).unwrap();
        let mut samples = 0u64;
        for packet in &packets(file)[2..] {
            samples += u64::from(w.push_packet(packet).unwrap());
        }
        let trim = samples - original.duration_samples - u64::from(original.pre_skip);
        let rebuilt = w.finish(u32::try_from(trim).unwrap()).unwrap();
        let info = validate_ogg_opus(&rebuilt, &Limits::DEFAULT).unwrap();
        assert_eq!(info.duration_samples, original.duration_samples);
        assert_eq!(info.packet_count, original.packet_count);
        assert_eq!(packets(&rebuilt)[2..], packets(file)[2..]);
    }
}

#[test]
fn every_cut_of_a_real_file_is_refused() {
    for len in (0..CHIME.len()).step_by(97) {
        assert!(validate_ogg_opus(&CHIME[..len], &Limits::DEFAULT).is_err());
    }
}

#[test]
fn a_file_fed_in_pieces_is_judged_as_the_whole_file_is() {
    use pawpost_media::OggOpusStream;
    for (file, _, _) in FIXTURES {
        let whole = validate_ogg_opus(file, &Limits::DEFAULT).unwrap();
        for piece in [1, 7, 1000, 16_384] {
            let mut stream = OggOpusStream::new(&Limits::DEFAULT);
            for bytes in file.chunks(piece) {
                stream.push(bytes).unwrap();
            }
            assert_eq!(stream.finish().unwrap(), whole, "pieces of {piece} bytes");
        }
        // Cut short, or with a byte after the last page: refused as the whole file would be.
        let mut cut = OggOpusStream::new(&Limits::DEFAULT);
        cut.push(&file[..file.len() - 1]).unwrap();
        assert!(cut.finish().is_err());
        let mut longer = OggOpusStream::new(&Limits::DEFAULT);
        longer.push(file).unwrap();
        assert_eq!(longer.push(&[0]), Err(MediaError::DataAfterEos));
        // A flipped bit in the audio is refused while it streams.
        let mut flipped = file.to_vec();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x10;
        let mut stream = OggOpusStream::new(&Limits::DEFAULT);
        let refused = flipped.chunks(512).any(|bytes| stream.push(bytes).is_err());
        assert!(refused || stream.finish().is_err());
    }
}
