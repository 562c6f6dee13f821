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
