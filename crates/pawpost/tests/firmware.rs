//! The toy's firmware in QEMU (mps2-an386, Cortex-M4F), end to end with a real server:
//! `pawpost relay` carries its emulated Bluetooth link (UART0) to the server's toy
//! WebSocket, and this harness is the wires inside the toy (UART1): it presses the paw,
//! hears what the toy says and reads what its speaker plays.
//!
//! scripts/firmware-test builds the image and its boot stage and runs this with
//! PAWPOST_FIRMWARE_IMAGE (the image's bytes), PAWPOST_FIRMWARE_BOOT (the boot stage QEMU
//! starts) and PAWPOST_FIRMWARE_BUILD_ID set (the id the image must announce, so that an
//! old image is never taken for the one just built). Each story programs a flash file as a
//! factory would (the image in slot A, a boot record naming it), which QEMU's toy keeps
//! its state and queued audio in, and which survives QEMU being killed. It prints the heap the image used (`firmware
//! heap:` lines) for BENCHMARKS.md; with PAWPOST_FIRMWARE_ICOUNT=shift=0 QEMU counts
//! instructions, and the milliseconds the toy took over a message are millions of them.
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use pawpost_crypto::{MediaType, Member, MemberStatus, PublicIdentity, Role, SignedRoster};
use pawpost_firmware::flash::{BootRecord, Flash, MemFlash, SlotInfo, FLASH_LEN, IMAGE_SLOTS};
use pawpost_firmware::link::Packet;
use pawpost_firmware::wires;
use pawpost_testkit::server::family::{
    download, family, family_on, new_device, publish, sealed, upload, uuid_bytes, Family, VOICE,
};
use pawpost_testkit::server::toys::latest_roster;
use pawpost_testkit::server::TestServer;
use pawpost_toy::Frame;
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::{sleep, Instant};

/// How long one step may take in the emulator (the crypto runs in emulated Thumb code).
const STEP: Duration = Duration::from_secs(60);
/// How long QEMU may take to open its UART sockets.
const BOOT: Duration = Duration::from_secs(20);
/// The link's ATT MTU for the long message and the attack (the relay's default).
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
        let deadline = Instant::now() + STEP;
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

/// Long press, code, Mum types it, the toy speaks the number her app shows, a press
/// confirms, Mum publishes a roster listing the toy. Returns its identity.
async fn pair(f: &Family, toy: &mut Wires) -> PublicIdentity {
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
        "the app shows what the toy says"
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
/// press plays it, and the speaker gets exactly `voice`. Returns the heap lines.
async fn deliver_and_play(
    f: &Family,
    toy: &mut Wires,
    identity: &PublicIdentity,
    voice: &[u8],
) -> (String, String) {
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
    // The message comes in chunks (protocol version 2): the toy checks the prefix
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
    (received, after_play)
}

/// What a CloudPets-style attacker on the radio sends: a challenge of its own, a message
/// with one byte of its ciphertext changed, a message sealed by someone outside the
/// family, one frame of every type, then a fragment with a broken CRC.
fn attack(f: &Family, identity: &PublicIdentity) -> Vec<Packet> {
    let mut frames = vec![Frame::Challenge {
        nonce: [9; pawpost_toy::NONCE_LEN],
        server_time_ms: 1_764_000_000_000,
    }
    .encode()
    .unwrap()];
    let (mut tampered, _) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[*identity],
        VOICE,
    );
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    frames.push(
        Frame::Deliver {
            envelope: &tampered,
        }
        .encode()
        .unwrap(),
    );
    let outsider = new_device();
    let (strange, _) = sealed(&outsider, &f.home, MediaType::OggOpus, &[*identity], VOICE);
    frames.push(Frame::Deliver { envelope: &strange }.encode().unwrap());
    let roster = f.roster.encode();
    for frame in pawpost_protocol::testing::one_of_each(*identity, &tampered, &roster) {
        frames.push(frame.encode().unwrap());
    }
    let mut fragmenter = pawpost_ble::Fragmenter::new(MTU).unwrap();
    let mut packets = vec![Packet::ServerUp { mtu: MTU }];
    for frame in &frames {
        packets.extend(fragmenter.fragment(frame).unwrap().map(Packet::Fragment));
    }
    let mut broken: Vec<Vec<u8>> = fragmenter.fragment(&frames[1]).unwrap().collect();
    let last = broken.last_mut().unwrap();
    let end = last.len() - 1;
    last[end] ^= 0xff;
    packets.extend(broken.into_iter().map(Packet::Fragment));
    packets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the firmware image: scripts/firmware-test builds it and runs this test"]
async fn the_firmware_in_qemu_pairs_plays_a_sealed_message_and_refuses_forged_frames() {
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
    let (received, played) = deliver_and_play(&f, &mut toy, &identity, VOICE).await;
    println!(
        "firmware heap: {}-byte message: received and opened: {received}; played: {played}",
        VOICE.len()
    );

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
    let mut phone = relay(link_port, &f.server.base, MTU);
    assert_eq!(toy.expect("link up ").await, MTU.to_string());
    let long = long_voice(28_000);
    let (received, played) = deliver_and_play(&f, &mut toy, &identity, &long).await;
    println!(
        "firmware heap: {}-byte message (28 s): received and opened: {received}; played: {played}",
        long.len()
    );

    // The attacker takes the phone's place on the link.
    phone.kill().await.unwrap();
    let mut link = connect(link_port).await;
    let heard_before = toy.heard.len();
    for packet in attack(&f, &identity) {
        link.write_all(&packet.encode().unwrap()).await.unwrap();
    }
    toy.expect("report fragment refused").await;
    let during: Vec<&String> = toy.heard[heard_before..].iter().collect();
    let said = |prefix: &str| during.iter().filter(|l| l.starts_with(prefix)).count();
    assert_eq!(
        said("play"),
        0,
        "nothing on the link plays sound: {during:?}"
    );
    assert_eq!(
        said("mic on"),
        0,
        "nothing on the link starts the microphone: {during:?}"
    );
    assert!(
        said("report MessageDropped") >= 2,
        "the tampered and the outsider's messages are refused: {during:?}"
    );
    toy.send("status").await;
    let status = toy.expect("status ").await;
    assert!(
        status.contains(&format!("household={}", wires::hex(&uuid_bytes(&f.home))))
            && status.contains("queued=0"),
        "the toy stays in its household with nothing queued: {status}"
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
    let key = pawpost_crypto::ReleaseKey::from_seed(&TEST_RELEASE_SEED);
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
    let f =
        family_on(TestServer::start_with(move |c| c.release_public_keys = vec![key]).await).await;
    let ports = (free_port(), free_port());
    let (mut qemu_run, mut toy, _) = power_on(&firmware, ports.0, ports.1, &[]).await;
    let mut phone = relay(ports.0, &f.server.base, MTU);
    assert_eq!(toy.expect("link up ").await, MTU.to_string());
    let identity = pair(&f, &mut toy).await;
    let device = uuid::Uuid::from_bytes(identity.device_id.0).to_string();
    wait_version_shown(&f, &device, 1).await;
    phone.kill().await.unwrap();
    qemu_run.kill().await.unwrap();
    // Version 2: the same code, released as version 2 with counter 2.
    publish_version_2(&f, &firmware.image).await;

    // The server offers it; the power goes half way through the 20th piece the toy
    // writes: version 1 runs on from slot A.
    let (mut qemu_run, mut toy, _) =
        power_on(&firmware, ports.0, ports.1, &["cut-update=20"]).await;
    let mut phone = relay(ports.0, &f.server.base, MTU);
    toy.expect("power cut").await;
    qemu_run.kill().await.unwrap();
    phone.kill().await.unwrap();
    let (mut qemu_run, _toy, _) = power_on(&firmware, ports.0, ports.1, &[]).await;
    qemu_run.kill().await.unwrap();

    // Whole, it applies: the toy checks it, installs and restarts into slot B, reports
    // version 2 (the parents see it) and confirms the image once the server accepted it.
    let (_qemu, mut toy, _) = power_on(&firmware, ports.0, ports.1, &[]).await;
    let mut phone = relay(ports.0, &f.server.base, MTU);
    assert_eq!(toy.expect("restart for version ").await, "2");
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

fn rand_seed() -> [u8; 32] {
    use pawpost_crypto::rand_core::Rng;
    let mut seed = [0u8; 32];
    pawpost_crypto::os_rng().fill_bytes(&mut seed);
    seed
}
