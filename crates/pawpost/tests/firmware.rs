//! The toy's firmware in QEMU (mps2-an386, Cortex-M4F), end to end with a real server:
//! `pawpost relay` carries its emulated Bluetooth link (UART0) to the server's toy
//! channel (toy protocol version 3: every frame inside the encrypted channel), and this
//! harness is the wires inside the toy (UART1): it presses the paw, hears what the toy
//! says and reads what its speaker plays.
//!
//! Two stories put someone on the link. A neighbour ([`Neighbour`]) sits on the UART
//! stream between QEMU and the relay: he records every byte both ways and injects or
//! replays frames; he reads nothing and what he injects is refused. A man in the middle
//! ([`man_in_the_middle`]) takes the phone's place at pairing and ends the toy's
//! handshake with his own key: the number the toy speaks differs from the app's, and
//! pairing fails.
//!
//! scripts/firmware-test builds the image and its boot stage and runs this with
//! PAWPOST_FIRMWARE_IMAGE (the image's bytes), PAWPOST_FIRMWARE_BOOT (the boot stage QEMU
//! starts) and PAWPOST_FIRMWARE_BUILD_ID set (the id the image must announce, so that an
//! old image is never taken for the one just built). Each story programs a flash file as a
//! factory would (the image in slot A, a boot record naming it), which QEMU's toy keeps
//! its state and queued audio in, and which survives QEMU being killed. It prints the heap the image used (`firmware
//! heap:` lines) for BENCHMARKS.md; with PAWPOST_FIRMWARE_ICOUNT=shift=0 QEMU counts
//! instructions, and the milliseconds the toy took over a message are millions of them.
use std::collections::VecDeque;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use pawpost_ble::{Fragmenter, Reassembler};
use pawpost_crypto::{MediaType, Member, MemberStatus, PublicIdentity, Role, SignedRoster};
use pawpost_firmware::flash::{BootRecord, Flash, MemFlash, SlotInfo, FLASH_LEN, IMAGE_SLOTS};
use pawpost_firmware::link::Decoder;
use pawpost_firmware::link::Packet;
use pawpost_firmware::wires;
use pawpost_testkit::server::family::{
    download, family, family_on, publish, sealed, upload, uuid_bytes, Family, VOICE,
};
use pawpost_testkit::server::toys::latest_roster;
use pawpost_testkit::server::TestServer;
use pawpost_toy::channel::{
    accept, Accepted, StaticKey, ToyPairing, CHANNEL_VERSION, KIND_RECORD, RECORD_SIZES, TAG_LEN,
};
use pawpost_toy::{Frame, MAX_CHANNEL_MESSAGE_LEN};
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::{sleep, Instant};
use tokio_tungstenite::tungstenite::Message;

/// How long one step may take in the emulator (the crypto runs in emulated Thumb code).
const STEP: Duration = Duration::from_secs(60);
/// How long a whole update may take to arrive: about 240 KB of image, in records padded
/// to twice a piece's size, through the emulated UART, which the image polls byte by byte.
const DOWNLOAD: Duration = Duration::from_secs(300);
/// How long QEMU may take to open its UART sockets.
const BOOT: Duration = Duration::from_secs(20);
/// The link's ATT MTU for the long message and the neighbour (the relay's default).
const MTU: u16 = pawpost_firmware::DEFAULT_MTU;
/// The smallest ATT MTU, for pairing and the first message.
const MIN_MTU: u16 = pawpost_ble::MIN_ATT_MTU;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The wires inside the toy: lines to and from UART1, every line heard kept.
struct Wires {
    lines: tokio::io::Lines<BufReader<OwnedReadHalf>>,
    out: OwnedWriteHalf,
    heard: Vec<String>,
}

impl Wires {
    async fn send(&mut self, line: &str) {
        self.out
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
    }

    /// The next line starting with `prefix`, skipping others (kept in `heard`).
    async fn expect(&mut self, prefix: &str) -> String {
        self.expect_within(prefix, STEP).await
    }

    /// As [`Wires::expect`], waiting up to `wait`.
    async fn expect_within(&mut self, prefix: &str, wait: Duration) -> String {
        let deadline = Instant::now() + wait;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line())
                .await
                .unwrap_or_else(|_| {
                    panic!("the toy never said {prefix:?}; it said:\n{}", self.tail())
                })
                .expect("UART1 reads")
                .unwrap_or_else(|| panic!("UART1 closed before {prefix:?}:\n{}", self.tail()));
            assert!(!line.starts_with("panic"), "the firmware panicked: {line}");
            self.heard.push(line.clone());
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.trim().to_owned();
            }
        }
    }

    fn tail(&self) -> String {
        let from = self.heard.len().saturating_sub(40);
        self.heard[from..]
            .iter()
            .map(|l| if l.len() > 200 { &l[..200] } else { l })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

async fn connect(port: u16) -> TcpStream {
    let deadline = Instant::now() + BOOT;
    loop {
        match TcpStream::connect(("127.0.0.1", port)).await {
            Ok(stream) => return stream,
            Err(e) if Instant::now() >= deadline => panic!("QEMU's UART on {port}: {e}"),
            Err(_) => sleep(Duration::from_millis(50)).await,
        }
    }
}

/// The firmware scripts/firmware-test built, and a flash file for one toy.
struct Firmware {
    boot: String,
    build_id: String,
    /// The image's bytes, as slot A holds them.
    image: Vec<u8>,
    flash: PathBuf,
    _dir: tempfile::TempDir,
}

/// The built firmware and a toy's flash programmed at the factory, or None (the test is
/// skipped, or fails in CI) without the image or QEMU.
fn firmware() -> Option<Firmware> {
    let image = pawpost_testkit::require(
        "the firmware image (scripts/firmware-test builds it)",
        "PAWPOST_FIRMWARE_IMAGE",
    )?;
    let boot = pawpost_testkit::require(
        "the firmware's boot stage (scripts/firmware-test builds it)",
        "PAWPOST_FIRMWARE_BOOT",
    )
    .expect("set with the image");
    let build_id = pawpost_testkit::require(
        "the firmware's build id (scripts/firmware-test sets it)",
        "PAWPOST_FIRMWARE_BUILD_ID",
    )
    .expect("set with the image");
    for file in [&image, &boot] {
        assert!(Path::new(file).is_file(), "no firmware file at {file}");
    }
    if std::process::Command::new("qemu-system-arm")
        .arg("--version")
        .output()
        .is_err()
    {
        pawpost_testkit::skip(
            "QEMU",
            "apt-get install qemu-system-arm (.ci/run does)",
            None,
        );
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let flash = dir.path().join("flash.bin");
    std::fs::write(&flash, factory_flash(&std::fs::read(&image).unwrap(), 1)).unwrap();
    Some(Firmware {
        boot,
        build_id,
        image: std::fs::read(&image).unwrap(),
        flash,
        _dir: dir,
    })
}

/// A new toy's flash: erased, `image` as `version` in slot A and a boot record naming it.
fn factory_flash(image: &[u8], version: u32) -> Vec<u8> {
    let mut bytes = vec![0xffu8; FLASH_LEN];
    let mut flash = MemFlash::new(&mut bytes, ());
    flash.program(IMAGE_SLOTS[0], image).unwrap();
    let mut record = BootRecord::factory(version, version, image).expect("the image fits");
    record.save(&mut flash).unwrap();
    bytes
}

/// QEMU with the boot stage, the toy's flash file, and the harness's test points
/// (`cut-state=N`: the power goes half way through the toy's N-th save of its state).
fn qemu(firmware: &Firmware, link_port: u16, wires_port: u16, test_points: &[&str]) -> Child {
    let mut semihosting = format!(
        "enable=on,target=native,arg=pawpost,arg=flash={}",
        firmware.flash.display()
    );
    for point in test_points {
        semihosting.push_str(&format!(",arg={point}"));
    }
    Command::new("qemu-system-arm")
        .args(["-machine", "mps2-an386", "-cpu", "cortex-m4"])
        .args(["-display", "none", "-monitor", "none"])
        .arg("-semihosting-config")
        .arg(semihosting)
        .arg("-serial")
        .arg(format!("tcp:127.0.0.1:{link_port},server=on,wait=off"))
        .arg("-serial")
        // QEMU waits for the harness on the wires, so that it hears the boot stage.
        .arg(format!("tcp:127.0.0.1:{wires_port},server=on,wait=on"))
        // For BENCHMARKS.md: with -icount shift=0 each instruction is one virtual
        // nanosecond, so the toy's `took` milliseconds are millions of them.
        .args(match std::env::var("PAWPOST_FIRMWARE_ICOUNT") {
            Ok(icount) if !icount.is_empty() => vec!["-icount".to_owned(), icount],
            _ => Vec::new(),
        })
        .arg("-kernel")
        .arg(&firmware.boot)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("qemu-system-arm starts")
}

/// Powers the toy on: QEMU starts, the boot stage starts the image in slot A, the harness
/// seeds its random numbers, and the image says it is the one just built and ready.
/// Returns QEMU, the wires, and the `ready` line (device id and key fingerprint).
async fn power_on(
    firmware: &Firmware,
    link_port: u16,
    wires_port: u16,
    test_points: &[&str],
) -> (Child, Wires, String) {
    power_on_as(
        firmware,
        (link_port, wires_port),
        test_points,
        ("A version 1", "1 slot A confirmed"),
    )
    .await
}

/// As [`power_on`], with what the boot stage and the image must say they run:
/// (`boot slot …`, `firmware …`).
async fn power_on_as(
    firmware: &Firmware,
    (link_port, wires_port): (u16, u16),
    test_points: &[&str],
    (boot, running): (&str, &str),
) -> (Child, Wires, String) {
    let qemu = qemu(firmware, link_port, wires_port, test_points);
    let (read, out) = connect(wires_port).await.into_split();
    let mut toy = Wires {
        lines: BufReader::new(read).lines(),
        out,
        heard: Vec::new(),
    };
    assert_eq!(toy.expect("boot slot ").await, boot);
    let seed: [u8; 32] = rand_seed();
    toy.send(&format!("seed {}", wires::hex(&seed))).await;
    assert_eq!(
        toy.expect("build ").await,
        firmware.build_id,
        "the image booted is the one just built"
    );
    assert_eq!(toy.expect("firmware ").await, running);
    let ready = toy.expect("ready ").await;
    (qemu, toy, ready)
}

fn relay(link_port: u16, server: &str, mtu: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_pawpost"))
        .arg("relay")
        .arg(format!("--mtu={mtu}"))
        .arg("--serial")
        .arg(format!("tcp:127.0.0.1:{link_port}"))
        .arg("--server")
        .arg(server)
        .kill_on_drop(true)
        .spawn()
        .expect("pawpost relay starts")
}

/// The child's answer, as the microphone hands it over.
const REPLY: &[u8] = include_bytes!("../../pawpost-media/tests/fixtures/chime-stereo-60ms.ogg");

/// The toy's keys as the household's device list shows them now (a key rotation may
/// have replaced the ones it paired with).
async fn current_identity(f: &Family, paired: &PublicIdentity) -> PublicIdentity {
    let (_, devices) = f
        .gran
        .get(&format!("/api/v1/households/{}/devices", f.home))
        .await;
    let device = uuid::Uuid::from_bytes(paired.device_id.0).to_string();
    let found = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device_id"] == device.as_str())
        .unwrap_or_else(|| panic!("the toy is among the household's devices: {devices}"));
    PublicIdentity::decode(
        &URL_SAFE_NO_PAD
            .decode(found["identity"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap()
}

/// A valid Ogg Opus file of `ms` milliseconds at about 16 kbit/s (40-byte 20 ms packets),
/// the size of a real voice message.
fn long_voice(ms: u32) -> Vec<u8> {
    let mut writer = pawpost_media::OggOpusWriter::new(1, 312, 0x5EED).unwrap();
    let mut packet = vec![31 << 3];
    packet.extend((1..40u8).map(|b| b.wrapping_mul(37)));
    for _ in 0..(ms / 20) {
        writer.push_packet(&packet).unwrap();
    }
    writer.finish(0).unwrap()
}

/// The server's challenge reached the toy inside the channel (its handshake done); a long
/// press, code, Mum types it, the toy speaks the number her app shows (the channel's
/// pairing number: from the toy's own side of the handshake), a press confirms, Mum
/// publishes a roster listing the toy. Returns its identity.
async fn pair(f: &Family, toy: &mut Wires) -> PublicIdentity {
    toy.expect("took Challenge").await;
    toy.send("long").await;
    let code = toy.expect("code ").await;
    assert_eq!(code.len(), 6, "six digits: {code}");
    let (status, claim) = f
        .mum
        .post(
            &format!("/api/v1/households/{}/toys", f.home),
            json!({"code": code}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{claim}");
    let spoken = toy.expect("confirm ").await;
    assert_eq!(
        claim["confirmation"],
        spoken.as_str(),
        "the app shows the number the toy computed from its handshake"
    );
    toy.send("press").await;
    let device = claim["device_id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + STEP;
    let paired = loop {
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
            break found.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the press never paired the toy: {toys}"
        );
        sleep(Duration::from_millis(50)).await;
    };
    let identity = PublicIdentity::decode(
        &URL_SAFE_NO_PAD
            .decode(paired["identity"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
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
    let household = toy.expect("paired ").await;
    assert_eq!(household, wires::hex(&uuid_bytes(&f.home)));
    identity
}

/// Gran seals `voice` for the toy and uploads it; the toy takes it (its heart blinks), a
/// press plays it, and the speaker gets exactly `voice`. Returns the heap lines and the
/// message's id.
async fn deliver_and_play(
    f: &Family,
    toy: &mut Wires,
    identity: &PublicIdentity,
    voice: &[u8],
) -> (String, String, uuid::Uuid) {
    toy.send("heap reset").await;
    toy.expect("heap ").await;
    let (envelope, id) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[*identity],
        voice,
    );
    let (status, body) = upload(&f.gran, &f.home, envelope).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // The message comes in chunks, each inside a record of the channel: the toy checks the prefix
    // (signature, key) on `DeliverStart`, then each `DeliverChunk`; its heart blinks once
    // the last one verified. The milliseconds it took over each frame add up.
    let (mut start_ms, mut chunks_ms, mut chunks, mut blinked) = (0u64, 0u64, 0u32, false);
    loop {
        let line = toy.expect("").await;
        blinked |= line == "heart blink";
        let Some(took) = line.strip_prefix("took ") else {
            continue;
        };
        let (frame, ms) = took.split_once(' ').expect("took FRAME MS");
        let ms: u64 = ms.parse().expect("milliseconds");
        match frame {
            "DeliverStart" => start_ms += ms,
            "DeliverChunk" => {
                chunks_ms += ms;
                chunks += 1;
            }
            _ => {}
        }
        if blinked {
            break;
        }
    }
    assert!(chunks > 0, "the message came in chunks\n{}", toy.tail());
    toy.send("heap").await;
    let received = format!(
        "{} (the toy took {} ms: {start_ms} ms over DeliverStart, {chunks_ms} ms over {chunks} DeliverChunk frames)",
        toy.expect("heap ").await,
        start_ms + chunks_ms
    );
    toy.send("press").await;
    let played = toy.expect("play ").await;
    let (message, ogg) = played.split_once(' ').expect("play MESSAGE OGG");
    assert_eq!(
        message,
        wires::hex(id.as_bytes()),
        "the message sent is the one played"
    );
    assert!(
        wires::decode_hex(ogg).unwrap() == voice,
        "the speaker played exactly the Ogg Gran recorded"
    );
    toy.send("heap").await;
    let after_play = toy.expect("heap ").await;
    (received, after_play, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the firmware image: scripts/firmware-test builds it and runs this test"]
async fn the_firmware_in_qemu_pairs_on_the_channel_plays_a_sealed_message_and_sends_an_answer() {
    let Some(firmware) = firmware() else {
        return;
    };
    let f = family().await;
    let (link_port, wires_port) = (free_port(), free_port());
    let (_qemu, mut toy, _) = power_on(&firmware, link_port, wires_port, &[]).await;

    // Pairing and the first message at the smallest MTU (19-byte fragments).
    let mut phone = relay(link_port, &f.server.base, MIN_MTU);
    assert_eq!(toy.expect("link up ").await, MIN_MTU.to_string());
    let identity = pair(&f, &mut toy).await;
    // The toy asks for a fresh connection to authenticate as a member of its household.
    assert_eq!(toy.expect("link up ").await, MIN_MTU.to_string());
    let (received, played, _) = deliver_and_play(&f, &mut toy, &identity, VOICE).await;
    println!(
        "firmware heap: {}-byte message: received and opened: {received}; played: {played}",
        VOICE.len()
    );
    // The toy pinned the server's key at pairing, and its channel stands.
    status_until(&mut toy, &["pinned=yes", "channel=up"]).await;

    // The child answers: a press turns the microphone on, the toy seals what it
    // recorded for the family, and Gran opens it.
    toy.send("press").await;
    toy.expect("mic on").await;
    toy.send(&format!("mic {}", wires::hex(REPLY))).await;
    let reply = toy.expect("sent ").await;
    let reply = uuid::Uuid::from_slice(&wires::decode_hex(&reply).unwrap()).unwrap();
    let (status, envelope) = download(&f.gran, &reply.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    let toy_key = current_identity(&f, &identity).await;
    let opened = pawpost_crypto::open(&envelope, &f.gran_keys, &toy_key)
        .expect("Gran opens the child's answer");
    assert_eq!(opened.payload, REPLY);

    // Another phone, at the usual MTU: a 28 s message, of a real voice's size.
    phone.kill().await.unwrap();
    let _phone = relay(link_port, &f.server.base, MTU);
    assert_eq!(toy.expect("link up ").await, MTU.to_string());
    let long = long_voice(28_000);
    let (received, played, _) = deliver_and_play(&f, &mut toy, &identity, &long).await;
    println!(
        "firmware heap: {}-byte message (28 s): received and opened: {received}; played: {played}",
        long.len()
    );

    // For BENCHMARKS.md: the public-key operations and a chunk's cryptography one by one
    // (each line: name, runs, milliseconds for all of them together).
    toy.send("bench").await;
    for _ in 0..pawpost_firmware::bench::OPERATIONS {
        let line = toy.expect("bench ").await;
        println!("firmware bench: {line}");
    }
}

/// Waits until the toy's status line contains every one of `wanted`; returns it.
async fn status_until(toy: &mut Wires, wanted: &[&str]) -> String {
    let deadline = Instant::now() + STEP;
    loop {
        toy.send("status").await;
        let status = toy.expect("status ").await;
        if wanted.iter().all(|w| status.contains(w)) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the toy's status stays {status}, not {wanted:?}"
        );
        sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the firmware image: scripts/firmware-test builds it and runs this test"]
async fn the_firmware_keeps_its_family_and_queued_message_when_qemu_is_killed() {
    let Some(firmware) = firmware() else {
        return;
    };
    let f = family().await;
    let (link_port, wires_port) = (free_port(), free_port());
    let (mut qemu_run, mut toy, ready) = power_on(&firmware, link_port, wires_port, &[]).await;
    let mut phone = relay(link_port, &f.server.base, MTU);
    assert_eq!(toy.expect("link up ").await, MTU.to_string());
    let identity = pair(&f, &mut toy).await;
    let household = format!("household={}", wires::hex(&uuid_bytes(&f.home)));
    assert_eq!(toy.expect("link up ").await, MTU.to_string());

    // Gran's message arrives and waits for the child's press; then the power goes.
    let (envelope, first) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[identity],
        VOICE,
    );
    let (status, body) = upload(&f.gran, &f.home, envelope).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    toy.expect("heart blink").await;
    status_until(&mut toy, &[&household, "queued=1"]).await;
    qemu_run.kill().await.unwrap();
    phone.kill().await.unwrap();

    // Started again on the same flash: the same toy, still in its family, the message
    // still waiting; it connects as a member (a second message reaches it).
    let (mut qemu_run, mut toy, again) = power_on(&firmware, link_port, wires_port, &[]).await;
    assert_eq!(again, ready, "the same toy, with the same keys");
    status_until(&mut toy, &[&household, "queued=1"]).await;
    let mut phone = relay(link_port, &f.server.base, MTU);
    assert_eq!(toy.expect("link up ").await, MTU.to_string());
    let second_voice = long_voice(2_000);
    let (envelope, _) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[current_identity(&f, &identity).await],
        &second_voice,
    );
    let (status, body) = upload(&f.gran, &f.home, envelope).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    status_until(&mut toy, &["queued=2"]).await;
    qemu_run.kill().await.unwrap();
    phone.kill().await.unwrap();

    // The power goes half way through the save that follows the child's press (the
    // message played is taken off the queue): the toy starts with the state before it.
    let (mut qemu_run, mut toy, _) =
        power_on(&firmware, link_port, wires_port, &["cut-state=1"]).await;
    toy.send("press").await;
    let played = toy.expect("play ").await;
    assert!(
        played.starts_with(&wires::hex(first.as_bytes())),
        "the first message plays first"
    );
    toy.expect("power cut").await;
    qemu_run.kill().await.unwrap();
    let (_qemu, mut toy, _) = power_on(&firmware, link_port, wires_port, &[]).await;
    status_until(&mut toy, &[&household, "queued=2"]).await;
    toy.send("press").await;
    let played = toy.expect("play ").await;
    let (message, ogg) = played.split_once(' ').expect("play MESSAGE OGG");
    assert_eq!(
        message,
        wires::hex(first.as_bytes()),
        "the torn save left the message queued"
    );
    assert!(
        wires::decode_hex(ogg).unwrap() == VOICE,
        "its audio survived every restart"
    );
    status_until(&mut toy, &["queued=1"]).await;
}

/// Puts `image` into slot B of the toy's flash, and records it as `version` with
/// `counter`, installed and pending (`SlotInfo` of `listed`, the image it should be), as
/// the image does when it installs an update.
fn install_in_slot_b(firmware: &Firmware, image: &[u8], listed: &[u8], version: u32, counter: u32) {
    let mut bytes = std::fs::read(&firmware.flash).unwrap();
    let mut flash = MemFlash::new(&mut bytes, ());
    flash
        .erase(IMAGE_SLOTS[1], pawpost_firmware::flash::IMAGE_SLOT_LEN)
        .unwrap();
    flash.program(IMAGE_SLOTS[1], image).unwrap();
    let mut record = BootRecord::load(&flash).expect("a boot record");
    assert_eq!(record.inactive(), 1, "slot A runs");
    record.install(SlotInfo::of(version, counter, listed).unwrap());
    record.save(&mut flash).unwrap();
    std::fs::write(&firmware.flash, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the firmware image: scripts/firmware-test builds it and runs this test"]
async fn the_boot_stage_runs_only_whole_newer_images_and_keeps_the_old_one_until_confirmed() {
    let Some(firmware) = firmware() else {
        return;
    };
    let ports = (free_port(), free_port());
    let image = firmware.image.clone();
    let old = ("A version 1", "1 slot A confirmed");

    // A tampered image (one byte changed), a torn one (QEMU killed half way through
    // writing it: the rest of the slot still erased) and an older one never run.
    let mut tampered = image.clone();
    tampered[image.len() / 2] ^= 1;
    let torn = &image[..image.len() / 2];
    for (slot_b, counter) in [(&tampered[..], 2), (torn, 2), (&image[..], 0)] {
        install_in_slot_b(&firmware, slot_b, &image, 2, counter);
        let (mut qemu_run, _toy, _) = power_on_as(&firmware, ports, &[], old).await;
        qemu_run.kill().await.unwrap();
    }

    // A whole, newer image runs, but only for its tries while it does not confirm: then
    // the boot stage goes back to version 1.
    install_in_slot_b(&firmware, &image, &image, 2, 2);
    let new = ("B version 2", "2 slot B trying");
    for _ in 0..pawpost_firmware::flash::MAX_BOOT_TRIES {
        let (mut qemu_run, _toy, _) = power_on_as(&firmware, ports, &[], new).await;
        qemu_run.kill().await.unwrap();
    }
    let (mut qemu_run, _toy, _) = power_on_as(&firmware, ports, &[], old).await;
    qemu_run.kill().await.unwrap();

    // Installed again, it confirms once the toy authenticated to the server, and stays.
    install_in_slot_b(&firmware, &image, &image, 2, 2);
    let f = family().await;
    let (mut qemu_run, mut toy, _) = power_on_as(&firmware, ports, &[], new).await;
    let mut phone = relay(ports.0, &f.server.base, MTU);
    assert_eq!(toy.expect("link up ").await, MTU.to_string());
    pair(&f, &mut toy).await;
    assert_eq!(toy.expect("confirmed ").await, "2");
    qemu_run.kill().await.unwrap();
    phone.kill().await.unwrap();
    for _ in 0..=pawpost_firmware::flash::MAX_BOOT_TRIES {
        let (mut qemu_run, _toy, _) =
            power_on_as(&firmware, ports, &[], ("B version 2", "2 slot B confirmed")).await;
        qemu_run.kill().await.unwrap();
    }
}

/// The test release key's seed: scripts/firmware-test builds its public half into the
/// image (PAWPOST_RELEASE_KEYS).
const TEST_RELEASE_SEED: [u8; 32] = [0x5a; 32];

/// Publishes `image` to the family's server as version 2, counter 2 of the
/// `mps2-an386` board, signed with the test release key, as `pawpost release sign` and
/// `pawpost release publish` do.
async fn publish_version_2(f: &Family, image: &[u8]) {
    publish_version_2_signed(f, image, &TEST_RELEASE_SEED).await;
}

/// As [`publish_version_2`], signed with the release key of `seed` (which the family's
/// server must have been given).
async fn publish_version_2_signed(f: &Family, image: &[u8], seed: &[u8; 32]) {
    let key = pawpost_crypto::ReleaseKey::from_seed(seed);
    let manifest = pawpost_crypto::Manifest {
        board: "mps2-an386".into(),
        version: 2,
        counter: 2,
        size: u32::try_from(image.len()).unwrap(),
        sha256: pawpost_firmware::flash::sha256(image),
    }
    .encode()
    .unwrap();
    let (store, blobs) = pawpost_storage::open(f.server.storage.as_ref().unwrap())
        .await
        .unwrap();
    pawpost_server::services::releases::publish(
        store.as_ref(),
        blobs.as_ref(),
        &[key.public_key()],
        &manifest,
        &key.sign(&manifest),
        image,
    )
    .await
    .expect("the release is published");
}

/// The software version the parents' page lists for the toy `device`, once it is `want`.
async fn wait_version_shown(f: &Family, device: &str, want: u64) {
    let deadline = Instant::now() + STEP;
    loop {
        let (_, toys) = f
            .mum
            .get(&format!("/api/v1/households/{}/toys", f.home))
            .await;
        let shown = toys
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["device_id"] == device)
            .and_then(|t| t["software"]["version"].as_u64());
        if shown == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the parents see version {shown:?}, not {want}: {toys}"
        );
        sleep(Duration::from_millis(100)).await;
    }
}

/// A family on a server given `release_key` for releases, and the emulated toy paired
/// with it through the relay until the parents see "Software version 1"; then the toy and
/// the relay are switched off. Returns the family, the toy's two ports and its device id.
async fn paired_on_version_1(
    firmware: &Firmware,
    release_key: [u8; 32],
) -> (Family, (u16, u16), String) {
    let f =
        family_on(TestServer::start_with(move |c| c.release_public_keys = vec![release_key]).await)
            .await;
    let ports = (free_port(), free_port());
    let (mut qemu_run, mut toy, _) = power_on(firmware, ports.0, ports.1, &[]).await;
    let mut phone = relay(ports.0, &f.server.base, MTU);
    assert_eq!(toy.expect("link up ").await, MTU.to_string());
    let identity = pair(&f, &mut toy).await;
    let device = uuid::Uuid::from_bytes(identity.device_id.0).to_string();
    wait_version_shown(&f, &device, 1).await;
    phone.kill().await.unwrap();
    qemu_run.kill().await.unwrap();
    (f, ports, device)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the firmware image: scripts/firmware-test builds it and runs this test"]
async fn a_signed_update_from_version_1_to_2_applies_and_a_cut_one_leaves_version_1() {
    let Some(firmware) = firmware() else {
        return;
    };
    let release_keys = pawpost_testkit::require(
        "the release keys built into the image (scripts/firmware-test sets them)",
        "PAWPOST_RELEASE_KEYS",
    )
    .expect("set with the image");
    let key = pawpost_crypto::ReleaseKey::from_seed(&TEST_RELEASE_SEED).public_key();
    assert_eq!(
        release_keys,
        wires::hex(&key),
        "the image trusts the test release key"
    );
    let (f, ports, device) = paired_on_version_1(&firmware, key).await;
    // Version 2: the same code, released as version 2 with counter 2.
    publish_version_2(&f, &firmware.image).await;

    // The server offers it; the power goes half way through the 20th piece the toy
    // writes: version 1 runs on from slot A.
    let (mut qemu_run, mut toy, _) =
        power_on(&firmware, ports.0, ports.1, &["cut-update=20"]).await;
    let mut phone = relay(ports.0, &f.server.base, MTU);
    toy.expect_within("power cut", DOWNLOAD).await;
    qemu_run.kill().await.unwrap();
    phone.kill().await.unwrap();
    let (mut qemu_run, _toy, _) = power_on(&firmware, ports.0, ports.1, &[]).await;
    qemu_run.kill().await.unwrap();

    // Whole, it applies: the toy checks it, installs and restarts into slot B, reports
    // version 2 (the parents see it) and confirms the image once the server accepted it.
    let (_qemu, mut toy, _) = power_on(&firmware, ports.0, ports.1, &[]).await;
    let mut phone = relay(ports.0, &f.server.base, MTU);
    assert_eq!(
        toy.expect_within("restart for version ", DOWNLOAD).await,
        "2"
    );
    phone.kill().await.unwrap();
    assert_eq!(toy.expect("boot slot ").await, "B version 2");
    toy.send(&format!("seed {}", wires::hex(&rand_seed())))
        .await;
    assert_eq!(toy.expect("firmware ").await, "2 slot B trying");
    toy.expect("ready ").await;
    let _phone = relay(ports.0, &f.server.base, MTU);
    assert_eq!(toy.expect("confirmed ").await, "2");
    wait_version_shown(&f, &device, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the firmware image: scripts/firmware-test builds it and runs this test"]
async fn a_release_signed_by_a_key_the_image_does_not_trust_leaves_version_1() {
    let Some(firmware) = firmware() else {
        return;
    };
    // The server was given another release key than the one built into the image (a
    // stolen server key, or a release meant for other toys): it publishes and offers the
    // release, and the toy refuses it before it downloads any of it.
    let other_seed = [0x33; 32];
    let other = pawpost_crypto::ReleaseKey::from_seed(&other_seed).public_key();
    let (f, ports, device) = paired_on_version_1(&firmware, other).await;
    publish_version_2_signed(&f, &firmware.image, &other_seed).await;

    let (mut qemu_run, mut toy, _) = power_on(&firmware, ports.0, ports.1, &[]).await;
    let mut phone = relay(ports.0, &f.server.base, MTU);
    assert_eq!(
        toy.expect_within("report UpdateRefused ", DOWNLOAD).await,
        "{ reason: BadSignature }"
    );
    phone.kill().await.unwrap();
    qemu_run.kill().await.unwrap();
    assert!(
        !toy.heard
            .iter()
            .any(|line| line.starts_with("restart for version")),
        "the toy must not install a release it does not trust: {}",
        toy.tail()
    );
    // Started again, version 1 runs from slot A, and the parents still see version 1.
    let (_qemu, mut toy, _) = power_on(&firmware, ports.0, ports.1, &[]).await;
    let _phone = relay(ports.0, &f.server.base, MTU);
    assert_eq!(toy.expect("link up ").await, MTU.to_string());
    wait_version_shown(&f, &device, 1).await;
}

fn rand_seed() -> [u8; 32] {
    use pawpost_crypto::rand_core::Rng;
    let mut seed = [0u8; 32];
    pawpost_crypto::os_rng().fill_bytes(&mut seed);
    seed
}

/// Which way a packet crossed the link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Way {
    /// From the phone (the relay) to the toy.
    ToToy,
    /// From the toy to the phone.
    ToServer,
}

/// What the neighbour heard: every packet both ways, in order, and the raw bytes of each
/// way.
#[derive(Default)]
struct Heard {
    packets: Vec<(Way, Packet)>,
    to_toy: Vec<u8>,
    to_server: Vec<u8>,
}

/// A neighbour on the link: a process on the UART stream between QEMU and `pawpost
/// relay`. He passes every packet on, records it, and injects whole frames of his own,
/// numbered as the next fragments of their way so that they reach the channel.
struct Neighbour {
    /// Where the relay connects, as if to the toy.
    port: u16,
    heard: Arc<Mutex<Heard>>,
    to_toy: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
    to_server: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
    _tasks: Vec<AbortOnDrop>,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Neighbour {
    /// Listens for the relay; once it connects, connects to QEMU's link on `link_port`.
    fn start(link_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let heard = Arc::new(Mutex::new(Heard::default()));
        let (to_toy, toy_inject) = tokio::sync::mpsc::unbounded_channel();
        let (to_server, server_inject) = tokio::sync::mpsc::unbounded_channel();
        let recorder = heard.clone();
        let task = tokio::spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let (phone, _) = listener.accept().await.unwrap();
            let toy = connect(link_port).await;
            let (phone_in, phone_out) = phone.into_split();
            let (toy_in, toy_out) = toy.into_split();
            let down = tokio::spawn(carry(
                Way::ToToy,
                phone_in,
                toy_out,
                recorder.clone(),
                toy_inject,
            ));
            let _down = AbortOnDrop(down);
            carry(Way::ToServer, toy_in, phone_out, recorder, server_inject).await;
        });
        Self {
            port,
            heard,
            to_toy,
            to_server,
            _tasks: vec![AbortOnDrop(task)],
        }
    }

    fn inject(&self, way: Way, frame: Vec<u8>) {
        match way {
            Way::ToToy => self.to_toy.send(frame).unwrap(),
            Way::ToServer => self.to_server.send(frame).unwrap(),
        }
    }

    /// The messages he reassembled from what he passed on: (way, connection, bytes). A
    /// connection starts at the phone's `ServerUp`.
    fn messages(&self) -> Vec<(Way, usize, Vec<u8>)> {
        let heard = self.heard.lock().unwrap();
        let new = || Reassembler::new(MTU, MAX_CHANNEL_MESSAGE_LEN).unwrap();
        let (mut down, mut up) = (new(), new());
        let mut connection = 0;
        let mut messages = Vec::new();
        for (way, packet) in &heard.packets {
            match packet {
                Packet::ServerUp { .. } => {
                    connection += 1;
                    (down, up) = (new(), new());
                }
                Packet::Fragment(fragment) => {
                    let reassembler = match way {
                        Way::ToToy => &mut down,
                        Way::ToServer => &mut up,
                    };
                    if let Ok(Some(frame)) = reassembler.push(fragment) {
                        messages.push((*way, connection, frame.data.to_vec()));
                    }
                }
                _ => {}
            }
        }
        messages
    }
}

/// Carries one way of the link packet by packet, recording each, and writes the frames
/// injected for this way between two frames (never inside one, which would only make the
/// reassembler drop both), numbered after the last fragment passed on.
async fn carry(
    way: Way,
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    heard: Arc<Mutex<Heard>>,
    mut inject: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
) {
    let mut decoder = Decoder::new();
    let mut next_seq = 0u16;
    let mut inside_frame = false;
    let mut waiting: VecDeque<Vec<u8>> = VecDeque::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let mut out = Vec::new();
        tokio::select! {
            read = from.read(&mut buf) => {
                let n = match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let mut heard = heard.lock().unwrap();
                match way {
                    Way::ToToy => heard.to_toy.extend_from_slice(&buf[..n]),
                    Way::ToServer => heard.to_server.extend_from_slice(&buf[..n]),
                }
                for &byte in &buf[..n] {
                    let Some(packet) = decoder.push(byte) else {
                        continue;
                    };
                    if let Packet::Fragment(fragment) = &packet {
                        if fragment.len() >= 3 {
                            next_seq = u16::from_le_bytes([fragment[1], fragment[2]]).wrapping_add(1);
                            inside_frame = fragment[0] & pawpost_ble::FLAG_LAST == 0;
                        }
                    }
                    out.extend(packet.encode().unwrap());
                    heard.packets.push((way, packet));
                    if !inside_frame {
                        for frame in waiting.drain(..) {
                            out.extend(injected(&frame, &mut next_seq));
                        }
                    }
                }
            }
            Some(frame) = inject.recv() => {
                if inside_frame {
                    waiting.push_back(frame);
                } else {
                    out.extend(injected(&frame, &mut next_seq));
                }
            }
        }
        if to.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// `frame` as the link's packets, under the next sequence number of its way.
fn injected(frame: &[u8], next_seq: &mut u16) -> Vec<u8> {
    let mut fragmenter = Fragmenter::with_first_seq(MTU, *next_seq).unwrap();
    *next_seq = next_seq.wrapping_add(1);
    let mut out = Vec::new();
    for fragment in fragmenter.fragment(frame).unwrap() {
        out.extend(Packet::Fragment(fragment).encode().unwrap());
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Waits until the toy's channel stands on its current connection.
async fn channel_up(toy: &mut Wires) {
    status_until(toy, &["link=up", "channel=up"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the firmware image: scripts/firmware-test builds it and runs this test"]
async fn a_neighbour_on_the_link_reads_nothing_and_what_he_injects_or_replays_is_refused() {
    let Some(firmware) = firmware() else {
        return;
    };
    let f = family().await;
    let (link_port, wires_port) = (free_port(), free_port());
    let (_qemu, mut toy, _) = power_on(&firmware, link_port, wires_port, &[]).await;
    let neighbour = Neighbour::start(link_port);
    let _phone = relay(neighbour.port, &f.server.base, MTU);
    assert_eq!(toy.expect("link up ").await, MTU.to_string());
    let code_heard = toy.heard.len();
    let identity = pair(&f, &mut toy).await;
    let code = toy.heard[code_heard..]
        .iter()
        .find_map(|l| l.strip_prefix("code "))
        .unwrap()
        .to_owned();
    let confirmed = toy.heard[code_heard..]
        .iter()
        .find_map(|l| l.strip_prefix("confirm "))
        .unwrap()
        .to_owned();
    assert_eq!(toy.expect("link up ").await, MTU.to_string());
    let (_, _, first) = deliver_and_play(&f, &mut toy, &identity, VOICE).await;

    // He injects frames toward the toy, each numbered as the next fragment so that it
    // reaches the channel: a challenge in the clear (a frame of version 2), a delivery
    // in the clear, and a record the server sent on an earlier connection. Each ends the
    // channel, and the toy connects again.
    let earlier_record = neighbour
        .messages()
        .into_iter()
        .find(|(way, _, m)| *way == Way::ToToy && m.get(1) == Some(&KIND_RECORD))
        .map(|(_, _, m)| m)
        .expect("the server sent records");
    let (envelope, _) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[current_identity(&f, &identity).await],
        VOICE,
    );
    let forged = [
        Frame::Challenge {
            nonce: [9; pawpost_toy::NONCE_LEN],
            server_time_ms: 1_764_000_000_000,
        }
        .encode()
        .unwrap(),
        Frame::Deliver {
            envelope: &envelope,
        }
        .encode()
        .unwrap(),
        earlier_record,
    ];
    let heard_before = toy.heard.len();
    for frame in forged {
        channel_up(&mut toy).await;
        neighbour.inject(Way::ToToy, frame);
        toy.expect("report channel refused: ").await;
        assert_eq!(toy.expect("link up ").await, MTU.to_string());
    }

    // Toward the server: a record the toy sent on an earlier connection, and one of this
    // connection's records again. The server ends the connection; the phone opens a new
    // one.
    let earlier_up = neighbour
        .messages()
        .into_iter()
        .find(|(way, _, m)| *way == Way::ToServer && m.get(1) == Some(&KIND_RECORD))
        .map(|(_, _, m)| m)
        .expect("the toy sent records");
    channel_up(&mut toy).await;
    neighbour.inject(Way::ToServer, earlier_up);
    toy.expect("link down").await;
    assert_eq!(toy.expect("link up ").await, MTU.to_string());
    channel_up(&mut toy).await;
    // The toy's first record on this connection (its answer to the challenge), once he
    // has passed it on.
    let deadline = Instant::now() + STEP;
    let again = loop {
        let messages = neighbour.messages();
        let last_connection = messages.iter().map(|(_, c, _)| *c).max().unwrap();
        if let Some((_, _, record)) = messages.into_iter().find(|(way, c, m)| {
            *way == Way::ToServer && *c == last_connection && m.get(1) == Some(&KIND_RECORD)
        }) {
            break record;
        }
        assert!(Instant::now() < deadline, "the toy sends a record");
        sleep(Duration::from_millis(50)).await;
    };
    neighbour.inject(Way::ToServer, again);
    toy.expect("link down").await;
    assert_eq!(toy.expect("link up ").await, MTU.to_string());

    // Nothing he sent played, recorded or changed anything: the toy is still its
    // family's, with nothing queued.
    let during: Vec<&String> = toy.heard[heard_before..].iter().collect();
    for forbidden in ["play", "mic on", "say PairingStarted", "say Forgotten"] {
        assert!(
            !during.iter().any(|l| l.starts_with(forbidden)),
            "{forbidden}: {during:?}"
        );
    }
    status_until(
        &mut toy,
        &[
            &format!("household={}", wires::hex(&uuid_bytes(&f.home))),
            "queued=0",
            "pinned=yes",
            "channel=up",
        ],
    )
    .await;

    // And the family's next message is delivered and played, on the same link.
    let (_, _, second) = deliver_and_play(&f, &mut toy, &identity, VOICE).await;

    // What he heard: channel messages only (version 3; records of the four padded
    // sizes), no frame in the clear, and none of the secrets.
    let messages = neighbour.messages();
    assert!(messages.len() > 20, "he heard the whole story");
    for (way, connection, message) in &messages {
        assert_eq!(
            message[0],
            CHANNEL_VERSION,
            "{way:?} on connection {connection}: {:02x?}",
            &message[..message.len().min(8)]
        );
        assert!(Frame::decode(message).is_err(), "a frame in the clear");
        if message[1] == KIND_RECORD {
            assert!(
                RECORD_SIZES.contains(&(message.len() - 2 - TAG_LEN)),
                "a record of {} bytes",
                message.len()
            );
        }
    }
    let roster = latest_roster(&f.mum, &f.home).await.encode();
    let code_digits: Vec<u8> = code.bytes().map(|b| b - b'0').collect();
    let number: Vec<u8> = confirmed.bytes().map(|b| b - b'0').collect();
    let confirm_frame = Frame::ConfirmPairing {
        number: pawpost_toy::ConfirmationNumber::new(number.clone().try_into().unwrap()).unwrap(),
    }
    .encode()
    .unwrap();
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("the first message's id", first.as_bytes().to_vec()),
        ("the second message's id", second.as_bytes().to_vec()),
        ("the toy's identity", identity.encode().to_vec()),
        ("the toy's device id", identity.device_id.0.to_vec()),
        ("the household's id", uuid_bytes(&f.home).to_vec()),
        (
            "the roster's signature",
            roster[roster.len() - 64..].to_vec(),
        ),
        ("the pairing code's digits", code_digits),
        ("the pairing code as text", code.as_bytes().to_vec()),
        ("the ConfirmPairing frame", confirm_frame),
        ("the audio", VOICE[..32].to_vec()),
    ];
    let heard = neighbour.heard.lock().unwrap();
    for (way, bytes) in [
        ("to the toy", &heard.to_toy),
        ("to the server", &heard.to_server),
    ] {
        assert!(bytes.len() > 1_000, "{way}: {} bytes", bytes.len());
        for (what, secret) in &secrets {
            assert!(!contains(bytes, secret), "the neighbour saw {what} {way}");
        }
    }
    for (_, _, message) in &messages {
        for (what, secret) in &secrets {
            assert!(!contains(message, secret), "the neighbour saw {what}");
        }
    }
}

/// The man in the middle's side of the toy's link: he is the toy's phone.
struct PhoneSide {
    read: OwnedReadHalf,
    write: OwnedWriteHalf,
    decoder: Decoder,
    reassembler: Reassembler,
    fragmenter: Fragmenter,
    pending: VecDeque<Vec<u8>>,
}

impl PhoneSide {
    async fn open(link_port: u16) -> Self {
        let (read, mut write) = connect(link_port).await.into_split();
        write
            .write_all(&Packet::ServerUp { mtu: MTU }.encode().unwrap())
            .await
            .unwrap();
        Self {
            read,
            write,
            decoder: Decoder::new(),
            reassembler: Reassembler::new(MTU, MAX_CHANNEL_MESSAGE_LEN).unwrap(),
            fragmenter: Fragmenter::new(MTU).unwrap(),
            pending: VecDeque::new(),
        }
    }

    /// The toy's next message (cancel-safe: a read's bytes are taken whole).
    async fn next(&mut self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 4096];
        loop {
            if let Some(message) = self.pending.pop_front() {
                return Some(message);
            }
            let n = self.read.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            for &byte in &buf[..n] {
                if let Some(Packet::Fragment(fragment)) = self.decoder.push(byte) {
                    if let Ok(Some(frame)) = self.reassembler.push(&fragment) {
                        self.pending.push_back(frame.data.to_vec());
                    }
                }
            }
        }
    }

    async fn send(&mut self, message: &[u8]) {
        let mut out = Vec::new();
        for fragment in self.fragmenter.fragment(message).unwrap() {
            out.extend(Packet::Fragment(fragment).encode().unwrap());
        }
        self.write.write_all(&out).await.unwrap();
    }
}

fn random_key() -> StaticKey {
    StaticKey::from_secret(rand_seed())
}

/// A man in the middle at pairing: he takes the phone's place on the toy's link, ends the
/// toy's pairing handshake with a key of his own, runs his own pairing handshake, as a
/// toy, with the server's channel, and passes every frame on between the two channels
/// (reading each).
async fn man_in_the_middle(link_port: u16, server: String) {
    let mut toy = PhoneSide::open(link_port).await;
    let first = toy.next().await.expect("the toy's first handshake message");
    let mut reply = Vec::new();
    let Ok(Accepted::Pairing(his_server_side)) = accept(
        &random_key(),
        &random_key(),
        rand_seed(),
        &first,
        &mut reply,
    ) else {
        panic!("a new toy opens a pairing handshake")
    };
    toy.send(&reply).await;
    let last = toy.next().await.expect("the toy's last handshake message");
    let mut to_toy = his_server_side
        .read_final(&last)
        .expect("the toy takes his key")
        .channel;

    let url = format!(
        "{}{}",
        server.replace("http://", "ws://"),
        pawpost_toy_sim::TOY_CHANNEL_PATH
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let mut his_first = Vec::new();
    let his_toy_side =
        ToyPairing::start(&random_key(), &random_key(), rand_seed(), &mut his_first).unwrap();
    ws.send(Message::Binary(his_first.into())).await.unwrap();
    let answer = loop {
        match ws.next().await {
            Some(Ok(Message::Binary(bytes))) => break bytes.to_vec(),
            Some(Ok(_)) => continue,
            other => panic!("the server answers his handshake: {other:?}"),
        }
    };
    let mut his_last = Vec::new();
    let mut to_server = his_toy_side
        .read_reply(&answer, &mut his_last)
        .expect("the server takes his handshake")
        .channel;
    ws.send(Message::Binary(his_last.into())).await.unwrap();
    loop {
        tokio::select! {
            up = toy.next() => {
                let Some(record) = up else { return };
                let frame = to_toy.open(&record).expect("the toy's record opens with his key");
                let mut sealed = Vec::new();
                to_server.seal(&frame, &mut sealed).unwrap();
                if ws.send(Message::Binary(sealed.into())).await.is_err() {
                    return;
                }
            }
            down = ws.next() => match down {
                Some(Ok(Message::Binary(record))) => {
                    let frame = to_server.open(&record).expect("the server's record opens");
                    let mut sealed = Vec::new();
                    to_toy.seal(&frame, &mut sealed).unwrap();
                    toy.send(&sealed).await;
                }
                Some(Ok(_)) => {}
                _ => return,
            },
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the firmware image: scripts/firmware-test builds it and runs this test"]
async fn a_man_in_the_middle_at_pairing_makes_the_numbers_differ_and_pairing_fails() {
    let Some(firmware) = firmware() else {
        return;
    };
    let f = family().await;
    // His chance that the toy's number and the app's agree is one in a thousand each
    // time; three agreeing pairings in a row would mean they are not bound.
    for _ in 0..3 {
        let (link_port, wires_port) = (free_port(), free_port());
        std::fs::write(&firmware.flash, factory_flash(&firmware.image, 1)).unwrap();
        let (mut qemu_run, mut toy, _) = power_on(&firmware, link_port, wires_port, &[]).await;
        let mitm = AbortOnDrop(tokio::spawn(man_in_the_middle(
            link_port,
            f.server.base.clone(),
        )));
        assert_eq!(toy.expect("link up ").await, MTU.to_string());
        toy.expect("took Challenge").await;
        toy.send("long").await;
        let code = toy.expect("code ").await;
        let (status, claim) = f
            .mum
            .post(
                &format!("/api/v1/households/{}/toys", f.home),
                json!({"code": code}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{claim}");
        let shown = claim["confirmation"].as_str().unwrap().to_owned();
        let spoken = toy.expect("confirm ").await;
        if spoken == shown {
            drop(mitm);
            qemu_run.kill().await.unwrap();
            continue;
        }
        // Mum sees two numbers and does not press. Were the paw pressed anyway, the
        // toy's number, passed on by him, is refused by the server.
        toy.send("press").await;
        toy.expect("took Error").await;
        status_until(&mut toy, &["household=none", "pinned=no"]).await;
        let (_, toys) = f
            .mum
            .get(&format!("/api/v1/households/{}/toys", f.home))
            .await;
        assert_eq!(toys, json!([]), "nothing paired");
        let heard = toy.heard.join("\n");
        assert!(!heard.contains("paired "), "{heard}");
        qemu_run.kill().await.unwrap();
        return;
    }
    panic!("the toy's number and the app's agreed three times with a man in the middle");
}
