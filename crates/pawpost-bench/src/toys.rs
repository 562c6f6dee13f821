//! Toy clients on the WebSocket: challenge, signed `Auth`, then held open (idle) or read
//! (delivery).
use crate::keys::ToyAuthKey;
use eyre::{bail, eyre, Result};
use futures_util::{SinkExt, StreamExt};
use pawpost_protocol::Frame;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

/// A toy's socket, over TLS under `--tls`.
pub type Ws = WebSocketStream<Box<dyn crate::tls::Io>>;

/// Loopback source addresses the toys take in turn: toys connect from many homes, and
/// the server limits the sockets of one address that have not yet authenticated.
const SOURCES: u64 = 64;
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// 127.0.0.2 to 127.0.0.65 in turn: 50k toys take under 800 ports of each.
fn source_for(index: u64) -> IpAddr {
    let n = u8::try_from(index % SOURCES + 2).expect("SOURCES + 2 fits in a byte");
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// The next delivery a reading toy gets, as a real toy takes it: the envelope of the next
/// `Deliver`, the moment it came, and its message id, once the `Delivered` receipt is
/// sent back (the receipt the server stores and announces). Other frames are passed
/// over; `None` once `stop` is set or the socket ends.
pub async fn next_delivery(
    ws: &mut Ws,
    stop: &std::sync::atomic::AtomicBool,
) -> Option<(Vec<u8>, Instant, pawpost_crypto::MessageId)> {
    while !stop.load(Ordering::Relaxed) {
        let Some(Ok(message)) = ws.next().await else {
            break;
        };
        let WsMessage::Binary(bytes) = message else {
            continue;
        };
        let Ok(Frame::Deliver { envelope }) = Frame::decode(&bytes) else {
            continue;
        };
        let at = Instant::now();
        let Ok(parsed) = pawpost_crypto::Envelope::parse(envelope) else {
            continue;
        };
        let id = parsed.header().message_id;
        if let Ok(ack) = (Frame::Delivered { message_id: id }).encode() {
            let _ = ws.send(WsMessage::Binary(ack.into())).await;
        }
        return Some((envelope.to_vec(), at, id));
    }
    None
}

async fn next_binary(ws: &mut Ws) -> Result<Vec<u8>> {
    loop {
        match tokio::time::timeout(STEP_TIMEOUT, ws.next()).await {
            Err(_) => bail!("no frame from the server within {STEP_TIMEOUT:?}"),
            Ok(None) => bail!("the server closed the connection"),
            Ok(Some(Err(e))) => bail!("WebSocket error: {e}"),
            Ok(Some(Ok(WsMessage::Binary(bytes)))) => return Ok(bytes.to_vec()),
            Ok(Some(Ok(WsMessage::Close(_)))) => bail!("the server closed the connection"),
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// Connects toy `index`, answers the challenge, and waits for the roster the server sends
/// to a toy that says it holds version 0: proof that the server accepted the signature.
pub async fn connect_toy(server: SocketAddr, index: u64) -> Result<Ws> {
    connect_toy_with(server, index, &ToyAuthKey::toy(index)).await
}

/// [`connect_toy`] with toy `index`'s key derived beforehand.
async fn connect_toy_with(server: SocketAddr, index: u64, toy: &ToyAuthKey) -> Result<Ws> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source_for(index), 0))?;
    let stream = tokio::time::timeout(STEP_TIMEOUT, socket.connect(server))
        .await
        .map_err(|_| eyre!("TCP connect timed out"))??;
    stream.set_nodelay(true)?;
    let stream = tokio::time::timeout(STEP_TIMEOUT, crate::tls::wrap(stream))
        .await
        .map_err(|_| eyre!("TLS handshake timed out"))??;
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(pawpost_protocol::MAX_FRAME_LEN))
        .max_frame_size(Some(pawpost_protocol::MAX_FRAME_LEN));
    let scheme = if crate::tls::current().is_some() {
        "wss"
    } else {
        "ws"
    };
    let url = format!("{scheme}://{server}/api/v1/toy/ws");
    let (mut ws, _) = tokio::time::timeout(
        STEP_TIMEOUT,
        tokio_tungstenite::client_async_with_config(url, stream, Some(config)),
    )
    .await
    .map_err(|_| eyre!("WebSocket handshake timed out"))??;
    let challenge = next_binary(&mut ws).await?;
    let nonce = match Frame::decode(&challenge).map_err(|e| eyre!("{e:?}"))? {
        Frame::Challenge { nonce, .. } => nonce,
        other => bail!("expected a challenge, got {:?}", other.frame_type()),
    };
    let auth = Frame::Auth {
        device_id: toy.id,
        roster_version: 0,
        signature: toy.sign_auth(&nonce, 0),
    }
    .encode()
    .map_err(|e| eyre!("{e:?}"))?;
    ws.send(WsMessage::Binary(auth.into())).await?;
    let reply = next_binary(&mut ws).await?;
    match Frame::decode(&reply).map_err(|e| eyre!("{e:?}"))? {
        Frame::RosterUpdate { .. } => Ok(ws),
        Frame::Error { code } => bail!("authentication refused: {code:?}"),
        other => bail!("unexpected {:?} after Auth", other.frame_type()),
    }
}

pub struct Connected {
    /// Each connected toy's index and socket.
    pub sockets: Vec<(u64, Ws)>,
    pub failures: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
}

/// Connects toys `first..first + count` with `concurrency` connections in flight; each
/// worker task holds many connections. Stops starting new ones after `budget`.
pub async fn connect_many(
    server: SocketAddr,
    first: u64,
    count: u64,
    concurrency: usize,
    budget: Duration,
) -> Connected {
    // Each toy holds its keys; deriving them is no part of connecting.
    let keys: Arc<[ToyAuthKey]> = (first..first + count).map(ToyAuthKey::toy).collect();
    let next = Arc::new(AtomicU64::new(first));
    let failures = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + budget;
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (next, failures, keys) = (next.clone(), failures.clone(), keys.clone());
        workers.push(tokio::spawn(async move {
            let mut held = Vec::new();
            let mut first_error = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= first + count || Instant::now() > deadline {
                    break;
                }
                let key = &keys[usize::try_from(i - first).expect("a toy's place in memory")];
                match connect_toy_with(server, i, key).await {
                    Ok(ws) => held.push((i, ws)),
                    Err(e) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        first_error.get_or_insert_with(|| format!("toy {i}: {e}"));
                    }
                }
            }
            (held, first_error)
        }));
    }
    let mut sockets = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let mut first_error = None;
    for w in workers {
        if let Ok((held, err)) = w.await {
            sockets.extend(held);
            if first_error.is_none() {
                first_error = err;
            }
        }
    }
    Connected {
        sockets,
        failures: failures.load(Ordering::Relaxed),
        first_error,
        elapsed: started.elapsed(),
    }
}
