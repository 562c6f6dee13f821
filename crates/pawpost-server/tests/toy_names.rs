//! A parent names the toy and Grandma on their own device; the server keeps and relays the
//! sealed record without reading it, and the real toy (the simulator, over a real
//! WebSocket) says "a message from Grandma" before playing hers. A relative cannot name
//! people for the toy, a record the toy could not open is refused, and a parent's check of
//! the toy's safety number is kept as the household's state.
use pawpost_testkit::server as common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::family::*;
use common::toys::*;
use common::Client;
use pawpost_crypto::MediaType;
use pawpost_toy::{Prompt, SpokenName};
use pawpost_toy_sim::{next_event, prompt_text, SimEvent};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

async fn put_names(client: &Client, f: &Family, toy: Uuid, envelope: &[u8]) -> (StatusCode, Value) {
    client
        .call(
            Method::PUT,
            &format!("/api/v1/households/{}/toys/{toy}/names", f.home),
            Some(json!({ "envelope": URL_SAFE_NO_PAD.encode(envelope) })),
        )
        .await
}

async fn the_toy(f: &Family) -> Value {
    let (status, toys) = f
        .mum
        .get(&format!("/api/v1/households/{}/toys", f.home))
        .await;
    assert_eq!(status, StatusCode::OK, "{toys}");
    toys[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_toy_says_a_message_is_from_grandma_with_the_name_a_parent_sealed() {
    let f = family().await;
    let state = tempfile::tempdir().unwrap();
    let toy = start_toy(&f.server, state.path()).await;
    let identity = pair(&f, &toy).await;
    let toy_id = Uuid::from_bytes(identity.device_id.0);
    wait_online(&f, &f.server).await;
    let record = format!(
        "pawpost-names/1\ntoy\tBruno\nmember\t{}\tGrandma\n",
        f.gran_id
    );
    let for_toy = [identity, f.mum_keys.public()];

    // Grandma cannot name herself (or anyone) for the toy.
    let (by_gran, _) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::Text,
        &for_toy,
        record.as_bytes(),
    );
    let (status, body) = put_names(&f.gran, &f, toy_id, &by_gran).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // A record the toy could not open, or that is not text, is refused before it is kept.
    let mum_only = [f.mum_keys.public()];
    let (not_for_toy, _) = sealed(
        &f.mum_keys,
        &f.home,
        MediaType::Text,
        &mum_only,
        record.as_bytes(),
    );
    let (status, body) = put_names(&f.mum, &f, toy_id, &not_for_toy).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_names")),
        "{body}"
    );
    let (voice, _) = sealed(&f.mum_keys, &f.home, MediaType::OggOpus, &for_toy, VOICE);
    assert_eq!(
        put_names(&f.mum, &f, toy_id, &voice).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(the_toy(&f).await["names_envelope"], Value::Null);

    let mut events = toy.events();
    let (names, _) = sealed(
        &f.mum_keys,
        &f.home,
        MediaType::Text,
        &for_toy,
        record.as_bytes(),
    );
    let (status, body) = put_names(&f.mum, &f, toy_id, &names).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    // The server keeps the sealed bytes as they came, for the parents' devices to open.
    assert_eq!(
        the_toy(&f).await["names_envelope"],
        URL_SAFE_NO_PAD.encode(&names)
    );

    let (voice, _) = sealed(&f.gran_keys, &f.home, MediaType::OggOpus, &for_toy, VOICE);
    assert_eq!(upload(&f.gran, &f.home, voice).await.0, StatusCode::CREATED);
    wait_queued(&toy, 1).await;
    toy.press();
    let announced = prompt_text(Prompt::MessageFrom(SpokenName::new("Grandma").unwrap()));
    assert_eq!(announced, "a message from Grandma");
    next_event(
        &mut events,
        |e| {
            *e == SimEvent::Spoke {
                text: announced.clone(),
            }
        },
        STEP,
    )
    .await
    .expect("the toy says who the message is from");
    next_event(&mut events, |e| matches!(e, SimEvent::Played { .. }), STEP)
        .await
        .expect("then plays it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parents_check_of_the_safety_number_is_kept_and_a_relative_cannot_make_one() {
    let f = family().await;
    let state = tempfile::tempdir().unwrap();
    let toy = start_toy(&f.server, state.path()).await;
    let identity = pair(&f, &toy).await;
    let toy_id = Uuid::from_bytes(identity.device_id.0);
    wait_online(&f, &f.server).await;
    // The last-seen time is written in batches, so it appears shortly after
    // the toy comes online.
    let deadline = tokio::time::Instant::now() + STEP;
    let listed = loop {
        let listed = the_toy(&f).await;
        if listed["last_seen_at"].is_string() || tokio::time::Instant::now() > deadline {
            break listed;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(listed["safety_checked_at"], Value::Null);
    assert!(listed["last_seen_at"].is_string(), "{listed}");

    let path = format!("/api/v1/households/{}/toys/{toy_id}/safety-check", f.home);
    let (status, body) = f.gran.post(&path, json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = f.mum.post(&path, json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let listed = the_toy(&f).await;
    assert!(listed["safety_checked_at"].is_string(), "{listed}");
    assert!(listed["safety_checked_by"].is_string(), "{listed}");
    let (status, _) = f
        .mum
        .post(
            &format!(
                "/api/v1/households/{}/toys/{}/safety-check",
                f.home,
                Uuid::new_v4()
            ),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
