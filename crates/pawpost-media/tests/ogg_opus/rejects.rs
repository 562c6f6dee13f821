//! Hand-made files that each break one rule, and the error each must get.

use pawpost_media::ogg::{FLAG_BOS, FLAG_CONTINUED, FLAG_EOS, NO_GRANULE};
use pawpost_media::{
    validate_ogg_opus, Limits, MediaError, OggOpusWriter, PacketError, DURATION_SLACK_MS,
};

use crate::support::{
    file_with_audio, fix_crc, head_packet, page, raw_page, split_pages, tags_packet, SERIAL,
    TOC_20MS,
};

fn check(file: &[u8]) -> Result<pawpost_media::OpusInfo, MediaError> {
    validate_ogg_opus(file, &Limits::DEFAULT)
}

/// A valid file of `packets` 20 ms packets of 1000 bytes: several audio pages.
fn long_file(packets: usize) -> Vec<u8> {
    let mut w = OggOpusWriter::new(1, 312, SERIAL).unwrap();
    for _ in 0..packets {
        let mut p = vec![TOC_20MS];
        p.resize(1000, 1);
        w.push_packet(&p).unwrap();
    }
    w.finish(0).unwrap()
}

fn join(pages: &[Vec<u8>]) -> Vec<u8> {
    pages.concat()
}

fn set_granule(page: &mut [u8], granule: u64) {
    page[6..14].copy_from_slice(&granule.to_le_bytes());
    fix_crc(page);
}

#[test]
fn the_hand_made_baseline_is_valid() {
    let info = check(&file_with_audio(&[&[TOC_20MS]], 960)).unwrap();
    assert_eq!(info.duration_samples, 960);
    assert_eq!(info.comment_count, 0);
    let tags = tags_packet(b"v", &[b"TITLE=hi", b""]);
    let mut f = page(FLAG_BOS, 0, 0, &[&head_packet(1, 2, 0, 0)]);
    f.extend(page(0, 0, 1, &[&tags]));
    f.extend(page(FLAG_EOS, 960, 2, &[&[TOC_20MS]]));
    assert_eq!(check(&f).unwrap().comment_count, 2);
    assert!(check(&long_file(20)).unwrap().page_count > 4);
}

#[test]
fn a_corrupted_byte_fails_the_crc() {
    let mut f = long_file(20);
    let last = f.len() - 1;
    f[last] ^= 0x40;
    assert!(matches!(check(&f), Err(MediaError::BadCrc { .. })));
}

#[test]
fn a_page_without_capture_pattern_is_refused() {
    let mut f = long_file(2);
    f[0] = b'o';
    assert_eq!(check(&f), Err(MediaError::BadCapturePattern { offset: 0 }));
    let mut pages = split_pages(&long_file(2));
    let offset = pages[0].len();
    pages[1][3] = b'T';
    assert_eq!(
        check(&join(&pages)),
        Err(MediaError::BadCapturePattern { offset })
    );
}

#[test]
fn a_missing_or_repeated_page_is_a_sequence_gap() {
    let mut pages = split_pages(&long_file(20));
    assert!(pages.len() > 4);
    pages.remove(3);
    assert_eq!(
        check(&join(&pages)),
        Err(MediaError::SequenceGap {
            expected: 3,
            found: 4
        })
    );
    let mut pages = split_pages(&long_file(20));
    let again = pages[2].clone();
    pages.insert(3, again);
    assert_eq!(
        check(&join(&pages)),
        Err(MediaError::SequenceGap {
            expected: 3,
            found: 2
        })
    );
}

#[test]
fn an_ogg_version_or_reserved_flag_is_refused() {
    let mut pages = split_pages(&long_file(2));
    pages[1][4] = 1;
    fix_crc(&mut pages[1]);
    assert_eq!(
        check(&join(&pages)),
        Err(MediaError::UnsupportedOggVersion { version: 1 })
    );
    let mut pages = split_pages(&long_file(2));
    pages[1][5] = 0x08;
    fix_crc(&mut pages[1]);
    assert_eq!(
        check(&join(&pages)),
        Err(MediaError::ReservedHeaderFlags { flags: 0x08 })
    );
}

#[test]
fn a_stream_that_is_not_opus_is_refused() {
    let mut f = page(FLAG_BOS, 0, 0, &[b"\x01vorbis\0\0\0\0\x01"]);
    f.extend(page(FLAG_EOS, 0, 1, &[&[TOC_20MS]]));
    assert_eq!(check(&f), Err(MediaError::MissingOpusHead));
    let mut f = page(FLAG_BOS, 0, 0, &[]);
    f.extend(page(FLAG_EOS, 0, 1, &[&[TOC_20MS]]));
    assert_eq!(check(&f), Err(MediaError::MissingOpusHead));
}

fn with_head(head: &[u8]) -> Vec<u8> {
    let mut f = page(FLAG_BOS, 0, 0, &[head]);
    f.extend(page(0, 0, 1, &[&tags_packet(b"test", &[])]));
    f.extend(page(FLAG_EOS, 960, 2, &[&[TOC_20MS]]));
    f
}

#[test]
fn opus_head_fields_are_checked() {
    assert!(check(&with_head(&head_packet(1, 1, 0, 0))).is_ok());
    // Minor versions 2..=15 may append fields; a new major version may not be read.
    let mut minor = head_packet(2, 1, 0, 0);
    minor.push(0);
    assert!(check(&with_head(&minor)).is_ok());
    for version in [0, 0x10, 0xFF] {
        assert_eq!(
            check(&with_head(&head_packet(version, 1, 0, 0))),
            Err(MediaError::UnsupportedOpusVersion { version })
        );
    }
    for channels in [0, 3, 255] {
        assert_eq!(
            check(&with_head(&head_packet(1, channels, 0, 0))),
            Err(MediaError::BadChannelCount { channels })
        );
    }
    for family in [1, 255] {
        assert_eq!(
            check(&with_head(&head_packet(1, 2, 0, family))),
            Err(MediaError::UnsupportedMappingFamily { family })
        );
    }
    let mut long = head_packet(1, 1, 0, 0);
    long.push(0);
    assert_eq!(
        check(&with_head(&long)),
        Err(MediaError::BadOpusHeadLength { len: 20 })
    );
    let short = &head_packet(1, 1, 0, 0)[..18];
    assert_eq!(
        check(&with_head(short)),
        Err(MediaError::BadOpusHeadLength { len: 18 })
    );
}

#[test]
fn opus_head_must_be_alone_on_the_first_page() {
    let head = head_packet(1, 1, 0, 0);
    let tags = tags_packet(b"test", &[]);
    let mut f = page(FLAG_BOS, 0, 0, &[&head, &tags]);
    f.extend(page(FLAG_EOS, 960, 1, &[&[TOC_20MS]]));
    assert_eq!(check(&f), Err(MediaError::OpusHeadNotAlone));
    // The head followed by the start of a packet that goes on in the next page.
    let mut body = head.clone();
    body.extend([0u8; 255]);
    let mut f = raw_page(FLAG_BOS, 0, SERIAL, 0, &[19, 255], &body);
    f.extend(raw_page(FLAG_CONTINUED | FLAG_EOS, 0, SERIAL, 1, &[0], &[]));
    assert_eq!(check(&f), Err(MediaError::OpusHeadNotAlone));
}

fn with_tags(tags: &[u8]) -> Vec<u8> {
    let mut f = page(FLAG_BOS, 0, 0, &[&head_packet(1, 1, 0, 0)]);
    f.extend(page(0, 0, 1, &[tags]));
    f.extend(page(FLAG_EOS, 960, 2, &[&[TOC_20MS]]));
    f
}

#[test]
fn opus_tags_lengths_that_overrun_are_refused() {
    let good = tags_packet(b"vendor", &[b"A=1", b"B=2"]);
    assert!(check(&with_tags(&good)).is_ok());
    // Vendor length one past the end.
    let mut bad = good.clone();
    bad[8..12].copy_from_slice(&(u32::try_from(good.len()).unwrap() - 12 + 1).to_le_bytes());
    assert_eq!(check(&with_tags(&bad)), Err(MediaError::TagsOverrun));
    // A vendor length of 4 GiB.
    bad[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(check(&with_tags(&bad)), Err(MediaError::TagsOverrun));
    // A comment count far beyond the packet.
    let mut bad = good.clone();
    bad[18..22].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(check(&with_tags(&bad)), Err(MediaError::TagsOverrun));
    // The last comment one byte longer than what is left.
    let mut bad = good.clone();
    let last_len = good.len() - 3 - 4;
    bad[last_len..last_len + 4].copy_from_slice(&4u32.to_le_bytes());
    assert_eq!(check(&with_tags(&bad)), Err(MediaError::TagsOverrun));
    // Cut inside a length field.
    assert_eq!(check(&with_tags(&good[..10])), Err(MediaError::TagsOverrun));
    assert_eq!(
        check(&with_tags(b"OpusTagz\0\0\0\0\0\0\0\0")),
        Err(MediaError::MissingOpusTags)
    );
}

#[test]
fn opus_tags_padding_after_the_comments_is_allowed() {
    let mut tags = tags_packet(b"vendor", &[b"A=1"]);
    tags.extend([0u8; 512]);
    assert!(check(&with_tags(&tags)).is_ok());
}

#[test]
fn audio_may_not_share_the_page_where_opus_tags_ends() {
    let mut f = page(FLAG_BOS, 0, 0, &[&head_packet(1, 1, 0, 0)]);
    f.extend(page(
        FLAG_EOS,
        960,
        1,
        &[&tags_packet(b"test", &[]), &[TOC_20MS]],
    ));
    assert_eq!(check(&f), Err(MediaError::TagsNotAlone));
}

#[test]
fn header_pages_have_granule_zero() {
    let mut pages = split_pages(&long_file(2));
    set_granule(&mut pages[1], 5);
    assert_eq!(check(&join(&pages)), Err(MediaError::HeaderGranuleNotZero));
}

#[test]
fn a_file_without_audio_is_refused() {
    let mut f = page(FLAG_BOS, 0, 0, &[&head_packet(1, 1, 0, 0)]);
    f.extend(page(FLAG_EOS, 0, 1, &[&tags_packet(b"test", &[])]));
    assert_eq!(check(&f), Err(MediaError::NoAudio));
    let f = page(FLAG_BOS | FLAG_EOS, 0, 0, &[&head_packet(1, 1, 0, 0)]);
    assert_eq!(check(&f), Err(MediaError::MissingOpusTags));
    assert_eq!(check(&[]), Err(MediaError::Empty));
}

#[test]
fn every_truncation_is_refused() {
    let f = long_file(20);
    let page_ends: Vec<usize> = split_pages(&f)
        .iter()
        .scan(0, |end, p| {
            *end += p.len();
            Some(*end)
        })
        .collect();
    for len in 1..f.len() {
        let err = check(&f[..len]).unwrap_err();
        if page_ends.contains(&len) {
            assert_eq!(err, MediaError::MissingEos, "cut at {len}");
        } else {
            assert!(
                matches!(err, MediaError::Truncated { .. }),
                "cut at {len}: {err}"
            );
        }
    }
}

#[test]
fn a_file_without_eos_is_incomplete() {
    let mut pages = split_pages(&long_file(2));
    let last = pages.len() - 1;
    pages[last][5] &= !FLAG_EOS;
    fix_crc(&mut pages[last]);
    assert_eq!(check(&join(&pages)), Err(MediaError::MissingEos));
}

#[test]
fn a_first_page_without_bos_is_refused() {
    let mut pages = split_pages(&long_file(2));
    pages[0][5] = 0;
    fix_crc(&mut pages[0]);
    assert_eq!(check(&join(&pages)), Err(MediaError::FirstPageNotBos));
}

#[test]
fn a_second_stream_is_refused() {
    let one = long_file(2);
    // Chained: a second complete stream after the first one's EOS.
    let mut w = OggOpusWriter::new(1, 0, SERIAL + 1).unwrap();
    w.push_packet(&[TOC_20MS]).unwrap();
    let two = w.finish(0).unwrap();
    let chained = [one.clone(), two.clone()].concat();
    assert_eq!(
        check(&chained),
        Err(MediaError::SecondStream { serial: SERIAL + 1 })
    );
    // Multiplexed: the other stream's BOS page right after ours.
    let mut pages = split_pages(&one);
    pages.insert(1, split_pages(&two)[0].clone());
    assert_eq!(
        check(&join(&pages)),
        Err(MediaError::SecondStream { serial: SERIAL + 1 })
    );
    // A page of another serial in the middle.
    let mut pages = split_pages(&one);
    pages[2][14..18].copy_from_slice(&9u32.to_le_bytes());
    fix_crc(&mut pages[2]);
    assert_eq!(
        check(&join(&pages)),
        Err(MediaError::SecondStream { serial: 9 })
    );
}

#[test]
fn data_after_eos_is_refused() {
    let mut f = long_file(2);
    f.extend_from_slice(b"trailing");
    assert_eq!(check(&f), Err(MediaError::DataAfterEos));
    // Another page of our own stream after EOS.
    let mut f = long_file(2);
    let pages = split_pages(&f);
    let mut extra = pages[2].clone();
    extra[18..22].copy_from_slice(&u32::try_from(pages.len()).unwrap().to_le_bytes());
    fix_crc(&mut extra);
    f.extend(extra);
    assert_eq!(check(&f), Err(MediaError::DataAfterEos));
}

#[test]
fn continuation_flags_must_match_the_lacing() {
    let head = head_packet(1, 1, 0, 0);
    let tags = tags_packet(b"test", &[]);
    let base = |audio: Vec<u8>| {
        let mut f = page(FLAG_BOS, 0, 0, &[&head]);
        f.extend(page(0, 0, 1, &[&tags]));
        f.extend(audio);
        f
    };
    let f = base(raw_page(
        FLAG_CONTINUED | FLAG_EOS,
        960,
        SERIAL,
        2,
        &[1],
        &[TOC_20MS],
    ));
    assert_eq!(
        check(&f),
        Err(MediaError::UnexpectedContinuation { sequence: 2 })
    );
    let mut packet = vec![TOC_20MS];
    packet.resize(300, 0);
    let mut audio = raw_page(0, NO_GRANULE, SERIAL, 2, &[255], &packet[..255]);
    audio.extend(raw_page(FLAG_EOS, 960, SERIAL, 3, &[45], &packet[255..]));
    assert_eq!(
        check(&base(audio)),
        Err(MediaError::MissingContinuation { sequence: 3 })
    );
    let mut audio = raw_page(0, NO_GRANULE, SERIAL, 2, &[255], &packet[..255]);
    audio.extend(raw_page(
        FLAG_CONTINUED | FLAG_EOS,
        960,
        SERIAL,
        3,
        &[45],
        &packet[255..],
    ));
    assert!(check(&base(audio)).is_ok());
    let f = base(raw_page(FLAG_EOS, 960, SERIAL, 2, &[255], &packet[..255]));
    assert_eq!(check(&f), Err(MediaError::UnterminatedPacket));
}

#[test]
fn granule_positions_must_be_valid_and_never_go_backwards() {
    let pages = split_pages(&long_file(20));
    assert!(pages.len() >= 6);
    let granule = |p: &[u8]| u64::from_le_bytes(p[6..14].try_into().unwrap());
    let mut bad = pages.clone();
    let earlier = granule(&pages[2]) - 1;
    set_granule(&mut bad[3], earlier);
    assert_eq!(
        check(&join(&bad)),
        Err(MediaError::GranuleBackwards { sequence: 3 })
    );
    let mut bad = pages.clone();
    set_granule(&mut bad[3], NO_GRANULE);
    assert_eq!(
        check(&join(&bad)),
        Err(MediaError::InvalidGranule { sequence: 3 })
    );
    let mut bad = pages.clone();
    set_granule(&mut bad[3], 1 << 63);
    assert_eq!(
        check(&join(&bad)),
        Err(MediaError::InvalidGranule { sequence: 3 })
    );
}

#[test]
fn a_final_granule_that_lies_about_the_length_is_refused() {
    // One second of packets on one page, claiming ten seconds or too little.
    let mut pages = split_pages(&message_of_ms(1000));
    assert_eq!(pages.len(), 3);
    let last = pages.len() - 1;
    set_granule(&mut pages[last], 480_000);
    assert!(matches!(
        check(&join(&pages)),
        Err(MediaError::GranuleMismatch {
            granule: 480_000,
            samples: 48_000,
            ..
        })
    ));
    set_granule(&mut pages[last], 48_000 - 5761);
    assert!(matches!(
        check(&join(&pages)),
        Err(MediaError::GranuleMismatch { .. })
    ));
    set_granule(&mut pages[last], 48_000 - 5760);
    assert!(check(&join(&pages)).is_ok());
}

#[test]
fn a_pre_skip_longer_than_the_stream_is_refused() {
    let mut f = page(FLAG_BOS, 0, 0, &[&head_packet(1, 1, 3840, 0)]);
    f.extend(page(0, 0, 1, &[&tags_packet(b"test", &[])]));
    f.extend(page(FLAG_EOS, 960, 2, &[&[TOC_20MS]]));
    assert_eq!(check(&f), Err(MediaError::PreSkipExceedsLength));
}

fn message_of_ms(ms: u32) -> Vec<u8> {
    let mut w = OggOpusWriter::new(1, 0, SERIAL).unwrap();
    for _ in 0..ms / 20 {
        w.push_packet(&[TOC_20MS, 0]).unwrap();
    }
    w.finish(0).unwrap()
}

#[test]
fn a_message_over_the_duration_limit_is_refused() {
    let limits = Limits::DEFAULT;
    assert_eq!(check(&message_of_ms(30_000)).unwrap().duration_ms, 30_000);
    assert!(check(&message_of_ms(30_000 + DURATION_SLACK_MS)).is_ok());
    assert_eq!(
        check(&message_of_ms(30_000 + DURATION_SLACK_MS + 20)),
        Err(MediaError::TooLong {
            duration_ms: 30_520,
            max_ms: limits.max_duration_ms + DURATION_SLACK_MS
        })
    );
    let short = Limits {
        max_duration_ms: 1000,
        ..limits
    };
    assert!(matches!(
        validate_ogg_opus(&message_of_ms(2000), &short),
        Err(MediaError::TooLong { .. })
    ));
}

#[test]
fn size_and_packet_limits_are_enforced() {
    let f = message_of_ms(1000);
    let tight = Limits {
        max_bytes: f.len() - 1,
        ..Limits::DEFAULT
    };
    assert_eq!(
        validate_ogg_opus(&f, &tight),
        Err(MediaError::FileTooLarge {
            len: f.len(),
            max: f.len() - 1
        })
    );
    let few = Limits {
        max_packets: 49,
        ..Limits::DEFAULT
    };
    assert_eq!(
        validate_ogg_opus(&f, &few),
        Err(MediaError::TooManyPackets { max: 49 })
    );
}

#[test]
fn an_oversized_packet_is_refused_before_it_is_buffered() {
    // 64 KiB of continuation pages for one audio packet.
    let head = head_packet(1, 1, 0, 0);
    let mut f = page(FLAG_BOS, 0, 0, &[&head]);
    f.extend(page(0, 0, 1, &[&tags_packet(b"test", &[])]));
    let body = vec![0u8; 255 * 255];
    for seq in 2..4 {
        let flags = if seq == 2 { 0 } else { FLAG_CONTINUED };
        f.extend(raw_page(flags, NO_GRANULE, SERIAL, seq, &[255; 255], &body));
    }
    assert_eq!(
        check(&f),
        Err(MediaError::PacketTooLarge {
            max: pawpost_media::MAX_AUDIO_PACKET_BYTES
        })
    );
}

fn packet_error(packet: &[u8]) -> Result<(), PacketError> {
    match check(&file_with_audio(&[&[TOC_20MS], packet], 1920)) {
        Ok(_) => Ok(()),
        Err(MediaError::Packet { index: 1, error }) => Err(error),
        Err(other) => panic!("unexpected {other}"),
    }
}

#[test]
fn malformed_packet_framing_is_refused_for_every_code() {
    use PacketError::*;
    let long = |toc: u8, len: usize| {
        let mut p = vec![toc];
        p.resize(len, 0);
        p
    };
    // Code 0: one frame of at most 1275 bytes.
    assert_eq!(packet_error(&long(TOC_20MS, 1276)), Ok(()));
    assert_eq!(packet_error(&long(TOC_20MS, 1277)), Err(FrameTooLong));
    // Code 1: two equal frames.
    assert_eq!(packet_error(&long(TOC_20MS | 1, 3)), Ok(()));
    assert_eq!(packet_error(&long(TOC_20MS | 1, 4)), Err(Code1OddLength));
    assert_eq!(packet_error(&long(TOC_20MS | 1, 2553)), Err(FrameTooLong));
    // Code 2: a length-prefixed first frame.
    assert_eq!(packet_error(&[TOC_20MS | 2, 1, 5]), Ok(()));
    assert_eq!(packet_error(&[TOC_20MS | 2]), Err(MissingFrameLength));
    assert_eq!(packet_error(&[TOC_20MS | 2, 253]), Err(MissingFrameLength));
    assert_eq!(
        packet_error(&[TOC_20MS | 2, 3, 1, 2]),
        Err(FrameLengthOverrun)
    );
    assert_eq!(packet_error(&long(TOC_20MS | 2, 1278)), Err(FrameTooLong));
    // Code 3: frame count byte, padding, CBR or VBR.
    assert_eq!(packet_error(&[TOC_20MS | 3]), Err(MissingFrameCount));
    assert_eq!(packet_error(&[TOC_20MS | 3, 0]), Err(ZeroFrames));
    assert_eq!(packet_error(&[TOC_20MS | 3, 0x80]), Err(ZeroFrames));
    assert_eq!(packet_error(&[TOC_20MS | 3, 6]), Ok(()));
    assert_eq!(
        packet_error(&[TOC_20MS | 3, 7]),
        Err(TooLong { samples: 6720 })
    );
    assert_eq!(packet_error(&[TOC_20MS | 3, 2, 1, 2, 3]), Err(CbrUneven));
    assert_eq!(packet_error(&[TOC_20MS | 3, 0x42, 1, 9, 9, 0]), Ok(()));
    assert_eq!(
        packet_error(&[TOC_20MS | 3, 0x42, 4, 9, 9]),
        Err(PaddingOverrun)
    );
    assert_eq!(packet_error(&[TOC_20MS | 3, 0x41]), Err(PaddingOverrun));
    assert_eq!(
        packet_error(&[TOC_20MS | 3, 0x41, 255]),
        Err(PaddingOverrun)
    );
    assert_eq!(packet_error(&[TOC_20MS | 3, 0x82, 2, 1, 1, 7]), Ok(()));
    assert_eq!(
        packet_error(&[TOC_20MS | 3, 0x82, 3, 1, 1]),
        Err(FrameLengthOverrun)
    );
    assert_eq!(
        packet_error(&[TOC_20MS | 3, 0x83, 0]),
        Err(MissingFrameLength)
    );
    let mut cbr = vec![TOC_20MS | 3, 2];
    cbr.resize(2 + 2 * 1276, 0);
    assert_eq!(packet_error(&cbr), Err(FrameTooLong));
    assert_eq!(packet_error(&[]), Err(Empty));
}
