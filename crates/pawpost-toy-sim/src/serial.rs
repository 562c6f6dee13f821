//! `pawpost toy --serial-listen ADDR`: the simulated toy reached through a phone, the way
//! the firmware is. A phone (`pawpost relay --serial tcp:ADDR`, or the web app's Bluetooth
//! relay bridged by a test) connects to `ADDR` and speaks the firmware's link: packets of
//! kind and length carrying `pawpost-ble` fragments, "server up (MTU)", "server down" and
//! "reconnect after N ms" (docs/FIRMWARE.md, "The link").
//!
//! The toy itself still opens WebSockets; they go to a bridge inside this process on a
//! loopback port, which turns the link into them: a WebSocket of the toy is answered only
//! while the phone holds a server connection, the toy's frames become fragments for the
//! phone and the phone's fragments become frames for the toy. When the toy closes its
//! WebSocket (to authenticate on a new one, or after a refusal) the bridge asks the phone
//! for a new server connection. The bridge never reads a frame.
//!
//! With `--channel` (toy protocol version 3) the toy opens its channel's path on the bridge
//! instead, and what crosses the link are the channel's messages, which the toy sends
//! first; the phone must then open the server's `/api/v1/toy/channel` (the web app's
//! Bluetooth relay does). The bridge carries them the same way: it does not look at the
//! path or at what it carries.

use std::net::SocketAddr;

use eyre::{eyre, WrapErr};
use futures_util::{SinkExt, StreamExt};
use pawpost_ble::{Fragmenter, Reassembler, MAX_FRAME_LEN};
use pawpost_firmware::link::{Decoder, Packet, MAX_LINK_MTU};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::TOY_WS_PATH;

/// Bytes read from the phone at a time.
const READ_CHUNK: usize = 4096;
/// Frames of the phone's server connection kept until the toy's connection is answered
/// (the server speaks first, with its `Challenge`, perhaps before the toy is back).
const MAX_HELD_FRAMES: usize = 16;

/// A listening link: the phone connects to [`SerialLink::address`], and the toy's
/// [`crate::SimConfig::server`] is [`SerialLink::toy_server`].
pub struct SerialLink {
    address: SocketAddr,
    toy_server: String,
    task: JoinHandle<()>,
}

impl SerialLink {
    /// Listens for the phone on `listen` (port 0 picks a free one) and for the toy's
    /// WebSockets on a loopback port.
    pub async fn listen(listen: SocketAddr) -> eyre::Result<SerialLink> {
        let phone = TcpListener::bind(listen).await.wrap_err_with(|| {
            format!("cannot listen for the phone on {listen} (is the port taken?)")
        })?;
        let toy = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
            .await
            .wrap_err("cannot listen on a loopback port for the toy's own connections")?;
        let address = phone.local_addr()?;
        let toy_server = format!("ws://{}{TOY_WS_PATH}", toy.local_addr()?);
        let task = tokio::spawn(run(phone, toy));
        Ok(SerialLink {
            address,
            toy_server,
            task,
        })
    }

    /// Where the phone connects.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The address the simulated toy connects to instead of a server.
    pub fn toy_server(&self) -> &str {
        &self.toy_server
    }
}

impl Drop for SerialLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type ToyWs = WebSocketStream<TcpStream>;

/// The phone's side: what it said about the server.
struct Phone {
    stream: TcpStream,
    decoder: Decoder,
    /// The phone's server connection, while it is open.
    up: Option<Up>,
}

/// One server connection of the phone: its numbering at its MTU, and the server's frames
/// that came before the toy's connection was answered.
struct Up {
    fragmenter: Fragmenter,
    reassembler: Reassembler,
    held: Vec<Vec<u8>>,
}

async fn run(phone_listener: TcpListener, toy_listener: TcpListener) {
    let mut toy: Option<ToyWs> = None;
    // A toy's connection waiting for the phone's server connection before it is answered.
    let mut waiting: Option<TcpStream> = None;
    loop {
        let phone = tokio::select! {
            accepted = phone_listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            accepted = toy_listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    toy = None;
                    waiting = Some(stream);
                }
                continue;
            }
        };
        let _ = phone.set_nodelay(true);
        let mut phone = Phone {
            stream: phone,
            decoder: Decoder::new(),
            up: None,
        };
        // The phone went away: the toy's connection went with it.
        let _ = carry(&mut phone, &toy_listener, &mut toy, &mut waiting).await;
        toy = None;
    }
}

/// Carries one phone's link until it closes or fails.
async fn carry(
    phone: &mut Phone,
    toy_listener: &TcpListener,
    toy: &mut Option<ToyWs>,
    waiting: &mut Option<TcpStream>,
) -> eyre::Result<()> {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        tokio::select! {
            read = phone.stream.read(&mut buf) => {
                let n = read?;
                if n == 0 {
                    return Ok(());
                }
                for &byte in &buf[..n] {
                    if let Some(packet) = phone.decoder.push(byte) {
                        from_phone(phone, packet, toy, waiting).await?;
                    }
                }
            }
            accepted = toy_listener.accept() => {
                let (stream, _) = accepted?;
                // The toy opens one connection at a time: a new one means it left the old,
                // which belonged to the phone's server connection of then.
                if toy.take().is_some() {
                    toy_left(phone).await?;
                }
                *waiting = Some(stream);
                if let Some(up) = phone.up.as_mut() {
                    *toy = answer(waiting.take(), up).await;
                }
            }
            message = next_from(toy) => match message {
                Some(Ok(Message::Binary(frame))) => {
                    let fragments = match phone.up.as_mut().map(|up| up.fragmenter.fragment(&frame)) {
                        Some(Ok(fragments)) => fragments.collect::<Vec<_>>(),
                        // Too large for the link (the relay would drop it too), or no server.
                        Some(Err(_)) | None => continue,
                    };
                    for fragment in fragments {
                        send(&mut phone.stream, &Packet::Fragment(fragment)).await?;
                    }
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => {
                    // The toy left its connection: it wants a new one to the server.
                    *toy = None;
                    toy_left(phone).await?;
                }
                Some(Ok(_)) => {}
            },
        }
    }
}

/// The toy closed its connection: the phone's server connection ends with it, and the
/// phone is asked for a new one (at once: the toy keeps its own back-off before it opens
/// its next connection, which waits for the new server connection).
async fn toy_left(phone: &mut Phone) -> eyre::Result<()> {
    if phone.up.take().is_some() {
        send(&mut phone.stream, &Packet::Reconnect { wait_ms: 0 }).await?;
    }
    Ok(())
}

async fn from_phone(
    phone: &mut Phone,
    packet: Packet,
    toy: &mut Option<ToyWs>,
    waiting: &mut Option<TcpStream>,
) -> eyre::Result<()> {
    match packet {
        Packet::ServerUp { mtu } => {
            if mtu > MAX_LINK_MTU {
                return Ok(());
            }
            let (Ok(fragmenter), Ok(reassembler)) =
                (Fragmenter::new(mtu), Reassembler::new(mtu, MAX_FRAME_LEN))
            else {
                return Ok(());
            };
            let up = phone.up.insert(Up {
                fragmenter,
                reassembler,
                held: Vec::new(),
            });
            if waiting.is_some() {
                *toy = answer(waiting.take(), up).await;
            }
        }
        Packet::ServerDown => {
            phone.up = None;
            if let Some(mut ws) = toy.take() {
                let _ = ws.close(None).await;
            }
        }
        Packet::Fragment(fragment) => {
            let Some(up) = phone.up.as_mut() else {
                return Ok(());
            };
            // Damaged or partial fragments: as the toy's own reassembler would, the bridge
            // waits for whole frames.
            let Ok(Some(frame)) = up.reassembler.push(&fragment) else {
                return Ok(());
            };
            let frame = frame.data.to_vec();
            match toy.as_mut() {
                Some(ws) => {
                    let sent = ws.send(Message::Binary(frame.into())).await;
                    if sent.is_err() {
                        *toy = None;
                    }
                }
                None if up.held.len() < MAX_HELD_FRAMES => up.held.push(frame),
                None => {}
            }
        }
        Packet::Reconnect { .. } | Packet::Unknown { .. } => {}
    }
    Ok(())
}

/// Completes the toy's WebSocket handshake, with the toy endpoint's limits, and gives the
/// toy the server's frames that came first.
async fn answer(stream: Option<TcpStream>, up: &mut Up) -> Option<ToyWs> {
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME_LEN))
        .max_frame_size(Some(MAX_FRAME_LEN));
    let mut ws = tokio_tungstenite::accept_async_with_config(stream?, Some(config))
        .await
        .ok()?;
    for frame in up.held.drain(..) {
        ws.send(Message::Binary(frame.into())).await.ok()?;
    }
    Some(ws)
}

async fn next_from(
    toy: &mut Option<ToyWs>,
) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
    match toy {
        Some(ws) => ws.next().await,
        None => std::future::pending().await,
    }
}

async fn send(stream: &mut TcpStream, packet: &Packet) -> eyre::Result<()> {
    let bytes = packet
        .encode()
        .ok_or_else(|| eyre!("a fragment too long for the link"))?;
    stream
        .write_all(&bytes)
        .await
        .wrap_err("writing to the phone")
}
