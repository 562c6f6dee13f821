//! People who should not reach the child try anyway: none of their messages ever plays,
//! and each one is reported to the device log and to the server.

use pawpost_crypto::{MediaType, MemberStatus};
use pawpost_toy::{Action, Frame, RejectReason, Report, RosterRefusal};

use crate::support::*;

/// Delivers `envelope` and checks it was dropped for `reason`, reported and refused to the
/// server, and that a press afterwards plays nothing.
fn assert_dropped(world: &mut World, envelope: &[u8], reason: RejectReason) {
    let queued = world.toy.queued_messages();
    let actions = world.deliver(envelope);
    let dropped: Vec<(Option<pawpost_crypto::MessageId>, RejectReason)> = reports(&actions)
        .iter()
        .filter_map(|r| match r {
            Report::MessageDropped { message_id, reason } => Some((*message_id, *reason)),
            _ => None,
        })
        .collect();
    assert_eq!(dropped.len(), 1, "{actions:?}");
    assert_eq!(dropped[0].1, reason);
    let frames = sent(&actions);
    assert_eq!(frames.len(), 1);
    assert_eq!(
        Frame::decode(&frames[0]).unwrap(),
        Frame::Rejected {
            message_id: dropped[0].0.unwrap_or_default(),
            reason
        }
    );
    assert!(!actions
        .iter()
        .any(|a| matches!(a, Action::PlayAudio { .. })));
    assert_eq!(world.toy.queued_messages(), queued);
    if queued == 0 {
        assert!(played(&world.press()).is_empty());
    }
}

#[test]
fn a_blocked_relatives_message_never_reaches_the_child() {
    let mut world = World::paired();
    let envelope = world.message_from(&world.family.uncle, message_id(1));
    assert_dropped(&mut world, &envelope, RejectReason::SenderBlocked);
}

#[test]
fn a_member_of_another_household_cannot_send_to_the_toy() {
    let mut world = World::paired();
    let toy = world.toy_in_roster();
    let theirs = seal_voice(
        &world.family.stranger,
        other_household_id(),
        message_id(1),
        &[toy],
        &voice(1000),
    );
    assert_dropped(&mut world, &theirs, RejectReason::WrongHousehold);
    // Claiming to be of this household does not help: they are not in its roster.
    let claimed = seal_voice(
        &world.family.stranger,
        household_id(),
        message_id(2),
        &[toy],
        &voice(1000),
    );
    assert_dropped(&mut world, &claimed, RejectReason::UnknownSender);
}

#[test]
fn a_forged_signature_is_refused() {
    let mut world = World::paired();
    let toy = world.toy_in_roster();
    // The stranger makes keys under grandma's device id and signs as her.
    let impostor =
        pawpost_crypto::DeviceKeys::generate(&mut rng(99), world.family.grandma.device_id());
    let forged = seal_voice(
        &impostor,
        household_id(),
        message_id(1),
        &[toy],
        &voice(1000),
    );
    assert_dropped(&mut world, &forged, RejectReason::BadSignature);

    // A real message whose header was altered after signing (its timestamp).
    let mut altered = world.message_from(&world.family.grandma, message_id(2));
    altered[50] ^= 1;
    assert_dropped(&mut world, &altered, RejectReason::BadSignature);
    // ...or whose signature was.
    let mut bad_sig = world.message_from(&world.family.grandma, message_id(3));
    let sig_at = 72 + 32 * 2 + 32;
    bad_sig[sig_at] ^= 1;
    assert_dropped(&mut world, &bad_sig, RejectReason::BadSignature);
}

#[test]
fn a_replayed_message_plays_only_once() {
    let mut world = World::paired();
    let envelope = world.message_from(&world.family.grandma, message_id(1));
    world.deliver(&envelope);
    assert_eq!(played(&world.press()).len(), 1);
    assert_dropped(&mut world, &envelope, RejectReason::Replayed);
    // Even re-sealed with fresh randomness under the same id.
    let again = seal_voice(
        &world.family.grandma,
        household_id(),
        message_id(1),
        &[world.toy_in_roster()],
        &voice(2000),
    );
    assert_dropped(&mut world, &again, RejectReason::Replayed);
}

#[test]
fn corrupt_audio_is_never_played_and_its_id_is_used_up() {
    let mut world = World::paired();
    let toy = world.toy_in_roster();
    let mut ogg = voice(1000);
    let last = ogg.len() - 1;
    ogg[last] ^= 0xff;
    let corrupt = seal_voice(
        &world.family.grandma,
        household_id(),
        message_id(1),
        &[toy],
        &ogg,
    );
    assert_dropped(&mut world, &corrupt, RejectReason::BadMedia);
    assert_dropped(&mut world, &corrupt, RejectReason::Replayed);

    let not_ogg = seal_voice(
        &world.family.grandma,
        household_id(),
        message_id(2),
        &[toy],
        b"<script>hello</script>",
    );
    assert_dropped(&mut world, &not_ogg, RejectReason::BadMedia);
    let too_long = seal_voice(
        &world.family.grandma,
        household_id(),
        message_id(3),
        &[toy],
        &voice(40_000),
    );
    assert_dropped(&mut world, &too_long, RejectReason::BadMedia);
    let picture = seal_with(
        &world.family.grandma,
        household_id(),
        message_id(4),
        &[toy],
        &voice(1000),
        MediaType::Image,
    );
    assert_dropped(&mut world, &picture, RejectReason::WrongMediaType);
}

#[test]
fn messages_for_someone_else_or_broken_envelopes_are_refused() {
    let mut world = World::paired();
    let for_mum = seal_voice(
        &world.family.grandma,
        household_id(),
        message_id(1),
        &[world.family.mum.public()],
        &voice(1000),
    );
    assert_dropped(&mut world, &for_mum, RejectReason::NotARecipient);
    let mut truncated = world.message_from(&world.family.grandma, message_id(2));
    truncated.pop();
    assert_dropped(&mut world, &truncated, RejectReason::Malformed);
    assert_dropped(&mut world, b"not an envelope", RejectReason::Malformed);
    // Chunks swapped for other bytes: the signed digest no longer matches.
    let mut damaged = world.message_from(&world.family.grandma, message_id(3));
    let end = damaged.len() - 1;
    damaged[end] ^= 1;
    assert_dropped(&mut world, &damaged, RejectReason::Undecryptable);
}

fn roster_refusal(actions: &[Action]) -> Option<RosterRefusal> {
    reports(actions).iter().find_map(|r| match r {
        Report::RosterRefused { reason, .. } => Some(*reason),
        _ => None,
    })
}

#[test]
fn a_roster_signed_by_anyone_but_a_pinned_owner_changes_nothing() {
    let mut world = World::paired();
    let approve_uncle = |r: &mut pawpost_crypto::Roster| {
        for m in &mut r.members {
            m.status = MemberStatus::Approved;
        }
    };
    let rosters: Vec<_> = [
        &world.family.dad,
        &world.family.grandma,
        &world.family.stranger,
    ]
    .into_iter()
    .map(|signer| world.next_roster(signer, approve_uncle))
    .collect();
    for roster in rosters {
        let bytes = roster.encode();
        let actions = world.receive(Frame::RosterUpdate {
            signed_roster: &bytes,
        });
        assert_eq!(
            roster_refusal(&actions),
            Some(RosterRefusal::SignerNotOwner)
        );
        assert_eq!(
            Frame::decode(&sent(&actions)[0]).unwrap(),
            Frame::RosterRejected {
                version: 2,
                reason: RosterRefusal::SignerNotOwner
            }
        );
    }
    assert_eq!(world.toy.roster_version(), 1);
    let envelope = world.message_from(&world.family.uncle, message_id(1));
    assert_dropped(&mut world, &envelope, RejectReason::SenderBlocked);
}

fn make_owner(r: &mut pawpost_crypto::Roster, who: pawpost_crypto::DeviceId) {
    for m in &mut r.members {
        if m.device_id == who {
            m.role = pawpost_crypto::Role::Owner;
        }
    }
}

#[test]
fn only_the_owner_who_paired_the_toy_or_owners_it_vouched_for_sign_rosters() {
    // Dad is family at pairing: mum's pairing roster vouches for mum alone.
    let mut world = World::paired();
    let by_dad = world.next_roster(&world.family.dad, |r| r.settings.retention_days = 7);
    assert_eq!(
        roster_refusal(&world.update_roster(by_dad)),
        Some(RosterRefusal::SignerNotOwner)
    );

    // Once mum signs a roster listing dad as an owner, she has vouched for him.
    let dad = world.family.dad.device_id();
    let by_mum = world.next_roster(&world.family.mum, |r| make_owner(r, dad));
    assert_eq!(roster_refusal(&world.update_roster(by_mum)), None);
    let by_dad = world.next_roster(&world.family.dad, |r| r.settings.retention_days = 7);
    assert_eq!(roster_refusal(&world.update_roster(by_dad)), None);
    assert_eq!(world.toy.roster_version(), 3);

    // An owner listed in the roster the toy pairs with is vouched for by its signer.
    let mut world = World::new_toy();
    let mut genesis = world.genesis(settings());
    make_owner(&mut genesis, dad);
    world.pair_into(genesis);
    world.connect();
    let by_dad = world.next_roster(&world.family.dad, |r| r.settings.retention_days = 7);
    assert_eq!(roster_refusal(&world.update_roster(by_dad)), None);
}

#[test]
fn a_removed_owner_cannot_sign_again() {
    let mut world = World::paired();
    let dad = world.family.dad.device_id();
    let promote = world.next_roster(&world.family.mum, |r| make_owner(r, dad));
    assert_eq!(roster_refusal(&world.update_roster(promote)), None);
    let mum = world.family.mum.device_id();
    let remove_mum = world.next_roster(&world.family.dad, |r| {
        r.members.retain(|m| m.device_id != mum);
    });
    assert_eq!(roster_refusal(&world.update_roster(remove_mum)), None);
    let by_mum = world.next_roster(&world.family.mum, |r| r.settings.retention_days = 7);
    assert_eq!(
        roster_refusal(&world.update_roster(by_mum)),
        Some(RosterRefusal::SignerNotOwner)
    );
}

#[test]
fn a_stale_or_replayed_roster_cannot_unblock_anyone() {
    let mut world = World::paired();
    let genesis = world.roster.clone().unwrap();
    let grandma = world.family.grandma.device_id();
    let block_grandma = world.next_roster(&world.family.mum, |r| {
        for m in &mut r.members {
            if m.device_id == grandma {
                m.status = MemberStatus::Blocked;
            }
        }
    });
    assert_eq!(
        roster_refusal(&world.update_roster(block_grandma.clone())),
        None
    );

    for stale in [genesis, block_grandma] {
        let bytes = stale.encode();
        let actions = world.receive(Frame::RosterUpdate {
            signed_roster: &bytes,
        });
        assert_eq!(roster_refusal(&actions), Some(RosterRefusal::StaleVersion));
    }
    let envelope = world.message_from(&world.family.grandma, message_id(1));
    assert_dropped(&mut world, &envelope, RejectReason::SenderBlocked);

    // A version 3 that does not chain to the version 2 the toy holds.
    let mut fork = world
        .roster
        .as_ref()
        .unwrap()
        .unverified_roster()
        .next_version();
    fork.previous_digest = [9; 32];
    let fork = pawpost_crypto::SignedRoster::sign(&fork, &world.family.mum).unwrap();
    assert_eq!(
        roster_refusal(&world.update_roster(fork)),
        Some(RosterRefusal::PreviousDigestMismatch)
    );
}

#[test]
fn blocking_a_relative_drops_their_waiting_messages_at_once() {
    let mut world = World::paired();
    let envelope = world.message_from(&world.family.grandma, message_id(1));
    world.deliver(&envelope);
    let grandma = world.family.grandma.device_id();
    let block = world.next_roster(&world.family.mum, |r| {
        r.members.retain(|m| m.device_id != grandma);
    });
    let actions = world.update_roster(block);
    assert_eq!(
        reports(&actions),
        vec![Report::MessageDropped {
            message_id: Some(message_id(1)),
            reason: RejectReason::UnknownSender
        }]
    );
    // The server hears of it, so that grandma's list says it was never played; only after
    // the shorter queue is saved, so that a refused message never comes back.
    let refused = encode(Frame::Rejected {
        message_id: message_id(1),
        reason: RejectReason::UnknownSender,
    });
    let saved_at = actions
        .iter()
        .position(|a| matches!(a, Action::Persist(_)))
        .expect("the new queue is saved");
    let told_at = actions
        .iter()
        .position(|a| matches!(a, Action::SendFrame(f) if *f == refused))
        .expect("the server is told");
    assert!(saved_at < told_at, "{actions:?}");
    assert_eq!(world.toy.queued_messages(), 0);
    assert!(played(&world.press()).is_empty());
}

#[test]
fn blocking_a_relative_refuses_each_of_their_waiting_messages_to_the_server() {
    let mut world = World::paired();
    for n in 1..=2 {
        let envelope = world.message_from(&world.family.grandma, message_id(n));
        world.deliver(&envelope);
    }
    let from_mum = world.message_from(&world.family.mum, message_id(3));
    world.deliver(&from_mum);
    let grandma = world.family.grandma.device_id();
    let block = world.next_roster(&world.family.mum, |r| {
        for m in &mut r.members {
            if m.device_id == grandma {
                m.status = MemberStatus::Blocked;
            }
        }
    });
    let actions = world.update_roster(block);
    let refusals: Vec<Vec<u8>> = [1, 2]
        .map(|n| {
            encode(Frame::Rejected {
                message_id: message_id(n),
                reason: RejectReason::SenderBlocked,
            })
        })
        .to_vec();
    assert_eq!(sent(&actions), refusals);
    assert_eq!(world.toy.queued_messages(), 1, "mum's message still waits");
}
