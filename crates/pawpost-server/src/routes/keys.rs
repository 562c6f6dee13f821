//! Device public keys and the household's signed roster. The server checks the roster's
//! signature chain so that no one can slip in a forged or stale version, but it never
//! needs to trust what a roster says.
use super::rfc3339;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ErrorBody, Json, Path};
use crate::services::keys::{self, CertificateError};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use pawpost_crypto::PublicIdentity;
use pawpost_domain::{AccountId, Device, DeviceId, DeviceKind, HouseholdId, StoredRoster};
use pawpost_store::DeviceCertificate;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

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
    /// Another device of the same account vouched for this one (docs/ENVELOPE.md, "Device
    /// certificates"); null when none did, and always for toys. Check it before trusting
    /// the device: the server's word that it did is not enough.
    pub certificate: Option<CertificateView>,
}

/// A device certificate as the device lists show it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CertificateView {
    /// The device of the same account that signed.
    #[schema(value_type = String, format = Uuid)]
    pub certifier_device_id: DeviceId,
    /// Ed25519 over the certificate input (docs/ENVELOPE.md), unpadded base64url.
    pub signature: String,
}

fn certificate_view(c: &DeviceCertificate) -> CertificateView {
    CertificateView {
        certifier_device_id: c.certifier_device_id,
        signature: URL_SAFE_NO_PAD.encode(c.signature),
    }
}

/// A device's view without its certificate: for toys, which are never certified.
pub fn device_view(d: &Device) -> DeviceView {
    device_view_with(d, None)
}

fn device_view_with(d: &Device, certificate: Option<&DeviceCertificate>) -> DeviceView {
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
        certificate: certificate.map(certificate_view),
    }
}

/// The views of `devices`, each with its certificate if it has one.
pub fn device_views(
    devices: &[Device],
    certificates: &HashMap<DeviceId, DeviceCertificate>,
) -> Vec<DeviceView> {
    devices
        .iter()
        .map(|d| device_view_with(d, certificates.get(&d.id)))
        .collect()
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
    let certificates = keys::certificates_of(&state, &devices).await?;
    Ok(Json(device_views(&devices, &certificates)))
}

/// Delete one of the caller's own devices (a lost phone, a browser no longer used). Its
/// keys stay in a household's roster until an owner signs the next version.
#[utoipa::path(delete, path = "/api/v1/devices/{device_id}", tag = TAG,
    params(("device_id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, description = "Not one of the caller's devices", body = ErrorBody)))]
pub async fn remove_device(
    State(state): State<AppState>,
    auth: Auth,
    Path(device_id): Path<DeviceId>,
) -> ApiResult<StatusCode> {
    if keys::remove_device(&state, auth.account.id, device_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("device"))
    }
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
    let certificates = keys::certificates_of(&state, &devices).await?;
    Ok(Json(device_views(&devices, &certificates)))
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

impl From<CertificateError> for ApiError {
    fn from(e: CertificateError) -> Self {
        use CertificateError as E;
        match e {
            E::NotFound => ApiError::not_found("device"),
            E::SameDevice => ApiError::unprocessable("same_device", e.to_string()),
            E::InvalidBase64(e) => e.into(),
            E::BadCertificate => ApiError::unprocessable("bad_certificate", e.to_string()),
            E::AlreadyCertified => ApiError::conflict("already_certified", e.to_string()),
            E::Store(e) => e.into(),
        }
    }
}

/// One device of the caller's account vouching for another.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewCertificate {
    /// The caller's device that signed (an existing one, not the certified device).
    #[schema(value_type = String, format = Uuid)]
    pub certifier_device_id: DeviceId,
    /// Ed25519 by the certifier over the certificate input (docs/ENVELOPE.md, "Device
    /// certificates"), unpadded base64url.
    pub signature: String,
}

/// Vouch for one of the caller's devices with another of them: the server checks the
/// signature against the certifier's registered keys and keeps one certificate per device.
#[utoipa::path(post, path = "/api/v1/devices/{device_id}/certificate", tag = TAG, request_body = NewCertificate,
    params(("device_id" = String, Path, format = Uuid)),
    responses(
        (status = 201, description = "The certified device, with its certificate", body = DeviceView),
        (status = 404, description = "Either device is not one of the caller's", body = ErrorBody),
        (status = 409, description = "The device already has a certificate", body = ErrorBody),
        (status = 422, description = "The signature does not verify, or a device vouches for itself", body = ErrorBody),
    ))]
pub async fn certify_device(
    State(state): State<AppState>,
    auth: Auth,
    Path(device_id): Path<DeviceId>,
    Json(body): Json<NewCertificate>,
) -> ApiResult<(StatusCode, Json<DeviceView>)> {
    let (device, certificate) = keys::certify_device(
        &state,
        auth.account.id,
        device_id,
        body.certifier_device_id,
        &body.signature,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(device_view_with(&device, Some(&certificate))),
    ))
}

/// `?after=N`: the versions after N (0 for all).
#[derive(Deserialize, utoipa::IntoParams)]
pub struct RostersQuery {
    /// Only versions above this one; 0 (the default) for every version.
    #[serde(default)]
    pub after: u64,
}

/// Query parameters whose rejections speak the API's error format.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::bad_request(
            "invalid_query",
            format!(
                "{}: after is a roster version number",
                rejection.body_text()
            ),
        )
    }
}

/// The household's signed roster versions after `after`, oldest first, at most 200 at a
/// time (ask again after the last one), so that a new device checks the chain from
/// version 1 itself.
#[utoipa::path(get, path = "/api/v1/households/{household_id}/rosters", tag = TAG,
    params(("household_id" = String, Path, format = Uuid), RostersQuery),
    responses((status = 200, body = [RosterView]), (status = 403, body = ErrorBody), (status = 404, description = "Not a member", body = ErrorBody)))]
pub async fn roster_versions(
    State(state): State<AppState>,
    auth: Auth,
    Path(household_id): Path<HouseholdId>,
    Query(query): Query<RostersQuery>,
) -> ApiResult<Json<Vec<RosterView>>> {
    let rosters = keys::rosters_after(&state, household_id, auth.account.id, query.after).await?;
    Ok(Json(rosters.iter().map(roster_view).collect()))
}
