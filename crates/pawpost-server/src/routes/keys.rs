//! Device public keys and the household's signed roster. The server checks the roster's
//! signature chain so that no one can slip in a forged or stale version, but it never
//! needs to trust what a roster says.
use super::rfc3339;
use crate::auth::Auth;
use crate::error::{ApiResult, ErrorBody, Json, Path};
use crate::services::keys;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use pawpost_crypto::PublicIdentity;
use pawpost_domain::{AccountId, Device, DeviceId, DeviceKind, HouseholdId, StoredRoster};
use serde::{Deserialize, Serialize};

pub const TAG: &str = "keys";

pub use crate::services::keys::domain_device_id;

/// A device's public keys as members see them.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeviceView {
    #[schema(value_type = String, format = Uuid)]
    pub device_id: DeviceId,
    pub kind: DeviceKind,
    /// The member account the device belongs to; absent for toys.
    pub account_id: Option<AccountId>,
    /// The encoded public identity (docs/ENVELOPE.md), unpadded base64url.
    pub identity: String,
    /// Six groups of five digits that two people can compare aloud.
    pub fingerprint: String,
    pub label: String,
    pub created_at: String,
}

pub fn device_view(d: &Device) -> DeviceView {
    let fingerprint = PublicIdentity::decode(&d.identity)
        .map(|id| id.fingerprint().to_string())
        .unwrap_or_default();
    DeviceView {
        device_id: d.id,
        kind: d.kind,
        account_id: d.account_id,
        identity: URL_SAFE_NO_PAD.encode(&d.identity),
        fingerprint,
        label: d.label.clone(),
        created_at: rfc3339(d.created_at),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewDevice {
    /// The encoded public identity (docs/ENVELOPE.md), unpadded base64url. The device id
    /// inside it is the device's id.
    pub identity: String,
    /// A name the member recognises, e.g. "Rose's laptop".
    pub label: String,
}

/// Register one of the caller's devices (its public keys only).
#[utoipa::path(post, path = "/api/v1/devices", tag = TAG, request_body = NewDevice,
    responses((status = 201, body = DeviceView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn register_device(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<NewDevice>,
) -> ApiResult<(StatusCode, Json<DeviceView>)> {
    let device =
        keys::register_device(&state, auth.account.id, &body.identity, &body.label).await?;
    Ok((StatusCode::CREATED, Json(device_view(&device))))
}

/// The caller's own devices.
#[utoipa::path(get, path = "/api/v1/devices", tag = TAG,
    responses((status = 200, body = [DeviceView]), (status = 401, body = ErrorBody)))]
pub async fn my_devices(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Vec<DeviceView>>> {
    let devices = keys::devices_of_account(&state, auth.account.id).await?;
    Ok(Json(devices.iter().map(device_view).collect()))
}

/// The devices of the household's approved members and its toys, for building rosters.
#[utoipa::path(get, path = "/api/v1/households/{household_id}/devices", tag = TAG,
    params(("household_id" = String, Path, format = Uuid)),
    responses((status = 200, body = [DeviceView]), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn household_devices(
    State(state): State<AppState>,
    auth: Auth,
    Path(household_id): Path<HouseholdId>,
) -> ApiResult<Json<Vec<DeviceView>>> {
    let devices = keys::devices_of_household(&state, household_id, auth.account.id).await?;
    Ok(Json(devices.iter().map(device_view).collect()))
}

/// A signed roster version.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct RosterBody {
    /// The signed roster (docs/ENVELOPE.md), unpadded base64url.
    pub signed_roster: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RosterView {
    pub version: u64,
    pub signed_roster: String,
    pub created_at: String,
}

fn roster_view(r: &StoredRoster) -> RosterView {
    RosterView {
        version: r.version,
        signed_roster: URL_SAFE_NO_PAD.encode(&r.signed),
        created_at: rfc3339(r.created_at),
    }
}

/// The household's current signed roster, verified by each device itself.
#[utoipa::path(get, path = "/api/v1/households/{household_id}/roster", tag = TAG,
    params(("household_id" = String, Path, format = Uuid)),
    responses((status = 200, body = RosterView), (status = 404, description = "Not a member, or no roster yet", body = ErrorBody)))]
pub async fn get_roster(
    State(state): State<AppState>,
    auth: Auth,
    Path(household_id): Path<HouseholdId>,
) -> ApiResult<Json<RosterView>> {
    let roster = keys::latest_roster(&state, household_id, auth.account.id).await?;
    Ok(Json(roster_view(&roster)))
}

/// Publish a new roster version, signed by one of the caller's devices (owners only).
/// The first version must be signed by an owner listed in it; each later one by an
/// approved owner of the version before, with a higher version number.
#[utoipa::path(post, path = "/api/v1/households/{household_id}/roster", tag = TAG, request_body = RosterBody,
    params(("household_id" = String, Path, format = Uuid)),
    responses(
        (status = 201, body = RosterView),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Another version was published first; rebuild on it", body = ErrorBody),
        (status = 422, description = "Forged, stale or malformed", body = ErrorBody),
    ))]
pub async fn publish_roster(
    State(state): State<AppState>,
    auth: Auth,
    Path(household_id): Path<HouseholdId>,
    Json(body): Json<RosterBody>,
) -> ApiResult<(StatusCode, Json<RosterView>)> {
    let stored =
        keys::publish_roster(&state, household_id, auth.account.id, &body.signed_roster).await?;
    Ok((StatusCode::CREATED, Json(roster_view(&stored))))
}
