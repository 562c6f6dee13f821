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
// What an outside attack test and a code review found (H1, M1…, L1…), a module each.

mod accounts;
mod connections;
mod families;
mod refusals;
mod toy_takeover;

// The child, and the web app, a module each.
mod the_child;
mod web;
