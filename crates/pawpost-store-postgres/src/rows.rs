//! Rows as PostgreSQL keeps them (ids as `uuid`, times as `timestamptz`, hashes and keys
//! as `bytea`), each with its conversion into the domain type. The columns each reads
//! are listed by `pawpost_store::columns!`, shared with the SQLite store.
use pawpost_domain::{
    Account, AccountId, Approval, AuditEntry, AuditRecord, Device, DeviceId, Household,
    HouseholdId, Member, Membership, Message, PairingClaimant, PendingPairing, Receipt, Session,
};
use pawpost_store::stored::{email, hash, parse, unsigned};
use pawpost_store::{EmailVerification, InvitationCount, PasswordReset, StoreError};
use sqlx::FromRow;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(FromRow)]
pub(crate) struct AccountRow {
    id: Uuid,
    email: String,
    display_name: String,
    password_hash: String,
    created_at: OffsetDateTime,
    locked: bool,
    email_verified_at: Option<OffsetDateTime>,
}

impl TryFrom<AccountRow> for Account {
    type Error = StoreError;
    fn try_from(r: AccountRow) -> Result<Self, StoreError> {
        Ok(Account {
            id: AccountId(r.id),
            email: email(&r.email)?,
            display_name: r.display_name,
            password_hash: r.password_hash,
            created_at: r.created_at,
            locked: r.locked,
            email_verified_at: r.email_verified_at,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct SessionRow {
    id: Uuid,
    account_id: Uuid,
    token_hash: Vec<u8>,
    csrf_token: String,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    client_address: String,
    user_agent: String,
}

impl TryFrom<SessionRow> for Session {
    type Error = StoreError;
    fn try_from(r: SessionRow) -> Result<Self, StoreError> {
        Ok(Session {
            id: r.id,
            account_id: AccountId(r.account_id),
            token_hash: hash(r.token_hash, "token_hash")?,
            csrf_token: r.csrf_token,
            created_at: r.created_at,
            expires_at: r.expires_at,
            client_address: r.client_address,
            user_agent: r.user_agent,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct PasswordResetRow {
    token_hash: Vec<u8>,
    account_id: Uuid,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
}

impl TryFrom<PasswordResetRow> for PasswordReset {
    type Error = StoreError;
    fn try_from(r: PasswordResetRow) -> Result<Self, StoreError> {
        Ok(PasswordReset {
            token_hash: hash(r.token_hash, "token_hash")?,
            account_id: AccountId(r.account_id),
            created_at: r.created_at,
            expires_at: r.expires_at,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct EmailVerificationRow {
    token_hash: Vec<u8>,
    account_id: Uuid,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
}

impl TryFrom<EmailVerificationRow> for EmailVerification {
    type Error = StoreError;
    fn try_from(r: EmailVerificationRow) -> Result<Self, StoreError> {
        Ok(EmailVerification {
            token_hash: hash(r.token_hash, "token_hash")?,
            account_id: AccountId(r.account_id),
            created_at: r.created_at,
            expires_at: r.expires_at,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct HouseholdRow {
    id: Uuid,
    name: String,
    created_at: OffsetDateTime,
}

impl TryFrom<HouseholdRow> for Household {
    type Error = StoreError;
    fn try_from(r: HouseholdRow) -> Result<Self, StoreError> {
        Ok(Household {
            id: HouseholdId(r.id),
            name: r.name,
            created_at: r.created_at,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct MembershipRow {
    household_id: Uuid,
    account_id: Uuid,
    role: String,
    status: String,
    joined_at: OffsetDateTime,
}

impl TryFrom<MembershipRow> for Membership {
    type Error = StoreError;
    fn try_from(r: MembershipRow) -> Result<Self, StoreError> {
        Ok(Membership {
            household_id: HouseholdId(r.household_id),
            account_id: AccountId(r.account_id),
            role: parse(&r.role, "role")?,
            status: parse(&r.status, "status")?,
            joined_at: r.joined_at,
        })
    }
}

/// A household joined with one membership in it (`households_of`).
#[derive(FromRow)]
pub(crate) struct HouseholdMembershipRow {
    #[sqlx(flatten)]
    household: HouseholdRow,
    #[sqlx(flatten)]
    membership: MembershipRow,
}

impl TryFrom<HouseholdMembershipRow> for (Household, Membership) {
    type Error = StoreError;
    fn try_from(r: HouseholdMembershipRow) -> Result<Self, StoreError> {
        Ok((r.household.try_into()?, r.membership.try_into()?))
    }
}

/// A membership with its account's name and address (`members`).
#[derive(FromRow)]
pub(crate) struct MemberRow {
    #[sqlx(flatten)]
    membership: MembershipRow,
    display_name: String,
    email: String,
}

impl TryFrom<MemberRow> for Member {
    type Error = StoreError;
    fn try_from(r: MemberRow) -> Result<Self, StoreError> {
        Ok(Member {
            membership: r.membership.try_into()?,
            display_name: r.display_name,
            email: email(&r.email)?,
        })
    }
}

/// Invitations lately created by an account and in a household (`recent_invitations`).
#[derive(FromRow)]
pub(crate) struct RecentInvitationsRow {
    by_account: i64,
    by_account_oldest: Option<OffsetDateTime>,
    in_household: i64,
    in_household_oldest: Option<OffsetDateTime>,
}

impl TryFrom<RecentInvitationsRow> for pawpost_store::RecentInvitations {
    type Error = StoreError;
    fn try_from(r: RecentInvitationsRow) -> Result<Self, StoreError> {
        Ok(pawpost_store::RecentInvitations {
            by_account: InvitationCount {
                count: unsigned(r.by_account, "by_account")?,
                oldest: r.by_account_oldest,
            },
            in_household: InvitationCount {
                count: unsigned(r.in_household, "in_household")?,
                oldest: r.in_household_oldest,
            },
        })
    }
}

/// What redeeming an invitation reads of it.
#[derive(FromRow)]
pub(crate) struct InvitationRow {
    pub household_id: Uuid,
    pub role: String,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
}

#[derive(FromRow)]
pub(crate) struct DeviceRow {
    id: Uuid,
    kind: String,
    account_id: Option<Uuid>,
    household_id: Option<Uuid>,
    identity: Vec<u8>,
    label: String,
    created_at: OffsetDateTime,
}

/// A device row with what its toy may have to catch up on, and one roster it lacks (if
/// any).
#[derive(FromRow)]
pub(crate) struct ArrivalRow {
    #[sqlx(flatten)]
    device: DeviceRow,
    newest_roster: Option<i64>,
    undelivered: bool,
    approvals_pending: bool,
    names_envelope: Option<Vec<u8>>,
    roster_version: Option<i64>,
    roster_signed: Option<Vec<u8>>,
    roster_created_at: Option<OffsetDateTime>,
}

/// The arrival read as `rows` (one per roster the toy lacks, or one without a roster).
pub(crate) fn arrival(rows: Vec<ArrivalRow>) -> Result<Option<pawpost_store::Arrival>, StoreError> {
    let mut rows = rows.into_iter();
    let Some(first) = rows.next() else {
        return Ok(None);
    };
    let device: Device = first.device.try_into()?;
    let newest_roster = first
        .newest_roster
        .map(|v| unsigned(v, "rosters.version"))
        .transpose()?;
    let (undelivered, approvals_pending) = (first.undelivered, first.approvals_pending);
    let names_envelope = first.names_envelope;
    let mut rosters = Vec::new();
    for r in std::iter::once((
        first.roster_version,
        first.roster_signed,
        first.roster_created_at,
    ))
    .chain(rows.map(|r| (r.roster_version, r.roster_signed, r.roster_created_at)))
    {
        if let (Some(version), Some(signed), Some(created_at), Some(household_id)) =
            (r.0, r.1, r.2, device.household_id)
        {
            rosters.push(pawpost_domain::StoredRoster {
                household_id,
                version: unsigned(version, "rosters.version")?,
                signed,
                created_at,
            });
        }
    }
    Ok(Some(pawpost_store::Arrival {
        device,
        newest_roster,
        rosters,
        undelivered,
        approvals_pending,
        names_envelope,
    }))
}

impl TryFrom<DeviceRow> for Device {
    type Error = StoreError;
    fn try_from(r: DeviceRow) -> Result<Self, StoreError> {
        Ok(Device {
            id: DeviceId(r.id),
            kind: parse(&r.kind, "kind")?,
            account_id: r.account_id.map(AccountId),
            household_id: r.household_id.map(HouseholdId),
            identity: r.identity,
            label: r.label,
            created_at: r.created_at,
        })
    }
}

/// A roster version of a household the caller names.
#[derive(FromRow)]
pub(crate) struct RosterRow {
    pub version: i64,
    pub signed: Vec<u8>,
    pub created_at: OffsetDateTime,
}

#[derive(FromRow)]
pub(crate) struct MessageRow {
    id: Uuid,
    household_id: Uuid,
    sender_device: Uuid,
    sender_account: Option<Uuid>,
    media_type: i16,
    duration_ms: i64,
    envelope_len: i64,
    created_at: OffsetDateTime,
    blob_key: String,
}

impl TryFrom<MessageRow> for Message {
    type Error = StoreError;
    fn try_from(r: MessageRow) -> Result<Self, StoreError> {
        Ok(Message {
            id: r.id,
            household_id: HouseholdId(r.household_id),
            sender_device: DeviceId(r.sender_device),
            sender_account: r.sender_account.map(AccountId),
            media_type: unsigned(i64::from(r.media_type), "media_type")?,
            duration_ms: unsigned(r.duration_ms, "duration_ms")?,
            envelope_len: unsigned(r.envelope_len, "envelope_len")?,
            created_at: r.created_at,
            blob_key: r.blob_key,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct ReceiptRow {
    device_id: Uuid,
    delivered_at: Option<OffsetDateTime>,
    played_at: Option<OffsetDateTime>,
    refused_at: Option<OffsetDateTime>,
    refusal: Option<String>,
}

impl TryFrom<ReceiptRow> for Receipt {
    type Error = StoreError;
    fn try_from(r: ReceiptRow) -> Result<Self, StoreError> {
        Ok(Receipt {
            device_id: DeviceId(r.device_id),
            delivered_at: r.delivered_at,
            played_at: r.played_at,
            refused_at: r.refused_at,
            refusal: r.refusal,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct ApprovalRow {
    message_id: Uuid,
    approver: Uuid,
    signature: Vec<u8>,
    created_at: OffsetDateTime,
}

impl TryFrom<ApprovalRow> for Approval {
    type Error = StoreError;
    fn try_from(r: ApprovalRow) -> Result<Self, StoreError> {
        Ok(Approval {
            message_id: r.message_id,
            approver: DeviceId(r.approver),
            signature: r.signature,
            created_at: r.created_at,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct PairingRow {
    code: String,
    device_id: Uuid,
    identity: Vec<u8>,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    household_id: Option<Uuid>,
    claimed_by: Option<Uuid>,
    confirmation: Option<String>,
    confirm_by: Option<OffsetDateTime>,
}

impl TryFrom<PairingRow> for PendingPairing {
    type Error = StoreError;
    fn try_from(r: PairingRow) -> Result<Self, StoreError> {
        let claim = match r.household_id {
            None => None,
            Some(household) => Some(PairingClaimant {
                household_id: HouseholdId(household),
                account_id: AccountId(r.claimed_by.ok_or(missing("claimed_by"))?),
                confirmation: r.confirmation.ok_or(missing("confirmation"))?,
                confirm_by: r.confirm_by.ok_or(missing("confirm_by"))?,
            }),
        };
        Ok(PendingPairing {
            code: r.code,
            device_id: DeviceId(r.device_id),
            identity: r.identity,
            created_at: r.created_at,
            expires_at: r.expires_at,
            claim,
        })
    }
}

/// A claimed pairing's column that its claim left empty.
fn missing(column: &str) -> StoreError {
    StoreError::Backend(format!("a claimed pairing has no {column}"))
}

#[derive(FromRow)]
pub(crate) struct AuditRow {
    seq: i64,
    at: OffsetDateTime,
    actor: Option<Uuid>,
    household: Option<Uuid>,
    action: String,
    target: Option<String>,
    client: Option<String>,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

impl TryFrom<AuditRow> for AuditEntry {
    type Error = StoreError;
    fn try_from(r: AuditRow) -> Result<Self, StoreError> {
        Ok(AuditEntry {
            seq: unsigned(r.seq, "seq")?,
            record: AuditRecord {
                at: r.at,
                actor: r.actor.map(AccountId),
                household: r.household.map(HouseholdId),
                action: r.action,
                target: r.target,
                client: r.client,
            },
            prev_hash: hash(r.prev_hash, "prev_hash")?,
            hash: hash(r.hash, "hash")?,
        })
    }
}

/// The chain's end, that the next entry links to.
#[derive(FromRow)]
pub(crate) struct AuditEndRow {
    seq: i64,
    hash: Vec<u8>,
}

impl TryFrom<AuditEndRow> for (u64, [u8; 32]) {
    type Error = StoreError;
    fn try_from(r: AuditEndRow) -> Result<Self, StoreError> {
        Ok((unsigned(r.seq, "seq")?, hash(r.hash, "hash")?))
    }
}
