//! Forgotten passwords: a link sent by email sets a new one, once, for 30 minutes, and
//! only until the password changes; the database keeps only a hash of the link's random
//! token, so reading it makes no link; the answer to a request says nothing about
//! whether an account uses the address; requests are limited per address and per
//! client. Changing the password tells the account by email.
use pawpost_testkit::server as common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::mail::{mails_in, outbox, wait_for_mails};
use common::{TestServer, GOOD_PASSWORD};
use pawpost_server::config::{
    PASSWORD_RESETS_PER_ACCOUNT, PASSWORD_RESETS_PER_ADDRESS, PASSWORD_RESET_KEPT_EXPIRED,
    PASSWORD_RESET_TTL,
};
use pawpost_server::services::accounts::{
    confirm_password_reset_at, AccountError, RESET_REQUESTED,
};
use pawpost_server::state::AppState;
use pawpost_server::tokens::{new_token, token_hash};
use pawpost_store::PasswordReset;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

const NEW_PASSWORD: &str = "marigold lantern pebble orchestra";
const LOOPBACK: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

fn state(server: &TestServer) -> &AppState {
    &server.server.as_ref().expect("server running").state
}

/// The token of the link in a reset mail.
fn token_in(body: &str) -> String {
    let (_, rest) = body
        .split_once("/reset#")
        .unwrap_or_else(|| panic!("no link in {body}"));
    rest.split_whitespace().next().unwrap().to_owned()
}

async fn ask_for_link(server: &TestServer, email: &str) -> (StatusCode, Value) {
    server
        .anonymous()
        .post("/api/v1/password-resets", json!({ "email": email }))
        .await
}

/// Asks for a link for `email` and returns the token of the one sent, given the tokens
/// of the links sent to that address before (`known`).
async fn link_for(server: &TestServer, email: &str, known: &[&str]) -> String {
    let (status, body) = ask_for_link(server, email).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let mails = wait_for_mails(
        server,
        email,
        "Choose a new pawpost password",
        known.len() + 1,
    )
    .await;
    // The outbox is not ordered; the new token is the one not seen before.
    mails
        .iter()
        .map(|m| token_in(m))
        .find(|t| !known.contains(&t.as_str()))
        .expect("a new token")
}

async fn confirm(server: &TestServer, token: &str, new_password: &str) -> (StatusCode, Value) {
    server
        .anonymous()
        .post(
            "/api/v1/password-resets/confirm",
            json!({ "token": token, "new_password": new_password }),
        )
        .await
}

async fn sign_in_status(server: &TestServer, email: &str, password: &str) -> StatusCode {
    server
        .anonymous()
        .post(
            "/api/v1/sessions",
            json!({ "email": email, "password": password }),
        )
        .await
        .0
}

#[tokio::test]
async fn a_reset_link_sets_a_new_password_once_and_ends_every_session() {
    let server = TestServer::start().await;
    let (rose, _) = server.person("rose@example.org", "Rose").await;
    let other = server.sign_in("rose@example.org", GOOD_PASSWORD).await;

    let (status, answer) = ask_for_link(&server, "rose@example.org").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(answer, json!({ "message": RESET_REQUESTED }));
    let mail = wait_for_mails(
        &server,
        "rose@example.org",
        "Choose a new pawpost password",
        1,
    )
    .await
    .remove(0);
    let token = token_in(&mail);
    assert!(
        mail.contains(&format!("{}/reset#{token}", server.base)),
        "the link opens this server's app: {mail}"
    );
    assert!(mail.contains("30 minutes"), "{mail}");
    assert_eq!(
        URL_SAFE_NO_PAD.decode(&token).map(|b| b.len()),
        Ok(32),
        "the token is 32 random bytes, base64url: {token}"
    );

    let (status, body) = confirm(&server, &token, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    for session in [&rose, &other] {
        assert_eq!(
            session.get("/api/v1/accounts/me").await.0,
            StatusCode::UNAUTHORIZED,
            "every session ended"
        );
    }
    assert_eq!(
        sign_in_status(&server, "rose@example.org", GOOD_PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "the old password no longer works"
    );
    let rose = server.sign_in("rose@example.org", NEW_PASSWORD).await;

    let (status, body) = confirm(&server, &token, "another quite long passphrase here").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a used link: {body}");
    assert_eq!(body["error"], "reset_link_invalid");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("ask for a new link"),
        "{body}"
    );
    server.sign_in("rose@example.org", NEW_PASSWORD).await;

    let told = wait_for_mails(
        &server,
        "rose@example.org",
        "Your pawpost password was reset",
        1,
    )
    .await
    .remove(0);
    assert!(told.contains("signed out"), "{told}");
    assert!(!told.contains(&token), "no secret in the notice");

    let (status, activity) = rose.get("/api/v1/accounts/me/activity").await;
    assert_eq!(status, StatusCode::OK);
    let actions: Vec<&str> = activity
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"password_reset_requested"), "{actions:?}");
    assert!(actions.contains(&"password_reset"), "{actions:?}");
}

#[tokio::test]
async fn an_unknown_address_gets_the_same_answer_and_no_mail() {
    let server = TestServer::start().await;
    server.person("rose@example.org", "Rose").await;
    let unknown = ask_for_link(&server, "nobody@example.org").await;
    let known = ask_for_link(&server, "rose@example.org").await;
    assert_eq!(unknown, known);
    assert_eq!(unknown.0, StatusCode::ACCEPTED);
    // Rose's mail was sent after the stranger's would have been.
    wait_for_mails(
        &server,
        "rose@example.org",
        "Choose a new pawpost password",
        1,
    )
    .await;
    assert!(mails_in(&outbox(&server))
        .iter()
        .all(|(head, _)| !head.contains("nobody@example.org")));
    let (status, body) = ask_for_link(&server, "not an address").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

#[tokio::test]
async fn a_link_older_than_30_minutes_is_refused() {
    let server = TestServer::start().await;
    server.person("rose@example.org", "Rose").await;
    let state = state(&server);
    let token = link_for(&server, "rose@example.org", &[]).await;

    let later = time::OffsetDateTime::now_utc() + PASSWORD_RESET_TTL + Duration::from_secs(1);
    let refused = confirm_password_reset_at(state, &token, NEW_PASSWORD, LOOPBACK, later).await;
    assert!(
        matches!(refused, Err(AccountError::ResetLinkExpired)),
        "{refused:?}"
    );

    // A link sent 31 minutes ago, through the API.
    let email = pawpost_domain::Email::parse("rose@example.org").unwrap();
    let account = state.store.account_by_email(&email).await.unwrap().unwrap();
    let now = time::OffsetDateTime::now_utc();
    let sent = now - PASSWORD_RESET_TTL - Duration::from_secs(60);
    let stale = new_token();
    state
        .store
        .create_password_reset(&PasswordReset {
            token_hash: token_hash(&stale),
            account_id: account.id,
            created_at: sent,
            expires_at: sent + PASSWORD_RESET_TTL,
        })
        .await
        .unwrap();
    for _ in 0..2 {
        let (status, body) = confirm(&server, &stale, NEW_PASSWORD).await;
        assert_eq!(status, StatusCode::GONE, "{body}");
        assert_eq!(body["error"], "reset_link_expired");
        assert!(body["message"]
            .as_str()
            .unwrap()
            .contains("ask for a new link"));
    }

    // The sweep forgets expired links after a while (then they are merely unknown) and
    // keeps live ones.
    let swept = pawpost_server::retention::sweep_password_resets(state, now).await;
    assert_eq!(swept.unwrap(), 0, "an expired link is kept a while");
    let swept =
        pawpost_server::retention::sweep_password_resets(state, now + PASSWORD_RESET_KEPT_EXPIRED)
            .await;
    assert_eq!(swept.unwrap(), 1);
    let (status, body) = confirm(&server, &stale, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "reset_link_invalid");

    // No attempt used the live link up: within its 30 minutes it still works.
    let (status, body) = confirm(&server, &token, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

#[tokio::test]
async fn a_link_stops_working_once_the_password_changes_and_the_change_is_mailed() {
    let server = TestServer::start().await;
    let (rose, _) = server.person("rose@example.org", "Rose").await;
    let token = link_for(&server, "rose@example.org", &[]).await;
    let (status, body) = rose
        .call(
            Method::PUT,
            "/api/v1/accounts/me/password",
            Some(json!({ "current_password": GOOD_PASSWORD, "new_password": NEW_PASSWORD })),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = confirm(&server, &token, "another quite long passphrase here").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "reset_link_invalid");
    server.sign_in("rose@example.org", NEW_PASSWORD).await;

    let told = wait_for_mails(
        &server,
        "rose@example.org",
        "Your pawpost password was changed",
        1,
    )
    .await
    .remove(0);
    assert!(told.contains("signed out"), "{told}");
    assert!(
        told.contains("Forgot password?"),
        "what to do if it was not them: {told}"
    );
    assert!(!told.contains(NEW_PASSWORD) && !told.contains(GOOD_PASSWORD));
}

#[tokio::test]
async fn a_forged_or_broken_link_is_refused_and_a_refused_password_keeps_the_link() {
    let server = TestServer::start().await;
    server.person("rose@example.org", "Rose").await;
    let state = state(&server);
    let token = link_for(&server, "rose@example.org", &[]).await;

    // The database holds the token's hash, not the token: what it holds is no link.
    let email = pawpost_domain::Email::parse("rose@example.org").unwrap();
    let account = state.store.account_by_email(&email).await.unwrap().unwrap();
    let stored = state
        .store
        .password_reset(&token_hash(&token))
        .await
        .unwrap()
        .expect("the link is stored by its hash");
    assert_eq!(stored.account_id, account.id);
    assert_eq!(stored.expires_at - stored.created_at, PASSWORD_RESET_TTL);
    let mut flipped = token.clone().into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let forged = [
        URL_SAFE_NO_PAD.encode(stored.token_hash),
        URL_SAFE_NO_PAD.encode(account.password_hash.as_bytes()),
        new_token(),
        String::from_utf8(flipped).unwrap(),
        token[..token.len() - 4].to_owned(),
        "not a token".to_owned(),
        String::new(),
    ];
    for bad in &forged {
        let (status, body) = confirm(&server, bad, NEW_PASSWORD).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"], "reset_link_invalid");
    }

    let (status, body) = confirm(&server, &token, "short").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "password_rejected");
    server.sign_in("rose@example.org", GOOD_PASSWORD).await;
    let (status, body) = confirm(&server, &token, NEW_PASSWORD).await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "the link still works: {body}"
    );
    server.sign_in("rose@example.org", NEW_PASSWORD).await;
}

#[tokio::test]
async fn a_reset_ends_every_other_link_and_two_uses_at_once_set_one_password() {
    let server = TestServer::start().await;
    server.person("rose@example.org", "Rose").await;
    let first = link_for(&server, "rose@example.org", &[]).await;
    let second = link_for(&server, "rose@example.org", &[&first]).await;
    assert_ne!(first, second);

    let (a, b) = tokio::join!(
        confirm(&server, &second, NEW_PASSWORD),
        confirm(&server, &second, NEW_PASSWORD),
    );
    let statuses = [a.0, b.0];
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::NO_CONTENT)
            .count(),
        1,
        "exactly one use sets a password: {a:?} {b:?}"
    );
    assert!(
        statuses.iter().all(|s| [
            StatusCode::NO_CONTENT,
            StatusCode::BAD_REQUEST,
            StatusCode::CONFLICT
        ]
        .contains(s)),
        "{a:?} {b:?}"
    );

    let (status, body) = confirm(&server, &first, "yet another long passphrase to try").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "an older link: {body}");
    assert_eq!(body["error"], "reset_link_invalid");
    server.sign_in("rose@example.org", NEW_PASSWORD).await;
}

/// Asks for a link and returns the status and the Retry-After seconds.
async fn ask_with_retry_after(server: &TestServer, email: &str) -> (StatusCode, Option<u64>) {
    let response = server
        .http_client()
        .post(server.url("/api/v1/password-resets"))
        .json(&json!({ "email": email }))
        .send()
        .await
        .unwrap();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (response.status(), retry)
}

#[tokio::test]
async fn requests_are_limited_per_email_address_with_retry_after() {
    let server = TestServer::start().await;
    server.person("rose@example.org", "Rose").await;
    for email in ["rose@example.org", "nobody@example.org"] {
        for _ in 0..PASSWORD_RESETS_PER_ACCOUNT {
            assert_eq!(
                ask_with_retry_after(&server, email).await.0,
                StatusCode::ACCEPTED
            );
        }
        let (status, retry) = ask_with_retry_after(&server, email).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{email}");
        assert!(retry.is_some_and(|s| s > 0), "{retry:?}");
    }
    let n = usize::try_from(PASSWORD_RESETS_PER_ACCOUNT).unwrap();
    assert_eq!(
        wait_for_mails(
            &server,
            "rose@example.org",
            "Choose a new pawpost password",
            n
        )
        .await
        .len(),
        n,
        "no mail past the limit"
    );
}

#[tokio::test]
async fn requests_are_limited_per_client_address_with_retry_after() {
    let server = TestServer::start().await;
    for i in 0..PASSWORD_RESETS_PER_ADDRESS {
        let (status, _) = ask_with_retry_after(&server, &format!("n{i}@example.org")).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let (status, retry) = ask_with_retry_after(&server, "fresh@example.org").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry.is_some_and(|s| s > 0), "{retry:?}");
}
