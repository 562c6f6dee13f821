//! A real toy (the simulator, over a real WebSocket) joins a family: pairing by its spoken
//! code, messages pushed at once or kept while it is offline, played on a paw press and
//! shown as "heard", and the child's answer reaching a grandmother.
use pawpost_testkit::server as common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::family::*;
use common::toys::*;
use futures_util::{SinkExt, StreamExt};
use pawpost_crypto::{open, MediaType, PublicIdentity, SignedRoster};
use pawpost_toy::{Frame, ServerError};
use pawpost_toy_sim::SimEvent;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

const REPLY: &[u8] = include_bytes!("../../pawpost-media/tests/fixtures/chime-stereo-60ms.ogg");

#[tokio::test]
async fn a_toy_pairs_by_its_code_plays_grans_message_and_the_childs_answer_reaches_her() {
    let f = family().await;
    let state = tempfile::tempdir().unwrap();
    let toy = start_toy(&f.server, state.path()).await;
    let toy_identity = pair(&f, &toy).await;
    let toy_id = Uuid::from_bytes(toy_identity.device_id.0);
    // After pairing the toy reconnects and authenticates with its own key.
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let (_, toys) = f
            .mum
            .get(&format!("/api/v1/households/{}/toys", f.home))
            .await;
        if toys[0]["online"] == true {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the paired toy never came online: {toys}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Online: gran's message is pushed at once, plays on a press, and she sees "heard".
    let mut events = toy.events();
    let (voice, voice_id) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[toy_identity, f.mum_keys.public()],
        VOICE,
    );
    assert_eq!(upload(&f.gran, &f.home, voice).await.0, StatusCode::CREATED);
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
    .unwrap();
    wait_for_receipt(&f.gran, &f.home, voice_id, toy_id, "delivered_at").await;
    toy.press();
    let played =
        pawpost_toy_sim::next_event(&mut events, |e| matches!(e, SimEvent::Played { .. }), STEP)
            .await
            .unwrap();
    let SimEvent::Played {
        message_id,
        ogg_path,
    } = played
    else {
        unreachable!()
    };
    assert_eq!(message_id, voice_id);
    assert_eq!(
        std::fs::read(ogg_path).unwrap(),
        VOICE,
        "the toy plays exactly what gran recorded"
    );
    wait_for_receipt(&f.gran, &f.home, voice_id, toy_id, "played_at").await;

    // Offline: a message sent while the toy is off arrives when it comes back.
    toy.stop().await;
    let (later, later_id) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[toy_identity],
        VOICE,
    );
    assert_eq!(upload(&f.gran, &f.home, later).await.0, StatusCode::CREATED);
    let toy = start_toy(&f.server, state.path()).await;
    let mut events = toy.events();
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
    .unwrap();
    toy.press();
    let played =
        pawpost_toy_sim::next_event(&mut events, |e| matches!(e, SimEvent::Played { .. }), STEP)
            .await
            .unwrap();
    assert!(matches!(played, SimEvent::Played { message_id, .. } if message_id == later_id));

    // The child answers: the toy seals it for the family, gran opens it.
    toy.record(REPLY.to_vec());
    let uploaded = pawpost_toy_sim::next_event(
        &mut events,
        |e| matches!(e, SimEvent::Uploaded { .. }),
        STEP,
    )
    .await
    .unwrap();
    let SimEvent::Uploaded {
        message_id: reply_id,
    } = uploaded
    else {
        unreachable!()
    };
    let (status, envelope) = download(&f.gran, &reply_id.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    let (_, devices) = f
        .gran
        .get(&format!("/api/v1/households/{}/devices", f.home))
        .await;
    let toy_now = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device_id"] == toy_id.to_string())
        .unwrap();
    let toy_key = PublicIdentity::decode(
        &URL_SAFE_NO_PAD
            .decode(toy_now["identity"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let opened = open(&envelope, &f.gran_keys, &toy_key).expect("gran opens the child's answer");
    assert_eq!(opened.payload, REPLY);
    toy.stop().await;
}

#[tokio::test]
async fn wrong_pairing_codes_throttle_the_guesser_and_burn_nobodys_code() {
    let f = family().await;
    let state = tempfile::tempdir().unwrap();
    let toy = start_toy(&f.server, state.path()).await;
    let mut events = toy.events();
    toy.long_press();
    let SimEvent::PairingCode { code } = pawpost_toy_sim::next_event(
        &mut events,
        |e| matches!(e, SimEvent::PairingCode { .. }),
        STEP,
    )
    .await
    .unwrap() else {
        unreachable!()
    };
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let path = format!("/api/v1/households/{}/toys", f.home);
    for _ in 0..5 {
        let (status, body) = f.mum.post(&path, json!({"code": wrong})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    }
    let (status, _) = f.mum.post(&path, json!({"code": wrong})).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the account is throttled"
    );
    // Another parent with the right code is not hurt by them: it claims the toy.
    let (dad, dad_id) =
        common::invited_member(&f.server, &f.mum, &f.home, "dad@example.org", "guardian").await;
    f.mum
        .post(
            &format!("/api/v1/households/{}/members/{dad_id}/approve", f.home),
            json!({}),
        )
        .await;
    // A family member cannot pair toys at all, and malformed codes are refused.
    assert_eq!(
        f.gran.post(&path, json!({"code": code})).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        dad.post(&path, json!({"code": "12ab56"})).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let (status, body) = dad.post(&path, json!({"code": code})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    toy.stop().await;
}

#[tokio::test]
async fn a_toy_impersonated_without_its_key_gets_nothing() {
    let f = family().await;
    let state = tempfile::tempdir().unwrap();
    let toy = start_toy(&f.server, state.path()).await;
    let identity = pair(&f, &toy).await;
    toy.stop().await;
    let (voice, _) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[identity],
        VOICE,
    );
    assert_eq!(upload(&f.gran, &f.home, voice).await.0, StatusCode::CREATED);

    let url = format!(
        "{}/api/v1/toy/ws",
        f.server.base.replace("http://", "ws://")
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let impostor = new_device();
    for _ in 0..3 {
        let challenge = next_frame(&mut socket).await;
        let Frame::Challenge { nonce, .. } = Frame::decode(&challenge).unwrap() else {
            panic!("expected a challenge")
        };
        // Claims the real toy's id but signs with a key of its own.
        let input = pawpost_toy::auth_signature_input(&nonce, identity.device_id, 2);
        let signature = sign(&impostor, &input);
        let auth = Frame::Auth {
            device_id: identity.device_id,
            roster_version: 2,
            signature,
        }
        .encode()
        .unwrap();
        socket
            .send(tokio_tungstenite::tungstenite::Message::Binary(auth.into()))
            .await
            .unwrap();
        let answer = next_frame(&mut socket).await;
        assert!(matches!(
            Frame::decode(&answer).unwrap(),
            Frame::Error {
                code: ServerError::AuthFailed
            }
        ));
    }
    // After three failures the server hangs up, having delivered nothing.
    let rest = tokio::time::timeout(STEP, socket.next()).await.unwrap();
    assert!(
        matches!(
            rest,
            None | Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) | Some(Err(_))
        ),
        "{rest:?}"
    );
}

fn sign(keys: &pawpost_crypto::DeviceKeys, message: &[u8]) -> [u8; 64] {
    use ed25519_dalek::Signer;
    let secret = keys.to_secret_bytes();
    let seed: [u8; 32] = secret[49..81].try_into().unwrap();
    ed25519_dalek::SigningKey::from_bytes(&seed)
        .sign(message)
        .to_bytes()
}

async fn next_frame(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Vec<u8> {
    loop {
        match tokio::time::timeout(STEP, socket.next())
            .await
            .expect("a frame in time")
        {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Binary(bytes))) => {
                return bytes.to_vec()
            }
            Some(Ok(_)) => continue,
            other => panic!("the connection ended: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_held_message_plays_only_after_a_parent_approves_it() {
    let f = family().await;
    let state = tempfile::tempdir().unwrap();
    let toy = start_toy(&f.server, state.path()).await;
    let toy_identity = pair(&f, &toy).await;
    // Mum turns on "parent approves before the toy plays" in a new signed roster.
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
    let toy_id = Uuid::from_bytes(toy_identity.device_id.0);

    let (voice, voice_id) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[toy_identity],
        VOICE,
    );
    assert_eq!(upload(&f.gran, &f.home, voice).await.0, StatusCode::CREATED);
    wait_for_receipt(&f.mum, &f.home, voice_id, toy_id, "delivered_at").await;
    assert_eq!(
        toy.status().heart,
        "off",
        "a held message does not light the heart"
    );

    // Gran cannot approve; a forged signature is refused; mum's approval releases it.
    let mum_device = Uuid::from_bytes(f.mum_keys.device_id().0);
    let approvals = format!("/api/v1/messages/{voice_id}/approvals");
    let household = pawpost_crypto::HouseholdId(uuid_bytes(&f.home));
    let message = pawpost_toy::MessageId(*voice_id.as_bytes());
    let gran_sig = pawpost_toy::signing::sign_approval(&f.gran_keys, household, message);
    let (status, _) = f
        .gran
        .post(&approvals, json!({"device_id": Uuid::from_bytes(f.gran_keys.device_id().0), "signature": URL_SAFE_NO_PAD.encode(gran_sig)}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = f
        .mum
        .post(
            &approvals,
            json!({"device_id": mum_device, "signature": URL_SAFE_NO_PAD.encode(gran_sig)}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let mut events = toy.events();
    let mum_sig = pawpost_toy::signing::sign_approval(&f.mum_keys, household, message);
    let (status, body) = f
        .mum
        .post(
            &approvals,
            json!({"device_id": mum_device, "signature": URL_SAFE_NO_PAD.encode(mum_sig)}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
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
    .unwrap();
    toy.press();
    let played =
        pawpost_toy_sim::next_event(&mut events, |e| matches!(e, SimEvent::Played { .. }), STEP)
            .await
            .unwrap();
    assert!(matches!(played, SimEvent::Played { message_id, .. } if message_id == voice_id));
    toy.stop().await;
}
