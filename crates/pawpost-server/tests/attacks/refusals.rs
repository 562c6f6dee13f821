//! R2: a message the toy drops because a parent changed who may send to it is never shown
//! to its sender as delivered or heard: the toy says so, and the sender's list says so.
use super::{publish_next, wait_for_status, wait_online};
use crate::common::family::*;
use crate::common::toys::{pair, start_toy, STEP};
use crate::common::Client;
use pawpost_crypto::{MediaType, MemberStatus};
use pawpost_toy::RejectReason;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

/// The receipt of `message` for `device` in `who`'s message list.
async fn receipt_in_list(who: &Client, home: &str, message: Uuid, device: Uuid) -> Value {
    let (status, listed) = who
        .get(&format!("/api/v1/households/{home}/messages"))
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let message = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["message_id"] == message.to_string())
        .unwrap_or_else(|| panic!("message {message} not listed: {listed}"))
        .clone();
    message["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["device_id"] == device.to_string())
        .unwrap_or_else(|| panic!("no receipt for {device}: {message}"))
        .clone()
}

/// Waits (bounded) until `who`'s list shows the toy's receipt of `message` refused.
async fn wait_refused(who: &Client, home: &str, message: Uuid, toy: Uuid) -> Value {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let receipt = receipt_in_list(who, home, message, toy).await;
        if receipt["refused_at"].is_string() {
            return receipt;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the toy's refusal never reached the list: {receipt}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn set_block(f: &Family, blocked: bool) -> u64 {
    let action = if blocked { "block" } else { "unblock" };
    let (status, body) = f
        .mum
        .post(
            &format!(
                "/api/v1/households/{}/members/{}/{action}",
                f.home, f.gran_id
            ),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let gran_device = f.gran_keys.device_id();
    publish_next(f, |next| {
        for m in &mut next.members {
            if m.device_id == gran_device {
                m.status = if blocked {
                    MemberStatus::Blocked
                } else {
                    MemberStatus::Approved
                };
            }
        }
    })
    .await
}

#[tokio::test]
async fn r2_a_message_waiting_on_the_toy_when_mum_blocks_gran_shows_as_refused_never_heard() {
    let f = family().await;
    let state = tempfile::tempdir().unwrap();
    let toy = start_toy(&f.server, state.path()).await;
    let toy_identity = pair(&f, &toy).await;
    let toy_id = Uuid::from_bytes(toy_identity.device_id.0);
    wait_online(&f).await;

    // Gran's goodnight message reaches the toy and waits for a press.
    let (voice, voice_id) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[toy_identity, f.mum_keys.public()],
        VOICE,
    );
    assert_eq!(upload(&f.gran, &f.home, voice).await.0, StatusCode::CREATED);
    wait_for_status(&toy, "gran's message waits on the toy", |s| s.queued == 1).await;
    let deadline = tokio::time::Instant::now() + STEP;
    while receipt_in_list(&f.gran, &f.home, voice_id, toy_id).await["delivered_at"].is_null() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the toy's Delivered never reached gran's list"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // Mum blocks gran before the child pressed the paw: the toy drops the message.
    let blocking = set_block(&f, true).await;
    wait_for_status(&toy, "the toy takes the blocking roster", |s| {
        s.roster_version == blocking && s.queued == 0
    })
    .await;
    let refused = wait_refused(&f.mum, &f.home, voice_id, toy_id).await;
    assert_eq!(refused["refusal"], RejectReason::SenderBlocked.code());
    assert!(refused["played_at"].is_null(), "{refused}");
    assert_eq!(toy.status().heart, "off", "nothing left to hear");

    // Mum lets gran back in. Gran's list tells her the toy never played that message,
    // and why; it never says "heard".
    let unblocking = set_block(&f, false).await;
    wait_for_status(&toy, "the toy takes the roster that lets gran back", |s| {
        s.roster_version == unblocking
    })
    .await;
    let seen_by_gran = receipt_in_list(&f.gran, &f.home, voice_id, toy_id).await;
    assert!(seen_by_gran["refused_at"].is_string(), "{seen_by_gran}");
    assert_eq!(seen_by_gran["refusal"], "sender_blocked");
    assert!(seen_by_gran["played_at"].is_null(), "{seen_by_gran}");
    // Mum's own receipt (her laptop) is untouched by the toy's refusal.
    let mums = receipt_in_list(
        &f.gran,
        &f.home,
        voice_id,
        Uuid::from_bytes(f.mum_keys.device_id().0),
    )
    .await;
    assert!(mums["refused_at"].is_null(), "{mums}");

    toy.stop().await;
}
