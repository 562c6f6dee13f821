//! M2, L2, L6: connections that never finish a request, answers a cache could keep, and
//! the protocols and origins the server answers to. An attacker opens sockets and sends
//! nothing, or a header line now and then; a family's browser must still be served.
use super::Target;
use crate::common::family::*;
use crate::common::toys::STEP;
use crate::common::{Client, TestServer, GOOD_PASSWORD};
use pawpost_crypto::MediaType;
use pawpost_server::config::{
    HEADER_READ_TIMEOUT, MAX_PENDING_CONNECTIONS_PER_ADDRESS, NEW_CONNECTION_GRACE,
};
use reqwest::StatusCode;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn address(server: &TestServer) -> SocketAddr {
    server
        .base
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .parse()
        .unwrap()
}

/// A TCP connection to `server` from the loopback address `from` (127.0.0.0/8 is all
/// this machine's, so each address stands for another client).
async fn connect_from(from: Ipv4Addr, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    socket.connect(server).await.unwrap()
}

/// Reads until the server closes `stream` or `limit` passes; true if it closed. What the
/// server said before closing is returned too.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> (bool, String) {
    let mut said = Vec::new();
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => said.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (closed, String::from_utf8_lossy(&said).into_owned())
}

/// True if the server has neither closed `stream` nor said anything on it.
async fn still_open(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    tokio::time::timeout(Duration::from_millis(200), stream.peek(&mut byte))
        .await
        .is_err()
}

// ---------------------------------------------------------------------------------------
// M2: the deadlines.

#[tokio::test]
async fn m2_a_socket_that_says_nothing_is_closed_once_the_header_deadline_passes() {
    let server = TestServer::start().await;
    let mut silent = TcpStream::connect(address(&server)).await.unwrap();
    let (closed, said) = closed_within(&mut silent, HEADER_READ_TIMEOUT + STEP).await;
    assert!(closed, "a socket that sent nothing is still open");
    assert!(
        said.is_empty() || said.starts_with("HTTP/1.1 408"),
        "{said}"
    );
}

#[tokio::test]
async fn m2_headers_trickled_a_line_at_a_time_must_still_arrive_within_the_deadline() {
    // The attack test's slow client: a request line, then a header line every 2.5 s, for
    // ever. However slowly they come, the headers have HEADER_READ_TIMEOUT to be whole.
    let server = TestServer::start().await;
    let addr = address(&server);
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n").as_bytes())
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let mut lines = 0;
    let closed = loop {
        let (closed, said) = closed_within(&mut slow, Duration::from_millis(2500)).await;
        if closed {
            assert!(
                said.is_empty() || said.starts_with("HTTP/1.1 408"),
                "{said}"
            );
            break true;
        }
        if slow
            .write_all(format!("X-Line-{lines}: a\r\n").as_bytes())
            .await
            .is_err()
        {
            break true;
        }
        lines += 1;
        if started.elapsed() > HEADER_READ_TIMEOUT + STEP {
            break false;
        }
    };
    assert!(
        closed,
        "{lines} header lines trickled in and the request is still being read"
    );
}

#[tokio::test]
async fn m2_a_kept_alive_connection_left_idle_is_closed() {
    let server = TestServer::start().await;
    let addr = address(&server);
    let mut browser = TcpStream::connect(addr).await.unwrap();
    browser
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(STEP, browser.read(&mut answer))
        .await
        .expect("an answer in time")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        !answer.to_ascii_lowercase().contains("connection: close"),
        "the connection is kept alive: {answer}"
    );
    // Then nothing more: the connection is let go instead of kept for ever.
    let (closed, said) = closed_within(&mut browser, HEADER_READ_TIMEOUT + STEP).await;
    assert!(closed, "an idle kept-alive connection is still open");
    assert!(
        said.is_empty() || said.starts_with("HTTP/1.1 408"),
        "{said}"
    );
}

// ---------------------------------------------------------------------------------------
// M2: sockets per address, and descriptors.

#[tokio::test]
async fn m2_one_address_cannot_hold_more_than_a_few_sockets_that_never_ask_anything() {
    let server = TestServer::start().await;
    let addr = address(&server);
    let attacker = Ipv4Addr::new(127, 0, 0, 2);
    let extra = 8;
    let mut sockets = Vec::new();
    for _ in 0..MAX_PENDING_CONNECTIONS_PER_ADDRESS + extra {
        sockets.push(connect_from(attacker, addr).await);
    }
    // A burst may pass the cap for a moment (its requests could be waiting to be read);
    // once the sockets have plainly said nothing, the next one makes the oldest give way.
    tokio::time::sleep(NEW_CONNECTION_GRACE).await;
    sockets.push(connect_from(attacker, addr).await);
    for (i, socket) in sockets.iter_mut().take(extra + 1).enumerate() {
        let (closed, _) = closed_within(socket, STEP).await;
        assert!(closed, "socket {i} of the attacker's is still open");
    }
    let mut open = 0;
    for socket in sockets.iter_mut().skip(extra + 1) {
        open += usize::from(still_open(socket).await);
    }
    assert_eq!(
        open, MAX_PENDING_CONNECTIONS_PER_ADDRESS,
        "the newest ones stay, up to the cap"
    );
    // Another client, and the attacker's own address asking properly, are served.
    let response = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut polite = connect_from(attacker, addr).await;
    polite
        .write_all(
            format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let (closed, said) = closed_within(&mut polite, STEP).await;
    assert!(closed && said.starts_with("HTTP/1.1 200"), "{said}");
}

#[tokio::test]
async fn m2_a_trusted_proxys_connections_are_not_capped_like_one_clients() {
    // Every family behind the load balancer arrives from its address: capping it like
    // one client would let a single slow client behind it crowd out everyone else.
    let proxy = Ipv4Addr::new(127, 0, 0, 3);
    let server = TestServer::start_with(|c| {
        c.trusted_proxies = vec![proxy.to_string().parse().unwrap()];
    })
    .await;
    let addr = address(&server);
    let mut sockets = Vec::new();
    for _ in 0..MAX_PENDING_CONNECTIONS_PER_ADDRESS + 8 {
        sockets.push(connect_from(proxy, addr).await);
    }
    tokio::time::sleep(NEW_CONNECTION_GRACE).await;
    sockets.push(connect_from(proxy, addr).await);
    for (i, socket) in sockets.iter_mut().enumerate() {
        assert!(
            still_open(socket).await,
            "the proxy's socket {i} was closed"
        );
    }
}

/// Set in the environment of the process that
/// `m2_with_few_descriptors_left_idle_sockets_make_room_for_real_work` starts, under a
/// low descriptor limit: it runs one server and nothing else.
const FEW_DESCRIPTORS_TARGET: &str = "PAWPOST_FEW_DESCRIPTORS_TARGET";
/// The descriptor limit of that process, as in the attack test.
const FEW_DESCRIPTORS: u32 = 256;

#[tokio::test]
#[ignore = "started by m2_with_few_descriptors_left_idle_sockets_make_room_for_real_work"]
async fn few_descriptors_target() {
    if std::env::var_os(FEW_DESCRIPTORS_TARGET).is_none() {
        return;
    }
    let server = TestServer::start().await;
    println!("few-descriptors-target listening on {}", server.base);
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    });
    let _ = tokio::time::timeout(Duration::from_secs(120), stdin_closed).await;
}

#[tokio::test]
async fn m2_with_few_descriptors_left_idle_sockets_make_room_for_real_work() {
    // The server runs in a process of its own with `ulimit -n 256`; 300 silent sockets
    // from ten addresses (each below the per-address cap) used to take every descriptor.
    let exe = std::env::current_exe().unwrap();
    let stderr = tempfile::NamedTempFile::new().unwrap();
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {FEW_DESCRIPTORS} && exec \"$0\" \"$@\""))
        .arg(exe)
        .args([
            "connections::few_descriptors_target",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(FEW_DESCRIPTORS_TARGET, "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(stderr.reopen().unwrap())
        .spawn()
        .expect("the target starts");
    let stdout = child.stdout.take().unwrap();
    let _target = Target(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some((_, base)) = line.split_once("few-descriptors-target listening on ") {
                let _ = tx.send(base.trim().to_owned());
                return;
            }
        }
    });
    let base = tokio::task::spawn_blocking(move || rx.recv_timeout(STEP))
        .await
        .unwrap()
        .unwrap_or_else(|e| {
            let said = std::fs::read_to_string(stderr.path()).unwrap_or_default();
            panic!("the target did not say where it listens ({e}): {said}")
        });
    let server = TestServer::at(base.clone());
    let addr = address(&server);

    let mut idle = Vec::new();
    for client in 0..10u8 {
        for _ in 0..30 {
            idle.push(connect_from(Ipv4Addr::new(127, 0, 1, client), addr).await);
        }
    }
    let family = Client {
        base,
        http: reqwest::Client::builder().timeout(STEP).build().unwrap(),
        token: None,
    };
    let health = family
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("/healthz answers while 300 sockets sit idle");
    assert_eq!(health.status(), StatusCode::OK);
    let (status, body) = family
        .post(
            "/api/v1/accounts",
            json!({"email": "ann@example.org", "password": GOOD_PASSWORD, "display_name": "Ann"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut shed = 0;
    for socket in &mut idle {
        shed += usize::from(!still_open(socket).await);
    }
    assert!(shed > 0, "room was made by closing idle sockets");
}

#[tokio::test]
async fn m2_shutting_down_lets_a_request_in_flight_finish_and_does_not_wait_for_silent_sockets() {
    let mut server = TestServer::start().await;
    let addr = address(&server);
    let _silent = TcpStream::connect(addr).await.unwrap();
    // A sign-up that waits for "100 Continue", the sign that its request is being
    // handled, before it sends its body; the server is told to stop in between.
    let body =
        json!({"email": "ann@example.org", "password": GOOD_PASSWORD, "display_name": "Ann"})
            .to_string();
    let mut signing_up = TcpStream::connect(addr).await.unwrap();
    signing_up
        .write_all(
            format!(
                "POST /api/v1/accounts HTTP/1.1\r\nHost: {addr}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\
                 Expect: 100-continue\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut interim = vec![0u8; 256];
    let n = tokio::time::timeout(STEP, signing_up.read(&mut interim))
        .await
        .expect("100 Continue in time")
        .unwrap();
    let interim = String::from_utf8_lossy(&interim[..n]).into_owned();
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
    let running = server.server.take().unwrap();
    let stopping = tokio::spawn(running.shutdown());
    signing_up.write_all(body.as_bytes()).await.unwrap();
    let (closed, said) = closed_within(&mut signing_up, STEP).await;
    assert!(closed, "the connection is closed after its answer");
    assert!(said.starts_with("HTTP/1.1 201"), "{said}");
    tokio::time::timeout(STEP, stopping)
        .await
        .expect("a silent socket does not hold up the shutdown")
        .unwrap()
        .unwrap();
}

// ---------------------------------------------------------------------------------------
// L2: no cache keeps an API answer.

#[tokio::test]
async fn l2_no_api_answer_may_be_kept_by_a_cache_not_even_an_error() {
    let f = family().await;
    let (voice, voice_id) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[f.toy_keys.public(), f.mum_keys.public()],
        VOICE,
    );
    assert_eq!(upload(&f.gran, &f.home, voice).await.0, StatusCode::CREATED);
    let http = reqwest::Client::new();
    let token = f.mum.token.clone().unwrap();
    let mut answers = vec![(
        "sign-in, with its tokens",
        http.post(f.server.url("/api/v1/sessions"))
            .json(&json!({"email": "mum@example.org", "password": GOOD_PASSWORD}))
            .send()
            .await
            .unwrap(),
    )];
    for (what, path) in [
        ("the account", "/api/v1/accounts/me".to_owned()),
        ("the export", "/api/v1/accounts/me/export".to_owned()),
        ("an envelope", format!("/api/v1/messages/{voice_id}")),
        ("a missing route", "/api/v1/no-such-thing".to_owned()),
    ] {
        let answer = http
            .get(f.server.url(&path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        answers.push((what, answer));
    }
    answers.push((
        "no session",
        http.get(f.server.url("/api/v1/accounts/me"))
            .send()
            .await
            .unwrap(),
    ));
    answers.push((
        "a refused cross-site sign-in",
        http.post(f.server.url("/api/v1/sessions"))
            .header("origin", "https://evil.example")
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    ));
    for (what, answer) in &answers {
        assert_eq!(
            answer
                .headers()
                .get("cache-control")
                .map(|v| v.to_str().unwrap()),
            Some("no-store"),
            "{what} ({})",
            answer.status()
        );
    }
    let statuses: Vec<u16> = answers.iter().map(|(_, a)| a.status().as_u16()).collect();
    assert_eq!(statuses, [200, 200, 200, 200, 404, 401, 403]);
}

// ---------------------------------------------------------------------------------------
// L6: HTTP/1.1 only, and an origin is its scheme too.

/// The client preface of HTTP/2 spoken without asking (h2c "prior knowledge"), and an
/// empty SETTINGS frame.
const H2_PRIOR_KNOWLEDGE: &[u8] =
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

#[tokio::test]
async fn l6_http2_spoken_without_asking_gets_no_http2_answer() {
    let server = TestServer::start().await;
    let mut h2 = TcpStream::connect(address(&server)).await.unwrap();
    h2.write_all(H2_PRIOR_KNOWLEDGE).await.unwrap();
    let (closed, said) = closed_within(&mut h2, STEP).await;
    // An HTTP/2 server answers with its own SETTINGS frame (type 4 in the fourth byte).
    assert!(
        closed && (said.is_empty() || said.starts_with("HTTP/1.1 ")),
        "closed: {closed}, answer: {:?}",
        said.as_bytes()
    );
}

/// Signs in as Ann with `origin` as the browser would send it; true if refused as
/// cross-site.
async fn refused_as_cross_site(server: &TestServer, origin: &str) -> bool {
    let answer = server
        .http_client()
        .post(server.url("/api/v1/sessions"))
        .header("origin", origin)
        .json(&json!({"email": "ann@example.org", "password": GOOD_PASSWORD}))
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let body: serde_json::Value = answer.json().await.unwrap();
    if status == StatusCode::FORBIDDEN {
        assert_eq!(body["error"], "cross_site", "{body}");
        return true;
    }
    assert_eq!(status, StatusCode::OK, "{body}");
    false
}

#[tokio::test]
async fn l6_a_page_served_over_the_other_scheme_is_another_site() {
    // A page on http://host cannot sign in to https://host, and the other way round:
    // browsers treat them as different origins, and so does the server.
    let plain = TestServer::start().await;
    plain.person("ann@example.org", "Ann").await;
    let host = address(&plain);
    assert!(!refused_as_cross_site(&plain, &format!("http://{host}")).await);
    assert!(refused_as_cross_site(&plain, &format!("https://{host}")).await);

    let tls = TestServer::start_tls().await;
    tls.person("ann@example.org", "Ann").await;
    let host = address(&tls);
    assert!(!refused_as_cross_site(&tls, &format!("https://{host}")).await);
    assert!(refused_as_cross_site(&tls, &format!("http://{host}")).await);

    // TLS ended at a proxy: the public address says https.
    let proxied =
        TestServer::start_with(|c| c.public_url = Some("https://pawpost.example".into())).await;
    proxied.person("ann@example.org", "Ann").await;
    let host = address(&proxied);
    assert!(!refused_as_cross_site(&proxied, &format!("https://{host}")).await);
    assert!(refused_as_cross_site(&proxied, &format!("http://{host}")).await);
}
