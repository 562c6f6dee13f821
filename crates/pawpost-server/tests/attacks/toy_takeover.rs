//! H1, M1, M3 and the toy connection's own deadlines: a stranger near a pairing toy, a
//! stranger guessing codes, and a stranger knocking on the toy WebSocket.
use super::{ed25519_sign, next_frame, ws_url, Socket};
use crate::common::family::*;
use crate::common::toys::{claim_and_confirm, latest_roster, pair, start_toy, STEP};
use crate::common::{parent_with_household, TestServer};
use futures_util::{SinkExt, StreamExt};
use pawpost_crypto::{DeviceKeys, Member, MemberStatus, Role, SignedRoster};
use pawpost_toy::{Frame, ServerError};
use pawpost_toy_sim::{SimEvent, SimToy};
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use uuid::Uuid;

async fn connect(server: &TestServer) -> Socket {
    tokio_tungstenite::connect_async(&ws_url(server))
        .await
        .expect("the toy WebSocket opens")
        .0
}

async fn send(socket: &mut Socket, frame: &Frame<'_>) {
    socket
        .send(WsMessage::Binary(frame.encode().unwrap().into()))
        .await
        .unwrap();
}

async fn challenge(socket: &mut Socket) -> [u8; 32] {
    match Frame::decode(&next_frame(socket).await).unwrap() {
        Frame::Challenge { nonce, .. } => nonce,
        other => panic!("expected a challenge, got {other:?}"),
    }
}

/// Keys with the id of someone else's device.
fn keys_for(device: Uuid) -> DeviceKeys {
    DeviceKeys::generate(
        &mut pawpost_crypto::os_rng(),
        pawpost_crypto::DeviceId(*device.as_bytes()),
    )
}

/// Asks for a pairing code over `socket` as `keys`; returns the server's answer.
async fn ask_to_pair(socket: &mut Socket, keys: &DeviceKeys) -> Vec<u8> {
    let nonce = challenge(socket).await;
    let identity = keys.public();
    let input = pawpost_toy::pair_request_signature_input(&nonce, &identity);
    send(
        socket,
        &Frame::PairRequest {
            identity,
            signature: ed25519_sign(keys, &input),
        },
    )
    .await;
    next_frame(socket).await
}

async fn spoken_code(
    toy: &SimToy,
    events: &mut tokio::sync::broadcast::Receiver<SimEvent>,
) -> String {
    toy.long_press();
    match pawpost_toy_sim::next_event(events, |e| matches!(e, SimEvent::PairingCode { .. }), STEP)
        .await
        .expect("the toy speaks a code")
    {
        SimEvent::PairingCode { code } => code,
        _ => unreachable!(),
    }
}

/// Everything that reaches `socket` within `window`.
async fn frames_within(socket: &mut Socket, window: Duration) -> Vec<Vec<u8>> {
    let deadline = tokio::time::Instant::now() + window;
    let mut frames = Vec::new();
    while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, socket.next()).await {
        if let WsMessage::Binary(bytes) = message {
            frames.push(bytes.to_vec());
        }
    }
    frames
}

#[tokio::test]
async fn h1_a_stranger_who_knows_a_pairing_toys_id_cannot_take_its_place() {
    let f = family().await;
    let state = tempfile::tempdir().unwrap();
    let toy = start_toy(&f.server, state.path()).await;
    let mut events = toy.events();
    pawpost_toy_sim::next_event(&mut events, |e| *e == SimEvent::Connected, STEP)
        .await
        .expect("the toy connects");
    let code = spoken_code(&toy, &mut events).await;

    // The toy's id travels in clear over Bluetooth while it pairs: a neighbour asks to
    // pair that id with keys of their own.
    let stranger = keys_for(toy.status().device_id);
    let mut socket = connect(&f.server).await;
    let answer = ask_to_pair(&mut socket, &stranger).await;
    assert_eq!(
        Frame::decode(&answer).unwrap(),
        Frame::Error {
            code: ServerError::PairingRefused
        },
        "a device id pairing with one set of keys cannot be asked for with another"
    );

    // The family pairs as usual, and the real toy joins; a second stranger connection
    // opened meanwhile hears nothing of it.
    let mut second = connect(&f.server).await;
    let second_answer = ask_to_pair(&mut second, &stranger).await;
    assert!(matches!(
        Frame::decode(&second_answer).unwrap(),
        Frame::Error { .. }
    ));
    claim_and_confirm(&f, &toy, &mut events, &code).await;
    let mut next = latest_roster(&f.mum, &f.home)
        .await
        .unverified_roster()
        .next_version();
    next.members.push(Member::new(
        &pawpost_crypto::PublicIdentity::decode(
            &base64::Engine::decode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                f.mum
                    .get(&format!("/api/v1/households/{}/toys", f.home))
                    .await
                    .1[0]["identity"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap(),
        )
        .unwrap(),
        pawpost_crypto::AccountId(uuid_bytes(&f.home)),
        Role::Toy,
        MemberStatus::Approved,
    ));
    let (status, body) = publish(
        &f.mum,
        &f.home,
        &SignedRoster::sign(&next, &f.mum_keys).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let household = Uuid::parse_str(&f.home).unwrap();
    pawpost_toy_sim::next_event(
        &mut events,
        |e| {
            *e == SimEvent::Paired {
                household_id: household,
            }
        },
        STEP,
    )
    .await
    .expect("the real toy joins its family");

    // Gran's message reaches the real toy, and only the real toy.
    let toy_identity = pawpost_crypto::PublicIdentity::decode(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            f.mum
                .get(&format!("/api/v1/households/{}/toys", f.home))
                .await
                .1[0]["identity"]
                .as_str()
                .unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    crate::common::toys::send_voice(&f, &f.gran, &toy_identity, VOICE).await;
    crate::common::toys::wait_queued(&toy, 1).await;
    for frames in [
        frames_within(&mut socket, Duration::from_millis(300)).await,
        frames_within(&mut second, Duration::from_millis(300)).await,
    ] {
        for bytes in frames {
            let frame = Frame::decode(&bytes).unwrap();
            assert!(
                !matches!(
                    frame,
                    Frame::Paired { .. } | Frame::Deliver { .. } | Frame::RosterUpdate { .. }
                ),
                "the stranger got {frame:?}"
            );
        }
    }
    toy.stop().await;
}

/// Pairs a toy played by the test over a raw socket with the family; returns the socket,
/// now authenticated, after the toy received `Paired`.
async fn pair_raw(f: &Family, keys: &DeviceKeys) -> Socket {
    let mut socket = connect(&f.server).await;
    let Frame::PairCode { code, .. } =
        Frame::decode(&ask_to_pair(&mut socket, keys).await).unwrap()
    else {
        panic!("expected a pairing code")
    };
    let (status, claim) = f
        .mum
        .post(
            &format!("/api/v1/households/{}/toys", f.home),
            json!({"code": code.to_string()}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{claim}");
    let Frame::ConfirmPairing { number } = Frame::decode(&next_frame(&mut socket).await).unwrap()
    else {
        panic!("expected the number to speak")
    };
    send(&mut socket, &Frame::PairConfirmed { number }).await;
    let deadline = tokio::time::Instant::now() + STEP;
    while f
        .mum
        .get(&format!("/api/v1/households/{}/toys", f.home))
        .await
        .1
        == json!([])
    {
        assert!(tokio::time::Instant::now() < deadline, "never paired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut next = latest_roster(&f.mum, &f.home)
        .await
        .unverified_roster()
        .next_version();
    next.members.push(Member::new(
        &keys.public(),
        pawpost_crypto::AccountId(uuid_bytes(&f.home)),
        Role::Toy,
        MemberStatus::Approved,
    ));
    let (status, body) = publish(
        &f.mum,
        &f.home,
        &SignedRoster::sign(&next, &f.mum_keys).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(matches!(
        Frame::decode(&next_frame(&mut socket).await).unwrap(),
        Frame::Paired { .. }
    ));
    socket
}

#[tokio::test]
async fn h1_a_replaced_connection_no_longer_speaks_for_the_toy() {
    // The toy reconnects while its old connection lingers. What the old one sends
    // afterwards is not the toy's: a "played" there would mark a message heard.
    let f = family().await;
    let keys = new_device();
    let mut old = pair_raw(&f, &keys).await;
    let mut new = connect(&f.server).await;
    let nonce = challenge(&mut new).await;
    let input = pawpost_toy::auth_signature_input(&nonce, keys.device_id(), 0);
    send(
        &mut new,
        &Frame::Auth {
            device_id: keys.device_id(),
            roster_version: 0,
            signature: ed25519_sign(&keys, &input),
        },
    )
    .await;
    let message = crate::common::toys::send_voice(&f, &f.gran, &keys.public(), VOICE).await;
    let delivered = loop {
        if let Frame::Deliver { .. } = Frame::decode(&next_frame(&mut new).await).unwrap() {
            break true;
        }
    };
    assert!(delivered);
    send(
        &mut old,
        &Frame::Played {
            message_id: pawpost_toy::MessageId(*message.as_bytes()),
        },
    )
    .await;
    let rest = tokio::time::timeout(STEP, async {
        loop {
            match old.next().await {
                Some(Ok(WsMessage::Binary(_) | WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
                other => return other,
            }
        }
    })
    .await
    .unwrap();
    assert!(
        matches!(rest, None | Some(Ok(WsMessage::Close(_))) | Some(Err(_))),
        "the old connection was not closed: {rest:?}"
    );
    let (_, listed) = f
        .mum
        .get(&format!("/api/v1/households/{}/messages", f.home))
        .await;
    let heard = listed.as_array().unwrap().iter().any(|m| {
        m["message_id"] == message.to_string()
            && m["recipients"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["played_at"].is_string())
    });
    assert!(
        !heard,
        "a frame from the replaced connection marked it heard"
    );
}

#[tokio::test]
async fn m1_wrong_codes_from_another_household_do_not_burn_a_familys_code_and_a_guess_alone_pairs_nothing(
) {
    let f = family().await;
    let state = tempfile::tempdir().unwrap();
    let toy = start_toy(&f.server, state.path()).await;
    let mut events = toy.events();
    pawpost_toy_sim::next_event(&mut events, |e| *e == SimEvent::Connected, STEP)
        .await
        .expect("the toy connects");
    let code = spoken_code(&toy, &mut events).await;

    // Strangers with households of their own type wrong codes until they are throttled.
    for n in 0..2 {
        let (stranger, _, theirs) =
            parent_with_household(&f.server, &format!("guesser{n}@example.org")).await;
        let path = format!("/api/v1/households/{theirs}/toys");
        loop {
            let wrong = format!("{:06}", rand::random::<u32>() % 1_000_000);
            if wrong == code {
                continue;
            }
            let (status, _) = stranger.post(&path, json!({"code": wrong})).await;
            if status == StatusCode::TOO_MANY_REQUESTS {
                break;
            }
            assert_eq!(status, StatusCode::NOT_FOUND);
        }
    }

    // A stranger who guessed right only claims the code: the toy asks for a press, and
    // nobody presses. Then the family's parent types the same code: it is refused for
    // both, the toy says so, and nobody is paired.
    let (lucky, _, lucky_home) = parent_with_household(&f.server, "lucky@example.org").await;
    let (status, claim) = lucky
        .post(
            &format!("/api/v1/households/{lucky_home}/toys"),
            json!({"code": code}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{claim}");
    pawpost_toy_sim::next_event(
        &mut events,
        |e| matches!(e, SimEvent::ConfirmPairing { .. }),
        STEP,
    )
    .await
    .expect("the toy asks for a press");
    let (toys_status, toys) = lucky
        .get(&format!("/api/v1/households/{lucky_home}/toys"))
        .await;
    assert_eq!(toys_status, StatusCode::OK);
    assert_eq!(toys, json!([]), "a claim without a press pairs nothing");
    let (status, body) = f
        .mum
        .post(
            &format!("/api/v1/households/{}/toys", f.home),
            json!({"code": code}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "pairing_code_contested");
    pawpost_toy_sim::next_event(
        &mut events,
        |e| matches!(e, SimEvent::Spoke { text } if text.contains("hold my paw to try again")),
        STEP,
    )
    .await
    .expect("the toy says pairing failed");

    // A new code, and the family pairs; the stranger's press-less claim is long gone.
    let code = spoken_code(&toy, &mut events).await;
    claim_and_confirm(&f, &toy, &mut events, &code).await;
    assert_eq!(
        lucky
            .get(&format!("/api/v1/households/{lucky_home}/toys"))
            .await
            .1,
        json!([])
    );
    toy.stop().await;
}

#[tokio::test]
async fn m1_a_press_confirms_only_the_number_of_the_current_claim() {
    let f = family().await;
    let keys = new_device();
    let mut socket = connect(&f.server).await;
    let Frame::PairCode { code, .. } =
        Frame::decode(&ask_to_pair(&mut socket, &keys).await).unwrap()
    else {
        panic!("expected a pairing code")
    };
    let (status, claim) = f
        .mum
        .post(
            &format!("/api/v1/households/{}/toys", f.home),
            json!({"code": code.to_string()}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{claim}");
    let Frame::ConfirmPairing { number } = Frame::decode(&next_frame(&mut socket).await).unwrap()
    else {
        panic!("expected the number to speak")
    };
    assert_eq!(claim["confirmation"], number.to_string());
    let other = pawpost_toy::ConfirmationNumber::from_number(
        (number.to_string().parse::<u16>().unwrap() + 1) % 1000,
    )
    .unwrap();
    send(&mut socket, &Frame::PairConfirmed { number: other }).await;
    assert_eq!(
        Frame::decode(&next_frame(&mut socket).await).unwrap(),
        Frame::Error {
            code: ServerError::PairingExpired
        }
    );
    let (_, toys) = f
        .mum
        .get(&format!("/api/v1/households/{}/toys", f.home))
        .await;
    assert_eq!(toys, json!([]), "a press for another number pairs nothing");
}

#[tokio::test]
async fn m3_failed_toy_authentications_are_limited_per_address_and_kept_as_one_entry() {
    let server = TestServer::start().await;
    let keys = new_device();
    let mut refused_before_work = false;
    for _ in 0..pawpost_server::config::TOY_AUTH_FAILURES_PER_ADDRESS + 6 {
        let mut socket = connect(&server).await;
        let nonce = challenge(&mut socket).await;
        let input = pawpost_toy::auth_signature_input(&nonce, keys.device_id(), 0);
        send(
            &mut socket,
            &Frame::Auth {
                device_id: keys.device_id(),
                roster_version: 0,
                signature: ed25519_sign(&keys, &input),
            },
        )
        .await;
        assert_eq!(
            Frame::decode(&next_frame(&mut socket).await).unwrap(),
            Frame::Error {
                code: ServerError::AuthFailed
            }
        );
        // Once the address is throttled, the server hangs up at once instead of
        // offering another challenge.
        match tokio::time::timeout(STEP, socket.next()).await.unwrap() {
            Some(Ok(WsMessage::Binary(_))) => {}
            _ => refused_before_work = true,
        }
    }
    assert!(refused_before_work, "the address was never throttled");
    let state = &server.server.as_ref().unwrap().state;
    let mut failures = 0;
    let mut throttled = 0;
    let mut after = 0;
    loop {
        let page = state.store.audit_entries(after, 1000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        for entry in &page {
            match entry.record.action.as_str() {
                "toy_auth_failed" => failures += 1,
                "toy_auth_failures_throttled" => throttled += 1,
                _ => {}
            }
        }
    }
    assert_eq!(failures, 1, "one entry for the first failure of the window");
    assert_eq!(
        throttled, 1,
        "one entry, with the count, when the limit is reached"
    );
}

#[tokio::test]
async fn m2_pings_do_not_extend_a_toy_sockets_time_to_authenticate() {
    // The deadline is 30 s in production; the story checks that a socket which only
    // pings is closed by it, by pinging past half of it and expecting the close in time.
    let server = TestServer::start().await;
    let mut socket = connect(&server).await;
    challenge(&mut socket).await;
    let deadline = pawpost_server::config::TOY_HELLO_DEADLINE;
    let started = tokio::time::Instant::now();
    let closed = loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        if socket.send(WsMessage::Ping(vec![1].into())).await.is_err() {
            break true;
        }
        if let Ok(None | Some(Err(_)) | Some(Ok(WsMessage::Close(_)))) =
            tokio::time::timeout(Duration::from_millis(100), socket.next()).await
        {
            break true;
        }
        if started.elapsed() > deadline + STEP {
            break false;
        }
    };
    assert!(
        closed,
        "a socket that only pings stays open past its deadline"
    );
}

#[tokio::test]
async fn m2_one_address_cannot_hold_more_than_a_few_toy_sockets_that_prove_nothing() {
    let server = TestServer::start().await;
    let max = pawpost_server::config::MAX_UNAUTHENTICATED_TOY_SOCKETS_PER_ADDRESS;
    let mut held = Vec::new();
    for _ in 0..max {
        let mut socket = connect(&server).await;
        challenge(&mut socket).await;
        held.push(socket);
    }
    let refused = tokio_tungstenite::connect_async(&ws_url(&server)).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS)
        }
        other => panic!("one socket too many was let in: {other:?}"),
    }
    // One that leaves makes room again.
    drop(held.pop());
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        if tokio_tungstenite::connect_async(&ws_url(&server))
            .await
            .is_ok()
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no room was made");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn review_a_toy_that_missed_two_roster_versions_is_caught_up_with_both() {
    let f = family().await;
    let state_dir = tempfile::tempdir().unwrap();
    let toy = start_toy(&f.server, state_dir.path()).await;
    pair(&f, &toy).await;
    let held = toy.status().roster_version;
    // Two versions are stored while the notes that would push them are lost (the
    // process's database connection dropped): they go straight into the store.
    let state = &f.server.server.as_ref().unwrap().state;
    let mut roster = latest_roster(&f.mum, &f.home).await;
    let household = pawpost_domain::HouseholdId(Uuid::parse_str(&f.home).unwrap());
    for _ in 0..2 {
        let next = roster.unverified_roster().next_version();
        roster = SignedRoster::sign(&next, &f.mum_keys).unwrap();
        state
            .store
            .insert_roster(&pawpost_domain::StoredRoster {
                household_id: household,
                version: next.version,
                signed: roster.encode(),
                created_at: time::OffsetDateTime::now_utc(),
            })
            .await
            .unwrap();
    }
    let device = pawpost_domain::DeviceId(toy.status().device_id);
    pawpost_server::delivery::catch_up(state, device)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + STEP;
    while toy.status().roster_version != held + 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the toy holds roster {} after the catch-up, not {}",
            toy.status().roster_version,
            held + 2
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    toy.stop().await;
}

#[tokio::test]
async fn review_no_message_is_accepted_that_a_toy_frame_cannot_carry() {
    let data = tempfile::tempdir().unwrap();
    let mut config = crate::common::test_config(data.path());
    config.max_envelope_bytes = pawpost_toy::MAX_ENVELOPE_LEN + 1;
    match crate::common::start(config).await {
        Ok(_) => panic!("a server that would accept undeliverable messages started"),
        Err(e) => assert!(e.to_string().contains("--max-envelope-bytes"), "{e}"),
    }
}
