//! Protocol version 2 against the real server: a toy that says so gets Gran's 30-second
//! message in chunks, as fast as it asks for them, and sends the child's long answer in
//! pieces; a toy that does not say so still gets whole messages.
//!
//! The toy is the real `pawpost_toy::Toy` of a simulator paired the usual way, driven frame
//! by frame over a WebSocket so that every frame can be seen.
use pawpost_testkit::server as common;

use common::family::*;
use common::toys::*;
use common::TestServer;
use futures_util::{SinkExt, StreamExt};
use pawpost_crypto::{os_rng, MediaType, MessageId, PublicIdentity, CHUNK_SIZE};
use pawpost_media::OggOpusWriter;
use pawpost_toy::{Action, Event, Frame, FrameType, Toy, RECEIVE_WINDOW_CHUNKS, STREAMING_HELLO};
use reqwest::StatusCode;
use std::collections::BTreeMap;
use tokio_tungstenite::tungstenite::Message as WsMessage;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// About `ms` of voice in 20 ms packets of 61 bytes: 30 s is about 92 KB, six chunks.
fn long_voice(ms: u32) -> Vec<u8> {
    let mut writer = OggOpusWriter::new(1, 312, 0x5EED).unwrap();
    let mut packet = vec![0x42; 61];
    packet[0] = 31 << 3;
    for _ in 0..(ms / 20) {
        writer.push_packet(&packet).unwrap();
    }
    writer.finish(0).unwrap()
}

/// What crossed the connection.
#[derive(Default)]
struct Seen {
    to_toy: Vec<FrameType>,
    from_toy: Vec<FrameType>,
    /// The most chunks sent to the toy beyond the last one it asked from.
    most_ahead: u32,
    /// The most deliveries started and not yet finished (delivered or refused).
    most_starts_ahead: usize,
    asked_from: u32,
    audio: BTreeMap<MessageId, Vec<u8>>,
    played: Vec<(MessageId, Vec<u8>)>,
}

/// A paired simulator's toy, taken out of its state directory to be driven by hand.
async fn paired_toy(f: &Family) -> (Toy, PublicIdentity, tempfile::TempDir) {
    let state = tempfile::tempdir().unwrap();
    let sim = start_toy(&f.server, state.path()).await;
    let identity = pair(f, &sim).await;
    // Having joined its household, the simulated toy leaves the connection it paired on
    // and authenticates on a new one. It is stopped only once that one has joined: a
    // connection still on its way would take the place of the test's own, made with the
    // same keys, as a toy's newest connection does.
    wait_for_audit(f, "toy_connected").await;
    sim.stop().await;
    let saved = std::fs::read(state.path().join(pawpost_toy_sim::STATE_FILE)).unwrap();
    let mut toy = Toy::restore(&saved).unwrap();
    toy.handle(
        Event::PowerOn {
            now_ms: 1,
            wall_clock_unix_ms: None,
        },
        &mut os_rng(),
    );
    (toy, identity, state)
}

/// Waits until the household's activity trail holds an entry of `action`.
async fn wait_for_audit(f: &Family, action: &str) {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let (_, trail) = f
            .mum
            .get(&format!("/api/v1/households/{}/audit", f.home))
            .await;
        let found = trail
            .as_array()
            .is_some_and(|entries| entries.iter().any(|e| e["action"] == action));
        if found {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {action} in the household's activity: {trail}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn connect(server: &TestServer) -> Socket {
    let url = format!("{}/api/v1/toy/ws", server.base.replace("http://", "ws://"));
    tokio_tungstenite::connect_async(&url).await.unwrap().0
}

/// Carries out the toy's actions; `streams` false leaves out its version 2 hello, as a toy
/// of version 1 would.
async fn carry_out(socket: &mut Socket, seen: &mut Seen, actions: Vec<Action>, streams: bool) {
    for action in actions {
        match action {
            Action::SendFrame(bytes) => {
                let frame = Frame::decode(&bytes).unwrap();
                if let Frame::ChunkRequest {
                    message_id,
                    next_index,
                    ..
                } = frame
                {
                    if message_id == STREAMING_HELLO && !streams {
                        continue;
                    }
                    seen.asked_from = next_index;
                }
                seen.from_toy.push(frame.frame_type());
                socket.send(WsMessage::Binary(bytes.into())).await.unwrap();
            }
            Action::StoreAudio {
                message_id,
                offset,
                bytes,
            } => {
                let audio = seen.audio.entry(message_id).or_default();
                audio.truncate(usize::try_from(offset).unwrap());
                audio.extend_from_slice(&bytes);
            }
            Action::DiscardAudio { message_id } => {
                seen.audio.remove(&message_id);
            }
            Action::PlayAudio { message_id } => {
                seen.played
                    .push((message_id, seen.audio[&message_id].clone()));
            }
            _ => {}
        }
    }
}

/// Tells the toy its connection is open.
async fn open(toy: &mut Toy, socket: &mut Socket, seen: &mut Seen, streams: bool) {
    let actions = toy.handle(Event::Connected, &mut os_rng());
    carry_out(socket, seen, actions, streams).await;
}

/// Runs the toy's connection until `done` holds.
async fn run_until(
    toy: &mut Toy,
    socket: &mut Socket,
    seen: &mut Seen,
    streams: bool,
    done: impl Fn(&Seen) -> bool,
) {
    let mut rng = os_rng();
    while !done(seen) {
        let bytes = match tokio::time::timeout(STEP, socket.next())
            .await
            .expect("the server sends in time")
        {
            Some(Ok(WsMessage::Binary(bytes))) => bytes.to_vec(),
            Some(Ok(_)) => continue,
            other => panic!("the connection ended: {other:?}"),
        };
        let frame = Frame::decode(&bytes).unwrap();
        if let Frame::DeliverChunk { index, .. } = frame {
            seen.most_ahead = seen.most_ahead.max(index + 1 - seen.asked_from);
        }
        seen.to_toy.push(frame.frame_type());
        let count = |frames: &[FrameType], of: &[FrameType]| {
            frames.iter().filter(|t| of.contains(t)).count()
        };
        let started = count(&seen.to_toy, &[FrameType::DeliverStart]);
        let finished = count(&seen.from_toy, &[FrameType::Delivered, FrameType::Rejected]);
        seen.most_starts_ahead = seen.most_starts_ahead.max(started.saturating_sub(finished));
        let mut actions = toy.handle(Event::FrameReceived(&bytes), &mut rng);
        if toy.queued_messages() > 0 {
            actions.extend(toy.handle(Event::PawPressed { long: false }, &mut rng));
        }
        carry_out(socket, seen, actions, streams).await;
    }
}

#[tokio::test]
async fn a_thirty_second_message_reaches_a_streaming_toy_in_chunks_within_its_window() {
    let f = family().await;
    let (mut toy, identity, _state) = paired_toy(&f).await;
    let ogg = long_voice(30_000);
    assert!(ogg.len() > 5 * CHUNK_SIZE, "{} bytes", ogg.len());
    let id = send_voice(&f, &f.gran, &identity, &ogg).await;

    let mut socket = connect(&f.server).await;
    let mut seen = Seen::default();
    open(&mut toy, &mut socket, &mut seen, true).await;
    run_until(&mut toy, &mut socket, &mut seen, true, |s| {
        !s.played.is_empty()
    })
    .await;
    assert_eq!(seen.played, vec![(MessageId(*id.as_bytes()), ogg)]);
    assert!(
        !seen.to_toy.contains(&FrameType::Deliver),
        "{:?}",
        seen.to_toy
    );
    assert_eq!(
        seen.to_toy
            .iter()
            .filter(|t| **t == FrameType::DeliverStart)
            .count(),
        1
    );
    assert!(
        seen.to_toy
            .iter()
            .filter(|t| **t == FrameType::DeliverChunk)
            .count()
            >= 6
    );
    // The server never ran ahead of what the toy had room for.
    assert!(seen.most_ahead <= u32::from(RECEIVE_WINDOW_CHUNKS));
    assert!(seen.from_toy.contains(&FrameType::Delivered));
    let toy_id = uuid::Uuid::from_bytes(identity.device_id.0);
    wait_for_receipt(&f.gran, &f.home, id, toy_id, "played_at").await;
}

#[tokio::test]
async fn a_toy_back_from_a_long_time_off_gets_two_hundred_messages_on_one_connection() {
    const WAITING: usize = 200;
    let f = family().await;
    let (mut toy, identity, _state) = paired_toy(&f).await;
    let ogg = long_voice(1_000);
    let mut sent = Vec::with_capacity(WAITING);
    for _ in 0..WAITING {
        sent.push(send_voice(&f, &f.gran, &identity, &ogg).await);
    }

    let mut socket = connect(&f.server).await;
    let mut seen = Seen::default();
    open(&mut toy, &mut socket, &mut seen, true).await;
    run_until(&mut toy, &mut socket, &mut seen, true, |s| {
        s.played.len() == WAITING
    })
    .await;
    let played: Vec<MessageId> = seen.played.iter().map(|(id, _)| *id).collect();
    let expected: Vec<MessageId> = sent.iter().map(|id| MessageId(*id.as_bytes())).collect();
    assert_eq!(played, expected, "every message played, oldest first");
    // The starts were paced to the toy's window: it never had to refuse one for want of
    // room, and none came twice.
    assert!(
        !seen.from_toy.contains(&FrameType::Rejected),
        "{:?}",
        seen.from_toy
    );
    assert!(seen.most_starts_ahead <= pawpost_server::toyhub::DELIVER_STARTS_AHEAD);
    assert!(seen.most_starts_ahead > 1, "more than one start went ahead");
    assert_eq!(
        seen.to_toy
            .iter()
            .filter(|t| **t == FrameType::DeliverStart)
            .count(),
        WAITING
    );
    let toy_id = uuid::Uuid::from_bytes(identity.device_id.0);
    let last = *sent.last().unwrap();
    wait_for_receipt(&f.gran, &f.home, last, toy_id, "played_at").await;
}

#[tokio::test]
async fn a_toy_that_does_not_stream_still_gets_whole_messages() {
    let f = family().await;
    let (mut toy, identity, _state) = paired_toy(&f).await;
    let ogg = long_voice(10_000);
    let id = send_voice(&f, &f.gran, &identity, &ogg).await;
    let mut socket = connect(&f.server).await;
    let mut seen = Seen::default();
    open(&mut toy, &mut socket, &mut seen, false).await;
    run_until(&mut toy, &mut socket, &mut seen, false, |s| {
        !s.played.is_empty()
    })
    .await;
    assert_eq!(seen.played, vec![(MessageId(*id.as_bytes()), ogg)]);
    assert!(seen.to_toy.contains(&FrameType::Deliver));
    assert!(!seen.to_toy.contains(&FrameType::DeliverStart));
}

#[tokio::test]
async fn the_childs_long_answer_goes_up_in_pieces_and_gran_opens_it() {
    let f = family().await;
    let (mut toy, identity, _state) = paired_toy(&f).await;
    let mut socket = connect(&f.server).await;
    let mut seen = Seen::default();
    open(&mut toy, &mut socket, &mut seen, true).await;
    run_until(&mut toy, &mut socket, &mut seen, true, |s| {
        s.to_toy.contains(&FrameType::Challenge)
    })
    .await;
    let mut rng = os_rng();
    let actions = toy.handle(Event::PawPressed { long: false }, &mut rng);
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::StartRecording { .. })));
    let answer = long_voice(20_000);
    let actions = toy.handle(
        Event::RecordingFinished {
            ogg: answer.clone(),
        },
        &mut rng,
    );
    carry_out(&mut socket, &mut seen, actions, true).await;
    run_until(&mut toy, &mut socket, &mut seen, true, |s| {
        s.to_toy.contains(&FrameType::UploadAck)
    })
    .await;
    let pieces = seen
        .from_toy
        .iter()
        .filter(|t| **t == FrameType::UploadChunk)
        .count();
    assert!(pieces >= 4, "{pieces} pieces");
    assert!(seen.to_toy.contains(&FrameType::UploadChunkAck));

    let (_, messages) = f
        .gran
        .get(&format!("/api/v1/households/{}/messages", f.home))
        .await;
    let reply = messages
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["sender_device"] == uuid::Uuid::from_bytes(identity.device_id.0).to_string())
        .unwrap_or_else(|| panic!("the answer is listed: {messages}"));
    let (status, envelope) = download(&f.gran, reply["message_id"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let opened =
        pawpost_crypto::open(&envelope, &f.gran_keys, &identity).expect("gran opens the answer");
    assert_eq!(opened.payload, answer);
    assert_eq!(opened.header.media_type, MediaType::OggOpus);
}
