//! Every 30 days the toy replaces its key pair; a stolen old key then stops working.

use pawpost_crypto::open;
use pawpost_toy::signing::{verify_auth, verify_rotation};
use pawpost_toy::{
    Action, Event, Frame, FrameType, RejectReason, Report, ServerError, Toy,
    KEY_ROTATION_INTERVAL_MS,
};

use crate::support::*;

const DAY_MS: u64 = 24 * HOUR_MS;

fn rotate_key_in(actions: &[Action]) -> (pawpost_crypto::PublicIdentity, [u8; 64]) {
    sent(actions)
        .iter()
        .find_map(|b| match Frame::decode(b).unwrap() {
            Frame::RotateKey {
                new_identity,
                signature_by_old_key,
            } => Some((new_identity, signature_by_old_key)),
            _ => None,
        })
        .expect("a RotateKey frame")
}

fn auth_in(actions: &[Action]) -> (u64, [u8; 64]) {
    // After the streaming hello.
    match Frame::decode(&sent(actions)[1]).unwrap() {
        Frame::Auth {
            roster_version,
            signature,
            ..
        } => (roster_version, signature),
        other => panic!("expected auth, got {other:?}"),
    }
}

#[test]
fn the_toy_rotates_its_key_every_thirty_days_and_the_old_one_stops_working() {
    let mut world = World::paired();
    let old = world.toy.identity();
    assert!(sent(&world.advance(29 * DAY_MS)).is_empty());

    let actions = world.advance(DAY_MS);
    let (new, signature) = rotate_key_in(&actions);
    assert_eq!(new.device_id, old.device_id);
    assert_ne!(new.ed25519_pub, old.ed25519_pub);
    assert_ne!(new.x25519_pub, old.x25519_pub);
    assert!(verify_rotation(&old, &new, &NONCE, &signature));
    assert!(!verify_rotation(&new, &new, &NONCE, &signature));
    // The new key is saved before the server can learn it.
    let persist_at = actions
        .iter()
        .position(|a| matches!(a, Action::Persist(_)))
        .unwrap();
    let send_at = actions
        .iter()
        .position(|a| matches!(a, Action::SendFrame(_)))
        .unwrap();
    assert!(persist_at < send_at);
    assert_eq!(world.toy.identity(), old, "nothing changes before the ack");

    // An ack for some other key changes nothing.
    let actions = world.receive(Frame::RotateAck {
        ed25519_pub: keys(40).public().ed25519_pub,
    });
    assert!(matches!(reports(&actions)[0], Report::FrameIgnored { .. }));
    assert_eq!(world.toy.identity(), old);

    world.receive(Frame::RotateAck {
        ed25519_pub: new.ed25519_pub,
    });
    assert_eq!(world.toy.identity(), new);

    // On the next connection the toy proves itself with the new key only: a thief holding
    // the old one cannot produce this signature, and the server no longer knows the old key.
    world.event(Event::Disconnected);
    let nonce = [0x77; 32];
    world.event(Event::Connected);
    let actions = world.receive(Frame::Challenge {
        nonce,
        server_time_ms: NOON_UTC_MS,
    });
    let (version, signature) = auth_in(&actions);
    assert!(verify_auth(&new, &nonce, version, &signature));
    assert!(!verify_auth(&old, &nonce, version, &signature));
    assert_eq!(
        sent_types(&actions),
        vec![FrameType::ChunkRequest, FrameType::Auth],
        "no second rotation"
    );
}

#[test]
fn messages_still_reach_the_toy_until_a_parent_signs_its_new_keys_into_the_roster() {
    let mut world = World::paired();
    let old = world.toy.identity();
    let (new, _) = rotate_key_in(&world.advance(KEY_ROTATION_INTERVAL_MS));
    world.receive(Frame::RotateAck {
        ed25519_pub: new.ed25519_pub,
    });

    // Grandma's app still encrypts to the keys in the roster.
    let to_old = world.message_from(&world.family.grandma, message_id(1));
    assert_eq!(
        sent_types(&world.deliver(&to_old)),
        vec![FrameType::Delivered]
    );
    // The child's reply is signed with the key the roster lists, so the family can check it.
    world.press();
    world.press();
    let actions = world.event(Event::RecordingFinished { ogg: voice(1000) });
    let upload = sent(&actions)
        .iter()
        .find_map(|b| match Frame::decode(b).unwrap() {
            // A short recording fits in one piece.
            Frame::UploadChunk { bytes, .. } => Some(bytes.to_vec()),
            _ => None,
        })
        .unwrap();
    assert!(open(&upload, &world.family.mum, &old).is_ok());

    // Mum's app re-signs the roster with the toy's new keys.
    let toy_id = world.toy.device_id();
    let next = world.next_roster(&world.family.mum, |r| {
        for m in &mut r.members {
            if m.device_id == toy_id {
                m.x25519_pub = new.x25519_pub;
                m.ed25519_pub = new.ed25519_pub;
            }
        }
    });
    let actions = world.update_roster(next);
    assert!(reports(&actions).is_empty(), "{actions:?}");
    let to_new = world.message_from(&world.family.grandma, message_id(2));
    assert_eq!(
        sent_types(&world.deliver(&to_new)),
        vec![FrameType::Delivered]
    );

    // The old keys are gone: a message sealed to them no longer opens.
    let to_stale = seal_voice(
        &world.family.grandma,
        household_id(),
        message_id(3),
        &[old],
        &voice(1000),
    );
    let actions = world.deliver(&to_stale);
    assert_eq!(
        reports(&actions),
        vec![Report::MessageDropped {
            message_id: Some(message_id(3)),
            reason: RejectReason::Undecryptable
        }]
    );

    // And the next rotation waits for its own 30 days.
    assert!(sent(&world.advance(DAY_MS)).is_empty());
}

#[test]
fn no_second_rotation_starts_while_the_roster_still_lists_the_retired_keys() {
    let mut world = World::paired();
    let (new, _) = rotate_key_in(&world.advance(KEY_ROTATION_INTERVAL_MS));
    world.receive(Frame::RotateAck {
        ed25519_pub: new.ed25519_pub,
    });
    assert!(sent(&world.advance(KEY_ROTATION_INTERVAL_MS)).is_empty());
}

#[test]
fn a_rotation_whose_ack_was_lost_completes_after_a_restart() {
    let mut world = World::paired();
    let old = world.toy.identity();
    let (new, _) = rotate_key_in(&world.advance(KEY_ROTATION_INTERVAL_MS));
    // Power fails before the ack arrives; the pending key was saved.
    let mut toy = Toy::restore(world.saved.as_ref().unwrap()).unwrap();
    toy.handle(
        Event::PowerOn {
            now_ms: 1,
            wall_clock_unix_ms: Some(NOON_UTC_MS + KEY_ROTATION_INTERVAL_MS),
        },
        &mut rng(4),
    );
    world.toy = toy;

    // Reconnecting, it authenticates with the old key and asks again.
    let actions = world.connect();
    assert_eq!(
        sent_types(&actions),
        vec![
            FrameType::ChunkRequest,
            FrameType::Auth,
            FrameType::RotateKey
        ]
    );
    let (version, signature) = auth_in(&actions);
    assert!(verify_auth(&old, &NONCE, version, &signature));
    assert_eq!(rotate_key_in(&actions).0, new, "the same new key");

    // The server had already switched, so it refuses the old key: the toy takes the new one.
    world.receive(Frame::Error {
        code: ServerError::AuthFailed,
    });
    assert_eq!(world.toy.identity(), new);
    let actions = world.connect();
    let (version, signature) = auth_in(&actions);
    assert!(verify_auth(&new, &NONCE, version, &signature));
}

#[test]
fn a_refused_rotation_is_retried_later_not_in_a_loop() {
    let mut world = World::paired();
    let old = world.toy.identity();
    rotate_key_in(&world.advance(KEY_ROTATION_INTERVAL_MS));
    world.receive(Frame::Error {
        code: ServerError::RotateRefused,
    });
    assert_eq!(world.toy.identity(), old);
    assert!(sent(&world.advance(1000)).is_empty());
    rotate_key_in(&world.advance(pawpost_toy::ROTATION_RETRY_MS));
}

#[test]
fn the_toy_refuses_a_roster_that_gives_it_keys_it_does_not_hold() {
    let mut world = World::paired();
    let toy_id = world.toy.device_id();
    let stranger = world.family.stranger.public();
    let next = world.next_roster(&world.family.mum, |r| {
        for m in &mut r.members {
            if m.device_id == toy_id {
                m.x25519_pub = stranger.x25519_pub;
                m.ed25519_pub = stranger.ed25519_pub;
            }
        }
    });
    let bytes = next.encode();
    let actions = world.receive(Frame::RosterUpdate {
        signed_roster: &bytes,
    });
    assert!(matches!(
        reports(&actions)[0],
        Report::RosterRefused {
            reason: pawpost_toy::RosterRefusal::ToyKeyMismatch,
            ..
        }
    ));
    // Messages to the toy's real keys still arrive.
    let envelope = world.message_from(&world.family.grandma, message_id(1));
    assert_eq!(
        sent_types(&world.deliver(&envelope)),
        vec![FrameType::Delivered]
    );
}
