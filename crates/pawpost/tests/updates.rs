//! Signed updates of the toy's software, end to end: a release manager signs an image with
//! `pawpost release`, the operator publishes it to the server, and a paired simulated toy
//! running version 1 downloads it over its real WebSocket, checks it, "boots" version 2 and
//! reports it, which its parents see. A release signed by a key the toy does not trust, an
//! altered image, a lower counter and another board each leave the toy on version 1; a toy
//! killed half way through the download keeps version 1 and completes the update later.
use pawpost_crypto::{ImageDigest, Manifest, ReleaseKey};
use pawpost_server::services::releases::{self, PublishError};
use pawpost_store::BlobKey;
use pawpost_testkit::server as common;
use pawpost_toy_sim::{next_event, SimEvent, SimToy};

use common::family::{family_on, Family};
use common::toys::{pair, start_toy, wait_online, STEP};
use common::TestServer;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const BOARD: &str = "pawpost-sim";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn image(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            u8::try_from(i % 256)
                .unwrap()
                .wrapping_mul(31)
                .wrapping_add(seed)
        })
        .collect()
}

/// What the simulated toy runs: `firmware.txt` in its state folder (docs/UPDATES.md).
fn install_firmware(dir: &Path, version: u32, counter: u32, trusted: &[[u8; 32]]) {
    let mut text = format!("board={BOARD}\nversion={version}\ncounter={counter}\nconfirmed=1\n");
    for key in trusted {
        text.push_str(&format!("release-key={}\n", hex(key)));
    }
    std::fs::write(dir.join("firmware.txt"), text).unwrap();
}

fn running(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("firmware.txt")).unwrap()
}

async fn family_trusting(keys: &[[u8; 32]]) -> Family {
    let keys = keys.to_vec();
    family_on(TestServer::start_with(move |c| c.release_public_keys = keys).await).await
}

/// A paired toy running version 1 (`counter`), trusting `trusted`.
async fn toy_on_v1(f: &Family, dir: &Path, counter: u32, trusted: &[[u8; 32]]) -> SimToy {
    install_firmware(dir, 1, counter, trusted);
    let toy = start_toy(&f.server, dir).await;
    pair(f, &toy).await;
    wait_online(f, &f.server).await;
    toy
}

async fn publish(
    f: &Family,
    trusted: &[[u8; 32]],
    key: &ReleaseKey,
    board: &str,
    counter: u32,
    image: &[u8],
) -> Result<pawpost_store::Release, PublishError> {
    let manifest = Manifest {
        board: board.into(),
        version: 2,
        counter,
        size: u32::try_from(image.len()).unwrap(),
        sha256: ImageDigest::of(image),
    }
    .encode()
    .unwrap();
    let (store, blobs) = pawpost_storage::open(f.server.storage.as_ref().unwrap())
        .await
        .unwrap();
    releases::publish(
        store.as_ref(),
        blobs.as_ref(),
        trusted,
        &manifest,
        &key.sign(&manifest),
        image,
    )
    .await
}

/// The software version the parents' page lists for the toy.
async fn version_shown(f: &Family, toy: &SimToy) -> Option<u64> {
    version_of(f, &toy.status().device_id.to_string()).await
}

/// The software version the parents' page lists for the toy `device`.
async fn version_of(f: &Family, device: &str) -> Option<u64> {
    let (_, toys) = f
        .mum
        .get(&format!("/api/v1/households/{}/toys", f.home))
        .await;
    toys.as_array()
        .unwrap()
        .iter()
        .find(|t| t["device_id"] == device)
        .and_then(|t| t["software"]["version"].as_u64())
}

async fn wait_shown(f: &Family, toy: &SimToy, version: u64) {
    let deadline = tokio::time::Instant::now() + STEP * 2;
    while version_shown(f, toy).await != Some(version) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the parents never saw version {version}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Restarts the toy (it then authenticates and reports its version again) and returns it
/// with its events, starting from its new connection.
async fn restart(f: &Family, toy: SimToy, dir: &Path) -> SimToy {
    toy.stop().await;
    start_toy(&f.server, dir).await
}

fn pawpost(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_pawpost"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pawpost {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn a_signed_release_takes_the_toy_from_version_1_to_2_and_the_parents_see_it() {
    let work = tempfile::tempdir().unwrap();
    let key_file = work.path().join("release.key");
    let printed = pawpost(&["release", "keygen", "--out", key_file.to_str().unwrap()]);
    let public = printed
        .lines()
        .find_map(|l| l.strip_prefix("release public key: "))
        .unwrap()
        .to_owned();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only its owner reads the release key");
    }
    let public_key: [u8; 32] = (0..32)
        .map(|i| u8::from_str_radix(&public[2 * i..2 * i + 2], 16).unwrap())
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();

    let f = family_trusting(&[public_key]).await;
    let dir = tempfile::tempdir().unwrap();
    let toy = toy_on_v1(&f, dir.path(), 1, &[public_key]).await;
    wait_shown(&f, &toy, 1).await;

    let image = image(3 * 4096 + 123, 7);
    let (image_file, manifest_file) = (work.path().join("v2.bin"), work.path().join("v2.manifest"));
    std::fs::write(&image_file, &image).unwrap();
    pawpost(&[
        "release",
        "sign",
        "--key",
        key_file.to_str().unwrap(),
        "--board",
        BOARD,
        "--version",
        "2",
        "--counter",
        "2",
        image_file.to_str().unwrap(),
        "--out",
        manifest_file.to_str().unwrap(),
    ]);
    let signed = std::fs::read(&manifest_file).unwrap();
    let (manifest, signature) = signed.split_at(signed.len() - 64);
    let (store, blobs) = pawpost_storage::open(f.server.storage.as_ref().unwrap())
        .await
        .unwrap();
    releases::publish(
        store.as_ref(),
        blobs.as_ref(),
        &[public_key],
        manifest,
        signature.try_into().unwrap(),
        &image,
    )
    .await
    .unwrap();

    let toy = restart(&f, toy, dir.path()).await;
    wait_shown(&f, &toy, 2).await;
    assert_eq!(
        std::fs::read(dir.path().join("update-slot.bin")).unwrap(),
        image,
        "the slot holds exactly the signed image"
    );
    let deadline = tokio::time::Instant::now() + STEP;
    while !running(dir.path()).contains("confirmed=1") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "version 2 was never confirmed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(running(dir.path()).contains("version=2\ncounter=2\n"));
    toy.stop().await;
}

/// When the server last recorded the toy's version.
async fn reported_at(f: &Family, toy: &SimToy) -> Option<String> {
    let device = toy.status().device_id.to_string();
    let (_, toys) = f
        .mum
        .get(&format!("/api/v1/households/{}/toys", f.home))
        .await;
    toys.as_array()
        .unwrap()
        .iter()
        .find(|t| t["device_id"] == device.as_str())
        .and_then(|t| t["software"]["reported_at"].as_str().map(str::to_owned))
}

/// Restarts the toy and waits until the server recorded the version it reported on its
/// new connection (and so answered it, with an offer or without).
async fn reconnect_and_report(f: &Family, toy: SimToy, dir: &Path) -> SimToy {
    let before = reported_at(f, &toy).await;
    let toy = restart(f, toy, dir).await;
    let deadline = tokio::time::Instant::now() + STEP;
    while reported_at(f, &toy).await == before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the toy never reported its version again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    toy
}

#[tokio::test]
async fn a_release_signed_by_a_key_the_toy_does_not_trust_leaves_it_on_version_1() {
    let (trusted, stranger) = (
        ReleaseKey::from_seed(&[1; 32]),
        ReleaseKey::from_seed(&[2; 32]),
    );
    // The server was given both keys; the toy's image trusts only one.
    let both = [trusted.public_key(), stranger.public_key()];
    let f = family_trusting(&both).await;
    let dir = tempfile::tempdir().unwrap();
    let toy = toy_on_v1(&f, dir.path(), 5, &[trusted.public_key()]).await;
    publish(&f, &both, &stranger, BOARD, 6, &image(5000, 1))
        .await
        .unwrap();

    toy.stop().await;
    let toy = start_toy(&f.server, dir.path()).await;
    let mut events = toy.events();
    next_event(
        &mut events,
        |e| {
            *e == SimEvent::Report {
                text: "update refused: bad_signature".into(),
            }
        },
        STEP,
    )
    .await
    .expect("the toy refuses the release");
    assert!(running(dir.path()).contains("version=1\n"));
    assert_eq!(version_shown(&f, &toy).await, Some(1));
    toy.stop().await;
}

#[tokio::test]
async fn the_server_refuses_to_publish_a_release_signed_by_a_key_it_was_not_given() {
    let (given, other) = (
        ReleaseKey::from_seed(&[3; 32]),
        ReleaseKey::from_seed(&[4; 32]),
    );
    let f = family_trusting(&[given.public_key()]).await;
    let refused = publish(&f, &[given.public_key()], &other, BOARD, 2, &image(100, 2)).await;
    assert!(
        matches!(refused, Err(PublishError::WrongKey)),
        "{refused:?}"
    );
}

#[tokio::test]
async fn an_altered_image_a_lower_counter_and_another_board_leave_the_toy_on_version_1() {
    let key = ReleaseKey::from_seed(&[5; 32]);
    let trusted = [key.public_key()];
    let f = family_trusting(&trusted).await;
    let dir = tempfile::tempdir().unwrap();
    let toy = toy_on_v1(&f, dir.path(), 5, &trusted).await;

    // Lower and equal counters, and another board, are never installed.
    publish(&f, &trusted, &key, BOARD, 4, &image(100, 3))
        .await
        .unwrap();
    publish(&f, &trusted, &key, BOARD, 5, &image(100, 4))
        .await
        .unwrap();
    publish(&f, &trusted, &key, "mps2-an386", 9, &image(100, 5))
        .await
        .unwrap();
    let toy = reconnect_and_report(&f, toy, dir.path()).await;
    assert!(running(dir.path()).contains("version=1\n"));
    assert!(
        !dir.path().join("update-slot.bin").exists(),
        "nothing was downloaded"
    );

    // An image altered in the blob store after it was published.
    let good = image(9000, 6);
    let release = publish(&f, &trusted, &key, BOARD, 6, &good).await.unwrap();
    let mut altered = good.clone();
    altered[4100] ^= 0x40;
    let (_, blobs) = pawpost_storage::open(f.server.storage.as_ref().unwrap())
        .await
        .unwrap();
    blobs
        .put(&BlobKey::new(release.blob_key.clone()).unwrap(), &altered)
        .await
        .unwrap();
    // The server checks a release's image before sending any of it: none of the altered
    // image reaches the toy, which stays on version 1 with its slot empty.
    let toy = reconnect_and_report(&f, toy, dir.path()).await;
    assert!(running(dir.path()).contains("version=1\n"));
    assert!(std::fs::metadata(dir.path().join("update-slot.bin")).map_or(true, |m| m.len() == 0));
    assert_eq!(version_shown(&f, &toy).await, Some(1));
    toy.stop().await;
}

#[tokio::test]
async fn a_toy_killed_half_way_through_the_download_keeps_version_1_and_finishes_later() {
    let key = ReleaseKey::from_seed(&[6; 32]);
    let trusted = [key.public_key()];
    let f = family_trusting(&trusted).await;
    let dir = tempfile::tempdir().unwrap();
    let toy = toy_on_v1(&f, dir.path(), 1, &trusted).await;
    let image = image(
        usize::try_from(pawpost_toy::MAX_UPDATE_IMAGE_BYTES).unwrap(),
        8,
    );
    publish(&f, &trusted, &key, BOARD, 2, &image).await.unwrap();

    toy.stop().await;
    let toy = start_toy(&f.server, dir.path()).await;
    let slot = dir.path().join("update-slot.bin");
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let written = std::fs::metadata(&slot).map_or(0, |m| m.len());
        if written > 0 && written < u64::try_from(image.len()).unwrap() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the download never got under way (slot holds {written} bytes)"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Killed: dropped without a goodbye, as a power cut would.
    drop(toy);
    assert!(running(dir.path()).contains("version=1\n"));

    let toy = start_toy(&f.server, dir.path()).await;
    wait_shown(&f, &toy, 2).await;
    assert_eq!(std::fs::read(&slot).unwrap(), image);
    toy.stop().await;
}

#[tokio::test]
async fn a_toy_saying_its_version_again_on_one_connection_is_not_believed() {
    use futures_util::{SinkExt, StreamExt};
    use pawpost_toy::{Action, Event, Firmware, Frame, FrameType, Toy};
    use tokio_tungstenite::tungstenite::Message;

    let key = ReleaseKey::from_seed(&[7; 32]);
    let trusted = [key.public_key()];
    let f = family_trusting(&trusted).await;
    let dir = tempfile::tempdir().unwrap();
    let sim = toy_on_v1(&f, dir.path(), 1, &trusted).await;
    wait_shown(&f, &sim, 1).await;
    let device = sim.status().device_id.to_string();
    sim.stop().await;

    // The same toy, driven frame by frame over its own WebSocket.
    let saved = std::fs::read(dir.path().join(pawpost_toy_sim::STATE_FILE)).unwrap();
    let firmware = Firmware {
        board: BOARD.into(),
        version: 1,
        counter: 1,
        confirmed: true,
    };
    let mut toy = Toy::restore(&saved)
        .unwrap()
        .with_firmware(firmware, trusted.to_vec());
    let mut rng = pawpost_crypto::os_rng();
    toy.handle(Event::Connected, &mut rng);
    let url = format!(
        "{}/api/v1/toy/ws",
        f.server.base.replace("http://", "ws://")
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let challenge = loop {
        match tokio::time::timeout(STEP, socket.next()).await.unwrap() {
            Some(Ok(Message::Binary(bytes))) => break bytes.to_vec(),
            Some(Ok(_)) => continue,
            other => panic!("the connection ended: {other:?}"),
        }
    };
    let mut said_version = false;
    for action in toy.handle(Event::FrameReceived(&challenge), &mut rng) {
        if let Action::SendFrame(frame) = action {
            said_version |= Frame::decode(&frame).unwrap().frame_type() == FrameType::Version;
            socket.send(Message::Binary(frame.into())).await.unwrap();
        }
    }
    assert!(said_version, "the toy says what it runs after Auth");
    wait_online(&f, &f.server).await;
    // Then it claims a version it does not run, on the same connection, and hangs up.
    let claim = Frame::Version {
        board: BOARD,
        version: 9,
        counter: 9,
    }
    .encode()
    .unwrap();
    socket.send(Message::Binary(claim.into())).await.unwrap();
    socket.close(None).await.unwrap();
    // The server handles a connection's frames in order: once it shows the toy offline,
    // it has handled the claim.
    common::toys::wait_shown(&f, &f.server, false).await;
    assert_eq!(version_of(&f, &device).await, Some(1));
}
