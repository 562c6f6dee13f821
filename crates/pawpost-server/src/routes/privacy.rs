//! A family's data given back and erased on request.
use super::households::active_membership;
use super::keys::device_view;
use super::{rfc3339, AccountView};
use crate::audit::{record, Event};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ErrorBody, Json, Path};
use crate::retention::delete_blobs;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use pawpost_domain::{HouseholdId, MemberStatus, Role};
use pawpost_store::{BlobKey, StoreError};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub const TAG: &str = "privacy";

#[derive(Deserialize, utoipa::ToSchema)]
pub struct Confirmation {
    /// The account's password, so that a stolen session cannot erase an account.
    pub password: String,
}

/// Delete the caller's account: sessions, devices, household places, and the messages
/// they sent (database rows and blobs). An account that is the last owner of a household
/// with other members must first make someone else owner, or delete the household.
#[utoipa::path(delete, path = "/api/v1/accounts/me", tag = TAG, request_body = Confirmation,
    responses(
        (status = 204, description = "Deleted, with everything it sent"),
        (status = 403, description = "Wrong password", body = ErrorBody),
        (status = 409, description = "Last owner of a household with other members", body = ErrorBody),
    ))]
pub async fn delete_account(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<Confirmation>,
) -> ApiResult<StatusCode> {
    let password = pawpost_domain::password::normalise(&body.password);
    if !state
        .hasher
        .verify(password, Some(auth.account.password_hash.clone()))
        .await?
    {
        return Err(ApiError::forbidden(
            "wrong_password",
            "the password is wrong; nothing was deleted",
        ));
    }
    let mut solely_owned = Vec::new();
    for (household, membership) in state.store.households_of(auth.account.id).await? {
        if membership.role != Role::Owner || membership.status != MemberStatus::Approved {
            continue;
        }
        let members = state.store.members(household.id).await?;
        let other_owner = members.iter().any(|m| {
            m.membership.account_id != auth.account.id
                && m.membership.role == Role::Owner
                && m.membership.status == MemberStatus::Approved
        });
        if other_owner {
            continue;
        }
        if members.len() > 1 {
            return Err(ApiError::conflict(
                "last_owner",
                format!(
                    "you are the last owner of {:?}: make another member owner, or delete the household first",
                    household.name
                ),
            ));
        }
        solely_owned.push(household.id);
    }
    // Households only this account belongs to go with it.
    for household in solely_owned {
        let keys = state.store.delete_household(household).await?;
        delete_blobs(&state, &keys).await;
    }
    let keys = state.store.delete_account(auth.account.id).await?;
    state.mailer.forget(auth.account.email.as_str()).await;
    delete_blobs(&state, &keys).await;
    tracing::info!(account = %auth.account.id, messages = keys.len(), "account deleted");
    record(&state, Event::new("account_deleted").by(auth.account.id)).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a household (owners only): members' places, invitations, rosters, every
/// message and its blob; its toys are unpaired and can no longer connect.
#[utoipa::path(delete, path = "/api/v1/households/{household_id}", tag = TAG,
    params(("household_id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_household(
    State(state): State<AppState>,
    auth: Auth,
    Path(household_id): Path<HouseholdId>,
) -> ApiResult<StatusCode> {
    let me = active_membership(&state, household_id, auth.account.id).await?;
    if me.role != Role::Owner {
        return Err(ApiError::forbidden(
            "not_an_owner",
            "only an owner deletes a household",
        ));
    }
    let keys = state.store.delete_household(household_id).await?;
    delete_blobs(&state, &keys).await;
    tracing::info!(household = %household_id, by = %auth.account.id, messages = keys.len(), "household deleted");
    record(
        &state,
        Event::new("household_deleted")
            .by(auth.account.id)
            .in_household(household_id),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ExportedMessage {
    #[serde(flatten)]
    pub message: super::messages::MessageView,
    /// The sealed envelope, unpadded base64url; the web app opens what this device can.
    pub envelope: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ExportedHousehold {
    #[serde(flatten)]
    pub household: super::households::HouseholdView,
    /// The current signed roster, unpadded base64url, if any.
    pub signed_roster: Option<String>,
    pub messages: Vec<ExportedMessage>,
}

/// Everything the server holds about the caller.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Export {
    pub exported_at: String,
    pub account: AccountView,
    pub sessions: Vec<super::sessions::SessionView>,
    pub devices: Vec<super::keys::DeviceView>,
    pub households: Vec<ExportedHousehold>,
}

/// Download all of the caller's data as one JSON archive: account, sessions, devices
/// (public keys), households with their rosters, and every envelope they sent or can open.
#[utoipa::path(get, path = "/api/v1/accounts/me/export", tag = TAG,
    responses((status = 200, body = Export), (status = 401, body = ErrorBody)))]
pub async fn export(State(state): State<AppState>, auth: Auth) -> ApiResult<impl IntoResponse> {
    let now = OffsetDateTime::now_utc();
    record(&state, Event::new("data_exported").by(auth.account.id)).await;
    let sessions = super::sessions::session_views(
        state.store.sessions_of(auth.account.id, now).await?,
        auth.session.id,
    );
    let devices = state.store.devices_of_account(auth.account.id).await?;
    let mut households = Vec::new();
    for (household, membership) in state.store.households_of(auth.account.id).await? {
        let mut exported = ExportedHousehold {
            household: super::households::HouseholdView {
                id: household.id,
                name: household.name.clone(),
                created_at: rfc3339(household.created_at),
                role: membership.role,
                status: membership.status,
            },
            signed_roster: None,
            messages: Vec::new(),
        };
        if membership.status == MemberStatus::Approved {
            exported.signed_roster = state
                .store
                .latest_roster(household.id)
                .await?
                .map(|r| URL_SAFE_NO_PAD.encode(r.signed));
            for message in state
                .store
                .messages_for_account(household.id, auth.account.id)
                .await?
            {
                let key = BlobKey::new(message.blob_key.clone())
                    .map_err(|e| StoreError::Backend(e.to_string()))?;
                let Some(bytes) = state.blobs.get(&key).await? else {
                    continue;
                };
                exported.messages.push(ExportedMessage {
                    message: super::messages::message_view(&state, &message).await?,
                    envelope: URL_SAFE_NO_PAD.encode(bytes),
                });
            }
        }
        households.push(exported);
    }
    let archive = Export {
        exported_at: rfc3339(now),
        account: AccountView::from(&auth.account),
        sessions,
        devices: devices.iter().map(device_view).collect(),
        households,
    };
    Ok((
        [(
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"pawpost-export.json\"",
        )],
        Json(archive),
    ))
}
