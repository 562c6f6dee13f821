//! The plain types of pawpost: who people are, which household they belong to, and
//! the rules a password and an email address must follow. No I/O lives here.
#![forbid(unsafe_code)]

pub mod audit;
pub mod email;
pub mod ids;
pub mod model;
pub mod password;
pub mod roles;
pub mod text;

pub use audit::{AuditEntry, AuditRecord};
pub use email::{Email, EmailError};
pub use ids::{AccountId, HouseholdId, InvitationId};
pub use model::{
    Account, Approval, Device, DeviceId, DeviceKind, Household, Invitation, Member, Membership,
    Message, PairingClaim, PairingClaimant, PairingCreated, PendingPairing, Receipt, ReceiptState,
    Session, StoredRoster, ENVELOPE_IN_ROW,
};
pub use password::{PasswordPolicy, PasswordRejection};
pub use roles::{MemberStatus, Role};
