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

/// A link to confirm an account's email address, as it is stored: the SHA-256 of its
/// random token (the token itself is only in the email), the account it is for, and its
/// lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailVerification {
    pub token_hash: [u8; 32],
    pub account_id: AccountId,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// A passkey (WebAuthn credential) an account signs in with, as it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    pub id: Uuid,
    pub account_id: AccountId,
    /// The id the authenticator gave the credential; no two passkeys share one.
    pub credential_id: Vec<u8>,
    /// A name its owner recognises it by.
    pub label: String,
    /// The server's record of the credential (public key, signature counter), as the
    /// server crate serialises it; opaque here.
    pub credential: String,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
    /// Whether recovery material is kept with it (read with
    /// [`MetadataStore::passkey_recovery_material`]).
    pub has_recovery_material: bool,
}

/// A passkey ceremony between its two requests: what the server expects of the
/// browser's answer (opaque here), used up by that answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyCeremony {
    pub id: Uuid,
    /// What the ceremony is for (the server crate names them).
    pub purpose: String,
    /// The signed-in account adding a passkey, if any.
    pub account_id: Option<AccountId>,
    pub state: String,
    pub expires_at: OffsetDateTime,
}

/// An owner's signed word that a toy leaves its household (docs/TOY-PROTOCOL.md, "Leaving
/// a household"), kept for the toy until it pairs again or the retention sweep prunes it:
/// A toy as it authenticates, with what it may have to catch up on, read in one query:
/// a storm of reconnecting toys costs one round trip each when nothing waits for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    pub device: Device,
    /// The newest roster version of the device's household, when it has one.
    pub newest_roster: Option<u64>,
    /// Every roster version of the household after the one the toy says it holds, oldest
    /// first: what it must be sent, read in the same statement.
    pub rosters: Vec<StoredRoster>,
    /// Some message addressed to the device is not delivered yet.
    pub undelivered: bool,
    /// Some approval waits for it, on a message it has neither played nor refused.
    pub approvals_pending: bool,
    /// The sealed names record a parent made for the toy, if any.
    pub names_envelope: Option<Vec<u8>>,
}

/// the server sends it as a `Leave` frame to the toy when it is removed, and again
/// whenever the toy authenticates with `identity` while its device row is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Farewell {
    pub toy_device_id: DeviceId,
    /// The toy's encoded public identity when it was removed, to check its `Auth`.
    pub identity: Vec<u8>,
    pub household_id: HouseholdId,
    /// The owner device that signed.
    pub signer_device_id: DeviceId,
    /// Ed25519 over `pawpost_protocol::leave_signature_input`.
    pub signature: [u8; 64],
    pub created_at: OffsetDateTime,
}

/// What the household keeps about a paired toy besides its keys (migration 0020): the
/// sealed names record, the parents' safety-number check and when it was last connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToyProfile {
    pub toy_device_id: DeviceId,
    /// An envelope a parent's device sealed for the toy and the household's devices
    /// (docs/TOY-PROTOCOL.md, "Names"); opaque to the server.
    pub names_envelope: Option<Vec<u8>>,
    pub names_updated_at: Option<OffsetDateTime>,
    /// The parent who confirmed that the toy speaks the safety number their app shows.
    pub safety_checked_by: Option<AccountId>,
    pub safety_checked_at: Option<OffsetDateTime>,
    /// When the toy last authenticated or disconnected.
    pub last_seen_at: Option<OffsetDateTime>,
}

/// A signed release of the toy's software (migration 0025, docs/UPDATES.md): the manifest
/// and its signature exactly as the release key made them, and where the image is in the
/// blob store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub board: String,
    pub counter: u32,
    pub version: u32,
    /// The image's length in bytes.
    pub size: u32,
    /// An encoded `pawpost_crypto::Manifest`.
    pub manifest: Vec<u8>,
    /// Ed25519 by a release key over `pawpost_crypto::manifest_signature_input`.
    pub signature: [u8; 64],
    /// The image in the blob store.
    pub blob_key: String,
    pub created_at: OffsetDateTime,
}

/// What a toy last said it runs (its `Version` frame).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToySoftware {
    pub toy_device_id: DeviceId,
    pub board: String,
    pub version: u32,
    pub counter: u32,
    pub reported_at: OffsetDateTime,
}

/// A device's certificate: another device of the same account signed its public identity
/// (docs/ENVELOPE.md, "Device certificates"). One per certified device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCertificate {
    /// The certified device.
    pub device_id: DeviceId,
    /// The device whose key signed.
    pub certifier_device_id: DeviceId,
    /// Ed25519 over `pawpost_crypto::certificate_input`.
    pub signature: [u8; 64],
    pub created_at: OffsetDateTime,
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
    /// The account of the unexpired session with this token hash. It needs nothing from
    /// [`MetadataStore::session_by_token_hash`], so that a signed-in request can wait for
    /// both reads at once instead of one after the other.
    async fn account_by_session(
        &self,
        token_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> StoreResult<Option<Account>>;
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

    /// Keeps a link to confirm the account's email address, unless `most` links of the
    /// account were created at or after `since` already: then nothing is kept, and the
    /// answer is when the oldest of those was created. The account's links that expired
    /// before `since` are deleted in the same step. Of calls at once, even from several
    /// processes, no more than `most` keep a link. Fails with `Conflict` when the token
    /// hash is taken.
    async fn create_email_verification(
        &self,
        link: &EmailVerification,
        most: u32,
        since: OffsetDateTime,
    ) -> StoreResult<Option<OffsetDateTime>>;
    /// The link with this token hash, expired or not, left in place.
    async fn email_verification(
        &self,
        token_hash: &[u8; 32],
    ) -> StoreResult<Option<EmailVerification>>;
    /// Atomically uses up the link with this token hash if it has not expired at `now`,
    /// marks its account's email address verified at `now` (unless it was already) and
    /// ends the account's other links; returns the account. Of two uses at once, even
    /// from two processes, only one gets it. An expired link is left in place and
    /// answers `None`.
    async fn confirm_email_verification(
        &self,
        token_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> StoreResult<Option<AccountId>>;
    /// Marks the account's email address verified at `at` unless it was already, and
    /// ends its links to confirm it; returns whether it was unverified until now.
    async fn set_email_verified(&self, account: AccountId, at: OffsetDateTime)
        -> StoreResult<bool>;

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
    /// Device `id` with what it may have to catch up on (see [`Arrival`]), its household's
    /// rosters after version `held_roster` among it.
    async fn arrival(&self, id: DeviceId, held_roster: u64) -> StoreResult<Option<Arrival>>;
    async fn devices_of_account(&self, account: AccountId) -> StoreResult<Vec<Device>>;
    /// Deletes one of `account`'s own devices (never a toy), with its certificate; false
    /// if the account has no such device.
    async fn delete_member_device(&self, account: AccountId, id: DeviceId) -> StoreResult<bool>;
    /// Member devices of the household's approved members, and the toys paired with it.
    async fn devices_of_household(&self, household: HouseholdId) -> StoreResult<Vec<Device>>;

    async fn latest_roster(&self, household: HouseholdId) -> StoreResult<Option<StoredRoster>>;
    /// Fails with `Conflict` when that version exists: two owners raced, one must retry.
    async fn insert_roster(&self, roster: &StoredRoster) -> StoreResult<()>;

    /// Records a message whose envelope is already stored, with one receipt per recipient.
    /// Fails with `Conflict` when the message id exists (a replay).
    async fn insert_message(&self, message: &Message, recipients: &[DeviceId]) -> StoreResult<()>;
    /// Records a message with its envelope in its own row, in one commit with the row and
    /// its receipts: acknowledged together, durable together. `message.blob_key` starts
    /// with [`pawpost_domain::ENVELOPE_IN_ROW`]. Fails with `Conflict` like
    /// [`insert_message`](Self::insert_message).
    async fn insert_message_with_envelope(
        &self,
        message: &Message,
        recipients: &[DeviceId],
        envelope: &[u8],
    ) -> StoreResult<()>;
    /// The envelope kept in message `id`'s row; `None` when the message is gone or its
    /// envelope lies in the blob store.
    async fn message_envelope(&self, id: Uuid) -> StoreResult<Option<Vec<u8>>>;
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
    /// Keeps the channel's pairing number (three digits) with `device`'s live pairing
    /// with `code` (toy protocol version 3); returns whether that pairing was there.
    async fn set_pairing_number(
        &self,
        device: DeviceId,
        code: &str,
        number: &str,
    ) -> StoreResult<bool>;
    /// The channel's pairing number kept with the live pairing with `code`, if its toy
    /// speaks version 3 (a version 2 toy's pairing has none).
    async fn pairing_number(&self, code: &str, now: OffsetDateTime) -> StoreResult<Option<String>>;

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
    /// Appends events in order, chained like [`append_audit`](Self::append_audit), in one
    /// commit: a burst of events (toys reconnecting after a deploy) costs one sync.
    async fn append_audits(&self, records: &[AuditRecord]) -> StoreResult<Vec<AuditEntry>>;
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

    /// Keeps `farewell`, replacing any earlier one of the same toy (before deleting a
    /// household, for each toy an owner signed out).
    async fn put_farewell(&self, farewell: &Farewell) -> StoreResult<()>;
    /// In one transaction: deletes the toy device `farewell.toy_device_id` of
    /// `farewell.household_id` and the receipts of messages it never received, and keeps
    /// `farewell`. `false` (and nothing changed) when no such toy is in that household.
    async fn remove_toy(&self, farewell: &Farewell) -> StoreResult<bool>;
    /// The farewell kept for the toy `toy`.
    async fn farewell(&self, toy: DeviceId) -> StoreResult<Option<Farewell>>;
    /// Deletes the farewell of `toy` (it paired again); returns whether there was one.
    async fn delete_farewell(&self, toy: DeviceId) -> StoreResult<bool>;
    /// Deletes the farewells kept since before `cutoff`; returns how many.
    async fn delete_farewells_before(&self, cutoff: OffsetDateTime) -> StoreResult<u64>;

    /// The profiles of the household's toys that have one.
    async fn toy_profiles(&self, household: HouseholdId) -> StoreResult<Vec<ToyProfile>>;
    /// Replaces the toy's names record. `false` (nothing stored) when `toy` is not a toy.
    async fn set_toy_names(
        &self,
        toy: DeviceId,
        envelope: &[u8],
        at: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Records that a parent confirmed the toy's safety number. `false` when `toy` is not
    /// a toy.
    async fn set_toy_safety_checked(
        &self,
        toy: DeviceId,
        by: AccountId,
        at: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Records when the toy was last connected (nothing when `toy` is not a toy).
    async fn set_toy_seen(&self, toy: DeviceId, at: OffsetDateTime) -> StoreResult<()>;
    /// [`set_toy_seen`](Self::set_toy_seen) for several toys in one commit.
    async fn set_toys_seen(&self, seen: &[(DeviceId, OffsetDateTime)]) -> StoreResult<()>;

    /// Keeps a signed release. Fails with `Conflict` when its board already has a release
    /// with its counter.
    async fn put_release(&self, release: &Release) -> StoreResult<()>;
    /// The release of `board` with the highest counter above `above`, if any.
    async fn newest_release(&self, board: &str, above: u32) -> StoreResult<Option<Release>>;
    /// Records what a toy runs, replacing what it said before (nothing when `software`'s
    /// device is not a toy).
    async fn set_toy_software(&self, software: &ToySoftware) -> StoreResult<()>;
    /// What the household's toys last said they run.
    async fn toy_software(&self, household: HouseholdId) -> StoreResult<Vec<ToySoftware>>;

    /// The other server processes sharing this store, when several can; `None` for a
    /// store that one process uses alone.
    fn peers(&self) -> Option<std::sync::Arc<dyn crate::Peers>> {
        None
    }

    /// Keeps a passkey ceremony until its answer comes. Fails with `Conflict` when the
    /// id is taken.
    async fn create_passkey_ceremony(&self, ceremony: &PasskeyCeremony) -> StoreResult<()>;
    /// Atomically deletes and returns the ceremony, expired or not: of two answers at
    /// once, even from two processes, only one gets it.
    async fn take_passkey_ceremony(&self, id: Uuid) -> StoreResult<Option<PasskeyCeremony>>;
    /// Deletes the ceremonies that expired at or before `cutoff`; returns how many.
    async fn delete_expired_passkey_ceremonies(&self, cutoff: OffsetDateTime) -> StoreResult<u64>;
    /// Keeps a new passkey. Fails with `Conflict` when its credential id is taken.
    async fn add_passkey(&self, passkey: &StoredPasskey) -> StoreResult<()>;
    /// The account's passkeys, oldest first.
    async fn passkeys_of(&self, account: AccountId) -> StoreResult<Vec<StoredPasskey>>;
    async fn passkey_by_credential_id(
        &self,
        credential_id: &[u8],
    ) -> StoreResult<Option<StoredPasskey>>;
    /// Keeps the credential record after a sign-in (its counter moves) and when it was
    /// used. Fails with `NotFound` when the passkey is gone.
    async fn record_passkey_use(
        &self,
        id: Uuid,
        credential: &str,
        at: OffsetDateTime,
    ) -> StoreResult<()>;
    /// Deletes the account's passkey `id` with its recovery material; with `keep_one`,
    /// not when it is the account's only passkey (checked in the same step). Returns
    /// whether it was deleted.
    async fn delete_passkey(
        &self,
        account: AccountId,
        id: Uuid,
        keep_one: bool,
    ) -> StoreResult<bool>;
    /// Replaces the recovery material kept with the account's passkey `id`; returns
    /// whether there is such a passkey.
    async fn set_passkey_recovery_material(
        &self,
        account: AccountId,
        id: Uuid,
        material: &[u8],
    ) -> StoreResult<bool>;
    /// The recovery material kept with the account's passkey `id`, if any.
    async fn passkey_recovery_material(
        &self,
        account: AccountId,
        id: Uuid,
    ) -> StoreResult<Option<Vec<u8>>>;
    /// Keeps a device's certificate. Fails with `Conflict` when the device has one, and
    /// with `NotFound` when the device is gone.
    async fn add_device_certificate(&self, certificate: &DeviceCertificate) -> StoreResult<()>;
    /// The certificates of those of `devices` that have one, in device id order.
    async fn device_certificates(
        &self,
        devices: &[DeviceId],
    ) -> StoreResult<Vec<DeviceCertificate>>;

    // Notification mails.
    /// The kinds of notification mail the account switched on or off, by name; a kind
    /// not listed was never changed.
    async fn notification_settings(&self, account: AccountId) -> StoreResult<Vec<(String, bool)>>;
    /// Switches one kind of notification mail on or off. `NotFound` when the account is
    /// gone.
    async fn set_notification_setting(
        &self,
        account: AccountId,
        kind: &str,
        enabled: bool,
    ) -> StoreResult<()>;
    /// The server's own key named `name`: `fresh` is kept when there is none yet, and
    /// whatever is kept is returned, so every process sharing the store gets the same.
    async fn server_secret(&self, name: &str, fresh: &[u8]) -> StoreResult<Vec<u8>>;
}
