//! Stories of people signing up and signing in, and of attackers trying to.
use pawpost_testkit::server as common;

use common::{TestServer, GOOD_PASSWORD, TEST_LOGIN_FAILURES};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn a_parent_cannot_sign_up_with_any_cloudpets_era_password() {
    let server = TestServer::start().await;
    let anon = server.anonymous();
    let email = "margaret.whitfield@example.org";
    let repeat = |unit: &str| unit.chars().cycle().take(18).collect::<String>();
    let weak = [
        "123456".to_owned(),
        "qwe".to_owned(),
        "cloudpets".to_owned(),
        "password".to_owned(),
        repeat("qwerty"),
        repeat("password"),
        repeat("cloudpets"),
        repeat("123456"),
        "margaret.whitfield".to_owned(),
        "a".to_owned(),
    ];
    for password in &weak {
        let (status, body) = anon
            .post(
                "/api/v1/accounts",
                json!({"email": email, "password": password, "display_name": "Margaret"}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{password}: {body}"
        );
        assert_eq!(body["error"], "password_rejected");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.starts_with("rule "),
            "the message names the rule: {message}"
        );
    }
    let (status, body) = anon
        .post(
            "/api/v1/accounts",
            json!({"email": email, "password": "a", "display_name": "Margaret"}),
        )
        .await;
    assert!(
        body["message"].as_str().unwrap().contains("min_length"),
        "{status} {body}"
    );

    let (status, body) = anon
        .post(
            "/api/v1/accounts",
            json!({"email": email, "password": GOOD_PASSWORD, "display_name": "Margaret"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["email"], email);
    assert!(body.get("password_hash").is_none());
}

#[tokio::test]
async fn an_email_address_has_one_account_whatever_its_case() {
    let server = TestServer::start().await;
    server.person("Rose@Example.org", "Rose").await;
    let (status, body) = server
        .anonymous()
        .post(
            "/api/v1/accounts",
            json!({"email": " rose@EXAMPLE.org ", "password": GOOD_PASSWORD, "display_name": "Impostor"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "email_taken");
    // The normalised address signs in.
    server.sign_in("ROSE@example.org", GOOD_PASSWORD).await;
}

#[tokio::test]
async fn sign_in_answers_alike_for_an_unknown_address_and_a_wrong_password() {
    let server = TestServer::start().await;
    server.person("ann@example.org", "Ann").await;
    let anon = server.anonymous();
    let (s1, b1) = anon
        .post(
            "/api/v1/sessions",
            json!({"email": "ann@example.org", "password": "wrong password entirely"}),
        )
        .await;
    let (s2, b2) = anon
        .post(
            "/api/v1/sessions",
            json!({"email": "nobody@example.org", "password": "wrong password entirely"}),
        )
        .await;
    let (s3, b3) = anon
        .post(
            "/api/v1/sessions",
            json!({"email": "not an address", "password": "x"}),
        )
        .await;
    assert_eq!(s1, StatusCode::UNAUTHORIZED);
    assert_eq!((s1, &b1), (s2, &b2));
    assert_eq!((s1, &b1), (s3, &b3));
}

#[tokio::test]
async fn wrong_passwords_are_throttled_per_account_with_retry_after() {
    let server = TestServer::start().await;
    server.person("ann@example.org", "Ann").await;
    let attempt = || async {
        server
            .anonymous()
            .http
            .post(server.url("/api/v1/sessions"))
            .json(&json!({"email": "ann@example.org", "password": "guess guess guess guess"}))
            .send()
            .await
            .unwrap()
    };
    for _ in 0..TEST_LOGIN_FAILURES {
        assert_eq!(attempt().await.status(), StatusCode::UNAUTHORIZED);
    }
    let limited = attempt().await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0);
    // Even the right password waits until the window ends: guessing cannot continue.
    let (status, _) = server
        .anonymous()
        .post(
            "/api/v1/sessions",
            json!({"email": "ann@example.org", "password": GOOD_PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Other accounts sign in as usual.
    server.person("bea@example.org", "Bea").await;
}

#[tokio::test]
async fn credential_stuffing_from_one_address_is_throttled_across_accounts() {
    let server = TestServer::start_with(|c| c.login_failures_per_address.max = 8).await;
    let anon = server.anonymous();
    let mut statuses = Vec::new();
    for i in 0..12 {
        let (status, _) = anon
            .post(
                "/api/v1/sessions",
                json!({"email": format!("user{i}@example.org"), "password": "123456"}),
            )
            .await;
        statuses.push(status);
    }
    assert!(
        statuses[..8].iter().all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert!(
        statuses[8..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
}

/// Failed sign-ins for made-up accounts from `client`, as a load balancer forwards them.
async fn failed_sign_ins_via_proxy(
    server: &TestServer,
    client: &str,
    tries: usize,
) -> Vec<StatusCode> {
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for i in 0..tries {
        let response = http
            .post(server.url("/api/v1/sessions"))
            // What a client might send itself, then what the proxy appended.
            .header("x-forwarded-for", format!("198.51.100.{i}, {client}"))
            .json(&json!({"email": format!("guess{i}@example.org"), "password": "123456"}))
            .send()
            .await
            .unwrap();
        statuses.push(response.status());
    }
    statuses
}

#[tokio::test]
async fn behind_a_trusted_load_balancer_each_client_is_throttled_on_its_own() {
    let server = TestServer::start_with(|c| {
        c.login_failures_per_address.max = 3;
        c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let first = failed_sign_ins_via_proxy(&server, "203.0.113.5", 5).await;
    assert_eq!(
        first,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS
        ],
        "the stuffing client is throttled, although its own forged entry changes each time"
    );
    let other = failed_sign_ins_via_proxy(&server, "203.0.113.6", 1).await;
    assert_eq!(
        other,
        [StatusCode::UNAUTHORIZED],
        "another family behind the same load balancer is not locked out"
    );
}

#[tokio::test]
async fn without_a_trusted_proxy_a_forwarded_address_changes_nothing() {
    let server = TestServer::start_with(|c| c.login_failures_per_address.max = 3).await;
    // Each request claims another address; all are counted against the real one.
    let mut statuses = Vec::new();
    for client in ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"] {
        statuses.extend(failed_sign_ins_via_proxy(&server, client, 1).await);
    }
    assert_eq!(statuses[3], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
}

#[tokio::test]
async fn a_login_flood_does_not_stall_other_requests() {
    let server = TestServer::start_with(|c| {
        c.hash_workers = 1;
        c.login_failures_per_address.max = 10_000;
        c.login_failures_per_account.max = 10_000;
    })
    .await;
    let (ann, _) = server.person("ann@example.org", "Ann").await;
    let flood: Vec<_> = (0..40)
        .map(|i| {
            let anon = server.anonymous();
            tokio::spawn(async move {
                anon.post("/api/v1/sessions", json!({"email": format!("x{i}@example.org"), "password": "nope nope nope nope"}))
                    .await
                    .0
            })
        })
        .collect();
    tokio::task::yield_now().await;
    // While forty password checks queue on one worker, a signed-in request is answered
    // before the flood has drained.
    let (status, _) = ann.get("/api/v1/households").await;
    assert_eq!(status, StatusCode::OK);
    let unfinished = flood.iter().filter(|task| !task.is_finished()).count();
    assert!(
        unfinished > 0,
        "the flood should still be running when the other request is answered"
    );
    for task in flood {
        let status = task.await.unwrap();
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::SERVICE_UNAVAILABLE,
            "{status}"
        );
    }
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let server = TestServer::start().await;
    let (ann, _) = server.person("ann@example.org", "Ann").await;
    assert_eq!(ann.get("/api/v1/accounts/me").await.0, StatusCode::OK);
    let (status, _) = ann
        .call(Method::DELETE, "/api/v1/sessions/current", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = ann.get("/api/v1/accounts/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "session_expired");
}

#[tokio::test]
async fn changing_the_password_ends_every_other_session() {
    let server = TestServer::start().await;
    let (phone, _) = server.person("ann@example.org", "Ann").await;
    let laptop = server.sign_in("ann@example.org", GOOD_PASSWORD).await;
    let (status, sessions) = phone.get("/api/v1/sessions").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sessions.as_array().unwrap().len(), 2);

    let new_password = "copper lantern meadow quartz";
    let (status, body) = phone
        .call(
            Method::PUT,
            "/api/v1/accounts/me/password",
            Some(json!({"current_password": "not it at all, sorry", "new_password": new_password})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = phone
        .call(
            Method::PUT,
            "/api/v1/accounts/me/password",
            Some(json!({"current_password": GOOD_PASSWORD, "new_password": "qwertyqwertyqwerty"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = phone
        .call(
            Method::PUT,
            "/api/v1/accounts/me/password",
            Some(json!({"current_password": GOOD_PASSWORD, "new_password": new_password})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(phone.get("/api/v1/accounts/me").await.0, StatusCode::OK);
    assert_eq!(
        laptop.get("/api/v1/accounts/me").await.0,
        StatusCode::UNAUTHORIZED
    );
    server.sign_in("ann@example.org", new_password).await;
}

#[tokio::test]
async fn signing_out_everywhere_else_ends_the_other_sessions_and_keeps_this_one() {
    let server = TestServer::start().await;
    let (phone, _) = server.person("ann@example.org", "Ann").await;
    let laptop = server.sign_in("ann@example.org", GOOD_PASSWORD).await;
    let library = server.sign_in("ann@example.org", GOOD_PASSWORD).await;
    let (bob, _) = server.person("bob@example.org", "Bob").await;
    assert_eq!(
        phone
            .get("/api/v1/sessions")
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let (status, body) = phone.post("/api/v1/sessions/end-others", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ended"], 2);
    assert_eq!(phone.get("/api/v1/accounts/me").await.0, StatusCode::OK);
    for other in [&laptop, &library] {
        let (status, body) = other.get("/api/v1/accounts/me").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"], "session_expired");
    }
    let (_, sessions) = phone.get("/api/v1/sessions").await;
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["current"], true);
    // Someone else's sessions are not touched.
    assert_eq!(bob.get("/api/v1/accounts/me").await.0, StatusCode::OK);
    // The password still works: signing in again starts a new session.
    server.sign_in("ann@example.org", GOOD_PASSWORD).await;

    let (status, activity) = phone.get("/api/v1/accounts/me/activity").await;
    assert_eq!(status, StatusCode::OK);
    let entry = activity
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "other_sessions_ended")
        .expect("the trail records it");
    assert_eq!(entry["target"], "2", "how many ended");

    // Asked again with nothing else signed in but the new session, one ends; alone, none.
    assert_eq!(
        phone.post("/api/v1/sessions/end-others", json!({})).await.1["ended"],
        1
    );
    assert_eq!(
        phone.post("/api/v1/sessions/end-others", json!({})).await.1["ended"],
        0
    );
}

#[tokio::test]
async fn signing_out_everywhere_else_needs_a_session() {
    let server = TestServer::start().await;
    let (status, body) = server
        .anonymous()
        .post("/api/v1/sessions/end-others", json!({}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn sessions_expire() {
    let server =
        TestServer::start_with(|c| c.session_ttl = std::time::Duration::from_secs(1)).await;
    let (ann, _) = server.person("ann@example.org", "Ann").await;
    assert_eq!(ann.get("/api/v1/accounts/me").await.0, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        ann.get("/api/v1/accounts/me").await.0,
        StatusCode::UNAUTHORIZED
    );
}
