//! The toy's WebSocket, `/api/v1/toy/ws`: one binary message per frame of
//! docs/TOY-PROTOCOL.md. Every connection starts with a fresh challenge; nothing but a
//! pairing request or a signed authentication is accepted before it is answered.
pub mod channel;
mod socket;
mod stream;
mod update;

use crate::auth::ClientAddr;
use crate::config::{
    MAX_UNAUTHENTICATED_TOY_SOCKETS_PER_ADDRESS, OLDEST_TOY_PROTOCOL, PAIRING_CODE_TTL,
    TOY_AUTH_ATTEMPTS, TOY_HELLO_DEADLINE, TOY_OUTBOX_FRAMES,
};
use crate::error::ApiError;
use crate::ratelimit::address_key;
use crate::services::keys::domain_device_id;
use crate::services::messages::{self, MessageError, Uploader};
use crate::services::toys::{self, Authentication, CodeRequest, Confirmation};
use crate::state::AppState;
use crate::toyhub::{Outbox, ToyMode, Unauthenticated};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use pawpost_crypto::PublicIdentity;
use pawpost_domain::{DeviceId, ReceiptState};
use pawpost_protocol::signing::verify_pair_request;
use pawpost_protocol::{
    ConfirmationNumber, Frame, MessageId, ServerError, MAX_FRAME_LEN, NONCE_LEN,
};
use pawpost_store::StoreResult;
use socket::{Incoming, ToySocket, ToyUpgrade};
use std::net::IpAddr;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::task::Poll;
use time::OffsetDateTime;
use uuid::Uuid;

/// A toy's connection (WebSocket upgrade).
#[utoipa::path(get, path = "/api/v1/toy/ws", tag = "toys",
    responses((status = 101, description = "Switching to the toy protocol (docs/TOY-PROTOCOL.md)"),
        (status = 426, description = "The server is configured to accept only toy protocol version 3 (`--toy-min-protocol 3`): the toy must connect to /api/v1/toy/channel", body = crate::error::ErrorBody)))]
pub async fn toy_ws(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    ws: ToyUpgrade,
) -> Response {
    if state.config.toy_min_protocol > OLDEST_TOY_PROTOCOL {
        return channel::version_2_refused(&state, addr);
    }
    upgrade(state, addr, ws, MAX_FRAME_LEN, run)
}

/// Upgrades a toy's WebSocket (version 2 or the version 3 channel) once its address may
/// hold one more connection that has not authenticated yet; `run` then serves it.
fn upgrade<F, Fut>(
    state: AppState,
    addr: IpAddr,
    ws: ToyUpgrade,
    max_message_len: usize,
    run: F,
) -> Response
where
    F: FnOnce(AppState, ToySocket, IpAddr, Unauthenticated) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let Some(waiting) = state.toys.unauthenticated(
        address_key(addr),
        MAX_UNAUTHENTICATED_TOY_SOCKETS_PER_ADDRESS,
    ) else {
        return ApiError::too_many(
            TOY_HELLO_DEADLINE,
            "too many toy connections from this address wait to authenticate; try again later",
        )
        .into_response();
    };
    ws.on_upgrade(max_message_len, move |socket| {
        run(state, socket, addr, waiting)
    })
}

/// What a connection knows of its toy. It lives as long as the connection, so what only
/// some connections need (a stream, an update, the channel) is boxed or behind a pointer.
struct Session {
    state: AppState,
    addr: IpAddr,
    outbox: Outbox,
    nonce: [u8; NONCE_LEN],
    /// The toy on this connection once it asked to pair or authenticated, with the hub's
    /// connection id and the encoded identity whose keys it proved.
    toy: Option<(DeviceId, u64, std::sync::Arc<[u8]>)>,
    auth_failures: u32,
    /// Chunked deliveries and uploads (protocol version 2).
    streams: stream::Streams,
    /// What the toy said it runs on this connection, and the release offered to it.
    update: update::Updates,
    /// The channel the connection runs in (protocol version 3), if any.
    link: Option<channel::Link>,
}

fn run(
    state: AppState,
    socket: ToySocket,
    addr: IpAddr,
    waiting: Unauthenticated,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let hello_by = tokio::time::Instant::now() + TOY_HELLO_DEADLINE;
    serve(Connection::new(
        state, socket, addr, waiting, None, hello_by,
    ))
}

/// A frame for the toy, sealed into a record of its channel if it has one; `None` if the
/// channel cannot carry it (the connection must end: a frame is never sent in the clear).
fn outgoing(link: Option<&channel::Link>, frame: Vec<u8>) -> Option<Vec<u8>> {
    match link {
        Some(link) => link.seal(&frame),
        None => Some(frame),
    }
}

/// Writes `frame` (from the outbox) to the toy; false if the connection must end.
async fn write_out(socket: &mut ToySocket, link: Option<&channel::Link>, frame: Vec<u8>) -> bool {
    match outgoing(link, frame) {
        Some(bytes) => socket.send(&bytes).await.is_ok(),
        None => false,
    }
}

/// Everything a toy's connection keeps, in one allocation: the task serving it holds
/// only a pointer to it, and what it waits on.
struct Connection {
    session: Session,
    socket: ToySocket,
    /// Counted against its address until it authenticates or asks to pair.
    waiting: Option<Unauthenticated>,
    /// Until it authenticates or asks to pair: when it is closed if it has done neither,
    /// however many pings it sends meanwhile.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// What woke a waiting connection.
enum Woken {
    /// A frame for the toy, from the outbox.
    Out(Vec<u8>),
    /// Something from the toy.
    In(Incoming),
    /// The outbox was closed, or the toy missed its deadline.
    Over,
}

impl Connection {
    /// A toy's connection; with `link`, every frame both ways is a record of its channel.
    fn new(
        state: AppState,
        socket: ToySocket,
        addr: IpAddr,
        waiting: Unauthenticated,
        link: Option<channel::Link>,
        hello_by: tokio::time::Instant,
    ) -> Box<Self> {
        let outbox = Outbox::new(TOY_OUTBOX_FRAMES);
        Box::new(Self {
            session: Session {
                state,
                addr,
                outbox,
                nonce: [0; NONCE_LEN],
                toy: None,
                auth_failures: 0,
                streams: stream::Streams::default(),
                update: update::Updates::default(),
                link,
            },
            socket,
            waiting: Some(waiting),
            deadline: Some(Box::pin(tokio::time::sleep_until(hello_by))),
        })
    }

    /// Waits for the toy's next message, a frame in the outbox or the deadline, in that
    /// order: all an idle connection does, with no future of its own for any of them.
    async fn wait(&mut self) -> Woken {
        std::future::poll_fn(|cx| {
            if let Poll::Ready(frame) = self.session.outbox.poll_recv(cx) {
                return Poll::Ready(frame.map_or(Woken::Over, Woken::Out));
            }
            if let Poll::Ready(incoming) = self.socket.poll_recv(cx) {
                return Poll::Ready(Woken::In(incoming));
            }
            if let Some(deadline) = &mut self.deadline {
                if std::future::Future::poll(deadline.as_mut(), cx).is_ready() {
                    return Poll::Ready(Woken::Over);
                }
            }
            Poll::Pending
        })
        .await
    }

    /// Acts on what woke the connection; `Break` with the close code to answer when the
    /// connection must end.
    async fn act(&mut self, woken: Woken) -> ControlFlow<Option<[u8; 2]>> {
        let Self {
            session, socket, ..
        } = self;
        let outbox = session.outbox.clone();
        let bytes = match woken {
            Woken::Out(frame) => {
                return match write_out(socket, session.link.as_ref(), frame).await {
                    true => ControlFlow::Continue(()),
                    false => ControlFlow::Break(None),
                };
            }
            Woken::Over => return ControlFlow::Break(None),
            Woken::In(Incoming::Binary(bytes)) => bytes,
            Woken::In(Incoming::Ping(payload)) => {
                return match socket.pong(&payload).await {
                    Ok(()) => ControlFlow::Continue(()),
                    Err(_) => ControlFlow::Break(None),
                };
            }
            Woken::In(Incoming::Close(code)) => return ControlFlow::Break(code),
            Woken::In(Incoming::End) => return ControlFlow::Break(None),
        };
        let bytes = match &session.link {
            Some(link) => match link.open(&bytes, session.addr) {
                Some(frame) => frame,
                None => return ControlFlow::Break(None),
            },
            None => bytes,
        };
        // Boxed: handling a frame needs a large future (storage, crypto).
        let link = session.link.clone();
        let mut handling = Box::pin(session.on_frame(&bytes));
        let mut broken = false;
        let flow = loop {
            tokio::select! {
                biased;
                flow = &mut handling => break flow,
                Some(frame) = outbox.recv(), if !broken => {
                    broken = !Box::pin(write_out(socket, link.as_ref(), frame)).await;
                    if broken {
                        // Nothing more is written: a handler waiting for room must not wait.
                        outbox.close();
                    }
                }
            }
        };
        if flow.is_break() || broken {
            ControlFlow::Break(None)
        } else {
            ControlFlow::Continue(())
        }
    }

    /// Leaves the hub, writes what was put in the outbox before the end, then the close
    /// (answering the toy's `close_code`).
    async fn finish(&mut self, close_code: Option<[u8; 2]>) {
        let Self {
            session,
            socket,
            waiting,
            ..
        } = self;
        *waiting = None;
        let outbox = session.outbox.clone();
        if let Some((device, id, _)) = session.toy.take() {
            if session.state.toys.leave(device, id) {
                toys::disconnected(&session.state, device).await;
            }
        }
        outbox.close();
        let link = session.link.take();
        while let Some(frame) = outbox.recv().await {
            if !write_out(socket, link.as_ref(), frame).await {
                return;
            }
        }
        socket.close(close_code).await;
    }
}

/// Serves a toy's connection to its end.
///
/// One task serves the connection: it waits for the toy's next message or a frame in
/// the outbox, whichever comes first, and while a message is handled (storage, crypto)
/// it keeps writing the outbox, as a separate writer would. Its future holds the boxed
/// [`Connection`] and the wait; acting on what woke it is boxed while it runs.
async fn serve(mut connection: Box<Connection>) {
    Box::pin(connection.session.challenge()).await;
    let close_code = loop {
        if connection.session.toy.is_some() {
            connection.waiting = None;
            connection.deadline = None;
        }
        let woken = connection.wait().await;
        if let ControlFlow::Break(close_code) = Box::pin(connection.act(woken)).await {
            break close_code;
        }
    };
    Box::pin(connection.finish(close_code)).await;
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
        let server_time_ms =
            u64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
                .unwrap_or(0);
        self.send(&Frame::Challenge {
            nonce: self.nonce,
            server_time_ms,
        })
        .await;
    }

    /// The toy this very connection authenticated as. A device id held by the hub is not
    /// enough: the hub's connection for it must be this one.
    fn authenticated(&self) -> Option<DeviceId> {
        let (device, connection, _) = self.toy.as_ref()?;
        (self.state.toys.mode_of(*device, *connection) == Some(ToyMode::Authenticated))
            .then_some(*device)
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
            } => self
                .pair_request(identity, &signature)
                .await
                .map_err(MessageError::from),
            Frame::Auth {
                device_id,
                roster_version,
                signature,
            } => self
                .auth(device_id, roster_version, &signature)
                .await
                .map_err(MessageError::from),
            Frame::PairConfirmed { number } => self
                .pair_confirmed(number)
                .await
                .map_err(MessageError::from),
            Frame::ChunkRequest { message_id, .. }
                if message_id == pawpost_protocol::STREAMING_HELLO && self.toy.is_none() =>
            {
                // Said before `Auth`, so that the first messages are streamed already.
                self.streams.hello = true;
                Ok(ControlFlow::Continue(()))
            }
            other => match self.authenticated() {
                Some(toy) => self.handle_toy_frame(toy, other).await,
                None => {
                    tracing::info!(client = %self.addr, "toy frame before authentication; closing");
                    return ControlFlow::Break(());
                }
            },
        };
        result.unwrap_or_else(|e| {
            tracing::error!(error = %e, "toy connection failed");
            ControlFlow::Break(())
        })
    }

    async fn pair_request(
        &mut self,
        identity: PublicIdentity,
        signature: &[u8; 64],
    ) -> StoreResult<ControlFlow<()>> {
        // A toy whose pairing failed (its code was contested, say) may ask again on the
        // same connection, with the same keys; nothing else that proved keys here may.
        let encoded: std::sync::Arc<[u8]> = identity.encode()[..].into();
        let asked_before = match &self.toy {
            None => None,
            Some((device, connection, proved)) => {
                let pairing_here = self.state.toys.mode_of(*device, *connection)
                    == Some(ToyMode::Pairing)
                    && *proved == encoded;
                if !pairing_here {
                    self.fail(ServerError::PairingRefused).await;
                    return Ok(ControlFlow::Break(()));
                }
                Some(*connection)
            }
        };
        if !verify_pair_request(&identity, &self.nonce, signature) {
            self.fail(ServerError::PairingRefused).await;
            return Ok(ControlFlow::Break(()));
        }
        let device = domain_device_id(identity.device_id);
        let code = match toys::request_code(&self.state, self.addr, &identity).await? {
            CodeRequest::Refused => {
                self.fail(ServerError::PairingRefused).await;
                return Ok(ControlFlow::Break(()));
            }
            CodeRequest::Taken => None,
            CodeRequest::Code(code) => Some(code),
        };
        let joined = code.and_then(|code| {
            if let Some(connection) = asked_before {
                return Some((code, connection));
            }
            self.state
                .toys
                .join(
                    device,
                    encoded.clone(),
                    ToyMode::Pairing,
                    0,
                    self.outbox.clone(),
                )
                .ok()
                .map(|connection| (code, connection))
        });
        let Some((code, connection)) = joined else {
            tracing::info!(toy = %device, client = %self.addr, "pairing refused: the device id is pairing with other keys");
            self.fail(ServerError::PairingRefused).await;
            return Ok(ControlFlow::Break(()));
        };
        self.toy = Some((device, connection, encoded));
        channel::keep_number(&self.state, self.link.as_ref(), device, code).await?;
        toys::code_given(&self.state, device, self.addr).await;
        self.send(&Frame::PairCode {
            code,
            expires_in_s: u32::try_from(PAIRING_CODE_TTL.as_secs()).unwrap_or(u32::MAX),
        })
        .await;
        Ok(ControlFlow::Continue(()))
    }

    async fn auth(
        &mut self,
        device_id: pawpost_protocol::DeviceId,
        roster_version: u64,
        signature: &[u8; 64],
    ) -> StoreResult<ControlFlow<()>> {
        let id = domain_device_id(device_id);
        let checked = toys::authenticate(
            &self.state,
            self.addr,
            id,
            &self.nonce,
            roster_version,
            signature,
        )
        .await?;
        let toy = match checked {
            Authentication::Throttled => {
                self.fail(ServerError::AuthFailed).await;
                return Ok(ControlFlow::Break(()));
            }
            // A connection that asked to pair cannot authenticate as well.
            Authentication::Verified(toy) if self.toy.is_none() => toy,
            // Signed out by an owner while it was off: it gets the goodbye, forgets its
            // household and connects again as an unpaired toy.
            Authentication::SignedOut(farewell) if self.toy.is_none() => {
                tracing::info!(toy = %id, household = %farewell.household_id, "a toy removed from its household while off reconnected; sending its goodbye");
                self.send(&crate::delivery::leave_frame(&farewell)).await;
                return Ok(ControlFlow::Break(()));
            }
            Authentication::Verified(_) | Authentication::SignedOut(_) | Authentication::Failed => {
                self.auth_failures += 1;
                toys::authentication_failed(&self.state, self.addr, id).await;
                self.fail(ServerError::AuthFailed).await;
                if self.auth_failures >= TOY_AUTH_ATTEMPTS {
                    return Ok(ControlFlow::Break(()));
                }
                self.challenge().await;
                return Ok(ControlFlow::Continue(()));
            }
        };
        // It proved the stored keys: it takes the place of any other connection for this
        // id, which can only be an older one of its own or one that proved nothing.
        let identity: std::sync::Arc<[u8]> = toy.identity[..].into();
        let connection = self
            .state
            .toys
            .join(
                id,
                identity.clone(),
                ToyMode::Authenticated,
                roster_version,
                self.outbox.clone(),
            )
            .expect("an authenticated connection always joins");
        self.toy = Some((id, connection, identity));
        if self.streams.hello {
            self.state.toys.set_streaming(id, connection);
        }
        toys::connected(&self.state, &toy, self.addr).await?;
        Ok(ControlFlow::Continue(()))
    }

    /// Someone pressed the paw while the toy spoke `number`: the pairing a parent claimed
    /// completes, and the toy joins the claiming household once an owner's roster lists
    /// it. Only the connection that asked for the code, with the keys the code was given
    /// to, can confirm, and only the number of the current claim.
    async fn pair_confirmed(&mut self, number: ConfirmationNumber) -> StoreResult<ControlFlow<()>> {
        let Some((device, connection, identity)) = self.toy.clone() else {
            tracing::info!(client = %self.addr, "pairing confirmed before pairing; closing");
            return Ok(ControlFlow::Break(()));
        };
        if self.state.toys.mode_of(device, connection) != Some(ToyMode::Pairing) {
            return Ok(ControlFlow::Continue(()));
        }
        match toys::confirm_pairing(&self.state, device, &identity, number, self.addr).await? {
            Confirmation::Expired => self.fail(ServerError::PairingExpired).await,
            Confirmation::Refused => self.fail(ServerError::PairingRefused).await,
            Confirmation::Paired(_) => {}
        }
        Ok(ControlFlow::Continue(()))
    }

    async fn handle_toy_frame(
        &mut self,
        toy: DeviceId,
        frame: Frame<'_>,
    ) -> Result<ControlFlow<()>, MessageError> {
        match frame {
            Frame::Delivered { message_id } => {
                messages::toy_receipt(
                    &self.state,
                    toy,
                    message_uuid(message_id),
                    ReceiptState::Delivered,
                )
                .await?;
                self.delivery_ended(toy, message_id, None).await?;
            }
            Frame::Played { message_id } => {
                messages::toy_receipt(
                    &self.state,
                    toy,
                    message_uuid(message_id),
                    ReceiptState::Played,
                )
                .await?;
                self.room_made(toy).await?;
            }
            Frame::Rejected { message_id, reason } => {
                messages::toy_rejected(&self.state, toy, message_uuid(message_id), reason).await?;
                self.delivery_ended(toy, message_id, Some(reason)).await?;
            }
            Frame::RosterRejected { version, reason } => {
                tracing::warn!(toy = %toy, version, reason = reason.code(), "toy refused a roster");
            }
            Frame::Upload { envelope } => self.upload(toy, envelope).await?,
            Frame::ChunkRequest {
                message_id,
                next_index,
                window,
            } => {
                self.chunk_request(toy, message_id, next_index, window)
                    .await?
            }
            Frame::UploadChunk {
                message_id,
                offset,
                total_len,
                bytes,
            } => {
                self.upload_chunk(toy, message_id, offset, total_len, bytes)
                    .await?
            }
            Frame::RotateKey {
                new_identity,
                signature_by_old_key,
            } => {
                self.rotate(toy, new_identity, &signature_by_old_key)
                    .await?
            }
            Frame::Version {
                board,
                version,
                counter,
            } => self.version(toy, board, version, counter).await?,
            Frame::UpdateRequest { offset, window } => {
                self.update_request(toy, offset, window).await?
            }
            other => {
                tracing::info!(toy = %toy, frame = ?other.frame_type(), "toy sent a server-to-toy frame; ignored");
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    async fn upload(&self, toy: DeviceId, envelope: &[u8]) -> Result<(), MessageError> {
        let Some(household) = toys::may_upload(&self.state, toy, envelope.len()).await? else {
            self.fail(ServerError::UploadRefused).await;
            return Ok(());
        };
        let accepted = messages::accept(
            &self.state,
            household,
            envelope.to_vec(),
            Uploader::Toy(toy),
        )
        .await;
        match accepted {
            Ok(message) => {
                self.send(&Frame::UploadAck {
                    message_id: MessageId(*message.id.as_bytes()),
                })
                .await
            }
            Err(e) if e.is_server_fault() => return Err(e),
            Err(e) => {
                tracing::info!(toy = %toy, reason = %e, "toy upload refused");
                self.fail(ServerError::UploadRefused).await;
            }
        }
        Ok(())
    }

    async fn rotate(
        &mut self,
        toy: DeviceId,
        new: PublicIdentity,
        signature: &[u8; 64],
    ) -> StoreResult<()> {
        let rotated =
            toys::rotate_key(&self.state, toy, &new, &self.nonce, signature, self.addr).await?;
        let Some(encoded) = rotated else {
            self.fail(ServerError::RotateRefused).await;
            return Ok(());
        };
        let encoded: std::sync::Arc<[u8]> = encoded[..].into();
        if let Some((_, connection, identity)) = &mut self.toy {
            self.state.toys.rotated(toy, *connection, encoded.clone());
            *identity = encoded;
        }
        self.send(&Frame::RotateAck {
            ed25519_pub: new.ed25519_pub,
        })
        .await;
        Ok(())
    }
}
