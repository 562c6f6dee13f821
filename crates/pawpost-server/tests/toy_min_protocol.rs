//! The cut-off for version 2 toys (`ServerConfig::toy_min_protocol`, `pawpost serve
//! --toy-min-protocol`): by default a toy speaking version 2 in the clear still connects on
//! `/api/v1/toy/ws`; set to 3, that path answers 426 with what the toy's maker has to do,
//! a version 2 toy never gets a connection, and a toy on the encrypted channel pairs and
//! plays Gran's message as before.
use pawpost_testkit::server as common;

use common::family::*;
use common::toys::*;
use common::TestServer;
use futures_util::StreamExt;
use pawpost_server::config::{CHANNEL_TOY_PROTOCOL, DEFAULT_TOY_MIN_PROTOCOL};
use pawpost_toy_sim::{next_event, SimConfig, SimEvent, SimToy};
use reqwest::StatusCode;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const V2_PATH: &str = "/api/v1/toy/ws";
const CHANNEL_PATH: &str = "/api/v1/toy/channel";

fn ws_url(server: &TestServer, path: &str) -> String {
    format!("{}{path}", server.base.replace("http://", "ws://"))
}

fn sim_config(server: &TestServer, dir: &std::path::Path) -> SimConfig {
    SimConfig {
        server: server.base.clone(),
        state_dir: dir.to_owned(),
        speak_wav: false,
        language: pawpost_toy_sim::Language::default(),
        trust_cert: None,
    }
}

/// The answer to a WebSocket upgrade on `path`, as a plain HTTP client sees it.
async fn upgrade_answer(server: &TestServer, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}{path}", server.base))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn by_default_a_version_2_toy_still_connects_in_the_clear() {
    assert_eq!(DEFAULT_TOY_MIN_PROTOCOL, 2);
    let server = TestServer::start().await;
    let (mut socket, _) = tokio_tungstenite::connect_async(ws_url(&server, V2_PATH))
        .await
        .expect("the version 2 path upgrades");
    let first = loop {
        match tokio::time::timeout(STEP, socket.next())
            .await
            .expect("the server speaks first")
        {
            Some(Ok(WsMessage::Binary(bytes))) => break bytes,
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
            other => panic!("expected the server's Challenge, got {other:?}"),
        }
    };
    assert_eq!(
        first.first(),
        Some(&1),
        "a version 1 or 2 frame (the Challenge), in the clear"
    );

    // And the simulator speaking version 2 pairs as ever.
    let f = family_on(server).await;
    let dir = tempfile::tempdir().unwrap();
    let toy = start_toy(&f.server, dir.path()).await;
    assert!(toy.status().ws_url.ends_with(V2_PATH));
    pair(&f, &toy).await;
    toy.stop().await;
}

#[tokio::test]
async fn at_version_3_the_clear_path_is_refused_with_what_to_do_and_the_channel_serves() {
    let f = family_on(TestServer::start_with(|c| c.toy_min_protocol = CHANNEL_TOY_PROTOCOL).await)
        .await;

    let answer = upgrade_answer(&f.server, V2_PATH).await;
    assert_eq!(answer.status(), StatusCode::UPGRADE_REQUIRED);
    assert_eq!(
        answer
            .headers()
            .get("upgrade")
            .and_then(|v| v.to_str().ok()),
        Some("websocket")
    );
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"], "toy_protocol_too_old");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("update the toy's software")
            && message.contains("version 3")
            && message.contains(CHANNEL_PATH),
        "the refusal says what the toy's maker has to do: {message}"
    );
    // The channel's path still upgrades.
    tokio_tungstenite::connect_async(ws_url(&f.server, CHANNEL_PATH))
        .await
        .expect("the channel's path upgrades");
    // A WebSocket client gets no connection on the clear path.
    let refused = tokio_tungstenite::connect_async(ws_url(&f.server, V2_PATH)).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::UPGRADE_REQUIRED.as_u16());
        }
        other => panic!("expected 426, got {:?}", other.map(|(_, r)| r.status())),
    }

    // The simulator speaking version 2 never connects; it waits and tries again.
    let old = tempfile::tempdir().unwrap();
    let v2 = SimToy::start(sim_config(&f.server, old.path()))
        .await
        .unwrap();
    let mut events = v2.events();
    let seen = next_event(
        &mut events,
        |e| matches!(e, SimEvent::Connected | SimEvent::Waiting { .. }),
        STEP,
    )
    .await
    .expect("the version 2 toy tries and waits");
    assert!(
        matches!(seen, SimEvent::Waiting { .. }),
        "a version 2 toy is refused, not connected: {seen:?}"
    );
    assert!(!v2.status().connected);
    v2.stop().await;

    // A version 3 toy pairs and plays Gran's message.
    let dir = tempfile::tempdir().unwrap();
    let toy = SimToy::start_on_channel(sim_config(&f.server, dir.path()))
        .await
        .unwrap();
    assert!(toy.status().ws_url.ends_with(CHANNEL_PATH));
    let identity = pair(&f, &toy).await;
    let sent = send_voice(&f, &f.gran, &identity, VOICE).await;
    assert_eq!(play(&toy, 1).await, vec![sent], "Gran's message plays");
    toy.stop().await;
}
