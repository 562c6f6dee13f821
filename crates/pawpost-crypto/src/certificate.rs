//! Device certificates: an existing device of an account signs a new device's public
//! identity, so that owners can tell a device its account really added from one the server
//! lists on its own; and the link code a new device shows so that the right one is signed.

use alloc::vec::Vec;
use core::fmt;

use sha2::{Digest, Sha256};

use crate::codec::Writer;
use crate::identity::{verify_signature, AccountId, DeviceId, DeviceKeys, PublicIdentity};

/// Length of a certificate's Ed25519 signature.
pub const CERTIFICATE_SIGNATURE_LEN: usize = 64;
/// Digits in a link code, shown in groups of 4.
pub const LINK_CODE_DIGITS: usize = 16;

const CERTIFICATE_DOMAIN: &[u8] = b"pawpost/v1/device-certificate";
const LINK_DOMAIN: &[u8] = b"pawpost/v1/device-link";
const LINK_MODULUS: u64 = 10_000_000_000_000_000;
const LINK_GROUP: u64 = 10_000;

/// What a certificate signs: `"pawpost/v1/device-certificate" || account id (16) ||
/// certifier device id (16) || certified device's encoded public identity (81)`.
pub fn certificate_input(
    account_id: AccountId,
    certifier: DeviceId,
    certified: &PublicIdentity,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(CERTIFICATE_DOMAIN.len() + 16 + 16 + 81);
    out.put(CERTIFICATE_DOMAIN);
    out.put(&account_id.0);
    out.put(&certifier.0);
    out.put(&certified.encode());
    out
}

/// Certifies `certified`, a device of the same account, with `certifier`'s key.
pub fn sign_certificate(
    certifier: &DeviceKeys,
    account_id: AccountId,
    certified: &PublicIdentity,
) -> [u8; CERTIFICATE_SIGNATURE_LEN] {
    certifier.sign(&certificate_input(
        account_id,
        certifier.device_id(),
        certified,
    ))
}

/// Checks a certificate strictly, as every signature in this format.
pub fn verify_certificate(
    certifier: &PublicIdentity,
    account_id: AccountId,
    certified: &PublicIdentity,
    signature: &[u8; CERTIFICATE_SIGNATURE_LEN],
) -> bool {
    verify_signature(
        &certifier.ed25519_pub,
        &certificate_input(account_id, certifier.device_id, certified),
        signature,
    )
}

/// The code a new device shows so that an existing device of its account can find and
/// certify it: 16 decimal digits in 4 groups of 4.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct LinkCode(pub u64);

impl LinkCode {
    /// `d = SHA-256("pawpost/v1/device-link" || encoded public identity)`; the big-endian
    /// integer of `d[0..8]` modulo 10^16.
    pub fn of(identity: &PublicIdentity) -> Self {
        let d = Sha256::new()
            .chain_update(LINK_DOMAIN)
            .chain_update(identity.encode())
            .finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&d[..8]);
        Self(u64::from_be_bytes(first) % LINK_MODULUS)
    }
}

impl fmt::Display for LinkCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0 % LINK_MODULUS;
        let groups = [
            v / (LINK_GROUP * LINK_GROUP * LINK_GROUP),
            v / (LINK_GROUP * LINK_GROUP) % LINK_GROUP,
            v / LINK_GROUP % LINK_GROUP,
            v % LINK_GROUP,
        ];
        write!(
            f,
            "{:04} {:04} {:04} {:04}",
            groups[0], groups[1], groups[2], groups[3]
        )
    }
}
