//! Stories about the household roster: who may change it, and what a toy or server refuses.

use pawpost_crypto::{DecodeError, MemberStatus, Role, RosterError, SignedRoster, MAX_MEMBERS};

use crate::fixtures::{other_household_id, Household};

#[test]
fn a_new_household_roster_signed_by_its_owner_is_accepted() {
    let h = Household::new();
    let v1 = SignedRoster::sign(&h.genesis(), &h.mum).unwrap();
    let decoded = SignedRoster::decode(&v1.encode()).unwrap();
    let roster = decoded.verify_genesis().unwrap();
    assert_eq!(roster, &h.genesis_sorted());
    assert!(roster.is_approved_sender(h.toy.device_id()));
    assert!(!roster.is_approved_sender(h.grandma.device_id()));
}

#[test]
fn a_first_roster_signed_by_a_guardian_is_refused() {
    let h = Household::new();
    let v1 = SignedRoster::sign(&h.genesis(), &h.dad).unwrap();
    assert_eq!(v1.verify_genesis(), Err(RosterError::SignerNotOwner));
}

#[test]
fn a_later_version_cannot_pose_as_a_first_roster() {
    let h = Household::new();
    let v1 = SignedRoster::sign(&h.genesis(), &h.mum).unwrap();
    let v2 = SignedRoster::sign(&h.with_relatives(v1.unverified_roster()), &h.mum).unwrap();
    assert_eq!(v2.verify_genesis(), Err(RosterError::NotGenesis));
}

#[test]
fn grandma_joins_when_mum_signs_the_next_roster() {
    let h = Household::new();
    let v1 = SignedRoster::sign(&h.genesis(), &h.mum).unwrap();
    let v2 = SignedRoster::sign(&h.with_relatives(v1.unverified_roster()), &h.mum).unwrap();
    let roster = v2.verify_successor(&v1).unwrap();
    let grandma = roster.member(h.grandma.device_id()).unwrap();
    assert_eq!(grandma.role, Role::Family);
    assert!(roster.is_approved_sender(h.grandma.device_id()));
}

#[test]
fn a_blocked_uncle_is_no_longer_an_approved_sender() {
    let h = Household::new();
    let v1 = SignedRoster::sign(&h.genesis(), &h.mum).unwrap();
    let v2 = SignedRoster::sign(&h.with_relatives(v1.unverified_roster()), &h.mum).unwrap();
    let v3 = SignedRoster::sign(&h.uncle_blocked(v2.unverified_roster()), &h.mum).unwrap();
    let roster = v3.verify_successor(&v2).unwrap();
    assert_eq!(
        roster.member(h.uncle.device_id()).unwrap().status,
        MemberStatus::Blocked
    );
    assert!(!roster.is_approved_sender(h.uncle.device_id()));
    assert!(roster.approved_member(h.uncle.device_id()).is_none());
    assert!(roster.settings.quiet_hours.is_none());
}

#[test]
fn an_old_roster_replayed_by_the_server_is_refused() {
    let h = Household::new();
    let v1 = SignedRoster::sign(&h.genesis(), &h.mum).unwrap();
    let v2 = SignedRoster::sign(&h.with_relatives(v1.unverified_roster()), &h.mum).unwrap();
    let v3 = SignedRoster::sign(&h.uncle_blocked(v2.unverified_roster()), &h.mum).unwrap();
    // Handing back version 2 would unblock the uncle.
    assert_eq!(v2.verify_successor(&v3), Err(RosterError::StaleVersion));
    assert_eq!(v1.verify_successor(&v2), Err(RosterError::StaleVersion));
}

#[test]
fn a_second_roster_with_the_same_version_is_refused() {
    let h = Household::new();
    let v1 = SignedRoster::sign(&h.genesis(), &h.mum).unwrap();
    let v2 = SignedRoster::sign(&h.with_relatives(v1.unverified_roster()), &h.mum).unwrap();
    let mut fork = v1.unverified_roster().next_version();
    fork.settings.retention_days = 7;
    let fork = SignedRoster::sign(&fork, &h.mum).unwrap();
    assert_eq!(fork.verify_successor(&v2), Err(RosterError::StaleVersion));
}

#[test]
fn a_relative_cannot_sign_the_roster() {
    let h = Household::new();
    let v1 = SignedRoster::sign(&h.genesis(), &h.mum).unwrap();
    let v2 = SignedRoster::sign(&h.with_relatives(v1.unverified_roster()), &h.mum).unwrap();
    let mut grab = v2.unverified_roster().next_version();
    for m in &mut grab.members {
        if m.device_id == h.grandma.device_id() {
            m.role = Role::Owner;
        }
    }
    let grab = SignedRoster::sign(&grab, &h.grandma).unwrap();
    assert_eq!(grab.verify_successor(&v2), Err(RosterError::SignerNotOwner));
}

#[test]
fn a_guardian_cannot_promote_himself_by_signing_the_roster_that_makes_him_owner() {
    let h = Household::new();
    let v1 = SignedRoster::sign(&h.genesis(), &h.mum).unwrap();
    let mut promoted = v1.unverified_roster().next_version();
    for m in &mut promoted.members {
        if m.device_id == h.dad.device_id() {
            m.role = Role::Owner;
        }
    }
    let promoted = SignedRoster::sign(&promoted, &h.dad).unwrap();
    // He is an owner in the new version, but authority comes from the previous one.
    assert_eq!(
        promoted.verify_successor(&v1),
        Err(RosterError::SignerNotOwner)
    );
}

#[test]
fn an_outsider_cannot_sign_the_roster() {
    let h = Household::new();
    let v1 = SignedRoster::sign(&h.genesis(), &h.mum).unwrap();
    let next = SignedRoster::sign(&v1.unverified_roster().next_version(), &h.outsider).unwrap();
    assert_eq!(next.verify_successor(&v1), Err(RosterError::SignerNotOwner));
}

#[test]
fn a_roster_changed_after_signing_is_refused() {
    let h = Household::new();
    let v1 = SignedRoster::sign(&h.genesis(), &h.mum).unwrap();
    let v2 = SignedRoster::sign(&h.with_relatives(v1.unverified_roster()), &h.mum).unwrap();
    let v3 = SignedRoster::sign(&h.uncle_blocked(v2.unverified_roster()), &h.mum).unwrap();
    let mut bytes = v3.encode();
    let uncle = tampered_status_offset(&v3, h.uncle.device_id());
    assert_eq!(bytes[uncle], MemberStatus::Blocked as u8);
    bytes[uncle] = MemberStatus::Approved as u8;
    let tampered = SignedRoster::decode(&bytes).unwrap();
    assert_eq!(
        tampered.verify_successor(&v2),
        Err(RosterError::BadSignature)
    );
}

/// Offset of a member's status byte in an encoded signed roster.
pub fn tampered_status_offset(signed: &SignedRoster, device: pawpost_crypto::DeviceId) -> usize {
    let index = signed
        .unverified_roster()
        .members
        .iter()
        .position(|m| m.device_id == device)
        .unwrap();
    69 + index * pawpost_crypto::MEMBER_LEN + 33
}

#[test]
fn a_roster_that_does_not_chain_to_the_current_one_is_refused() {
    let h = Household::new();
    let v1 = SignedRoster::sign(&h.genesis(), &h.mum).unwrap();
    let mut other = h.genesis();
    other.settings.retention_days = 90;
    let mut next = h.with_relatives(&other);
    next.version = 2;
    let next = SignedRoster::sign(&next, &h.mum).unwrap();
    assert_eq!(
        next.verify_successor(&v1),
        Err(RosterError::PreviousDigestMismatch)
    );
}

#[test]
fn a_roster_for_another_household_is_refused() {
    let h = Household::new();
    let v1 = SignedRoster::sign(&h.genesis(), &h.mum).unwrap();
    let mut next = v1.unverified_roster().next_version();
    next.household_id = other_household_id();
    let next = SignedRoster::sign(&next, &h.mum).unwrap();
    assert_eq!(
        next.verify_successor(&v1),
        Err(RosterError::HouseholdMismatch)
    );
}

#[test]
fn the_toy_accepts_only_rosters_signed_with_the_owner_key_it_pinned() {
    let h = Household::new();
    let v1 = SignedRoster::sign(&h.genesis(), &h.mum).unwrap();
    let pinned = h.mum.public().ed25519_pub;
    assert!(v1.verify_signed_by(&pinned).is_ok());
    let by_dad = SignedRoster::sign(&h.genesis(), &h.dad).unwrap();
    assert_eq!(
        by_dad.verify_signed_by(&pinned),
        Err(RosterError::BadSignature)
    );
}

#[test]
fn a_roster_with_a_duplicate_member_cannot_be_signed() {
    let h = Household::new();
    let mut roster = h.genesis();
    let toy = roster.members[2];
    roster.members.push(toy);
    assert_eq!(
        SignedRoster::sign(&roster, &h.mum),
        Err(DecodeError::MembersNotSorted)
    );
}

#[test]
fn settings_out_of_range_cannot_be_signed() {
    let h = Household::new();
    let mut roster = h.genesis();
    roster.settings.retention_days = 0;
    assert_eq!(
        SignedRoster::sign(&roster, &h.mum),
        Err(DecodeError::InvalidSettings)
    );
    let mut roster = h.genesis();
    roster.settings.timezone_offset_minutes = 15 * 60;
    assert_eq!(
        SignedRoster::sign(&roster, &h.mum),
        Err(DecodeError::InvalidSettings)
    );
}

#[test]
fn an_over_long_member_list_is_refused_before_it_is_read() {
    let h = Household::new();
    let mut bytes = SignedRoster::sign(&h.genesis(), &h.mum).unwrap().encode();
    // The member count sits right before the first member.
    bytes[67..69].copy_from_slice(&(u16::try_from(MAX_MEMBERS).unwrap() + 1).to_be_bytes());
    assert_eq!(
        SignedRoster::decode(&bytes),
        Err(DecodeError::TooManyMembers)
    );
}

#[test]
fn a_roster_with_a_byte_appended_is_refused() {
    let h = Household::new();
    let mut bytes = SignedRoster::sign(&h.genesis(), &h.mum).unwrap().encode();
    bytes.push(0);
    assert_eq!(
        SignedRoster::decode(&bytes),
        Err(DecodeError::TrailingBytes)
    );
    bytes.truncate(bytes.len() - 2);
    assert_eq!(SignedRoster::decode(&bytes), Err(DecodeError::Truncated));
}

impl Household {
    /// The genesis roster as decoding returns it: members in device id order.
    pub fn genesis_sorted(&self) -> pawpost_crypto::Roster {
        let mut roster = self.genesis();
        roster.members.sort_by_key(|m| m.device_id);
        roster
    }
}
