//! An upload the server acknowledged survives `kill -9` at any moment. A real `pawpost
//! serve` is killed in the middle of a stream of uploads (one uploader of which hangs up on
//! its own requests early), several times, and started again on the same data; afterwards
//! the toy receives every acknowledged message exactly once, and nothing again when it
//! reconnects.
use pawpost_testkit::server as common;
mod procs;

use common::family::{family_on, sealed, VOICE};
use common::toys::{pair, start_toy, STEP};
use common::{Client, TestServer};
use futures_util::{SinkExt, StreamExt};
use pawpost_crypto::{os_rng, DeviceKeys, Envelope, MediaType, PublicIdentity};
use pawpost_testkit::moto::{MotoServer, TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY};
use pawpost_toy::{Action, Event, Frame, RejectReason, Report, ServerError, Toy};
use procs::{PgSchema, Serve, Server};
use reqwest::StatusCode;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use uuid::Uuid;

/// Uploads under way at once.
const UPLOADERS: usize = 4;
/// How long the impatient uploader waits for an answer before it hangs up, in turn: its
/// requests are given up at every stage of the server's work.
const PATIENCE_MS: [u64; 6] = [1, 3, 6, 10, 15, 25];
/// Each killed round ends with `kill -9` once this many of its uploads were acknowledged.
const KILL_AFTER: [usize; 3] = [5, 12, 20];
/// New messages in the last round, which finishes before the server is killed once more.
const LAST_ROUND: usize = 8;
/// A bound on new messages per round, so that a server that never acknowledges anything
/// fails the story instead of running it forever.
const MAX_NEW_PER_ROUND: usize = 400;
/// How long a round may take to reach its kill point.
const ROUND_LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_uploads_survive_kill_9_and_reach_the_toy_exactly_once_on_sqlite() {
    crash_story(None, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_uploads_survive_kill_9_on_sqlite_with_every_envelope_in_the_blob_folder() {
    crash_story_with(None, None, &[EVERY_ENVELOPE_IN_THE_BLOB_STORE]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_uploads_survive_kill_9_and_reach_the_toy_exactly_once_on_postgresql() {
    let Some(schema) = PgSchema::from_env("pawpost_crash") else {
        return;
    };
    crash_story(Some(&schema), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_uploads_survive_kill_9_on_postgresql_with_the_blobs_in_a_bucket() {
    let Some(schema) = PgSchema::from_env("pawpost_crash_s3") else {
        return;
    };
    let Some(moto) = MotoServer::shared() else {
        return;
    };
    const BUCKET: &str = "pawpost-crash";
    moto.create_bucket(BUCKET);
    let prefix = Uuid::new_v4().simple().to_string();
    crash_story_with(
        Some(&schema),
        Some(moto.blob_url(BUCKET, &prefix)),
        &[EVERY_ENVELOPE_IN_THE_BLOB_STORE],
    )
    .await;
}

/// Who sends what to whom: gran, from her device, to the toy.
struct Sending<'a> {
    gran: &'a Client,
    home: &'a str,
    keys: Arc<DeviceKeys>,
    toy: PublicIdentity,
}

/// What became of every message the stream tried to send.
#[derive(Default)]
struct Ledger {
    /// Answered 201.
    acked: BTreeSet<Uuid>,
    /// Answered 409 when sent again: the server had stored it, but its answer was lost.
    stored: BTreeSet<Uuid>,
    /// The server died before answering; the envelope, to send again.
    unknown: BTreeMap<Uuid, Vec<u8>>,
    /// Only part of the body ever reached a server (and it was not sent again).
    partial: BTreeSet<Uuid>,
    /// Every id sent, in any way.
    sent: BTreeSet<Uuid>,
}

impl Ledger {
    /// Messages the server has confirmed it keeps.
    fn kept(&self) -> BTreeSet<Uuid> {
        self.acked.union(&self.stored).copied().collect()
    }
}

enum Outcome {
    /// 201.
    Acked,
    /// 409 for an envelope sent again: stored before, its answer lost.
    AlreadyStored,
    /// No answer: the server died, or the uploader hung up.
    Unanswered(Vec<u8>),
    Unexpected(StatusCode, String),
}

/// The stream's shared state in one round.
struct Stream {
    client: Client,
    home: String,
    sender: Arc<DeviceKeys>,
    toy: PublicIdentity,
    /// Envelopes to send again first, from rounds whose server died.
    retries: Mutex<VecDeque<(Uuid, Vec<u8>)>>,
    new_left: AtomicUsize,
    stop: AtomicBool,
    acked: AtomicUsize,
    in_flight: AtomicUsize,
    results: Mutex<Vec<(Uuid, bool, Outcome)>>,
}

impl Stream {
    fn next(&self) -> Option<(Uuid, Vec<u8>, bool)> {
        if let Some((id, envelope)) = self.retries.lock().unwrap().pop_front() {
            return Some((id, envelope, true));
        }
        self.new_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .ok()?;
        let (envelope, id) = sealed(
            &self.sender,
            &self.home,
            MediaType::OggOpus,
            &[self.toy],
            VOICE,
        );
        Some((id, envelope, false))
    }

    /// Uploads until told to stop or out of work. An impatient uploader hangs up early, as
    /// a phone on a poor network does.
    async fn run(self: Arc<Self>, impatient: bool) {
        let mut patience = PATIENCE_MS.iter().cycle();
        while !self.stop.load(Ordering::SeqCst) {
            let Some((id, envelope, retry)) = self.next() else {
                break;
            };
            let timeout = impatient.then(|| Duration::from_millis(*patience.next().unwrap()));
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            let answer = try_upload(&self.client, &self.home, envelope.clone(), timeout).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            let outcome = match answer {
                Ok((StatusCode::CREATED, _)) => {
                    self.acked.fetch_add(1, Ordering::SeqCst);
                    Outcome::Acked
                }
                Ok((StatusCode::CONFLICT, _)) if retry => Outcome::AlreadyStored,
                Ok((status, body)) => Outcome::Unexpected(status, body),
                Err(_) => Outcome::Unanswered(envelope),
            };
            self.results.lock().unwrap().push((id, retry, outcome));
        }
    }
}

/// Sends an envelope; an error means no answer came (the server died, or never listened,
/// or the answer took longer than `timeout`).
async fn try_upload(
    client: &Client,
    home: &str,
    envelope: Vec<u8>,
    timeout: Option<Duration>,
) -> Result<(StatusCode, String), reqwest::Error> {
    let mut request = client
        .http
        .post(format!("{}/api/v1/households/{home}/messages", client.base));
    if let Some(timeout) = timeout {
        request = request.timeout(timeout);
    }
    let response = request
        .header("content-type", "application/octet-stream")
        .bearer_auth(client.token.as_deref().unwrap())
        .body(envelope)
        .send()
        .await?;
    let status = response.status();
    // The status is the answer; a body cut short by the kill does not change it.
    Ok((status, response.text().await.unwrap_or_default()))
}

/// The same person, talking to the server at `base`.
fn client_at(client: &Client, base: &str) -> Client {
    Client {
        base: base.to_owned(),
        http: reqwest::Client::builder()
            .timeout(STEP)
            .build()
            .expect("an HTTP client"),
        token: client.token.clone(),
    }
}

/// An upload that is surely under way when the server dies: the request line, the
/// headers and half of the body, and then nothing.
async fn stalled_upload(
    server: &Server,
    client: &Client,
    home: &str,
    envelope: &[u8],
) -> tokio::net::TcpStream {
    let mut socket = tokio::net::TcpStream::connect(&server.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/households/{home}/messages HTTP/1.1\r\nHost: {}\r\n\
         Authorization: Bearer {}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {}\r\n\r\n",
        server.addr,
        client.token.as_deref().unwrap(),
        envelope.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket
        .write_all(&envelope[..envelope.len() / 2])
        .await
        .unwrap();
    socket.flush().await.unwrap();
    socket
}

/// Every message id the household's owner sees, with how often each is listed.
async fn listed(mum: &Client, home: &str) -> (BTreeMap<Uuid, usize>, serde_json::Value) {
    let (status, list) = mum
        .get(&format!("/api/v1/households/{home}/messages"))
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let mut counts = BTreeMap::new();
    for m in list.as_array().unwrap() {
        let id = Uuid::parse_str(m["message_id"].as_str().unwrap()).unwrap();
        *counts.entry(id).or_insert(0) += 1;
    }
    (counts, list)
}

/// Every message the server confirmed is listed exactly once, and nothing is listed that
/// was never sent.
fn check_listing(ledger: &Ledger, counts: &BTreeMap<Uuid, usize>, when: &str) {
    for id in ledger.kept() {
        assert_eq!(
            counts.get(&id).copied().unwrap_or(0),
            1,
            "{when}: acknowledged message {id} is listed {} times",
            counts.get(&id).copied().unwrap_or(0)
        );
    }
    for (id, n) in counts {
        assert!(ledger.sent.contains(id), "{when}: {id} was never sent");
        assert_eq!(*n, 1, "{when}: {id} is listed {n} times");
        assert!(
            !ledger.partial.contains(id),
            "{when}: {id} is stored though only half of it ever reached the server"
        );
    }
}

/// One round of the stream against `server`: retries first, then new messages. With
/// `kill_after`, the server is killed with SIGKILL once that many uploads of the round were
/// acknowledged, while others are under way; without, the round runs to its end.
async fn round(
    number: usize,
    server: Server,
    sending: &Sending<'_>,
    ledger: &mut Ledger,
    kill_after: Option<usize>,
) {
    let Sending {
        gran,
        home,
        ref keys,
        toy,
    } = *sending;
    let base = server.base();
    let client = client_at(gran, &base);
    let retries: VecDeque<(Uuid, Vec<u8>)> = if kill_after.is_some() {
        std::mem::take(&mut ledger.unknown).into_iter().collect()
    } else {
        VecDeque::new()
    };
    let retried = retries.len();
    let stream = Arc::new(Stream {
        client: client.clone(),
        home: home.to_owned(),
        sender: keys.clone(),
        toy,
        retries: Mutex::new(retries),
        new_left: AtomicUsize::new(if kill_after.is_some() {
            MAX_NEW_PER_ROUND
        } else {
            LAST_ROUND
        }),
        stop: AtomicBool::new(false),
        acked: AtomicUsize::new(0),
        in_flight: AtomicUsize::new(0),
        results: Mutex::new(Vec::new()),
    });
    let mut stalled = None;
    if kill_after.is_some() {
        let (envelope, id) = sealed(keys, home, MediaType::OggOpus, &[toy], VOICE);
        stalled = Some((id, stalled_upload(&server, &client, home, &envelope).await));
        ledger.sent.insert(id);
    }
    let mut tasks: Vec<_> = (0..UPLOADERS)
        .map(|i| tokio::spawn(stream.clone().run(i == 0 && kill_after.is_some())))
        .collect();
    let mut in_flight_at_kill = 0;
    match kill_after {
        Some(n) => {
            let deadline = tokio::time::Instant::now() + ROUND_LIMIT;
            while stream.acked.load(Ordering::SeqCst) < n {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "round {number}: only {} uploads acknowledged; the server said:\n{}",
                    stream.acked.load(Ordering::SeqCst),
                    server.output()
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            stream.stop.store(true, Ordering::SeqCst);
            in_flight_at_kill = stream.in_flight.load(Ordering::SeqCst);
            let mut server = server;
            assert!(server.is_running(), "the server died on its own");
            server.kill();
        }
        None => {
            for task in tasks.drain(..) {
                task.await.expect("an uploader finished");
            }
            let mut server = server;
            assert!(server.is_running(), "the server died on its own");
            // Idle now, and killed all the same: what it acknowledged must still be there.
            server.kill();
        }
    }
    for task in tasks {
        task.await.expect("an uploader finished");
    }
    if let Some((id, socket)) = stalled {
        drop(socket);
        ledger.partial.insert(id);
    }
    let results = std::mem::take(&mut *stream.results.lock().unwrap());
    let mut counts = [0usize; 3];
    for (id, retry, outcome) in results {
        ledger.sent.insert(id);
        match outcome {
            Outcome::Acked => {
                counts[0] += 1;
                assert!(ledger.acked.insert(id), "{id} acknowledged twice");
            }
            Outcome::AlreadyStored => {
                counts[1] += 1;
                ledger.stored.insert(id);
            }
            Outcome::Unanswered(envelope) => {
                counts[2] += 1;
                ledger.unknown.insert(id, envelope);
            }
            Outcome::Unexpected(status, body) => {
                panic!("round {number}: upload of {id} (retry: {retry}) answered {status}: {body}")
            }
        }
    }
    eprintln!(
        "round {number}: {retried} sent again, {} acknowledged, {} already stored, {} unanswered \
         ({in_flight_at_kill} under way at the kill{})",
        counts[0],
        counts[1],
        counts[2],
        if kill_after.is_some() {
            ", and one half-sent"
        } else {
            ""
        }
    );
}

/// The toy's half of the protocol, driven frame by frame over a real WebSocket so that
/// every `Deliver` is counted, however the toy itself would treat a repeat.
#[derive(Default, Debug)]
struct Received {
    /// `Deliver` and `DeliverStart` frames per message id.
    deliveries: BTreeMap<Uuid, usize>,
    /// Streamed deliveries the toy has neither accepted nor refused yet.
    streaming: std::collections::BTreeSet<Uuid>,
    /// The toy's audio storage.
    audio: BTreeMap<Uuid, Vec<u8>>,
    /// Messages the toy verified and played, per id.
    played: BTreeMap<Uuid, usize>,
    /// What the toy refused or complained about.
    reports: Vec<String>,
    /// Streamed deliveries the toy put off because enough already waited (`queue_full`):
    /// the server keeps them for the toy's next connection.
    put_off: BTreeSet<Uuid>,
}

impl Received {
    /// Adds what a later connection brought.
    fn merge(&mut self, later: Received) {
        for (id, n) in later.deliveries {
            *self.deliveries.entry(id).or_insert(0) += n;
        }
        for (id, n) in later.played {
            *self.played.entry(id).or_insert(0) += n;
        }
        self.reports.extend(later.reports);
        self.put_off = later.put_off;
    }
}

/// An `Upload` the server refuses at once. It answers frames in order, so its refusal
/// marks the end of everything the server sent in answer to the frames before it.
fn barrier() -> WsMessage {
    WsMessage::Binary(
        Frame::Upload {
            envelope: b"barrier",
        }
        .encode()
        .unwrap()
        .into(),
    )
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Carries out what the toy asked for, in order.
async fn carry_out(socket: &mut Socket, received: &mut Received, actions: Vec<Action>) {
    for action in actions {
        match action {
            Action::SendFrame(bytes) => {
                match Frame::decode(&bytes) {
                    Ok(Frame::Rejected {
                        message_id,
                        reason: RejectReason::QueueFull,
                    }) => {
                        // Not a delivery: the server keeps it for the next connection.
                        let id = Uuid::from_bytes(message_id.0);
                        received.streaming.remove(&id);
                        received.put_off.insert(id);
                        if let Some(n) = received.deliveries.get_mut(&id) {
                            *n -= 1;
                            if *n == 0 {
                                received.deliveries.remove(&id);
                            }
                        }
                    }
                    Ok(Frame::Delivered { message_id } | Frame::Rejected { message_id, .. }) => {
                        received.streaming.remove(&Uuid::from_bytes(message_id.0));
                    }
                    _ => {}
                }
                socket.send(WsMessage::Binary(bytes.into())).await.unwrap();
            }
            Action::StoreAudio {
                message_id,
                offset,
                bytes,
            } => {
                let audio = received
                    .audio
                    .entry(Uuid::from_bytes(message_id.0))
                    .or_default();
                audio.truncate(usize::try_from(offset).unwrap());
                audio.extend_from_slice(&bytes);
            }
            Action::DiscardAudio { message_id } => {
                received.audio.remove(&Uuid::from_bytes(message_id.0));
            }
            Action::PlayAudio { message_id } => {
                let ogg = &received.audio[&Uuid::from_bytes(message_id.0)];
                assert_eq!(ogg, VOICE, "the toy plays exactly what was recorded");
                *received
                    .played
                    .entry(Uuid::from_bytes(message_id.0))
                    .or_insert(0) += 1;
            }
            Action::Report(Report::MessageDropped {
                reason: RejectReason::QueueFull,
                ..
            }) => {}
            Action::Report(report) => received.reports.push(format!("{report:?}")),
            // A refused toy would be asked to reconnect: that is reported, and must not be.
            Action::Reconnect(reason) => received.reports.push(format!("{reason:?}")),
            Action::StartRecording { .. } => panic!("the microphone started"),
            Action::Persist(_)
            | Action::SetHeart(_)
            | Action::Speak(_)
            | Action::StopRecording
            | Action::ConnectionAccepted
            | Action::EraseUpdate
            | Action::WriteUpdate { .. }
            | Action::InstallUpdate { .. }
            | Action::ConfirmImage => {}
        }
    }
}

/// Connects the toy, takes in everything the server sends it, and returns once the
/// server has taken in the toy's answers.
async fn connect_toy(toy: &mut Toy, base: &str) -> Received {
    let url = format!("{}/api/v1/toy/ws", base.replace("http://", "ws://"));
    let (mut socket, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("the toy connects");
    let mut rng = os_rng();
    let mut received = Received::default();
    let mut barriers = 0;
    let actions = toy.handle(Event::Connected, &mut rng);
    carry_out(&mut socket, &mut received, actions).await;
    loop {
        let bytes = match tokio::time::timeout(STEP, socket.next())
            .await
            .expect("the server answers in time")
        {
            Some(Ok(WsMessage::Binary(bytes))) => bytes.to_vec(),
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
            other => panic!("the toy's connection ended: {other:?}"),
        };
        let frame = Frame::decode(&bytes).expect("the server sends valid frames");
        match frame {
            Frame::Error {
                code: ServerError::UploadRefused,
            } => {
                barriers += 1;
                if barriers == 2 && received.streaming.is_empty() {
                    break;
                }
                if barriers == 2 {
                    // A streamed delivery is still coming: wait for its end too.
                    barriers = 1;
                }
                // Everything queued for the toy has come, and the toy has answered it all:
                // a second barrier comes back once the server has taken those answers in.
                socket.send(barrier()).await.unwrap();
                continue;
            }
            Frame::Deliver { envelope } => {
                let id = Envelope::parse(envelope)
                    .map(|e| Uuid::from_bytes(e.header().message_id.0))
                    .expect("a delivered envelope parses");
                *received.deliveries.entry(id).or_insert(0) += 1;
            }
            Frame::DeliverStart { prefix } => {
                let id = pawpost_crypto::EnvelopePrefix::parse(prefix)
                    .map(|(p, _)| Uuid::from_bytes(p.header().message_id.0))
                    .expect("a delivered prefix parses");
                *received.deliveries.entry(id).or_insert(0) += 1;
                received.streaming.insert(id);
            }
            _ => {}
        }
        let challenge = matches!(frame, Frame::Challenge { .. });
        let mut actions = toy.handle(Event::FrameReceived(&bytes), &mut rng);
        if !challenge && toy.queued_messages() > 0 {
            // A paw press plays it at once, so the toy's queue never fills.
            actions.extend(toy.handle(Event::PawPressed { long: false }, &mut rng));
        }
        carry_out(&mut socket, &mut received, actions).await;
        if challenge {
            // The toy has sent its signed `Auth`; the server sends rosters and messages in
            // answer to it before it reads the barrier.
            socket.send(barrier()).await.unwrap();
        }
    }
    // What the toy took in its last frames plays too: the child presses until nothing is left.
    while toy.queued_messages() > 0 {
        let actions = toy.handle(Event::PawPressed { long: false }, &mut rng);
        carry_out(&mut socket, &mut received, actions).await;
    }
    let _ = toy.handle(Event::Disconnected, &mut rng);
    let _ = socket.close(None).await;
    received
}

/// Connections a toy may need to receive everything that waited for it: each takes at
/// least the toy's window of waiting deliveries.
const MAX_CONNECTIONS_TO_CATCH_UP: usize = 10;

/// `pawpost serve`'s option that sends every envelope, however small, to the blob store
/// (by default small ones are kept in their message's database row).
const EVERY_ENVELOPE_IN_THE_BLOB_STORE: &str = "--envelope-in-row-max-bytes=0";

/// The story on SQLite or PostgreSQL (`schema`), with the blobs in the data folder or in
/// a bucket (`blob_url` on the moto server); the small voice envelopes in their rows.
async fn crash_story(schema: Option<&PgSchema>, blob_url: Option<String>) {
    crash_story_with(schema, blob_url, &[]).await;
}

/// The story with more options for `pawpost serve`.
async fn crash_story_with(schema: Option<&PgSchema>, blob_url: Option<String>, args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let mut serve = Serve::new(dir.path().join("data")).on(schema).args(args);
    if let Some(url) = blob_url {
        serve = serve
            .args(["--blob-url", &url])
            .env("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", TEST_SECRET_ACCESS_KEY);
    }
    let server = serve.start();
    let f = family_on(TestServer::at(server.base())).await;

    // The toy pairs through the server, then goes offline with its state saved.
    let toy_dir = tempfile::tempdir().unwrap();
    let sim = start_toy(&f.server, toy_dir.path()).await;
    let toy_identity = pair(&f, &sim).await;
    sim.stop().await;
    let state = std::fs::read(toy_dir.path().join(pawpost_toy_sim::STATE_FILE))
        .expect("the toy saved its state");
    let mut toy = Toy::restore(&state).expect("the toy's state restores");
    assert_eq!(toy.identity(), toy_identity);
    let _ = toy.handle(
        Event::PowerOn {
            now_ms: 0,
            wall_clock_unix_ms: None,
        },
        &mut os_rng(),
    );

    let sending = Sending {
        gran: &f.gran,
        home: &f.home,
        keys: Arc::new(f.gran_keys),
        toy: toy_identity,
    };
    let mut ledger = Ledger::default();
    let mut server = server;
    for (number, kill_after) in KILL_AFTER.iter().enumerate() {
        round(number + 1, server, &sending, &mut ledger, Some(*kill_after)).await;
        server = serve.start();
        let mum = client_at(&f.mum, &server.base());
        let (counts, _) = listed(&mum, &f.home).await;
        check_listing(&ledger, &counts, &format!("after kill {}", number + 1));
    }
    round(KILL_AFTER.len() + 1, server, &sending, &mut ledger, None).await;
    assert!(
        ledger.acked.len() >= KILL_AFTER.iter().sum::<usize>() + LAST_ROUND,
        "only {} uploads were acknowledged",
        ledger.acked.len()
    );

    let server = serve.start();
    let base = server.base();
    let mum = client_at(&f.mum, &base);
    let (counts, _) = listed(&mum, &f.home).await;
    check_listing(&ledger, &counts, "after the last kill");

    // The toy comes online: each message the server kept arrives once and plays.
    let mut received = connect_toy(&mut toy, &base).await;
    // A toy takes a bounded number of waiting deliveries per connection and puts off the
    // rest (`queue_full`); each following connection brings what was put off.
    let mut connections = 1;
    while !received.put_off.is_empty() {
        connections += 1;
        assert!(
            connections <= MAX_CONNECTIONS_TO_CATCH_UP,
            "the toy still waits for {:?} after {MAX_CONNECTIONS_TO_CATCH_UP} connections",
            received.put_off
        );
        let later = connect_toy(&mut toy, &base).await;
        received.merge(later);
    }
    for id in ledger.kept() {
        assert_eq!(
            received.deliveries.get(&id).copied().unwrap_or(0),
            1,
            "acknowledged message {id} was delivered {:?} times",
            received.deliveries.get(&id)
        );
    }
    for (id, n) in &received.deliveries {
        assert_eq!(*n, 1, "{id} was delivered {n} times");
        assert!(
            counts.contains_key(id),
            "{id} was delivered but is not listed"
        );
        assert_eq!(
            received.played.get(id),
            Some(&1),
            "{id} was delivered but did not play once"
        );
    }
    assert_eq!(
        received.deliveries.keys().collect::<Vec<_>>(),
        counts.keys().collect::<Vec<_>>(),
        "every message listed, and only those, reached the toy"
    );
    assert!(
        received.reports.is_empty(),
        "the toy refused something: {:?}",
        received.reports
    );

    // The server took the toy's receipts (it records each shortly after reading its frame,
    // so the listing may lag a moment): reconnecting brings nothing again.
    let toy_device = Uuid::from_bytes(toy_identity.device_id.0).to_string();
    let waiting_since = std::time::Instant::now();
    loop {
        let (_, list) = listed(&mum, &f.home).await;
        let unreceipted: Vec<_> = list
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| {
                let receipt = m["recipients"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["device_id"] == toy_device.as_str())
                    .unwrap_or_else(|| panic!("the toy is a recipient of {m}"));
                !(receipt["delivered_at"].is_string() && receipt["played_at"].is_string())
            })
            .cloned()
            .collect();
        if unreceipted.is_empty() {
            break;
        }
        assert!(
            waiting_since.elapsed() < STEP,
            "the toy's receipts never arrived for {unreceipted:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let again = connect_toy(&mut toy, &base).await;
    assert!(
        again.deliveries.is_empty() && again.reports.is_empty(),
        "a reconnected toy got {again:?}"
    );
    eprintln!(
        "{} messages acknowledged, {} stored without an answer, {} left unknown ({} of them kept), {} half-sent; the toy caught up in {connections} connections",
        ledger.acked.len(),
        ledger.stored.len(),
        ledger.unknown.len(),
        ledger
            .unknown
            .keys()
            .filter(|id| counts.contains_key(id))
            .count(),
        ledger.partial.len(),
    );
    drop(server);
}
