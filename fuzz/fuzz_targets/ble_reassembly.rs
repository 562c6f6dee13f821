//! BLE fragments from a nearby stranger or a misbehaving phone, fed to the toy's reassembler
//! at several ATT MTUs. `push` must never panic; every frame it delivers must be within the
//! limit and survive being fragmented and reassembled again; and the input's own bytes,
//! fragmented by the real fragmenter, must come back whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pawpost_ble::{Fragmenter, Reassembler, MAX_FRAME_LEN};
use pawpost_fuzz::split_ble_input;

/// Re-fragments `data` as frame `seq` and checks that a fresh reassembler gives it back.
fn round_trip(mtu: u16, seq: u16, data: &[u8]) {
    let mut fragmenter = Fragmenter::with_first_seq(mtu, seq).unwrap();
    let fragments: Vec<Vec<u8>> = fragmenter.fragment(data).unwrap().collect();
    let mut reassembler = Reassembler::new(mtu, MAX_FRAME_LEN).unwrap();
    let last = fragments.len() - 1;
    for (i, fragment) in fragments.iter().enumerate() {
        assert!(fragment.len() <= usize::from(mtu) - 3);
        let got = reassembler
            .push(fragment)
            .expect("clean fragments reassemble");
        match got {
            Some(frame) => {
                assert_eq!(i, last, "a frame completes on its last fragment");
                assert_eq!(frame.seq, seq);
                assert_eq!(frame.missed, 0);
                assert_eq!(frame.data, data);
            }
            None => assert!(i < last, "the last fragment completes the frame"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((chosen, fragments)) = split_ble_input(data) else {
        return;
    };
    for (mtu, max_frame_len) in [(chosen, MAX_FRAME_LEN), (23, 1024), (517, MAX_FRAME_LEN)] {
        let mut reassembler = Reassembler::new(mtu, max_frame_len).unwrap();
        let mut delivered: Vec<(u16, Vec<u8>)> = Vec::new();
        for fragment in &fragments {
            if let Ok(Some(frame)) = reassembler.push(fragment) {
                assert!(frame.data.len() <= max_frame_len);
                delivered.push((frame.seq, frame.data.to_vec()));
            }
        }
        for (seq, frame) in &delivered {
            round_trip(mtu, *seq, frame);
        }
        reassembler.reset();
        assert!(!reassembler.in_progress());
    }
    // The input as a frame of its own, fragmented and reassembled at the chosen MTU.
    round_trip(
        chosen,
        u16::from(data[0]),
        &data[..data.len().min(8 * 1024)],
    );
});
