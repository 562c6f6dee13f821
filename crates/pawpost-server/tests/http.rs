//! What any client, browser or attacker, sees of the server itself.
use pawpost_testkit::server as common;

use common::{TestServer, GOOD_PASSWORD};
use pawpost_storage::BlobUrl;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;

#[tokio::test]
async fn health_security_txt_and_the_policy_are_served() {
    let server =
        TestServer::start_with(|c| c.security_contact = "mailto:safety@toys.example".into()).await;
    let (status, health) = server.anonymous().get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["status"], "ok");

    let txt = reqwest::get(server.url("/.well-known/security.txt"))
        .await
        .unwrap();
    assert_eq!(txt.status(), StatusCode::OK);
    assert!(txt.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let txt = txt.text().await.unwrap();
    assert!(
        txt.contains("Contact: mailto:safety@toys.example\n"),
        "{txt}"
    );
    let expires = txt
        .lines()
        .find_map(|l| l.strip_prefix("Expires: "))
        .expect("Expires field");
    let expires =
        time::OffsetDateTime::parse(expires, &time::format_description::well_known::Rfc3339)
            .unwrap();
    let now = time::OffsetDateTime::now_utc();
    assert!(expires > now && expires < now + time::Duration::days(366));
    let policy_url = txt
        .lines()
        .find_map(|l| l.strip_prefix("Policy: "))
        .expect("Policy field");
    let policy = reqwest::get(policy_url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(policy.contains("Reporting a vulnerability"));
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let server = TestServer::start().await;
    let (status, doc) = server.anonymous().get("/api/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("/healthz", "get"),
        ("/.well-known/security.txt", "get"),
        ("/security-policy", "get"),
        ("/api/v1/accounts", "post"),
        ("/api/v1/accounts/me", "get"),
        ("/api/v1/accounts/me/password", "put"),
        ("/api/v1/sessions", "post"),
        ("/api/v1/sessions", "get"),
        ("/api/v1/sessions/current", "get"),
        ("/api/v1/sessions/current", "delete"),
        ("/api/v1/sessions/end-others", "post"),
        ("/api/v1/households", "post"),
        ("/api/v1/households", "get"),
        ("/api/v1/households/{household_id}", "get"),
        ("/api/v1/households/{household_id}", "patch"),
        ("/api/v1/households/{household_id}/members", "get"),
        ("/api/v1/households/{household_id}/invitations", "post"),
        ("/api/v1/invitations/accept", "post"),
        (
            "/api/v1/households/{household_id}/members/{account_id}/approve",
            "post",
        ),
        (
            "/api/v1/households/{household_id}/members/{account_id}/block",
            "post",
        ),
        (
            "/api/v1/households/{household_id}/members/{account_id}/unblock",
            "post",
        ),
        (
            "/api/v1/households/{household_id}/members/{account_id}",
            "patch",
        ),
        (
            "/api/v1/households/{household_id}/members/{account_id}",
            "delete",
        ),
        ("/api/v1/devices", "post"),
        ("/api/v1/devices", "get"),
        ("/api/v1/households/{household_id}/devices", "get"),
        ("/api/v1/devices/{device_id}/certificate", "post"),
        ("/api/v1/devices/{device_id}", "delete"),
        ("/api/v1/households/{household_id}/rosters", "get"),
        ("/api/v1/households/{household_id}/roster", "get"),
        ("/api/v1/households/{household_id}/roster", "post"),
        ("/api/v1/households/{household_id}/messages", "post"),
        ("/api/v1/households/{household_id}/messages", "get"),
        ("/api/v1/messages/{message_id}", "get"),
        ("/api/v1/messages/{message_id}/receipts", "post"),
        ("/api/v1/messages/{message_id}/approvals", "post"),
        ("/api/v1/households/{household_id}/toys", "post"),
        ("/api/v1/households/{household_id}/toys", "get"),
        (
            "/api/v1/households/{household_id}/toys/{device_id}",
            "delete",
        ),
        (
            "/api/v1/households/{household_id}/toys/{device_id}/names",
            "put",
        ),
        (
            "/api/v1/households/{household_id}/toys/{device_id}/safety-check",
            "post",
        ),
        ("/api/v1/toy/ws", "get"),
        ("/api/v1/toy/channel", "get"),
        ("/api/v1/accounts/me", "delete"),
        ("/api/v1/accounts/me/export", "get"),
        ("/api/v1/households/{household_id}", "delete"),
        ("/api/v1/households/{household_id}/audit", "get"),
        ("/api/v1/accounts/me/activity", "get"),
        ("/api/v1/password-resets", "post"),
        ("/api/v1/password-resets/confirm", "post"),
        ("/api/v1/email-verifications", "post"),
        ("/api/v1/email-verifications/confirm", "post"),
        ("/api/v1/passkeys/registrations", "post"),
        ("/api/v1/passkeys/registrations/{ceremony}", "post"),
        ("/api/v1/accounts/passkey", "post"),
        ("/api/v1/accounts/passkey/{ceremony}", "post"),
        ("/api/v1/sessions/passkey", "post"),
        ("/api/v1/sessions/passkey/{ceremony}", "post"),
        ("/api/v1/passkeys", "get"),
        ("/api/v1/passkeys/{id}", "delete"),
        ("/api/v1/passkeys/{id}/recovery-material", "put"),
        ("/api/v1/passkeys/{id}/recovery-material", "get"),
        ("/api/v1/accounts/me/notifications", "get"),
        ("/api/v1/accounts/me/notifications", "put"),
        ("/api/v1/notifications/unsubscribe", "get"),
        ("/api/v1/notifications/unsubscribe", "post"),
        ("/api/v1/events", "get"),
    ];
    let documented: usize = paths
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented,
        expected.len(),
        "a documented operation is missing from this list"
    );
    for (path, method) in expected {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from the document"
        );
    }
    // Every documented operation really answers (anything but 404/405 from routing).
    let anon = server.anonymous();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let concrete = path
                .replace("{household_id}", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
                .replace("{account_id}", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c")
                .replace("{message_id}", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5d");
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            let (status, body) = anon.call(method.clone(), &concrete, Some(json!({}))).await;
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            if status == StatusCode::NOT_FOUND {
                assert_ne!(body["error"], Value::Null, "{method} {path} is not routed");
            }
        }
    }
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let server = TestServer::start().await;
    for path in ["/healthz", "/api/v1/accounts/me", "/no/such/page"] {
        let response = reqwest::get(server.url(path)).await.unwrap();
        let h = response.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["x-frame-options"], "DENY");
    }
}

#[tokio::test]
async fn the_session_cookie_is_httponly_strict_and_secure() {
    let server = TestServer::start().await;
    server.person("ann@example.org", "Ann").await;
    let response = reqwest::Client::new()
        .post(server.url("/api/v1/sessions"))
        .json(&json!({"email": "ann@example.org", "password": GOOD_PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for flag in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie} lacks {flag}");
    }

    let insecure = TestServer::start_with(|c| c.insecure_cookies = true).await;
    insecure.person("ann@example.org", "Ann").await;
    let response = reqwest::Client::new()
        .post(insecure.url("/api/v1/sessions"))
        .json(&json!({"email": "ann@example.org", "password": GOOD_PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(
        !cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
}

#[tokio::test]
async fn a_forged_cross_site_request_cannot_use_the_cookie() {
    let server = TestServer::start_with(|c| c.insecure_cookies = true).await;
    server.person("ann@example.org", "Ann").await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let signed_in: Value = browser
        .post(server.url("/api/v1/sessions"))
        .json(&json!({"email": "ann@example.org", "password": GOOD_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let csrf = signed_in["csrf_token"].as_str().unwrap();
    let create = |token: Option<&str>, origin: Option<&str>| {
        let mut request = browser
            .post(server.url("/api/v1/households"))
            .json(&json!({"name": "Forged"}));
        if let Some(token) = token {
            request = request.header("x-csrf-token", token);
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    // Reading with the cookie works; changing without the token does not.
    let me = browser
        .get(server.url("/api/v1/accounts/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let forged = create(None, None).await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(forged.json::<Value>().await.unwrap()["error"], "csrf");
    assert_eq!(
        create(Some("wrong"), None).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let evil = create(Some(csrf), Some("https://evil.example"))
        .await
        .unwrap();
    assert_eq!(evil.status(), StatusCode::FORBIDDEN);
    let genuine = create(Some(csrf), Some(&server.base)).await.unwrap();
    assert_eq!(genuine.status(), StatusCode::CREATED);
    // A login forged from another site is refused too.
    let login = reqwest::Client::new()
        .post(server.url("/api/v1/sessions"))
        .header("origin", "https://evil.example")
        .json(&json!({"email": "ann@example.org", "password": GOOD_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn malformed_and_huge_bodies_get_clear_errors() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let url = server.url("/api/v1/accounts");
    let huge = format!("{{\"email\":\"{}\"}}", "a".repeat(2 << 20));
    let response = http
        .post(&url)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "body_too_large"
    );

    let response = http
        .post(&url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_json");
    assert!(body["message"].as_str().unwrap().contains("openapi.json"));

    let response = http.post(&url).body("{}").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let response = http
        .post(&url)
        .json(&json!({"email": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let (status, body) = server
        .anonymous()
        .get("/api/v1/households/not-a-uuid")
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "authentication is checked first: {body}"
    );
}

#[tokio::test]
async fn the_data_folder_and_its_files_are_private() {
    // The local blob folder even when the other stories keep their blobs on S3.
    let server =
        TestServer::start_with_storage(|_, s| s.blobs = BlobUrl::folder_in(&s.data_dir)).await;
    server.person("ann@example.org", "Ann").await;
    let data = server.data.path().join("data");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("blobs")), 0o700);
    for entry in std::fs::read_dir(&data).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            assert_eq!(mode(&entry.path()), 0o600, "{}", entry.path().display());
        }
    }
}

#[tokio::test]
async fn a_stopped_server_keeps_everything_for_the_next_start() {
    let data = tempfile::tempdir().unwrap();
    let config = common::test_config(data.path());
    let storage = common::test_storage(&config.data_dir);
    let first = pawpost_server::start(config.clone(), pawpost_storage::open(&storage))
        .await
        .unwrap();
    let base = format!("http://{}", first.addr);
    let anon = common::Client {
        base,
        http: reqwest::Client::new(),
        token: None,
    };
    let (status, _) = anon
        .post(
            "/api/v1/accounts",
            json!({"email": "ann@example.org", "password": GOOD_PASSWORD, "display_name": "Ann"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    first.shutdown().await.unwrap();
    let second = pawpost_server::start(config, pawpost_storage::open(&storage))
        .await
        .unwrap();
    let anon = common::Client {
        base: format!("http://{}", second.addr),
        http: reqwest::Client::new(),
        token: None,
    };
    let (status, _) = anon
        .post(
            "/api/v1/sessions",
            json!({"email": "ann@example.org", "password": GOOD_PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    second.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_web_app_is_served_by_the_server_itself() {
    let server = TestServer::start().await;
    for path in ["/", "/join"] {
        let response = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert!(response.text().await.unwrap().contains("<main"), "{path}");
    }
    let module = reqwest::get(server.url("/js/crypto/index.js"))
        .await
        .unwrap();
    assert_eq!(module.status(), StatusCode::OK);
    assert!(module.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("javascript"));
    for hidden in [
        "/test/crypto.test.js",
        "/tools/seal.mjs",
        "/js/missing.js",
        "/api/v1/nothing",
    ] {
        let response = reqwest::get(server.url(hidden)).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{hidden}");
    }
}

#[tokio::test]
async fn a_body_declared_too_large_is_refused_before_it_is_sent() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start().await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/v1/accounts HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 512];
    // Bounded: the request timeout would answer 408 after 30 s; 413 comes at once.
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("an answer without sending the body")
        .unwrap();
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
}
