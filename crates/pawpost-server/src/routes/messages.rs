//! Message envelopes: ciphertext in, ciphertext out. The server checks who may send
//! (an approved, unblocked member's registered device, listed in the roster, with a
//! valid signature) and who may fetch (the sender and the recipients), and stores the
//! envelope durably before it answers.
use super::rfc3339;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ErrorBody, Json, Path};
use crate::routes::households::active_membership;
use crate::services::messages::{self, MessageWithReceipts, Uploader};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use futures_util::StreamExt;
use pawpost_domain::{AccountId, DeviceId, HouseholdId, ReceiptState};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const TAG: &str = "messages";

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReceiptView {
    #[schema(value_type = String, format = Uuid)]
    pub device_id: DeviceId,
    pub delivered_at: Option<String>,
    /// When the toy played it or the member opened it ("heard").
    pub played_at: Option<String>,
    /// When the toy refused it for good: it will never play it (why: `refusal`).
    pub refused_at: Option<String>,
    /// Why the toy refused it, by the toy protocol's stable name (docs/TOY-PROTOCOL.md):
    /// `sender_blocked` or `unknown_sender` when a parent blocked or removed the sender
    /// while the message waited on the toy; `bad_media`, `undecryptable` and the others
    /// when the toy could not play it.
    pub refusal: Option<String>,
    /// Set while a toy holds the message, received and not yet played, because the
    /// household's quiet hours hold now: when they end (RFC 3339). Worked out from the
    /// signed roster's quiet hours and time zone and the server's clock, which is the
    /// clock the toy is given on every connection (see `messages::quiet_hold`).
    pub held_until: Option<String>,
}

/// What the server knows of a message: the signed header's cleartext fields.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MessageView {
    pub message_id: Uuid,
    pub household_id: HouseholdId,
    #[schema(value_type = String, format = Uuid)]
    pub sender_device: DeviceId,
    pub sender_account: Option<AccountId>,
    /// 1 Ogg Opus voice, 2 image (avatar), 3 text (e.g. the child's name), 4 JSON.
    pub media_type: u8,
    pub duration_ms: u32,
    pub envelope_bytes: u64,
    pub created_at: String,
    pub recipients: Vec<ReceiptView>,
}

pub(crate) fn message_view(m: MessageWithReceipts) -> MessageView {
    let MessageWithReceipts {
        message: m,
        receipts,
    } = m;
    MessageView {
        message_id: m.id,
        household_id: m.household_id,
        sender_device: m.sender_device,
        sender_account: m.sender_account,
        media_type: m.media_type,
        duration_ms: m.duration_ms,
        envelope_bytes: m.envelope_len,
        created_at: rfc3339(m.created_at),
        recipients: receipts
            .into_iter()
            .map(|r| ReceiptView {
                device_id: r.device_id,
                delivered_at: r.delivered_at.map(rfc3339),
                played_at: r.played_at.map(rfc3339),
                refused_at: r.refused_at.map(rfc3339),
                refusal: r.refusal,
                held_until: None,
            })
            .collect(),
    }
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "envelope_too_large",
        format!("envelopes are limited to {max} bytes: record a shorter message"),
    )
}

/// Reads the body up to `max` bytes, refusing more as soon as it is seen.
async fn read_capped(headers: &HeaderMap, body: Body, max: usize) -> ApiResult<Vec<u8>> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        // A length beyond the address space is over any limit.
        .map(|len| usize::try_from(len).unwrap_or(usize::MAX));
    if declared.is_some_and(|len| len > max) {
        return Err(too_large(max));
    }
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0).min(max));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::bad_request(
                "upload_interrupted",
                "the upload was interrupted or too slow; send it again",
            )
        })?;
        if bytes.len() + chunk.len() > max {
            return Err(too_large(max));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Send a message: the body is the sealed envelope (docs/ENVELOPE.md), as
/// `application/octet-stream`. When this answers 201 the envelope is on disk.
#[utoipa::path(post, path = "/api/v1/households/{household_id}/messages", tag = TAG,
    params(("household_id" = String, Path, format = Uuid)),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "A sealed envelope"),
    responses(
        (status = 201, body = MessageView),
        (status = 400, description = "Not an envelope", body = ErrorBody),
        (status = 403, description = "Blocked, pending, or not your device", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "This message id was already sent", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 422, description = "Signature, roster or recipients do not check out, or a toy is among the recipients of something other than voice (`toy_plays_only_voice`)", body = ErrorBody),
    ))]
pub async fn upload(
    State(state): State<AppState>,
    auth: Auth,
    Path(household_id): Path<HouseholdId>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<MessageView>)> {
    // The membership is checked first (a blocked or pending member's upload is refused
    // whatever its body), read beside the envelope's sender in `messages::accept`.
    let bytes = match read_capped(&headers, body, state.config.max_envelope_bytes).await {
        Ok(bytes) => bytes,
        Err(e) => {
            active_membership(&state, household_id, auth.account.id).await?;
            return Err(e);
        }
    };
    let message = messages::accept(
        &state,
        household_id,
        bytes,
        Uploader::Member(auth.account.id),
    )
    .await?;
    let view = message_view(messages::with_receipts(&state, message).await?);
    Ok((StatusCode::CREATED, Json(view)))
}

/// The household's messages, oldest first, with receipts: for parents every message
/// (they see who sent what to the toy, never the content); for others those they sent
/// or can open. A receipt with `refused_at` is a message the toy will never play (for
/// instance: its sender was blocked while it waited), never "heard".
#[utoipa::path(get, path = "/api/v1/households/{household_id}/messages", tag = TAG,
    params(("household_id" = String, Path, format = Uuid)),
    responses((status = 200, body = [MessageView]), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Path(household_id): Path<HouseholdId>,
) -> ApiResult<Json<Vec<MessageView>>> {
    let listed = messages::list(&state, auth.account.id, household_id).await?;
    let hold = messages::quiet_hold(&state, household_id, time::OffsetDateTime::now_utc()).await?;
    let mut views: Vec<MessageView> = listed.into_iter().map(message_view).collect();
    if let Some(hold) = hold {
        let until = rfc3339(hold.until);
        for receipt in views.iter_mut().flat_map(|m| m.recipients.iter_mut()) {
            let waiting = receipt.delivered_at.is_some()
                && receipt.played_at.is_none()
                && receipt.refused_at.is_none();
            if waiting && hold.toys.contains(&receipt.device_id) {
                receipt.held_until = Some(until.clone());
            }
        }
    }
    Ok(Json(views))
}

/// Fetch a message's envelope (ciphertext) to open on the caller's device.
#[utoipa::path(get, path = "/api/v1/messages/{message_id}", tag = TAG,
    params(("message_id" = String, Path, format = Uuid)),
    responses(
        (status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, body = ErrorBody),
    ))]
pub async fn download(
    State(state): State<AppState>,
    auth: Auth,
    Path(message_id): Path<Uuid>,
) -> ApiResult<impl IntoResponse> {
    let bytes = messages::download(&state, auth.account.id, message_id).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ReceiptUpdate {
    /// One of the caller's devices that received the message.
    #[schema(value_type = String, format = Uuid)]
    pub device_id: DeviceId,
    pub state: ReceiptState,
}

/// Report that one of the caller's devices received or played (opened) a message.
#[utoipa::path(post, path = "/api/v1/messages/{message_id}/receipts", tag = TAG, request_body = ReceiptUpdate,
    params(("message_id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn receipt(
    State(state): State<AppState>,
    auth: Auth,
    Path(message_id): Path<Uuid>,
    Json(body): Json<ReceiptUpdate>,
) -> ApiResult<StatusCode> {
    messages::receipt(
        &state,
        auth.account.id,
        message_id,
        body.device_id,
        body.state,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ApprovalBody {
    /// The parent's device that signed the approval.
    #[schema(value_type = String, format = Uuid)]
    pub device_id: DeviceId,
    /// Ed25519 signature over the toy protocol's approval input (docs/TOY-PROTOCOL.md),
    /// unpadded base64url.
    pub signature: String,
}

/// Release a held message to the household's toys (owner or guardian), when the roster
/// says "parent approves before the toy plays". The server relays the signature; the
/// toy checks it against its roster.
#[utoipa::path(post, path = "/api/v1/messages/{message_id}/approvals", tag = TAG, request_body = ApprovalBody,
    params(("message_id" = String, Path, format = Uuid)),
    responses(
        (status = 204, description = "Relayed to the toys (now, or when they connect)"),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "The signature does not verify with that device's key", body = ErrorBody),
    ))]
pub async fn approve(
    State(state): State<AppState>,
    auth: Auth,
    Path(message_id): Path<Uuid>,
    Json(body): Json<ApprovalBody>,
) -> ApiResult<StatusCode> {
    messages::approve(
        &state,
        auth.account.id,
        message_id,
        body.device_id,
        &body.signature,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
