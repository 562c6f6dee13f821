//! The toy's channel, `/api/v1/toy/channel` (toy protocol version 3, docs/TOY-PROTOCOL.md):
//! the server's side of `pawpost-channel`. The toy speaks first: the server answers its
//! handshake (Noise XX while pairing, IK with the key the toy pinned afterwards) with its
//! static key, kept among the server's secrets, and only then runs the connection of
//! `/api/v1/toy/ws`, every frame in both directions one padded, encrypted record. A
//! message that does not decrypt (injected, altered, replayed, reordered) or comes out of
//! turn ends the connection before any frame in it is acted on.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use pawpost_channel::{
    accept, Accepted, Channel, ChannelError, StaticKey, KEY_LEN, MAX_MESSAGE_LEN,
};
use pawpost_domain::DeviceId;
use pawpost_protocol::{ConfirmationNumber, PairingCode};
use pawpost_store::StoreResult;
use zeroize::Zeroizing;

use crate::auth::ClientAddr;
use crate::config::{CHANNEL_TOY_PROTOCOL, TOY_HELLO_DEADLINE};
use crate::error::ApiError;
use crate::state::AppState;
use crate::toyhub::Unauthenticated;

use super::socket::{Incoming, ToySocket};

/// The name of the server's channel key among its secrets
/// (`MetadataStore::server_secret`): made once, the same for every process.
const CHANNEL_KEY_NAME: &str = "toy-channel-static-key";
/// The path of the channel, named in the refusal of version 2 toys.
const CHANNEL_PATH: &str = "/api/v1/toy/channel";

/// A toy's channel (WebSocket upgrade).
#[utoipa::path(get, path = "/api/v1/toy/channel", tag = "toys",
    responses((status = 101, description = "Switching to the toy protocol's encrypted channel, version 3 (docs/TOY-PROTOCOL.md): the toy sends its handshake first")))]
pub async fn toy_channel(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    ws: super::ToyUpgrade,
) -> Response {
    super::upgrade(state, addr, ws, MAX_MESSAGE_LEN, run)
}

/// The answer on `/api/v1/toy/ws` when the server accepts only version 3
/// (`ServerConfig::toy_min_protocol`): 426, with what the toy's maker has to do.
pub(super) fn version_2_refused(state: &AppState, addr: IpAddr) -> Response {
    tracing::info!(
        client = %addr,
        min_protocol = state.config.toy_min_protocol,
        "refused a toy speaking protocol version 2 on /api/v1/toy/ws"
    );
    let mut response = ApiError::new(
        StatusCode::UPGRADE_REQUIRED,
        "toy_protocol_too_old",
        format!(
            "this server accepts toys speaking toy protocol version {} or later only; update the toy's software so that it speaks version {CHANNEL_TOY_PROTOCOL}, the encrypted channel at {CHANNEL_PATH} (docs/TOY-PROTOCOL.md)",
            state.config.toy_min_protocol
        ),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    response
}

/// The channel of one connection, once its handshake finished.
#[derive(Clone)]
pub(super) struct Link {
    channel: Arc<Mutex<Channel>>,
    /// While pairing, the number this side of the handshake computed.
    pub(super) pairing_number: Option<ConfirmationNumber>,
}

impl Link {
    /// `frame` as one record, or `None` if the channel cannot carry it (the connection
    /// must end: a frame is never sent in the clear).
    pub(super) fn seal(&self, frame: &[u8]) -> Option<Vec<u8>> {
        let mut record = Vec::new();
        let mut channel = self.channel.lock().unwrap_or_else(|p| p.into_inner());
        match channel.seal(frame, &mut record) {
            Ok(()) => Some(record),
            Err(e) => {
                tracing::error!(
                    error = e.code(),
                    len = frame.len(),
                    "a frame did not fit the toy's channel; closing"
                );
                None
            }
        }
    }

    /// The frame in `message`, or `None` if it is not the toy's next record (the
    /// connection must end).
    pub(super) fn open(&self, message: &[u8], addr: IpAddr) -> Option<Vec<u8>> {
        let mut channel = self.channel.lock().unwrap_or_else(|p| p.into_inner());
        match channel.open(message) {
            Ok(frame) => Some(frame),
            Err(e) => {
                tracing::info!(client = %addr, error = e.code(), "toy channel refused a message; closing");
                None
            }
        }
    }
}

/// The server's channel key, made on first use and kept among its secrets; read once per
/// process.
async fn server_key(state: &AppState) -> StoreResult<StaticKey> {
    state
        .toy_channel_key
        .get_or_try_init(|| stored_key(state))
        .await
        .cloned()
}

async fn stored_key(state: &AppState) -> StoreResult<StaticKey> {
    let fresh = Zeroizing::new(rand::random::<[u8; KEY_LEN]>());
    let kept = Zeroizing::new(state.store.server_secret(CHANNEL_KEY_NAME, &*fresh).await?);
    let secret: [u8; KEY_LEN] = kept.as_slice().try_into().map_err(|_| {
        pawpost_store::StoreError::Backend(format!(
            "the stored secret {CHANNEL_KEY_NAME} is not {KEY_LEN} bytes; delete it so that a new one is made (paired toys must then be paired again)"
        ))
    })?;
    Ok(StaticKey::from_secret(secret))
}

fn random_key() -> StaticKey {
    StaticKey::from_secret(*Zeroizing::new(rand::random::<[u8; KEY_LEN]>()))
}

/// The next binary message of the handshake.
async fn next_message(socket: &mut ToySocket) -> Option<Vec<u8>> {
    loop {
        match socket.recv().await {
            Incoming::Binary(bytes) => return Some(bytes),
            Incoming::Ping(payload) => socket.pong(&payload).await.ok()?,
            Incoming::Close(_) | Incoming::End => return None,
        }
    }
}

/// Runs the handshake; the channel once it stands.
async fn handshake(
    state: &AppState,
    socket: &mut ToySocket,
    addr: IpAddr,
) -> Result<Option<Link>, ChannelError> {
    let Some(first) = next_message(socket).await else {
        return Ok(None);
    };
    let key = match server_key(state).await {
        Ok(key) => key,
        Err(e) => {
            tracing::error!(error = %e, "the server's channel key could not be read");
            return Ok(None);
        }
    };
    let nonce = Zeroizing::new(rand::random::<[u8; KEY_LEN]>());
    let mut reply = Vec::new();
    let accepted = accept(&key, &random_key(), *nonce, &first, &mut reply)?;
    if socket.send(&reply).await.is_err() {
        return Ok(None);
    }
    let established = match accepted {
        Accepted::Resumed(done) => *done,
        Accepted::Pairing(pairing) => {
            let Some(last) = next_message(socket).await else {
                return Ok(None);
            };
            pairing.read_final(&last)?
        }
    };
    tracing::debug!(client = %addr, "toy channel established");
    Ok(Some(Link {
        channel: Arc::new(Mutex::new(established.channel)),
        pairing_number: established.pairing_number.and_then(ConfirmationNumber::new),
    }))
}

/// What a channel connection starts with, boxed so that its task's future keeps only a
/// pointer to it for as long as the toy stays (a future keeps room for what it was
/// started with all its life).
struct Start {
    state: AppState,
    socket: ToySocket,
    addr: IpAddr,
    waiting: Unauthenticated,
}

fn run(
    state: AppState,
    socket: ToySocket,
    addr: IpAddr,
    waiting: Unauthenticated,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let start = Box::new(Start {
        state,
        socket,
        addr,
        waiting,
    });
    async move {
        let Start {
            state,
            mut socket,
            addr,
            waiting,
        } = *start;
        // One deadline for the handshake and the authentication after it.
        let hello_by = tokio::time::Instant::now() + TOY_HELLO_DEADLINE;
        // Boxed: the handshake's future is large and over once the channel stands.
        let handshake = Box::pin(handshake(&state, &mut socket, addr));
        let link = match tokio::time::timeout_at(hello_by, handshake).await {
            Ok(Ok(Some(link))) => link,
            Ok(Ok(None)) | Err(_) => return,
            Ok(Err(e)) => {
                tracing::info!(client = %addr, error = e.code(), "toy channel handshake refused; closing");
                return;
            }
        };
        super::serve(super::Connection::new(
            state,
            socket,
            addr,
            waiting,
            Some(link),
            hello_by,
        ))
        .await;
    }
}

/// Keeps the channel's pairing number with the pairing `code` just given to `device`,
/// so that a parent's claim shows the number this side of the handshake computed.
pub(super) async fn keep_number(
    state: &AppState,
    link: Option<&Link>,
    device: DeviceId,
    code: PairingCode,
) -> StoreResult<()> {
    if let Some(number) = link.and_then(|l| l.pairing_number) {
        state
            .store
            .set_pairing_number(device, &code.to_string(), &number.to_string())
            .await?;
    }
    Ok(())
}
