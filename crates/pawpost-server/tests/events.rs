//! Live updates (`GET /api/v1/events`): a page open on a household hears at once that a
//! parent approved or blocked someone, that a message or a receipt arrived; a stranger's
//! stream never hears of another household; only a signed-in account opens one.
use pawpost_server::events::MAX_STREAMS_PER_ACCOUNT;
use pawpost_testkit::server as common;

use common::family::*;
use common::{invited_member, parent_with_household, Client, TestServer};
use pawpost_crypto::MediaType;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

/// Time allowed for an event to arrive.
const ARRIVAL: Duration = Duration::from_secs(5);
/// Time a stream is watched to show that nothing arrives.
const SILENCE: Duration = Duration::from_millis(700);

/// An open event stream, read as it comes.
struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    async fn open(client: &Client) -> Stream {
        let response = open(client).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        let mut stream = Stream {
            response,
            buffer: String::new(),
        };
        let (name, _) = stream
            .next(ARRIVAL)
            .await
            .expect("the stream says it is open");
        assert_eq!(name, "ready");
        stream
    }

    /// The next event (name and data), skipping comments; `None` after `within`.
    async fn next(&mut self, within: Duration) -> Option<(String, Value)> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return Some((name, serde_json::from_str(&data).unwrap()));
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .expect("the stream reads")?;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next event of kind `name`, skipping others.
    async fn expect(&mut self, name: &str) -> Value {
        let deadline = tokio::time::Instant::now() + ARRIVAL;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some((got, data)) if got == name => return data,
                Some(_) => {}
                None => panic!("no {name} event arrived"),
            }
        }
    }

    async fn silent(&mut self) {
        if let Some(event) = self.next(SILENCE).await {
            panic!("an event arrived that was not for this account: {event:?}");
        }
    }
}

async fn open(client: &Client) -> reqwest::Response {
    let mut request = client.http.get(format!("{}/api/v1/events", client.base));
    if let Some(token) = &client.token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("request sent")
}

#[tokio::test]
async fn only_a_signed_in_account_opens_a_stream_and_not_too_many() {
    let server = TestServer::start().await;
    let anonymous = open(&server.anonymous()).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["error"], "unauthenticated");

    let (mum, _) = server.person("mum@example.org", "Mum").await;
    let mut streams = Vec::new();
    for _ in 0..MAX_STREAMS_PER_ACCOUNT {
        streams.push(Stream::open(&mum).await);
    }
    let one_more = open(&mum).await;
    assert_eq!(one_more.status(), StatusCode::TOO_MANY_REQUESTS);
    // Closing one makes room.
    drop(streams.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = None;
    for _ in 0..20 {
        let response = open(&mum).await;
        if response.status() == StatusCode::OK {
            again = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(again.is_some(), "a closed stream frees its place");
}

#[tokio::test]
async fn a_household_hears_its_own_changes_at_once_and_a_stranger_hears_none() {
    let f = family().await;
    // A stranger with a household of their own keeps a stream open all along.
    let (stranger, _, _) = parent_with_household(&f.server, "stranger@example.org").await;
    let mut strangers = Stream::open(&stranger).await;
    let mut mums = Stream::open(&f.mum).await;

    // An uncle joins: the parent's page hears that someone waits.
    let (uncle, uncle_id) =
        invited_member(&f.server, &f.mum, &f.home, "uncle@example.org", "family").await;
    let joined = mums.expect("member").await;
    assert_eq!(joined["household"], f.home.as_str());
    assert_eq!(joined["account"], uncle_id.as_str());
    // His "waiting for approval" page hears the approval.
    let mut uncles = Stream::open(&uncle).await;
    let (status, _) = f
        .mum
        .post(
            &format!("/api/v1/households/{}/members/{uncle_id}/approve", f.home),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let approved = uncles.expect("member").await;
    assert_eq!(approved["account"], uncle_id.as_str());
    assert_eq!(approved["kind"], "member");

    // Gran sends a message to the toy: the parent hears of it (its id, nothing else).
    let (voice, voice_id) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[f.toy_keys.public(), f.mum_keys.public()],
        VOICE,
    );
    let mut grans = Stream::open(&f.gran).await;
    assert_eq!(upload(&f.gran, &f.home, voice).await.0, StatusCode::CREATED);
    let message = mums.expect("message").await;
    assert_eq!(message["message"], voice_id.to_string());
    assert_eq!(
        message.as_object().unwrap().len(),
        3,
        "kind, household and message id only: {message}"
    );
    assert_eq!(
        grans.expect("message").await["message"],
        voice_id.to_string()
    );

    // Mum's browser marks it played: gran's page hears of the receipt.
    let (status, body) = f
        .mum
        .post(
            &format!("/api/v1/messages/{voice_id}/receipts"),
            json!({"device_id": uuid::Uuid::from_bytes(f.mum_keys.device_id().0), "state": "played"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        grans.expect("receipt").await["message"],
        voice_id.to_string()
    );
    // The uncle, neither sender nor recipient, hears nothing of that message.
    loop {
        match uncles.next(SILENCE).await {
            None => break,
            Some((name, data)) => assert!(
                name != "message" && name != "receipt",
                "the uncle heard of a message not his: {data}"
            ),
        }
    }

    // Gran is blocked: her open page hears it at once.
    let (status, _) = f
        .mum
        .post(
            &format!("/api/v1/households/{}/members/{}/block", f.home, f.gran_id),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let blocked = grans.expect("member").await;
    assert_eq!(blocked["account"], f.gran_id.as_str());

    // Nothing of all this reached the stranger.
    strangers.silent().await;
}

#[tokio::test]
async fn a_stream_ends_with_its_session() {
    let server = TestServer::start().await;
    let (mum, _) = server.person("mum@example.org", "Mum").await;
    let mut stream = Stream::open(&mum).await;
    let (status, _) = mum
        .call(reqwest::Method::DELETE, "/api/v1/sessions/current", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // The session is checked at every keepalive; the stream then ends.
    let waited = pawpost_server::events::KEEPALIVE_INTERVAL + ARRIVAL;
    let ended = tokio::time::timeout(waited, async {
        while stream.response.chunk().await.ok().flatten().is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived its session");
    assert_eq!(open(&mum).await.status(), StatusCode::UNAUTHORIZED);
}

/// A second server on the first one's PostgreSQL schema and blob store, as behind a load
/// balancer; `None` without PostgreSQL (recorded as skipped, and failing in CI).
async fn two_servers() -> Option<(TestServer, TestServer)> {
    let url = pawpost_testkit::require("PostgreSQL", "PAWPOST_TEST_DATABASE_URL")?;
    let a = TestServer::start_with_storage(|_, storage| {
        storage.database = url
            .parse()
            .expect("PAWPOST_TEST_DATABASE_URL is postgres://");
        storage.database_schema = Some(format!("pawpost_events_{}", uuid::Uuid::new_v4().simple()));
    })
    .await;
    let shared = a.storage.clone().expect("the first server runs here");
    let b = TestServer::start_with_storage(|_, storage| {
        storage.database = shared.database;
        storage.database_schema = shared.database_schema;
        storage.blobs = shared.blobs;
    })
    .await;
    Some((a, b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_open_on_one_server_hears_what_happens_through_the_other() {
    let Some((a, b)) = two_servers().await else {
        return;
    };
    let (mum, _, home) = parent_with_household(&a, "mum@example.org").await;
    let (uncle, uncle_id) = invited_member(&a, &mum, &home, "uncle@example.org", "family").await;
    // The uncle's page is answered by server B; the parent approves him through A.
    let on_b = Client {
        base: b.url(""),
        ..uncle.clone()
    };
    let mut uncles = Stream::open(&on_b).await;
    let (stranger, _, _) = parent_with_household(&a, "stranger@example.org").await;
    let mut strangers = Stream::open(&Client {
        base: b.url(""),
        ..stranger
    })
    .await;
    let (status, _) = mum
        .post(
            &format!("/api/v1/households/{home}/members/{uncle_id}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let approved = uncles.expect("member").await;
    assert_eq!(approved["household"], home.as_str());
    assert_eq!(approved["account"], uncle_id.as_str());
    strangers.silent().await;
}
