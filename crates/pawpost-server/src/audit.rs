//! Recording events in the audit trail. A failure to record is logged, never shown to
//! the person acting: the trail must not become a way to deny service.
use crate::state::AppState;
use pawpost_domain::{AccountId, AuditRecord, HouseholdId};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use time::OffsetDateTime;

/// Entries shown at most on a household's trail or an account's own activity.
pub const TRAIL_LIMIT: u32 = 200;
/// Entries read at a time when verifying the whole chain.
pub const VERIFY_BATCH: u32 = 1000;

/// Declares [`AuditAction`] from one list of variants and the names the trail stores
/// and the API shows, so that the two cannot disagree.
macro_rules! audit_actions {
    ($($(#[doc = $doc:literal])* $variant:ident = $name:literal,)*) => {
        /// What an audit entry records. The trail stores, and the API shows, its name
        /// (`sign_in`, `member_blocked`, ...); the web app's `activity.js` words each one.
        /// Serde and the API document name each variant in snake case, which the tests
        /// hold equal to [`AuditAction::as_str`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum AuditAction {
            $($(#[doc = $doc])* $variant,)*
        }

        impl AuditAction {
            /// Every action, in declaration order.
            pub const ALL: &'static [AuditAction] = &[$(AuditAction::$variant,)*];

            /// The name stored in the trail and shown by the API.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(AuditAction::$variant => $name,)*
                }
            }
        }
    };
}

audit_actions! {
    /// An account was created (by its owner, from an address).
    AccountCreated = "account_created",
    /// The owner deleted the account.
    AccountDeleted = "account_deleted",
    /// The operator locked the account (`pawpost admin accounts --lock`).
    AccountLocked = "account_locked",
    /// The operator unlocked the account.
    AccountUnlocked = "account_unlocked",
    /// The operator sent the account a breach notice.
    BreachNoticeSent = "breach_notice_sent",
    /// The owner downloaded all of the account's data.
    DataExported = "data_exported",
    /// One of the account's devices certified another of its devices (signed its public
    /// identity); the target is the certified device.
    DeviceLinked = "device_linked",
    /// A member registered a device's public keys.
    DeviceRegistered = "device_registered",
    /// A member deleted one of their own devices (lost, or no longer used); the target is
    /// the device.
    DeviceRemoved = "device_removed",
    /// The account's email address was confirmed: a link sent to it was opened (one to
    /// confirm it, or one to choose a new password).
    EmailVerified = "email_verified",
    /// A household was created; its creator is its owner.
    HouseholdCreated = "household_created",
    /// An owner deleted the household.
    HouseholdDeleted = "household_deleted",
    /// A parent renamed the household.
    HouseholdRenamed = "household_renamed",
    /// Someone joined with an invitation link (pending approval).
    InvitationAccepted = "invitation_accepted",
    /// A parent created an invitation link; the target is the role it grants.
    InvitationCreated = "invitation_created",
    /// A parent approved a pending member.
    MemberApproved = "member_approved",
    /// A parent blocked a member.
    MemberBlocked = "member_blocked",
    /// A member was put back to waiting for approval.
    MemberPending = "member_pending",
    /// A member was removed, or left (actor and target are the same).
    MemberRemoved = "member_removed",
    /// A parent changed a member's role; the target is `ACCOUNT:ROLE`.
    MemberRoleChanged = "member_role_changed",
    /// A parent unblocked a member.
    MemberUnblocked = "member_unblocked",
    /// A parent released a held message to the toy.
    MessageApproved = "message_approved",
    /// A member fetched a message's envelope.
    MessageDownloaded = "message_downloaded",
    /// A member or the toy sent a message.
    MessageUploaded = "message_uploaded",
    /// The account switched a kind of notification mail on or off (on the Security page,
    /// or with the unsubscribe link of a mail); the target is `KIND:on` or `KIND:off`.
    NotificationsChanged = "notifications_changed",
    /// The account ended every other session it had (the Security page's "Sign out
    /// everywhere else"); the target counts the sessions ended.
    OtherSessionsEnded = "other_sessions_ended",
    /// The account added a passkey to sign in with; the target is the passkey's id.
    PasskeyAdded = "passkey_added",
    /// The account removed one of its passkeys; the target is the passkey's id.
    PasskeyRemoved = "passkey_removed",
    /// The account's password was changed; other sessions ended.
    PasswordChanged = "password_changed",
    /// The account's password was set with a link sent by email; every session ended.
    PasswordReset = "password_reset",
    /// Someone asked for a link to choose a new password for the account (from an
    /// address).
    PasswordResetRequested = "password_reset_requested",
    /// An owner published a roster version; the target is its version.
    RosterPublished = "roster_published",
    /// The operator published a signed release of the toy's software (`pawpost release
    /// publish`); the target is `<board> version <version> counter <counter>`.
    ReleasePublished = "release_published",
    /// A sign-in with the right password.
    SignIn = "sign_in",
    /// A sign-in with a wrong password (the actor, when the account exists).
    SignInFailed = "sign_in_failed",
    /// A session was signed out.
    SignOut = "sign_out",
    /// A toy failed to prove its identity (the first failure from an address).
    ToyAuthFailed = "toy_auth_failed",
    /// Toy authentications from an address reached their limit; the target counts them.
    ToyAuthFailuresThrottled = "toy_auth_failures_throttled",
    /// A paired toy connected and proved its identity.
    ToyConnected = "toy_connected",
    /// The toy renewed its key.
    ToyKeyRotated = "toy_key_rotated",
    /// The paw was pressed while the toy spoke the claim's number: it is paired.
    ToyPaired = "toy_paired",
    /// A parent entered the pairing code a toy spoke; the toy now speaks a number.
    ToyPairingClaimed = "toy_pairing_claimed",
    /// A second household entered the same pairing code; the code no longer works.
    ToyPairingContested = "toy_pairing_contested",
    /// A toy asked for a pairing code.
    ToyPairingRequested = "toy_pairing_requested",
    /// A parent removed a toy from the household with an owner's signed goodbye; the toy
    /// forgets the household and can be paired again.
    ToyRemoved = "toy_removed",
    /// A parent gave the toy new names (its own, and who it says messages are from),
    /// sealed on their device; the server never reads them.
    ToyNamesChanged = "toy_names_changed",
    /// A parent confirmed that the toy speaks the safety number their app shows.
    ToySafetyNumberChecked = "toy_safety_number_checked",
}

impl AuditAction {
    /// The action named `name`, if this server knows it.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.as_str() == name)
    }

    /// Actions on sign-in data: passwords tried, set or created.
    pub fn concerns_sign_in(self) -> bool {
        matches!(
            self,
            AuditAction::SignIn
                | AuditAction::SignInFailed
                | AuditAction::PasswordChanged
                | AuditAction::PasskeyAdded
                | AuditAction::PasskeyRemoved
                | AuditAction::PasswordReset
                | AuditAction::PasswordResetRequested
                | AuditAction::AccountCreated
        )
    }

    /// Actions on message traffic.
    pub fn concerns_messages(self) -> bool {
        matches!(
            self,
            AuditAction::MessageUploaded
                | AuditAction::MessageDownloaded
                | AuditAction::MessageApproved
        )
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event: who (if known), which household (if any), what, to what, from where.
pub struct Event {
    pub actor: Option<AccountId>,
    pub household: Option<HouseholdId>,
    pub action: AuditAction,
    pub target: Option<String>,
    pub client: Option<IpAddr>,
}

impl Event {
    pub fn new(action: AuditAction) -> Self {
        Self {
            actor: None,
            household: None,
            action,
            target: None,
            client: None,
        }
    }

    pub fn by(mut self, actor: AccountId) -> Self {
        self.actor = Some(actor);
        self
    }

    pub fn in_household(mut self, household: HouseholdId) -> Self {
        self.household = Some(household);
        self
    }

    pub fn on(mut self, target: impl ToString) -> Self {
        self.target = Some(target.to_string());
        self
    }

    pub fn from(mut self, client: IpAddr) -> Self {
        self.client = Some(client);
        self
    }
}

pub async fn record(state: &AppState, event: Event) {
    state
        .writes
        .submit(crate::batch::Write::Audit(audit_record(event)))
        .await;
}

/// Hands `event` to the writer for its next commit without waiting for that commit (see
/// [`crate::batch::Batcher::enqueue`]); the trail keeps the order events are handed in.
pub async fn record_soon(state: &AppState, event: Event) {
    state
        .writes
        .enqueue(crate::batch::Write::Audit(audit_record(event)))
        .await;
}

fn audit_record(event: Event) -> AuditRecord {
    AuditRecord {
        at: OffsetDateTime::now_utc(),
        actor: event.actor,
        household: event.household,
        action: event.action.as_str().to_owned(),
        target: event.target,
        client: event.client.map(|c| c.to_string()),
    }
}

/// Records an event in a store directly (for commands that run without a server).
pub async fn record_in(store: &dyn pawpost_store::MetadataStore, event: Event) {
    let action = event.action;
    let record = audit_record(event);
    if let Err(error) = store.append_audit(&record).await {
        tracing::error!(%error, action = action.as_str(), "could not record an audit event");
    }
}

/// Why `verify` failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the audit trail is broken: {0}")]
    Broken(#[from] pawpost_domain::audit::ChainBreak),
    #[error("cannot read the audit trail: {0}")]
    Store(#[from] pawpost_store::StoreError),
}

/// Checks the whole chain; returns how many entries it holds.
pub async fn verify(store: &dyn pawpost_store::MetadataStore) -> Result<u64, VerifyError> {
    let (mut seq, mut hash) = (0u64, [0u8; 32]);
    loop {
        let batch = store.audit_entries(seq, VERIFY_BATCH).await?;
        if batch.is_empty() {
            return Ok(seq);
        }
        (seq, hash) = pawpost_domain::audit::verify_chain(seq, hash, &batch)?;
    }
}

#[cfg(test)]
mod tests {
    use super::AuditAction;

    #[test]
    fn every_action_is_stored_and_shown_under_one_name() {
        for action in AuditAction::ALL {
            let json = serde_json::to_value(action).unwrap();
            assert_eq!(json, action.as_str(), "{action:?}");
            assert_eq!(AuditAction::parse(action.as_str()), Some(*action));
            let back: AuditAction = serde_json::from_value(json).unwrap();
            assert_eq!(back, *action);
        }
        assert_eq!(AuditAction::parse("given_up"), None);
    }
}
