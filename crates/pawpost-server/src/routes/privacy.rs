//! A family's data given back and erased on request.
use super::{rfc3339, AccountView};
use crate::auth::{password_client, Auth, ClientAddr};
use crate::error::{ApiError, ApiResult, ErrorBody, Json, Path};
use crate::services::toys::ToyLeave;
use crate::services::{accounts, households};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use pawpost_domain::HouseholdId;
use serde::{Deserialize, Serialize};

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
        (status = 429, description = "Too many wrong passwords for this account (the same limit as signing in), or a check is already under way; see Retry-After", body = ErrorBody),
        (status = 503, description = "Too many password checks at once; see Retry-After", body = ErrorBody),
    ))]
pub async fn delete_account(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    auth: Auth,
    Json(body): Json<Confirmation>,
) -> ApiResult<StatusCode> {
    accounts::delete(
        &state,
        &auth.account,
        &body.password,
        &password_client(addr, &headers),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What to do with the household's toys when it is deleted.
#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct DeleteHousehold {
    /// An owner device's signed goodbye for each toy (see `DELETE
    /// /api/v1/households/{household_id}/toys/{device_id}`): the toy gets it now or when it
    /// next connects, forgets the household and can be paired again. A toy left out is
    /// unpaired on the server only, and must be reset (paw held for 10 seconds) before it
    /// can be paired again.
    #[serde(default)]
    pub leave: Vec<ToyLeave>,
}

/// Delete a household (owners only): members' places, invitations, rosters, every
/// message and its blob. The body is optional (no body: no goodbyes); every goodbye in it
/// is checked before anything is deleted.
#[utoipa::path(delete, path = "/api/v1/households/{household_id}", tag = TAG,
    params(("household_id" = String, Path, format = Uuid)),
    request_body(content = DeleteHousehold, description = "Optional: the toys' signed goodbyes"),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "A goodbye's signature is not an owner device's, or does not verify; nothing was deleted", body = ErrorBody)))]
pub async fn delete_household(
    State(state): State<AppState>,
    auth: Auth,
    Path(household_id): Path<HouseholdId>,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let request: DeleteHousehold = if body.iter().all(u8::is_ascii_whitespace) {
        DeleteHousehold::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::unprocessable(
                "invalid_json",
                format!("{e}: send no body, or a JSON body that matches the API document at /api/openapi.json"),
            )
        })?
    };
    households::delete(&state, household_id, auth.account.id, &request.leave).await?;
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
    /// The passkeys the account signs in with, and the sealed recovery material kept
    /// with each (standard base64, as `GET /api/v1/passkeys/{id}/recovery-material`).
    pub passkeys: Vec<ExportedPasskey>,
    pub households: Vec<ExportedHousehold>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ExportedPasskey {
    #[serde(flatten)]
    pub passkey: super::passkeys::PasskeyView,
    pub recovery_material: Option<String>,
}

/// Download all of the caller's data as one JSON archive: account, sessions, devices
/// (public keys), passkeys with their sealed recovery material, households with their
/// rosters, and every envelope they sent or can open.
#[utoipa::path(get, path = "/api/v1/accounts/me/export", tag = TAG,
    responses((status = 200, body = Export), (status = 401, body = ErrorBody)))]
pub async fn export(State(state): State<AppState>, auth: Auth) -> ApiResult<impl IntoResponse> {
    let export = accounts::export(&state, auth.account.id).await?;
    let households = export
        .households
        .into_iter()
        .map(|h| ExportedHousehold {
            household: super::households::HouseholdView {
                id: h.household.id,
                name: h.household.name,
                created_at: rfc3339(h.household.created_at),
                role: h.membership.role,
                status: h.membership.status,
            },
            signed_roster: h.roster.map(|r| URL_SAFE_NO_PAD.encode(r.signed)),
            messages: h
                .messages
                .into_iter()
                .map(|(message, bytes)| ExportedMessage {
                    message: super::messages::message_view(message),
                    envelope: URL_SAFE_NO_PAD.encode(bytes),
                })
                .collect(),
        })
        .collect();
    let mut passkeys = Vec::new();
    for passkey in crate::services::passkeys::list(&state, auth.account.id).await? {
        let material =
            crate::services::passkeys::recovery_material(&state, auth.account.id, passkey.id)
                .await?;
        passkeys.push(ExportedPasskey {
            passkey: super::passkeys::PasskeyView::from(&passkey),
            recovery_material: material
                .map(|m| base64::engine::general_purpose::STANDARD.encode(m)),
        });
    }
    let archive = Export {
        exported_at: rfc3339(export.exported_at),
        account: AccountView::from(&auth.account),
        sessions: super::sessions::session_views(export.sessions, auth.session.id),
        devices: super::keys::device_views(
            &export.devices,
            &crate::services::keys::certificates_of(&state, &export.devices).await?,
        ),
        passkeys,
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
