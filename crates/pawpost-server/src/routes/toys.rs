//! Pairing a toy by the code it speaks, and the household's toys.
use super::keys::{device_view, DeviceView};
use crate::auth::Auth;
use crate::error::{ApiResult, ErrorBody, Json, Path};
use crate::services::{releases, toy_profiles, toys};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use pawpost_domain::{AccountId, DeviceId, HouseholdId};
use serde::{Deserialize, Serialize};

pub const TAG: &str = "toys";

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PairingCodeEntry {
    /// The six digits the toy spoke.
    pub code: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ToyView {
    #[serde(flatten)]
    pub device: DeviceView,
    /// Connected and authenticated right now, to this server process or to another one
    /// sharing its database.
    pub online: bool,
    /// RFC 3339: when the toy last connected or left; `null` if never since pairing.
    pub last_seen_at: Option<String>,
    /// The names record a parent sealed for the toy and the household's devices (its own
    /// name, and who it says messages are from), unpadded base64url of an envelope the
    /// server cannot open; `null` until a parent names it.
    pub names_envelope: Option<String>,
    /// RFC 3339: when a parent confirmed that the toy speaks the safety number the app
    /// shows; `null` until then.
    pub safety_checked_at: Option<String>,
    /// The parent who confirmed it.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub safety_checked_by: Option<AccountId>,
    /// The software the toy said it runs when it last connected; `null` if it never said.
    pub software: Option<ToySoftwareView>,
}

/// What a toy runs (docs/UPDATES.md).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ToySoftwareView {
    /// The board its software is built for.
    pub board: String,
    /// The software version parents see ("version 2").
    pub version: u32,
    /// Its anti-rollback counter.
    pub counter: u32,
    /// RFC 3339: when the toy said so.
    pub reported_at: String,
}

/// A names record sealed on a parent's device (docs/TOY-PROTOCOL.md, "Names").
#[derive(Deserialize, utoipa::ToSchema)]
pub struct ToyNames {
    /// An envelope (text) sealed by one of the caller's devices for the toy and the
    /// household's devices, unpadded base64url; at most 16 KiB.
    pub envelope: String,
}

/// A parent's claim of the toy that spoke the code: it completes when someone presses the
/// toy's paw while it speaks `confirmation`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PairingClaimView {
    /// The toy that will join; it shows in the household's toys once confirmed.
    #[schema(value_type = String, format = Uuid)]
    pub device_id: DeviceId,
    /// Six groups of five digits, for comparing keys later.
    pub fingerprint: String,
    /// The three digits the toy speaks; show them, and ask for a press of its paw when
    /// they match.
    pub confirmation: String,
    /// RFC 3339: the paw must be pressed before this.
    pub confirm_by: String,
}

/// Claim the toy that speaks `code` for this household (owner or guardian). The toy then
/// speaks a three-digit number, shown in the answer too; a press of its paw while it
/// speaks it pairs the toy with this household, and an owner then publishes a roster
/// listing it. A wrong code counts only against the account that typed it, and a right
/// one alone pairs nothing: a stranger who guesses a code cannot press the paw.
#[utoipa::path(post, path = "/api/v1/households/{household_id}/toys", tag = TAG, request_body = PairingCodeEntry,
    params(("household_id" = String, Path, format = Uuid)),
    responses(
        (status = 202, description = "Claimed: waiting for the paw", body = PairingClaimView),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No toy waits with this code (wrong, expired or used)", body = ErrorBody),
        (status = 409, description = "Another household entered the same code: it no longer works", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 429, description = "Too many wrong codes", body = ErrorBody),
    ))]
pub async fn pair(
    State(state): State<AppState>,
    auth: Auth,
    Path(household_id): Path<HouseholdId>,
    Json(body): Json<PairingCodeEntry>,
) -> ApiResult<(StatusCode, Json<PairingClaimView>)> {
    let claimed = toys::claim(&state, auth.account.id, household_id, &body.code).await?;
    let fingerprint = pawpost_crypto::PublicIdentity::decode(&claimed.pairing.identity)
        .map(|id| id.fingerprint().to_string())
        .unwrap_or_default();
    Ok((
        StatusCode::ACCEPTED,
        Json(PairingClaimView {
            device_id: claimed.pairing.device_id,
            fingerprint,
            confirmation: claimed.claim.confirmation,
            confirm_by: super::rfc3339(claimed.claim.confirm_by),
        }),
    ))
}

/// An owner device's signature that the toy leaves the household.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct ToyGoodbye {
    /// The owner's device that signed (one of the household's owners).
    #[schema(value_type = String, format = Uuid)]
    pub signer_device_id: DeviceId,
    /// Ed25519 by that device over `"pawpost/v1/toy-leave" || household_id ||
    /// toy device_id || signer_device_id` (16 bytes each), unpadded base64url.
    pub signature: String,
}

/// Remove a toy from the household (owner or guardian, with an owner device's signature).
/// The toy gets the signed goodbye now if it is connected, or when it next connects; it
/// then forgets the household, its messages and keys' pairing, and can be paired again
/// (with this household or another). Messages it never received are no longer sent to it.
#[utoipa::path(delete, path = "/api/v1/households/{household_id}/toys/{device_id}", tag = TAG, request_body = ToyGoodbye,
    params(("household_id" = String, Path, format = Uuid), ("device_id" = String, Path, format = Uuid)),
    responses(
        (status = 204, description = "Removed; the toy forgets the household"),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such toy in the household", body = ErrorBody),
        (status = 422, description = "The signature is not an owner device's, or does not verify", body = ErrorBody),
    ))]
pub async fn remove(
    State(state): State<AppState>,
    auth: Auth,
    Path((household_id, device_id)): Path<(HouseholdId, DeviceId)>,
    Json(body): Json<ToyGoodbye>,
) -> ApiResult<StatusCode> {
    let leave = toys::ToyLeave {
        toy_device_id: device_id,
        signer_device_id: body.signer_device_id,
        signature: body.signature,
    };
    toys::remove(&state, auth.account.id, household_id, device_id, &leave).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The household's toys, with their fingerprints and whether they are online.
#[utoipa::path(get, path = "/api/v1/households/{household_id}/toys", tag = TAG,
    params(("household_id" = String, Path, format = Uuid)),
    responses((status = 200, body = [ToyView]), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Path(household_id): Path<HouseholdId>,
) -> ApiResult<Json<Vec<ToyView>>> {
    let listed = toys::list(&state, auth.account.id, household_id).await?;
    let profiles = toy_profiles::profiles(&state, household_id).await?;
    let software = releases::household_software(&state, household_id).await?;
    Ok(Json(
        listed
            .iter()
            .map(|(d, online)| {
                let profile = profiles.iter().find(|p| p.toy_device_id == d.id);
                ToyView {
                    online: *online,
                    device: device_view(d),
                    last_seen_at: profile.and_then(|p| p.last_seen_at).map(super::rfc3339),
                    names_envelope: profile
                        .and_then(|p| p.names_envelope.as_deref())
                        .map(|e| URL_SAFE_NO_PAD.encode(e)),
                    safety_checked_at: profile
                        .and_then(|p| p.safety_checked_at)
                        .map(super::rfc3339),
                    safety_checked_by: profile.and_then(|p| p.safety_checked_by),
                    software: software.iter().find(|s| s.toy_device_id == d.id).map(|s| {
                        ToySoftwareView {
                            board: s.board.clone(),
                            version: s.version,
                            counter: s.counter,
                            reported_at: super::rfc3339(s.reported_at),
                        }
                    }),
                }
            })
            .collect(),
    ))
}

/// Give the toy new names (owner or guardian): its own name, and who it says a message is
/// from, sealed on the caller's device for the toy and the household's devices. The toy
/// gets them now if it is connected, or at its next connection; the server keeps the
/// sealed record and cannot read it.
#[utoipa::path(put, path = "/api/v1/households/{household_id}/toys/{device_id}/names", tag = TAG, request_body = ToyNames,
    params(("household_id" = String, Path, format = Uuid), ("device_id" = String, Path, format = Uuid)),
    responses(
        (status = 204, description = "Kept, and sent to the toy"),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such toy in the household", body = ErrorBody),
        (status = 413, description = "Over 16 KiB", body = ErrorBody),
        (status = 422, description = "Not a text envelope of this household, for this toy, sealed by one of the caller's devices", body = ErrorBody),
    ))]
pub async fn set_names(
    State(state): State<AppState>,
    auth: Auth,
    Path((household_id, device_id)): Path<(HouseholdId, DeviceId)>,
    Json(body): Json<ToyNames>,
) -> ApiResult<StatusCode> {
    let envelope = crate::services::decode_b64("envelope", &body.envelope)
        .map_err(toy_profiles::ToyProfileError::from)?;
    toy_profiles::set_names(&state, auth.account.id, household_id, device_id, &envelope).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Record that the toy spoke the safety number the app shows (owner or guardian): the
/// toy in the parent's hands holds the keys the household signed.
#[utoipa::path(post, path = "/api/v1/households/{household_id}/toys/{device_id}/safety-check", tag = TAG,
    params(("household_id" = String, Path, format = Uuid), ("device_id" = String, Path, format = Uuid)),
    responses(
        (status = 204, description = "Recorded"),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such toy in the household", body = ErrorBody),
    ))]
pub async fn safety_checked(
    State(state): State<AppState>,
    auth: Auth,
    Path((household_id, device_id)): Path<(HouseholdId, DeviceId)>,
) -> ApiResult<StatusCode> {
    toy_profiles::safety_checked(&state, auth.account.id, household_id, device_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
