//! The household's recovery key: 20 random bytes an owner writes down as a code, from which
//! an Ed25519 key is derived. It is listed in the roster with role
//! [`Role::Recovery`](crate::Role::Recovery) and may sign a later version (to add a new owner
//! device when every owner device was lost); it never sends, reads or approves anything.

use core::fmt;

use ed25519_dalek::{Signer, SigningKey};
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::identity::{AccountId, DeviceId};
use crate::roster::{Member, MemberStatus, Role};

/// Random bytes in a recovery code.
pub const RECOVERY_CODE_LEN: usize = 20;
/// Characters in a recovery code without its separators (5 bits each).
pub const RECOVERY_CODE_CHARS: usize = 32;
/// Characters in each group of a shown recovery code.
pub const RECOVERY_CODE_GROUP: usize = 4;

/// Crockford's base32 alphabet: no I, L, O or U.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const SEED_DOMAIN: &[u8] = b"pawpost/v1/recovery-seed";
const ID_DOMAIN: &[u8] = b"pawpost/v1/recovery-id";

/// A recovery code that is not 32 Crockford base32 characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("a recovery code has 32 letters and digits")]
pub struct InvalidRecoveryCode;

impl InvalidRecoveryCode {
    /// Stable snake_case name, as in the shared test vectors.
    pub const fn code(self) -> &'static str {
        "invalid_recovery_code"
    }
}

/// The 20 secret bytes of a recovery code; zeroed when dropped.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct RecoveryCode([u8; RECOVERY_CODE_LEN]);

impl RecoveryCode {
    /// A fresh code: 20 bytes from `rng`.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut bytes = [0u8; RECOVERY_CODE_LEN];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// A code from its 20 bytes.
    pub const fn from_bytes(bytes: [u8; RECOVERY_CODE_LEN]) -> Self {
        Self(bytes)
    }

    /// The 20 bytes.
    pub const fn as_bytes(&self) -> &[u8; RECOVERY_CODE_LEN] {
        &self.0
    }

    /// Reads a code as a person typed it: case does not matter, spaces and hyphens are
    /// ignored, O reads as 0 and I or L as 1. Anything else, or not exactly 32 characters,
    /// is refused.
    pub fn parse(text: &str) -> Result<Self, InvalidRecoveryCode> {
        let mut out = [0u8; RECOVERY_CODE_LEN];
        let mut acc: u16 = 0;
        let mut bits = 0u32;
        let mut chars = 0usize;
        let mut n = 0usize;
        for c in text.chars() {
            if c.is_whitespace() || c == '-' {
                continue;
            }
            let c = match c.to_ascii_uppercase() {
                'O' => '0',
                'I' | 'L' => '1',
                other => other,
            };
            let value = ALPHABET
                .iter()
                .zip(0u16..)
                .find_map(|(a, v)| (char::from(*a) == c).then_some(v))
                .ok_or(InvalidRecoveryCode)?;
            chars += 1;
            if chars > RECOVERY_CODE_CHARS {
                return Err(InvalidRecoveryCode);
            }
            acc = ((acc << 5) | value) & 0xfff;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                out[n] = (acc >> bits).to_be_bytes()[1];
                n += 1;
            }
        }
        if chars != RECOVERY_CODE_CHARS {
            return Err(InvalidRecoveryCode);
        }
        Ok(Self(out))
    }

    /// The Ed25519 seed: `SHA-256("pawpost/v1/recovery-seed" || code bytes)`.
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(
            Sha256::new()
                .chain_update(SEED_DOMAIN)
                .chain_update(self.0)
                .finalize()
                .into(),
        )
    }
}

impl fmt::Display for RecoveryCode {
    /// 32 Crockford base32 characters, most significant bits first, in 8 groups of 4
    /// joined by `-`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut acc: u16 = 0;
        let mut bits = 0u32;
        let mut written = 0usize;
        for b in self.0 {
            acc = ((acc << 8) | u16::from(b)) & 0xfff;
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                if written > 0 && written.is_multiple_of(RECOVERY_CODE_GROUP) {
                    f.write_str("-")?;
                }
                let c = ALPHABET[usize::from((acc >> bits) & 31)];
                fmt::Write::write_char(f, char::from(c))?;
                written += 1;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A secret must never reach a log.
        f.write_str("RecoveryCode(..)")
    }
}

/// The roster device id of a recovery key:
/// `SHA-256("pawpost/v1/recovery-id" || ed25519_pub)[0..16]`.
pub fn recovery_device_id(ed25519_pub: &[u8; 32]) -> DeviceId {
    let d = Sha256::new()
        .chain_update(ID_DOMAIN)
        .chain_update(ed25519_pub)
        .finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&d[..16]);
    DeviceId(id)
}

/// The signing key of a recovery code, with its roster device id.
pub struct RecoveryKey {
    device_id: DeviceId,
    ed25519: SigningKey,
}

impl RecoveryKey {
    /// Derives the key from a code.
    pub fn from_code(code: &RecoveryCode) -> Self {
        let ed25519 = SigningKey::from_bytes(&code.seed());
        let device_id = recovery_device_id(&ed25519.verifying_key().to_bytes());
        Self { device_id, ed25519 }
    }

    /// Its device id in the roster.
    pub fn device_id(&self) -> DeviceId {
        self.device_id
    }

    /// Its Ed25519 public key.
    pub fn ed25519_pub(&self) -> [u8; 32] {
        self.ed25519.verifying_key().to_bytes()
    }

    /// Its roster entry: role recovery, approved, the account of the owner who made it,
    /// an X25519 key of 32 zeros.
    pub fn member(&self, account_id: AccountId) -> Member {
        Member {
            device_id: self.device_id,
            account_id,
            role: Role::Recovery,
            status: MemberStatus::Approved,
            x25519_pub: [0; 32],
            ed25519_pub: self.ed25519_pub(),
        }
    }

    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.ed25519.sign(message).to_bytes()
    }
}

impl fmt::Debug for RecoveryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecoveryKey")
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}
