//! Message envelopes: ciphertext in, ciphertext out. The server checks who may send
//! (an approved, unblocked member's registered device, listed in the roster, with a
//! valid signature) and who may fetch (the sender and the recipients), and stores the
//! envelope durably before it answers.
use super::keys::domain_device_id;
use super::rfc3339;
use crate::audit::{record, Event};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ErrorBody, Json, Path};
use crate::relay::{self, Note};
use crate::routes::households::active_membership;
use crate::state::AppState;
use crate::toyhub::ToyMode;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use futures_util::StreamExt;
use pawpost_crypto::{Envelope, PublicIdentity, SignedRoster};
use pawpost_domain::{AccountId, DeviceId, DeviceKind, HouseholdId, Message, ReceiptState};
use pawpost_store::{BlobKey, StoreError};
use pawpost_toy::Frame;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

pub const TAG: &str = "messages";

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReceiptView {
    #[schema(value_type = String, format = Uuid)]
    pub device_id: DeviceId,
    pub delivered_at: Option<String>,
    /// When the toy played it or the member opened it ("heard").
    pub played_at: Option<String>,
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

pub(crate) async fn message_view(state: &AppState, m: &Message) -> ApiResult<MessageView> {
    let receipts = state.store.receipts(m.id).await?;
    Ok(MessageView {
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
            })
            .collect(),
    })
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "envelope_too_large",
        format!("envelopes are limited to {max} bytes: record a shorter message"),
    )
}

fn refused(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::unprocessable(code, message)
}

/// Reads the body up to `max` bytes, refusing more as soon as it is seen.
async fn read_capped(headers: &HeaderMap, body: Body, max: usize) -> ApiResult<Vec<u8>> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return Err(too_large(max));
    }
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0).min(max as u64) as usize);
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
        (status = 422, description = "Signature, roster or recipients do not check out", body = ErrorBody),
    ))]
pub async fn upload(
    State(state): State<AppState>,
    auth: Auth,
    Path(household_id): Path<HouseholdId>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<MessageView>)> {
    // Membership first: a blocked or pending member's upload is refused unread.
    active_membership(&state, household_id, auth.account.id).await?;
    let bytes = read_capped(&headers, body, state.config.max_envelope_bytes).await?;
    let account = auth.account.id;
    let message = accept_envelope(&state, household_id, bytes, |device| {
        if device.kind == DeviceKind::Member && device.account_id == Some(account) {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "not_your_device",
                "the envelope's sender is not one of your registered devices",
            ))
        }
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(message_view(&state, &message).await?),
    ))
}

/// Checks an envelope from a member's device or a toy and stores it durably; then pushes
/// it to every recipient toy connected to this process. `authorize` decides whether the
/// caller may speak for the envelope's sender device.
pub async fn accept_envelope(
    state: &AppState,
    household_id: HouseholdId,
    bytes: Vec<u8>,
    authorize: impl FnOnce(&pawpost_domain::Device) -> ApiResult<()>,
) -> ApiResult<Message> {
    let envelope = Envelope::parse(&bytes).map_err(|e| {
        ApiError::bad_request(
            "invalid_envelope",
            format!("the body is not a valid envelope ({e}); seal it with pawpost's crypto module"),
        )
    })?;
    let header = envelope.header();
    if header.household_id.0 != *household_id.0.as_bytes() {
        return Err(refused(
            "wrong_household",
            "the envelope is sealed for another household",
        ));
    }
    let sender_device = domain_device_id(header.sender);
    let device = state.store.device(sender_device).await?.ok_or_else(|| {
        ApiError::forbidden(
            "not_your_device",
            "the envelope's sender is not a registered device",
        )
    })?;
    authorize(&device)?;
    let identity = PublicIdentity::decode(&device.identity)
        .map_err(|e| StoreError::Backend(format!("stored identity does not decode: {e}")))?;
    envelope.prefix().verify_sender(&identity).map_err(|_| {
        refused(
            "bad_signature",
            "the envelope's signature does not verify with the sender device's key",
        )
    })?;
    let mut digest = envelope.prefix().payload_verifier();
    digest
        .update(envelope.ciphertext())
        .and_then(|()| digest.finish())
        .map_err(|_| {
            refused(
                "bad_payload",
                "the envelope's payload does not match its signed digest",
            )
        })?;
    let stored = state
        .store
        .latest_roster(household_id)
        .await?
        .ok_or_else(|| {
            ApiError::conflict(
                "no_roster",
                "this household has no roster yet: an owner must publish one first",
            )
        })?;
    let roster = SignedRoster::decode(&stored.signed)
        .map_err(|e| StoreError::Backend(format!("stored roster does not decode: {e}")))?;
    let roster = roster.unverified_roster();
    if !roster.is_approved_sender(header.sender) {
        return Err(ApiError::forbidden(
            "not_in_roster",
            "the sender device is not an approved member of the household's roster; ask a parent to add it",
        ));
    }
    if let Some(stranger) = header
        .recipients
        .iter()
        .find(|r| roster.member(**r).is_none())
    {
        return Err(refused(
            "unknown_recipient",
            format!(
                "recipient {} is not in the household's roster",
                domain_device_id(*stranger)
            ),
        ));
    }
    let message_id = Uuid::from_bytes(header.message_id.0);
    if state.store.message(message_id).await?.is_some() {
        return Err(ApiError::conflict(
            "duplicate_message",
            "a message with this id was already sent",
        ));
    }
    // A random suffix keeps a racing duplicate from overwriting the first envelope.
    let blob_key = BlobKey::new(format!(
        "envelopes/{household_id}/{message_id}-{:016x}",
        rand::random::<u64>()
    ))
    .map_err(|e| StoreError::Backend(e.to_string()))?;
    state.blobs.put(&blob_key, &bytes).await?;
    let message = Message {
        id: message_id,
        household_id,
        sender_device,
        sender_account: device.account_id,
        media_type: header.media_type as u8,
        duration_ms: header.duration_ms,
        envelope_len: bytes.len() as u64,
        created_at: OffsetDateTime::now_utc(),
        blob_key: blob_key.to_string(),
    };
    let recipients: Vec<DeviceId> = header
        .recipients
        .iter()
        .map(|r| domain_device_id(*r))
        .collect();
    if let Err(e) = state.store.insert_message(&message, &recipients).await {
        let _ = state.blobs.delete(&blob_key).await;
        return Err(match e {
            StoreError::Conflict(_) => ApiError::conflict(
                "duplicate_message",
                "a message with this id was already sent",
            ),
            other => other.into(),
        });
    }
    tracing::info!(household = %household_id, message = %message_id, bytes = bytes.len(), "message stored");
    let mut event = Event::new("message_uploaded")
        .in_household(household_id)
        .on(message_id);
    if let Some(account) = device.account_id {
        event = event.by(account);
    }
    record(state, event).await;
    for recipient in &recipients {
        state.toys.send(
            *recipient,
            ToyMode::Authenticated,
            &Frame::Deliver { envelope: &bytes },
        );
    }
    relay::announce(
        state,
        Note::Message {
            id: message.id,
            devices: recipients,
        },
    )
    .await;
    Ok(message)
}

/// The household's messages, oldest first, with receipts: for parents every message
/// (they see who sent what to the toy, never the content); for others those they sent
/// or can open.
#[utoipa::path(get, path = "/api/v1/households/{household_id}/messages", tag = TAG,
    params(("household_id" = String, Path, format = Uuid)),
    responses((status = 200, body = [MessageView]), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Path(household_id): Path<HouseholdId>,
) -> ApiResult<Json<Vec<MessageView>>> {
    let me = active_membership(&state, household_id, auth.account.id).await?;
    let messages = if me.manages() {
        state.store.messages_of_household(household_id).await?
    } else {
        state
            .store
            .messages_for_account(household_id, auth.account.id)
            .await?
    };
    let mut views = Vec::with_capacity(messages.len());
    for m in &messages {
        views.push(message_view(&state, m).await?);
    }
    Ok(Json(views))
}

/// A message the caller may see: an active member who sent it or whose device receives it.
async fn visible_message(state: &AppState, auth: &Auth, message_id: Uuid) -> ApiResult<Message> {
    let not_found = || ApiError::not_found("message");
    let message = state
        .store
        .message(message_id)
        .await?
        .ok_or_else(not_found)?;
    let me = active_membership(state, message.household_id, auth.account.id)
        .await
        .map_err(|e| {
            if e.status == StatusCode::NOT_FOUND {
                not_found()
            } else {
                e
            }
        })?;
    // Parents see every message of their household (never its content).
    if me.manages() || message.sender_account == Some(auth.account.id) {
        return Ok(message);
    }
    let mine = state.store.devices_of_account(auth.account.id).await?;
    let receipts = state.store.receipts(message_id).await?;
    if receipts
        .iter()
        .any(|r| mine.iter().any(|d| d.id == r.device_id))
    {
        Ok(message)
    } else {
        Err(not_found())
    }
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
    let message = visible_message(&state, &auth, message_id).await?;
    record(
        &state,
        Event::new("message_downloaded")
            .by(auth.account.id)
            .in_household(message.household_id)
            .on(message_id),
    )
    .await;
    let key =
        BlobKey::new(message.blob_key.clone()).map_err(|e| StoreError::Backend(e.to_string()))?;
    let bytes = state
        .blobs
        .get(&key)
        .await?
        .ok_or_else(|| StoreError::Backend(format!("envelope blob {key} is missing")))?;
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
    visible_message(&state, &auth, message_id).await?;
    let device = state.store.device(body.device_id).await?;
    if device.and_then(|d| d.account_id) != Some(auth.account.id) {
        return Err(ApiError::not_found("device"));
    }
    state
        .store
        .set_receipt(
            message_id,
            body.device_id,
            body.state,
            OffsetDateTime::now_utc(),
        )
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => ApiError::not_found("recipient"),
            other => other.into(),
        })?;
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
    let message = visible_message(&state, &auth, message_id).await?;
    let me = active_membership(&state, message.household_id, auth.account.id).await?;
    if !me.manages() {
        return Err(ApiError::forbidden(
            "not_a_parent",
            "only an owner or guardian approves messages for the toy",
        ));
    }
    let device = state
        .store
        .device(body.device_id)
        .await?
        .filter(|d| d.account_id == Some(auth.account.id))
        .ok_or_else(|| ApiError::not_found("device"))?;
    let identity = PublicIdentity::decode(&device.identity)
        .map_err(|e| StoreError::Backend(format!("stored identity does not decode: {e}")))?;
    let signature: [u8; 64] = super::keys::decode_b64("signature", &body.signature)?
        .try_into()
        .map_err(|_| refused("invalid_signature", "an approval signature is 64 bytes"))?;
    let household = pawpost_crypto::HouseholdId(*message.household_id.0.as_bytes());
    let id = pawpost_toy::MessageId(*message_id.as_bytes());
    if !pawpost_toy::signing::verify_approval(
        &identity.ed25519_pub,
        household,
        id,
        identity.device_id,
        &signature,
    ) {
        return Err(refused(
            "bad_signature",
            "the approval's signature does not verify with your device's key",
        ));
    }
    state
        .store
        .insert_approval(&pawpost_domain::Approval {
            message_id,
            approver: body.device_id,
            signature: signature.to_vec(),
            created_at: OffsetDateTime::now_utc(),
        })
        .await?;
    let frame = Frame::Approval {
        message_id: id,
        approver: identity.device_id,
        signature,
    };
    let mut devices = Vec::new();
    for receipt in state.store.receipts(message_id).await? {
        state
            .toys
            .send(receipt.device_id, ToyMode::Authenticated, &frame);
        devices.push(receipt.device_id);
    }
    relay::announce(
        &state,
        Note::Approval {
            id: message_id,
            devices,
        },
    )
    .await;
    tracing::info!(message = %message_id, by = %auth.account.id, "message approved for the toy");
    record(
        &state,
        Event::new("message_approved")
            .by(auth.account.id)
            .in_household(message.household_id)
            .on(message_id),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
