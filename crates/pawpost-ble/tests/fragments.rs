//! Stories of frames crossing a lossy, duplicating, reordering BLE relay.

use pawpost_ble::{
    BleError, Fragmenter, Reassembler, CRC_LEN, FLAG_FIRST, FLAG_LAST, HEADER_LEN, MAX_FRAME_LEN,
    TOTAL_LEN_LEN,
};

const MTUS: [u16; 6] = [23, 24, 185, 247, 512, 517];

#[allow(
    clippy::cast_possible_truncation,
    reason = "a repeating byte pattern: the index wraps at 256 on purpose"
)]
fn frame_of(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt))
        .collect()
}

fn fragments(f: &mut Fragmenter, frame: &[u8]) -> Vec<Vec<u8>> {
    f.fragment(frame).unwrap().collect()
}

/// Pushes fragments and returns every delivered frame (seq, missed, data)
/// and every error, in order.
type Delivered = (u16, u16, Vec<u8>);
fn feed(r: &mut Reassembler, frags: &[Vec<u8>]) -> (Vec<Delivered>, Vec<BleError>) {
    let mut frames = Vec::new();
    let mut errors = Vec::new();
    for frag in frags {
        match r.push(frag) {
            Ok(Some(frame)) => frames.push((frame.seq, frame.missed, frame.data.to_vec())),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    (frames, errors)
}

#[test]
fn mtus_outside_the_att_range_are_refused() {
    for mtu in [0, 22, 518, u16::MAX] {
        assert_eq!(
            Fragmenter::new(mtu).err(),
            Some(BleError::InvalidMtu { mtu })
        );
        assert_eq!(
            Reassembler::new(mtu, 100).err(),
            Some(BleError::InvalidMtu { mtu })
        );
    }
    assert_eq!(Fragmenter::new(23).unwrap().payload_len(), 20);
    assert_eq!(Fragmenter::new(517).unwrap().payload_len(), 514);
    assert_eq!(
        Reassembler::new(23, MAX_FRAME_LEN + 1).err(),
        Some(BleError::FrameTooLarge {
            len: MAX_FRAME_LEN + 1,
            max: MAX_FRAME_LEN
        })
    );
}

#[test]
fn frames_at_every_boundary_round_trip_at_every_mtu() {
    for mtu in MTUS {
        let mut f = Fragmenter::new(mtu).unwrap();
        let mut r = Reassembler::new(mtu, MAX_FRAME_LEN).unwrap();
        let payload = f.payload_len();
        // The most a lone fragment carries: header, length, data, CRC.
        let single = payload - HEADER_LEN - TOTAL_LEN_LEN - CRC_LEN;
        let cases = [
            (0, Some(1)),
            (1, Some(1)),
            (single, Some(1)),
            (single + 1, Some(2)),
            // First fragment full, second exactly full with data and CRC.
            (
                payload - HEADER_LEN - TOTAL_LEN_LEN + payload - HEADER_LEN - CRC_LEN,
                Some(2),
            ),
            (
                payload - HEADER_LEN - TOTAL_LEN_LEN + payload - HEADER_LEN - CRC_LEN + 1,
                Some(3),
            ),
            (MAX_FRAME_LEN - 1, None),
            (MAX_FRAME_LEN, None),
        ];
        for (i, (len, count)) in cases.into_iter().enumerate() {
            let frame = frame_of(len, u8::try_from(i).unwrap());
            let frags = fragments(&mut f, &frame);
            if let Some(count) = count {
                assert_eq!(frags.len(), count, "mtu {mtu}, len {len}");
            }
            let (last, rest) = frags.split_last().unwrap();
            // Every fragment but the last is full, except when all data fitted
            // but the CRC did not: then the last carries the CRC alone.
            let crc_alone = last.len() == HEADER_LEN + CRC_LEN;
            for (k, x) in rest.iter().enumerate() {
                let may_be_short = crc_alone && k == rest.len() - 1;
                assert!(x.len() == payload || may_be_short, "mtu {mtu}, len {len}");
            }
            assert!(last.len() <= payload);
            let (got, errors) = feed(&mut r, &frags);
            assert_eq!(errors, []);
            assert_eq!(
                got,
                [(u16::try_from(i).unwrap(), 0, frame)],
                "mtu {mtu}, len {len}"
            );
        }
    }
}

#[test]
fn fragments_can_be_encoded_into_a_caller_buffer() {
    let mut f = Fragmenter::new(23).unwrap();
    let frame = frame_of(40, 1);
    let mut frags = f.fragment(&frame).unwrap();
    assert_eq!(
        frags.encode_next(&mut [0; 19]),
        Err(BleError::BufferTooSmall { needed: 20 })
    );
    let mut r = Reassembler::new(23, 100).unwrap();
    let mut buf = [0u8; 20];
    let mut delivered = None;
    while let Some(len) = frags.encode_next(&mut buf).unwrap() {
        if let Some(frame) = r.push(&buf[..len]).unwrap() {
            delivered = Some(frame.data.to_vec());
        }
    }
    assert_eq!(frags.encode_next(&mut buf), Ok(None));
    assert_eq!(delivered, Some(frame));
}

#[test]
fn the_first_fragment_carries_flags_sequence_index_and_length() {
    let mut f = Fragmenter::with_first_seq(23, 0x1234).unwrap();
    let frags = fragments(&mut f, &frame_of(30, 0));
    assert_eq!(frags[0][..9], [FLAG_FIRST, 0x34, 0x12, 0, 0, 30, 0, 0, 0]);
    assert_eq!(frags[1][..5], [0, 0x34, 0x12, 1, 0]);
    assert_eq!(frags.last().unwrap()[0], FLAG_LAST);
    let single = fragments(&mut f, b"hi");
    assert_eq!(single[0][0], FLAG_FIRST | FLAG_LAST);
    assert_eq!(single[0].len(), HEADER_LEN + TOTAL_LEN_LEN + 2 + CRC_LEN);
}

#[test]
fn sequence_numbers_wrap_without_reporting_loss() {
    let mut f = Fragmenter::with_first_seq(185, u16::MAX - 1).unwrap();
    let mut r = Reassembler::new(185, 1000).unwrap();
    for (i, seq) in [u16::MAX - 1, u16::MAX, 0, 1].into_iter().enumerate() {
        let frame = frame_of(300, u8::try_from(i).unwrap());
        let (got, errors) = feed(&mut r, &fragments(&mut f, &frame));
        assert_eq!(errors, []);
        assert_eq!(got, [(seq, 0, frame)]);
    }
}

/// Frames 0, 1 and 2 of `len` bytes at MTU 23.
fn three_frames(len: usize) -> (Vec<Vec<u8>>, Vec<Vec<Vec<u8>>>) {
    let mut f = Fragmenter::new(23).unwrap();
    let frames: Vec<_> = (0..3).map(|i| frame_of(len, i)).collect();
    let frags = frames.iter().map(|fr| fragments(&mut f, fr)).collect();
    (frames, frags)
}

fn reassembler() -> Reassembler {
    Reassembler::new(23, 1000).unwrap()
}

#[test]
fn a_lost_middle_fragment_drops_only_its_frame() {
    let (frames, frags) = three_frames(60);
    let mut stream = frags[0].clone();
    let mut damaged = frags[1].clone();
    damaged.remove(2);
    stream.extend(damaged);
    stream.extend(frags[2].clone());
    let (got, errors) = feed(&mut reassembler(), &stream);
    assert_eq!(
        errors,
        [BleError::MissingFragment {
            seq: 1,
            expected: 2,
            found: 3
        }]
        .into_iter()
        .chain(
            (4..frags[1].len()).map(|index| BleError::NoFrameInProgress {
                seq: 1,
                index: u16::try_from(index).unwrap()
            })
        )
        .collect::<Vec<_>>()
    );
    assert_eq!(got, [(0, 0, frames[0].clone()), (2, 1, frames[2].clone())]);
}

#[test]
fn a_lost_last_fragment_is_reported_when_the_next_frame_starts() {
    let (frames, frags) = three_frames(60);
    let mut stream = frags[0].clone();
    stream.extend_from_slice(&frags[1][..frags[1].len() - 1]);
    stream.extend(frags[2].clone());
    let (got, errors) = feed(&mut reassembler(), &stream);
    assert_eq!(errors, [BleError::FrameInterrupted { abandoned: 1 }]);
    assert_eq!(got, [(0, 0, frames[0].clone()), (2, 1, frames[2].clone())]);
}

#[test]
fn a_lost_first_fragment_leaves_orphans_that_are_reported() {
    let (frames, frags) = three_frames(40);
    let mut stream = frags[0].clone();
    stream.extend_from_slice(&frags[1][1..]);
    stream.extend(frags[2].clone());
    let (got, errors) = feed(&mut reassembler(), &stream);
    assert!(errors
        .iter()
        .all(|e| matches!(e, BleError::NoFrameInProgress { seq: 1, .. })));
    assert_eq!(errors.len(), frags[1].len() - 1);
    assert_eq!(got, [(0, 0, frames[0].clone()), (2, 1, frames[2].clone())]);
}

#[test]
fn a_whole_lost_frame_shows_in_missed() {
    let (frames, frags) = three_frames(10);
    let stream = [frags[0].clone(), frags[2].clone()].concat();
    let (got, errors) = feed(&mut reassembler(), &stream);
    assert_eq!(errors, []);
    assert_eq!(got, [(0, 0, frames[0].clone()), (2, 1, frames[2].clone())]);
}

#[test]
fn duplicated_fragments_are_reported_and_ignored() {
    let (frames, frags) = three_frames(60);
    let f1 = &frags[1];
    // The first, a middle and the last fragment each sent twice, and an old
    // fragment re-sent much later.
    let mut stream = frags[0].clone();
    stream.extend([f1[0].clone(), f1[0].clone(), f1[1].clone(), f1[2].clone()]);
    stream.extend([f1[2].clone(), f1[0].clone()]);
    stream.extend_from_slice(&f1[3..]);
    stream.push(f1.last().unwrap().clone());
    stream.extend(frags[2].clone());
    let (got, errors) = feed(&mut reassembler(), &stream);
    let last = u16::try_from(f1.len() - 1).unwrap();
    assert_eq!(
        errors,
        [
            BleError::DuplicateFragment { seq: 1, index: 0 },
            BleError::DuplicateFragment { seq: 1, index: 2 },
            BleError::DuplicateFragment { seq: 1, index: 0 },
            BleError::DuplicateFragment {
                seq: 1,
                index: last
            },
        ]
    );
    assert_eq!(got.len(), 3);
    assert_eq!(got[1], (1, 0, frames[1].clone()));
    assert_eq!(got[2], (2, 0, frames[2].clone()));
}

#[test]
fn a_duplicated_whole_frame_is_reported_and_ignored() {
    let (frames, frags) = three_frames(5);
    assert_eq!(frags[0].len(), 1);
    let stream = [frags[0].clone(), frags[0].clone(), frags[1].clone()].concat();
    let (got, errors) = feed(&mut reassembler(), &stream);
    assert_eq!(errors, [BleError::DuplicateFrame { seq: 0 }]);
    assert_eq!(got, [(0, 0, frames[0].clone()), (1, 0, frames[1].clone())]);
}

#[test]
fn reordered_fragments_are_told_apart_from_loss() {
    let (frames, frags) = three_frames(60);
    let mut swapped = frags[1].clone();
    swapped.swap(1, 2);
    let stream = [frags[0].clone(), swapped, frags[2].clone()].concat();
    let (got, errors) = feed(&mut reassembler(), &stream);
    assert_eq!(
        errors[..2],
        [
            BleError::MissingFragment {
                seq: 1,
                expected: 1,
                found: 2
            },
            BleError::OutOfOrderFragment { seq: 1, index: 1 },
        ]
    );
    assert!(errors[2..]
        .iter()
        .all(|e| matches!(e, BleError::NoFrameInProgress { seq: 1, .. })));
    assert_eq!(got, [(0, 0, frames[0].clone()), (2, 1, frames[2].clone())]);
}

#[test]
fn reordered_frames_are_reported_and_the_older_one_ignored() {
    let (frames, frags) = three_frames(5);
    let stream = [frags[1].clone(), frags[0].clone(), frags[2].clone()].concat();
    let (got, errors) = feed(&mut reassembler(), &stream);
    assert_eq!(errors, [BleError::StaleFrame { seq: 0, last: 1 }]);
    assert_eq!(got, [(1, 0, frames[1].clone()), (2, 0, frames[2].clone())]);
}

#[test]
fn a_fragment_of_another_frame_interleaved_is_detected() {
    let (frames, frags) = three_frames(60);
    // Frame 2's second fragment lands inside frame 1.
    let mut stream = frags[0].clone();
    stream.extend_from_slice(&frags[1][..2]);
    stream.push(frags[2][1].clone());
    stream.extend_from_slice(&frags[1][2..]);
    stream.extend(frags[2].clone());
    let (got, errors) = feed(&mut reassembler(), &stream);
    assert_eq!(
        errors[0],
        BleError::WrongFrame {
            expected: 1,
            found: 2
        }
    );
    assert_eq!(got, [(0, 0, frames[0].clone()), (2, 1, frames[2].clone())]);
    // A whole other frame starting inside frame 1 drops frame 1 and is kept.
    let mut stream = frags[0].clone();
    stream.extend_from_slice(&frags[1][..2]);
    stream.extend(frags[2].clone());
    let (got, errors) = feed(&mut reassembler(), &stream);
    assert_eq!(errors, [BleError::FrameInterrupted { abandoned: 1 }]);
    assert_eq!(got, [(0, 0, frames[0].clone()), (2, 1, frames[2].clone())]);
}

#[test]
fn every_single_bit_flip_is_detected_and_the_next_frame_still_arrives() {
    let (frames, frags) = three_frames(50);
    for (i, frag) in frags[1].iter().enumerate() {
        for bit in 0..frag.len() * 8 {
            let mut damaged = frags[1].clone();
            damaged[i][bit / 8] ^= 1 << (bit % 8);
            let stream = [frags[0].clone(), damaged, frags[2].clone()].concat();
            let (got, errors) = feed(&mut reassembler(), &stream);
            assert!(!errors.is_empty(), "fragment {i} bit {bit} unnoticed");
            assert_eq!(got.len(), 2, "fragment {i} bit {bit}: {errors:?}");
            assert_eq!(got[0].2, frames[0]);
            assert_eq!(got[1].2, frames[2], "fragment {i} bit {bit}");
        }
    }
}

#[test]
fn corrupted_data_fails_the_crc() {
    let (frames, frags) = three_frames(50);
    let mut damaged = frags[1].clone();
    damaged[1][10] ^= 0xFF;
    let stream = [frags[0].clone(), damaged, frags[2].clone()].concat();
    let (got, errors) = feed(&mut reassembler(), &stream);
    assert_eq!(errors, [BleError::CrcMismatch { seq: 1 }]);
    assert_eq!(got[1], (2, 1, frames[2].clone()));
}

#[test]
fn oversize_and_inconsistent_lengths_are_refused() {
    let mut f = Fragmenter::new(23).unwrap();
    assert_eq!(
        f.fragment(&vec![0; MAX_FRAME_LEN + 1]).err(),
        Some(BleError::FrameTooLarge {
            len: MAX_FRAME_LEN + 1,
            max: MAX_FRAME_LEN
        })
    );
    let mut r = Reassembler::new(23, 100).unwrap();
    let too_big = fragments(&mut f, &frame_of(101, 0));
    assert_eq!(
        r.push(&too_big[0]).err(),
        Some(BleError::FrameTooLarge { len: 101, max: 100 })
    );
    assert!(!r.in_progress());
    // A first fragment announcing fewer bytes than the frame has.
    let mut frags = fragments(&mut f, &frame_of(40, 1));
    frags[0][5] = 12;
    let (got, errors) = feed(&mut r, &frags);
    assert!(got.is_empty());
    assert_eq!(errors[0], BleError::LengthOverrun { total: 12 });
    // Announcing more than it has.
    let mut frags = fragments(&mut f, &frame_of(40, 2));
    frags[0][5] = 60;
    let (_, errors) = feed(&mut r, &frags);
    assert_eq!(
        errors,
        [BleError::FrameShort {
            total: 60,
            received: 40
        }]
    );
    let good = frame_of(40, 3);
    let (got, _) = feed(&mut r, &fragments(&mut f, &good));
    assert_eq!(got[0].2, good);
}

#[test]
fn truncated_and_malformed_fragments_are_refused() {
    let mut r = reassembler();
    for len in 0..HEADER_LEN {
        assert_eq!(
            r.push(&vec![FLAG_FIRST; len]).err(),
            Some(BleError::TruncatedHeader { len })
        );
    }
    // A first fragment cut inside its length field.
    assert_eq!(
        r.push(&[FLAG_FIRST, 0, 0, 0, 0, 9, 0]).err(),
        Some(BleError::TruncatedHeader { len: 7 })
    );
    // A lone fragment with no room for the CRC.
    assert_eq!(
        r.push(&[FLAG_FIRST | FLAG_LAST, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2])
            .err(),
        Some(BleError::MissingCrc)
    );
    assert_eq!(
        r.push(&[0x04, 0, 0, 1, 0]).err(),
        Some(BleError::ReservedFlags { flags: 0x04 })
    );
    assert_eq!(
        r.push(&[FLAG_FIRST, 0, 0, 1, 0, 0, 0, 0, 0]).err(),
        Some(BleError::BadIndex { index: 1 })
    );
    assert_eq!(
        r.push(&[0, 0, 0, 0, 0]).err(),
        Some(BleError::BadIndex { index: 0 })
    );
    assert_eq!(
        r.push(&[0; 21]).err(),
        Some(BleError::FragmentTooLong { len: 21, max: 20 })
    );
    // A truncated fragment in the middle of a frame drops it; the next one arrives.
    let (frames, frags) = three_frames(60);
    let mut damaged = frags[1].clone();
    damaged[2].truncate(3);
    let stream = [frags[0].clone(), damaged, frags[2].clone()].concat();
    let (got, errors) = feed(&mut reassembler(), &stream);
    assert_eq!(errors[0], BleError::TruncatedHeader { len: 3 });
    assert_eq!(got, [(0, 0, frames[0].clone()), (2, 1, frames[2].clone())]);
}

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }
}

#[test]
fn random_frames_at_random_mtus_round_trip() {
    let mut rng = Rng(0xB1E_F4A6_0000_0001);
    for _ in 0..40 {
        let mtu = 23 + u16::try_from(rng.below(517 - 23 + 1)).unwrap();
        let mut f =
            Fragmenter::with_first_seq(mtu, u16::try_from(rng.next() & 0xFFFF).unwrap()).unwrap();
        let mut r = Reassembler::new(mtu, MAX_FRAME_LEN).unwrap();
        for _ in 0..25 {
            let len = match rng.below(10) {
                0 => MAX_FRAME_LEN - rng.below(600),
                1..=3 => rng.below(40),
                _ => rng.below(3000),
            };
            let frame: Vec<u8> = (0..len).map(|_| rng.next().to_le_bytes()[0]).collect();
            let seq = f.next_seq();
            let frags = fragments(&mut f, &frame);
            assert!(frags.iter().all(|x| x.len() <= usize::from(mtu) - 3));
            let (got, errors) = feed(&mut r, &frags);
            assert_eq!(errors, [], "mtu {mtu}, len {len}");
            assert_eq!(got, [(seq, 0, frame)], "mtu {mtu}, len {len}");
        }
    }
}

#[test]
fn random_losses_never_deliver_a_wrong_frame_and_always_recover() {
    let mut rng = Rng(0x1055_0000_0000_0007);
    for _ in 0..200 {
        let mtu = 23 + u16::try_from(rng.below(100)).unwrap();
        let mut f = Fragmenter::new(mtu).unwrap();
        let mut r = Reassembler::new(mtu, 4096).unwrap();
        let frames: Vec<Vec<u8>> = (0..4)
            .map(|_| {
                (0..rng.below(400))
                    .map(|_| rng.next().to_le_bytes()[0])
                    .collect()
            })
            .collect();
        let mut stream = Vec::new();
        for (i, frame) in frames.iter().enumerate() {
            let mut frags = fragments(&mut f, frame);
            // Damage the first three frames: drop, repeat or swap a fragment.
            if i < 3 {
                let k = rng.below(frags.len());
                match rng.below(3) {
                    0 => {
                        frags.remove(k);
                    }
                    1 => frags.insert(k, frags[k].clone()),
                    _ if frags.len() > 1 => {
                        let j = (k + 1) % frags.len();
                        frags.swap(k, j);
                    }
                    _ => {}
                }
            }
            stream.extend(frags);
        }
        let (got, _) = feed(&mut r, &stream);
        for (seq, _, data) in &got {
            assert_eq!(data, &frames[usize::from(*seq)]);
        }
        assert_eq!(
            got.last().map(|g| g.0),
            Some(3),
            "the undamaged frame arrives"
        );
    }
}

#[test]
fn the_delivered_frame_can_be_changed_where_it_lies_until_the_next_push() {
    let mut f = Fragmenter::new(23).unwrap();
    let mut r = Reassembler::new(23, MAX_FRAME_LEN).unwrap();
    assert_eq!(r.delivered_mut(), None, "nothing delivered yet");
    let frame = frame_of(100, 3);
    let frags = fragments(&mut f, &frame);
    let (last, first) = frags.split_last().unwrap();
    for frag in first {
        assert_eq!(r.push(frag).unwrap(), None);
        assert_eq!(
            r.delivered_mut(),
            None,
            "a frame in progress is not delivered"
        );
    }
    assert!(r.push(last).unwrap().is_some());
    let data = r.delivered_mut().unwrap();
    assert_eq!(data, &frame[..]);
    data.fill(0);
    assert_eq!(r.delivered_mut().unwrap(), &[0; 100][..]);
    // The next push (here a duplicate, refused) ends the loan.
    assert!(r.push(last).is_err());
    assert_eq!(r.delivered_mut(), None);
    // A reset forgets it too.
    let again = fragments(&mut f, &frame_of(2, 4));
    assert!(r.push(&again[0]).unwrap().is_some());
    r.reset();
    assert_eq!(r.delivered_mut(), None);
}
