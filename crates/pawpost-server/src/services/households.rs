//! Households, their members and invitations. Every action checks membership first: a
//! household one does not belong to is [`MembershipError::NotAMember`], exactly like one
//! that does not exist.
use super::{clean_name, MembershipError, NameError};
use crate::audit::{record, AuditAction, Event};
use crate::config::{
    INVITATIONS_PER_ACCOUNT_PER_DAY, INVITATIONS_PER_HOUSEHOLD_PER_DAY, INVITATION_TTL,
    INVITATION_WINDOW,
};
use crate::events::{publish as live, Announcement, Change};
use crate::state::AppState;
use crate::tokens::{new_token, token_hash};
use pawpost_domain::{
    Account, AccountId, AuditEntry, Email, EmailError, Household, HouseholdId, Invitation,
    InvitationId, Member, MemberStatus, Membership, Role,
};
use pawpost_store::{Redemption, StoreError};
use std::time::Duration;
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
pub enum HouseholdError {
    #[error(transparent)]
    Membership(#[from] MembershipError),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    InvalidEmail(#[from] EmailError),
    /// `household` or `member`.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("only an owner or guardian of the household may do this")]
    NotAParent,
    #[error("a {mine} cannot invite a new {role}")]
    CannotInvite { mine: Role, role: Role },
    #[error("a {mine} cannot make someone a {role}")]
    CannotGrant { mine: Role, role: Role },
    #[error(
        "{who} {limit} invitations in the last 24 hours, the most allowed; \
         share a link you already made, or try again later"
    )]
    InvitationsThrottled {
        who: &'static str,
        limit: u32,
        retry: Duration,
    },
    #[error(
        "no invitation matches this link; check that it was copied whole, or ask for a new one"
    )]
    InvitationUnknown,
    #[error("this invitation was already used or has expired; ask the parent for a new one")]
    InvitationSpent,
    #[error("you already belong to this household")]
    AlreadyMember,
    #[error("a parent of this household has blocked this account; only they can lift the block")]
    BlockedHere,
    #[error("you cannot change your own membership this way; ask another parent")]
    OwnMembership,
    #[error("a {mine} cannot change a {theirs}")]
    NotAllowed { mine: Role, theirs: Role },
    #[error("this member is {current}, so they cannot become {to} this way")]
    WrongStatus {
        current: MemberStatus,
        to: MemberStatus,
    },
    #[error("a household needs an approved owner: make someone else an owner first")]
    LastOwner,
    #[error("only an owner deletes a household")]
    NotAnOwner,
    /// A toy's goodbye in a household's deletion was refused.
    #[error(transparent)]
    Leave(#[from] super::toys::ToyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type HouseholdResult<T> = Result<T, HouseholdError>;

/// The caller's approved membership, or why there is none.
pub async fn active_membership(
    state: &AppState,
    household: HouseholdId,
    account: AccountId,
) -> Result<Membership, MembershipError> {
    let membership = state
        .store
        .membership(household, account)
        .await?
        .ok_or(MembershipError::NotAMember)?;
    match membership.status {
        MemberStatus::Approved => Ok(membership),
        MemberStatus::Pending => Err(MembershipError::Pending),
        MemberStatus::Blocked => Err(MembershipError::Blocked),
    }
}

/// The caller's approved membership as an owner or guardian.
pub async fn managing_membership(
    state: &AppState,
    household: HouseholdId,
    account: AccountId,
) -> HouseholdResult<Membership> {
    let membership = active_membership(state, household, account).await?;
    if !membership.manages() {
        return Err(HouseholdError::NotAParent);
    }
    Ok(membership)
}

async fn household(state: &AppState, id: HouseholdId) -> HouseholdResult<Household> {
    state
        .store
        .household(id)
        .await?
        .ok_or(HouseholdError::NotFound("household"))
}

/// Creates a household; `owner` becomes its owner.
pub async fn create(
    state: &AppState,
    owner: AccountId,
    name: &str,
) -> HouseholdResult<(Household, Membership)> {
    let household = Household {
        id: HouseholdId::new(),
        name: clean_name(name, "name")?,
        created_at: OffsetDateTime::now_utc(),
    };
    state.store.create_household(&household, owner).await?;
    record(
        state,
        Event::new(AuditAction::HouseholdCreated)
            .by(owner)
            .in_household(household.id),
    )
    .await;
    let membership = Membership {
        household_id: household.id,
        account_id: owner,
        role: Role::Owner,
        status: MemberStatus::Approved,
        joined_at: household.created_at,
    };
    Ok((household, membership))
}

/// The households `account` belongs to, including pending and blocked ones.
pub async fn list(
    state: &AppState,
    account: AccountId,
) -> HouseholdResult<Vec<(Household, Membership)>> {
    Ok(state.store.households_of(account).await?)
}

/// One household, as its approved member `account` sees it.
pub async fn get(
    state: &AppState,
    id: HouseholdId,
    account: AccountId,
) -> HouseholdResult<(Household, Membership)> {
    let membership = active_membership(state, id, account).await?;
    Ok((household(state, id).await?, membership))
}

/// Renames a household (owner or guardian).
pub async fn rename(
    state: &AppState,
    id: HouseholdId,
    account: AccountId,
    name: &str,
) -> HouseholdResult<(Household, Membership)> {
    let membership = managing_membership(state, id, account).await?;
    let name = clean_name(name, "name")?;
    state.store.rename_household(id, &name).await?;
    record(
        state,
        Event::new(AuditAction::HouseholdRenamed)
            .by(account)
            .in_household(id),
    )
    .await;
    live(state, Change::household(id)).await;
    Ok((household(state, id).await?, membership))
}

/// The members of a household, and the caller's own membership.
pub async fn members(
    state: &AppState,
    id: HouseholdId,
    account: AccountId,
) -> HouseholdResult<(Membership, Vec<Member>)> {
    let me = active_membership(state, id, account).await?;
    let mut members = state.store.members(id).await?;
    // Who waits for approval and who was blocked is the parents' business: relatives see
    // the approved members (and themselves).
    if !me.manages() {
        members.retain(|m| {
            m.membership.status == MemberStatus::Approved || m.membership.account_id == account
        });
    }
    Ok((me, members))
}

/// Refuses a new invitation once the account (in all its households) or the household
/// (by all its parents) made their daily number, so that the server cannot be used to
/// mail strangers. Counted in the store, so the limits hold across server processes.
async fn check_invitation_limits(
    state: &AppState,
    household: HouseholdId,
    account: AccountId,
    now: OffsetDateTime,
) -> HouseholdResult<()> {
    let since = now - INVITATION_WINDOW;
    let recent = state
        .store
        .recent_invitations(household, account, since)
        .await?;
    let over = [
        (
            recent.by_account,
            INVITATIONS_PER_ACCOUNT_PER_DAY,
            "you have created",
        ),
        (
            recent.in_household,
            INVITATIONS_PER_HOUSEHOLD_PER_DAY,
            "this household's parents have created",
        ),
    ]
    .into_iter()
    .find(|(count, limit, _)| count.count >= u64::from(*limit));
    let Some((count, limit, who)) = over else {
        return Ok(());
    };
    // A slot frees when the oldest invitation in the window leaves it.
    let frees_at = count.oldest.unwrap_or(now) + INVITATION_WINDOW;
    let retry = Duration::try_from(frees_at - now)
        .unwrap_or_default()
        .max(Duration::from_secs(1));
    Err(HouseholdError::InvitationsThrottled { who, limit, retry })
}

/// A name someone typed, quoted so that a mail never presents it as the server's words.
fn quoted(name: &str) -> String {
    format!(
        "\u{201c}{}\u{201d}",
        name.replace(['\u{201c}', '\u{201d}'], "\"")
    )
}

/// A new invitation, with the token and link shown once.
pub struct NewInvitation {
    pub invitation: Invitation,
    pub token: String,
    pub url: String,
}

/// Invites someone (owner or guardian) as `role`, and mails the link to `email` if
/// given. The link is single use and expires after [`INVITATION_TTL`].
pub async fn invite(
    state: &AppState,
    inviter: &Account,
    household_id: HouseholdId,
    role: Role,
    email: Option<&str>,
) -> HouseholdResult<NewInvitation> {
    let me = managing_membership(state, household_id, inviter.id).await?;
    if !me.role.may_grant(role) {
        return Err(HouseholdError::CannotInvite {
            mine: me.role,
            role,
        });
    }
    let to = email.map(Email::parse).transpose()?;
    let now = OffsetDateTime::now_utc();
    check_invitation_limits(state, household_id, inviter.id, now).await?;
    let token = new_token();
    let invitation = Invitation {
        id: InvitationId::new(),
        household_id,
        token_hash: token_hash(&token),
        role,
        created_by: inviter.id,
        created_at: now,
        expires_at: now + INVITATION_TTL,
    };
    state.store.create_invitation(&invitation).await?;
    record(
        state,
        Event::new(AuditAction::InvitationCreated)
            .by(inviter.id)
            .in_household(household_id)
            .on(role),
    )
    .await;
    let url = format!("{}/join#{token}", &*state.public_url);
    if let Some(to) = to {
        // Every name in the mail is one somebody typed: each is quoted, and none opens
        // the subject or the text, so the mail cannot be made to read as someone's advert.
        let household = household(state, household_id).await?;
        crate::notify::invitation(
            state,
            household_id,
            to.clone(),
            crate::mail::Mail {
                to: to.to_string(),
                subject: format!("Invitation to join {} on pawpost", quoted(&household.name)),
                body: format!(
                    "You are invited to join the household {} on pawpost, to send voice \
                     messages to a child's toy. The invitation comes from the account named {}.\n\n\
                     Open this link to join (it works once and expires in 7 days):\n{url}\n\n\
                     A parent approves you before you can send anything. If you do not know \
                     this family, ignore this mail.\n",
                    quoted(&household.name),
                    quoted(&inviter.display_name)
                ),
            },
        );
    }
    Ok(NewInvitation {
        invitation,
        token,
        url,
    })
}

/// Accepts an invitation: `account` becomes a pending member until a parent approves.
pub async fn accept(
    state: &AppState,
    account: AccountId,
    token: &str,
) -> HouseholdResult<(Household, Membership)> {
    let hash = token_hash(token.trim());
    match state
        .store
        .redeem_invitation(&hash, account, OffsetDateTime::now_utc())
        .await?
    {
        Redemption::Joined(membership) => {
            record(
                state,
                Event::new(AuditAction::InvitationAccepted)
                    .by(account)
                    .in_household(membership.household_id),
            )
            .await;
            crate::notify::approval_waiting(state, membership.household_id, account);
            live(state, Change::member(membership.household_id, account)).await;
            Ok((household(state, membership.household_id).await?, membership))
        }
        Redemption::Unknown => Err(HouseholdError::InvitationUnknown),
        Redemption::Spent => Err(HouseholdError::InvitationSpent),
        Redemption::AlreadyMember(_) => Err(HouseholdError::AlreadyMember),
        // The caller knows already: they were shown the block before leaving. Whoever
        // holds the link learns nothing more, and the invitation stays usable by the
        // relative it was meant for.
        Redemption::Blocked(_) => Err(HouseholdError::BlockedHere),
    }
}

/// The target member, if the caller may act on them.
async fn target_member(
    state: &AppState,
    me: &Membership,
    household: HouseholdId,
    target: AccountId,
) -> HouseholdResult<Membership> {
    let member = state
        .store
        .membership(household, target)
        .await?
        .ok_or(HouseholdError::NotFound("member"))?;
    if member.account_id == me.account_id {
        return Err(HouseholdError::OwnMembership);
    }
    if !me.role.may_act_on(member.role) {
        return Err(HouseholdError::NotAllowed {
            mine: me.role,
            theirs: member.role,
        });
    }
    Ok(member)
}

/// A parent's decision about a member's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    /// A pending member may send.
    Approve,
    /// A pending or approved member can send nothing.
    Block,
    /// A blocked member is approved again.
    Unblock,
}

impl StatusChange {
    fn transition(self) -> (&'static [MemberStatus], MemberStatus) {
        match self {
            StatusChange::Approve => (&[MemberStatus::Pending], MemberStatus::Approved),
            StatusChange::Block => (
                &[MemberStatus::Pending, MemberStatus::Approved],
                MemberStatus::Blocked,
            ),
            StatusChange::Unblock => (&[MemberStatus::Blocked], MemberStatus::Approved),
        }
    }
}

/// Changes a member's standing (owner or guardian).
pub async fn set_status(
    state: &AppState,
    actor: AccountId,
    household_id: HouseholdId,
    account_id: AccountId,
    change: StatusChange,
) -> HouseholdResult<()> {
    let (from, to) = change.transition();
    let me = managing_membership(state, household_id, actor).await?;
    let member = target_member(state, &me, household_id, account_id).await?;
    if member.status == to {
        return Ok(());
    }
    if !from.contains(&member.status) {
        return Err(HouseholdError::WrongStatus {
            current: member.status,
            to,
        });
    }
    if member.role == Role::Owner && to != MemberStatus::Approved {
        ensure_another_owner(state, household_id, account_id).await?;
    }
    state
        .store
        .update_member(household_id, account_id, member.role, to)
        .await?;
    tracing::info!(household = %household_id, member = %account_id, by = %actor, status = %to, "member status changed");
    let action = match to {
        MemberStatus::Approved if member.status == MemberStatus::Blocked => {
            AuditAction::MemberUnblocked
        }
        MemberStatus::Approved => AuditAction::MemberApproved,
        MemberStatus::Blocked => AuditAction::MemberBlocked,
        MemberStatus::Pending => AuditAction::MemberPending,
    };
    record(
        state,
        Event::new(action)
            .by(actor)
            .in_household(household_id)
            .on(account_id),
    )
    .await;
    if action == AuditAction::MemberApproved {
        crate::notify::approved(state, household_id, account_id);
    }
    live(state, Change::member(household_id, account_id)).await;
    Ok(())
}

async fn ensure_another_owner(
    state: &AppState,
    household: HouseholdId,
    leaving: AccountId,
) -> HouseholdResult<()> {
    let members = state.store.members(household).await?;
    let others = members.iter().any(|m| {
        m.membership.account_id != leaving
            && m.membership.role == Role::Owner
            && m.membership.status == MemberStatus::Approved
    });
    if others {
        Ok(())
    } else {
        Err(HouseholdError::LastOwner)
    }
}

/// Changes a member's role (owner or guardian; guardians cannot touch or create owners).
pub async fn change_role(
    state: &AppState,
    actor: AccountId,
    household_id: HouseholdId,
    account_id: AccountId,
    role: Role,
) -> HouseholdResult<()> {
    let me = managing_membership(state, household_id, actor).await?;
    let member = target_member(state, &me, household_id, account_id).await?;
    if !me.role.may_grant(role) {
        return Err(HouseholdError::CannotGrant {
            mine: me.role,
            role,
        });
    }
    if member.role == Role::Owner && role != Role::Owner {
        ensure_another_owner(state, household_id, account_id).await?;
    }
    state
        .store
        .update_member(household_id, account_id, role, member.status)
        .await?;
    record(
        state,
        Event::new(AuditAction::MemberRoleChanged)
            .by(actor)
            .in_household(household_id)
            .on(format!("{account_id}:{role}")),
    )
    .await;
    live(state, Change::member(household_id, account_id)).await;
    Ok(())
}

/// Removes a member (owner or guardian), or lets a member leave (themselves). A blocked
/// member stays blocked: only unblocking lifts it.
pub async fn remove(
    state: &AppState,
    actor: AccountId,
    household_id: HouseholdId,
    account_id: AccountId,
) -> HouseholdResult<()> {
    let member = if account_id == actor {
        state
            .store
            .membership(household_id, account_id)
            .await?
            .ok_or(MembershipError::NotAMember)?
    } else {
        let me = managing_membership(state, household_id, actor).await?;
        target_member(state, &me, household_id, account_id).await?
    };
    if member.role == Role::Owner {
        ensure_another_owner(state, household_id, account_id).await?;
    }
    state.store.remove_member(household_id, account_id).await?;
    tracing::info!(household = %household_id, member = %account_id, by = %actor, "member removed");
    record(
        state,
        Event::new(AuditAction::MemberRemoved)
            .by(actor)
            .in_household(household_id)
            .on(account_id),
    )
    .await;
    live(state, Change::member(household_id, account_id)).await;
    Ok(())
}

/// The household's audit trail, newest first (approved members), and whether the caller
/// is a parent (who sees client addresses).
pub async fn audit_trail(
    state: &AppState,
    household_id: HouseholdId,
    account: AccountId,
) -> HouseholdResult<(Vec<AuditEntry>, bool)> {
    let me = active_membership(state, household_id, account).await?;
    let mut entries = state
        .store
        .household_audit(household_id, crate::audit::TRAIL_LIMIT)
        .await?;
    // Who was blocked, unblocked or put back to waiting is the parents' business, as on
    // the members list: relatives do not see those entries.
    if !me.manages() {
        entries.retain(|e| !parents_only(&e.record.action));
    }
    Ok((entries, me.manages()))
}

/// Trail entries only parents see.
fn parents_only(action: &str) -> bool {
    [
        AuditAction::MemberBlocked,
        AuditAction::MemberUnblocked,
        AuditAction::MemberPending,
    ]
    .iter()
    .any(|a| a.as_str() == action)
}

/// Deletes a household (owners only): members' places, invitations, rosters, every
/// message and its blob. Each toy with an owner device's signed goodbye in `leave` (all
/// checked before anything is deleted) gets it now or when it next connects, forgets the
/// household and can be paired again; a toy without one is unpaired on the server only
/// and can no longer connect until it is reset.
pub async fn delete(
    state: &AppState,
    household_id: HouseholdId,
    account: AccountId,
    leave: &[super::toys::ToyLeave],
) -> HouseholdResult<()> {
    let me = active_membership(state, household_id, account).await?;
    if me.role != Role::Owner {
        return Err(HouseholdError::NotAnOwner);
    }
    let mut farewells = Vec::with_capacity(leave.len());
    for entry in leave {
        let toy = super::toys::toy_of(state, household_id, entry.toy_device_id).await?;
        farewells.push(super::toys::verified_farewell(state, household_id, &toy, entry).await?);
    }
    // Kept first: they outlive the household, and a toy is told only once its device is
    // gone (while it is there, its keys authenticate as before).
    for farewell in &farewells {
        state.store.put_farewell(farewell).await?;
    }
    let gone = Announcement::prepare(state, Change::household(household_id)).await;
    let keys = state.store.delete_household(household_id).await?;
    gone.send(state);
    super::toys::said_goodbye(state, &farewells).await;
    crate::retention::delete_blobs(state, &keys).await;
    state.mailer.forget_household(household_id.0).await;
    tracing::info!(household = %household_id, by = %account, messages = keys.len(), "household deleted");
    record(
        state,
        Event::new(AuditAction::HouseholdDeleted)
            .by(account)
            .in_household(household_id),
    )
    .await;
    Ok(())
}
