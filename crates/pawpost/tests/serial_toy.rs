//! The simulated toy reached through a phone (`pawpost toy --serial-listen --channel`, the
//! library's `SerialLink` with a toy speaking toy protocol version 3): `pawpost relay` plays
//! the phone on the toy's link, as it does for the firmware in QEMU, carrying the toy's
//! encrypted channel to `/api/v1/toy/channel`, and a family pairs the toy, sends it a
//! message that plays, and gets the child's answer back. The phone dies and another one, at
//! a larger MTU, carries on.
use std::net::SocketAddr;

use pawpost_testkit::server::family::{download, family};
use pawpost_testkit::server::toys::{pair, play, send_voice, STEP};
use pawpost_toy_sim::{next_event, SerialLink, SimConfig, SimEvent, SimToy};
use reqwest::StatusCode;
use tokio::process::{Child, Command};

/// The child's answer, as the microphone hands it over.
const REPLY: &[u8] = include_bytes!("../../pawpost-media/tests/fixtures/chime-stereo-60ms.ogg");
/// What Gran says.
const VOICE: &[u8] = pawpost_testkit::server::family::VOICE;

fn relay(link: SocketAddr, server: &str, mtu: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_pawpost"))
        .arg("relay")
        .arg(format!("--mtu={mtu}"))
        .arg("--serial")
        .arg(format!("tcp:{link}"))
        .arg("--server")
        .arg(server)
        .kill_on_drop(true)
        .spawn()
        .expect("pawpost relay starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_toy_behind_a_phone_pairs_plays_a_message_and_answers_and_a_second_phone_carries_on() {
    let f = family().await;
    let link = SerialLink::listen("127.0.0.1:0".parse().unwrap())
        .await
        .expect("the link listens");
    let dir = tempfile::tempdir().unwrap();
    let toy = SimToy::start_on_channel(SimConfig {
        server: link.toy_server().to_string(),
        state_dir: dir.path().to_owned(),
        speak_wav: false,
        language: pawpost_toy_sim::Language::default(),
        trust_cert: None,
    })
    .await
    .expect("the simulated toy starts");

    // The smallest MTU: every frame crosses in 20-byte fragments.
    let mut phone = relay(link.address(), &f.server.base, pawpost_ble::MIN_ATT_MTU);
    // Pairing ends with the toy asking for a new server connection to authenticate on.
    let identity = pair(&f, &toy).await;
    let sent = send_voice(&f, &f.gran, &identity, VOICE).await;
    assert_eq!(play(&toy, 1).await, vec![sent], "Gran's message plays");

    let mut events = toy.events();
    toy.record(REPLY.to_vec());
    let reply = match next_event(
        &mut events,
        |e| matches!(e, SimEvent::Uploaded { .. }),
        STEP,
    )
    .await
    .expect("the server acknowledges the child's answer")
    {
        SimEvent::Uploaded { message_id } => message_id,
        _ => unreachable!(),
    };
    let (status, envelope) = download(&f.gran, &reply.to_string()).await;
    assert_eq!(status, StatusCode::OK, "Gran fetches the answer");
    let opened = pawpost_crypto::open(&envelope, &f.gran_keys, &identity)
        .expect("Gran opens the child's answer");
    assert_eq!(opened.payload, REPLY);

    // The phone goes away: the toy loses the server with it.
    let mut events = toy.events();
    phone.kill().await.unwrap();
    next_event(&mut events, |e| *e == SimEvent::Disconnected, STEP)
        .await
        .expect("the toy notices the phone is gone");

    // Another phone, at MTU 247, carries the next message.
    let _phone = relay(link.address(), &f.server.base, 247);
    let sent = send_voice(&f, &f.gran, &identity, VOICE).await;
    assert_eq!(play(&toy, 1).await, vec![sent], "the next message plays");
}
