//! Households, their members and invitations. Every route checks membership first: a
//! household one does not belong to answers 404, exactly like one that does not exist.
use super::{clean_name, rfc3339};
use crate::audit::{record, Event};
use crate::auth::{new_token, token_hash, Auth};
use crate::config::INVITATION_TTL;
use crate::error::{ApiError, ApiResult, ErrorBody, Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use pawpost_domain::{
    AccountId, Household, HouseholdId, Invitation, InvitationId, MemberStatus, Membership, Role,
};
use pawpost_store::Redemption;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub const TAG: &str = "households";

/// A household as one of its members sees it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct HouseholdView {
    pub id: HouseholdId,
    pub name: String,
    pub created_at: String,
    /// The caller's role here.
    pub role: Role,
    /// The caller's standing here.
    pub status: MemberStatus,
}

fn household_view(h: &Household, m: &Membership) -> HouseholdView {
    HouseholdView {
        id: h.id,
        name: h.name.clone(),
        created_at: rfc3339(h.created_at),
        role: m.role,
        status: m.status,
    }
}

/// The caller's approved membership, or the answer that explains why there is none.
pub async fn active_membership(
    state: &AppState,
    household: HouseholdId,
    account: AccountId,
) -> ApiResult<Membership> {
    let membership = state
        .store
        .membership(household, account)
        .await?
        .ok_or_else(|| ApiError::not_found("household"))?;
    match membership.status {
        MemberStatus::Approved => Ok(membership),
        MemberStatus::Pending => Err(ApiError::forbidden(
            "pending_approval",
            "a parent of this household has not approved you yet; ask them to approve you",
        )),
        MemberStatus::Blocked => Err(ApiError::forbidden(
            "blocked",
            "a parent of this household has blocked you",
        )),
    }
}

async fn managing_membership(
    state: &AppState,
    household: HouseholdId,
    account: AccountId,
) -> ApiResult<Membership> {
    let membership = active_membership(state, household, account).await?;
    if !membership.manages() {
        return Err(ApiError::forbidden(
            "not_a_parent",
            "only an owner or guardian of the household may do this",
        ));
    }
    Ok(membership)
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct HouseholdName {
    pub name: String,
}

/// Create a household; the caller becomes its owner.
#[utoipa::path(post, path = "/api/v1/households", tag = TAG, request_body = HouseholdName,
    responses((status = 201, body = HouseholdView), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<HouseholdName>,
) -> ApiResult<(StatusCode, Json<HouseholdView>)> {
    let household = Household {
        id: HouseholdId::new(),
        name: clean_name(&body.name, "name")?,
        created_at: OffsetDateTime::now_utc(),
    };
    state
        .store
        .create_household(&household, auth.account.id)
        .await?;
    record(
        &state,
        Event::new("household_created")
            .by(auth.account.id)
            .in_household(household.id),
    )
    .await;
    let membership = Membership {
        household_id: household.id,
        account_id: auth.account.id,
        role: Role::Owner,
        status: MemberStatus::Approved,
        joined_at: household.created_at,
    };
    Ok((
        StatusCode::CREATED,
        Json(household_view(&household, &membership)),
    ))
}

/// The households the caller belongs to, including pending and blocked ones.
#[utoipa::path(get, path = "/api/v1/households", tag = TAG,
    responses((status = 200, body = [HouseholdView]), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Vec<HouseholdView>>> {
    let mine = state.store.households_of(auth.account.id).await?;
    Ok(Json(
        mine.iter().map(|(h, m)| household_view(h, m)).collect(),
    ))
}

/// One household.
#[utoipa::path(get, path = "/api/v1/households/{household_id}", tag = TAG,
    params(("household_id" = String, Path, format = Uuid)),
    responses((status = 200, body = HouseholdView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    auth: Auth,
    Path(household_id): Path<HouseholdId>,
) -> ApiResult<Json<HouseholdView>> {
    let membership = active_membership(&state, household_id, auth.account.id).await?;
    let household = state
        .store
        .household(household_id)
        .await?
        .ok_or_else(|| ApiError::not_found("household"))?;
    Ok(Json(household_view(&household, &membership)))
}

/// Rename a household (owner or guardian).
#[utoipa::path(patch, path = "/api/v1/households/{household_id}", tag = TAG, request_body = HouseholdName,
    params(("household_id" = String, Path, format = Uuid)),
    responses((status = 200, body = HouseholdView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn rename(
    State(state): State<AppState>,
    auth: Auth,
    Path(household_id): Path<HouseholdId>,
    Json(body): Json<HouseholdName>,
) -> ApiResult<Json<HouseholdView>> {
    let membership = managing_membership(&state, household_id, auth.account.id).await?;
    let name = clean_name(&body.name, "name")?;
    state.store.rename_household(household_id, &name).await?;
    record(
        &state,
        Event::new("household_renamed")
            .by(auth.account.id)
            .in_household(household_id),
    )
    .await;
    let household = state
        .store
        .household(household_id)
        .await?
        .ok_or_else(|| ApiError::not_found("household"))?;
    Ok(Json(household_view(&household, &membership)))
}

/// A member as the household sees them.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MemberView {
    pub account_id: AccountId,
    pub display_name: String,
    /// Shown to owners and guardians only.
    pub email: Option<String>,
    pub role: Role,
    pub status: MemberStatus,
    pub joined_at: String,
}

/// The members of a household.
#[utoipa::path(get, path = "/api/v1/households/{household_id}/members", tag = TAG,
    params(("household_id" = String, Path, format = Uuid)),
    responses((status = 200, body = [MemberView]), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn members(
    State(state): State<AppState>,
    auth: Auth,
    Path(household_id): Path<HouseholdId>,
) -> ApiResult<Json<Vec<MemberView>>> {
    let me = active_membership(&state, household_id, auth.account.id).await?;
    let members = state.store.members(household_id).await?;
    Ok(Json(
        members
            .into_iter()
            .map(|m| MemberView {
                account_id: m.membership.account_id,
                display_name: m.display_name,
                email: me.manages().then(|| m.email.to_string()),
                role: m.membership.role,
                status: m.membership.status,
                joined_at: rfc3339(m.membership.joined_at),
            })
            .collect(),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewInvitation {
    /// The role the invited person will have once approved; `family` when omitted.
    pub role: Option<Role>,
    /// Also email the link to this address.
    pub email: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct InvitationView {
    pub id: InvitationId,
    /// Single use. Shown once; only its hash is stored.
    pub token: String,
    /// A link to share; the token travels in the fragment, which browsers never send.
    pub url: String,
    pub role: Role,
    pub expires_at: String,
}

/// Invite someone (owner or guardian). The link is single use and expires in 7 days.
#[utoipa::path(post, path = "/api/v1/households/{household_id}/invitations", tag = TAG,
    request_body = NewInvitation,
    params(("household_id" = String, Path, format = Uuid)),
    responses((status = 201, body = InvitationView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn invite(
    State(state): State<AppState>,
    auth: Auth,
    Path(household_id): Path<HouseholdId>,
    Json(body): Json<NewInvitation>,
) -> ApiResult<(StatusCode, Json<InvitationView>)> {
    let me = managing_membership(&state, household_id, auth.account.id).await?;
    let role = body.role.unwrap_or(Role::Family);
    if !me.role.may_grant(role) {
        return Err(ApiError::forbidden(
            "role_not_grantable",
            format!("a {} cannot invite a new {role}", me.role),
        ));
    }
    let token = new_token();
    let now = OffsetDateTime::now_utc();
    let invitation = Invitation {
        id: InvitationId::new(),
        household_id,
        token_hash: token_hash(&token),
        role,
        created_by: auth.account.id,
        created_at: now,
        expires_at: now + INVITATION_TTL,
    };
    state.store.create_invitation(&invitation).await?;
    record(
        &state,
        Event::new("invitation_created")
            .by(auth.account.id)
            .in_household(household_id)
            .on(role),
    )
    .await;
    let url = format!("{}/join#{token}", &*state.public_url);
    if let Some(address) = &body.email {
        let to = crate::routes::accounts::parse_email(address)?;
        crate::mail::send_later(
            &state.mailer,
            crate::mail::Mail {
                to: to.to_string(),
                subject: format!(
                    "{} invites you to their family on pawpost",
                    auth.account.display_name
                ),
                body: format!(
                    "{} invites you to send voice messages to their child's toy with pawpost.\n\n\
                     Open this link to join (it works once and expires in 7 days):\n{url}\n\n\
                     A parent approves you before you can send anything.\n",
                    auth.account.display_name
                ),
            },
        );
    }
    Ok((
        StatusCode::CREATED,
        Json(InvitationView {
            id: invitation.id,
            token,
            url,
            role,
            expires_at: rfc3339(invitation.expires_at),
        }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct AcceptInvitation {
    pub token: String,
}

/// Accept an invitation: the caller becomes a pending member until a parent approves.
#[utoipa::path(post, path = "/api/v1/invitations/accept", tag = TAG, request_body = AcceptInvitation,
    responses(
        (status = 200, description = "Joined as a pending member", body = HouseholdView),
        (status = 404, description = "No invitation has this token", body = ErrorBody),
        (status = 409, description = "Already a member", body = ErrorBody),
        (status = 410, description = "Used or expired", body = ErrorBody),
    ))]
pub async fn accept(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<AcceptInvitation>,
) -> ApiResult<Json<HouseholdView>> {
    let hash = token_hash(body.token.trim());
    match state
        .store
        .redeem_invitation(&hash, auth.account.id, OffsetDateTime::now_utc())
        .await?
    {
        Redemption::Joined(membership) => {
            record(
                &state,
                Event::new("invitation_accepted")
                    .by(auth.account.id)
                    .in_household(membership.household_id),
            )
            .await;
            let household = state
                .store
                .household(membership.household_id)
                .await?
                .ok_or_else(|| ApiError::not_found("household"))?;
            Ok(Json(household_view(&household, &membership)))
        }
        Redemption::Unknown => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "invitation_unknown",
            "no invitation matches this link; check that it was copied whole, or ask for a new one",
        )),
        Redemption::Spent => Err(ApiError::new(
            StatusCode::GONE,
            "invitation_spent",
            "this invitation was already used or has expired; ask the parent for a new one",
        )),
        Redemption::AlreadyMember(_) => Err(ApiError::conflict(
            "already_member",
            "you already belong to this household",
        )),
    }
}

/// The target member, if the caller may act on them.
async fn target_member(
    state: &AppState,
    me: &Membership,
    household: HouseholdId,
    target: AccountId,
) -> ApiResult<Membership> {
    let member = state
        .store
        .membership(household, target)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    if member.account_id == me.account_id {
        return Err(ApiError::conflict(
            "self",
            "you cannot change your own membership this way; ask another parent",
        ));
    }
    if !me.role.may_act_on(member.role) {
        return Err(ApiError::forbidden(
            "not_allowed",
            format!("a {} cannot change a {}", me.role, member.role),
        ));
    }
    Ok(member)
}

async fn set_status(
    state: &AppState,
    auth: &Auth,
    household_id: HouseholdId,
    account_id: AccountId,
    from: &[MemberStatus],
    to: MemberStatus,
) -> ApiResult<StatusCode> {
    let me = managing_membership(state, household_id, auth.account.id).await?;
    let member = target_member(state, &me, household_id, account_id).await?;
    if member.status == to {
        return Ok(StatusCode::NO_CONTENT);
    }
    if !from.contains(&member.status) {
        return Err(ApiError::conflict(
            "wrong_status",
            format!(
                "this member is {}, so they cannot become {to} this way",
                member.status
            ),
        ));
    }
    if member.role == Role::Owner && to != MemberStatus::Approved {
        ensure_another_owner(state, household_id, account_id).await?;
    }
    state
        .store
        .update_member(household_id, account_id, member.role, to)
        .await?;
    tracing::info!(household = %household_id, member = %account_id, by = %auth.account.id, status = %to, "member status changed");
    let action = match to {
        MemberStatus::Approved if member.status == MemberStatus::Blocked => "member_unblocked",
        MemberStatus::Approved => "member_approved",
        MemberStatus::Blocked => "member_blocked",
        MemberStatus::Pending => "member_pending",
    };
    record(
        state,
        Event::new(action)
            .by(auth.account.id)
            .in_household(household_id)
            .on(account_id),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

async fn ensure_another_owner(
    state: &AppState,
    household: HouseholdId,
    leaving: AccountId,
) -> ApiResult<()> {
    let members = state.store.members(household).await?;
    let others = members.iter().any(|m| {
        m.membership.account_id != leaving
            && m.membership.role == Role::Owner
            && m.membership.status == MemberStatus::Approved
    });
    if others {
        Ok(())
    } else {
        Err(ApiError::conflict(
            "last_owner",
            "a household needs an approved owner: make someone else an owner first",
        ))
    }
}

/// Approve a pending member (owner or guardian).
#[utoipa::path(post, path = "/api/v1/households/{household_id}/members/{account_id}/approve", tag = TAG,
    params(("household_id" = String, Path, format = Uuid), ("account_id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn approve(
    State(state): State<AppState>,
    auth: Auth,
    Path((household_id, account_id)): Path<(HouseholdId, AccountId)>,
) -> ApiResult<StatusCode> {
    set_status(
        &state,
        &auth,
        household_id,
        account_id,
        &[MemberStatus::Pending],
        MemberStatus::Approved,
    )
    .await
}

/// Block a member at once: they stay listed but can send nothing (owner or guardian).
#[utoipa::path(post, path = "/api/v1/households/{household_id}/members/{account_id}/block", tag = TAG,
    params(("household_id" = String, Path, format = Uuid), ("account_id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn block(
    State(state): State<AppState>,
    auth: Auth,
    Path((household_id, account_id)): Path<(HouseholdId, AccountId)>,
) -> ApiResult<StatusCode> {
    set_status(
        &state,
        &auth,
        household_id,
        account_id,
        &[MemberStatus::Pending, MemberStatus::Approved],
        MemberStatus::Blocked,
    )
    .await
}

/// Unblock a member (owner or guardian); they are approved again.
#[utoipa::path(post, path = "/api/v1/households/{household_id}/members/{account_id}/unblock", tag = TAG,
    params(("household_id" = String, Path, format = Uuid), ("account_id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn unblock(
    State(state): State<AppState>,
    auth: Auth,
    Path((household_id, account_id)): Path<(HouseholdId, AccountId)>,
) -> ApiResult<StatusCode> {
    set_status(
        &state,
        &auth,
        household_id,
        account_id,
        &[MemberStatus::Blocked],
        MemberStatus::Approved,
    )
    .await
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RoleChange {
    pub role: Role,
}

/// Change a member's role (owner or guardian; guardians cannot touch or create owners).
#[utoipa::path(patch, path = "/api/v1/households/{household_id}/members/{account_id}", tag = TAG,
    request_body = RoleChange,
    params(("household_id" = String, Path, format = Uuid), ("account_id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn change_role(
    State(state): State<AppState>,
    auth: Auth,
    Path((household_id, account_id)): Path<(HouseholdId, AccountId)>,
    Json(body): Json<RoleChange>,
) -> ApiResult<StatusCode> {
    let me = managing_membership(&state, household_id, auth.account.id).await?;
    let member = target_member(&state, &me, household_id, account_id).await?;
    if !me.role.may_grant(body.role) {
        return Err(ApiError::forbidden(
            "role_not_grantable",
            format!("a {} cannot make someone a {}", me.role, body.role),
        ));
    }
    if member.role == Role::Owner && body.role != Role::Owner {
        ensure_another_owner(&state, household_id, account_id).await?;
    }
    state
        .store
        .update_member(household_id, account_id, body.role, member.status)
        .await?;
    record(
        &state,
        Event::new("member_role_changed")
            .by(auth.account.id)
            .in_household(household_id)
            .on(format!("{account_id}:{}", body.role)),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a member (owner or guardian), or leave the household (any member, themselves).
#[utoipa::path(delete, path = "/api/v1/households/{household_id}/members/{account_id}", tag = TAG,
    params(("household_id" = String, Path, format = Uuid), ("account_id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    auth: Auth,
    Path((household_id, account_id)): Path<(HouseholdId, AccountId)>,
) -> ApiResult<StatusCode> {
    let member = if account_id == auth.account.id {
        state
            .store
            .membership(household_id, account_id)
            .await?
            .ok_or_else(|| ApiError::not_found("household"))?
    } else {
        let me = managing_membership(&state, household_id, auth.account.id).await?;
        target_member(&state, &me, household_id, account_id).await?
    };
    if member.role == Role::Owner {
        ensure_another_owner(&state, household_id, account_id).await?;
    }
    state.store.remove_member(household_id, account_id).await?;
    tracing::info!(household = %household_id, member = %account_id, by = %auth.account.id, "member removed");
    record(
        &state,
        Event::new("member_removed")
            .by(auth.account.id)
            .in_household(household_id)
            .on(account_id),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// An event in an audit trail.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditView {
    pub seq: u64,
    pub at: String,
    pub actor: Option<AccountId>,
    pub action: String,
    pub target: Option<String>,
    /// The client address; on a household's trail, shown to owners and guardians only.
    pub client: Option<String>,
}

impl AuditView {
    fn from_entry(e: pawpost_domain::AuditEntry, show_client: bool) -> Self {
        Self {
            seq: e.seq,
            at: rfc3339(e.record.at),
            actor: e.record.actor,
            action: e.record.action,
            target: e.record.target,
            client: e.record.client.filter(|_| show_client),
        }
    }
}

/// The household's audit trail, newest first (approved members).
#[utoipa::path(get, path = "/api/v1/households/{household_id}/audit", tag = TAG,
    params(("household_id" = String, Path, format = Uuid)),
    responses((status = 200, body = [AuditView]), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn audit_trail(
    State(state): State<AppState>,
    auth: Auth,
    Path(household_id): Path<HouseholdId>,
) -> ApiResult<Json<Vec<AuditView>>> {
    let me = active_membership(&state, household_id, auth.account.id).await?;
    let entries = state
        .store
        .household_audit(household_id, crate::audit::TRAIL_LIMIT)
        .await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e| AuditView::from_entry(e, me.manages()))
            .collect(),
    ))
}

/// The caller's own recent activity: sign-ins (and failed ones), password changes,
/// devices, exports; newest first, with the addresses they came from.
#[utoipa::path(get, path = "/api/v1/accounts/me/activity", tag = "accounts",
    responses((status = 200, body = [AuditView]), (status = 401, body = ErrorBody)))]
pub async fn my_activity(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Vec<AuditView>>> {
    let entries = state
        .store
        .account_audit(auth.account.id, crate::audit::TRAIL_LIMIT)
        .await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e| AuditView::from_entry(e, true))
            .collect(),
    ))
}
