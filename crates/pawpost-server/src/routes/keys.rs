//! Device public keys and the household's signed roster. The server checks the roster's
//! signature chain so that no one can slip in a forged or stale version, but it never
//! needs to trust what a roster says.
use super::rfc3339;
use crate::audit::{record, Event};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ErrorBody, Json, Path};
use crate::relay::{self, Note};
use crate::routes::households::active_membership;
use crate::state::AppState;
use crate::toyhub::ToyMode;
use axum::extract::State;
use axum::http::StatusCode;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use pawpost_crypto::{PublicIdentity, SignedRoster};
use pawpost_domain::{AccountId, Device, DeviceId, DeviceKind, HouseholdId, Role, StoredRoster};
use pawpost_store::StoreError;
use pawpost_toy::Frame;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

pub const TAG: &str = "keys";

pub fn decode_b64(field: &'static str, text: &str) -> ApiResult<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| {
        ApiError::unprocessable(
            "invalid_base64",
            format!("{field} must be unpadded base64url"),
        )
    })
}

pub fn domain_device_id(id: pawpost_crypto::DeviceId) -> DeviceId {
    DeviceId(Uuid::from_bytes(id.0))
}

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
    let bytes = decode_b64("identity", &body.identity)?;
    let identity = PublicIdentity::decode(&bytes).map_err(|e| {
        ApiError::unprocessable(
            "invalid_identity",
            format!("identity is not a valid public identity: {e}"),
        )
    })?;
    let device = Device {
        id: domain_device_id(identity.device_id),
        kind: DeviceKind::Member,
        account_id: Some(auth.account.id),
        household_id: None,
        identity: bytes,
        label: super::clean_name(&body.label, "label")?,
        created_at: OffsetDateTime::now_utc(),
    };
    match state.store.create_device(&device).await {
        Ok(()) => {
            record(
                &state,
                Event::new("device_registered")
                    .by(auth.account.id)
                    .on(device.id),
            )
            .await;
            Ok((StatusCode::CREATED, Json(device_view(&device))))
        }
        Err(StoreError::Conflict(_)) => Err(ApiError::conflict(
            "device_exists",
            "a device with this id is registered; generate new keys with a fresh device id",
        )),
        Err(e) => Err(e.into()),
    }
}

/// The caller's own devices.
#[utoipa::path(get, path = "/api/v1/devices", tag = TAG,
    responses((status = 200, body = [DeviceView]), (status = 401, body = ErrorBody)))]
pub async fn my_devices(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Vec<DeviceView>>> {
    let devices = state.store.devices_of_account(auth.account.id).await?;
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
    active_membership(&state, household_id, auth.account.id).await?;
    let devices = state.store.devices_of_household(household_id).await?;
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
    active_membership(&state, household_id, auth.account.id).await?;
    let roster = state
        .store
        .latest_roster(household_id)
        .await?
        .ok_or_else(|| {
            ApiError::new(
            StatusCode::NOT_FOUND,
            "no_roster",
            "this household has no roster yet: an owner publishes the first one from their device",
        )
        })?;
    Ok(Json(roster_view(&roster)))
}

fn roster_refused(detail: impl std::fmt::Display) -> ApiError {
    ApiError::unprocessable(
        "roster_refused",
        format!("the roster was refused: {detail}"),
    )
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
    let me = active_membership(&state, household_id, auth.account.id).await?;
    if me.role != Role::Owner {
        return Err(ApiError::forbidden(
            "not_an_owner",
            "only an owner of the household signs its roster",
        ));
    }
    let bytes = decode_b64("signed_roster", &body.signed_roster)?;
    let signed = SignedRoster::decode(&bytes).map_err(roster_refused)?;
    let roster = signed.unverified_roster();
    if roster.household_id.0 != *household_id.0.as_bytes() {
        return Err(roster_refused("it names another household"));
    }
    let signer = state
        .store
        .device(domain_device_id(signed.signer()))
        .await?;
    if signer.and_then(|d| d.account_id) != Some(auth.account.id) {
        return Err(ApiError::forbidden(
            "not_your_device",
            "the roster must be signed by one of your registered devices",
        ));
    }
    let previous = state.store.latest_roster(household_id).await?;
    match &previous {
        None => signed.verify_genesis().map(drop),
        Some(prev) => {
            let prev = SignedRoster::decode(&prev.signed)
                .map_err(|e| StoreError::Backend(format!("stored roster does not decode: {e}")))?;
            signed.verify_successor(&prev).map(drop)
        }
    }
    .map_err(roster_refused)?;
    let stored = StoredRoster {
        household_id,
        version: signed.unverified_roster().version,
        signed: bytes,
        created_at: OffsetDateTime::now_utc(),
    };
    match state.store.insert_roster(&stored).await {
        Ok(()) => {
            hand_roster_to_toys(&state, household_id, &signed).await?;
            relay::announce(
                &state,
                Note::Roster {
                    household: household_id,
                },
            )
            .await;
            record(
                &state,
                Event::new("roster_published")
                    .by(auth.account.id)
                    .in_household(household_id)
                    .on(stored.version),
            )
            .await;
            Ok((StatusCode::CREATED, Json(roster_view(&stored))))
        }
        Err(StoreError::Conflict(_)) => Err(ApiError::conflict(
            "roster_version_taken",
            "another owner published this version first; fetch the roster and build on it",
        )),
        Err(e) => Err(e.into()),
    }
}

/// Gives a new roster to the household's connected toys: a toy waiting to be paired gets
/// it as `Paired` (once the roster lists it), a connected toy as `RosterUpdate`. Offline
/// toys catch up when they next authenticate.
pub(crate) async fn hand_roster_to_toys(
    state: &AppState,
    household: HouseholdId,
    signed: &SignedRoster,
) -> ApiResult<()> {
    let bytes = signed.encode();
    let roster = signed.unverified_roster();
    for toy in state.store.devices_of_household(household).await? {
        if toy.kind != DeviceKind::Toy || toy.household_id != Some(household) {
            continue;
        }
        let toy_id = toy.id;
        if roster
            .member(pawpost_crypto::DeviceId(*toy_id.0.as_bytes()))
            .is_none()
        {
            continue;
        }
        match state.toys.mode(toy_id) {
            Some(ToyMode::Pairing) => {
                let paired = Frame::Paired {
                    household_id: roster.household_id,
                    signed_roster: &bytes,
                };
                if state.toys.send(toy_id, ToyMode::Pairing, &paired) {
                    state.toys.promote(toy_id);
                    relay::toy_online(state, toy_id).await;
                }
            }
            Some(ToyMode::Authenticated) => {
                state.toys.send(
                    toy_id,
                    ToyMode::Authenticated,
                    &Frame::RosterUpdate {
                        signed_roster: &bytes,
                    },
                );
            }
            None => {}
        }
    }
    Ok(())
}
