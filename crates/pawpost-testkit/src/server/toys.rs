//! A simulated toy (over a real WebSocket) paired with a family, as several stories use it.
use super::family::{publish, sealed, upload, uuid_bytes, Family};
use super::{Client, TestServer};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use pawpost_crypto::{MediaType, Member, MemberStatus, PublicIdentity, Role, SignedRoster};
use pawpost_toy_sim::{SimConfig, SimEvent, SimToy};
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

/// How long any single step of a story may take before the test fails.
pub const STEP: Duration = Duration::from_secs(15);

pub async fn start_toy(server: &TestServer, state_dir: &std::path::Path) -> SimToy {
    SimToy::start(SimConfig {
        server: server.base.clone(),
        state_dir: state_dir.to_owned(),
        speak_wav: false,
        language: pawpost_toy_sim::Language::default(),
        trust_cert: server.tls_cert.clone(),
    })
    .await
    .expect("the simulated toy starts")
}

/// Pairs `toy` with the family's household: long press, code, parent types it, parent
/// publishes a roster listing it. Returns the toy's public identity.
pub async fn pair(f: &Family, toy: &SimToy) -> PublicIdentity {
    let mut events = toy.events();
    if !toy.status().connected {
        pawpost_toy_sim::next_event(&mut events, |e| *e == SimEvent::Connected, STEP)
            .await
            .expect("the toy connects");
    }
    toy.long_press();
    let code = match pawpost_toy_sim::next_event(
        &mut events,
        |e| matches!(e, SimEvent::PairingCode { .. }),
        STEP,
    )
    .await
    .unwrap()
    {
        SimEvent::PairingCode { code } => code,
        _ => unreachable!(),
    };
    assert_eq!(code.len(), 6);
    let paired = claim_and_confirm(f, toy, &mut events, &code).await;
    let identity = PublicIdentity::decode(
        &URL_SAFE_NO_PAD
            .decode(paired["identity"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        paired["fingerprint"],
        toy.status().fingerprint,
        "the parent sees the toy's own fingerprint"
    );

    let mut next = latest_roster(&f.mum, &f.home)
        .await
        .unverified_roster()
        .next_version();
    next.members.push(Member::new(
        &identity,
        pawpost_crypto::AccountId(uuid_bytes(&f.home)),
        Role::Toy,
        MemberStatus::Approved,
    ));
    let signed = SignedRoster::sign(&next, &f.mum_keys).unwrap();
    let (status, body) = publish(&f.mum, &f.home, &signed).await;
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
    .expect("the toy accepts the roster and joins the household");
    identity
}

/// Mum types `code`; the toy speaks the number her app shows, and a press of its paw
/// confirms. Returns the toy as the household's toy list shows it.
pub async fn claim_and_confirm(
    f: &Family,
    toy: &SimToy,
    events: &mut tokio::sync::broadcast::Receiver<SimEvent>,
    code: &str,
) -> serde_json::Value {
    let (status, claim) = f
        .mum
        .post(
            &format!("/api/v1/households/{}/toys", f.home),
            json!({"code": code}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{claim}");
    let spoken = match pawpost_toy_sim::next_event(
        events,
        |e| matches!(e, SimEvent::ConfirmPairing { .. }),
        STEP,
    )
    .await
    .expect("the toy speaks the confirmation number")
    {
        SimEvent::ConfirmPairing { number } => number,
        _ => unreachable!(),
    };
    assert_eq!(
        claim["confirmation"], spoken,
        "the app shows what the toy says"
    );
    toy.press();
    let device = claim["device_id"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let (_, toys) = f
            .mum
            .get(&format!("/api/v1/households/{}/toys", f.home))
            .await;
        if let Some(found) = toys
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["device_id"] == device.as_str())
        {
            return found.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the press never paired the toy: {toys}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn latest_roster(client: &Client, home: &str) -> SignedRoster {
    let (status, roster) = client
        .get(&format!("/api/v1/households/{home}/roster"))
        .await;
    assert_eq!(status, StatusCode::OK, "{roster}");
    SignedRoster::decode(
        &URL_SAFE_NO_PAD
            .decode(roster["signed_roster"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap()
}

/// Polls the sender's view of a message until `done` holds for the toy's receipt.
pub async fn wait_for_receipt(client: &Client, home: &str, message: Uuid, toy: Uuid, field: &str) {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let (_, listed) = client
            .get(&format!("/api/v1/households/{home}/messages"))
            .await;
        let found = listed.as_array().unwrap().iter().any(|m| {
            m["message_id"] == message.to_string()
                && m["recipients"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["device_id"] == toy.to_string() && r[field].is_string())
        });
        if found {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the toy's {field} never showed for {message}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the server `via` shows the family's toy online.
pub async fn wait_online(f: &Family, via: &TestServer) {
    wait_shown(f, via, true).await
}

/// Waits until the server `via` shows the family's toy as `online` or not.
pub async fn wait_shown(f: &Family, via: &TestServer, online: bool) {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let (_, toys) = through(&f.mum, via)
            .get(&format!("/api/v1/households/{}/toys", f.home))
            .await;
        if toys[0]["online"] == online {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} never showed the toy online: {online}: {toys}",
            via.base
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The same person's session, used through the other server.
pub fn through(client: &Client, server: &TestServer) -> Client {
    Client {
        base: server.base.clone(),
        ..client.clone()
    }
}

/// Gran seals `voice` for the toy and uploads it through `gran`; returns its id.
pub async fn send_voice(f: &Family, gran: &Client, toy: &PublicIdentity, voice: &[u8]) -> Uuid {
    let (envelope, id) = sealed(&f.gran_keys, &f.home, MediaType::OggOpus, &[*toy], voice);
    let (status, body) = upload(gran, &f.home, envelope).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    id
}

/// Waits until the toy holds `n` messages.
pub async fn wait_queued(toy: &SimToy, n: usize) {
    let deadline = tokio::time::Instant::now() + STEP;
    while toy.status().queued != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the toy holds {} messages, not {n}",
            toy.status().queued
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Waits for `n` messages, then presses the paw `n` times; returns what played, in order.
pub async fn play(toy: &SimToy, n: usize) -> Vec<Uuid> {
    wait_queued(toy, n).await;
    let mut events = toy.events();
    let mut played = Vec::new();
    for _ in 0..n {
        toy.press();
        match pawpost_toy_sim::next_event(
            &mut events,
            |e| matches!(e, SimEvent::Played { .. }),
            STEP,
        )
        .await
        .expect("the press plays a message")
        {
            SimEvent::Played { message_id, .. } => played.push(message_id),
            _ => unreachable!(),
        }
    }
    played
}
