use crate::StoreResult;
use async_trait::async_trait;
use pawpost_domain::{
    Account, AccountId, Approval, AuditEntry, AuditRecord, Device, DeviceId, Email, Household,
    HouseholdId, Invitation, Member, MemberStatus, Membership, Message, PairingClaim,
    PairingClaimant, PairingCreated, PendingPairing, Receipt, ReceiptState, Role, Session,
    StoredRoster,
};
use time::OffsetDateTime;
use uuid::Uuid;

/// What redeeming an invitation token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    /// The caller is now a pending member.
    Joined(Membership),
    /// No invitation has this token.
    Unknown,
    /// The invitation was already used or has expired.
    Spent,
    /// The caller already belongs to that household; the invitation stays unused.
    AlreadyMember(HouseholdId),
    /// A parent of that household blocked the caller (who may have left since); the
    /// invitation stays unused.
    Blocked(HouseholdId),
}

/// Invitations created since some moment: how many, and when the oldest of them was.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InvitationCount {
    pub count: u64,
    pub oldest: Option<OffsetDateTime>,
}

/// What an account and a household have been inviting lately.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecentInvitations {
    /// Created by the account, in any household.
    pub by_account: InvitationCount,
    /// Created in the household, by any of its parents.
    pub in_household: InvitationCount,
}

/// A link to choose a new password, as it is stored: the SHA-256 of its random token
/// (the token itself is only in the email), the account it is for, and its lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordReset {
    pub token_hash: [u8; 32],
    pub account_id: AccountId,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// Accounts, sessions, households, memberships and invitations.
#[async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    /// Fails with `Conflict` when the email address is taken.
    async fn create_account(&self, account: &Account) -> StoreResult<()>;
    async fn account_by_email(&self, email: &Email) -> StoreResult<Option<Account>>;
    async fn account_by_id(&self, id: AccountId) -> StoreResult<Option<Account>>;
    async fn set_password_hash(&self, id: AccountId, password_hash: &str) -> StoreResult<()>;
    async fn set_account_locked(&self, id: AccountId, locked: bool) -> StoreResult<()>;

    async fn create_session(&self, session: &Session) -> StoreResult<()>;
    /// The unexpired session with this token hash.
    async fn session_by_token_hash(
        &self,
        token_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> StoreResult<Option<Session>>;
    async fn sessions_of(
        &self,
        account: AccountId,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<Session>>;
    async fn delete_session(&self, id: Uuid) -> StoreResult<()>;
    /// Ends every session of `account` but `keep`; returns how many ended.
    async fn delete_other_sessions(&self, account: AccountId, keep: Uuid) -> StoreResult<u64>;
    async fn delete_expired_sessions(&self, now: OffsetDateTime) -> StoreResult<u64>;

    /// Keeps a link to choose a new password. Fails with `Conflict` when the token hash
    /// is taken.
    async fn create_password_reset(&self, reset: &PasswordReset) -> StoreResult<()>;
    /// The link with this token hash, expired or not, left in place (to check it before
    /// [`take_password_reset`](Self::take_password_reset) uses it up).
    async fn password_reset(&self, token_hash: &[u8; 32]) -> StoreResult<Option<PasswordReset>>;
    /// Atomically deletes the link with this token hash if it has not expired at `now`,
    /// and returns its account: of two uses at once, even from two processes, only one
    /// gets it. An expired link is left for the sweep and answers `None`.
    async fn take_password_reset(
        &self,
        token_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> StoreResult<Option<AccountId>>;
    /// Ends every link of `account`; returns how many ended.
    async fn delete_password_resets_of(&self, account: AccountId) -> StoreResult<u64>;
    /// Deletes the links that expired at or before `cutoff`; returns how many.
    async fn delete_expired_password_resets(&self, cutoff: OffsetDateTime) -> StoreResult<u64>;

    /// Creates the household with `owner` as its approved owner, in one transaction.
    async fn create_household(&self, household: &Household, owner: AccountId) -> StoreResult<()>;
    async fn household(&self, id: HouseholdId) -> StoreResult<Option<Household>>;
    async fn rename_household(&self, id: HouseholdId, name: &str) -> StoreResult<()>;
    /// Every household `account` belongs to, in any status, with its membership; not
    /// those it left while blocked.
    async fn households_of(&self, account: AccountId) -> StoreResult<Vec<(Household, Membership)>>;
    async fn membership(
        &self,
        household: HouseholdId,
        account: AccountId,
    ) -> StoreResult<Option<Membership>>;
    /// Every member, blocked ones included (also those that left while blocked).
    async fn members(&self, household: HouseholdId) -> StoreResult<Vec<Member>>;
    /// Sets a member's role and status. A member that left while blocked has no place to
    /// return to: any status but blocked (a parent lifting the block) ends the membership.
    async fn update_member(
        &self,
        household: HouseholdId,
        account: AccountId,
        role: Role,
        status: MemberStatus,
    ) -> StoreResult<()>;
    /// Ends a membership. A blocked member's is kept, blocked and marked as left, so that
    /// leaving and coming back through an invitation cannot shed the block: only a parent
    /// lifting it (`update_member`) does.
    async fn remove_member(&self, household: HouseholdId, account: AccountId) -> StoreResult<()>;

    async fn create_invitation(&self, invitation: &Invitation) -> StoreResult<()>;
    /// Invitations created at or after `since` by `account` (in any household) and in
    /// `household` (by anyone), for the daily limits.
    async fn recent_invitations(
        &self,
        household: HouseholdId,
        account: AccountId,
        since: OffsetDateTime,
    ) -> StoreResult<RecentInvitations>;
    /// Atomically spends the invitation and makes `account` a pending member.
    async fn redeem_invitation(
        &self,
        token_hash: &[u8; 32],
        account: AccountId,
        now: OffsetDateTime,
    ) -> StoreResult<Redemption>;

    /// Fails with `Conflict` when the device id is taken.
    async fn create_device(&self, device: &Device) -> StoreResult<()>;
    async fn device(&self, id: DeviceId) -> StoreResult<Option<Device>>;
    async fn devices_of_account(&self, account: AccountId) -> StoreResult<Vec<Device>>;
    /// Member devices of the household's approved members, and the toys paired with it.
    async fn devices_of_household(&self, household: HouseholdId) -> StoreResult<Vec<Device>>;

    async fn latest_roster(&self, household: HouseholdId) -> StoreResult<Option<StoredRoster>>;
    /// Fails with `Conflict` when that version exists: two owners raced, one must retry.
    async fn insert_roster(&self, roster: &StoredRoster) -> StoreResult<()>;

    /// Records a message whose envelope is already stored, with one receipt per recipient.
    /// Fails with `Conflict` when the message id exists (a replay).
    async fn insert_message(&self, message: &Message, recipients: &[DeviceId]) -> StoreResult<()>;
    async fn message(&self, id: Uuid) -> StoreResult<Option<Message>>;
    async fn receipts(&self, message: Uuid) -> StoreResult<Vec<Receipt>>;
    /// The household's messages sent by `account` or addressed to one of its devices,
    /// oldest first.
    async fn messages_for_account(
        &self,
        household: HouseholdId,
        account: AccountId,
    ) -> StoreResult<Vec<Message>>;
    /// Every message of the household, oldest first (for its parents).
    async fn messages_of_household(&self, household: HouseholdId) -> StoreResult<Vec<Message>>;
    /// Marks a recipient's progress; `Played` implies `Delivered`. Earlier times are kept.
    async fn set_receipt(
        &self,
        message: Uuid,
        device: DeviceId,
        state: ReceiptState,
        at: OffsetDateTime,
    ) -> StoreResult<()>;
    /// Records that the toy `device` refused the message for good (`reason`: the toy's
    /// stable name for why), so that its sender learns it was never heard. The receipt
    /// counts as delivered from then on (it is never pushed again). A message already
    /// played stays played; a second refusal keeps the first.
    async fn refuse_receipt(
        &self,
        message: Uuid,
        device: DeviceId,
        reason: &str,
        at: OffsetDateTime,
    ) -> StoreResult<()>;

    /// Replaces a device's public identity (a toy rotating its keys).
    async fn update_device_identity(&self, id: DeviceId, identity: &[u8]) -> StoreResult<()>;
    /// Roster versions after `version`, oldest first (to bring a toy up to date).
    async fn rosters_since(
        &self,
        household: HouseholdId,
        version: u64,
    ) -> StoreResult<Vec<StoredRoster>>;
    /// Messages addressed to `device` that it has not acknowledged, oldest first.
    async fn undelivered_for(&self, device: DeviceId) -> StoreResult<Vec<Message>>;

    /// Stores a toy's request for a pairing code. A live pairing of the same device with
    /// the same keys is replaced (the toy asked again); one with other keys is kept and
    /// the request answers `DeviceTaken`, so that a device id can never be claimed by
    /// keys other than those that first asked. `CodeTaken` when the code is live for
    /// another toy (the caller draws another).
    async fn create_pairing(&self, pairing: &PendingPairing) -> StoreResult<PairingCreated>;
    /// Claims the live pairing with `code` for `claimant`'s household. Claiming again
    /// from the same household answers the first claim; a claim from another household
    /// spends the pairing (`Contested`), so that neither a guesser nor the family can use
    /// it and the toy must ask for a new code.
    async fn claim_pairing(
        &self,
        code: &str,
        claimant: &PairingClaimant,
        now: OffsetDateTime,
    ) -> StoreResult<PairingClaim>;
    /// The live (unexpired) pairing of `device`, claimed or not.
    async fn pairing_of_device(
        &self,
        device: DeviceId,
        now: OffsetDateTime,
    ) -> StoreResult<Option<PendingPairing>>;
    /// Deletes `device`'s pairing with `code`; returns whether it was there (so that only
    /// one of two racing confirmations pairs the toy).
    async fn end_pairing(&self, device: DeviceId, code: &str) -> StoreResult<bool>;

    /// Keeps a parent's approval of a message; a second approval of it is ignored.
    async fn insert_approval(&self, approval: &Approval) -> StoreResult<()>;
    /// Approvals of messages addressed to `device` that it has not played yet.
    async fn approvals_pending_for(&self, device: DeviceId) -> StoreResult<Vec<Approval>>;

    /// Deletes the account with its sessions, devices, memberships and the messages it
    /// sent; returns the blob keys of those messages, for the caller to delete next.
    async fn delete_account(&self, account: AccountId) -> StoreResult<Vec<String>>;
    /// Deletes the household with its members' places, invitations, rosters, toys and
    /// messages; returns the messages' blob keys.
    async fn delete_household(&self, household: HouseholdId) -> StoreResult<Vec<String>>;
    /// Households that hold at least one message.
    async fn households_with_messages(&self) -> StoreResult<Vec<HouseholdId>>;
    /// The household's messages first played (by any recipient) before `cutoff`.
    async fn played_messages_before(
        &self,
        household: HouseholdId,
        cutoff: OffsetDateTime,
    ) -> StoreResult<Vec<Message>>;
    /// Messages created before `cutoff` that no recipient has played.
    async fn unplayed_messages_before(&self, cutoff: OffsetDateTime) -> StoreResult<Vec<Message>>;
    /// Deletes these messages' rows (receipts and approvals with them).
    async fn delete_messages(&self, ids: &[Uuid]) -> StoreResult<()>;

    /// Appends an event to the audit trail, chained to the last entry (atomically, so
    /// that concurrent appends from several processes keep one chain).
    async fn append_audit(&self, record: &AuditRecord) -> StoreResult<AuditEntry>;
    /// Entries after `after_seq`, in order, at most `limit`.
    async fn audit_entries(&self, after_seq: u64, limit: u32) -> StoreResult<Vec<AuditEntry>>;
    /// The household's most recent entries, newest first, at most `limit`.
    async fn household_audit(
        &self,
        household: HouseholdId,
        limit: u32,
    ) -> StoreResult<Vec<AuditEntry>>;

    /// Every account, oldest first (for administrators).
    async fn accounts(&self) -> StoreResult<Vec<Account>>;

    /// The account's own most recent entries (sign-ins, failed sign-ins, changes), newest
    /// first, at most `limit`.
    async fn account_audit(&self, account: AccountId, limit: u32) -> StoreResult<Vec<AuditEntry>>;

    /// The other server processes sharing this store, when several can; `None` for a
    /// store that one process uses alone.
    fn peers(&self) -> Option<std::sync::Arc<dyn crate::Peers>> {
        None
    }
}
