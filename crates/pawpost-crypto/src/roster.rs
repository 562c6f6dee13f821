//! The household roster: who may send, who may read, and the household's settings, as a
//! chain of versions each signed by an owner device (or, after the first, by the
//! household's recovery key).

use alloc::vec::Vec;
use sha2::{Digest, Sha256};

use crate::codec::{DecodeError, Reader, Writer};
use crate::identity::{
    verify_signature, AccountId, DeviceId, DeviceKeys, HouseholdId, PublicIdentity,
};
use crate::FORMAT_VERSION;

/// Most members (devices) a roster may list.
pub const MAX_MEMBERS: usize = 64;
/// Longest retention a household may choose, in days.
pub const MAX_RETENTION_DAYS: u16 = 365;
/// Minutes in a day: quiet-hour bounds are below it.
pub const MINUTES_PER_DAY: u16 = 24 * 60;
/// Westernmost UTC offset in minutes (UTC-12:00).
pub const MIN_TIMEZONE_OFFSET_MINUTES: i16 = -12 * 60;
/// Easternmost UTC offset in minutes (UTC+14:00).
pub const MAX_TIMEZONE_OFFSET_MINUTES: i16 = 14 * 60;
/// Length of an encoded member entry.
pub const MEMBER_LEN: usize = 16 + 16 + 1 + 1 + 32 + 32;
/// Length of an Ed25519 signature on a roster.
pub const ROSTER_SIGNATURE_LEN: usize = 64;

const DIGEST_DOMAIN: &[u8] = b"pawpost/v1/roster-digest";
const SIGNATURE_DOMAIN: &[u8] = b"pawpost/v1/roster-signature";

/// What a member may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Role {
    /// A parent who created the household: may do everything, signs rosters.
    Owner = 1,
    /// A second parent: same powers except removing owners.
    Guardian = 2,
    /// An approved relative: sends to the toy and hears the child.
    Family = 3,
    /// The toy itself, speaking for the child.
    Toy = 4,
    /// The household's recovery key, derived from a code an owner wrote down: signs roster
    /// versions after the first (to add an owner device when every one was lost), never
    /// sends, reads or approves. Its X25519 key is 32 zeros.
    Recovery = 5,
}

impl TryFrom<u8> for Role {
    type Error = DecodeError;

    fn try_from(value: u8) -> Result<Self, DecodeError> {
        match value {
            1 => Ok(Self::Owner),
            2 => Ok(Self::Guardian),
            3 => Ok(Self::Family),
            4 => Ok(Self::Toy),
            5 => Ok(Self::Recovery),
            _ => Err(DecodeError::UnknownRole),
        }
    }
}

/// Whether a parent let a member in or shut them out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MemberStatus {
    /// May send and receive.
    Approved = 1,
    /// Listed so that its messages are refused, not merely unknown.
    Blocked = 2,
}

impl TryFrom<u8> for MemberStatus {
    type Error = DecodeError;

    fn try_from(value: u8) -> Result<Self, DecodeError> {
        match value {
            1 => Ok(Self::Approved),
            2 => Ok(Self::Blocked),
            _ => Err(DecodeError::UnknownStatus),
        }
    }
}

/// One device in the household.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Member {
    /// The device.
    pub device_id: DeviceId,
    /// The account the device belongs to.
    pub account_id: AccountId,
    /// What it may do.
    pub role: Role,
    /// Approved or blocked.
    pub status: MemberStatus,
    /// X25519 public key (messages are encrypted to it).
    pub x25519_pub: [u8; 32],
    /// Ed25519 public key (its signatures are checked with it).
    pub ed25519_pub: [u8; 32],
}

impl Member {
    /// A member entry for a device identity.
    pub fn new(
        identity: &PublicIdentity,
        account_id: AccountId,
        role: Role,
        status: MemberStatus,
    ) -> Self {
        Self {
            device_id: identity.device_id,
            account_id,
            role,
            status,
            x25519_pub: identity.x25519_pub,
            ed25519_pub: identity.ed25519_pub,
        }
    }

    /// The member's device identity, to encrypt to it or check its signatures.
    pub fn public_identity(&self) -> PublicIdentity {
        PublicIdentity {
            device_id: self.device_id,
            x25519_pub: self.x25519_pub,
            ed25519_pub: self.ed25519_pub,
        }
    }

    /// Approved, not blocked.
    pub fn is_approved(&self) -> bool {
        self.status == MemberStatus::Approved
    }

    /// An approved owner: may sign the first roster, and every later one.
    pub fn is_approved_owner(&self) -> bool {
        self.is_approved() && self.role == Role::Owner
    }

    /// May sign the next roster: approved, and an owner or the household's recovery key.
    pub fn may_sign_rosters(&self) -> bool {
        self.is_approved() && matches!(self.role, Role::Owner | Role::Recovery)
    }

    /// May send messages and receive them: approved, and not the recovery key.
    pub fn may_send(&self) -> bool {
        self.is_approved() && self.role != Role::Recovery
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.put(&self.device_id.0);
        out.put(&self.account_id.0);
        out.put_u8(self.role as u8);
        out.put_u8(self.status as u8);
        // The recovery key receives nothing: its X25519 key is always written as zeros.
        if self.role == Role::Recovery {
            out.put(&[0; 32]);
        } else {
            out.put(&self.x25519_pub);
        }
        out.put(&self.ed25519_pub);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let device_id = DeviceId(r.array()?);
        let account_id = AccountId(r.array()?);
        let role = Role::try_from(r.u8()?)?;
        let status = MemberStatus::try_from(r.u8()?)?;
        let keys = PublicIdentity::read_keys(r, device_id)?;
        if role == Role::Recovery && keys.x25519_pub != [0; 32] {
            return Err(DecodeError::InvalidKey);
        }
        Ok(Self {
            device_id,
            account_id,
            role,
            status,
            x25519_pub: keys.x25519_pub,
            ed25519_pub: keys.ed25519_pub,
        })
    }
}

/// A daily window in which the toy stays silent, in minutes after local midnight. A window
/// whose end is before its start runs over midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QuietHours {
    /// First silent minute, below [`MINUTES_PER_DAY`].
    pub start_minute: u16,
    /// First minute after the window, below [`MINUTES_PER_DAY`] and not equal to the start.
    pub end_minute: u16,
}

/// Household-wide settings, signed with the roster so that the server cannot change them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HouseholdSettings {
    /// Quiet hours, if any.
    pub quiet_hours: Option<QuietHours>,
    /// The household's offset from UTC in minutes.
    pub timezone_offset_minutes: i16,
    /// Whether a parent must approve each message before the toy plays it.
    pub parent_approves_before_play: bool,
    /// Days a played message is kept, 1 to [`MAX_RETENTION_DAYS`].
    pub retention_days: u16,
}

impl HouseholdSettings {
    fn write(&self, out: &mut Vec<u8>) {
        // Absent quiet hours encode as zeros so that each value has one encoding.
        let (present, q) = match self.quiet_hours {
            Some(q) => (true, q),
            None => (
                false,
                QuietHours {
                    start_minute: 0,
                    end_minute: 0,
                },
            ),
        };
        out.put_u8(u8::from(present));
        out.put_u16(q.start_minute);
        out.put_u16(q.end_minute);
        out.put_i16(self.timezone_offset_minutes);
        out.put_u8(u8::from(self.parent_approves_before_play));
        out.put_u16(self.retention_days);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let present = r.bool()?;
        let start_minute = r.u16()?;
        let end_minute = r.u16()?;
        let timezone_offset_minutes = r.i16()?;
        let parent_approves_before_play = r.bool()?;
        let retention_days = r.u16()?;
        let quiet_hours = if present {
            if start_minute >= MINUTES_PER_DAY
                || end_minute >= MINUTES_PER_DAY
                || start_minute == end_minute
            {
                return Err(DecodeError::InvalidSettings);
            }
            Some(QuietHours {
                start_minute,
                end_minute,
            })
        } else {
            if start_minute != 0 || end_minute != 0 {
                return Err(DecodeError::InvalidSettings);
            }
            None
        };
        if !(MIN_TIMEZONE_OFFSET_MINUTES..=MAX_TIMEZONE_OFFSET_MINUTES)
            .contains(&timezone_offset_minutes)
            || !(1..=MAX_RETENTION_DAYS).contains(&retention_days)
        {
            return Err(DecodeError::InvalidSettings);
        }
        Ok(Self {
            quiet_hours,
            timezone_offset_minutes,
            parent_approves_before_play,
            retention_days,
        })
    }
}

/// One version of a household's roster.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Roster {
    /// The household.
    pub household_id: HouseholdId,
    /// Increases with every change; 1 for the first roster.
    pub version: u64,
    /// [`Roster::digest`] of the previous version; all zeros for version 1.
    pub previous_digest: [u8; 32],
    /// The household's settings.
    pub settings: HouseholdSettings,
    /// The devices; encoded in ascending device id order.
    pub members: Vec<Member>,
}

impl Roster {
    /// The first roster of a new household.
    pub fn genesis(
        household_id: HouseholdId,
        settings: HouseholdSettings,
        members: Vec<Member>,
    ) -> Self {
        Self {
            household_id,
            version: 1,
            previous_digest: [0; 32],
            settings,
            members,
        }
    }

    /// A copy to edit into the next version: version + 1, chained to this one.
    ///
    /// A roster at version `u64::MAX` (which decodes) has no next version: the copy keeps
    /// that version, so `verify_successor` refuses it as stale instead of anything panicking.
    pub fn next_version(&self) -> Self {
        Self {
            version: self.version.saturating_add(1),
            previous_digest: self.digest(),
            ..self.clone()
        }
    }

    /// Canonical encoding (members sorted by device id, a recovery member's X25519 key
    /// written as zeros). Decoding it back gives a roster equal to this one once its
    /// members are sorted and any recovery member's X25519 key is zeroed.
    pub fn encode(&self) -> Vec<u8> {
        let mut members: Vec<&Member> = self.members.iter().collect();
        members.sort_by_key(|m| m.device_id);
        let mut out = Vec::with_capacity(69 + MEMBER_LEN * members.len());
        out.put_u8(FORMAT_VERSION);
        out.put(&self.household_id.0);
        out.put_u64(self.version);
        out.put(&self.previous_digest);
        self.settings.write(&mut out);
        // A count above u16 fails decoding, which `SignedRoster::sign` runs.
        out.put_u16(u16::try_from(members.len()).unwrap_or(u16::MAX));
        for m in members {
            m.write(&mut out);
        }
        out
    }

    /// Strict decode: known version, settings in range, 1 to [`MAX_MEMBERS`] members in
    /// strictly ascending device id order, valid keys, nothing after.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let roster = Self::read(&mut r)?;
        r.finish()?;
        Ok(roster)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if r.u8()? != FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion);
        }
        let household_id = HouseholdId(r.array()?);
        let version = r.u64()?;
        let previous_digest: [u8; 32] = r.array()?;
        // Version 1 starts a chain and points nowhere; every later version points back.
        if version == 0 || (version == 1) != (previous_digest == [0; 32]) {
            return Err(DecodeError::InvalidRosterVersion);
        }
        let settings = HouseholdSettings::read(r)?;
        let count = usize::from(r.u16()?);
        if count == 0 {
            return Err(DecodeError::NoMembers);
        }
        if count > MAX_MEMBERS {
            return Err(DecodeError::TooManyMembers);
        }
        let mut members: Vec<Member> = Vec::with_capacity(count);
        for _ in 0..count {
            let member = Member::read(r)?;
            if members
                .last()
                .is_some_and(|prev| prev.device_id >= member.device_id)
            {
                return Err(DecodeError::MembersNotSorted);
            }
            members.push(member);
        }
        Ok(Self {
            household_id,
            version,
            previous_digest,
            settings,
            members,
        })
    }

    /// `SHA-256("pawpost/v1/roster-digest" || encoded roster)`: what the next version chains to.
    pub fn digest(&self) -> [u8; 32] {
        digest_of(&self.encode())
    }

    /// The member with this device id, whatever its status.
    pub fn member(&self, device_id: DeviceId) -> Option<&Member> {
        self.members.iter().find(|m| m.device_id == device_id)
    }

    /// The member with this device id if it is approved.
    pub fn approved_member(&self, device_id: DeviceId) -> Option<&Member> {
        self.member(device_id).filter(|m| m.is_approved())
    }

    /// Whether messages from this device may be accepted: listed, not blocked, and not the
    /// recovery key (which never sends).
    pub fn is_approved_sender(&self, device_id: DeviceId) -> bool {
        self.member(device_id).is_some_and(Member::may_send)
    }
}

fn digest_of(roster_bytes: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(DIGEST_DOMAIN)
        .chain_update(roster_bytes)
        .finalize()
        .into()
}

fn signature_input(roster_bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SIGNATURE_DOMAIN.len() + roster_bytes.len());
    out.put(SIGNATURE_DOMAIN);
    out.put(roster_bytes);
    out
}

/// Why a signed roster was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum RosterError {
    /// A first roster must have version 1.
    #[error("not a first roster (version 1)")]
    NotGenesis,
    /// The new version is for another household.
    #[error("roster belongs to another household")]
    HouseholdMismatch,
    /// The version is not above the one already held: a replay or a rollback.
    #[error("roster version is not newer than the current one")]
    StaleVersion,
    /// The roster does not chain to the one already held.
    #[error("roster does not follow the current one")]
    PreviousDigestMismatch,
    /// The signer is not an approved owner (or, after the first version, the recovery key)
    /// where it had to be.
    #[error("roster was not signed by an approved owner")]
    SignerNotOwner,
    /// The signature does not verify: the roster was changed after signing.
    #[error("roster signature does not verify")]
    BadSignature,
}

impl RosterError {
    /// Stable snake_case name, used by the shared test vectors and by other implementations.
    pub const fn code(self) -> &'static str {
        match self {
            Self::NotGenesis => "not_genesis",
            Self::HouseholdMismatch => "household_mismatch",
            Self::StaleVersion => "stale_version",
            Self::PreviousDigestMismatch => "previous_digest_mismatch",
            Self::SignerNotOwner => "signer_not_owner",
            Self::BadSignature => "bad_signature",
        }
    }
}

/// A roster with the device id and Ed25519 signature of the owner device that signed it.
///
/// Decoding checks structure only: call [`SignedRoster::verify_genesis`],
/// [`SignedRoster::verify_successor`] or [`SignedRoster::verify_signed_by`] before trusting
/// its contents.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SignedRoster {
    roster: Roster,
    roster_bytes: Vec<u8>,
    signer: DeviceId,
    signature: [u8; ROSTER_SIGNATURE_LEN],
}

impl SignedRoster {
    /// Signs `roster` with an owner device's key. Fails if the roster would not decode (a
    /// setting out of range, a duplicate member, too many members...).
    pub fn sign(roster: &Roster, signer: &DeviceKeys) -> Result<Self, DecodeError> {
        Self::sign_with(roster, signer.device_id(), |input| signer.sign(input))
    }

    /// Signs `roster` with the household's recovery key, which may sign any version after
    /// the first while it is an approved member of the version before.
    pub fn sign_with_recovery(
        roster: &Roster,
        signer: &crate::recovery::RecoveryKey,
    ) -> Result<Self, DecodeError> {
        Self::sign_with(roster, signer.device_id(), |input| signer.sign(input))
    }

    fn sign_with(
        roster: &Roster,
        signer: DeviceId,
        sign: impl FnOnce(&[u8]) -> [u8; ROSTER_SIGNATURE_LEN],
    ) -> Result<Self, DecodeError> {
        let roster_bytes = roster.encode();
        let roster = Roster::decode(&roster_bytes)?;
        let signature = sign(&signature_input(&roster_bytes));
        Ok(Self {
            roster,
            roster_bytes,
            signer,
            signature,
        })
    }

    /// `roster || signer device id (16) || signature (64)`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.roster_bytes.len() + 16 + ROSTER_SIGNATURE_LEN);
        out.put(&self.roster_bytes);
        out.put(&self.signer.0);
        out.put(&self.signature);
        out
    }

    /// Strict decode of [`SignedRoster::encode`]'s output. Does not verify the signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let roster = Roster::read(&mut r)?;
        let roster_len = bytes.len() - r.remaining();
        let signer = DeviceId(r.array()?);
        let signature = r.array()?;
        r.finish()?;
        Ok(Self {
            roster,
            roster_bytes: bytes[..roster_len].to_vec(),
            signer,
            signature,
        })
    }

    /// The roster, before any verification: for display or diagnostics only.
    pub fn unverified_roster(&self) -> &Roster {
        &self.roster
    }

    /// The device that claims to have signed it.
    pub fn signer(&self) -> DeviceId {
        self.signer
    }

    /// The roster's digest, which the next version chains to.
    pub fn digest(&self) -> [u8; 32] {
        digest_of(&self.roster_bytes)
    }

    fn signature_verifies(&self, ed25519_pub: &[u8; 32]) -> bool {
        verify_signature(
            ed25519_pub,
            &signature_input(&self.roster_bytes),
            &self.signature,
        )
    }

    /// Accepts the first roster of a household: version 1, signed by a device that is an
    /// approved owner in this same roster.
    pub fn verify_genesis(&self) -> Result<&Roster, RosterError> {
        if self.roster.version != 1 {
            return Err(RosterError::NotGenesis);
        }
        self.verify_signer_in(&self.roster, Member::is_approved_owner)
    }

    /// Accepts the next roster after `prev`, which the caller already trusts: same
    /// household, higher version, chained to `prev`'s digest, and signed by a device that
    /// was an approved owner in `prev`, or by the recovery key approved there (so a removed
    /// owner or recovery key cannot sign itself back in).
    pub fn verify_successor(&self, prev: &SignedRoster) -> Result<&Roster, RosterError> {
        if self.roster.household_id != prev.roster.household_id {
            return Err(RosterError::HouseholdMismatch);
        }
        if self.roster.version <= prev.roster.version {
            return Err(RosterError::StaleVersion);
        }
        if self.roster.previous_digest != prev.digest() {
            return Err(RosterError::PreviousDigestMismatch);
        }
        self.verify_signer_in(&prev.roster, Member::may_sign_rosters)
    }

    /// Accepts a roster signed with a pinned owner key, as a toy does after pairing.
    pub fn verify_signed_by(&self, ed25519_pub: &[u8; 32]) -> Result<&Roster, RosterError> {
        if self.signature_verifies(ed25519_pub) {
            Ok(&self.roster)
        } else {
            Err(RosterError::BadSignature)
        }
    }

    fn verify_signer_in(
        &self,
        authority: &Roster,
        allowed: fn(&Member) -> bool,
    ) -> Result<&Roster, RosterError> {
        let signer = authority
            .member(self.signer)
            .filter(|m| allowed(m))
            .ok_or(RosterError::SignerNotOwner)?;
        self.verify_signed_by(&signer.ed25519_pub)
    }
}
