//! The records pawpost keeps. Times are UTC.
use crate::{AccountId, Email, HouseholdId, InvitationId, MemberStatus, Role};
use time::OffsetDateTime;
use uuid::Uuid;

/// A person who signs in to the web app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub email: Email,
    pub display_name: String,
    /// PHC string (Argon2id); never leaves the server, never logged.
    pub password_hash: String,
    pub created_at: OffsetDateTime,
    /// Set by an administrator; a locked account cannot sign in.
    pub locked: bool,
    /// When the account proved it reads mail sent to `email` (a link from it was
    /// opened); `None` until then. An unverified account signs in and works all the same.
    pub email_verified_at: Option<OffsetDateTime>,
}

/// A signed-in browser or API client. Only the SHA-256 of its token is stored, so a
/// copy of the database does not let anyone sign in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: Uuid,
    pub account_id: AccountId,
    pub token_hash: [u8; 32],
    /// Sent back by the web app in a header on every state-changing request.
    pub csrf_token: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub client_address: String,
    pub user_agent: String,
}

/// A household: one child's toys and the family around them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Household {
    pub id: HouseholdId,
    pub name: String,
    pub created_at: OffsetDateTime,
}

/// One person's place in one household.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub household_id: HouseholdId,
    pub account_id: AccountId,
    pub role: Role,
    pub status: MemberStatus,
    pub joined_at: OffsetDateTime,
}

impl Membership {
    /// An approved member that may act in the household at all.
    pub fn is_active(&self) -> bool {
        self.status == MemberStatus::Approved
    }

    /// An approved owner or guardian.
    pub fn manages(&self) -> bool {
        self.is_active() && self.role.manages_household()
    }
}

/// A member as the household sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub membership: Membership,
    pub display_name: String,
    pub email: Email,
}

/// A single-use invitation. Only the SHA-256 of its token is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub id: InvitationId,
    pub household_id: HouseholdId,
    pub token_hash: [u8; 32],
    pub role: Role,
    pub created_by: AccountId,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// A device's 16-byte id (UUID), as in the end-to-end format.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct DeviceId(pub Uuid);

impl std::fmt::Display for DeviceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What kind of device holds the keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// A member's browser profile or app.
    Member,
    /// A toy.
    Toy,
}

impl DeviceKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Member => "member",
            DeviceKind::Toy => "toy",
        }
    }
}

impl std::str::FromStr for DeviceKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "member" => Ok(DeviceKind::Member),
            "toy" => Ok(DeviceKind::Toy),
            other => Err(format!("unknown device kind {other:?}")),
        }
    }
}

/// A device's public keys as registered with the server. Private keys never leave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: DeviceId,
    pub kind: DeviceKind,
    /// The member account that owns it; none for a toy.
    pub account_id: Option<AccountId>,
    /// The household a toy is paired with; none for a member device.
    pub household_id: Option<HouseholdId>,
    /// The encoded public identity (version, device id, X25519 and Ed25519 keys).
    pub identity: Vec<u8>,
    pub label: String,
    pub created_at: OffsetDateTime,
}

/// One signed roster version, stored as the owner signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRoster {
    pub household_id: HouseholdId,
    pub version: u64,
    pub signed: Vec<u8>,
    pub created_at: OffsetDateTime,
}

/// What the server knows of a message: the cleartext header fields and where the
/// ciphertext lies. Never the content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: Uuid,
    pub household_id: HouseholdId,
    pub sender_device: DeviceId,
    /// The member account behind the sender device; none when a toy sent it.
    pub sender_account: Option<AccountId>,
    pub media_type: u8,
    pub duration_ms: u32,
    pub envelope_len: u64,
    pub created_at: OffsetDateTime,
    pub blob_key: String,
}

/// Starts the `blob_key` of a message whose envelope lies in its own database row
/// (stored in the same commit as the row), not in the blob store. The rest of the key is
/// what a blob key would have been, so that each message's key stays its own.
pub const ENVELOPE_IN_ROW: &str = "row:";

impl Message {
    /// Whether the envelope lies in the message's row rather than in the blob store.
    pub fn envelope_in_row(&self) -> bool {
        self.blob_key.starts_with(ENVELOPE_IN_ROW)
    }
}

/// Where a message stands for one recipient device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub device_id: DeviceId,
    pub delivered_at: Option<OffsetDateTime>,
    pub played_at: Option<OffsetDateTime>,
    /// When the toy refused the message for good: it will never play it.
    pub refused_at: Option<OffsetDateTime>,
    /// The toy's reason, by its stable name (docs/TOY-PROTOCOL.md `RejectReason`, e.g.
    /// `sender_blocked`); set with `refused_at`.
    pub refusal: Option<String>,
}

/// How far a recipient got with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ReceiptState {
    /// The device has the envelope.
    Delivered,
    /// The message was played (heard) or opened.
    Played,
}

/// A toy waiting to be paired: it asked for a code and speaks it. A parent who enters the
/// code only claims the toy for a household; the pairing completes when someone presses
/// the toy's paw while it speaks the claim's confirmation number, so that a guessed code
/// gains a stranger nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPairing {
    pub code: String,
    pub device_id: DeviceId,
    /// The toy's encoded public identity: the only keys this pairing can ever pair.
    pub identity: Vec<u8>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// Set once a parent entered the code.
    pub claim: Option<PairingClaimant>,
}

/// Who entered a pairing code, and what the toy must hear confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairingClaimant {
    pub household_id: HouseholdId,
    pub account_id: AccountId,
    /// The digits the toy speaks and the parent's app shows.
    pub confirmation: String,
    /// The paw must be pressed before this.
    pub confirm_by: OffsetDateTime,
}

/// What asking for a pairing code found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairingCreated {
    Created,
    /// The code is live for another toy; draw another.
    CodeTaken,
    /// A live pairing of this device id was asked for with other keys.
    DeviceTaken,
}

/// What entering a pairing code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairingClaim {
    /// The code matched a live pairing, now claimed by this household (or claimed by it
    /// before: the same claim again). It waits for the paw.
    Claimed(PendingPairing),
    /// Another household had claimed this code: it is spent, and neither may pair with it.
    Contested(PendingPairing),
    /// No live pairing has this code.
    NoMatch,
}

/// A parent's signed approval of a held message, relayed to the toys as it was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub message_id: Uuid,
    /// The owner or guardian device that signed it.
    pub approver: DeviceId,
    /// Ed25519 signature over the toy protocol's approval input.
    pub signature: Vec<u8>,
    pub created_at: OffsetDateTime,
}
