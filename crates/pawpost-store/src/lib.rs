//! The two storage seams of pawpost. Every backend (SQLite and a local folder by
//! default; PostgreSQL and S3-compatible storage at scale) implements these traits, and
//! nothing above them knows which one runs.
#![forbid(unsafe_code)]

mod blob;
mod delegate;
mod metadata;
mod peers;
mod sql;
pub mod stored;
#[cfg(feature = "testsuite")]
pub mod testsuite;

pub use blob::{BlobCursor, BlobKey, BlobKeyError, BlobPage, BlobStore, BLOB_LIST_PAGE_SIZE};
pub use metadata::Arrival;
pub use metadata::DeviceCertificate;
pub use metadata::Farewell;
pub use metadata::ToyProfile;
pub use metadata::{
    EmailVerification, InvitationCount, MetadataStore, PasswordReset, RecentInvitations, Redemption,
};
pub use metadata::{PasskeyCeremony, StoredPasskey};
pub use metadata::{Release, ToySoftware};
pub use peers::{PeerListener, Peers, MAX_NOTE_BYTES};

/// What can go wrong below the traits. Messages are for logs; clients see a generic
/// answer for `Backend`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value (an email address, a membership) already exists.
    #[error("already exists: {0}")]
    Conflict(&'static str),
    /// The row or blob to change does not exist.
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// The database or disk failed.
    #[error("storage backend failed: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What [`impl_metadata_store!`] names in the crate that invokes it.
#[doc(hidden)]
pub mod __private {
    pub use async_trait::async_trait;
    pub use pawpost_domain::{
        Account, AccountId, Approval, AuditEntry, AuditRecord, Device, DeviceId, Email, Household,
        HouseholdId, Invitation, Member, MemberStatus, Membership, Message, PairingClaim,
        PairingClaimant, PairingCreated, PendingPairing, Receipt, ReceiptState, Role, Session,
        StoredRoster,
    };
    pub use time::OffsetDateTime;
    pub use uuid::Uuid;
}
