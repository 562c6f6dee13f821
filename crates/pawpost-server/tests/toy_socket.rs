//! The toy's WebSocket as the server now reads it itself (`routes/toy_ws/socket.rs`): a
//! ping is answered with a pong, a close with a close, a message sent in fragments
//! arrives whole, and a frame that breaks RFC 6455 or the length limit ends the
//! connection before anything of it is acted on.
use pawpost_testkit::server as common;

use common::TestServer;
use futures_util::{SinkExt, StreamExt};
use pawpost_protocol::{Frame, MAX_FRAME_LEN};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame as WsFrame, FrameHeader};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Time for one answer from the server.
const STEP: Duration = Duration::from_secs(10);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(server: &TestServer) -> Socket {
    let url = format!("{}/api/v1/toy/ws", server.base.replace("http://", "ws://"));
    let (mut socket, response) = tokio_tungstenite::connect_async(&url).await.unwrap();
    assert_eq!(response.status(), 101);
    // Every connection starts with a challenge.
    let Some(Ok(WsMessage::Binary(first))) =
        tokio::time::timeout(STEP, socket.next()).await.unwrap()
    else {
        panic!("no challenge")
    };
    assert!(matches!(
        Frame::decode(&first).unwrap(),
        Frame::Challenge { .. }
    ));
    socket
}

/// Whether the server ends the connection (a close, the end, or an error) within a step.
async fn ended(socket: &mut Socket) -> bool {
    loop {
        match tokio::time::timeout(STEP, socket.next()).await {
            Err(_) => return false,
            Ok(None | Some(Err(_)) | Some(Ok(WsMessage::Close(_)))) => return true,
            Ok(Some(Ok(_))) => continue,
        }
    }
}

#[tokio::test]
async fn a_ping_gets_its_pong_and_a_close_its_close() {
    let server = TestServer::start().await;
    let mut socket = open(&server).await;
    socket
        .send(WsMessage::Ping(b"paw".to_vec().into()))
        .await
        .unwrap();
    let pong = tokio::time::timeout(STEP, socket.next()).await.unwrap();
    assert!(
        matches!(&pong, Some(Ok(WsMessage::Pong(p))) if p.as_ref() == b"paw"),
        "{pong:?}"
    );
    socket.close(None).await.unwrap();
    assert!(ended(&mut socket).await);
}

#[tokio::test]
async fn a_message_in_fragments_arrives_whole() {
    let server = TestServer::start().await;
    let mut socket = open(&server).await;
    // A frame the server acts on only once whole: an authentication for an unknown toy,
    // cut in two WebSocket frames. Answered with auth_failed and a new challenge.
    let auth = Frame::Auth {
        device_id: pawpost_protocol::DeviceId([7; 16]),
        roster_version: 1,
        signature: [1; 64],
    }
    .encode()
    .unwrap();
    let (head, tail) = auth.split_at(10);
    let first = WsFrame::message(head.to_vec(), OpCode::Data(Data::Binary), false);
    let last = WsFrame::message(tail.to_vec(), OpCode::Data(Data::Continue), true);
    socket.send(WsMessage::Frame(first)).await.unwrap();
    socket.send(WsMessage::Frame(last)).await.unwrap();
    let answer = loop {
        match tokio::time::timeout(STEP, socket.next()).await.unwrap() {
            Some(Ok(WsMessage::Binary(bytes))) => break bytes,
            Some(Ok(_)) => continue,
            other => panic!("the connection ended: {other:?}"),
        }
    };
    assert!(
        matches!(Frame::decode(&answer).unwrap(), Frame::Error { .. }),
        "{answer:?}"
    );
}

/// A raw connection upgraded by hand, its challenge read: what it writes next is
/// exactly what the server reads.
async fn raw(server: &TestServer) -> tokio::net::TcpStream {
    let addr = server.base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /api/v1/toy/ws HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tcp.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    tcp
}

/// Whether the server closes `tcp` (after at most its challenge and a close frame).
async fn closes(tcp: &mut tokio::net::TcpStream) -> bool {
    let mut sink = vec![0u8; 4096];
    loop {
        match tokio::time::timeout(STEP, tcp.read(&mut sink)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn frames_that_break_the_rules_end_the_connection() {
    let server = TestServer::start().await;
    // Unmasked, as only a server may send.
    let mut tcp = raw(&server).await;
    tcp.write_all(&[0x82, 0x01, 0x00]).await.unwrap();
    assert!(closes(&mut tcp).await, "unmasked frame");
    // Longer than the largest frame: refused from its header, before any payload.
    let mut tcp = raw(&server).await;
    let mut header = Vec::new();
    FrameHeader {
        is_final: true,
        opcode: OpCode::Data(Data::Binary),
        mask: Some([1, 2, 3, 4]),
        ..FrameHeader::default()
    }
    .format(MAX_FRAME_LEN as u64 + 1, &mut header)
    .unwrap();
    tcp.write_all(&header).await.unwrap();
    assert!(closes(&mut tcp).await, "frame too long");
    // A reserved bit set.
    let mut tcp = raw(&server).await;
    tcp.write_all(&[0xC2, 0x80, 1, 2, 3, 4]).await.unwrap();
    assert!(closes(&mut tcp).await, "reserved bit");
    // Text: toys speak binary only.
    let mut socket = open(&server).await;
    socket.send(WsMessage::Text("hi".into())).await.unwrap();
    assert!(ended(&mut socket).await, "text");
}
