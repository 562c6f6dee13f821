//! The toy's WebSocket, `/api/v1/toy/ws`: one binary message per frame of
//! docs/TOY-PROTOCOL.md. Every connection starts with a fresh challenge; nothing but a
//! pairing request or a signed authentication is accepted before it is answered.
use super::keys::domain_device_id;
use super::messages::accept_envelope;
use crate::audit::{record, Event};
use crate::auth::ClientAddr;
use crate::config::{
    PAIRING_CODE_TTL, TOY_AUTH_ATTEMPTS, TOY_HELLO_DEADLINE, TOY_OUTBOX_FRAMES,
    TOY_WS_READ_BUFFER_BYTES,
};
use crate::error::ApiError;
use crate::ratelimit::LimitName;
use crate::state::AppState;
use crate::toyhub::ToyMode;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use pawpost_crypto::PublicIdentity;
use pawpost_domain::{Device, DeviceId, DeviceKind, PendingPairing, ReceiptState};
use pawpost_store::{BlobKey, StoreError};
use pawpost_toy::signing::{verify_auth, verify_pair_request, verify_rotation};
use pawpost_toy::{Frame, MessageId, PairingCode, ServerError, MAX_FRAME_LEN, NONCE_LEN};
use std::net::IpAddr;
use std::ops::ControlFlow;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use uuid::Uuid;

/// Draws of a fresh pairing code before giving up (a clash with a live code is rare).
const PAIRING_CODE_DRAWS: usize = 8;

/// A toy's connection (WebSocket upgrade).
#[utoipa::path(get, path = "/api/v1/toy/ws", tag = "toys",
    responses((status = 101, description = "Switching to the toy protocol (docs/TOY-PROTOCOL.md)")))]
pub async fn toy_ws(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    ws: WebSocketUpgrade,
) -> Response {
    ws.read_buffer_size(TOY_WS_READ_BUFFER_BYTES)
        // Frames are written as they come: no write buffer to keep per idle toy.
        .write_buffer_size(0)
        .max_message_size(MAX_FRAME_LEN)
        .max_frame_size(MAX_FRAME_LEN)
        .on_upgrade(move |socket| run(state, socket, addr))
}

struct Session {
    state: AppState,
    addr: IpAddr,
    outbox: mpsc::Sender<Vec<u8>>,
    nonce: [u8; NONCE_LEN],
    /// The toy on this connection once it asked to pair or authenticated, with the hub's
    /// connection id.
    toy: Option<(DeviceId, u64)>,
    auth_failures: u32,
}

async fn run(state: AppState, socket: WebSocket, addr: IpAddr) {
    let (mut sink, mut stream) = socket.split();
    let (outbox, mut frames) = mpsc::channel::<Vec<u8>>(TOY_OUTBOX_FRAMES);
    let writer = tokio::spawn(async move {
        while let Some(frame) = frames.recv().await {
            if sink.send(WsMessage::Binary(frame.into())).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let mut session = Session {
        state,
        addr,
        outbox,
        nonce: [0; NONCE_LEN],
        toy: None,
        auth_failures: 0,
    };
    session.challenge().await;
    loop {
        let next = if session.toy.is_none() {
            match tokio::time::timeout(TOY_HELLO_DEADLINE, stream.next()).await {
                Ok(next) => next,
                Err(_) => break,
            }
        } else {
            stream.next().await
        };
        match next {
            Some(Ok(WsMessage::Binary(bytes))) => {
                // Boxed: handling a frame needs a large future (storage, crypto); an idle
                // connection should not carry its size while it waits.
                if Box::pin(session.on_frame(&bytes)).await.is_break() {
                    break;
                }
            }
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
            _ => break,
        }
    }
    if let Some((device, connection)) = session.toy {
        if session.state.toys.leave(device, connection) {
            crate::relay::toy_offline(&session.state, device).await;
        }
    }
    drop(session);
    let _ = writer.await;
}

fn pawpost_id(id: pawpost_toy::DeviceId) -> DeviceId {
    domain_device_id(id)
}

fn message_uuid(id: MessageId) -> Uuid {
    Uuid::from_bytes(id.0)
}

impl Session {
    async fn send(&self, frame: &Frame<'_>) {
        match frame.encode() {
            Ok(bytes) => {
                let _ = self.outbox.send(bytes).await;
            }
            Err(e) => tracing::error!(error = ?e, "a server frame did not encode"),
        }
    }

    async fn fail(&self, code: ServerError) {
        self.send(&Frame::Error { code }).await;
    }

    async fn challenge(&mut self) {
        self.nonce = rand::random();
        let server_time_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as u64;
        self.send(&Frame::Challenge {
            nonce: self.nonce,
            server_time_ms,
        })
        .await;
    }

    fn authenticated(&self) -> Option<DeviceId> {
        let (device, _) = self.toy?;
        (self.state.toys.mode(device) == Some(ToyMode::Authenticated)).then_some(device)
    }

    async fn on_frame(&mut self, bytes: &[u8]) -> ControlFlow<()> {
        let frame = match Frame::decode(bytes) {
            Ok(frame) => frame,
            Err(e) => {
                tracing::info!(client = %self.addr, error = e.code(), "toy sent a malformed frame; closing");
                return ControlFlow::Break(());
            }
        };
        let result = match frame {
            Frame::PairRequest {
                identity,
                signature,
            } => self.pair_request(identity, &signature).await,
            Frame::Auth {
                device_id,
                roster_version,
                signature,
            } => self.auth(device_id, roster_version, &signature).await,
            other => match self.authenticated() {
                Some(toy) => self.handle_toy_frame(toy, other).await,
                None => {
                    tracing::info!(client = %self.addr, "toy frame before authentication; closing");
                    return ControlFlow::Break(());
                }
            },
        };
        result.unwrap_or_else(|e| {
            tracing::error!(status = %e.status, message = %e.message, "toy connection failed");
            ControlFlow::Break(())
        })
    }

    async fn pair_request(
        &mut self,
        identity: PublicIdentity,
        signature: &[u8; 64],
    ) -> Result<ControlFlow<()>, ApiError> {
        if self.toy.is_some() || !verify_pair_request(&identity, &self.nonce, signature) {
            self.fail(ServerError::PairingRefused).await;
            return Ok(ControlFlow::Break(()));
        }
        let addr_key = self.addr.to_string();
        let limiter = &self.state.limits.pairing_per_address;
        let device = pawpost_id(identity.device_id);
        if limiter.check(&addr_key).is_err() || self.state.store.device(device).await?.is_some() {
            self.fail(ServerError::PairingRefused).await;
            return Ok(ControlFlow::Break(()));
        }
        crate::relay::attempt(&self.state, LimitName::PairingPerAddress, &addr_key).await;
        let now = OffsetDateTime::now_utc();
        let mut code = None;
        for _ in 0..PAIRING_CODE_DRAWS {
            let candidate = PairingCode::from_number(rand::random::<u32>() % 1_000_000)
                .expect("below a million");
            let pairing = PendingPairing {
                code: candidate.to_string(),
                device_id: device,
                identity: identity.encode().to_vec(),
                created_at: now,
                expires_at: now + PAIRING_CODE_TTL,
            };
            match self.state.store.create_pairing(&pairing).await {
                Ok(()) => {
                    code = Some(candidate);
                    break;
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let Some(code) = code else {
            self.fail(ServerError::PairingRefused).await;
            return Ok(ControlFlow::Break(()));
        };
        let connection = self
            .state
            .toys
            .join(device, ToyMode::Pairing, self.outbox.clone());
        self.toy = Some((device, connection));
        tracing::info!(toy = %device, client = %self.addr, "toy asked for a pairing code");
        record(
            &self.state,
            Event::new("toy_pairing_requested")
                .on(device)
                .from(self.addr),
        )
        .await;
        self.send(&Frame::PairCode {
            code,
            expires_in_s: PAIRING_CODE_TTL.as_secs() as u32,
        })
        .await;
        Ok(ControlFlow::Continue(()))
    }

    async fn auth(
        &mut self,
        device_id: pawpost_toy::DeviceId,
        roster_version: u64,
        signature: &[u8; 64],
    ) -> Result<ControlFlow<()>, ApiError> {
        let id = pawpost_id(device_id);
        let toy = self
            .state
            .store
            .device(id)
            .await?
            .filter(|d| d.kind == DeviceKind::Toy);
        let verified = toy.as_ref().and_then(|toy| {
            let identity = PublicIdentity::decode(&toy.identity).ok()?;
            verify_auth(&identity, &self.nonce, roster_version, signature).then_some(toy.clone())
        });
        let Some(toy) = verified.filter(|_| self.toy.is_none()) else {
            self.auth_failures += 1;
            tracing::info!(client = %self.addr, "toy authentication failed");
            record(
                &self.state,
                Event::new("toy_auth_failed").on(id).from(self.addr),
            )
            .await;
            self.fail(ServerError::AuthFailed).await;
            if self.auth_failures >= TOY_AUTH_ATTEMPTS {
                return Ok(ControlFlow::Break(()));
            }
            self.challenge().await;
            return Ok(ControlFlow::Continue(()));
        };
        let connection = self
            .state
            .toys
            .join(id, ToyMode::Authenticated, self.outbox.clone());
        let mut event = Event::new("toy_connected").on(id).from(self.addr);
        if let Some(household) = toy.household_id {
            event = event.in_household(household);
        }
        record(&self.state, event).await;
        self.toy = Some((id, connection));
        crate::relay::toy_online(&self.state, id).await;
        self.catch_up(&toy, roster_version).await?;
        Ok(ControlFlow::Continue(()))
    }

    /// Newer rosters, in order, then every message the toy has not acknowledged, then the
    /// approvals of messages it has not played.
    async fn catch_up(&self, toy: &Device, roster_version: u64) -> Result<(), ApiError> {
        let Some(household) = toy.household_id else {
            return Ok(());
        };
        for roster in self
            .state
            .store
            .rosters_since(household, roster_version)
            .await?
        {
            self.send(&Frame::RosterUpdate {
                signed_roster: &roster.signed,
            })
            .await;
        }
        for message in self.state.store.undelivered_for(toy.id).await? {
            let key = BlobKey::new(message.blob_key.clone())
                .map_err(|e| StoreError::Backend(e.to_string()))?;
            match self.state.blobs.get(&key).await? {
                Some(envelope) => {
                    self.send(&Frame::Deliver {
                        envelope: &envelope,
                    })
                    .await
                }
                None => tracing::error!(message = %message.id, "envelope blob missing"),
            }
        }
        for approval in self.state.store.approvals_pending_for(toy.id).await? {
            let Ok(signature) = <[u8; 64]>::try_from(approval.signature.as_slice()) else {
                continue;
            };
            self.send(&Frame::Approval {
                message_id: MessageId(*approval.message_id.as_bytes()),
                approver: pawpost_toy::DeviceId(*approval.approver.0.as_bytes()),
                signature,
            })
            .await;
        }
        Ok(())
    }

    async fn receipt(
        &self,
        toy: DeviceId,
        message: MessageId,
        state: ReceiptState,
    ) -> Result<(), ApiError> {
        match self
            .state
            .store
            .set_receipt(message_uuid(message), toy, state, OffsetDateTime::now_utc())
            .await
        {
            Ok(()) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn handle_toy_frame(
        &mut self,
        toy: DeviceId,
        frame: Frame<'_>,
    ) -> Result<ControlFlow<()>, ApiError> {
        match frame {
            Frame::Delivered { message_id } => {
                self.receipt(toy, message_id, ReceiptState::Delivered)
                    .await?
            }
            Frame::Played { message_id } => {
                self.receipt(toy, message_id, ReceiptState::Played).await?
            }
            Frame::Rejected { message_id, reason } => {
                // Never delivered again: the toy refused it for good (or, for a replay,
                // already holds it).
                tracing::warn!(toy = %toy, message = %message_uuid(message_id), reason = reason.code(), "toy refused a message");
                self.receipt(toy, message_id, ReceiptState::Delivered)
                    .await?;
            }
            Frame::RosterRejected { version, reason } => {
                tracing::warn!(toy = %toy, version, reason = reason.code(), "toy refused a roster");
            }
            Frame::Upload { envelope } => self.upload(toy, envelope).await?,
            Frame::RotateKey {
                new_identity,
                signature_by_old_key,
            } => {
                self.rotate(toy, new_identity, &signature_by_old_key)
                    .await?
            }
            other => {
                tracing::info!(toy = %toy, frame = ?other.frame_type(), "toy sent a server-to-toy frame; ignored");
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    async fn upload(&self, toy: DeviceId, envelope: &[u8]) -> Result<(), ApiError> {
        let device = self.state.store.device(toy).await?;
        let household = device.and_then(|d| d.household_id);
        let Some(household) =
            household.filter(|_| envelope.len() <= self.state.config.max_envelope_bytes)
        else {
            self.fail(ServerError::UploadRefused).await;
            return Ok(());
        };
        let accepted = accept_envelope(&self.state, household, envelope.to_vec(), |sender| {
            if sender.id == toy {
                Ok(())
            } else {
                Err(ApiError::forbidden(
                    "not_your_device",
                    "a toy uploads only its own recordings",
                ))
            }
        })
        .await;
        match accepted {
            Ok(message) => {
                self.send(&Frame::UploadAck {
                    message_id: MessageId(*message.id.as_bytes()),
                })
                .await
            }
            Err(e) if e.status.is_server_error() => return Err(e),
            Err(e) => {
                tracing::info!(toy = %toy, reason = e.code, "toy upload refused");
                self.fail(ServerError::UploadRefused).await;
            }
        }
        Ok(())
    }

    async fn rotate(
        &self,
        toy: DeviceId,
        new: PublicIdentity,
        signature: &[u8; 64],
    ) -> Result<(), ApiError> {
        let device = self.state.store.device(toy).await?;
        let old = device.and_then(|d| PublicIdentity::decode(&d.identity).ok());
        match old {
            Some(old) if verify_rotation(&old, &new, &self.nonce, signature) => {
                self.state
                    .store
                    .update_device_identity(toy, &new.encode())
                    .await?;
                tracing::info!(toy = %toy, "toy rotated its key");
                record(
                    &self.state,
                    Event::new("toy_key_rotated").on(toy).from(self.addr),
                )
                .await;
                self.send(&Frame::RotateAck {
                    ed25519_pub: new.ed25519_pub,
                })
                .await;
            }
            _ => self.fail(ServerError::RotateRefused).await,
        }
        Ok(())
    }
}
