//! Rows as SQLite keeps them (ids as text, times as milliseconds since the epoch, flags
//! as integers), each with its conversion into the domain type. The columns each reads
//! are listed by `pawpost_store::columns!`, shared with the PostgreSQL store.
use pawpost_domain::{
    Account, AccountId, Approval, AuditEntry, AuditRecord, Device, DeviceId, Household,
    HouseholdId, Member, Membership, Message, PairingClaimant, PendingPairing, Receipt, Session,
};
use pawpost_store::stored::{self, email, from_ms, hash, opt_from_ms, opt_uuid, parse, unsigned};
use pawpost_store::{EmailVerification, InvitationCount, PasswordReset, StoreError};
use sqlx::FromRow;

#[derive(FromRow)]
pub(crate) struct AccountRow {
    id: String,
    email: String,
    display_name: String,
    password_hash: String,
    created_at: i64,
    locked: i64,
    email_verified_at: Option<i64>,
}

impl TryFrom<AccountRow> for Account {
    type Error = StoreError;
    fn try_from(r: AccountRow) -> Result<Self, StoreError> {
        Ok(Account {
            id: AccountId(stored::uuid(&r.id, "id")?),
            email: email(&r.email)?,
            display_name: r.display_name,
            password_hash: r.password_hash,
            created_at: from_ms(r.created_at)?,
            locked: r.locked != 0,
            email_verified_at: opt_from_ms(r.email_verified_at)?,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct SessionRow {
    id: String,
    account_id: String,
    token_hash: Vec<u8>,
    csrf_token: String,
    created_at: i64,
    expires_at: i64,
    client_address: String,
    user_agent: String,
}

impl TryFrom<SessionRow> for Session {
    type Error = StoreError;
    fn try_from(r: SessionRow) -> Result<Self, StoreError> {
        Ok(Session {
            id: stored::uuid(&r.id, "id")?,
            account_id: AccountId(stored::uuid(&r.account_id, "account_id")?),
            token_hash: hash(r.token_hash, "token_hash")?,
            csrf_token: r.csrf_token,
            created_at: from_ms(r.created_at)?,
            expires_at: from_ms(r.expires_at)?,
            client_address: r.client_address,
            user_agent: r.user_agent,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct PasswordResetRow {
    token_hash: Vec<u8>,
    account_id: String,
    created_at: i64,
    expires_at: i64,
}

impl TryFrom<PasswordResetRow> for PasswordReset {
    type Error = StoreError;
    fn try_from(r: PasswordResetRow) -> Result<Self, StoreError> {
        Ok(PasswordReset {
            token_hash: hash(r.token_hash, "token_hash")?,
            account_id: AccountId(stored::uuid(&r.account_id, "account_id")?),
            created_at: from_ms(r.created_at)?,
            expires_at: from_ms(r.expires_at)?,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct EmailVerificationRow {
    token_hash: Vec<u8>,
    account_id: String,
    created_at: i64,
    expires_at: i64,
}

impl TryFrom<EmailVerificationRow> for EmailVerification {
    type Error = StoreError;
    fn try_from(r: EmailVerificationRow) -> Result<Self, StoreError> {
        Ok(EmailVerification {
            token_hash: hash(r.token_hash, "token_hash")?,
            account_id: AccountId(stored::uuid(&r.account_id, "account_id")?),
            created_at: from_ms(r.created_at)?,
            expires_at: from_ms(r.expires_at)?,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct HouseholdRow {
    id: String,
    name: String,
    created_at: i64,
}

impl TryFrom<HouseholdRow> for Household {
    type Error = StoreError;
    fn try_from(r: HouseholdRow) -> Result<Self, StoreError> {
        Ok(Household {
            id: HouseholdId(stored::uuid(&r.id, "id")?),
            name: r.name,
            created_at: from_ms(r.created_at)?,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct MembershipRow {
    household_id: String,
    account_id: String,
    role: String,
    status: String,
    joined_at: i64,
}

impl TryFrom<MembershipRow> for Membership {
    type Error = StoreError;
    fn try_from(r: MembershipRow) -> Result<Self, StoreError> {
        Ok(Membership {
            household_id: HouseholdId(stored::uuid(&r.household_id, "household_id")?),
            account_id: AccountId(stored::uuid(&r.account_id, "account_id")?),
            role: parse(&r.role, "role")?,
            status: parse(&r.status, "status")?,
            joined_at: from_ms(r.joined_at)?,
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

/// How many invitations, and the oldest's time (`recent_invitations`).
#[derive(FromRow)]
pub(crate) struct InvitationCountRow {
    n: i64,
    oldest: Option<i64>,
}

impl TryFrom<InvitationCountRow> for InvitationCount {
    type Error = StoreError;
    fn try_from(r: InvitationCountRow) -> Result<Self, StoreError> {
        Ok(InvitationCount {
            count: unsigned(r.n, "n")?,
            oldest: opt_from_ms(r.oldest)?,
        })
    }
}

/// What redeeming an invitation reads of it.
#[derive(FromRow)]
pub(crate) struct InvitationRow {
    pub household_id: String,
    pub role: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

#[derive(FromRow)]
pub(crate) struct DeviceRow {
    id: String,
    kind: String,
    account_id: Option<String>,
    household_id: Option<String>,
    identity: Vec<u8>,
    label: String,
    created_at: i64,
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
    roster_created_at: Option<i64>,
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
                created_at: from_ms(created_at)?,
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
            id: DeviceId(stored::uuid(&r.id, "id")?),
            kind: parse(&r.kind, "kind")?,
            account_id: opt_uuid(r.account_id.as_deref(), "account_id")?.map(AccountId),
            household_id: opt_uuid(r.household_id.as_deref(), "household_id")?.map(HouseholdId),
            identity: r.identity,
            label: r.label,
            created_at: from_ms(r.created_at)?,
        })
    }
}

/// A roster version of a household the caller names.
#[derive(FromRow)]
pub(crate) struct RosterRow {
    pub version: i64,
    pub signed: Vec<u8>,
    pub created_at: i64,
}

#[derive(FromRow)]
pub(crate) struct MessageRow {
    id: String,
    household_id: String,
    sender_device: String,
    sender_account: Option<String>,
    media_type: i64,
    duration_ms: i64,
    envelope_len: i64,
    created_at: i64,
    blob_key: String,
}

impl TryFrom<MessageRow> for Message {
    type Error = StoreError;
    fn try_from(r: MessageRow) -> Result<Self, StoreError> {
        Ok(Message {
            id: stored::uuid(&r.id, "id")?,
            household_id: HouseholdId(stored::uuid(&r.household_id, "household_id")?),
            sender_device: DeviceId(stored::uuid(&r.sender_device, "sender_device")?),
            sender_account: opt_uuid(r.sender_account.as_deref(), "sender_account")?.map(AccountId),
            media_type: unsigned(r.media_type, "media_type")?,
            duration_ms: unsigned(r.duration_ms, "duration_ms")?,
            envelope_len: unsigned(r.envelope_len, "envelope_len")?,
            created_at: from_ms(r.created_at)?,
            blob_key: r.blob_key,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct ReceiptRow {
    device_id: String,
    delivered_at: Option<i64>,
    played_at: Option<i64>,
    refused_at: Option<i64>,
    refusal: Option<String>,
}

impl TryFrom<ReceiptRow> for Receipt {
    type Error = StoreError;
    fn try_from(r: ReceiptRow) -> Result<Self, StoreError> {
        Ok(Receipt {
            device_id: DeviceId(stored::uuid(&r.device_id, "device_id")?),
            delivered_at: opt_from_ms(r.delivered_at)?,
            played_at: opt_from_ms(r.played_at)?,
            refused_at: opt_from_ms(r.refused_at)?,
            refusal: r.refusal,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct ApprovalRow {
    message_id: String,
    approver: String,
    signature: Vec<u8>,
    created_at: i64,
}

impl TryFrom<ApprovalRow> for Approval {
    type Error = StoreError;
    fn try_from(r: ApprovalRow) -> Result<Self, StoreError> {
        Ok(Approval {
            message_id: stored::uuid(&r.message_id, "message_id")?,
            approver: DeviceId(stored::uuid(&r.approver, "approver")?),
            signature: r.signature,
            created_at: from_ms(r.created_at)?,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct PairingRow {
    code: String,
    device_id: String,
    identity: Vec<u8>,
    created_at: i64,
    expires_at: i64,
    household_id: Option<String>,
    claimed_by: Option<String>,
    confirmation: Option<String>,
    confirm_by: Option<i64>,
}

impl TryFrom<PairingRow> for PendingPairing {
    type Error = StoreError;
    fn try_from(r: PairingRow) -> Result<Self, StoreError> {
        let claim = match r.household_id {
            None => None,
            Some(household) => Some(PairingClaimant {
                household_id: HouseholdId(stored::uuid(&household, "household_id")?),
                account_id: AccountId(stored::uuid(
                    r.claimed_by.as_deref().unwrap_or_default(),
                    "claimed_by",
                )?),
                confirmation: r.confirmation.ok_or(missing("confirmation"))?,
                confirm_by: from_ms(r.confirm_by.ok_or(missing("confirm_by"))?)?,
            }),
        };
        Ok(PendingPairing {
            code: r.code,
            device_id: DeviceId(stored::uuid(&r.device_id, "device_id")?),
            identity: r.identity,
            created_at: from_ms(r.created_at)?,
            expires_at: from_ms(r.expires_at)?,
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
    at: i64,
    actor: Option<String>,
    household: Option<String>,
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
                at: from_ms(r.at)?,
                actor: opt_uuid(r.actor.as_deref(), "actor")?.map(AccountId),
                household: opt_uuid(r.household.as_deref(), "household")?.map(HouseholdId),
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
