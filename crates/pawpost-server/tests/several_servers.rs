//! Two servers on one PostgreSQL schema, as behind a load balancer: a toy connected to
//! one hears at once what arrives through the other (pairing, messages, approvals), and
//! a toy moving from one to the other loses nothing. Runs when
//! `PAWPOST_TEST_DATABASE_URL` is set; without it, it is recorded as skipped (and fails
//! in CI).
use pawpost_testkit::server as common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::family::*;
use common::toys::*;
use common::TestServer;
use pawpost_crypto::SignedRoster;
use pawpost_storage::DatabaseUrl;
use pawpost_toy_sim::SimEvent;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

/// Time allowed for a note to reach the other server through PostgreSQL (it takes a
/// millisecond or two on one machine).
const NOTE_ALLOWANCE: std::time::Duration = std::time::Duration::from_millis(300);

fn database_url() -> Option<String> {
    pawpost_testkit::require("PostgreSQL", "PAWPOST_TEST_DATABASE_URL")
}

/// A second server on the first one's database schema and blob store.
async fn beside(first: &TestServer) -> TestServer {
    assert!(
        first.postgres.is_some(),
        "the first server is on PostgreSQL"
    );
    let shared = first.storage.clone().expect("the first server runs here");
    TestServer::start_with_storage(|_, storage| {
        storage.database = shared.database;
        storage.database_schema = shared.database_schema;
        storage.blobs = shared.blobs;
    })
    .await
}

/// Two servers on one fresh schema and one blob store; `None` without PostgreSQL.
async fn two_servers() -> Option<(TestServer, TestServer)> {
    let url = database_url()?;
    let a = TestServer::start_with_storage(|_, storage| {
        if matches!(storage.database, DatabaseUrl::Sqlite { .. }) {
            storage.database = url
                .parse()
                .expect("PAWPOST_TEST_DATABASE_URL is postgres://");
            storage.database_schema = Some(format!("pawpost_story_{}", Uuid::new_v4().simple()));
        }
    })
    .await;
    let b = beside(&a).await;
    Some((a, b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_toy_on_one_server_hears_at_once_what_arrives_through_the_other_and_moves_without_loss() {
    let Some((a, b)) = two_servers().await else {
        return;
    };
    // Server A runs the family's web sessions; the toy connects to server B.
    let f = family_on(a).await;
    let state = tempfile::tempdir().unwrap();
    let toy = start_toy(&b, state.path()).await;

    // Pairing: the code comes from B, mum types it and publishes the roster through A,
    // and the toy waiting on B is handed it.
    let toy_identity = pair(&f, &toy).await;
    wait_online(&f, &b).await;
    // The parent's app, answered by A, shows the toy online too.
    wait_online(&f, &f.server).await;

    // A message uploaded through A reaches the toy on B without it reconnecting.
    let mut events = toy.events();
    let first = send_voice(&f, &f.gran, &toy_identity, VOICE).await;
    wait_queued(&toy, 1).await;
    let toy_id = Uuid::from_bytes(toy_identity.device_id.0);
    wait_for_receipt(&f.gran, &f.home, first, toy_id, "delivered_at").await;
    assert!(
        !events_include(&mut events, |e| *e == SimEvent::Disconnected),
        "the message came over the open connection"
    );
    assert_eq!(play(&toy, 1).await, vec![first]);

    // The toy moves from B to A; messages sent meanwhile, through either server, wait.
    toy.stop().await;
    wait_shown(&f, &f.server, false).await;
    wait_shown(&f, &b, false).await;
    let while_away = [
        send_voice(&f, &f.gran, &toy_identity, VOICE).await,
        send_voice(&f, &through(&f.gran, &b), &toy_identity, VOICE).await,
    ];
    let toy = start_toy(&f.server, state.path()).await;
    wait_queued(&toy, 2).await;
    assert_eq!(play(&toy, 2).await, while_away.to_vec());

    // Now on A, it hears at once what arrives through B: a message and a new roster.
    let on_b = send_voice(&f, &through(&f.gran, &b), &toy_identity, VOICE).await;
    wait_queued(&toy, 1).await;
    assert_eq!(play(&toy, 1).await, vec![on_b]);
    let before = toy.status().roster_version;
    let next = latest_roster(&f.mum, &f.home)
        .await
        .unverified_roster()
        .next_version();
    let (status, body) = publish(
        &through(&f.mum, &b),
        &f.home,
        &SignedRoster::sign(&next, &f.mum_keys).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let deadline = tokio::time::Instant::now() + STEP;
    while toy.status().roster_version == before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the roster published through B never reached the toy on A"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(toy.status().roster_version, before + 1);

    // Every message was delivered once: the API lists each with one delivery.
    let (_, listed) = f
        .mum
        .get(&format!("/api/v1/households/{}/messages", f.home))
        .await;
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4, "{listed}");
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parents_approval_through_one_server_releases_a_held_message_on_the_other() {
    let Some((a, b)) = two_servers().await else {
        return;
    };
    let f = family_on(a).await;
    let state = tempfile::tempdir().unwrap();
    let toy = start_toy(&b, state.path()).await;
    let toy_identity = pair(&f, &toy).await;
    wait_online(&f, &b).await;
    let mut next = latest_roster(&f.mum, &f.home)
        .await
        .unverified_roster()
        .next_version();
    next.settings.parent_approves_before_play = true;
    let (status, body) = publish(
        &f.mum,
        &f.home,
        &SignedRoster::sign(&next, &f.mum_keys).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let held = send_voice(&f, &f.gran, &toy_identity, VOICE).await;
    let toy_id = Uuid::from_bytes(toy_identity.device_id.0);
    wait_for_receipt(&f.mum, &f.home, held, toy_id, "delivered_at").await;
    assert_eq!(
        toy.status().heart,
        "off",
        "a held message does not light the heart"
    );

    let mut events = toy.events();
    let household = pawpost_crypto::HouseholdId(uuid_bytes(&f.home));
    let signature = pawpost_toy::signing::sign_approval(
        &f.mum_keys,
        household,
        pawpost_toy::MessageId(*held.as_bytes()),
    );
    let (status, body) = f
        .mum
        .post(
            &format!("/api/v1/messages/{held}/approvals"),
            json!({
                "device_id": Uuid::from_bytes(f.mum_keys.device_id().0),
                "signature": URL_SAFE_NO_PAD.encode(signature),
            }),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    pawpost_toy_sim::next_event(
        &mut events,
        |e| {
            *e == SimEvent::Heart {
                state: "blink".into(),
            }
        },
        STEP,
    )
    .await
    .expect("the approval given through A reaches the toy on B");
    assert_eq!(play(&toy, 1).await, vec![held]);
    drop(b);
}

/// Whether an event matching `want` is already waiting (without waiting for more).
fn events_include(
    events: &mut tokio::sync::broadcast::Receiver<SimEvent>,
    want: impl Fn(&SimEvent) -> bool,
) -> bool {
    let mut found = false;
    while let Ok(e) = events.try_recv() {
        found |= want(&e);
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_spread_over_both_servers_count_together() {
    let Some((a, b)) = two_servers().await else {
        return;
    };
    a.person("rose@example.org", "Rose").await;
    let wrong = json!({"email": "rose@example.org", "password": "not her password at all"});
    // The load balancer alternates: the limit is on the account, not on each server.
    let mut statuses = Vec::new();
    for i in 0..common::TEST_LOGIN_FAILURES + 2 {
        let via = if i % 2 == 0 { &a } else { &b };
        statuses.push(
            via.anonymous()
                .post("/api/v1/sessions", wrong.clone())
                .await
                .0,
        );
        // Notes travel through the database; give each a moment to arrive.
        tokio::time::sleep(NOTE_ALLOWANCE).await;
    }
    let limit = common::TEST_LOGIN_FAILURES as usize;
    assert!(
        statuses[..limit]
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert!(
        statuses[limit..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "after {limit} failures in all, both servers refuse: {statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_database_connection_for_notes_loses_no_message() {
    use sqlx::Connection;
    let Some((a, b)) = two_servers().await else {
        return;
    };
    let (url, schema) = a.postgres.clone().unwrap();
    let f = family_on(a).await;
    let state = tempfile::tempdir().unwrap();
    let toy = start_toy(&b, state.path()).await;
    let toy_identity = pair(&f, &toy).await;
    wait_online(&f, &b).await;

    // The database ends every connection that listens for this schema's notes (a
    // restart, a failover, an idle-connection reaper would do the same).
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE query LIKE 'LISTEN%' AND query LIKE '%' || $1 || '%'",
    )
    .bind(format!("pawpost_{schema}"))
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(ended, [true, true], "both servers were listening");

    // A message sent through A right away still reaches the toy on B without it
    // reconnecting: B listens again and catches its toys up.
    let mut events = toy.events();
    let sent = send_voice(&f, &f.gran, &toy_identity, VOICE).await;
    assert_eq!(play(&toy, 1).await, vec![sent]);
    assert!(
        !events_include(&mut events, |e| *e == SimEvent::Disconnected),
        "the toy kept its connection"
    );
    // And the notes flow again: the next one arrives too.
    let next = send_voice(&f, &f.gran, &toy_identity, VOICE).await;
    assert_eq!(play(&toy, 1).await, vec![next]);
    drop(b);
}
