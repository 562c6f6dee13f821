//! End-to-end encrypted messages through a real server: what families can do, what
//! outsiders and blocked relatives cannot, and what a stolen copy of the data reveals.
use pawpost_testkit::server as common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::family::*;
use common::parent_with_household;
use pawpost_crypto::{open, os_rng, DeviceKeys, MediaType, MemberStatus, SignedRoster};
use pawpost_server::config::DEFAULT_ENVELOPE_IN_ROW_MAX_BYTES;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn a_grandmothers_voice_reaches_the_toy_and_mum_and_the_server_keeps_only_ciphertext() {
    let f = family().await;
    let (_, roster) = f
        .gran
        .get(&format!("/api/v1/households/{}/roster", f.home))
        .await;
    let fetched = SignedRoster::decode(
        &URL_SAFE_NO_PAD
            .decode(roster["signed_roster"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    fetched
        .verify_signed_by(&f.mum_keys.public().ed25519_pub)
        .expect("the roster is mum's");

    // Gran sends her voice to the toy and to mum; mum sets the child's name and gran an
    // avatar, for the family's devices (a toy plays only voice).
    let recipients = [f.toy_keys.public(), f.mum_keys.public()];
    let (voice, voice_id) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &recipients,
        VOICE,
    );
    let (status, sent) = upload(&f.gran, &f.home, voice).await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    assert_eq!(sent["duration_ms"], 3633);
    let family_devices = [f.mum_keys.public(), f.gran_keys.public()];
    let (name, _) = sealed(
        &f.mum_keys,
        &f.home,
        MediaType::Text,
        &family_devices,
        CHILD_NAME.as_bytes(),
    );
    assert_eq!(upload(&f.mum, &f.home, name).await.0, StatusCode::CREATED);
    let avatar: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13).to_le_bytes()[0])
        .collect();
    let (picture, _) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::Image,
        &family_devices,
        &avatar,
    );
    assert_eq!(
        upload(&f.gran, &f.home, picture).await.0,
        StatusCode::CREATED
    );

    // Mum finds it, fetches the envelope, and both she and the toy open it.
    let (status, listed) = f
        .mum
        .get(&format!("/api/v1/households/{}/messages", f.home))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed.as_array().unwrap().len(), 3);
    let (status, envelope) = download(&f.mum, &voice_id.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    let gran_public = f.gran_keys.public();
    assert_eq!(
        open(&envelope, &f.mum_keys, &gran_public).unwrap().payload,
        VOICE
    );
    assert_eq!(
        open(&envelope, &f.toy_keys, &gran_public).unwrap().payload,
        VOICE
    );

    // Mum reports it played; gran sees "heard".
    let (status, _) = f
        .mum
        .post(
            &format!("/api/v1/messages/{voice_id}/receipts"),
            json!({"device_id": Uuid::from_bytes(f.mum_keys.device_id().0), "state": "played"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, gran_view) = f
        .gran
        .get(&format!("/api/v1/households/{}/messages", f.home))
        .await;
    let voice_view = gran_view
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["message_id"] == voice_id.to_string())
        .unwrap();
    let heard = voice_view["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["played_at"].is_string())
        .count();
    assert_eq!(heard, 1);

    // A full copy of the database and the blob folder reveals no voice, name or picture.
    let stored = everything_stored(&f.server);
    assert!(stored.len() > VOICE.len(), "the copy holds the envelopes");
    assert!(
        !contains(&stored, CHILD_NAME.as_bytes()),
        "the child's name leaked"
    );
    for offset in (0..VOICE.len() - 24).step_by(997) {
        assert!(
            !contains(&stored, &VOICE[offset..offset + 24]),
            "voice bytes at {offset} leaked"
        );
    }
    for offset in (0..avatar.len() - 24).step_by(499) {
        assert!(
            !contains(&stored, &avatar[offset..offset + 24]),
            "avatar bytes at {offset} leaked"
        );
    }
}

#[tokio::test]
async fn r1_a_name_picture_or_document_addressed_to_the_toy_is_refused_at_upload() {
    let f = family().await;
    let with_toy = [
        f.mum_keys.public(),
        f.gran_keys.public(),
        f.toy_keys.public(),
    ];
    let toy_id = Uuid::from_bytes(f.toy_keys.device_id().0).to_string();
    for (media, payload) in [
        (MediaType::Text, CHILD_NAME.as_bytes()),
        (MediaType::Image, &[0x89, b'P', b'N', b'G'][..]),
        (MediaType::Json, &b"{\"bedtime\":\"19:30\"}"[..]),
    ] {
        let (envelope, _) = sealed(&f.mum_keys, &f.home, media, &with_toy, payload);
        let (status, body) = upload(&f.mum, &f.home, envelope).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{media:?}: {body}"
        );
        assert_eq!(body["error"], "toy_plays_only_voice");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(&toy_id), "{message}");
        assert!(message.contains("only voice"), "{message}");
    }
    // Nothing was stored for the toy to be sent.
    let (_, listed) = f
        .mum
        .get(&format!("/api/v1/households/{}/messages", f.home))
        .await;
    assert_eq!(listed, json!([]));

    // The same name for the family's devices, and gran's voice for the toy, go through.
    let family_devices = [f.mum_keys.public(), f.gran_keys.public()];
    let (name, _) = sealed(
        &f.mum_keys,
        &f.home,
        MediaType::Text,
        &family_devices,
        CHILD_NAME.as_bytes(),
    );
    assert_eq!(upload(&f.mum, &f.home, name).await.0, StatusCode::CREATED);
    let (voice, _) = sealed(&f.gran_keys, &f.home, MediaType::OggOpus, &with_toy, VOICE);
    let (status, body) = upload(&f.gran, &f.home, voice).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn a_blocked_relative_and_an_outsider_cannot_send_or_read() {
    let f = family().await;
    let recipients = [f.toy_keys.public()];
    let (first, first_id) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &recipients,
        VOICE,
    );
    assert_eq!(upload(&f.gran, &f.home, first).await.0, StatusCode::CREATED);

    let (status, _) = f
        .mum
        .post(
            &format!("/api/v1/households/{}/members/{}/block", f.home, f.gran_id),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let blobs_before = blob_count(&f.server);
    let (blocked, _) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &recipients,
        VOICE,
    );
    let (status, body) = upload(&f.gran, &f.home, blocked).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "blocked");
    // Whatever the envelope holds, the answer is the membership's: not an envelope, or
    // one sealed for another household.
    let (elsewhere, _) = sealed(
        &f.gran_keys,
        &Uuid::now_v7().to_string(),
        MediaType::OggOpus,
        &recipients,
        VOICE,
    );
    for body in [b"not an envelope".to_vec(), elsewhere] {
        let (status, answer) = upload(&f.gran, &f.home, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
        assert_eq!(answer["error"], "blocked");
    }
    let (_, listed) = f
        .mum
        .get(&format!("/api/v1/households/{}/messages", f.home))
        .await;
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "nothing new was stored"
    );
    assert_eq!(
        blob_count(&f.server),
        blobs_before,
        "no envelope blob was written"
    );

    // An outsider with an account and keys of their own.
    let (outsider, _, _) = parent_with_household(&f.server, "stranger@example.org").await;
    let stranger_keys = new_device();
    register(&outsider, &stranger_keys, "Stranger").await;
    let (theirs, _) = sealed(
        &stranger_keys,
        &f.home,
        MediaType::OggOpus,
        &recipients,
        b"hello child",
    );
    assert_eq!(
        upload(&outsider, &f.home, theirs).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        upload(&outsider, &f.home, b"not an envelope".to_vec())
            .await
            .0,
        StatusCode::NOT_FOUND,
        "an outsider learns nothing from a malformed upload either"
    );
    assert_eq!(
        download(&outsider, &first_id.to_string()).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        outsider
            .get(&format!("/api/v1/households/{}/roster", f.home))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        outsider
            .get(&format!("/api/v1/households/{}/devices", f.home))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    // Guessing ids finds nothing either.
    assert_eq!(
        download(&outsider, &Uuid::now_v7().to_string()).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn forged_replayed_misaddressed_and_oversized_envelopes_are_refused() {
    let f = family().await;
    let recipients = [f.toy_keys.public()];

    // Signed by a key that is not gran's, under gran's device id.
    let impostor = DeviceKeys::generate(&mut os_rng(), f.gran_keys.device_id());
    let (forged, _) = sealed(&impostor, &f.home, MediaType::OggOpus, &recipients, VOICE);
    let (status, body) = upload(&f.gran, &f.home, forged).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "bad_signature");

    // Sent with mum's device id from gran's account.
    let (not_hers, _) = sealed(&f.mum_keys, &f.home, MediaType::OggOpus, &recipients, VOICE);
    let (status, body) = upload(&f.gran, &f.home, not_hers).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // One flipped bit in the ciphertext.
    let (mut flipped, _) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &recipients,
        VOICE,
    );
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert_eq!(
        upload(&f.gran, &f.home, flipped).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // A replay of an accepted envelope.
    let (good, _) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &recipients,
        VOICE,
    );
    assert_eq!(
        upload(&f.gran, &f.home, good.clone()).await.0,
        StatusCode::CREATED
    );
    let (status, body) = upload(&f.gran, &f.home, good).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // Addressed to a device outside the roster.
    let (misaddressed, _) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[new_device().public()],
        VOICE,
    );
    assert_eq!(
        upload(&f.gran, &f.home, misaddressed).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // Not an envelope at all, and far too big.
    let (status, body) = upload(&f.gran, &f.home, b"OggS not sealed".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = upload(&f.gran, &f.home, vec![0u8; 2 << 20]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let (big, _) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &recipients,
        &vec![7u8; 1 << 20],
    );
    assert_eq!(
        upload(&f.gran, &f.home, big).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

#[tokio::test]
async fn only_a_valid_newer_roster_signed_by_an_owner_is_accepted() {
    let f = family().await;
    let base = f.roster.unverified_roster().clone();

    // Stale: version 1 again.
    let (status, body) = publish(&f.mum, &f.home, &f.roster).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // A family member cannot publish at all.
    let next = base.next_version();
    let by_gran = SignedRoster::sign(&next, &f.gran_keys).unwrap();
    assert_eq!(
        publish(&f.gran, &f.home, &by_gran).await.0,
        StatusCode::FORBIDDEN
    );
    // Signed by a key that is not an owner in the previous version, even from mum's account.
    let rogue = new_device();
    register(&f.mum, &rogue, "Rogue").await;
    let by_rogue = SignedRoster::sign(&next, &rogue).unwrap();
    assert_eq!(
        publish(&f.mum, &f.home, &by_rogue).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // Tampered after signing.
    let mut tampered = SignedRoster::sign(&next, &f.mum_keys).unwrap().encode();
    tampered[10] ^= 0x40;
    let (status, _) = f
        .mum
        .post(
            &format!("/api/v1/households/{}/roster", f.home),
            json!({"signed_roster": URL_SAFE_NO_PAD.encode(&tampered)}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Mum blocks gran in version 2; the server then refuses gran's device as a sender
    // even though her account is still approved.
    let mut v2 = base.next_version();
    for m in &mut v2.members {
        if m.device_id == f.gran_keys.device_id() {
            m.status = MemberStatus::Blocked;
        }
    }
    let signed = SignedRoster::sign(&v2, &f.mum_keys).unwrap();
    let (status, body) = publish(&f.mum, &f.home, &signed).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["version"], 2);
    let (envelope, _) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[f.toy_keys.public()],
        VOICE,
    );
    let (status, body) = upload(&f.gran, &f.home, envelope).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "not_in_roster");
}

#[tokio::test]
async fn on_s3_an_envelope_is_one_object_under_the_servers_own_prefix() {
    let f = family().await;
    let Some(prefix) = f.server.s3_prefix.clone() else {
        return; // The stories keep their blobs in a local folder in this run.
    };
    let to_mum = [f.mum_keys.public()];
    // Larger than an envelope kept in its message's row: this one goes to the bucket.
    let long_voice = vec![7u8; DEFAULT_ENVELOPE_IN_ROW_MAX_BYTES + 1];
    let (envelope, _) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &to_mum,
        &long_voice,
    );
    let (status, body) = upload(&f.gran, &f.home, envelope.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let objects = bucket_objects(&f.server).unwrap();
    assert_eq!(objects.len(), 1, "{objects:?}");
    let (key, bytes) = &objects[0];
    assert!(
        key.starts_with(&format!("{prefix}/envelopes/{}/", f.home)),
        "{key}"
    );
    assert_eq!(bytes, &envelope, "the bucket holds the envelope as sent");
    assert!(
        !f.server.data.path().join("data/blobs").exists(),
        "no blob folder next to the database"
    );
}
