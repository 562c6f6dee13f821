//! Over Bluetooth, through a parent's phone that relays fragments it cannot read.

use pawpost_ble::{Fragmenter, Reassembler, MAX_FRAME_LEN as BLE_MAX_FRAME_LEN};
use pawpost_toy::{Frame, FrameType};

use crate::support::*;

#[test]
fn a_deliver_frame_crosses_ble_at_the_smallest_and_a_common_mtu() {
    for mtu in [23u16, 247] {
        let mut world = World::paired();
        let envelope = world.message_from(&world.family.grandma, message_id(1));
        let frame = encode(Frame::Deliver {
            envelope: &envelope,
        });
        assert!(frame.len() <= BLE_MAX_FRAME_LEN);

        let mut fragmenter = Fragmenter::new(mtu).unwrap();
        let fragments: Vec<Vec<u8>> = fragmenter.fragment(&frame).unwrap().collect();
        assert!(fragments.len() > 1);
        assert!(fragments.iter().all(|f| f.len() <= usize::from(mtu) - 3));

        let mut reassembler = Reassembler::new(mtu, BLE_MAX_FRAME_LEN).unwrap();
        let mut rebuilt = None;
        for fragment in &fragments {
            if let Some(done) = reassembler.push(fragment).unwrap() {
                rebuilt = Some(done.data.to_vec());
            }
        }
        let rebuilt = rebuilt.expect("the frame was reassembled");
        assert_eq!(rebuilt, frame);
        let actions = world.event(pawpost_toy::Event::FrameReceived(&rebuilt));
        assert_eq!(
            sent_types(&actions),
            vec![FrameType::Delivered],
            "mtu {mtu}"
        );
    }
}

/// A 30 s message of 20 ms packets of `packet_len` bytes, sealed for the toy, in a frame.
fn thirty_seconds_at(world: &World, packet_len: usize) -> Vec<u8> {
    let mut writer = pawpost_media::OggOpusWriter::new(1, 312, 1).unwrap();
    let mut packet = vec![31 << 3];
    packet.resize(packet_len, 0x55);
    for _ in 0..1500 {
        writer.push_packet(&packet).unwrap();
    }
    let envelope = seal_voice(
        &world.family.grandma,
        household_id(),
        message_id(1),
        &[world.toy_in_roster()],
        &writer.finish(0).unwrap(),
    );
    encode(Frame::Deliver {
        envelope: &envelope,
    })
}

#[test]
fn over_ble_a_full_length_message_fits_one_frame_at_16_kbit_s_but_not_at_24() {
    // BLE frames are limited to 64 KiB by the fragmentation codec, so the phone app must
    // record speech at 16 kbit/s or less for a 30 s message to reach a toy over BLE.
    let world = World::paired();
    let at_16 = thirty_seconds_at(&world, 40);
    assert!(at_16.len() <= BLE_MAX_FRAME_LEN, "{} bytes", at_16.len());
    let at_24 = thirty_seconds_at(&world, 60);
    assert!(at_24.len() > BLE_MAX_FRAME_LEN, "{} bytes", at_24.len());
}
