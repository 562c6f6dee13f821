//! `pawpost relay`: stands in for the parent's phone between a toy's Bluetooth link and
//! the server. The toy's link arrives as a byte stream (an emulated UART on a TCP port,
//! carrying `pawpost-ble` fragments as `pawpost_firmware::link` describes); the relay
//! reassembles the fragments into the messages of the toy's encrypted channel (toy
//! protocol version 3) and sends them to the server's channel WebSocket
//! ([`pawpost_toy_sim::TOY_CHANNEL_PATH`]), and fragments the server's messages for the
//! toy. It holds no key of the channel: it sees handshake messages and padded records, and
//! never decrypts, signs or reads a frame.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use eyre::{bail, eyre, WrapErr};
use futures_util::{SinkExt, StreamExt};
use pawpost_ble::{Fragmenter, Reassembler};
use pawpost_firmware::link::{Decoder, Packet, MAX_LINK_MTU};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout, Instant};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// How long the relay keeps trying to reach the toy's link (an emulator still starting).
const SERIAL_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The wait between attempts to reach the toy's link.
const SERIAL_RETRY: Duration = Duration::from_millis(100);
/// The wait before opening the server connection again after it failed or closed (the
/// toy asks for longer waits itself, when the server refused it).
const SERVER_RETRY: Duration = Duration::from_secs(1);
/// A server that accepts TCP but never finishes the handshake must not hold the relay.
const SERVER_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes read from the link at a time.
const READ_CHUNK: usize = 4096;
/// The largest message carried either way: the channel's largest padded record (or
/// handshake message). Anything longer is not the channel's and is dropped.
const MAX_MESSAGE_LEN: usize = pawpost_toy::MAX_CHANNEL_MESSAGE_LEN;

/// `pawpost relay`'s options.
#[derive(Args)]
pub(crate) struct RelayArgs {
    /// The toy's link: tcp:HOST:PORT (an emulated UART, as QEMU's `-serial tcp:...`).
    #[arg(long, value_name = "tcp:HOST:PORT")]
    serial: String,
    /// The server's address: http://HOST:PORT, or https:// (the relay opens its toy
    /// channel, /api/v1/toy/channel).
    #[arg(
        long,
        env = "PAWPOST_TOY_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    server: String,
    /// The ATT MTU of the emulated Bluetooth link (23 to 258): fragments are at most
    /// MTU - 3 bytes.
    #[arg(long, default_value_t = pawpost_firmware::DEFAULT_MTU)]
    mtu: u16,
    /// A certificate (PEM) to trust for an https:// server besides the public
    /// certificate authorities, such as a test server's self-signed one.
    #[arg(long, value_name = "PEM")]
    trust_cert: Option<PathBuf>,
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// Why a server connection ended.
enum Ended {
    /// The server closed it or it failed: open it again after [`SERVER_RETRY`].
    Server(String),
    /// The toy asked for a new one after this wait.
    Toy(Duration),
}

pub(crate) async fn run(args: RelayArgs) -> eyre::Result<()> {
    let address = args.serial.strip_prefix("tcp:").ok_or_else(|| {
        eyre!(
            "--serial {:?}: give the toy's link as tcp:HOST:PORT",
            args.serial
        )
    })?;
    if pawpost_ble::att_payload_len(args.mtu).is_err() || args.mtu > MAX_LINK_MTU {
        bail!(
            "--mtu {}: give an ATT MTU from {} to {MAX_LINK_MTU}",
            args.mtu,
            pawpost_ble::MIN_ATT_MTU
        );
    }
    let url = channel_url(&args.server)?;
    let tls = if url.starts_with("wss://") {
        Some(tokio_tungstenite::Connector::Rustls(
            pawpost_toy_sim::tls_config(args.trust_cert.as_deref())?,
        ))
    } else {
        None
    };
    let serial = connect_serial(address).await?;
    eprintln!("relay: the toy's link is {address}; the server is {url}");
    let (mut link_in, mut link_out) = serial.into_split();
    let mut decoder = Decoder::new();
    loop {
        let ws = match connect_server(&url, tls.clone()).await {
            Ok(ws) => ws,
            Err(e) => {
                eprintln!("relay: {e}; trying again in {SERVER_RETRY:?}");
                sleep(SERVER_RETRY).await;
                continue;
            }
        };
        eprintln!("relay: server connection open");
        send(&mut link_out, &Packet::ServerUp { mtu: args.mtu }).await?;
        let ended = relay(ws, args.mtu, &mut decoder, &mut link_in, &mut link_out).await?;
        send(&mut link_out, &Packet::ServerDown).await?;
        let wait = match ended {
            Ended::Server(why) => {
                eprintln!("relay: server connection closed ({why})");
                SERVER_RETRY
            }
            Ended::Toy(wait) => {
                eprintln!("relay: the toy asked for a new connection in {wait:?}");
                wait
            }
        };
        sleep(wait).await;
    }
}

/// Carries one server connection until it ends. An error is the toy's link failing.
async fn relay(
    mut ws: Ws,
    mtu: u16,
    decoder: &mut Decoder,
    link_in: &mut OwnedReadHalf,
    link_out: &mut OwnedWriteHalf,
) -> eyre::Result<Ended> {
    let mut fragmenter = Fragmenter::new(mtu).map_err(|e| eyre!("{e}"))?;
    let mut reassembler = Reassembler::new(mtu, MAX_MESSAGE_LEN).map_err(|e| eyre!("{e}"))?;
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        tokio::select! {
            read = link_in.read(&mut buf) => {
                let n = read.wrap_err("reading the toy's link")?;
                if n == 0 {
                    bail!("the toy's link closed");
                }
                for &byte in &buf[..n] {
                    match decoder.push(byte) {
                        None => {}
                        Some(Packet::Fragment(fragment)) => match reassembler.push(&fragment) {
                            Ok(Some(frame)) => {
                                let frame = frame.data.to_vec();
                                if let Err(e) = ws.send(Message::Binary(frame.into())).await {
                                    return Ok(Ended::Server(e.to_string()));
                                }
                            }
                            Ok(None) => {}
                            Err(e) => eprintln!("relay: fragment from the toy dropped: {e}"),
                        },
                        Some(Packet::Reconnect { wait_ms }) => {
                            let _ = timeout(SERVER_RETRY, ws.close(None)).await;
                            return Ok(Ended::Toy(Duration::from_millis(wait_ms.into())));
                        }
                        Some(other) => eprintln!("relay: packet from the toy dropped: {other:?}"),
                    }
                }
            }
            message = ws.next() => match message {
                Some(Ok(Message::Binary(frame))) => {
                    let fragments = match fragmenter.fragment(&frame) {
                        Ok(fragments) => fragments,
                        Err(e) => {
                            eprintln!("relay: frame from the server dropped: {e}");
                            continue;
                        }
                    };
                    for fragment in fragments {
                        send(link_out, &Packet::Fragment(fragment)).await?;
                    }
                }
                Some(Ok(Message::Close(_))) | None => return Ok(Ended::Server("closed".into())),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Ok(Ended::Server(e.to_string())),
            },
        }
    }
}

/// The WebSocket address of the server's toy channel.
fn channel_url(server: &str) -> eyre::Result<String> {
    let url = pawpost_toy_sim::ws_url(server)?;
    let base = url
        .strip_suffix(pawpost_toy_sim::TOY_WS_PATH)
        .unwrap_or(&url);
    Ok(format!("{base}{}", pawpost_toy_sim::TOY_CHANNEL_PATH))
}

async fn send(link_out: &mut OwnedWriteHalf, packet: &Packet) -> eyre::Result<()> {
    let bytes = packet
        .encode()
        .ok_or_else(|| eyre!("a fragment too long for the link (is --mtu too large?)"))?;
    link_out
        .write_all(&bytes)
        .await
        .wrap_err("writing to the toy's link")
}

async fn connect_serial(address: &str) -> eyre::Result<TcpStream> {
    let deadline = Instant::now() + SERIAL_CONNECT_TIMEOUT;
    loop {
        match TcpStream::connect(address).await {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(e) if Instant::now() >= deadline => {
                bail!("cannot reach the toy's link at {address}: {e} (is the emulator running?)")
            }
            Err(_) => sleep(SERIAL_RETRY).await,
        }
    }
}

async fn connect_server(url: &str, tls: Option<tokio_tungstenite::Connector>) -> eyre::Result<Ws> {
    // Nothing larger than the channel's largest message.
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE_LEN))
        .max_frame_size(Some(MAX_MESSAGE_LEN));
    match timeout(
        SERVER_CONNECT_TIMEOUT,
        tokio_tungstenite::connect_async_tls_with_config(url, Some(config), true, tls),
    )
    .await
    {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(e)) => bail!("cannot connect to {url}: {e}"),
        Err(_) => bail!("cannot connect to {url}: no answer within {SERVER_CONNECT_TIMEOUT:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(serial: &str, mtu: u16) -> RelayArgs {
        RelayArgs {
            serial: serial.into(),
            server: "http://127.0.0.1:9".into(),
            mtu,
            trust_cert: None,
        }
    }

    #[tokio::test]
    async fn a_certificate_to_trust_that_cannot_be_read_is_refused_before_connecting() {
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("server.pem");
        std::fs::write(&not_pem, "not a certificate").unwrap();
        for path in [dir.path().join("missing.pem"), not_pem] {
            let e = run(RelayArgs {
                server: "https://127.0.0.1:9".into(),
                trust_cert: Some(path),
                ..args("tcp:127.0.0.1:9", 247)
            })
            .await
            .unwrap_err();
            assert!(
                e.to_string()
                    .contains("cannot read the certificate to trust"),
                "{e}"
            );
        }
    }

    #[test]
    fn the_relay_opens_the_channel_and_carries_its_largest_record() {
        for server in [
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/",
            "http://127.0.0.1:8080/api/v1/toy/ws",
        ] {
            assert_eq!(
                channel_url(server).unwrap(),
                "ws://127.0.0.1:8080/api/v1/toy/channel"
            );
        }
        assert_eq!(
            channel_url("https://toys.example").unwrap(),
            "wss://toys.example/api/v1/toy/channel"
        );
        // The largest padded record crosses the link whole at the smallest MTU.
        let largest = vec![0x5a; MAX_MESSAGE_LEN];
        let mut fragmenter = Fragmenter::new(pawpost_ble::MIN_ATT_MTU).unwrap();
        let mut reassembler = Reassembler::new(pawpost_ble::MIN_ATT_MTU, MAX_MESSAGE_LEN).unwrap();
        let mut whole = None;
        for fragment in fragmenter.fragment(&largest).unwrap() {
            if let Some(frame) = reassembler.push(&fragment).unwrap() {
                whole = Some(frame.data.to_vec());
            }
        }
        assert_eq!(whole.as_deref(), Some(&largest[..]));
    }

    #[tokio::test]
    async fn a_link_that_is_not_tcp_or_an_mtu_out_of_range_is_refused_before_connecting() {
        let e = run(args("/dev/ttyUSB0", 247)).await.unwrap_err();
        assert!(e.to_string().contains("tcp:HOST:PORT"), "{e}");
        for mtu in [22, MAX_LINK_MTU + 1] {
            let e = run(args("tcp:127.0.0.1:9", mtu)).await.unwrap_err();
            assert!(e.to_string().contains("ATT MTU from 23"), "{e}");
        }
    }
}
