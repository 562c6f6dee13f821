//! Device identities: the key pairs a device makes for itself, the public half others see,
//! and the fingerprint a person compares.

use core::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

use crate::codec::{DecodeError, Reader};
use crate::FORMAT_VERSION;

macro_rules! id16 {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub [u8; 16]);

        impl $name {
            /// The 16 raw bytes (a UUID in network byte order).
            pub const fn as_bytes(&self) -> &[u8; 16] {
                &self.0
            }
        }

        impl From<[u8; 16]> for $name {
            fn from(bytes: [u8; 16]) -> Self {
                Self(bytes)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(", stringify!($name))?;
                for b in self.0 {
                    write!(f, "{b:02x}")?;
                }
                write!(f, ")")
            }
        }
    };
}

id16!(
    /// A device (a browser profile or a toy), 16 bytes (UUID).
    DeviceId
);
id16!(
    /// A household, 16 bytes (UUID).
    HouseholdId
);
id16!(
    /// A message, 16 bytes (UUID); the toy refuses one it has already played.
    MessageId
);
id16!(
    /// The account that owns a device, 16 bytes (UUID).
    AccountId
);

/// Length of an encoded [`PublicIdentity`].
pub const PUBLIC_IDENTITY_LEN: usize = 1 + 16 + 32 + 32;
/// Length of an encoded [`DeviceKeys`] secret.
pub const DEVICE_SECRET_LEN: usize = 1 + 16 + 32 + 32;

const FINGERPRINT_DOMAIN: &[u8] = b"pawpost/v1/fingerprint";
const SAFETY_NUMBER_DOMAIN: &[u8] = b"pawpost/v1/safety-number";
/// Digits in a [`SafetyNumber`].
pub const SAFETY_NUMBER_DIGITS: usize = 6;
const SAFETY_NUMBER_MODULUS: u64 = 1_000_000;

/// The public half of a device identity, which others use to encrypt to it and to check its
/// signatures.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct PublicIdentity {
    /// Which device this is.
    pub device_id: DeviceId,
    /// X25519 public key: messages are encrypted to it.
    pub x25519_pub: [u8; 32],
    /// Ed25519 public key: the device's messages and rosters are signed with it.
    pub ed25519_pub: [u8; 32],
}

impl PublicIdentity {
    /// `version (1) || device_id (16) || x25519_pub (32) || ed25519_pub (32)`.
    pub fn encode(&self) -> [u8; PUBLIC_IDENTITY_LEN] {
        let mut out = [0u8; PUBLIC_IDENTITY_LEN];
        out[0] = FORMAT_VERSION;
        out[1..17].copy_from_slice(&self.device_id.0);
        out[17..49].copy_from_slice(&self.x25519_pub);
        out[49..81].copy_from_slice(&self.ed25519_pub);
        out
    }

    /// Strict decode of [`PublicIdentity::encode`]'s output.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        if r.u8()? != FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion);
        }
        let device_id = DeviceId(r.array()?);
        let identity = Self::read_keys(&mut r, device_id)?;
        r.finish()?;
        Ok(identity)
    }

    /// Reads the two public keys after a device id, refusing an Ed25519 key that is not a
    /// curve point or has small order (it would let anyone forge signatures for it).
    pub(crate) fn read_keys(r: &mut Reader<'_>, device_id: DeviceId) -> Result<Self, DecodeError> {
        let x25519_pub = r.array()?;
        let ed25519_pub = r.array()?;
        parse_verifying_key(&ed25519_pub)?;
        Ok(Self {
            device_id,
            x25519_pub,
            ed25519_pub,
        })
    }

    /// The safety number two people read to each other to make sure they see the same keys.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.x25519_pub, &self.ed25519_pub)
    }

    /// The short number a toy speaks and a parent's app shows for the same keys.
    pub fn safety_number(&self) -> SafetyNumber {
        SafetyNumber::of(&self.x25519_pub, &self.ed25519_pub)
    }

    /// Checks an Ed25519 signature made by this device over `message`.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        verify_signature(&self.ed25519_pub, message, signature)
    }
}

pub(crate) fn parse_verifying_key(bytes: &[u8; 32]) -> Result<VerifyingKey, DecodeError> {
    let key = VerifyingKey::from_bytes(bytes).map_err(|_| DecodeError::InvalidKey)?;
    if key.is_weak() {
        return Err(DecodeError::InvalidKey);
    }
    Ok(key)
}

/// Strict Ed25519 verification (RFC 8032 plus rejection of small-order keys and non-canonical
/// encodings) so that a signature has exactly one valid form.
pub(crate) fn verify_signature(
    ed25519_pub: &[u8; 32],
    message: &[u8],
    signature: &[u8; 64],
) -> bool {
    let Ok(key) = parse_verifying_key(ed25519_pub) else {
        return false;
    };
    key.verify_strict(message, &Signature::from_bytes(signature))
        .is_ok()
}

/// A device's own key pairs. Never leaves the device; zeroed when dropped.
pub struct DeviceKeys {
    device_id: DeviceId,
    x25519: StaticSecret,
    ed25519: SigningKey,
}

impl DeviceKeys {
    /// Makes fresh keys: 32 random bytes for the X25519 secret, then 32 for the Ed25519 seed.
    pub fn generate(rng: &mut impl CryptoRng, device_id: DeviceId) -> Self {
        let mut x = Zeroizing::new([0u8; 32]);
        let mut ed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(x.as_mut());
        rng.fill_bytes(ed.as_mut());
        Self::from_secrets(device_id, &x, &ed)
    }

    /// Rebuilds keys from the X25519 secret scalar and the Ed25519 seed.
    pub fn from_secrets(
        device_id: DeviceId,
        x25519_secret: &[u8; 32],
        ed25519_seed: &[u8; 32],
    ) -> Self {
        Self {
            device_id,
            x25519: StaticSecret::from(*x25519_secret),
            ed25519: SigningKey::from_bytes(ed25519_seed),
        }
    }

    /// This device's id.
    pub fn device_id(&self) -> DeviceId {
        self.device_id
    }

    /// The public half, to publish in the roster.
    pub fn public(&self) -> PublicIdentity {
        PublicIdentity {
            device_id: self.device_id,
            x25519_pub: x25519_dalek::PublicKey::from(&self.x25519).to_bytes(),
            ed25519_pub: self.ed25519.verifying_key().to_bytes(),
        }
    }

    /// Secret storage form: `version (1) || device_id (16) || x25519 secret (32) || ed25519
    /// seed (32)`. Keep it in the device's protected storage only.
    pub fn to_secret_bytes(&self) -> Zeroizing<[u8; DEVICE_SECRET_LEN]> {
        let mut out = Zeroizing::new([0u8; DEVICE_SECRET_LEN]);
        out[0] = FORMAT_VERSION;
        out[1..17].copy_from_slice(&self.device_id.0);
        out[17..49].copy_from_slice(self.x25519.as_bytes());
        out[49..81].copy_from_slice(self.ed25519.as_bytes());
        out
    }

    /// Strict decode of [`DeviceKeys::to_secret_bytes`]'s output.
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        if r.u8()? != FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion);
        }
        let device_id = DeviceId(r.array()?);
        let x = Zeroizing::new(r.array::<32>()?);
        let ed = Zeroizing::new(r.array::<32>()?);
        r.finish()?;
        Ok(Self::from_secrets(device_id, &x, &ed))
    }

    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.ed25519.sign(message).to_bytes()
    }

    pub(crate) fn x25519_secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.x25519.to_bytes())
    }
}

impl fmt::Debug for DeviceKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only the public half: a secret must never reach a log.
        f.debug_struct("DeviceKeys")
            .field("public", &self.public())
            .finish_non_exhaustive()
    }
}

/// A safety number: 30 decimal digits in 6 groups of 5, derived from both public keys.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Fingerprint(pub [u32; 6]);

impl Fingerprint {
    /// `d = SHA-256("pawpost/v1/fingerprint" || x25519_pub || ed25519_pub)`; group `i` is the
    /// big-endian integer of `d[5i..5i+5]` modulo 100000.
    pub fn of(x25519_pub: &[u8; 32], ed25519_pub: &[u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(FINGERPRINT_DOMAIN)
            .chain_update(x25519_pub)
            .chain_update(ed25519_pub)
            .finalize();
        let mut groups = [0u32; 6];
        for (i, group) in groups.iter_mut().enumerate() {
            let value = digest[5 * i..5 * i + 5]
                .iter()
                .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            // The remainder is below 100000, so it always fits.
            *group = (value % 100_000) as u32;
        }
        Self(groups)
    }
}

/// A short safety number of six decimal digits, for a device that can speak but not show
/// its [`Fingerprint`] (a toy): a parent compares what the toy says with what the app shows.
/// It is derived from the same two public keys under a domain of its own.
///
/// Six digits catch a mix-up (another toy, keys the household keys do not hold) with
/// certainty but are no defence against an attacker who can try a million key pairs: the
/// toy's own check that a roster lists its exact keys is what stops a key substitution.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SafetyNumber(pub u32);

impl SafetyNumber {
    /// `d = SHA-256("pawpost/v1/safety-number" || x25519_pub || ed25519_pub)`; the number
    /// is the big-endian integer of `d[0..5]` modulo 1 000 000.
    pub fn of(x25519_pub: &[u8; 32], ed25519_pub: &[u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(SAFETY_NUMBER_DOMAIN)
            .chain_update(x25519_pub)
            .chain_update(ed25519_pub)
            .finalize();
        let value = digest[..5]
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        // The remainder is below 1 000 000, so it always fits.
        Self(u32::try_from(value % SAFETY_NUMBER_MODULUS).unwrap_or(0))
    }

    /// The digits, most significant first (leading zeros included), for speaking one at a
    /// time.
    pub fn digits(self) -> [u8; SAFETY_NUMBER_DIGITS] {
        let mut out = [0u8; SAFETY_NUMBER_DIGITS];
        let mut rest = self.0;
        for digit in out.iter_mut().rev() {
            // A remainder of 10 always fits in a byte.
            *digit = u8::try_from(rest % 10).unwrap_or(0);
            rest /= 10;
        }
        out
    }
}

impl fmt::Display for SafetyNumber {
    /// Two groups of three digits: `"048 193"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03} {:03}", self.0 / 1000, self.0 % 1000)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, group) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{group:05}")?;
        }
        Ok(())
    }
}
