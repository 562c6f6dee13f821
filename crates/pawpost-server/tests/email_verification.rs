//! Confirming the email address: sign-up mails a link that works once, for 7 days; the
//! database keeps only a hash of its random token; opening it (no session needed) marks
//! the address verified; a used, unknown or expired link is refused with what to do; a
//! signed-in account asks for new links, a few a day; choosing a new password with an
//! emailed link proves the address too. An unverified account works all the same.
//! Run with `PAWPOST_TEST_BACKEND=postgres` for PostgreSQL.
use pawpost_testkit::server as common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::mail::{mails_to, wait_for_mails};
use common::{TestServer, GOOD_PASSWORD};
use pawpost_server::config::{
    EMAIL_VERIFICATIONS_PER_DAY, EMAIL_VERIFICATION_TTL, EMAIL_VERIFICATION_WINDOW,
};
use pawpost_server::services::accounts::{confirm_email_verification_at, AccountError};
use pawpost_server::state::AppState;
use pawpost_server::tokens::{new_token, token_hash};
use pawpost_store::EmailVerification;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

const SUBJECT: &str = "Confirm your email address for pawpost";
const NEW_PASSWORD: &str = "marigold lantern pebble orchestra";
const LOOPBACK: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

fn state(server: &TestServer) -> &AppState {
    &server.server.as_ref().expect("server running").state
}

/// The token of the link in a mail, after `marker` (`/verify-email#`, `/reset#`).
fn token_after(body: &str, marker: &str) -> String {
    let (_, rest) = body
        .split_once(marker)
        .unwrap_or_else(|| panic!("no {marker} link in {body}"));
    rest.split_whitespace().next().unwrap().to_owned()
}

/// The tokens of every link to confirm the address sent to `email` so far, once there
/// are `n`.
async fn links_for(server: &TestServer, email: &str, n: usize) -> Vec<String> {
    wait_for_mails(server, email, SUBJECT, n)
        .await
        .iter()
        .map(|m| token_after(m, "/verify-email#"))
        .collect()
}

async fn confirm(server: &TestServer, token: &str) -> (StatusCode, Value) {
    server
        .anonymous()
        .post(
            "/api/v1/email-verifications/confirm",
            json!({ "token": token }),
        )
        .await
}

async fn resend(client: &common::Client) -> (StatusCode, Value) {
    client
        .call(Method::POST, "/api/v1/email-verifications", None)
        .await
}

async fn verified(client: &common::Client) -> bool {
    let (status, me) = client.get("/api/v1/accounts/me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    me["email_verified"]
        .as_bool()
        .unwrap_or_else(|| panic!("the account says whether it is verified: {me}"))
}

async fn activity(client: &common::Client) -> Vec<String> {
    let (status, activity) = client.get("/api/v1/accounts/me/activity").await;
    assert_eq!(status, StatusCode::OK, "{activity}");
    activity
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect()
}

async fn account_id(server: &TestServer, email: &str) -> pawpost_domain::AccountId {
    let email = pawpost_domain::Email::parse(email).unwrap();
    state(server)
        .store
        .account_by_email(&email)
        .await
        .unwrap()
        .expect("the account exists")
        .id
}

#[tokio::test]
async fn sign_up_mails_a_link_that_confirms_the_address_once() {
    let server = TestServer::start().await;
    let (status, created) = server
        .anonymous()
        .post(
            "/api/v1/accounts",
            json!({ "email": "rose@example.org", "password": GOOD_PASSWORD, "display_name": "Rose <b>Buy pills</b>" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["email_verified"], false, "{created}");
    let rose = server.sign_in("rose@example.org", GOOD_PASSWORD).await;
    assert!(!verified(&rose).await);
    let (_, current) = rose.get("/api/v1/sessions/current").await;
    assert_eq!(current["account"]["email_verified"], false, "{current}");

    let mail = wait_for_mails(&server, "rose@example.org", SUBJECT, 1)
        .await
        .remove(0);
    let token = token_after(&mail, "/verify-email#");
    let link = format!("{}/verify-email#{token}", server.base);
    assert!(
        mail.contains(&link),
        "the link opens this server's app: {mail}"
    );
    assert!(mail.contains("7 days"), "{mail}");
    let words = mail.replace(&link, "");
    assert!(
        !words.contains("Rose") && !words.contains("pills") && !words.contains("127.0.0.1"),
        "nothing but the link and plain instructions: {mail}"
    );
    assert_eq!(
        URL_SAFE_NO_PAD.decode(&token).map(|b| b.len()),
        Ok(32),
        "the token is 32 random bytes, base64url: {token}"
    );

    // The database holds the token's hash, not the token.
    let stored = state(&server)
        .store
        .email_verification(&token_hash(&token))
        .await
        .unwrap()
        .expect("the link is stored by its hash");
    assert_eq!(
        stored.account_id,
        account_id(&server, "rose@example.org").await
    );
    assert_eq!(
        stored.expires_at - stored.created_at,
        EMAIL_VERIFICATION_TTL
    );

    let (status, body) = confirm(&server, &token).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(verified(&rose).await, "the session sees it at once");
    let (_, current) = rose.get("/api/v1/sessions/current").await;
    assert_eq!(current["account"]["email_verified"], true, "{current}");

    let (status, body) = confirm(&server, &token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a used link: {body}");
    assert_eq!(body["error"], "verification_link_invalid");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("ask for a new link"),
        "{body}"
    );
    assert!(verified(&rose).await, "a refused reuse changes nothing");

    let (status, body) = resend(&rose).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "email_already_verified");
    assert_eq!(
        mails_to(&server, "rose@example.org", SUBJECT).len(),
        1,
        "no link once confirmed"
    );
    assert!(activity(&rose).await.contains(&"email_verified".to_owned()));
}

#[tokio::test]
async fn an_unverified_account_signs_in_and_uses_the_app() {
    let server = TestServer::start().await;
    let (rose, _) = server.person("rose@example.org", "Rose").await;
    assert!(!verified(&rose).await);
    let (status, body) = rose
        .post("/api/v1/households", json!({ "name": "Rivera family" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    server.sign_in("rose@example.org", GOOD_PASSWORD).await;
}

#[tokio::test]
async fn unknown_broken_and_expired_links_are_refused_with_what_to_do() {
    let server = TestServer::start().await;
    let (rose, _) = server.person("rose@example.org", "Rose").await;
    let token = links_for(&server, "rose@example.org", 1).await.remove(0);

    let mut flipped = token.clone().into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let stored = token_hash(&token);
    for bad in [
        URL_SAFE_NO_PAD.encode(stored),
        new_token(),
        String::from_utf8(flipped).unwrap(),
        token[..token.len() - 4].to_owned(),
        "not a token".to_owned(),
        String::new(),
    ] {
        let (status, body) = confirm(&server, &bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"], "verification_link_invalid");
    }

    // Opened after its 7 days.
    let state = state(&server);
    let later = time::OffsetDateTime::now_utc() + EMAIL_VERIFICATION_TTL + Duration::from_secs(1);
    let refused = confirm_email_verification_at(state, &token, LOOPBACK, later).await;
    assert!(
        matches!(refused, Err(AccountError::VerificationLinkExpired)),
        "{refused:?}"
    );

    // A link sent 8 days ago, through the API.
    let sent =
        time::OffsetDateTime::now_utc() - EMAIL_VERIFICATION_TTL - Duration::from_secs(86_400);
    let stale = new_token();
    let kept = state
        .store
        .create_email_verification(
            &EmailVerification {
                token_hash: token_hash(&stale),
                account_id: account_id(&server, "rose@example.org").await,
                created_at: sent,
                expires_at: sent + EMAIL_VERIFICATION_TTL,
            },
            EMAIL_VERIFICATIONS_PER_DAY,
            sent - EMAIL_VERIFICATION_WINDOW,
        )
        .await
        .unwrap();
    assert_eq!(kept, None);
    for _ in 0..2 {
        let (status, body) = confirm(&server, &stale).await;
        assert_eq!(status, StatusCode::GONE, "{body}");
        assert_eq!(body["error"], "verification_link_expired");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("7 days"), "{message}");
        assert!(message.contains("ask for a new link"), "{message}");
    }
    assert!(!verified(&rose).await);

    // No refusal used the live link up.
    let (status, body) = confirm(&server, &token).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(verified(&rose).await);
}

#[tokio::test]
async fn new_links_are_limited_per_account_per_day() {
    let server = TestServer::start().await;
    let (rose, _) = server.person("rose@example.org", "Rose").await;
    let (lou, _) = server.person("lou@example.org", "Lou").await;
    links_for(&server, "rose@example.org", 1).await;

    // The sign-up link counts: the account may ask for the rest of the day's links.
    for _ in 1..EMAIL_VERIFICATIONS_PER_DAY {
        let (status, body) = resend(&rose).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    let response = rose
        .http
        .post(server.url("/api/v1/email-verifications"))
        .bearer_auth(rose.token.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        retry > 0 && retry <= EMAIL_VERIFICATION_WINDOW.as_secs(),
        "{retry}"
    );
    let body: Value = response.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("use the newest one in your email"),
        "{body}"
    );

    let n = usize::try_from(EMAIL_VERIFICATIONS_PER_DAY).unwrap();
    let tokens = links_for(&server, "rose@example.org", n).await;
    assert_eq!(tokens.len(), n, "no mail past the limit");

    // Another account has its own count; no session, no link.
    let (status, body) = resend(&lou).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, _) = resend(&server.anonymous()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Any of the links confirms the address, and ends the others.
    let (status, body) = confirm(&server, &tokens[n - 1]).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(verified(&rose).await);
    for other in &tokens[..n - 1] {
        let (status, body) = confirm(&server, other).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "verification_link_invalid");
    }
}

#[tokio::test]
async fn choosing_a_new_password_with_an_emailed_link_confirms_the_address() {
    let server = TestServer::start().await;
    let (rose, _) = server.person("rose@example.org", "Rose").await;
    let sign_up_link = links_for(&server, "rose@example.org", 1).await.remove(0);
    assert!(!verified(&rose).await);

    let (status, body) = server
        .anonymous()
        .post(
            "/api/v1/password-resets",
            json!({ "email": "rose@example.org" }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let mail = wait_for_mails(
        &server,
        "rose@example.org",
        "Choose a new pawpost password",
        1,
    )
    .await
    .remove(0);
    let reset = token_after(&mail, "/reset#");
    let (status, body) = server
        .anonymous()
        .post(
            "/api/v1/password-resets/confirm",
            json!({ "token": reset, "new_password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let rose = server.sign_in("rose@example.org", NEW_PASSWORD).await;
    assert!(verified(&rose).await);
    assert!(activity(&rose).await.contains(&"email_verified".to_owned()));
    let (status, body) = confirm(&server, &sign_up_link).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the address is confirmed, its links ended: {body}"
    );
    let (status, body) = resend(&rose).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

#[tokio::test]
async fn deleting_the_account_deletes_its_links() {
    let server = TestServer::start().await;
    let (rose, _) = server.person("rose@example.org", "Rose").await;
    let token = links_for(&server, "rose@example.org", 1).await.remove(0);
    let hash = token_hash(&token);
    assert!(state(&server)
        .store
        .email_verification(&hash)
        .await
        .unwrap()
        .is_some());
    let (status, body) = rose
        .call(
            Method::DELETE,
            "/api/v1/accounts/me",
            Some(json!({ "password": GOOD_PASSWORD })),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        state(&server)
            .store
            .email_verification(&hash)
            .await
            .unwrap(),
        None
    );
    let (status, body) = confirm(&server, &token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}
