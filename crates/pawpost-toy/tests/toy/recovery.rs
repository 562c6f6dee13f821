//! The household's recovery key: mum lost every owner device, signs the next roster with
//! the code she wrote down, and her new phone then signs alone. The key itself never sends
//! and never approves, and once a roster removes it, it signs nothing.

use pawpost_crypto::{
    AccountId, DeviceKeys, MemberStatus, RecoveryCode, RecoveryKey, Role, Roster, SignedRoster,
};
use pawpost_toy::signing::sign_approval;
use pawpost_toy::{Action, ApprovalRefusal, Frame, RejectReason, Report, RosterRefusal};

use crate::support::*;

fn code() -> RecoveryCode {
    RecoveryCode::generate(&mut rng(90))
}

/// The same key as the code's recovery key, as device keys: what someone holding the code
/// could sign messages and approvals with.
fn as_device(code: &RecoveryCode) -> DeviceKeys {
    let key = RecoveryKey::from_code(code);
    DeviceKeys::from_secrets(key.device_id(), &[1; 32], &code.seed())
}

/// A toy paired into mum's household, whose first roster lists her recovery key.
fn paired_with_recovery(key: &RecoveryKey) -> World {
    let mut world = World::new_toy();
    let mut genesis = world.genesis(settings());
    genesis.members.push(key.member(mums_account(&world)));
    world.pair_into(genesis);
    world.connect();
    world
}

/// The account of mum, who made the recovery key.
fn mums_account(world: &World) -> AccountId {
    member(&world.family.mum, 1, Role::Owner, MemberStatus::Approved).account_id
}

fn next(world: &World, edit: impl FnOnce(&mut Roster)) -> Roster {
    let mut next = world
        .roster
        .as_ref()
        .unwrap()
        .unverified_roster()
        .next_version();
    edit(&mut next);
    next
}

fn roster_refusal(actions: &[Action]) -> Option<RosterRefusal> {
    reports(actions).iter().find_map(|r| match r {
        Report::RosterRefused { reason, .. } => Some(*reason),
        _ => None,
    })
}

#[test]
fn the_recovery_key_adds_mums_new_phone_and_the_phone_then_signs_alone() {
    let key = RecoveryKey::from_code(&code());
    let mut world = paired_with_recovery(&key);
    let phone = keys(30);
    let add_phone = |world: &World| {
        let roster = next(world, |r| {
            r.members
                .push(member(&phone, 1, Role::Owner, MemberStatus::Approved));
        });
        SignedRoster::sign_with_recovery(&roster, &key).unwrap()
    };
    // The owner who signed the pairing roster vouched for the recovery key it lists, so the
    // toy follows the key at once.
    assert_eq!(
        roster_refusal(&world.update_roster(add_phone(&world))),
        None
    );
    assert_eq!(world.toy.roster_version(), 2);
    let by_phone = world.next_roster(&phone, |r| r.settings.retention_days = 7);
    assert_eq!(roster_refusal(&world.update_roster(by_phone)), None);
    assert_eq!(world.toy.roster_version(), 3);
}

#[test]
fn the_recovery_key_never_sends_nor_approves() {
    let code = code();
    let key = RecoveryKey::from_code(&code);
    let mut world = World::new_toy();
    let mut genesis = world.genesis(pawpost_crypto::HouseholdSettings {
        parent_approves_before_play: true,
        ..settings()
    });
    genesis.members.push(key.member(mums_account(&world)));
    world.pair_into(genesis);
    world.connect();
    let holder = as_device(&code);

    let envelope = seal_voice(
        &holder,
        household_id(),
        message_id(1),
        &[world.toy_in_roster()],
        &voice(1000),
    );
    let actions = world.deliver(&envelope);
    assert!(
        reports(&actions).contains(&Report::MessageDropped {
            message_id: Some(message_id(1)),
            reason: RejectReason::UnknownSender,
        }),
        "{actions:?}"
    );
    assert_eq!(world.toy.queued_messages(), 0);

    let id = message_id(2);
    let envelope = world.message_from(&world.family.grandma, id);
    world.deliver(&envelope);
    assert_eq!(world.toy.queued_messages(), 1);
    let actions = world.receive(Frame::Approval {
        message_id: id,
        approver: key.device_id(),
        signature: sign_approval(&holder, household_id(), id),
    });
    assert!(
        reports(&actions).contains(&Report::ApprovalRefused {
            message_id: id,
            reason: ApprovalRefusal::NotApprover,
        }),
        "{actions:?}"
    );
}

#[test]
fn a_recovery_key_a_later_roster_removed_signs_nothing() {
    let key = RecoveryKey::from_code(&code());
    let mut world = paired_with_recovery(&key);
    let removed = world.next_roster(&world.family.mum, |r| {
        r.members.retain(|m| m.device_id != key.device_id());
    });
    assert_eq!(roster_refusal(&world.update_roster(removed)), None);

    let grab = next(&world, |r| r.settings.retention_days = 365);
    let signed = SignedRoster::sign_with_recovery(&grab, &key).unwrap();
    assert_eq!(
        roster_refusal(&world.update_roster(signed)),
        Some(RosterRefusal::SignerNotOwner)
    );
    assert_eq!(world.toy.roster_version(), 2);
}

#[test]
fn every_owner_the_pairing_roster_lists_may_sign_the_next_one() {
    let mut world = World::new_toy();
    let dad = keys(31);
    let mut genesis = world.genesis(settings());
    genesis
        .members
        .push(member(&dad, 2, Role::Owner, MemberStatus::Approved));
    world.pair_into(genesis);
    world.connect();
    // Mum's device signed the pairing roster; dad's device, listed there as an owner, signs
    // the next one without waiting for mum's.
    let by_dad = world.next_roster(&dad, |r| r.settings.retention_days = 9);
    assert_eq!(roster_refusal(&world.update_roster(by_dad)), None);
    assert_eq!(world.toy.roster_version(), 2);
}
