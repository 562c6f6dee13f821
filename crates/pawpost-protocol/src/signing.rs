//! The byte strings the toy and the parents sign in the toy protocol, each starting with its
//! own domain so that a signature made for one purpose never verifies for another (nor as a
//! roster or envelope signature, whose domains pawpost-crypto owns).
//!
//! The server and the parents' apps use the `verify_*` functions. The toy signs with its own
//! keys through [`sign_auth`], [`sign_pair_request`] and [`sign_rotation`]; parent tools sign
//! approvals with [`sign_approval`] and take a toy out of the household with [`sign_leave`].

use alloc::vec::Vec;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use pawpost_crypto::{DeviceId, DeviceKeys, HouseholdId, MessageId, PublicIdentity};
use zeroize::Zeroizing;

use crate::frame::{FRAME_SIGNATURE_LEN, NONCE_LEN};

const AUTH_DOMAIN: &[u8] = b"pawpost/v1/toy-auth";
const PAIR_DOMAIN: &[u8] = b"pawpost/v1/toy-pair";
const ROTATE_DOMAIN: &[u8] = b"pawpost/v1/toy-rotate";
const APPROVAL_DOMAIN: &[u8] = b"pawpost/v1/toy-approval";
const LEAVE_DOMAIN: &[u8] = b"pawpost/v1/toy-leave";

/// Where the Ed25519 seed sits in [`DeviceKeys::to_secret_bytes`] (see docs/ENVELOPE.md):
/// after the version byte, the device id and the X25519 secret.
const ED25519_SEED_OFFSET: usize = 1 + 16 + 32;

/// `"pawpost/v1/toy-auth" || nonce (32) || device_id (16) || roster_version (u64 BE)`.
pub fn auth_signature_input(
    nonce: &[u8; NONCE_LEN],
    device_id: DeviceId,
    roster_version: u64,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(AUTH_DOMAIN.len() + NONCE_LEN + 16 + 8);
    out.extend_from_slice(AUTH_DOMAIN);
    out.extend_from_slice(nonce);
    out.extend_from_slice(&device_id.0);
    out.extend_from_slice(&roster_version.to_be_bytes());
    out
}

/// `"pawpost/v1/toy-pair" || nonce (32) || encoded identity (81)`.
pub fn pair_request_signature_input(nonce: &[u8; NONCE_LEN], identity: &PublicIdentity) -> Vec<u8> {
    let mut out = Vec::with_capacity(PAIR_DOMAIN.len() + NONCE_LEN + 81);
    out.extend_from_slice(PAIR_DOMAIN);
    out.extend_from_slice(nonce);
    out.extend_from_slice(&identity.encode());
    out
}

/// `"pawpost/v1/toy-rotate" || nonce (32) || old identity (81) || new identity (81)`.
pub fn rotation_signature_input(
    nonce: &[u8; NONCE_LEN],
    old: &PublicIdentity,
    new: &PublicIdentity,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(ROTATE_DOMAIN.len() + NONCE_LEN + 2 * 81);
    out.extend_from_slice(ROTATE_DOMAIN);
    out.extend_from_slice(nonce);
    out.extend_from_slice(&old.encode());
    out.extend_from_slice(&new.encode());
    out
}

/// `"pawpost/v1/toy-approval" || household_id (16) || message_id (16) || approver (16)`.
pub fn approval_signature_input(
    household_id: HouseholdId,
    message_id: MessageId,
    approver: DeviceId,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(APPROVAL_DOMAIN.len() + 48);
    out.extend_from_slice(APPROVAL_DOMAIN);
    out.extend_from_slice(&household_id.0);
    out.extend_from_slice(&message_id.0);
    out.extend_from_slice(&approver.0);
    out
}

/// `"pawpost/v1/toy-leave" || household_id (16) || toy device_id (16) || signer (16)`.
pub fn leave_signature_input(
    household_id: HouseholdId,
    toy: DeviceId,
    signer: DeviceId,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(LEAVE_DOMAIN.len() + 48);
    out.extend_from_slice(LEAVE_DOMAIN);
    out.extend_from_slice(&household_id.0);
    out.extend_from_slice(&toy.0);
    out.extend_from_slice(&signer.0);
    out
}

/// Checks a toy's `Auth` signature: for the server.
pub fn verify_auth(
    toy: &PublicIdentity,
    nonce: &[u8; NONCE_LEN],
    roster_version: u64,
    signature: &[u8; FRAME_SIGNATURE_LEN],
) -> bool {
    verify(
        &toy.ed25519_pub,
        &auth_signature_input(nonce, toy.device_id, roster_version),
        signature,
    )
}

/// Checks a `PairRequest`'s proof that the toy holds the key it presents: for the server.
pub fn verify_pair_request(
    identity: &PublicIdentity,
    nonce: &[u8; NONCE_LEN],
    signature: &[u8; FRAME_SIGNATURE_LEN],
) -> bool {
    verify(
        &identity.ed25519_pub,
        &pair_request_signature_input(nonce, identity),
        signature,
    )
}

/// Checks a `RotateKey` signature by the key the server (or an owner's app) knows: for the
/// server, and for the app that re-signs the roster with the toy's new keys.
pub fn verify_rotation(
    old: &PublicIdentity,
    new: &PublicIdentity,
    nonce: &[u8; NONCE_LEN],
    signature: &[u8; FRAME_SIGNATURE_LEN],
) -> bool {
    old.device_id == new.device_id
        && verify(
            &old.ed25519_pub,
            &rotation_signature_input(nonce, old, new),
            signature,
        )
}

/// Checks an approval signature against the approver's Ed25519 key.
pub fn verify_approval(
    approver_ed25519_pub: &[u8; 32],
    household_id: HouseholdId,
    message_id: MessageId,
    approver: DeviceId,
    signature: &[u8; FRAME_SIGNATURE_LEN],
) -> bool {
    verify(
        approver_ed25519_pub,
        &approval_signature_input(household_id, message_id, approver),
        signature,
    )
}

/// Checks a leave signature (an owner device takes `toy` out of the household) against the
/// signer's Ed25519 key: for the server before it keeps or relays it, and for the toy.
pub fn verify_leave(
    signer_ed25519_pub: &[u8; 32],
    household_id: HouseholdId,
    toy: DeviceId,
    signer: DeviceId,
    signature: &[u8; FRAME_SIGNATURE_LEN],
) -> bool {
    verify(
        signer_ed25519_pub,
        &leave_signature_input(household_id, toy, signer),
        signature,
    )
}

/// The toy answers a connection's challenge: its `Auth` signature.
pub fn sign_auth(
    toy: &DeviceKeys,
    nonce: &[u8; NONCE_LEN],
    roster_version: u64,
) -> [u8; FRAME_SIGNATURE_LEN] {
    sign(
        toy,
        &auth_signature_input(nonce, toy.device_id(), roster_version),
    )
}

/// The toy proves that it holds the keys it presents in a `PairRequest`.
pub fn sign_pair_request(toy: &DeviceKeys, nonce: &[u8; NONCE_LEN]) -> [u8; FRAME_SIGNATURE_LEN] {
    sign(toy, &pair_request_signature_input(nonce, &toy.public()))
}

/// The toy's old key vouches for its new one in a `RotateKey`.
pub fn sign_rotation(
    old: &DeviceKeys,
    nonce: &[u8; NONCE_LEN],
    new: &PublicIdentity,
) -> [u8; FRAME_SIGNATURE_LEN] {
    sign(old, &rotation_signature_input(nonce, &old.public(), new))
}

/// A parent's device approves a held message for the household's toys.
pub fn sign_approval(
    approver: &DeviceKeys,
    household_id: HouseholdId,
    message_id: MessageId,
) -> [u8; FRAME_SIGNATURE_LEN] {
    sign(
        approver,
        &approval_signature_input(household_id, message_id, approver.device_id()),
    )
}

/// An owner's device takes the toy `toy` out of the household.
pub fn sign_leave(
    signer: &DeviceKeys,
    household_id: HouseholdId,
    toy: DeviceId,
) -> [u8; FRAME_SIGNATURE_LEN] {
    sign(
        signer,
        &leave_signature_input(household_id, toy, signer.device_id()),
    )
}

/// Signs with a device's Ed25519 key. Private: every public signer above fixes its own
/// domain.
fn sign(keys: &DeviceKeys, message: &[u8]) -> [u8; FRAME_SIGNATURE_LEN] {
    let secret = keys.to_secret_bytes();
    let mut seed = Zeroizing::new([0u8; 32]);
    seed.copy_from_slice(&secret[ED25519_SEED_OFFSET..ED25519_SEED_OFFSET + 32]);
    SigningKey::from_bytes(&seed).sign(message).to_bytes()
}

/// Strict Ed25519 verification that also refuses weak (small-order) keys, as pawpost-crypto
/// does, so that no key lets anyone forge.
fn verify(ed25519_pub: &[u8; 32], message: &[u8], signature: &[u8; FRAME_SIGNATURE_LEN]) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(ed25519_pub) else {
        return false;
    };
    !key.is_weak()
        && key
            .verify_strict(message, &Signature::from_bytes(signature))
            .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn keys(n: u8) -> DeviceKeys {
        DeviceKeys::generate(&mut ChaCha20Rng::from_seed([n; 32]), DeviceId([n; 16]))
    }

    #[test]
    fn a_leave_signature_holds_only_for_its_household_toy_and_signer() {
        let (owner, other) = (keys(1), keys(2));
        let (home, toy) = (HouseholdId([3; 16]), DeviceId([4; 16]));
        let signature = sign_leave(&owner, home, toy);
        let key = owner.public().ed25519_pub;
        assert!(verify_leave(&key, home, toy, owner.device_id(), &signature));
        assert!(!verify_leave(
            &key,
            HouseholdId([5; 16]),
            toy,
            owner.device_id(),
            &signature
        ));
        assert!(!verify_leave(
            &key,
            home,
            DeviceId([6; 16]),
            owner.device_id(),
            &signature
        ));
        assert!(!verify_leave(
            &key,
            home,
            toy,
            other.device_id(),
            &signature
        ));
        assert!(!verify_leave(
            &other.public().ed25519_pub,
            home,
            toy,
            owner.device_id(),
            &signature
        ));
        // Another purpose's signature over the same ids does not verify as a leave.
        let approval = sign_approval(&owner, home, MessageId(toy.0));
        assert!(!verify_leave(&key, home, toy, owner.device_id(), &approval));
        assert_eq!(
            leave_signature_input(home, toy, owner.device_id()).len(),
            b"pawpost/v1/toy-leave".len() + 48
        );
    }
}
