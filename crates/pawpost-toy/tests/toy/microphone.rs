//! The microphone starts only from a physical paw press. Whatever arrives over the network
//! or Bluetooth, in whatever state the toy is in, it never starts recording.

use pawpost_crypto::rand_core::Rng;
use pawpost_crypto::{HouseholdSettings, QuietHours, SignedRoster};
use pawpost_protocol::testing::one_of_each;
use pawpost_toy::signing::sign_approval;
use pawpost_toy::{Event, Frame, FrameType, PairingCode, ServerError, PROTOCOL_VERSION};

use crate::support::*;

/// The toy in each state worth checking, by name.
pub fn states() -> Vec<(&'static str, World)> {
    let mut states = Vec::new();

    states.push(("fresh, offline", World::new_toy()));

    let mut connected = World::new_toy();
    connected.connect();
    states.push(("unpaired, connected", connected));

    let mut pairing = World::new_toy();
    pairing.connect();
    pairing.event(Event::PawPressed { long: true });
    states.push(("pairing", pairing));

    states.push(("paired, idle, empty queue", World::paired()));

    let mut offline = World::paired();
    offline.event(Event::Disconnected);
    states.push(("paired, offline", offline));

    let mut waiting = World::paired();
    let envelope = waiting.message_from(&waiting.family.grandma, message_id(200));
    waiting.deliver(&envelope);
    states.push(("paired, message waiting", waiting));

    let mut held = World::paired_with(HouseholdSettings {
        parent_approves_before_play: true,
        ..settings()
    });
    let envelope = held.message_from(&held.family.grandma, message_id(201));
    held.deliver(&envelope);
    states.push(("paired, message held for approval", held));

    let mut night = World::paired_with(HouseholdSettings {
        quiet_hours: Some(QuietHours {
            start_minute: 11 * 60,
            end_minute: 13 * 60,
        }),
        ..settings()
    });
    let envelope = night.message_from(&night.family.grandma, message_id(202));
    night.deliver(&envelope);
    states.push(("paired, quiet hours", night));

    let mut recording = World::paired();
    recording.press();
    states.push(("recording", recording));

    let mut rotating = World::paired();
    rotating.advance(pawpost_toy::KEY_ROTATION_INTERVAL_MS);
    states.push(("key rotation pending", rotating));

    states
}

/// Every frame a server could send in that state: the generic ones, the ones that make
/// sense for this toy (valid messages, rosters, approvals), and every error.
pub fn frames_for(world: &World) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let envelope = world.message_from_any(&world.family.grandma, message_id(100));
    let genesis = SignedRoster::sign(&world.genesis(settings()), &world.family.mum).unwrap();
    let genesis_bytes = genesis.encode();
    for frame in one_of_each(keys(9).public(), &envelope, &genesis_bytes) {
        frames.push(encode(frame));
    }
    frames.push(encode(Frame::Paired {
        household_id: household_id(),
        signed_roster: &genesis_bytes,
    }));
    if world.roster.is_some() {
        let next = world.next_roster(&world.family.mum, |r| r.settings.retention_days = 9);
        frames.push(encode(Frame::RosterUpdate {
            signed_roster: &next.encode(),
        }));
    }
    for id in [100, 200, 201, 202] {
        frames.push(encode(Frame::Approval {
            message_id: message_id(id),
            approver: world.family.dad.device_id(),
            signature: sign_approval(&world.family.dad, household_id(), message_id(id)),
        }));
        frames.push(encode(Frame::UploadAck {
            message_id: message_id(id),
        }));
    }
    frames.push(encode(Frame::Deliver {
        envelope: &envelope,
    }));
    frames.push(encode(Frame::PairCode {
        code: PairingCode::from_number(123_456).unwrap(),
        expires_in_s: 600,
    }));
    frames.push(encode(Frame::ConfirmPairing {
        number: pawpost_toy::ConfirmationNumber::from_number(472).unwrap(),
    }));
    frames.push(encode(Frame::RotateAck {
        ed25519_pub: world.toy.identity().ed25519_pub,
    }));
    for code in ServerError::ALL {
        frames.push(encode(Frame::Error { code: *code }));
    }
    frames.push(encode(Frame::Challenge {
        nonce: [3; 32],
        server_time_ms: NOON_UTC_MS,
    }));
    frames
}

pub fn random_frames(seed: u8) -> Vec<Vec<u8>> {
    let mut rng = rng(seed);
    let mut frames = Vec::new();
    for i in 0..300usize {
        let mut bytes = vec![0u8; (i * 7) % 180];
        rng.fill_bytes(&mut bytes);
        if i % 2 == 0 && bytes.len() >= 6 {
            bytes[0] = PROTOCOL_VERSION;
            bytes[1] = FrameType::ALL[i % FrameType::ALL.len()] as u8;
            let body = u32::try_from(bytes.len() - 6).unwrap();
            bytes[2..6].copy_from_slice(&body.to_be_bytes());
        }
        frames.push(bytes);
    }
    frames
}

#[test]
fn no_frame_and_no_random_bytes_ever_start_the_microphone_in_any_state() {
    for (seed, (name, mut world)) in (1u8..).zip(states()) {
        let mut fed = 0;
        for bytes in frames_for(&world).into_iter().chain(random_frames(seed)) {
            let actions = world.event(Event::FrameReceived(&bytes));
            assert!(
                !starts_microphone(&actions),
                "state {name:?}: frame {:?} started the microphone",
                Frame::decode(&bytes).map(|f| f.frame_type())
            );
            // Time passing and connections coming and going do not either.
            let actions = world.advance(1000);
            assert!(!starts_microphone(&actions), "state {name:?}: timer");
            fed += 1;
        }
        for event in [Event::Disconnected, Event::Connected] {
            assert!(!starts_microphone(&world.event(event)), "state {name:?}");
        }
        assert!(fed > 300, "state {name:?}: fed {fed} frames");
    }
}
