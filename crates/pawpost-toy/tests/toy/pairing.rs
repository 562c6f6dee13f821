//! A parent pairs the toy by typing the code it speaks.

use pawpost_crypto::{MemberStatus, Role, SignedRoster};
use pawpost_toy::signing::{verify_auth, verify_pair_request};
use pawpost_toy::{
    Event, Frame, FrameType, Heart, Prompt, Report, RosterRefusal, ServerError, Toy,
    PAIRING_WINDOW_MS,
};

use crate::support::*;

#[test]
fn a_parent_pairs_the_toy_with_the_code_it_speaks() {
    let mut world = World::new_toy();
    let identity = world.toy.identity();
    world.event(Event::Connected);
    let actions = world.receive(Frame::Challenge {
        nonce: NONCE,
        server_time_ms: NOON_UTC_MS,
    });
    assert!(
        sent(&actions).is_empty(),
        "an unpaired toy waits for a press"
    );

    let actions = world.event(Event::PawPressed { long: true });
    assert_eq!(spoken(&actions), vec![Prompt::PairingStarted]);
    assert_eq!(hearts(&actions), vec![Heart::On]);
    let request = &sent(&actions)[0];
    let Frame::PairRequest {
        identity: presented,
        signature,
    } = Frame::decode(request).unwrap()
    else {
        panic!("expected a pair request");
    };
    assert_eq!(presented, identity);
    assert!(verify_pair_request(&presented, &NONCE, &signature));
    assert!(!verify_pair_request(&presented, &[0; 32], &signature));

    let code = pawpost_toy::PairingCode::from_number(48_213).unwrap();
    let actions = world.receive(Frame::PairCode {
        code,
        expires_in_s: 600,
    });
    assert_eq!(spoken(&actions), vec![Prompt::PairingCode(code)]);
    assert_eq!(format!("{code}"), "048213");
    // A short press repeats the code for a parent who missed it.
    assert_eq!(spoken(&world.press()), vec![Prompt::PairingCode(code)]);
    assert!(
        sent(&world.press()).is_empty(),
        "before a parent's claim, a press confirms nothing"
    );

    // A parent typed the code: the toy speaks the claim's number, and a press confirms
    // that number and no other.
    let number = pawpost_toy::ConfirmationNumber::from_number(472).unwrap();
    let actions = world.receive(Frame::ConfirmPairing { number });
    assert_eq!(spoken(&actions), vec![Prompt::ConfirmPairing(number)]);
    let actions = world.press();
    assert_eq!(
        sent(&actions)
            .iter()
            .map(|b| Frame::decode(b).unwrap())
            .collect::<Vec<_>>(),
        vec![Frame::PairConfirmed { number }]
    );

    let roster = SignedRoster::sign(&world.genesis(settings()), &world.family.mum).unwrap();
    let bytes = roster.encode();
    let actions = world.receive(Frame::Paired {
        household_id: household_id(),
        signed_roster: &bytes,
    });
    let number = Prompt::SafetyNumber(world.toy.identity().safety_number());
    assert_eq!(spoken(&actions), vec![Prompt::Paired, number]);
    assert_eq!(hearts(&actions), vec![Heart::Off]);
    assert!(persisted(&actions).is_some());
    assert_eq!(world.toy.household_id(), Some(household_id()));
    assert_eq!(world.toy.roster_version(), 1);

    // From now on the toy authenticates on every connection.
    world.event(Event::Disconnected);
    world.event(Event::Connected);
    let nonce = [0x42; 32];
    let actions = world.receive(Frame::Challenge {
        nonce,
        server_time_ms: NOON_UTC_MS,
    });
    let Frame::Auth {
        device_id,
        roster_version,
        signature,
    } = Frame::decode(&sent(&actions)[1]).unwrap()
    else {
        panic!("expected auth after the streaming hello");
    };
    assert_eq!(device_id, identity.device_id);
    assert_eq!(roster_version, 1);
    assert!(verify_auth(&identity, &nonce, 1, &signature));
    assert!(
        !verify_auth(&identity, &NONCE, 1, &signature),
        "bound to the nonce"
    );

    // The pairing survives a restart.
    let restored = Toy::restore(world.saved.as_ref().unwrap()).unwrap();
    assert_eq!(restored.household_id(), Some(household_id()));
    assert_eq!(restored.identity(), identity);
}

#[test]
fn two_toys_make_different_keys_and_ids() {
    let a = Toy::first_start(&mut rng(1));
    let b = Toy::first_start(&mut rng(2));
    assert_ne!(a.device_id(), b.device_id());
    assert_ne!(a.identity().ed25519_pub, b.identity().ed25519_pub);
    assert_ne!(a.identity().x25519_pub, b.identity().x25519_pub);
}

fn pairing_toy() -> World {
    let mut world = World::new_toy();
    world.event(Event::Connected);
    world.receive(Frame::Challenge {
        nonce: NONCE,
        server_time_ms: NOON_UTC_MS,
    });
    world.event(Event::PawPressed { long: true });
    world
}

fn offer(world: &mut World, roster: &SignedRoster) -> Vec<pawpost_toy::Action> {
    let bytes = roster.encode();
    world.receive(Frame::Paired {
        household_id: household_id(),
        signed_roster: &bytes,
    })
}

fn refusal(actions: &[pawpost_toy::Action]) -> Option<RosterRefusal> {
    reports(actions).iter().find_map(|r| match r {
        Report::RosterRefused { reason, .. } => Some(*reason),
        _ => None,
    })
}

#[test]
fn a_roster_that_does_not_list_this_toy_with_its_keys_does_not_pair_it() {
    let mut world = pairing_toy();
    let mut roster = world.genesis(settings());
    roster.members.retain(|m| m.role != Role::Toy);
    let signed = SignedRoster::sign(&roster, &world.family.mum).unwrap();
    let actions = offer(&mut world, &signed);
    assert_eq!(refusal(&actions), Some(RosterRefusal::ToyKeyMismatch));
    assert_eq!(spoken(&actions), vec![Prompt::PairingFailed]);
    assert_eq!(sent_types(&actions), vec![FrameType::RosterRejected]);

    // Listed under this toy's id, but with someone else's keys.
    let mut roster = world.genesis(settings());
    let other = keys(50).public();
    for m in &mut roster.members {
        if m.role == Role::Toy {
            m.x25519_pub = other.x25519_pub;
        }
    }
    let signed = SignedRoster::sign(&roster, &world.family.mum).unwrap();
    let actions = offer(&mut world, &signed);
    assert_eq!(refusal(&actions), Some(RosterRefusal::ToyKeyMismatch));
    assert_eq!(world.toy.household_id(), None);
}

#[test]
fn a_pairing_roster_signed_by_someone_other_than_an_owner_is_refused() {
    let mut world = pairing_toy();
    let roster = world.genesis(settings());
    let by_guardian = SignedRoster::sign(&roster, &world.family.dad).unwrap();
    assert_eq!(
        refusal(&offer(&mut world, &by_guardian)),
        Some(RosterRefusal::SignerNotOwner)
    );
    let by_stranger = SignedRoster::sign(&roster, &world.family.stranger).unwrap();
    assert_eq!(
        refusal(&offer(&mut world, &by_stranger)),
        Some(RosterRefusal::SignerNotOwner)
    );
    // A blocked owner is no owner.
    let mut blocked = world.genesis(settings());
    blocked.members[0].status = MemberStatus::Blocked;
    let by_blocked = SignedRoster::sign(&blocked, &world.family.mum).unwrap();
    assert_eq!(
        refusal(&offer(&mut world, &by_blocked)),
        Some(RosterRefusal::SignerNotOwner)
    );
    assert_eq!(world.toy.household_id(), None);
}

#[test]
fn a_pairing_roster_for_another_household_than_announced_is_refused() {
    let mut world = pairing_toy();
    let roster = SignedRoster::sign(&world.genesis(settings()), &world.family.mum).unwrap();
    let bytes = roster.encode();
    let actions = world.receive(Frame::Paired {
        household_id: other_household_id(),
        signed_roster: &bytes,
    });
    assert_eq!(refusal(&actions), Some(RosterRefusal::HouseholdMismatch));
}

#[test]
fn nobody_can_pair_a_toy_that_is_not_in_pairing_mode() {
    let mut world = World::new_toy();
    world.event(Event::Connected);
    world.receive(Frame::Challenge {
        nonce: NONCE,
        server_time_ms: NOON_UTC_MS,
    });
    let roster = SignedRoster::sign(&world.genesis(settings()), &world.family.mum).unwrap();
    let actions = offer(&mut world, &roster);
    assert_eq!(refusal(&actions), Some(RosterRefusal::Unexpected));
    assert_eq!(world.toy.household_id(), None);
}

#[test]
fn pairing_mode_ends_after_ten_minutes_or_when_the_code_expires() {
    let mut world = pairing_toy();
    let actions = world.advance(PAIRING_WINDOW_MS);
    assert_eq!(spoken(&actions), vec![Prompt::PairingFailed]);
    assert_eq!(hearts(&actions), vec![Heart::Off]);
    let roster = SignedRoster::sign(&world.genesis(settings()), &world.family.mum).unwrap();
    assert_eq!(
        refusal(&offer(&mut world, &roster)),
        Some(RosterRefusal::Unexpected)
    );

    let mut world = pairing_toy();
    let actions = world.receive(Frame::Error {
        code: ServerError::PairingExpired,
    });
    assert_eq!(spoken(&actions), vec![Prompt::PairingFailed]);
}

#[test]
fn a_paired_toy_cannot_be_moved_to_another_household_by_a_press() {
    let mut world = World::paired();
    let actions = world.event(Event::PawPressed { long: true });
    let number = Prompt::SafetyNumber(world.toy.identity().safety_number());
    assert_eq!(spoken(&actions), vec![Prompt::AlreadyPaired, number]);
    assert!(sent(&actions).is_empty());
}

#[test]
fn a_toy_paired_later_in_its_households_life_accepts_that_households_roster() {
    let mut world = pairing_toy();
    let genesis = world.genesis(settings());
    let mut v5 = genesis.next_version();
    v5.version = 5;
    let roster = SignedRoster::sign(&v5, &world.family.mum).unwrap();
    let actions = offer(&mut world, &roster);
    let number = Prompt::SafetyNumber(world.toy.identity().safety_number());
    assert_eq!(spoken(&actions), vec![Prompt::Paired, number]);
    assert_eq!(world.toy.roster_version(), 5);
}
