//! End-to-end encryption for pawpost.
//!
//! - [`DeviceKeys`] / [`PublicIdentity`]: each device's X25519 (receive) and Ed25519 (sign)
//!   keys, and the [`Fingerprint`] people compare.
//! - [`Roster`] / [`SignedRoster`]: the household's members and settings, a chain of versions
//!   each signed by an owner device; [`RecoveryCode`] / [`RecoveryKey`]: the household's
//!   recovery key, which may sign a later version when every owner device was lost.
//! - [`sign_certificate`] / [`verify_certificate`]: a device vouching for a new device of the
//!   same account; [`LinkCode`]: what the new device shows so that the right one is signed.
//! - [`seal`] / [`open`] / [`StreamOpener`]: envelope v1, a message encrypted once with
//!   AES-256-GCM in chunks, its key wrapped for each recipient with HPKE (RFC 9180), signed
//!   by its sender. [`EnvelopePrefix`] lets a server without keys check who sent it.
//!
//! - [`Manifest`] / [`ReleaseKey`] / [`verify_manifest`]: signed releases of the toy's own
//!   software (`docs/UPDATES.md`).
//!
//! The byte layouts are specified in `docs/ENVELOPE.md`; `test-vectors/` holds the shared
//! vectors that other implementations must reproduce. Randomness always comes from the
//! caller, so a seeded generator gives reproducible bytes.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod certificate;
mod codec;
mod envelope;
mod identity;
mod recovery;
mod release;
mod roster;

pub use certificate::{
    certificate_input, sign_certificate, verify_certificate, LinkCode, CERTIFICATE_SIGNATURE_LEN,
    LINK_CODE_DIGITS,
};
pub use codec::DecodeError;
pub use envelope::{
    chunk_count, ciphertext_len, open, seal, Envelope, EnvelopeHeader, EnvelopePrefix, MediaType,
    MessageParams, OpenError, OpenedMessage, PayloadVerifier, SealError, StreamOpener, CHUNK_SIZE,
    HEADER_FIXED_LEN, MAX_CHUNK_COUNT, MAX_PAYLOAD_LEN, MAX_RECIPIENTS, PAYLOAD_DIGEST_LEN,
    SIGNATURE_LEN, TAG_LEN, WRAPPED_KEY_LEN,
};
pub use identity::{
    AccountId, DeviceId, DeviceKeys, Fingerprint, HouseholdId, MessageId, PublicIdentity,
    SafetyNumber, DEVICE_SECRET_LEN, PUBLIC_IDENTITY_LEN, SAFETY_NUMBER_DIGITS,
};
pub use rand_core;
pub use recovery::{
    recovery_device_id, InvalidRecoveryCode, RecoveryCode, RecoveryKey, RECOVERY_CODE_CHARS,
    RECOVERY_CODE_GROUP, RECOVERY_CODE_LEN,
};
pub use release::{
    manifest_signature_input, valid_board_name, valid_release_public_key, verify_manifest,
    ImageDigest, Manifest, ManifestError, ReleaseKey, MANIFEST_SIGNATURE_LEN, MANIFEST_VERSION,
    MAX_BOARD_NAME_LEN, MAX_MANIFEST_LEN,
};
pub use roster::{
    HouseholdSettings, Member, MemberStatus, QuietHours, Role, Roster, RosterError, SignedRoster,
    MAX_MEMBERS, MAX_RETENTION_DAYS, MAX_TIMEZONE_OFFSET_MINUTES, MEMBER_LEN, MINUTES_PER_DAY,
    MIN_TIMEZONE_OFFSET_MINUTES, ROSTER_SIGNATURE_LEN,
};

/// The version byte that starts every structure of this format.
pub const FORMAT_VERSION: u8 = 1;

/// The operating system's random number generator, for callers that have one.
#[cfg(feature = "std")]
pub fn os_rng() -> impl rand_core::CryptoRng {
    rand_core::UnwrapErr(getrandom::SysRng)
}
