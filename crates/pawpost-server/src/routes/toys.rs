//! Pairing a toy by the code it speaks, and the household's toys.
use super::keys::{device_view, DeviceView};
use crate::audit::{record, Event};
use crate::auth::Auth;
use crate::config::PAIRING_MAX_WRONG_TRIES;
use crate::error::{ApiError, ApiResult, ErrorBody, Json, Path};
use crate::ratelimit::LimitName;
use crate::routes::households::active_membership;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use pawpost_domain::{Device, DeviceKind, HouseholdId, PairingClaim};
use pawpost_store::StoreError;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub const TAG: &str = "toys";
/// Name a toy gets when it is paired; parents see it next to its fingerprint.
pub const DEFAULT_TOY_LABEL: &str = "Toy";

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
}

fn no_such_code() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "pairing_code_unknown",
        "no toy is waiting with this code: check the six digits the toy spoke, or long-press its paw for a new code",
    )
}

/// Pair the toy that speaks `code` with this household (owner or guardian). Next, an owner
/// publishes a roster listing the toy; the server hands it to the toy, which pins it.
#[utoipa::path(post, path = "/api/v1/households/{household_id}/toys", tag = TAG, request_body = PairingCodeEntry,
    params(("household_id" = String, Path, format = Uuid)),
    responses(
        (status = 201, body = DeviceView),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No toy waits with this code (wrong, expired, used, or burned by wrong tries)", body = ErrorBody),
        (status = 429, description = "Too many wrong codes", body = ErrorBody),
    ))]
pub async fn pair(
    State(state): State<AppState>,
    auth: Auth,
    Path(household_id): Path<HouseholdId>,
    Json(body): Json<PairingCodeEntry>,
) -> ApiResult<(StatusCode, Json<DeviceView>)> {
    let me = active_membership(&state, household_id, auth.account.id).await?;
    if !me.manages() {
        return Err(ApiError::forbidden(
            "not_a_parent",
            "only an owner or guardian pairs a toy",
        ));
    }
    let code: String = body.code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::unprocessable(
            "invalid_code",
            "a pairing code is six digits",
        ));
    }
    let key = auth.account.id.to_string();
    let limiter = &state.limits.wrong_pairing_codes_per_account;
    limiter.check(&key).map_err(|retry| {
        ApiError::too_many(
            retry,
            "too many wrong pairing codes; wait, then ask the toy for a new code",
        )
    })?;
    let now = OffsetDateTime::now_utc();
    let pairing = match state
        .store
        .claim_pairing(&code, now, PAIRING_MAX_WRONG_TRIES)
        .await?
    {
        PairingClaim::Claimed(p) => p,
        PairingClaim::NoMatch => {
            crate::relay::attempt(&state, LimitName::WrongPairingCodesPerAccount, &key).await;
            return Err(no_such_code());
        }
    };
    let toy = Device {
        id: pairing.device_id,
        kind: DeviceKind::Toy,
        account_id: None,
        household_id: Some(household_id),
        identity: pairing.identity,
        label: DEFAULT_TOY_LABEL.into(),
        created_at: now,
    };
    match state.store.create_device(&toy).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::conflict(
                "toy_already_paired",
                "this toy is paired already; reset it to pair it again",
            ))
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(household = %household_id, toy = %toy.id, by = %auth.account.id, "toy paired; waiting for a roster that lists it");
    record(
        &state,
        Event::new("toy_paired")
            .by(auth.account.id)
            .in_household(household_id)
            .on(toy.id),
    )
    .await;
    Ok((StatusCode::CREATED, Json(device_view(&toy))))
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
    active_membership(&state, household_id, auth.account.id).await?;
    let devices = state.store.devices_of_household(household_id).await?;
    Ok(Json(
        devices
            .iter()
            .filter(|d| d.kind == DeviceKind::Toy && d.household_id == Some(household_id))
            .map(|d| ToyView {
                online: crate::relay::online(&state, d.id),
                device: device_view(d),
            })
            .collect(),
    ))
}
