//! An owner signs the toy out of its household: the toy forgets the household, says so and
//! can be paired again with the same keys. Any other `Leave` frame is reported and changes
//! nothing.

use pawpost_crypto::{DeviceId, DeviceKeys, HouseholdId, MemberStatus, Role, SignedRoster};
use pawpost_toy::signing::sign_leave;
use pawpost_toy::{
    Action, Event, Frame, FrameType, LeaveRefusal, PairingCode, Prompt, ReconnectReason, Report,
};

use crate::support::*;

fn leave_frame(household_id: HouseholdId, signer: &DeviceKeys, toy: DeviceId) -> Vec<u8> {
    encode(Frame::Leave {
        household_id,
        signer: signer.device_id(),
        signature: sign_leave(signer, household_id, toy),
    })
}

fn refusals(actions: &[Action]) -> Vec<LeaveRefusal> {
    reports(actions)
        .iter()
        .filter_map(|r| match r {
            Report::LeaveRefused { reason } => Some(*reason),
            _ => None,
        })
        .collect()
}

/// A paired toy with one message waiting, connected.
fn toy_with_a_message() -> World {
    let mut world = World::paired();
    let envelope = world.message_from(&world.family.grandma, message_id(1));
    world.deliver(&envelope);
    assert_eq!(world.toy.queued_messages(), 1);
    world
}

#[test]
fn an_owner_signs_the_toy_out_and_it_forgets_its_family_but_keeps_its_keys() {
    let mut world = toy_with_a_message();
    let identity = world.toy.identity();
    let frame = leave_frame(household_id(), &world.family.mum, world.toy.device_id());
    let actions = world.event(Event::FrameReceived(&frame));

    assert_eq!(spoken(&actions), vec![Prompt::LeftFamily], "{actions:?}");
    assert!(refusals(&actions).is_empty());
    assert_eq!(world.toy.household_id(), None);
    assert_eq!(world.toy.roster_version(), 0);
    assert_eq!(world.toy.queued_messages(), 0, "its messages are deleted");
    assert_eq!(
        world.toy.identity(),
        identity,
        "the same keys and device id"
    );
    // Saved before it says so, and then it connects again as an unpaired toy.
    let saved = actions
        .iter()
        .position(|a| matches!(a, Action::Persist(_)))
        .expect("saved");
    let said = actions
        .iter()
        .position(|a| *a == Action::Speak(Prompt::LeftFamily))
        .unwrap();
    let reconnect = actions
        .iter()
        .position(|a| *a == Action::Reconnect(ReconnectReason::Left))
        .expect("asks for a new connection");
    assert!(saved < said && said < reconnect, "{actions:?}");

    // The saved state restores as an unpaired toy with the same keys.
    let restored = pawpost_toy::Toy::restore(world.saved.as_ref().unwrap()).unwrap();
    assert_eq!(restored.household_id(), None);
    assert_eq!(restored.identity(), identity);

    // A short press no longer plays anything; a long press asks to pair, same keys.
    world.event(Event::Disconnected);
    let actions = world.connect();
    assert!(sent(&actions).is_empty(), "an unpaired toy sends nothing");
    assert_eq!(spoken(&world.press()), vec![Prompt::NotPaired]);
    let actions = world.event(Event::PawPressed { long: true });
    assert_eq!(sent_types(&actions), vec![FrameType::PairRequest]);
    match Frame::decode(&sent(&actions)[0]).unwrap() {
        Frame::PairRequest {
            identity: asked, ..
        } => assert_eq!(asked, identity),
        other => panic!("{other:?}"),
    }
}

#[test]
fn after_leaving_the_toy_pairs_with_another_household() {
    let mut world = World::paired();
    let frame = leave_frame(household_id(), &world.family.mum, world.toy.device_id());
    world.event(Event::FrameReceived(&frame));
    world.event(Event::Disconnected);
    world.connect();
    world.event(Event::PawPressed { long: true });
    let code = PairingCode::from_number(135_790).unwrap();
    world.receive(Frame::PairCode {
        code,
        expires_in_s: 600,
    });
    // The stranger's household, with its own owner.
    let stranger = keys(6);
    let genesis = pawpost_crypto::Roster::genesis(
        other_household_id(),
        settings(),
        vec![
            member(&stranger, 9, Role::Owner, MemberStatus::Approved),
            toy_member(&world.toy.identity()),
        ],
    );
    let signed = SignedRoster::sign(&genesis, &stranger).unwrap();
    let bytes = signed.encode();
    let actions = world.receive(Frame::Paired {
        household_id: other_household_id(),
        signed_roster: &bytes,
    });
    let number = Prompt::SafetyNumber(world.toy.identity().safety_number());
    assert_eq!(
        spoken(&actions),
        vec![Prompt::Paired, number],
        "{actions:?}"
    );
    assert_eq!(world.toy.household_id(), Some(other_household_id()));

    // The old household's owner can no longer sign it out of the new one.
    let old = leave_frame(household_id(), &world.family.mum, world.toy.device_id());
    let actions = world.event(Event::FrameReceived(&old));
    assert_eq!(refusals(&actions), vec![LeaveRefusal::WrongHousehold]);
    assert_eq!(world.toy.household_id(), Some(other_household_id()));
}

/// Asserts that `frame` is refused for `reason` and changes nothing.
fn refused(world: &mut World, frame: &[u8], reason: LeaveRefusal) {
    let household = world.toy.household_id();
    let (version, queued) = (world.toy.roster_version(), world.toy.queued_messages());
    let actions = world.event(Event::FrameReceived(frame));
    assert_eq!(refusals(&actions), vec![reason], "{actions:?}");
    assert!(spoken(&actions).is_empty(), "{actions:?}");
    assert!(persisted(&actions).is_none(), "nothing is saved");
    assert!(sent(&actions).is_empty());
    assert!(!actions.iter().any(|a| matches!(a, Action::Reconnect(_))));
    assert_eq!(world.toy.household_id(), household);
    assert_eq!(world.toy.roster_version(), version);
    assert_eq!(world.toy.queued_messages(), queued);
}

#[test]
fn only_a_pinned_owner_of_this_household_can_sign_this_toy_out() {
    let mut world = toy_with_a_message();
    let toy = world.toy.device_id();
    let f = Family::new();

    // A guardian, a relative, a blocked relative and a stranger are not owners.
    for who in [&f.dad, &f.grandma, &f.uncle, &f.stranger] {
        let frame = leave_frame(household_id(), who, toy);
        refused(&mut world, &frame, LeaveRefusal::NotOwner);
    }
    // Mum's signature for another household, or for another toy.
    let frame = leave_frame(other_household_id(), &f.mum, toy);
    refused(&mut world, &frame, LeaveRefusal::WrongHousehold);
    let other_toy = DeviceId([0x77; 16]);
    let frame = encode(Frame::Leave {
        household_id: household_id(),
        signer: f.mum.device_id(),
        signature: sign_leave(&f.mum, household_id(), other_toy),
    });
    refused(&mut world, &frame, LeaveRefusal::BadSignature);
    // Mum's id with someone else's signature, or with bytes that are no signature.
    let frame = encode(Frame::Leave {
        household_id: household_id(),
        signer: f.mum.device_id(),
        signature: sign_leave(&f.stranger, household_id(), toy),
    });
    refused(&mut world, &frame, LeaveRefusal::BadSignature);
    let frame = encode(Frame::Leave {
        household_id: household_id(),
        signer: f.mum.device_id(),
        signature: [0x42; 64],
    });
    refused(&mut world, &frame, LeaveRefusal::BadSignature);
    // The toy stays with its family and still plays its message.
    assert!(!played(&world.press()).is_empty());
}

#[test]
fn an_owner_the_toy_never_pinned_cannot_sign_it_out() {
    // Mum pairs the toy; aunt is nobody in its roster yet.
    let mut world = World::paired();
    let aunt = keys(5);
    let frame = leave_frame(household_id(), &aunt, world.toy.device_id());
    let household = world.toy.household_id();
    let actions = world.event(Event::FrameReceived(&frame));
    assert_eq!(refusals(&actions).len(), 1, "{actions:?}");
    assert!(spoken(&actions).is_empty(), "{actions:?}");
    assert_eq!(world.toy.household_id(), household);

    // Once a pinned owner's roster vouches for her, she can.
    let next = world.next_roster(&world.family.mum, |r| {
        r.members
            .push(member(&aunt, 5, Role::Owner, MemberStatus::Approved))
    });
    world.update_roster(next);
    let actions = world.event(Event::FrameReceived(&frame));
    assert_eq!(spoken(&actions), vec![Prompt::LeftFamily], "{actions:?}");
}

#[test]
fn an_owner_removed_from_the_roster_can_no_longer_sign_the_toy_out() {
    let mut world = World::paired();
    let aunt = keys(5);
    let with_aunt = world.next_roster(&world.family.mum, |r| {
        r.members
            .push(member(&aunt, 5, Role::Owner, MemberStatus::Approved))
    });
    world.update_roster(with_aunt);
    let aunt_id = aunt.device_id();
    let without = world.next_roster(&world.family.mum, |r| {
        r.members.retain(|m| m.device_id != aunt_id)
    });
    world.update_roster(without);
    let frame = leave_frame(household_id(), &aunt, world.toy.device_id());
    refused(&mut world, &frame, LeaveRefusal::NotOwner);
}

#[test]
fn an_unpaired_toy_ignores_a_leave_frame() {
    let mut world = World::new_toy();
    world.connect();
    let frame = leave_frame(household_id(), &world.family.mum, world.toy.device_id());
    refused(&mut world, &frame, LeaveRefusal::NotPaired);
}

#[test]
fn an_offline_toy_that_leaves_asks_for_no_connection() {
    let mut world = World::paired();
    world.event(Event::Disconnected);
    let frame = leave_frame(household_id(), &world.family.mum, world.toy.device_id());
    let actions = world.event(Event::FrameReceived(&frame));
    assert_eq!(spoken(&actions), vec![Prompt::LeftFamily]);
    assert!(!actions.iter().any(|a| matches!(a, Action::Reconnect(_))));
}
