//! pawpost serving https itself (`tls_cert`, `tls_key`): a certificate made at test time,
//! clients that trust it, HSTS, and the ways a certificate or key can be wrong.
use pawpost_testkit::server as common;

use base64::Engine;
use common::{test_config, Client, TestServer, GOOD_PASSWORD};
use futures_util::{SinkExt, StreamExt};
use pawpost_server::config::{ServerConfig, STRICT_TRANSPORT_SECURITY, TLS_HANDSHAKE_TIMEOUT};
use pawpost_server::{RunningServer, StartError};
use reqwest::StatusCode;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

/// How long one step may take before the test fails (well under the handshake timeout).
const STEP: Duration = Duration::from_secs(5);

/// A self-signed certificate for 127.0.0.1 and localhost, as PEM files in `dir`.
struct TestCert {
    cert: PathBuf,
    key: PathBuf,
    cert_pem: String,
    key_pem: String,
}

fn make_cert(dir: &Path, name: &str) -> TestCert {
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let (cert_pem, key_pem) = (cert.pem(), key_pair.serialize_pem());
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, &key_pem).unwrap();
    TestCert {
        cert,
        key,
        cert_pem,
        key_pem,
    }
}

/// A client that trusts only `cert`.
fn https_client(cert_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .timeout(STEP)
        .build()
        .unwrap()
}

struct TlsServer {
    server: RunningServer,
    base: String,
    cert_pem: String,
    _dir: tempfile::TempDir,
}

async fn tls_server() -> TlsServer {
    let dir = tempfile::tempdir().unwrap();
    let made = make_cert(dir.path(), "server");
    let mut config = test_config(dir.path());
    config.tls_cert = Some(made.cert);
    config.tls_key = Some(made.key);
    let server = common::start(config).await.expect("server starts");
    TlsServer {
        base: server.local_url(),
        server,
        cert_pem: made.cert_pem,
        _dir: dir,
    }
}

async fn start_error(adjust: impl FnOnce(&mut ServerConfig)) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    adjust(&mut config);
    let data_dir = config.data_dir.clone();
    let error = match common::start(config).await {
        Ok(_) => panic!("the server started"),
        Err(e) => e,
    };
    assert!(matches!(error, StartError::Tls(_)), "{error:?}");
    assert!(
        !data_dir.exists(),
        "a wrong certificate stops the start before the data folder is made"
    );
    error.to_string()
}

#[tokio::test]
async fn https_is_served_with_hsts_and_an_https_public_address() {
    let s = tls_server().await;
    assert!(s.base.starts_with("https://127.0.0.1:"), "{}", s.base);
    let http = https_client(&s.cert_pem);
    let response = http
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["strict-transport-security"],
        STRICT_TRANSPORT_SECURITY
    );
    assert_eq!(STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    assert_eq!(response.headers()["x-frame-options"], "DENY");

    let txt = http
        .get(format!("{}/.well-known/security.txt", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        txt.contains(&format!("Canonical: {}/.well-known/security.txt", s.base)),
        "the default public address is https: {txt}"
    );

    // A whole sign-up and sign-in over https, the session cookie included.
    let anon = Client {
        base: s.base.clone(),
        http: http.clone(),
        token: None,
    };
    let (status, body) = anon
        .post(
            "/api/v1/accounts",
            json!({"email": "tls@example.org", "password": GOOD_PASSWORD, "display_name": "T"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let sign_in = http
        .post(format!("{}/api/v1/sessions", s.base))
        .json(&json!({"email": "tls@example.org", "password": GOOD_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(sign_in.status(), StatusCode::OK);
    assert_eq!(
        sign_in.headers()["strict-transport-security"],
        STRICT_TRANSPORT_SECURITY
    );
    let cookie = sign_in.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_certificate_is_refused() {
    let s = tls_server().await;
    let other = make_cert(s._dir.path(), "other");
    let result = https_client(&other.cert_pem)
        .get(format!("{}/healthz", s.base))
        .send()
        .await;
    assert!(result.is_err(), "{result:?}");
    // The server is unharmed.
    let ok = https_client(&s.cert_pem)
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test]
async fn plain_http_to_the_https_port_gets_no_http_answer() {
    let s = tls_server().await;
    let mut tcp = TcpStream::connect(s.server.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(STEP, tcp.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection");
    assert!(read.is_ok() || answer.is_empty(), "{read:?}");
    assert!(
        !answer.starts_with(b"HTTP/"),
        "an HTTP answer on the https port: {:?}",
        String::from_utf8_lossy(&answer)
    );
    let plain = reqwest::Client::new()
        .get(format!("http://{}/healthz", s.server.addr))
        .timeout(STEP)
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");
}

#[tokio::test]
async fn a_plain_server_sends_no_hsts() {
    let server = TestServer::start().await;
    let response = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .headers()
            .get("strict-transport-security")
            .is_none(),
        "{:?}",
        response.headers()
    );
    assert_eq!(response.headers()["x-frame-options"], "DENY");
}

#[tokio::test]
async fn an_https_public_address_behind_a_proxy_turns_hsts_on() {
    let server = TestServer::start_with(|c| {
        c.public_url = Some("https://pawpost.example/".into());
    })
    .await;
    for path in ["/healthz", "/", "/api/v1/accounts/me"] {
        let response = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(
            response.headers()["strict-transport-security"],
            STRICT_TRANSPORT_SECURITY,
            "{path}"
        );
    }
}

#[tokio::test]
async fn only_one_of_certificate_and_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let made = make_cert(dir.path(), "server");
    let error = start_error(|c| c.tls_cert = Some(made.cert.clone())).await;
    assert!(
        error.contains("--tls-cert") && error.contains("--tls-key") && error.contains("both"),
        "{error}"
    );
    let error = start_error(|c| c.tls_key = Some(made.key.clone())).await;
    assert!(
        error.contains("only --tls-key was given") && error.contains("both"),
        "{error}"
    );
}

#[tokio::test]
async fn missing_swapped_and_mismatched_files_are_refused_by_name_without_key_material() {
    let dir = tempfile::tempdir().unwrap();
    let one = make_cert(dir.path(), "one");
    let two = make_cert(dir.path(), "two");
    let secret_lines: Vec<&str> = [one.key_pem.as_str(), two.key_pem.as_str()]
        .into_iter()
        .flat_map(str::lines)
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let no_key_material = |error: &str| {
        for line in &secret_lines {
            assert!(!error.contains(line), "key material in {error}");
        }
    };

    let missing = dir.path().join("missing.crt");
    let error = start_error(|c| {
        c.tls_cert = Some(missing.clone());
        c.tls_key = Some(one.key.clone());
    })
    .await;
    assert!(
        error.contains(&missing.display().to_string()) && error.contains("cannot read"),
        "{error}"
    );

    let missing_key = dir.path().join("missing.key");
    let error = start_error(|c| {
        c.tls_cert = Some(one.cert.clone());
        c.tls_key = Some(missing_key.clone());
    })
    .await;
    assert!(
        error.contains(&missing_key.display().to_string()) && error.contains("private key"),
        "{error}"
    );

    // The two files given the wrong way round.
    let error = start_error(|c| {
        c.tls_cert = Some(one.key.clone());
        c.tls_key = Some(one.cert.clone());
    })
    .await;
    assert!(
        error.contains(&one.key.display().to_string()) && error.contains("no PEM certificate"),
        "{error}"
    );
    no_key_material(&error);

    let error = start_error(|c| {
        c.tls_cert = Some(one.cert.clone());
        c.tls_key = Some(one.cert.clone());
    })
    .await;
    assert!(
        error.contains(&one.cert.display().to_string())
            && error.contains("no usable PEM private key"),
        "{error}"
    );

    // A key that belongs to another certificate.
    let error = start_error(|c| {
        c.tls_cert = Some(one.cert.clone());
        c.tls_key = Some(two.key.clone());
    })
    .await;
    assert!(
        error.contains("does not belong to the certificate")
            && error.contains(&one.cert.display().to_string())
            && error.contains(&two.key.display().to_string()),
        "{error}"
    );
    no_key_material(&error);

    // PEM that is not a key at all, and a file that is not PEM.
    let garbage = dir.path().join("garbage.key");
    std::fs::write(
        &garbage,
        "-----BEGIN PRIVATE KEY-----\nAAAAAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let error = start_error(|c| {
        c.tls_cert = Some(one.cert.clone());
        c.tls_key = Some(garbage.clone());
    })
    .await;
    assert!(error.contains(&garbage.display().to_string()), "{error}");
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a certificate\n").unwrap();
    let error = start_error(|c| {
        c.tls_cert = Some(text.clone());
        c.tls_key = Some(one.key.clone());
    })
    .await;
    assert!(error.contains("no PEM certificate"), "{error}");
}

/// Re-encodes rcgen's PKCS#8 EC key as SEC1 (`BEGIN EC PRIVATE KEY`): the SEC1 structure
/// is the PKCS#8 structure's last field.
fn sec1_pem(pkcs8_der: &[u8]) -> String {
    fn item(der: &[u8]) -> (u8, &[u8], &[u8]) {
        let tag = der[0];
        let (len, start) = if der[1] < 0x80 {
            (der[1] as usize, 2)
        } else {
            let n = (der[1] & 0x7f) as usize;
            let len = der[2..2 + n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | *b as usize);
            (len, 2 + n)
        };
        (tag, &der[start..start + len], &der[start + len..])
    }
    let (_, info, _) = item(pkcs8_der);
    let (_, _, rest) = item(info); // version
    let (_, _, rest) = item(rest); // algorithm
    let (tag, sec1, _) = item(rest);
    assert_eq!(tag, 0x04, "the private key is an OCTET STRING");
    let b64 = base64::engine::general_purpose::STANDARD.encode(sec1);
    let mut pem = String::from("-----BEGIN EC PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END EC PRIVATE KEY-----\n");
    pem
}

async fn serves_with(cert: &Path, key: &Path, cert_pem: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.tls_cert = Some(cert.to_owned());
    config.tls_key = Some(key.to_owned());
    let server = common::start(config).await.expect("server starts");
    let response = https_client(cert_pem)
        .get(format!("{}/healthz", server.local_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn ec_keys_in_sec1_and_a_certificate_chain_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    // A leaf signed by a small CA, given as leaf then CA; the client trusts only the CA.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let chain = dir.path().join("chain.pem");
    std::fs::write(&chain, format!("{}{}", leaf.pem(), ca.pem())).unwrap();
    let key = dir.path().join("leaf-sec1.key");
    std::fs::write(&key, sec1_pem(&leaf_key.serialize_der())).unwrap();
    serves_with(&chain, &key, &ca.pem()).await;
}

#[tokio::test]
async fn rsa_keys_are_accepted() {
    // rcgen cannot make RSA keys with ring; openssl can, where it is installed.
    let dir = tempfile::tempdir().unwrap();
    let (cert, pkcs8, pkcs1) = (
        dir.path().join("rsa.crt"),
        dir.path().join("rsa-pkcs8.key"),
        dir.path().join("rsa-pkcs1.key"),
    );
    let made = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&pkcs8)
        .output();
    if !made.is_ok_and(|o| o.status.success()) {
        let why = "it makes the RSA keys checked here: apt-get install openssl";
        return pawpost_testkit::skip("openssl", why, None);
    }
    let converted = std::process::Command::new("openssl")
        .args(["rsa", "-traditional", "-in"])
        .arg(&pkcs8)
        .arg("-out")
        .arg(&pkcs1)
        .output()
        .unwrap();
    assert!(converted.status.success());
    assert!(std::fs::read_to_string(&pkcs1)
        .unwrap()
        .starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let key_pair = rcgen::KeyPair::from_pem(&std::fs::read_to_string(&pkcs8).unwrap()).unwrap();
    let certificate = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key_pair)
        .unwrap();
    std::fs::write(&cert, certificate.pem()).unwrap();
    let cert_pem = std::fs::read_to_string(&cert).unwrap();
    serves_with(&cert, &pkcs8, &cert_pem).await;
    serves_with(&cert, &pkcs1, &cert_pem).await;
}

#[tokio::test]
async fn a_stalled_handshake_blocks_nobody_and_is_closed_in_time() {
    let s = tls_server().await;
    // Connections that send nothing, and one that sends half a ClientHello.
    let mut stalled = Vec::new();
    for _ in 0..8 {
        stalled.push(TcpStream::connect(s.server.addr).await.unwrap());
    }
    let mut half = TcpStream::connect(s.server.addr).await.unwrap();
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .unwrap();
    stalled.push(half);

    let started = Instant::now();
    let response = https_client(&s.cert_pem)
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .expect("another client is served at once");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(started.elapsed() < STEP, "{:?}", started.elapsed());

    // The stalled ones are closed once the handshake deadline passes.
    for mut tcp in stalled {
        let mut byte = [0u8; 64];
        let read = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT + STEP, async {
            loop {
                match tcp.read(&mut byte).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert!(read.is_ok(), "a stalled handshake was never closed");
    }
}

/// A TLS client connection to the server, trusting `cert_pem`.
async fn tls_connect(s: &TlsServer) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    tls_connect_with(s, rustls::DEFAULT_VERSIONS).await
}

/// [`tls_connect`] offering only `versions`.
async fn tls_connect_with(
    s: &TlsServer,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    let der = rustls::pki_types::CertificateDer::from_pem_slice(s.cert_pem.as_bytes()).unwrap();
    roots.add(der).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(s.server.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap()
}

use rustls::pki_types::pem::PemObject;

#[tokio::test]
async fn the_toy_websocket_works_over_wss() {
    let s = tls_server().await;
    let tls = tls_connect(&s).await;
    assert_eq!(
        tls.get_ref().1.alpn_protocol(),
        Some(&b"http/1.1"[..]),
        "HTTP/1.1 is negotiated, which carries the WebSocket upgrade"
    );
    let url = format!("{}/api/v1/toy/ws", s.base.replace("https://", "wss://"));
    let (mut socket, response) = tokio_tungstenite::client_async(url.as_str(), tls)
        .await
        .expect("the WebSocket upgrade succeeds over TLS");
    assert_eq!(
        response.headers()["strict-transport-security"],
        STRICT_TRANSPORT_SECURITY
    );
    // The server opens the toy protocol with a challenge to sign.
    let first = tokio::time::timeout(STEP, socket.next())
        .await
        .expect("a frame in time")
        .expect("the connection is open")
        .unwrap();
    let tokio_tungstenite::tungstenite::Message::Binary(bytes) = first else {
        panic!("expected a binary frame, got {first:?}")
    };
    assert!(matches!(
        pawpost_toy::Frame::decode(&bytes).unwrap(),
        pawpost_toy::Frame::Challenge { .. }
    ));
}

/// The toy's WebSocket over `tls`: the socket, once the server's challenge has come.
async fn toy_socket_over(
    s: &TlsServer,
    tls: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
) -> tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    use tokio_tungstenite::tungstenite::Message;
    let url = format!("{}/api/v1/toy/ws", s.base.replace("https://", "wss://"));
    let (mut socket, _) = tokio_tungstenite::client_async(url.as_str(), tls)
        .await
        .expect("the WebSocket upgrade succeeds over TLS");
    let first = tokio::time::timeout(STEP, socket.next())
        .await
        .expect("a frame in time")
        .expect("the connection is open")
        .unwrap();
    let Message::Binary(bytes) = first else {
        panic!("expected the challenge, got {first:?}")
    };
    assert!(matches!(
        pawpost_toy::Frame::decode(&bytes).unwrap(),
        pawpost_toy::Frame::Challenge { .. }
    ));
    socket
}

/// The next message that is not a ping; `None` when the connection ended.
async fn next_answer(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    >,
) -> Option<tokio_tungstenite::tungstenite::Message> {
    use tokio_tungstenite::tungstenite::Message;
    loop {
        match tokio::time::timeout(STEP, socket.next())
            .await
            .expect("an answer or the end in time")
        {
            Some(Ok(Message::Ping(_))) => continue,
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
            Some(Ok(message)) => return Some(message),
        }
    }
}

/// Over TLS 1.3 the server reads and writes a toy's records itself, with the keys taken
/// out of rustls after the upgrade (so that an idle toy keeps no TLS buffers): a frame
/// that arrives in several records comes whole, the answer opens in the client's own TLS
/// library, and a `KeyUpdate`, which rustls would have followed, ends the connection.
#[tokio::test]
async fn over_tls_1_3_a_toys_records_are_the_servers_own() {
    use tokio_tungstenite::tungstenite::Message;
    let s = tls_server().await;
    let tls = tls_connect_with(&s, &[&rustls::version::TLS13]).await;
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    let mut socket = toy_socket_over(&s, tls).await;
    // A masked ping, written a few bytes at a time: each piece is a record of its own.
    let mask = [0x11, 0x22, 0x33, 0x44];
    let mut ping = vec![0x89, 0x80 | 3];
    ping.extend_from_slice(&mask);
    ping.extend(b"paw".iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    for piece in ping.chunks(3) {
        socket.get_mut().write_all(piece).await.unwrap();
        socket.get_mut().flush().await.unwrap();
    }
    assert_eq!(
        next_answer(&mut socket).await,
        Some(Message::Pong(b"paw".to_vec().into()))
    );
    // The client's library renews its keys: the server does not follow.
    socket.get_mut().get_mut().1.refresh_traffic_keys().unwrap();
    socket
        .send(Message::Ping(b"again".to_vec().into()))
        .await
        .unwrap();
    assert_eq!(
        next_answer(&mut socket).await,
        None,
        "a key update ends the connection; the toy connects again"
    );
}

/// A client that speaks only TLS 1.2 is served too, its records left to rustls.
#[tokio::test]
async fn over_tls_1_2_a_toy_is_served_by_rustls() {
    use tokio_tungstenite::tungstenite::Message;
    let s = tls_server().await;
    let tls = tls_connect_with(&s, &[&rustls::version::TLS12]).await;
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    let mut socket = toy_socket_over(&s, tls).await;
    socket
        .send(Message::Ping(b"paw".to_vec().into()))
        .await
        .unwrap();
    assert_eq!(
        next_answer(&mut socket).await,
        Some(Message::Pong(b"paw".to_vec().into()))
    );
}

#[tokio::test]
async fn a_toy_pairs_authenticates_and_plays_a_message_over_wss() {
    use common::family::*;
    use common::toys::{pair, start_toy, STEP};
    use pawpost_crypto::MediaType;
    use pawpost_toy_sim::{next_event, SimConfig, SimEvent, SimToy};

    let f = family_on(TestServer::start_tls().await).await;
    assert!(f.server.base.starts_with("https://"), "{}", f.server.base);
    let state = tempfile::tempdir().unwrap();
    // Trusting only the public authorities, a toy never reaches a self-signed server.
    let untrusting = SimToy::start(SimConfig {
        server: f.server.base.clone(),
        state_dir: state.path().join("untrusting"),
        speak_wav: false,
        language: pawpost_toy_sim::Language::default(),
        trust_cert: None,
    })
    .await
    .unwrap();
    // One that trusts the server's certificate pairs over wss.
    let toy = start_toy(&f.server, &state.path().join("toy")).await;
    assert!(toy.status().ws_url.starts_with("wss://"));
    let identity = pair(&f, &toy).await;

    // Authenticated on a new connection with its own key, it is sent gran's message.
    let mut events = toy.events();
    let (voice, voice_id) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[identity],
        VOICE,
    );
    assert_eq!(upload(&f.gran, &f.home, voice).await.0, StatusCode::CREATED);
    next_event(
        &mut events,
        |e| {
            *e == SimEvent::Heart {
                state: "blink".into(),
            }
        },
        STEP,
    )
    .await
    .expect("the message reaches the toy");
    toy.press();
    let SimEvent::Played {
        message_id,
        ogg_path,
    } = next_event(&mut events, |e| matches!(e, SimEvent::Played { .. }), STEP)
        .await
        .unwrap()
    else {
        unreachable!()
    };
    assert_eq!(message_id, voice_id);
    assert_eq!(std::fs::read(ogg_path).unwrap(), VOICE);
    assert!(
        !untrusting.status().connected,
        "a toy that does not trust the certificate never connected"
    );
    toy.stop().await;
}
