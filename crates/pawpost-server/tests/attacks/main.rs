//! The attacks that broke CloudPets, tried one by one against a real server (and, where
//! the attack aims at the child, against the simulated toy over a real WebSocket). Each
//! story is named for its attack and ends with the attacker holding nothing.
use pawpost_testkit::server as common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::family::*;
use common::toys::{latest_roster, pair, start_toy, STEP};
use common::{invited_member, parent_with_household, Client, TestServer, GOOD_PASSWORD};
use futures_util::{SinkExt, StreamExt};
use pawpost_crypto::{
    os_rng, seal, MediaType, Member, MemberStatus, MessageParams, Role, Roster, SignedRoster,
};
use pawpost_toy::{
    Action, Event, Frame, FrameType, PairingCode, RejectReason, RosterRefusal, ServerError, Toy,
    PROTOCOL_VERSION,
};
use pawpost_toy_sim::{SimEvent, SimToy};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------
// The toy, paired through the real server.

/// Mum signs the next roster version after `change` and publishes it.
async fn publish_next(f: &Family, change: impl FnOnce(&mut Roster)) -> u64 {
    let mut next = latest_roster(&f.mum, &f.home)
        .await
        .unverified_roster()
        .next_version();
    change(&mut next);
    let (status, body) = publish(
        &f.mum,
        &f.home,
        &SignedRoster::sign(&next, &f.mum_keys).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    next.version
}

/// Waits (bounded) until `check` holds for the toy's status.
async fn wait_for_status(
    toy: &SimToy,
    what: &str,
    check: impl Fn(&pawpost_toy_sim::SimStatus) -> bool,
) {
    let deadline = tokio::time::Instant::now() + STEP;
    while !check(&toy.status()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {:?}",
            toy.status()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until the paired toy is online (authenticated on its own connection).
async fn wait_online(f: &Family) {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let (_, toys) = f
            .mum
            .get(&format!("/api/v1/households/{}/toys", f.home))
            .await;
        if toys[0]["online"] == true {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the toy never came online: {toys}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Every event the toy reports within `window`, none of which may start the microphone.
async fn drain(
    events: &mut tokio::sync::broadcast::Receiver<SimEvent>,
    window: Duration,
) -> Vec<SimEvent> {
    let deadline = tokio::time::Instant::now() + window;
    let mut seen = Vec::new();
    while let Ok(Ok(event)) = tokio::time::timeout_at(deadline, events.recv()).await {
        assert_ne!(event, SimEvent::RecordingStarted, "nobody pressed the paw");
        seen.push(event);
    }
    seen
}

fn reports(events: &[SimEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            SimEvent::Report { text } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

fn ws_url(server: &TestServer) -> String {
    format!("{}/api/v1/toy/ws", server.base.replace("http://", "ws://"))
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_frame(socket: &mut Socket) -> Vec<u8> {
    loop {
        match tokio::time::timeout(STEP, socket.next())
            .await
            .expect("a frame in time")
        {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Binary(bytes))) => {
                return bytes.to_vec()
            }
            Some(Ok(_)) => continue,
            other => panic!("the connection ended: {other:?}"),
        }
    }
}

fn ed25519_sign(keys: &pawpost_crypto::DeviceKeys, message: &[u8]) -> [u8; 64] {
    use ed25519_dalek::Signer;
    let secret = keys.to_secret_bytes();
    let seed: [u8; 32] = secret[49..81].try_into().unwrap();
    ed25519_dalek::SigningKey::from_bytes(&seed)
        .sign(message)
        .to_bytes()
}

// ---------------------------------------------------------------------------------------
// A port scan.

/// Set in the environment of the process that `a_port_scan_finds_only_the_http_port`
/// starts: it runs one server and nothing else, so its sockets are the server's.
const PORT_SCAN_TARGET: &str = "PAWPOST_PORT_SCAN_TARGET";

#[tokio::test]
#[ignore = "started by a_port_scan_finds_only_the_http_port in a process of its own"]
async fn port_scan_target() {
    if std::env::var_os(PORT_SCAN_TARGET).is_none() {
        return;
    }
    let server = TestServer::start().await;
    println!("port-scan-target listening on {}", server.base);
    // Serve until the scanner closes our stdin (bounded, in case it never does).
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    });
    let _ = tokio::time::timeout(Duration::from_secs(60), stdin_closed).await;
}

/// Inodes of the sockets process `pid` holds open.
fn socket_inodes(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().into_owned();
            t.strip_prefix("socket:[")
                .map(|s| s.trim_end_matches(']').to_owned())
        })
        .collect()
}

/// (inode, local address, state) of every socket in a /proc/net table.
fn proc_net(name: &str) -> Vec<(String, String, String)> {
    std::fs::read_to_string(format!("/proc/net/{name}"))
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 9).then(|| (f[9].to_owned(), f[1].to_owned(), f[3].to_owned()))
        })
        .collect()
}

struct Target(std::process::Child);

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_port_scan_finds_only_the_http_port() {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "port_scan_target",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PORT_SCAN_TARGET, "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the target starts");
    let stdout = child.stdout.take().unwrap();
    let target = Target(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // libtest may print "test port_scan_target ... " on the same line first.
            if let Some((_, base)) = line.split_once("port-scan-target listening on http://") {
                let _ = tx.send(base.trim().to_owned());
                return;
            }
        }
    });
    let addr = rx
        .recv_timeout(STEP)
        .expect("the target says where it listens");
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();

    let inodes = socket_inodes(target.0.id());
    const TCP_LISTEN: &str = "0A";
    let listening: Vec<_> = ["tcp", "tcp6"]
        .iter()
        .flat_map(|t| proc_net(t))
        .filter(|(inode, _, state)| inodes.contains(inode) && state == TCP_LISTEN)
        .collect();
    assert_eq!(
        listening.len(),
        1,
        "one listening TCP socket: {listening:?}"
    );
    assert!(
        listening[0].1.ends_with(&format!(":{port:04X}")),
        "{listening:?} is not the HTTP port {port}"
    );
    let udp: Vec<_> = ["udp", "udp6"]
        .iter()
        .flat_map(|t| proc_net(t))
        .filter(|(inode, _, _)| inodes.contains(inode))
        .collect();
    assert!(udp.is_empty(), "no UDP sockets: {udp:?}");
    // /proc/net/unix: Num RefCount Protocol Flags Type St Inode Path; flag 00010000 = listening.
    let unix_listening: Vec<String> = std::fs::read_to_string("/proc/net/unix")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 6 && f[3] == "00010000" && inodes.iter().any(|i| i == f[6]))
                .then(|| l.to_owned())
        })
        .collect();
    assert!(
        unix_listening.is_empty(),
        "no listening Unix sockets: {unix_listening:?}"
    );

    // The scan itself: the ports around the HTTP port that answer are not the server's.
    let theirs: Vec<String> = ["tcp", "tcp6"]
        .iter()
        .flat_map(|t| proc_net(t))
        .filter(|(inode, _, state)| !inodes.contains(inode) && state == TCP_LISTEN)
        .map(|(_, local, _)| local)
        .collect();
    for probe in port.saturating_sub(32)..=port.saturating_add(32) {
        let open = std::net::TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], probe)),
            Duration::from_millis(200),
        )
        .is_ok();
        if open && probe != port {
            assert!(
                theirs.iter().any(|l| l.ends_with(&format!(":{probe:04X}"))),
                "port {probe} answers and belongs to the server"
            );
        }
        assert!(probe != port || open, "the HTTP port itself answers");
    }
}

// ---------------------------------------------------------------------------------------
// Reading voices like a public bucket.

#[tokio::test]
async fn blobs_and_messages_cannot_be_read_without_a_session_from_another_household_or_by_guessing()
{
    let f = family().await;
    let (voice, voice_id) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[f.toy_keys.public(), f.mum_keys.public()],
        VOICE,
    );
    assert_eq!(upload(&f.gran, &f.home, voice).await.0, StatusCode::CREATED);
    let message = format!("/api/v1/messages/{voice_id}");
    let household_routes = [
        format!("/api/v1/households/{}", f.home),
        format!("/api/v1/households/{}/messages", f.home),
        format!("/api/v1/households/{}/roster", f.home),
        format!("/api/v1/households/{}/devices", f.home),
        format!("/api/v1/households/{}/members", f.home),
        format!("/api/v1/households/{}/toys", f.home),
    ];

    // No session at all, or a made-up one.
    let anon = f.server.anonymous();
    let forged = Client {
        token: Some(URL_SAFE_NO_PAD.encode([7u8; 32])),
        ..f.server.anonymous()
    };
    for client in [&anon, &forged] {
        for path in household_routes.iter().chain([&message]) {
            let (status, body) = client.get(path).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
        }
    }

    // Another household's parent, signed in: everything is "not found", and a real id
    // answers exactly like an id that does not exist, so guessing learns nothing.
    let (outsider, _, _) = parent_with_household(&f.server, "stranger@example.org").await;
    let (status, real) = outsider.get(&message).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for guess in [Uuid::now_v7(), Uuid::new_v4(), Uuid::nil(), Uuid::max()] {
        let (status, body) = outsider.get(&format!("/api/v1/messages/{guess}")).await;
        assert_eq!((status, &body), (StatusCode::NOT_FOUND, &real), "{guess}");
    }
    // Ids one step away from the real one (ids are UUIDv7, so neighbours are plausible).
    let mut near = *voice_id.as_bytes();
    near[15] ^= 1;
    let (status, body) = outsider
        .get(&format!("/api/v1/messages/{}", Uuid::from_bytes(near)))
        .await;
    assert_eq!((status, &body), (StatusCode::NOT_FOUND, &real));
    for path in &household_routes {
        let (status, body) = outsider.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let (status, body) = outsider
        .post(
            &format!("{message}/receipts"),
            json!({"device_id": Uuid::from_bytes(f.toy_keys.device_id().0), "state": "played"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // A household id guessed as a neighbour of the real one.
    let mut near = uuid_bytes(&f.home);
    near[15] ^= 1;
    let (status, _) = outsider
        .get(&format!(
            "/api/v1/households/{}/messages",
            Uuid::from_bytes(near)
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The storage itself is not served: not the blob folder, not the database, and no
    // path escapes the web app's folder.
    let (_, app_page) = raw_get(&f.server, "/").await;
    assert!(app_page.contains("<main"), "{app_page}");
    for path in [
        "/blobs",
        "/data/pawpost.db",
        "/pawpost.db",
        "/../Cargo.toml",
        "/../../Cargo.toml",
        "/js/../../Cargo.toml",
        "/js/../../../Cargo.toml",
        "/%2e%2e/%2e%2e/Cargo.toml",
        "/..%2f..%2fCargo.toml",
        "/js/..%2f..%2f..%2fCargo.toml",
        "/test/crypto.test.js",
    ] {
        // A path without a file extension is an app route: it gets the app's page.
        let (status, body) = raw_get(&f.server, path).await;
        assert!(
            status == 404 || status == 400 || (status == 200 && body == app_page),
            "{path} answered {status}: {body}"
        );
    }
    // The recipient really can read it: the refusals above are not a broken route.
    assert_eq!(
        download(&f.mum, &voice_id.to_string()).await.0,
        StatusCode::OK
    );
}

/// A GET with the path sent byte for byte (no client-side normalisation of `..`).
async fn raw_get(server: &TestServer, path: &str) -> (u16, String) {
    // Status and body of the answer.
    let addr = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(STEP, stream.read_to_end(&mut answer))
        .await
        .expect("an answer in time")
        .unwrap();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

// ---------------------------------------------------------------------------------------
// Enumerating accounts.

#[tokio::test]
async fn accounts_cannot_be_enumerated_through_sign_in() {
    // One hash worker and one waiting place: a burst of sign-ins finds the pool full, and
    // a sign-in that goes through the pool says so with 503 "busy". Both kinds of failure
    // must go through it: an unknown address is checked against a dummy hash.
    let server = TestServer::start_with(|c| {
        c.hash_workers = 1;
        c.hash_queue = 1;
        c.login_failures_per_account.max = 10_000;
        c.login_failures_per_address.max = 10_000;
    })
    .await;
    server.person("ann@example.org", "Ann").await;
    let cases = [
        (
            "wrong password",
            "ann@example.org",
            "wrong password entirely",
        ),
        (
            "unknown address",
            "nobody@example.org",
            "wrong password entirely",
        ),
        (
            "unparsable address",
            "not an address",
            "wrong password entirely",
        ),
    ];
    let mut refusals: Vec<(StatusCode, Value)> = Vec::new();
    let mut busy_bodies: Vec<Value> = Vec::new();
    for (case, email, password) in cases {
        // Alone: the plain answer.
        let (status, body) = server
            .anonymous()
            .post(
                "/api/v1/sessions",
                json!({"email": email, "password": password}),
            )
            .await;
        refusals.push((status, body));
        // In a burst, alongside sign-ins for other addresses that keep the pool full
        // (one account may only have two checks under way): some find the hash pool
        // full, which only a request that hashes can.
        // The burst starts once a filler has been turned away, so the pool is full
        // then: an unparsable address needs no account lookup and would otherwise
        // reach the pool before the fillers do.
        let mut busy = 0;
        for round in 0..5 {
            let mut others = tokio::task::JoinSet::new();
            for i in 0..16 {
                let anon = server.anonymous();
                let body = json!({"email": format!("filler{round}.{i}@example.org"), "password": password});
                others.spawn(async move { anon.post("/api/v1/sessions", body).await });
            }
            while let Some(done) = others.join_next().await {
                if done.unwrap().0 == StatusCode::SERVICE_UNAVAILABLE {
                    break;
                }
            }
            let burst: Vec<_> = (0..16)
                .map(|_| {
                    let anon = server.anonymous();
                    let body = json!({"email": email, "password": password});
                    tokio::spawn(async move { anon.post("/api/v1/sessions", body).await })
                })
                .collect();
            for task in burst {
                let (status, body) = task.await.unwrap();
                match status {
                    StatusCode::UNAUTHORIZED => assert_eq!(body, refusals[0].1, "{case}"),
                    StatusCode::SERVICE_UNAVAILABLE => {
                        busy += 1;
                        busy_bodies.push(body);
                    }
                    StatusCode::TOO_MANY_REQUESTS => busy_bodies.push(body),
                    other => panic!("{case}: {other} {body}"),
                }
            }
            while let Some(done) = others.join_next().await {
                done.unwrap();
            }
            if busy > 0 {
                break;
            }
        }
        assert!(busy > 0, "{case}: never went through the hash pool");
    }
    assert_eq!(refusals[0].0, StatusCode::UNAUTHORIZED);
    assert_eq!(refusals[0].1["error"], "wrong_credentials");
    assert!(
        refusals.iter().all(|r| *r == refusals[0]),
        "the same status and body for each: {refusals:?}"
    );
    let first_of = |status: &str| busy_bodies.iter().find(|b| b["error"] == status).cloned();
    let (busy, under_way) = (first_of("busy"), first_of("rate_limited"));
    assert!(
        busy_bodies
            .iter()
            .all(|b| Some(b) == busy.as_ref() || Some(b) == under_way.as_ref()),
        "the same busy answers for each: {busy_bodies:?}"
    );
}

#[tokio::test]
async fn accounts_can_be_probed_through_sign_up_only_a_few_times_per_hour() {
    // Sign-up must tell a person that their address already has an account (409); what
    // stops a harvest is that a probe costs a password hash like a real sign-up and that
    // an address gets only a few per hour.
    let server = TestServer::start_with(|c| {
        c.signups_per_address = pawpost_server::config::RateLimit {
            max: 4,
            window: pawpost_server::config::SIGNUP_WINDOW,
        };
        c.hash_workers = 1;
        c.hash_queue = 1;
    })
    .await;
    let anon = server.anonymous();
    let (status, _) = anon
        .post(
            "/api/v1/accounts",
            json!({"email": "ann@example.org", "password": GOOD_PASSWORD, "display_name": "Ann"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // A probe for a taken address goes through the hash pool like a new account does:
    // with the pool held by a burst of them, some answer 503 "busy".
    let burst: Vec<_> = (0..3)
        .map(|_| {
            let anon = server.anonymous();
            tokio::spawn(async move {
                anon.post(
                    "/api/v1/accounts",
                    json!({"email": "ann@example.org", "password": GOOD_PASSWORD, "display_name": "X"}),
                )
                .await
                .0
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in burst {
        statuses.push(task.await.unwrap());
    }
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CONFLICT || *s == StatusCode::SERVICE_UNAVAILABLE),
        "{statuses:?}"
    );
    // After the allowance (4 per hour here, 20 by default), every probe is refused with
    // Retry-After, whether the address is taken or not.
    for (i, email) in ["ann@example.org", "bea@example.org", "cy@example.org"]
        .iter()
        .enumerate()
    {
        let response = anon
            .http
            .post(server.url("/api/v1/accounts"))
            .json(&json!({"email": email, "password": GOOD_PASSWORD, "display_name": "X"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "probe {i}"
        );
        let retry: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry > 0);
    }
}

// ---------------------------------------------------------------------------------------
// Credential stuffing.

#[tokio::test]
async fn credential_stuffing_with_common_passwords_signs_nobody_in() {
    let server = TestServer::start_with(|c| c.login_failures_per_address.max = 20).await;
    let victims = ["ann@example.org", "bob@example.org", "cat@example.org"];
    for email in victims {
        server.person(email, "Victim").await;
    }
    let common_passwords = [
        "123456",
        "password",
        "qwe",
        "qwerty",
        "cloudpets",
        "123456789",
        "12345678",
        "111111",
        "iloveyou",
        "abc123",
        "password1",
        "letmein",
    ];
    let http = reqwest::Client::new();
    let mut answers = Vec::new();
    // The real password comes last: by then the attacker is locked out even with it.
    for password in common_passwords.iter().copied().chain([GOOD_PASSWORD]) {
        for email in victims {
            let response = http
                .post(server.url("/api/v1/sessions"))
                .json(&json!({"email": email, "password": password}))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let retry = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            assert_ne!(
                status,
                StatusCode::OK,
                "{email} signed in with {password:?}"
            );
            match status {
                StatusCode::UNAUTHORIZED => assert!(retry.is_none()),
                StatusCode::TOO_MANY_REQUESTS => {
                    assert!(retry.is_some_and(|r| r > 0), "429 without Retry-After")
                }
                other => panic!("{email} {password:?}: {other}"),
            }
            answers.push(status);
        }
    }
    let first_limited = answers
        .iter()
        .position(|s| *s == StatusCode::TOO_MANY_REQUESTS)
        .expect("the stuffing was throttled");
    assert!(first_limited <= 20, "throttled after {first_limited} tries");
    assert!(
        answers[20..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "once the address is over its limit, everything waits: {answers:?}"
    );
}

// ---------------------------------------------------------------------------------------
// A toy impersonated without its key.

#[tokio::test]
async fn a_toy_impersonated_without_its_key_receives_nothing() {
    let f = family().await;
    let state = tempfile::tempdir().unwrap();
    let toy = start_toy(&f.server, state.path()).await;
    let identity = pair(&f, &toy).await;
    toy.stop().await;
    let (voice, voice_id) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[identity],
        VOICE,
    );
    assert_eq!(upload(&f.gran, &f.home, voice).await.0, StatusCode::CREATED);

    // 1. The impostor claims the toy's id, signing with a key of its own.
    let (mut socket, _) = tokio_tungstenite::connect_async(&ws_url(&f.server))
        .await
        .unwrap();
    let impostor = new_device();
    for _ in 0..3 {
        let Frame::Challenge { nonce, .. } = Frame::decode(&next_frame(&mut socket).await).unwrap()
        else {
            panic!("expected a challenge")
        };
        let input = pawpost_toy::auth_signature_input(&nonce, identity.device_id, 0);
        let auth = Frame::Auth {
            device_id: identity.device_id,
            roster_version: 0,
            signature: ed25519_sign(&impostor, &input),
        };
        socket
            .send(tokio_tungstenite::tungstenite::Message::Binary(
                auth.encode().unwrap().into(),
            ))
            .await
            .unwrap();
        let answer = next_frame(&mut socket).await;
        assert_eq!(
            Frame::decode(&answer).unwrap(),
            Frame::Error {
                code: ServerError::AuthFailed
            },
            "no roster and no message before authentication"
        );
    }
    let rest = tokio::time::timeout(STEP, socket.next()).await.unwrap();
    assert!(
        matches!(
            rest,
            None | Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) | Some(Err(_))
        ),
        "after three failures the server hangs up: {rest:?}"
    );

    // 2. It replays a signature the real toy made over another connection's nonce.
    let (mut socket, _) = tokio_tungstenite::connect_async(&ws_url(&f.server))
        .await
        .unwrap();
    let _ = next_frame(&mut socket).await;
    let stale = Frame::Auth {
        device_id: identity.device_id,
        roster_version: 0,
        signature: [0x5a; 64],
    };
    socket
        .send(tokio_tungstenite::tungstenite::Message::Binary(
            stale.encode().unwrap().into(),
        ))
        .await
        .unwrap();
    assert_eq!(
        Frame::decode(&next_frame(&mut socket).await).unwrap(),
        Frame::Error {
            code: ServerError::AuthFailed
        }
    );

    // 3. It asks to pair again under the toy's public identity, without its private key.
    let Frame::Challenge { .. } = Frame::decode(&next_frame(&mut socket).await).unwrap() else {
        panic!("expected a fresh challenge")
    };
    let request = Frame::PairRequest {
        identity,
        signature: [0x11; 64],
    };
    socket
        .send(tokio_tungstenite::tungstenite::Message::Binary(
            request.encode().unwrap().into(),
        ))
        .await
        .unwrap();
    assert_eq!(
        Frame::decode(&next_frame(&mut socket).await).unwrap(),
        Frame::Error {
            code: ServerError::PairingRefused
        }
    );

    // 4. Frames before authentication close the connection.
    let (mut socket, _) = tokio_tungstenite::connect_async(&ws_url(&f.server))
        .await
        .unwrap();
    let _ = next_frame(&mut socket).await;
    let upload_frame = Frame::Upload { envelope: b"x" };
    socket
        .send(tokio_tungstenite::tungstenite::Message::Binary(
            upload_frame.encode().unwrap().into(),
        ))
        .await
        .unwrap();
    let rest = tokio::time::timeout(STEP, socket.next()).await.unwrap();
    assert!(
        matches!(
            rest,
            None | Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) | Some(Err(_))
        ),
        "{rest:?}"
    );

    // The message is still waiting for the real toy: nothing was delivered to anyone.
    let (_, listed) = f
        .mum
        .get(&format!("/api/v1/households/{}/messages", f.home))
        .await;
    let message = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["message_id"] == voice_id.to_string())
        .unwrap();
    assert!(
        message["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["delivered_at"].is_null()),
        "{message}"
    );
}

// ---------------------------------------------------------------------------------------
// Audio pushed to the child by someone who may not.

#[tokio::test]
async fn audio_from_a_stranger_a_blocked_or_a_removed_member_never_reaches_the_child() {
    let f = family().await;
    let state = tempfile::tempdir().unwrap();
    let toy = start_toy(&f.server, state.path()).await;
    let toy_identity = pair(&f, &toy).await;
    wait_online(&f).await;

    // An uncle joins, is approved, and is in the signed roster.
    let (uncle, uncle_id) =
        invited_member(&f.server, &f.mum, &f.home, "uncle@example.org", "family").await;
    let (status, _) = f
        .mum
        .post(
            &format!("/api/v1/households/{}/members/{uncle_id}/approve", f.home),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let uncle_keys = new_device();
    register(&uncle, &uncle_keys, "Uncle's phone").await;
    let v3 = publish_next(&f, |next| {
        next.members
            .push(member(&uncle_keys, &uncle_id, Role::Family))
    })
    .await;
    wait_for_status(&toy, "the toy takes the uncle's roster", |s| {
        s.roster_version == v3
    })
    .await;

    // A stranger with an account, a household and keys of their own.
    let (stranger, _, _) = parent_with_household(&f.server, "stranger@example.org").await;
    let stranger_keys = new_device();
    register(&stranger, &stranger_keys, "Stranger").await;
    let (theirs, _) = sealed(
        &stranger_keys,
        &f.home,
        MediaType::OggOpus,
        &[toy_identity],
        VOICE,
    );
    let blobs = blob_count(&f.server);
    let (status, body) = upload(&stranger, &f.home, theirs).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(blob_count(&f.server), blobs, "nothing stored");

    // Gran and the uncle each send one while they may; the toy holds both.
    let mut events = toy.events();
    let (held, held_id) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[toy_identity],
        VOICE,
    );
    assert_eq!(upload(&f.gran, &f.home, held).await.0, StatusCode::CREATED);
    let (uncles, uncles_id) = sealed(
        &uncle_keys,
        &f.home,
        MediaType::OggOpus,
        &[toy_identity],
        VOICE,
    );
    assert_eq!(upload(&uncle, &f.home, uncles).await.0, StatusCode::CREATED);
    wait_for_status(&toy, "both messages wait on the toy", |s| s.queued == 2).await;

    // The toy goes offline; gran sends another before anyone blocks her.
    toy.stop().await;
    let (late, late_id) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[toy_identity],
        VOICE,
    );
    assert_eq!(upload(&f.gran, &f.home, late).await.0, StatusCode::CREATED);

    // Mum blocks gran and removes the uncle, on the server and in a signed roster.
    let (status, _) = f
        .mum
        .post(
            &format!("/api/v1/households/{}/members/{}/block", f.home, f.gran_id),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = f
        .mum
        .call(
            Method::DELETE,
            &format!("/api/v1/households/{}/members/{uncle_id}", f.home),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let gran_device = f.gran_keys.device_id();
    let uncle_device = uncle_keys.device_id();
    let v4 = publish_next(&f, |next| {
        next.members.retain(|m| m.device_id != uncle_device);
        for m in &mut next.members {
            if m.device_id == gran_device {
                m.status = MemberStatus::Blocked;
            }
        }
    })
    .await;

    // The server refuses both of them from now on, and stores nothing.
    let blobs = blob_count(&f.server);
    let (again, _) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[toy_identity],
        VOICE,
    );
    let (status, body) = upload(&f.gran, &f.home, again).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (again, _) = sealed(
        &uncle_keys,
        &f.home,
        MediaType::OggOpus,
        &[toy_identity],
        VOICE,
    );
    let (status, body) = upload(&uncle, &f.home, again).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(blob_count(&f.server), blobs, "nothing stored");

    // The toy comes back: the new roster drops what it held from them, and it refuses
    // the message gran sent before the block, which the server still had for it.
    let toy = start_toy(&f.server, state.path()).await;
    let mut events_after = toy.events();
    wait_for_status(&toy, "the toy takes the blocking roster", |s| {
        s.roster_version == v4 && s.queued == 0
    })
    .await;
    let seen = drain(&mut events_after, Duration::from_millis(500)).await;
    let mut reports = reports(&seen);
    // Events before the restart, from the first run of the toy.
    reports.extend(self::reports(&drain(&mut events, Duration::ZERO).await));
    for (id, reason) in [
        (held_id, RejectReason::SenderBlocked),
        (uncles_id, RejectReason::UnknownSender),
    ] {
        let line = format!("message {id} dropped: {}", reason.code());
        assert!(reports.contains(&line), "{line} not in {reports:?}");
    }
    let refused_late = format!(
        "message {late_id} dropped: {}",
        RejectReason::SenderBlocked.code()
    );
    // The server still hands the toy what gran sent before the block; the toy's own
    // roster check is what refuses it.
    assert!(
        reports.contains(&refused_late),
        "{refused_late} not in {reports:?}"
    );
    assert!(
        !seen.iter().any(|e| matches!(e, SimEvent::Played { .. })),
        "nothing played"
    );
    assert_eq!(toy.status().heart, "off", "no message waiting");
    assert_eq!(toy.status().queued, 0);
    toy.stop().await;
}

#[tokio::test]
async fn a_replayed_envelope_is_refused_and_plays_only_once() {
    let f = family().await;
    let state = tempfile::tempdir().unwrap();
    let toy = start_toy(&f.server, state.path()).await;
    let toy_identity = pair(&f, &toy).await;
    wait_online(&f).await;
    let mut events = toy.events();
    let (voice, voice_id) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[toy_identity, f.mum_keys.public()],
        VOICE,
    );
    assert_eq!(
        upload(&f.gran, &f.home, voice.clone()).await.0,
        StatusCode::CREATED
    );
    wait_for_status(&toy, "the message waits on the toy", |s| s.queued == 1).await;
    toy.press();
    let played =
        pawpost_toy_sim::next_event(&mut events, |e| matches!(e, SimEvent::Played { .. }), STEP)
            .await
            .unwrap();
    assert!(matches!(played, SimEvent::Played { message_id, .. } if message_id == voice_id));

    // The same bytes again, by the sender, by mum (a recipient who holds them), and by a
    // stranger into a household of their own.
    let (status, body) = upload(&f.gran, &f.home, voice.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = upload(&f.mum, &f.home, voice.clone()).await;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::CONFLICT,
        "{status} {body}"
    );
    let (stranger, _, elsewhere) = parent_with_household(&f.server, "stranger@example.org").await;
    let (status, body) = upload(&stranger, &elsewhere, voice.clone()).await;
    assert!(
        status.is_client_error() && status != StatusCode::NOT_FOUND,
        "{status} {body}"
    );
    // And a second copy under a new message id, re-signed by nobody: the header changed,
    // so gran's signature no longer covers it.
    let mut renamed = voice;
    let id_at = renamed
        .windows(16)
        .position(|w| w == voice_id.as_bytes())
        .expect("the header carries the message id");
    renamed[id_at + 15] ^= 1;
    let (status, body) = upload(&f.gran, &f.home, renamed).await;
    assert!(status.is_client_error(), "{status} {body}");

    let seen = drain(&mut events, Duration::from_millis(500)).await;
    assert!(
        !seen.iter().any(|e| matches!(e, SimEvent::Played { .. })),
        "played once only: {seen:?}"
    );
    assert_eq!(toy.status().queued, 0);
    toy.stop().await;
}

#[tokio::test]
async fn a_forged_roster_is_refused_and_the_toy_keeps_its_own() {
    let f = family().await;
    let state = tempfile::tempdir().unwrap();
    let toy = start_toy(&f.server, state.path()).await;
    pair(&f, &toy).await;
    wait_online(&f).await;
    let current = latest_roster(&f.mum, &f.home).await;
    let version = current.unverified_roster().version;
    wait_for_status(&toy, "the toy holds the current roster", |s| {
        s.roster_version == version
    })
    .await;
    // The forger's aim: gran becomes an owner, a stranger's key joins.
    let stranger_keys = new_device();
    let forged_roster = {
        let mut next = current.unverified_roster().next_version();
        for m in &mut next.members {
            if m.device_id == f.gran_keys.device_id() {
                m.role = Role::Owner;
            }
        }
        next.members
            .push(member(&stranger_keys, &f.gran_id, Role::Family));
        next
    };
    let roster_path = format!("/api/v1/households/{}/roster", f.home);

    // Signed by gran (a family member, not an owner), from her own account.
    let by_gran = SignedRoster::sign(&forged_roster, &f.gran_keys).unwrap();
    assert_eq!(
        publish(&f.gran, &f.home, &by_gran).await.0,
        StatusCode::FORBIDDEN
    );
    // Signed by a new key, even when registered to mum's account.
    let rogue = new_device();
    register(&f.mum, &rogue, "Rogue").await;
    let by_rogue = SignedRoster::sign(&forged_roster, &rogue).unwrap();
    assert_eq!(
        publish(&f.mum, &f.home, &by_rogue).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // Signed by mum, then altered.
    let mut tampered = SignedRoster::sign(&forged_roster, &f.mum_keys)
        .unwrap()
        .encode();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let (status, _) = f
        .mum
        .post(
            &roster_path,
            json!({"signed_roster": URL_SAFE_NO_PAD.encode(&tampered)}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // An old version replayed, which would undo later changes.
    let (status, _) = publish(&f.mum, &f.home, &f.roster).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // A genuine roster of another household, published into this one.
    let (stranger, stranger_id, elsewhere) =
        parent_with_household(&f.server, "stranger@example.org").await;
    register(&stranger, &stranger_keys, "Stranger").await;
    let theirs = Roster::genesis(
        pawpost_crypto::HouseholdId(uuid_bytes(&elsewhere)),
        settings(),
        vec![member(&stranger_keys, &stranger_id, Role::Owner)],
    );
    let theirs = SignedRoster::sign(&theirs, &stranger_keys).unwrap();
    assert_eq!(
        publish(&stranger, &f.home, &theirs).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        publish(&f.mum, &f.home, &theirs).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // Garbage.
    let (status, _) = f
        .mum
        .post(&roster_path, json!({"signed_roster": "AAAA"}))
        .await;
    assert!(status.is_client_error(), "{status}");

    // Nothing changed: the server's roster and the toy's are still mum's last one.
    assert_eq!(
        latest_roster(&f.mum, &f.home).await.encode(),
        current.encode()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(toy.status().roster_version, version);
    toy.stop().await;
}

// ---------------------------------------------------------------------------------------
// The microphone started from outside.

#[test]
fn no_frame_from_outside_starts_the_microphone() {
    // The exhaustive version, in every toy state, is pawpost-toy's
    // `no_frame_and_no_random_bytes_ever_start_the_microphone_in_any_state`; this one
    // walks a new toy through pairing with one frame of every type at each step.
    let mut rng = os_rng();
    let mut toy = Toy::first_start(&mut rng);
    let wall = 1_764_000_000_000u64;
    let mut now = 0u64;
    let feed = |toy: &mut Toy, event: Event<'_>| -> Vec<Action> {
        let actions = toy.handle(event, &mut os_rng());
        assert!(
            !actions
                .iter()
                .any(|a| matches!(a, Action::StartRecording { .. })),
            "the microphone started without a press"
        );
        actions
    };
    feed(
        &mut toy,
        Event::PowerOn {
            now_ms: now,
            wall_clock_unix_ms: Some(wall),
        },
    );
    feed(&mut toy, Event::Connected);

    let mum = new_device();
    let home = Uuid::now_v7().to_string();
    let roster = Roster::genesis(
        pawpost_crypto::HouseholdId(uuid_bytes(&home)),
        settings(),
        vec![
            member(&mum, &Uuid::now_v7().to_string(), Role::Owner),
            Member::new(
                &toy.identity(),
                pawpost_crypto::AccountId(uuid_bytes(&home)),
                Role::Toy,
                MemberStatus::Approved,
            ),
        ],
    );
    let roster = SignedRoster::sign(&roster, &mum).unwrap().encode();
    let message_id = Uuid::now_v7();
    let recipients = [toy.identity()];
    let params = MessageParams {
        message_id: pawpost_crypto::MessageId(*message_id.as_bytes()),
        household_id: pawpost_crypto::HouseholdId(uuid_bytes(&home)),
        created_at_ms: wall,
        media_type: MediaType::OggOpus,
        duration_ms: 3633,
        recipients: &recipients,
    };
    let envelope = seal(&mut os_rng(), &mum, &params, VOICE).unwrap();
    let id = pawpost_toy::MessageId(*message_id.as_bytes());
    let household = pawpost_crypto::HouseholdId(uuid_bytes(&home));
    let every_frame = |toy: &Toy| -> Vec<Vec<u8>> {
        let identity = toy.identity();
        let frames = vec![
            Frame::PairRequest {
                identity,
                signature: [1; 64],
            },
            Frame::Auth {
                device_id: identity.device_id,
                roster_version: 1,
                signature: [2; 64],
            },
            Frame::RotateKey {
                new_identity: mum.public(),
                signature_by_old_key: [3; 64],
            },
            Frame::Delivered { message_id: id },
            Frame::Rejected {
                message_id: id,
                reason: RejectReason::SenderBlocked,
            },
            Frame::Played { message_id: id },
            Frame::Upload {
                envelope: &envelope,
            },
            Frame::RosterRejected {
                version: 1,
                reason: RosterRefusal::StaleVersion,
            },
            Frame::PairConfirmed {
                number: pawpost_toy::ConfirmationNumber::from_number(472).unwrap(),
            },
            Frame::Challenge {
                nonce: [4; 32],
                server_time_ms: wall,
            },
            Frame::PairCode {
                code: PairingCode::from_number(123_456).unwrap(),
                expires_in_s: 600,
            },
            Frame::Paired {
                household_id: household,
                signed_roster: &roster,
            },
            Frame::RosterUpdate {
                signed_roster: &roster,
            },
            Frame::Deliver {
                envelope: &envelope,
            },
            Frame::Approval {
                message_id: id,
                approver: mum.device_id(),
                signature: pawpost_toy::signing::sign_approval(&mum, household, id),
            },
            Frame::UploadAck { message_id: id },
            Frame::RotateAck {
                ed25519_pub: mum.public().ed25519_pub,
            },
            Frame::Error {
                code: ServerError::UploadRefused,
            },
            Frame::ConfirmPairing {
                number: pawpost_toy::ConfirmationNumber::from_number(472).unwrap(),
            },
        ];
        let types: Vec<FrameType> = frames.iter().map(Frame::frame_type).collect();
        assert_eq!(types, FrameType::ALL, "one frame of every type");
        frames.iter().map(|f| f.encode().unwrap()).collect()
    };
    // Random bodies behind every frame type's header, from a fixed xorshift sequence.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut random_frames = || -> Vec<Vec<u8>> {
        (0..200usize)
            .map(|i| {
                let mut bytes: Vec<u8> = (0..(i * 7) % 180)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        state.to_le_bytes()[0]
                    })
                    .collect();
                if bytes.len() >= 6 {
                    bytes[0] = PROTOCOL_VERSION;
                    bytes[1] = FrameType::ALL[i % FrameType::ALL.len()] as u8;
                    let body = u32::try_from(bytes.len() - 6).unwrap();
                    bytes[2..6].copy_from_slice(&body.to_be_bytes());
                }
                bytes
            })
            .collect()
    };

    let mut stages = Vec::new();
    for stage in ["unpaired", "pairing", "paired"] {
        if stage == "pairing" {
            feed(&mut toy, Event::PawPressed { long: true });
        }
        for bytes in every_frame(&toy).into_iter().chain(random_frames()) {
            feed(&mut toy, Event::FrameReceived(&bytes));
            now += 1000;
            feed(&mut toy, Event::Timer { now_ms: now });
        }
        feed(&mut toy, Event::Disconnected);
        feed(&mut toy, Event::Connected);
        stages.push((stage, toy.household_id().is_some(), toy.queued_messages()));
    }
    assert_eq!(
        stages.last().map(|s| s.1),
        Some(true),
        "the walk reached a paired toy: {stages:?}"
    );
    // The microphone does start from a press: presses first play what waits, then record.
    let mut started = false;
    for _ in 0..=toy.queued_messages() {
        let actions = toy.handle(Event::PawPressed { long: false }, &mut rng);
        started = actions
            .iter()
            .any(|a| matches!(a, Action::StartRecording { .. }));
        if started {
            break;
        }
    }
    assert!(started, "a short press on a paired toy starts recording");
}

// ---------------------------------------------------------------------------------------
// Script in names.

#[tokio::test]
async fn script_in_display_and_household_names_comes_back_as_json_text() {
    let server = TestServer::start().await;
    let script = "<script>alert('pawpost')</script>";
    let image = "<img src=x onerror=alert(1)>\"'&";
    let anon = server.anonymous();
    let (status, body) = anon
        .post(
            "/api/v1/accounts",
            json!({"email": "eve@example.org", "password": GOOD_PASSWORD, "display_name": script}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["display_name"], script, "stored as typed, as text");
    let eve = server.sign_in("eve@example.org", GOOD_PASSWORD).await;
    let (status, household) = eve.post("/api/v1/households", json!({"name": image})).await;
    assert_eq!(status, StatusCode::CREATED, "{household}");
    let id = household["id"].as_str().unwrap();
    let (status, renamed) = eve
        .call(
            Method::PATCH,
            &format!("/api/v1/households/{id}"),
            Some(json!({"name": format!("{image}{script}")})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");

    for path in [
        "/api/v1/accounts/me".to_owned(),
        "/api/v1/households".to_owned(),
        format!("/api/v1/households/{id}"),
        format!("/api/v1/households/{id}/members"),
        "/api/v1/sessions/current".to_owned(),
    ] {
        let response = eve
            .http
            .get(server.url(&path))
            .bearer_auth(eve.token.as_ref().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{path}: JSON, never HTML"
        );
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        let text = response.text().await.unwrap();
        let value: Value = serde_json::from_str(&text).expect("valid JSON");
        assert!(
            value.to_string().contains(script) || value.to_string().contains(image),
            "{path}: the name comes back unchanged: {value}"
        );
    }
    // Control characters (a way to break out of log lines and headers) are refused.
    let (status, _) = eve
        .post(
            "/api/v1/households",
            json!({"name": "a\u{0}b\r\nSet-Cookie: x=y"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // The app page loads only its own scripts: no inline script could run.
    let page = reqwest::get(server.url("/")).await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(!html.contains(script));
    // And the app only ever puts names into the page as text.
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/js");
    let mut stack = vec![web];
    let mut checked = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "js") {
                let source = std::fs::read_to_string(&path).unwrap();
                for sink in [
                    ".innerHTML",
                    ".outerHTML",
                    "insertAdjacentHTML",
                    "document.write",
                    "eval(",
                ] {
                    assert!(!source.contains(sink), "{} uses {sink}", path.display());
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 5, "the web app's modules were found ({checked})");
}

// ---------------------------------------------------------------------------------------
// Cross-site request forgery.

#[tokio::test]
async fn cross_site_requests_cannot_use_the_cookie_on_any_state_changing_route() {
    let f = family().await;
    let (voice, voice_id) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[f.toy_keys.public(), f.mum_keys.public()],
        VOICE,
    );
    assert_eq!(upload(&f.gran, &f.home, voice).await.0, StatusCode::CREATED);
    let (_, me) = f.mum.get("/api/v1/sessions/current").await;
    let csrf = me["csrf_token"].as_str().unwrap().to_owned();
    let token = f.mum.token.clone().unwrap();
    let (_, doc) = f.server.anonymous().get("/api/openapi.json").await;
    let http = reqwest::Client::new();
    // Routes that change state without a session: they make one (sign-in) or an account.
    let before_a_session = ["POST /api/v1/accounts", "POST /api/v1/sessions"];

    let mut checked = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if !["post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let route = format!("{} {path}", method.to_uppercase());
            let concrete = path
                .replace("{household_id}", &f.home)
                .replace("{account_id}", &f.gran_id)
                .replace("{message_id}", &voice_id.to_string());
            let method: Method = method.to_uppercase().parse().unwrap();
            let send = |csrf: Option<&str>, headers: &[(&str, &str)]| {
                let mut request = http
                    .request(method.clone(), f.server.url(&concrete))
                    .header("cookie", format!("pawpost_session={token}"))
                    .json(&json!({}));
                if let Some(csrf) = csrf {
                    request = request.header("x-csrf-token", csrf);
                }
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                request.send()
            };
            // A page on another site makes the browser send the cookie, but it cannot
            // read the CSRF token: without it, or with a wrong one, nothing happens.
            if !before_a_session.contains(&route.as_str()) {
                for wrong in [None, Some("wrong"), Some("")] {
                    let response = send(wrong, &[]).await.unwrap();
                    assert_eq!(
                        response.status(),
                        StatusCode::FORBIDDEN,
                        "{route} {wrong:?}"
                    );
                    let body: Value = response.json().await.unwrap();
                    assert_eq!(body["error"], "csrf", "{route}");
                }
            }
            // Even with the right token, a request a browser marks as coming from
            // another site is refused before it reaches the route.
            for headers in [
                &[("origin", "https://evil.example")][..],
                &[("origin", "null")][..],
                &[("sec-fetch-site", "cross-site")][..],
            ] {
                let response = send(Some(&csrf), headers).await.unwrap();
                assert_eq!(
                    response.status(),
                    StatusCode::FORBIDDEN,
                    "{route} {headers:?}"
                );
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["error"], "cross_site", "{route}");
            }
            checked.push(route);
        }
    }
    for route in before_a_session {
        assert!(checked.iter().any(|r| r == route), "{route} documented");
    }
    assert!(checked.len() >= 20, "{checked:?}");

    // None of it happened: mum's account, her household, gran's membership and the
    // message are all still there, and mum's session still works.
    assert_eq!(f.mum.get("/api/v1/accounts/me").await.0, StatusCode::OK);
    let (status, household) = f.mum.get(&format!("/api/v1/households/{}", f.home)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(household["name"], "Lee family");
    let (_, members) = f
        .mum
        .get(&format!("/api/v1/households/{}/members", f.home))
        .await;
    let gran = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["account_id"] == f.gran_id)
        .expect("gran is still a member");
    assert_eq!(gran["status"], "approved");
    assert_eq!(
        download(&f.mum, &voice_id.to_string()).await.0,
        StatusCode::OK
    );
}

// ---------------------------------------------------------------------------------------
// Oversized and slow bodies.

#[tokio::test]
async fn oversized_json_and_envelopes_are_refused_with_413() {
    let f = family().await;
    let http = reqwest::Client::new();
    let max_json = pawpost_server::config::DEFAULT_MAX_JSON_BYTES;
    let max_envelope = pawpost_server::config::DEFAULT_MAX_ENVELOPE_BYTES;
    let token = f.mum.token.clone().unwrap();

    // JSON one byte over the limit, anonymous and signed in.
    let big_name = format!("{{\"name\":\"{}\"}}", "a".repeat(max_json));
    for (path, auth) in [("/api/v1/accounts", false), ("/api/v1/households", true)] {
        let mut request = http
            .post(f.server.url(path))
            .header("content-type", "application/json")
            .body(big_name.clone());
        if auth {
            request = request.bearer_auth(&token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "body_too_large");
    }
    // An envelope one byte over the limit, and one that streams without a length.
    let blobs = blob_count(&f.server);
    let (status, _) = upload(&f.gran, &f.home, vec![0u8; max_envelope + 1]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let addr = f.server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/v1/households/{}/messages HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: Bearer {}\r\nContent-Type: application/octet-stream\r\n\
         Transfer-Encoding: chunked\r\n\r\n",
        f.home,
        f.gran.token.as_ref().unwrap()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![1u8; 64 * 1024];
    for _ in 0..(max_envelope / chunk.len() + 8) {
        let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
        framed.extend_from_slice(&chunk);
        framed.extend_from_slice(b"\r\n");
        // The server may answer and stop reading before the client has sent everything.
        if stream.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = vec![0u8; 1024];
    let n = tokio::time::timeout(STEP, stream.read(&mut answer))
        .await
        .expect("an answer to a chunked upload in time")
        .unwrap_or(0);
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "chunked: {text}");
    // A body that claims 10 GB: refused once the bytes sent pass the limit, long before
    // the claim.
    for (path, content_type, limit) in [
        ("/api/v1/accounts".to_owned(), "application/json", max_json),
        (
            format!("/api/v1/households/{}/messages", f.home),
            "application/octet-stream",
            max_envelope,
        ),
    ] {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: {content_type}\r\nContent-Length: 10000000000\r\n\r\n",
            f.gran.token.as_ref().unwrap()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let filler = vec![b' '; 16 * 1024];
        for _ in 0..(limit / filler.len() + 8) {
            if stream.write_all(&filler).await.is_err() {
                break;
            }
        }
        let mut answer = vec![0u8; 1024];
        let n = tokio::time::timeout(STEP, stream.read(&mut answer))
            .await
            .unwrap_or_else(|_| panic!("{path}: no answer to a 10 GB claim in time"))
            .unwrap_or(0);
        let text = String::from_utf8_lossy(&answer[..n]);
        assert!(text.starts_with("HTTP/1.1 413"), "{path}: {text}");
    }
    assert_eq!(blob_count(&f.server), blobs, "nothing stored");
}

#[tokio::test]
async fn a_slow_body_is_cut_off_by_the_request_timeout() {
    // Headers, then a body trickled one byte every 3 s: the server answers 408 (or hangs
    // up) once its 30 s request timeout passes, instead of holding the connection open.
    let server = TestServer::start().await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(
            format!(
                "POST /api/v1/accounts HTTP/1.1\r\nHost: {addr}\r\n\
                 Content-Type: application/json\r\nContent-Length: 4096\r\n\r\n{{\"email\":"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let limit = pawpost_server::config::REQUEST_TIMEOUT + Duration::from_secs(8);
    let mut answer = Vec::new();
    let mut buf = [0u8; 512];
    let mut sent = 0;
    let ended = loop {
        assert!(
            started.elapsed() < limit,
            "still open after {:?}",
            started.elapsed()
        );
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => break "closed",
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                        break "answered";
                    }
                }
            },
            () = tokio::time::sleep(Duration::from_secs(3)) => {
                // A slow client keeps the connection busy, far below the declared length.
                if stream.write_all(b" ").await.is_err() {
                    break "closed";
                }
                sent += 1;
            }
        }
    };
    let elapsed = started.elapsed();
    let head = String::from_utf8_lossy(&answer);
    assert!(
        ended == "closed" || head.starts_with("HTTP/1.1 408"),
        "{ended}: {head}"
    );
    assert!(sent < 4000, "the body never completed");
    assert!(
        elapsed >= pawpost_server::config::REQUEST_TIMEOUT - Duration::from_secs(1),
        "the answer came before the timeout ({elapsed:?}): {head}"
    );
}

// ---------------------------------------------------------------------------------------
// Security headers.

#[tokio::test]
async fn every_page_and_answer_carries_the_security_headers() {
    let f = family().await;
    let token = f.mum.token.clone().unwrap();
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(f.server.url(path)).send();
    let mut responses = Vec::new();
    for path in [
        "/",
        "/join",
        "/index.html",
        "/js/app.js",
        "/css/app.css",
        "/healthz",
        "/api/openapi.json",
        "/.well-known/security.txt",
        "/security-policy",
        "/no/such/page",
        "/js/missing.js",
        "/api/v1/accounts/me",
        "/api/v1/toy/ws",
    ] {
        responses.push((path.to_owned(), get(path).await.unwrap()));
    }
    responses.push((
        "signed-in JSON".into(),
        http.get(
            f.server
                .url(&format!("/api/v1/households/{}/members", f.home)),
        )
        .bearer_auth(&token)
        .send()
        .await
        .unwrap(),
    ));
    responses.push((
        "405".into(),
        http.put(f.server.url("/")).send().await.unwrap(),
    ));
    responses.push((
        "413".into(),
        http.post(f.server.url("/api/v1/accounts"))
            .header("content-type", "application/json")
            .body(vec![b' '; 128 * 1024])
            .send()
            .await
            .unwrap(),
    ));
    responses.push((
        "403 cross-site".into(),
        http.post(f.server.url("/api/v1/sessions"))
            .header("origin", "https://evil.example")
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    ));
    let mut statuses = Vec::new();
    for (what, response) in &responses {
        let h = response.headers();
        let header = |name: &str| {
            h.get(name)
                .unwrap_or_else(|| panic!("{what}: no {name}"))
                .to_str()
                .unwrap()
                .to_owned()
        };
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{what}: {csp} lacks {directive}");
        }
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{what}: {csp}"
        );
        assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{what}");
        assert_eq!(header("x-frame-options"), "DENY", "{what}");
        statuses.push(response.status().as_u16());
    }
    for expected in [200u16, 401, 403, 404, 405, 413] {
        assert!(
            statuses.contains(&expected),
            "{expected} among {statuses:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// What an outside attack test and a code review found (H1, M1…, L1…), a module each.

mod accounts;
mod connections;
mod families;
mod refusals;
mod toy_takeover;
