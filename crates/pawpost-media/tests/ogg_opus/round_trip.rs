//! Files from the writer pass the validator with the durations they were given.

use pawpost_media::ogg::parse_page;
use pawpost_media::{validate_ogg_opus, Limits, MediaError, OggOpusWriter};

use crate::support::{packets, split_pages, Rng, TOC_20MS};

/// A CBR code 3 packet of `frames` frames of `frame_len` bytes at `config`.
fn code3_cbr(config: u8, frames: u8, frame_len: usize) -> Vec<u8> {
    let mut p = vec![config << 3 | 3, frames];
    p.resize(2 + usize::from(frames) * frame_len, 0xA5);
    p
}

#[test]
fn a_one_second_mono_message_round_trips() {
    let mut w = OggOpusWriter::new(1, 312, 42).unwrap();
    for i in 0..50u8 {
        assert_eq!(w.push_packet(&[TOC_20MS, i, i, i]).unwrap(), 960);
    }
    let file = w.finish(0).unwrap();
    let info = validate_ogg_opus(&file, &Limits::DEFAULT).unwrap();
    assert_eq!(info.channels, 1);
    assert_eq!(info.pre_skip, 312);
    assert_eq!(info.serial, 42);
    assert_eq!(info.packet_count, 50);
    assert_eq!(info.duration_samples, 50 * 960 - 312);
    assert_eq!(info.duration_ms, 994);
    assert_eq!(info.page_count, 3);
}

#[test]
fn a_stereo_message_with_end_trim_reports_the_trimmed_length() {
    let mut w = OggOpusWriter::new(2, 3840, 7).unwrap();
    for _ in 0..100 {
        w.push_packet(&[TOC_20MS | 0b100, 1, 2]).unwrap();
    }
    let file = w.finish(500).unwrap();
    let info = validate_ogg_opus(&file, &Limits::DEFAULT).unwrap();
    assert_eq!(info.channels, 2);
    assert_eq!(info.duration_samples, 96_000 - 3840 - 500);
}

#[test]
fn the_largest_packets_span_pages() {
    // 48 frames of 2.5 ms (config 16), 1275 bytes each: the largest legal
    // packet needs 241 lacing values, more than a page holding 20 small
    // packets has left, so each one goes on in a continued page.
    let big = code3_cbr(16, 48, 1275);
    let small = [TOC_20MS, 1, 2, 3];
    let mut w = OggOpusWriter::new(1, 0, 1).unwrap();
    let mut sent = Vec::new();
    for _ in 0..3 {
        for _ in 0..20 {
            w.push_packet(&small).unwrap();
            sent.push(small.to_vec());
        }
        w.push_packet(&big).unwrap();
        sent.push(big.clone());
    }
    let file = w.finish(0).unwrap();
    let info = validate_ogg_opus(&file, &Limits::DEFAULT).unwrap();
    assert_eq!(info.packet_count, 63);
    assert_eq!(info.duration_ms, 3 * (20 * 20 + 120));
    let continued = split_pages(&file)
        .iter()
        .filter(|p| parse_page(p, 0).unwrap().is_continued())
        .count();
    assert_eq!(continued, 3);
    assert_eq!(packets(&file)[2..], sent[..]);
}

#[test]
fn packets_of_exactly_255_and_510_bytes_keep_their_terminating_lacing() {
    let mut w = OggOpusWriter::new(1, 0, 1).unwrap();
    let mut sent = Vec::new();
    for len in [255, 510, 254, 256, 1] {
        let mut p = vec![TOC_20MS];
        p.resize(len, 3);
        w.push_packet(&p).unwrap();
        sent.push(p);
    }
    let file = w.finish(0).unwrap();
    assert_eq!(
        validate_ogg_opus(&file, &Limits::DEFAULT)
            .unwrap()
            .packet_count,
        5
    );
    assert_eq!(packets(&file)[2..], sent[..]);
}

#[test]
fn a_packet_ending_on_a_full_segment_table_finishes_on_the_next_page() {
    // 250 one-segment packets, then one of 5 * 255 bytes: its five full
    // segments fill the table, and its terminating 0 must open the next page.
    let mut w = OggOpusWriter::new(1, 0, 1).unwrap();
    for _ in 0..250 {
        w.push_packet(&[TOC_20MS]).unwrap();
    }
    let mut last = vec![TOC_20MS];
    last.resize(5 * 255, 9);
    w.push_packet(&last).unwrap();
    let file = w.finish(0).unwrap();
    let pages = split_pages(&file);
    let full = parse_page(&pages[2], 0).unwrap();
    assert_eq!(full.segments.len(), 255);
    assert_eq!(full.granule, 250 * 960);
    let next = parse_page(&pages[3], 0).unwrap();
    assert!(next.is_continued() && next.is_eos());
    assert_eq!(next.segments, &[0]);
    assert_eq!(packets(&file).last(), Some(&last));
    let info = validate_ogg_opus(&file, &Limits::DEFAULT).unwrap();
    assert_eq!(info.packet_count, 251);
}

#[test]
fn random_packet_streams_round_trip() {
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    for _ in 0..60 {
        let channels = 1 + u8::try_from(rng.below(2)).unwrap();
        let pre_skip = u16::try_from(rng.below(4000)).unwrap();
        let mut w = OggOpusWriter::new(
            channels,
            pre_skip,
            u32::try_from(rng.next_u64() & 0xFFFF_FFFF).unwrap(),
        )
        .unwrap();
        let count = 1 + rng.below(120);
        let mut samples = 0u64;
        let mut sent = Vec::new();
        for _ in 0..count {
            let config = u8::try_from(rng.below(32)).unwrap();
            let packet = match rng.below(4) {
                0 => {
                    let mut p = vec![config << 3];
                    p.resize(1 + rng.below(1276), 7);
                    p
                }
                1 => {
                    let mut p = vec![config << 3 | 1];
                    p.resize(1 + 2 * rng.below(1276), 7);
                    p
                }
                2 => {
                    let first = rng.below(1276);
                    let mut p = vec![config << 3 | 2];
                    if first < 252 {
                        p.push(u8::try_from(first).unwrap());
                    } else {
                        p.push(252 + u8::try_from(first % 4).unwrap());
                        p.push(u8::try_from((first - 252) / 4).unwrap());
                    }
                    p.resize(p.len() + first + rng.below(1276), 7);
                    p
                }
                _ => {
                    let per_frame = pawpost_media::opus::config_frame_samples(config) as usize;
                    let frames = 1 + rng.below(5760 / per_frame);
                    code3_cbr(config, u8::try_from(frames).unwrap(), rng.below(300))
                }
            };
            samples += u64::from(w.push_packet(&packet).unwrap());
            sent.push(packet);
        }
        if samples <= u64::from(pre_skip) {
            assert_eq!(w.finish(0), Err(MediaError::PreSkipExceedsLength));
            continue;
        }
        let file = w.finish(0).unwrap();
        let limits = Limits {
            max_duration_ms: u32::MAX / 2,
            ..Limits::DEFAULT
        };
        let info = validate_ogg_opus(&file, &limits).unwrap();
        assert_eq!(info.packet_count as usize, count);
        assert_eq!(info.duration_samples, samples - u64::from(pre_skip));
        assert_eq!(packets(&file)[2..], sent[..]);
    }
}

#[test]
fn the_writer_refuses_what_the_validator_would() {
    assert_eq!(
        OggOpusWriter::new(0, 0, 1).err(),
        Some(MediaError::BadChannelCount { channels: 0 })
    );
    let mut w = OggOpusWriter::new(1, 0, 1).unwrap();
    assert!(matches!(
        w.push_packet(&[TOC_20MS | 1, 1]),
        Err(MediaError::Packet { index: 0, .. })
    ));
    assert_eq!(w.clone().finish(0), Err(MediaError::NoAudio));
    w.push_packet(&[TOC_20MS]).unwrap();
    assert_eq!(w.finish(5761), Err(MediaError::EndTrimTooLarge));
}
