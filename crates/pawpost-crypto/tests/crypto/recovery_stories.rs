//! Stories about the recovery key and device certificates: a lost phone, a stolen code
//! that was revoked, and a server that lists a device the account never added.

use pawpost_crypto::{
    open, seal, sign_certificate, verify_certificate, AccountId, DecodeError, EnvelopePrefix,
    LinkCode, Member, MemberStatus, OpenError, RecoveryCode, RecoveryKey, Role, Roster,
    RosterError, SealError, SignedRoster,
};

use crate::envelope_stories::voice;
use crate::fixtures::{account_id, household_id, rng, Household};

fn recovery() -> RecoveryKey {
    RecoveryKey::from_code(&RecoveryCode::generate(&mut rng(40)))
}

/// Version 1: mum (owner), the toy and mum's recovery key.
fn genesis_with_recovery(h: &Household, key: &RecoveryKey) -> SignedRoster {
    let mut roster = h.genesis();
    roster.members.push(key.member(account_id(1)));
    SignedRoster::sign(&roster, &h.mum).unwrap()
}

/// The next version, with `new_owner` (dad's device standing in for mum's new phone) as an
/// owner.
fn adding_owner(h: &Household, prev: &Roster) -> Roster {
    let mut next = prev.next_version();
    next.members.retain(|m| m.device_id != h.dad.device_id());
    next.members.push(Member::new(
        &h.dad.public(),
        account_id(1),
        Role::Owner,
        MemberStatus::Approved,
    ));
    next
}

#[test]
fn a_code_reads_back_however_it_is_typed() {
    let code = RecoveryCode::generate(&mut rng(41));
    let shown = code.to_string();
    assert_eq!(shown.len(), 39);
    assert_eq!(shown.matches('-').count(), 7);
    assert_eq!(RecoveryCode::parse(&shown), Ok(code.clone()));
    let typed = shown.to_lowercase().replace('-', " ");
    assert_eq!(RecoveryCode::parse(&typed), Ok(code.clone()));
    let squeezed = shown.replace('-', "").replace('0', "o").replace('1', "l");
    assert_eq!(RecoveryCode::parse(&squeezed), Ok(code));
    for bad in [
        "",
        "U",
        &shown[..38],
        &format!("{shown}0"),
        &shown.replace('-', "*"),
    ] {
        assert!(RecoveryCode::parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        RecoveryCode::parse("nope").unwrap_err().code(),
        "invalid_recovery_code"
    );
}

#[test]
fn the_recovery_key_adds_mums_new_phone_which_then_signs_alone() {
    let h = Household::new();
    let key = recovery();
    let v1 = genesis_with_recovery(&h, &key);
    v1.verify_genesis().unwrap();
    let v2 =
        SignedRoster::sign_with_recovery(&adding_owner(&h, v1.unverified_roster()), &key).unwrap();
    let v2 = SignedRoster::decode(&v2.encode()).unwrap();
    v2.verify_successor(&v1).expect("recovery-signed successor");
    let v3 = SignedRoster::sign(&v2.unverified_roster().next_version(), &h.dad).unwrap();
    v3.verify_successor(&v2).expect("the new owner phone signs");
}

#[test]
fn the_recovery_key_cannot_start_a_household() {
    let h = Household::new();
    let key = recovery();
    let mut roster = h.genesis();
    roster.members.push(key.member(account_id(1)));
    let v1 = SignedRoster::sign_with_recovery(&roster, &key).unwrap();
    assert_eq!(v1.verify_genesis(), Err(RosterError::SignerNotOwner));
}

#[test]
fn a_removed_recovery_key_can_no_longer_sign() {
    let h = Household::new();
    let old = recovery();
    let v1 = genesis_with_recovery(&h, &old);
    let mut next = v1.unverified_roster().next_version();
    next.members.retain(|m| m.device_id != old.device_id());
    let v2 = SignedRoster::sign(&next, &h.mum).unwrap();
    v2.verify_successor(&v1).unwrap();
    let grab =
        SignedRoster::sign_with_recovery(&adding_owner(&h, v2.unverified_roster()), &old).unwrap();
    assert_eq!(grab.verify_successor(&v2), Err(RosterError::SignerNotOwner));

    // Blocked is as good as removed.
    let mut blocked = v1.unverified_roster().next_version();
    for m in &mut blocked.members {
        if m.device_id == old.device_id() {
            m.status = MemberStatus::Blocked;
        }
    }
    let v2 = SignedRoster::sign(&blocked, &h.mum).unwrap();
    let grab =
        SignedRoster::sign_with_recovery(&adding_owner(&h, v2.unverified_roster()), &old).unwrap();
    assert_eq!(grab.verify_successor(&v2), Err(RosterError::SignerNotOwner));
}

#[test]
fn the_recovery_key_never_sends_and_nothing_is_sealed_to_it() {
    let h = Household::new();
    let key = recovery();
    let v1 = genesis_with_recovery(&h, &key);
    let roster = v1.verify_genesis().unwrap();
    let member = *roster.member(key.device_id()).unwrap();
    assert_eq!(member.x25519_pub, [0; 32]);
    assert!(!roster.is_approved_sender(key.device_id()));
    assert!(member.may_sign_rosters() && !member.is_approved_owner() && !member.may_send());

    // Sealing to its all-zero X25519 key fails: a low-order point.
    let recipients = [h.toy.public(), member.public_identity()];
    let params = pawpost_crypto::MessageParams {
        message_id: pawpost_crypto::MessageId([0x51; 16]),
        household_id: household_id(),
        created_at_ms: 1_767_225_600_000,
        media_type: pawpost_crypto::MediaType::OggOpus,
        duration_ms: 1_000,
        recipients: &recipients,
    };
    assert_eq!(
        seal(&mut rng(42), &h.mum, &params, &voice(100)).unwrap_err(),
        SealError::InvalidRecipientKey
    );

    // An envelope claiming to come from the recovery key is refused before anything else.
    let params = pawpost_crypto::MessageParams {
        recipients: &recipients[..1],
        ..params
    };
    let sealed = seal(&mut rng(43), &h.mum, &params, &voice(100)).unwrap();
    // The sender id sits after the version, media type, message id and household id.
    let mut forged = sealed.clone();
    forged[34..50].copy_from_slice(key.device_id().as_bytes());
    let (prefix, _) = EnvelopePrefix::parse(&forged).unwrap();
    assert_eq!(
        prefix.verify_sender_in_roster(roster),
        Err(OpenError::SenderNotApproved)
    );
    assert!(open(&sealed, &h.toy, &h.mum.public()).is_ok());
}

#[test]
fn a_recovery_member_with_an_encryption_key_does_not_decode() {
    let h = Household::new();
    let key = recovery();
    let v1 = genesis_with_recovery(&h, &key);
    let mut bytes = v1.encode();
    let at = v1
        .unverified_roster()
        .members
        .iter()
        .position(|m| m.device_id == key.device_id())
        .unwrap();
    bytes[69 + at * pawpost_crypto::MEMBER_LEN + 34] = 9;
    assert_eq!(SignedRoster::decode(&bytes), Err(DecodeError::InvalidKey));

    // Whatever key the caller put there, encoding writes zeros.
    let mut roster = v1.unverified_roster().clone();
    for m in &mut roster.members {
        if m.role == Role::Recovery {
            m.x25519_pub = h.mum.public().x25519_pub;
        }
    }
    assert_eq!(roster.encode(), v1.unverified_roster().encode());
}

#[test]
fn a_certificate_vouches_for_one_device_of_one_account() {
    let h = Household::new();
    let account = account_id(1);
    let new_phone = h.dad.public();
    let sig = sign_certificate(&h.mum, account, &new_phone);
    assert!(verify_certificate(
        &h.mum.public(),
        account,
        &new_phone,
        &sig
    ));
    assert!(!verify_certificate(
        &h.mum.public(),
        AccountId([9; 16]),
        &new_phone,
        &sig
    ));
    assert!(!verify_certificate(
        &h.mum.public(),
        account,
        &h.uncle.public(),
        &sig
    ));
    assert!(!verify_certificate(
        &h.grandma.public(),
        account,
        &new_phone,
        &sig
    ));
    let mut flipped = sig;
    flipped[10] ^= 1;
    assert!(!verify_certificate(
        &h.mum.public(),
        account,
        &new_phone,
        &flipped
    ));
}

#[test]
fn a_link_code_is_sixteen_digits_in_four_groups() {
    let h = Household::new();
    let shown = LinkCode::of(&h.dad.public()).to_string();
    assert_eq!(shown.len(), 19);
    assert!(shown
        .split(' ')
        .all(|g| g.len() == 4 && g.bytes().all(|b| b.is_ascii_digit())));
    assert_ne!(shown, LinkCode::of(&h.mum.public()).to_string());
    assert_eq!(LinkCode(42).to_string(), "0000 0000 0000 0042");
}
