//! Households, their members and invitations. Every route checks membership first: a
//! household one does not belong to answers 404, exactly like one that does not exist.
use super::rfc3339;
use crate::auth::Auth;
use crate::error::{ApiResult, ErrorBody, Json, Path};
use crate::services::households::{self, StatusChange};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use pawpost_domain::{
    AccountId, Household, HouseholdId, InvitationId, MemberStatus, Membership, Role,
};
use serde::{Deserialize, Serialize};

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
    Ok(households::active_membership(state, household, account).await?)
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
    let (household, membership) = households::create(&state, auth.account.id, &body.name).await?;
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
    let mine = households::list(&state, auth.account.id).await?;
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
    let (household, membership) = households::get(&state, household_id, auth.account.id).await?;
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
    let (household, membership) =
        households::rename(&state, household_id, auth.account.id, &body.name).await?;
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

/// The members of a household. Owners and guardians see everyone with their state;
/// a relative sees the approved members and themselves, never who waits or was blocked.
#[utoipa::path(get, path = "/api/v1/households/{household_id}/members", tag = TAG,
    params(("household_id" = String, Path, format = Uuid)),
    responses((status = 200, body = [MemberView]), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn members(
    State(state): State<AppState>,
    auth: Auth,
    Path(household_id): Path<HouseholdId>,
) -> ApiResult<Json<Vec<MemberView>>> {
    let (me, members) = households::members(&state, household_id, auth.account.id).await?;
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
/// An account may create `INVITATIONS_PER_ACCOUNT_PER_DAY` a day, a household
/// `INVITATIONS_PER_HOUSEHOLD_PER_DAY`.
#[utoipa::path(post, path = "/api/v1/households/{household_id}/invitations", tag = TAG,
    request_body = NewInvitation,
    params(("household_id" = String, Path, format = Uuid)),
    responses(
        (status = 201, body = InvitationView),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "The email address is not valid (the message says why)", body = ErrorBody),
        (status = 429, description = "The daily number of invitations was reached; Retry-After says when one frees", body = ErrorBody),
    ))]
pub async fn invite(
    State(state): State<AppState>,
    auth: Auth,
    Path(household_id): Path<HouseholdId>,
    Json(body): Json<NewInvitation>,
) -> ApiResult<(StatusCode, Json<InvitationView>)> {
    let role = body.role.unwrap_or(Role::Family);
    let made = households::invite(
        &state,
        &auth.account,
        household_id,
        role,
        body.email.as_deref(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(InvitationView {
            id: made.invitation.id,
            token: made.token,
            url: made.url,
            role,
            expires_at: rfc3339(made.invitation.expires_at),
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
        (status = 403, description = "A parent of this household blocked this account", body = ErrorBody),
        (status = 404, description = "No invitation has this token", body = ErrorBody),
        (status = 409, description = "Already a member", body = ErrorBody),
        (status = 410, description = "Used or expired", body = ErrorBody),
    ))]
pub async fn accept(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<AcceptInvitation>,
) -> ApiResult<Json<HouseholdView>> {
    let (household, membership) = households::accept(&state, auth.account.id, &body.token).await?;
    Ok(Json(household_view(&household, &membership)))
}

async fn set_status(
    state: &AppState,
    auth: &Auth,
    household_id: HouseholdId,
    account_id: AccountId,
    change: StatusChange,
) -> ApiResult<StatusCode> {
    households::set_status(state, auth.account.id, household_id, account_id, change).await?;
    Ok(StatusCode::NO_CONTENT)
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
        StatusChange::Approve,
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
    set_status(&state, &auth, household_id, account_id, StatusChange::Block).await
}

/// Unblock a member (owner or guardian); they are approved again, or, if they had left
/// while blocked, their place ends and a new invitation may bring them back.
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
        StatusChange::Unblock,
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
    households::change_role(&state, auth.account.id, household_id, account_id, body.role).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a member (owner or guardian), or leave the household (any member, themselves).
/// A blocked member stays blocked: they no longer see the household, its parents still
/// see the block, and only unblocking lifts it.
#[utoipa::path(delete, path = "/api/v1/households/{household_id}/members/{account_id}", tag = TAG,
    params(("household_id" = String, Path, format = Uuid), ("account_id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    auth: Auth,
    Path((household_id, account_id)): Path<(HouseholdId, AccountId)>,
) -> ApiResult<StatusCode> {
    households::remove(&state, auth.account.id, household_id, account_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An event in an audit trail.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditView {
    pub seq: u64,
    pub at: String,
    pub actor: Option<AccountId>,
    /// What happened: one of the `AuditAction` names.
    #[schema(value_type = crate::audit::AuditAction)]
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

/// The household's audit trail, newest first (approved members). Blocks, unblocks and
/// members put back to waiting are shown to parents only.
#[utoipa::path(get, path = "/api/v1/households/{household_id}/audit", tag = TAG,
    params(("household_id" = String, Path, format = Uuid)),
    responses((status = 200, body = [AuditView]), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn audit_trail(
    State(state): State<AppState>,
    auth: Auth,
    Path(household_id): Path<HouseholdId>,
) -> ApiResult<Json<Vec<AuditView>>> {
    let (entries, parent) = households::audit_trail(&state, household_id, auth.account.id).await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e| AuditView::from_entry(e, parent))
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
    let entries = crate::services::accounts::activity(&state, auth.account.id).await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e| AuditView::from_entry(e, true))
            .collect(),
    ))
}
