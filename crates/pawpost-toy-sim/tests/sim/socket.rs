//! The toy's WebSocket loop against a stand-in server.

use std::time::Duration;

use pawpost_crypto::{Envelope, MessageId};
use pawpost_toy::{Frame, Toy};
use pawpost_toy_sim::{SimEvent, SimToy, STATE_FILE};
use uuid::Uuid;

use crate::support::*;

#[tokio::test]
async fn an_unpaired_toy_asks_to_pair_on_a_long_press_and_speaks_its_code() {
    let server = FakeServer::bind().await;
    let dir = tempfile::tempdir().unwrap();
    let toy = SimToy::start(config(&server.base, dir.path()))
        .await
        .unwrap();
    let mut events = toy.events();
    let mut conn = server.accept().await;
    wait(&mut events, |e| *e == SimEvent::Connected).await;
    assert!(toy.status().connected);

    // An unpaired toy says nothing until a child holds its paw.
    conn.challenge().await;
    conn.expect_nothing(Duration::from_millis(300)).await;

    toy.long_press();
    let request = conn.recv().await;
    let Frame::PairRequest {
        identity,
        signature,
    } = Frame::decode(&request).unwrap()
    else {
        panic!("expected a PairRequest, got {request:?}");
    };
    assert!(pawpost_toy::signing::verify_pair_request(
        &identity, &NONCE, &signature
    ));
    assert_eq!(
        Uuid::from_bytes(identity.device_id.0),
        toy.status().device_id
    );
    assert_eq!(identity.fingerprint().to_string(), toy.status().fingerprint);

    conn.send(Frame::PairCode {
        code: pawpost_toy::PairingCode::from_number(CODE).unwrap(),
        expires_in_s: 600,
    })
    .await;
    let spoken = wait(
        &mut events,
        |e| matches!(e, SimEvent::Spoke { text } if text.starts_with(char::is_numeric)),
    )
    .await;
    assert_eq!(
        spoken,
        SimEvent::Spoke {
            text: "4 8 2 9 1 3".into()
        }
    );
    assert_eq!(
        wait(&mut events, |e| matches!(e, SimEvent::PairingCode { .. })).await,
        SimEvent::PairingCode {
            code: "482913".into()
        }
    );
    assert_eq!(toy.status().heart, "on", "the heart is on while pairing");
    toy.stop().await;
}

#[tokio::test]
async fn a_paired_toy_stays_paired_after_a_restart() {
    let server = FakeServer::bind().await;
    let dir = tempfile::tempdir().unwrap();
    let toy = SimToy::start(config(&server.base, dir.path()))
        .await
        .unwrap();
    let conn = server.accept().await;
    let mut household = Household::new();
    pair(&toy, &server, conn, &mut household).await;
    let status = toy.status();
    assert_eq!(status.household_id, Some(Uuid::from_bytes(household.id.0)));
    assert_eq!(status.roster_version, 1);
    toy.stop().await;

    let toy = SimToy::start(config(&server.base, dir.path()))
        .await
        .unwrap();
    let status = toy.status();
    assert!(!status.first_start);
    assert_eq!(status.household_id, Some(Uuid::from_bytes(household.id.0)));

    // A paired toy authenticates on every connection, with the roster version it holds.
    let mut conn = server.accept().await;
    conn.challenge().await;
    // After the version 2 hello.
    assert!(matches!(
        Frame::decode(&conn.recv().await).unwrap(),
        Frame::ChunkRequest { message_id, .. } if message_id == pawpost_toy::STREAMING_HELLO
    ));
    let Frame::Auth {
        device_id,
        roster_version,
        signature,
    } = Frame::decode(&conn.recv().await).unwrap()
    else {
        panic!("expected Auth");
    };
    assert_eq!(Uuid::from_bytes(device_id.0), status.device_id);
    assert_eq!(roster_version, 1);
    let identity = Toy::restore(&std::fs::read(dir.path().join(STATE_FILE)).unwrap())
        .unwrap()
        .identity();
    assert!(pawpost_toy::signing::verify_auth(
        &identity, &NONCE, 1, &signature
    ));
    toy.stop().await;
}

#[tokio::test]
async fn a_message_is_saved_before_it_is_acknowledged_and_plays_on_a_press() {
    let server = FakeServer::bind().await;
    let dir = tempfile::tempdir().unwrap();
    let toy = SimToy::start(config(&server.base, dir.path()))
        .await
        .unwrap();
    let conn = server.accept().await;
    let mut household = Household::new();
    let (identity, mut conn) = pair(&toy, &server, conn, &mut household).await;
    let mut events = toy.events();

    let id = MessageId(random_id());
    let ogg = voice(1000);
    let envelope = household.message(&identity, id, &ogg);
    conn.send(Frame::Deliver {
        envelope: &envelope,
    })
    .await;
    assert_eq!(
        Frame::decode(&conn.recv().await).unwrap(),
        Frame::Delivered { message_id: id }
    );
    // The acknowledgement left only after the message was on disk.
    let saved = Toy::restore(&std::fs::read(dir.path().join(STATE_FILE)).unwrap()).unwrap();
    assert_eq!(saved.queued_messages(), 1);
    wait(
        &mut events,
        |e| matches!(e, SimEvent::Heart { state } if state == "blink"),
    )
    .await;
    assert_eq!(toy.status().queued, 1);

    toy.press();
    let SimEvent::Played {
        message_id,
        ogg_path,
    } = wait(&mut events, |e| matches!(e, SimEvent::Played { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(message_id, Uuid::from_bytes(id.0));
    assert_eq!(
        ogg_path,
        dir.path().join(format!("played/{message_id}.ogg"))
    );
    assert_eq!(std::fs::read(&ogg_path).unwrap(), ogg);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&ogg_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "a family's voice is private");
    }
    assert_eq!(
        Frame::decode(&conn.recv().await).unwrap(),
        Frame::Played { message_id: id }
    );
    assert_eq!(toy.status().queued, 0);
    toy.stop().await;
}

#[tokio::test]
async fn a_recording_is_sealed_uploaded_and_acknowledged() {
    let server = FakeServer::bind().await;
    let dir = tempfile::tempdir().unwrap();
    let toy = SimToy::start(config(&server.base, dir.path()))
        .await
        .unwrap();
    let conn = server.accept().await;
    let mut household = Household::new();
    let (_, mut conn) = pair(&toy, &server, conn, &mut household).await;
    let mut events = toy.events();

    toy.record(voice(2000));
    wait(&mut events, |e| *e == SimEvent::RecordingStarted).await;
    let upload = conn.recv().await;
    // Sent in pieces (protocol version 2); a 2 s recording fits in one.
    let Frame::UploadChunk {
        bytes: envelope,
        offset: 0,
        total_len,
        ..
    } = Frame::decode(&upload).unwrap()
    else {
        panic!("expected an UploadChunk");
    };
    assert_eq!(envelope.len(), total_len as usize);
    let header = Envelope::parse(envelope).unwrap().header().clone();
    assert_eq!(header.household_id, household.id);
    assert!(header.recipients.contains(&household.owner.device_id()));

    conn.send(Frame::UploadAck {
        message_id: header.message_id,
    })
    .await;
    assert_eq!(
        wait(&mut events, |e| matches!(e, SimEvent::Uploaded { .. })).await,
        SimEvent::Uploaded {
            message_id: Uuid::from_bytes(header.message_id.0)
        }
    );
    toy.stop().await;
}

#[tokio::test]
async fn a_recording_is_dropped_when_the_press_does_not_start_the_microphone() {
    let dir = tempfile::tempdir().unwrap();
    let toy = SimToy::start(config(&nowhere().await, dir.path()))
        .await
        .unwrap();
    let mut events = toy.events();
    // Not paired: the press only makes the toy say so.
    toy.record(voice(500));
    let report = wait(
        &mut events,
        |e| matches!(e, SimEvent::Report { text } if text.contains("microphone")),
    )
    .await;
    assert!(matches!(report, SimEvent::Report { .. }));
    toy.stop().await;
}

#[tokio::test]
async fn the_toy_reconnects_when_the_server_drops_it() {
    let server = FakeServer::bind().await;
    let dir = tempfile::tempdir().unwrap();
    let toy = SimToy::start(config(&server.base, dir.path()))
        .await
        .unwrap();
    let mut events = toy.events();
    let conn = server.accept().await;
    wait(&mut events, |e| *e == SimEvent::Connected).await;
    conn.close().await;
    wait(&mut events, |e| *e == SimEvent::Disconnected).await;
    assert!(!toy.status().connected);
    let _conn = server.accept().await;
    wait(&mut events, |e| *e == SimEvent::Connected).await;
    assert!(toy.status().connected);
    toy.stop().await;
}

#[tokio::test]
async fn the_toy_starts_before_its_server_and_connects_once_it_is_up() {
    let base = nowhere().await;
    let dir = tempfile::tempdir().unwrap();
    let toy = SimToy::start(config(&base, dir.path())).await.unwrap();
    let mut events = toy.events();
    wait(
        &mut events,
        |e| matches!(e, SimEvent::Report { text } if text.contains("cannot connect")),
    )
    .await;
    assert!(!toy.status().connected);

    let server = FakeServer::on(&base).await;
    let _conn = server.accept().await;
    wait(&mut events, |e| *e == SimEvent::Connected).await;
    toy.stop().await;
}

#[tokio::test]
async fn spoken_prompts_become_wav_files_when_espeak_ng_is_installed() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&nowhere().await, dir.path());
    config.speak_wav = true;
    let toy = SimToy::start(config).await.unwrap();
    let mut events = toy.events();
    toy.press();
    wait(&mut events, |e| matches!(e, SimEvent::Spoke { .. })).await;
    let espeak_installed = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|dir| dir.join("espeak-ng").is_file());
    // Written before the toy is heard to speak; text only without a synthesiser.
    assert_eq!(
        dir.path().join("spoken/001.wav").is_file(),
        espeak_installed
    );
    #[cfg(unix)]
    if espeak_installed {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("spoken/001.wav"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    toy.stop().await;
}
