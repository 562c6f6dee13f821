//! A family's data kept no longer than needed, given back, and erased on request.
use pawpost_testkit::server as common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::family::*;
use common::TestServer;
use pawpost_crypto::{open, MediaType};
use reqwest::{Method, StatusCode};
use serde_json::json;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

fn state(server: &TestServer) -> &pawpost_server::state::AppState {
    &server.server.as_ref().expect("server running").state
}

/// Envelopes the server keeps: blobs, and small envelopes in their message's row.
async fn envelope_count(server: &TestServer) -> usize {
    let store = &state(server).store;
    let mut in_rows = 0;
    for household in store.households_with_messages().await.unwrap() {
        for message in store.messages_of_household(household).await.unwrap() {
            if store.message_envelope(message.id).await.unwrap().is_some() {
                in_rows += 1;
            }
        }
    }
    blob_count(server) + in_rows
}

async fn played_by_mum(f: &Family, message: Uuid) {
    let (status, _) = f
        .mum
        .post(
            &format!("/api/v1/messages/{message}/receipts"),
            json!({"device_id": Uuid::from_bytes(f.mum_keys.device_id().0), "state": "played"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn played_messages_go_after_the_households_retention_and_unplayed_ones_after_the_maximum() {
    let f = family().await;
    let to_mum = [f.mum_keys.public()];
    let (heard, heard_id) = sealed(&f.gran_keys, &f.home, MediaType::OggOpus, &to_mum, VOICE);
    let (unheard, unheard_id) = sealed(&f.gran_keys, &f.home, MediaType::OggOpus, &to_mum, VOICE);
    assert_eq!(upload(&f.gran, &f.home, heard).await.0, StatusCode::CREATED);
    assert_eq!(
        upload(&f.gran, &f.home, unheard).await.0,
        StatusCode::CREATED
    );
    played_by_mum(&f, heard_id).await;
    let blobs = envelope_count(&f.server).await;
    let now = OffsetDateTime::now_utc();
    let sweep = |at| pawpost_server::retention::sweep_expired(state(&f.server), at);

    // The roster keeps played messages 30 days.
    let report = sweep(now + Duration::days(29)).await.unwrap();
    assert_eq!((report.played, report.unplayed), (0, 0));
    let report = sweep(now + Duration::days(31)).await.unwrap();
    assert_eq!((report.played, report.unplayed), (1, 0));
    assert_eq!(
        download(&f.mum, &heard_id.to_string()).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        envelope_count(&f.server).await,
        blobs - 1,
        "the envelope went with its row"
    );
    assert_eq!(
        download(&f.mum, &unheard_id.to_string()).await.0,
        StatusCode::OK
    );

    // Unplayed messages go after the server's maximum (90 days).
    let report = sweep(now + Duration::days(91)).await.unwrap();
    assert_eq!((report.played, report.unplayed), (0, 1));
    assert_eq!(
        download(&f.mum, &unheard_id.to_string()).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(envelope_count(&f.server).await, blobs - 2);
}

#[tokio::test]
async fn a_message_the_sweep_deleted_leaves_no_trace_in_the_database_or_its_log() {
    let f = family().await;
    let (heard, heard_id) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[f.mum_keys.public()],
        VOICE,
    );
    assert_eq!(upload(&f.gran, &f.home, heard).await.0, StatusCode::CREATED);
    played_by_mum(&f, heard_id).await;
    // The blob key names the message and a random part only its row holds.
    let key = state(&f.server)
        .store
        .message(heard_id)
        .await
        .unwrap()
        .unwrap()
        .blob_key;
    assert!(contains(&everything_stored(&f.server), key.as_bytes()));

    let later = OffsetDateTime::now_utc() + Duration::days(31);
    let report = pawpost_server::retention::sweep_expired(state(&f.server), later)
        .await
        .unwrap();
    assert_eq!(report.played, 1);
    assert!(
        !contains(&everything_stored(&f.server), key.as_bytes()),
        "the row is gone from the database files, the write-ahead log included"
    );
    let wal = f.server.data.path().join("data/pawpost.db-wal");
    if f.server.postgres.is_none() {
        let log = std::fs::read(&wal).unwrap_or_default();
        assert!(!contains(&log, key.as_bytes()), "{}", wal.display());
    }
}

#[tokio::test]
async fn a_relative_deletes_her_account_and_nothing_of_hers_remains() {
    let f = family().await;
    let (voice, voice_id) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[f.mum_keys.public()],
        VOICE,
    );
    assert_eq!(upload(&f.gran, &f.home, voice).await.0, StatusCode::CREATED);
    let (kept, kept_id) = sealed(
        &f.mum_keys,
        &f.home,
        MediaType::Text,
        &[f.mum_keys.public()],
        CHILD_NAME.as_bytes(),
    );
    assert_eq!(upload(&f.mum, &f.home, kept).await.0, StatusCode::CREATED);

    let (status, _) = f
        .gran
        .call(
            Method::DELETE,
            "/api/v1/accounts/me",
            Some(json!({"password": "not her password at all"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a stolen session alone cannot erase an account"
    );
    let (status, body) = f
        .gran
        .call(
            Method::DELETE,
            "/api/v1/accounts/me",
            Some(json!({"password": common::GOOD_PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    assert_eq!(
        f.gran.get("/api/v1/accounts/me").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        download(&f.mum, &voice_id.to_string()).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        download(&f.mum, &kept_id.to_string()).await.0,
        StatusCode::OK,
        "others' messages stay"
    );
    let (_, members) = f
        .mum
        .get(&format!("/api/v1/households/{}/members", f.home))
        .await;
    assert_eq!(members.as_array().unwrap().len(), 1);
    let stored = everything_stored(&f.server);
    assert!(
        !contains(&stored, b"gran@example.org"),
        "her address is gone from the database"
    );
    // Her device record is gone; her public key stays only in the rosters the parents
    // signed, until they publish one without her.
    let device = pawpost_domain::DeviceId(Uuid::from_bytes(f.gran_keys.device_id().0));
    assert!(state(&f.server)
        .store
        .device(device)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        envelope_count(&f.server).await,
        1,
        "only mum's envelope is left"
    );
}

#[tokio::test]
async fn the_last_owner_must_hand_over_or_delete_the_household_which_takes_everything() {
    let f = family().await;
    let (voice, _) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[f.mum_keys.public()],
        VOICE,
    );
    assert_eq!(upload(&f.gran, &f.home, voice).await.0, StatusCode::CREATED);
    let (status, body) = f
        .mum
        .call(
            Method::DELETE,
            "/api/v1/accounts/me",
            Some(json!({"password": common::GOOD_PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        f.gran
            .call(
                Method::DELETE,
                &format!("/api/v1/households/{}", f.home),
                None
            )
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    let (status, _) = f
        .mum
        .call(
            Method::DELETE,
            &format!("/api/v1/households/{}", f.home),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        f.gran
            .get(&format!("/api/v1/households/{}", f.home))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        envelope_count(&f.server).await,
        0,
        "every envelope went with the household"
    );
    assert!(!contains(&everything_stored(&f.server), b"Lee family"));
    // Now mum can leave too.
    let (status, _) = f
        .mum
        .call(
            Method::DELETE,
            "/api/v1/accounts/me",
            Some(json!({"password": common::GOOD_PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_parent_downloads_everything_the_server_holds_about_her_and_can_open_it() {
    let f = family().await;
    let (voice, voice_id) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[f.mum_keys.public()],
        VOICE,
    );
    assert_eq!(upload(&f.gran, &f.home, voice).await.0, StatusCode::CREATED);
    let response = f
        .mum
        .http
        .get(format!("{}/api/v1/accounts/me/export", f.mum.base))
        .bearer_auth(f.mum.token.as_ref().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("attachment"));
    let archive: serde_json::Value = response.json().await.unwrap();
    assert_eq!(archive["account"]["email"], "mum@example.org");
    assert_eq!(archive["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(
        archive["devices"][0]["fingerprint"],
        f.mum_keys.public().fingerprint().to_string()
    );
    let home = &archive["households"][0];
    assert_eq!(home["name"], "Lee family");
    assert!(home["signed_roster"].is_string());
    let exported = home["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["message_id"] == voice_id.to_string())
        .unwrap();
    let envelope = URL_SAFE_NO_PAD
        .decode(exported["envelope"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        open(&envelope, &f.mum_keys, &f.gran_keys.public())
            .unwrap()
            .payload,
        VOICE
    );
    assert!(
        archive.to_string().find("password_hash").is_none(),
        "no secrets in the export"
    );
}

#[tokio::test]
async fn an_envelope_left_without_its_message_is_deleted_but_never_an_upload_in_progress() {
    use pawpost_server::retention::sweep_orphans;
    use pawpost_store::BlobKey;
    let f = family().await;
    let st = state(&f.server);
    let (kept, kept_id) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[f.mum_keys.public()],
        VOICE,
    );
    assert_eq!(upload(&f.gran, &f.home, kept).await.0, StatusCode::CREATED);
    // What a server killed between storing an envelope and its row leaves behind.
    let orphan_at =
        |n: u64| BlobKey::new(format!("envelopes/{}/{}-{n:016x}", f.home, Uuid::new_v4())).unwrap();
    let orphan = orphan_at(1);
    st.blobs.put(&orphan, b"ciphertext").await.unwrap();

    let mut suspects = std::collections::HashSet::new();
    assert_eq!(sweep_orphans(st, &mut suspects).await.unwrap(), 0);
    assert!(
        st.blobs.get(&orphan).await.unwrap().is_some(),
        "the first sweep to see it cannot tell it from an upload about to store its row"
    );
    // An upload that stored its envelope after that sweep is left alone by the next one.
    let in_progress = orphan_at(2);
    st.blobs.put(&in_progress, b"ciphertext").await.unwrap();
    assert_eq!(sweep_orphans(st, &mut suspects).await.unwrap(), 1);
    assert!(st.blobs.get(&orphan).await.unwrap().is_none());
    assert!(st.blobs.get(&in_progress).await.unwrap().is_some());
    assert_eq!(sweep_orphans(st, &mut suspects).await.unwrap(), 1);
    assert!(st.blobs.get(&in_progress).await.unwrap().is_none());

    // The message that has its row keeps its envelope through every sweep.
    let (status, envelope) = download(&f.mum, &kept_id.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!envelope.is_empty());
    assert_eq!(envelope_count(&f.server).await, 1);
}
