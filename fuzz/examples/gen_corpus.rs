//! Writes the committed seed corpus, `fuzz/corpus/<target>/`, from the repository's own test
//! vectors, media fixtures and frames made with the toy crate. Deterministic: running it again
//! gives the same files.
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use pawpost_crypto::rand_core::SeedableRng;
use pawpost_crypto::{
    seal, DeviceKeys, MediaType, MemberStatus, MessageId, MessageParams, PublicIdentity,
    SignedRoster,
};
use pawpost_fuzz::{
    encode_ops, household_id, join_ble_input, paired_genesis, paired_toy, run_rng, run_toy,
    tls_records_pair, vector_device, Op, NOON_UTC_MS, TLS_SUITES,
};
use pawpost_media::OggOpusWriter;
use pawpost_toy::signing::sign_approval;
use pawpost_toy::{Action, Frame, PairingCode, RejectReason, RosterRefusal, ServerError, Toy};
use rand_chacha::ChaCha20Rng;
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn json(name: &str) -> Value {
    let path = repo().join("test-vectors").join(name);
    serde_json::from_str(&fs::read_to_string(&path).expect("test vector file")).unwrap()
}

fn bytes(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("a hex string")).expect("hex")
}

struct Corpus {
    dir: PathBuf,
    count: usize,
    size: usize,
}

impl Corpus {
    fn new(target: &str) -> Self {
        let dir = repo().join("fuzz").join("corpus").join(target);
        if dir.exists() {
            fs::remove_dir_all(&dir).unwrap();
        }
        fs::create_dir_all(&dir).unwrap();
        Self {
            dir,
            count: 0,
            size: 0,
        }
    }

    fn add(&mut self, name: &str, data: &[u8]) {
        let name: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        fs::write(self.dir.join(format!("{:02}-{name}", self.count)), data).unwrap();
        self.count += 1;
        self.size += data.len();
    }
}

impl Drop for Corpus {
    fn drop(&mut self) {
        println!(
            "{:<40} {:>3} files {:>8} bytes",
            self.dir.display(),
            self.count,
            self.size
        );
    }
}

fn envelope_corpus() {
    let v = json("envelope-v1.json");
    let mut c = Corpus::new("envelope");
    for m in v["messages"].as_array().unwrap() {
        c.add(m["name"].as_str().unwrap(), &bytes(&m["envelope"]));
    }
    for m in v["invalid_envelopes"].as_array().unwrap() {
        c.add(m["name"].as_str().unwrap(), &bytes(&m["envelope"]));
    }
}

fn roster_corpus() {
    let v = json("roster-v1.json");
    let mut c = Corpus::new("roster");
    for r in v["rosters"].as_array().unwrap() {
        let name = r["name"].as_str().unwrap();
        c.add(&format!("{name}-signed"), &bytes(&r["signed_roster"]));
        c.add(&format!("{name}-body"), &bytes(&r["roster_bytes"]));
    }
    for r in v["invalid_signed_rosters"].as_array().unwrap() {
        c.add(r["name"].as_str().unwrap(), &bytes(&r["signed_roster"]));
    }
    c.add("toy-household-genesis", &paired_genesis().encode());
    // The last version a roster can have: it has no successor.
    let mut last = bytes(&v["rosters"][1]["roster_bytes"]);
    last[17..25].copy_from_slice(&[0xff; 8]);
    c.add("v2-body-at-u64-max", &last);
}

fn identity_corpus() {
    let v = json("identity-v1.json");
    let mut c = Corpus::new("identity");
    for d in v["devices"].as_array().unwrap() {
        let name = d["name"].as_str().unwrap();
        c.add(&format!("{name}-public"), &bytes(&d["public_identity"]));
        c.add(&format!("{name}-secret"), &bytes(&d["device_secret"]));
    }
    for d in v["invalid_public_identities"].as_array().unwrap() {
        c.add(d["name"].as_str().unwrap(), &bytes(&d["bytes"]));
    }
}

/// About `ms` milliseconds of 20 ms CELT packets.
fn voice(ms: u32) -> Vec<u8> {
    let mut writer = OggOpusWriter::new(1, 312, 0x5EED).unwrap();
    for _ in 0..(ms / 20) {
        writer.push_packet(&[31 << 3, 1, 2, 3]).unwrap();
    }
    writer.finish(0).unwrap()
}

fn ogg_corpus() {
    let mut c = Corpus::new("ogg_opus");
    let fixtures = repo().join("crates/pawpost-media/tests/fixtures");
    let mut names: Vec<_> = fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".ogg"))
        .collect();
    names.sort();
    for name in names {
        c.add(&name, &fs::read(fixtures.join(&name)).unwrap());
    }
    c.add("writer-voice-1s", &voice(1000));
    c.add("writer-voice-100ms", &voice(100));
}

/// A voice message sealed by `sender` for the fuzz targets' paired toy and mum.
fn message(sender: &DeviceKeys, toy: &PublicIdentity, n: u8, created_at_ms: u64) -> Vec<u8> {
    let mut id = [0x3e; 16];
    id[6] = 0x40;
    id[8] = 0x80;
    id[15] = n;
    let recipients = [*toy, vector_device("mum").public()];
    let params = MessageParams {
        message_id: MessageId(id),
        household_id: household_id(),
        created_at_ms,
        media_type: MediaType::OggOpus,
        duration_ms: 400,
        recipients: &recipients,
    };
    seal(
        &mut ChaCha20Rng::from_seed([n; 32]),
        sender,
        &params,
        &voice(400),
    )
    .unwrap()
}

fn message_id_of(envelope: &[u8]) -> MessageId {
    pawpost_crypto::Envelope::parse(envelope)
        .unwrap()
        .header()
        .message_id
}

/// One example of every frame, with real envelopes and rosters for the paired toy.
fn frames(toy: &Toy) -> Vec<(&'static str, Vec<u8>)> {
    let toy_id = toy.identity();
    let grandma = vector_device("grandma");
    let dad = vector_device("dad");
    let envelope = message(&grandma, &toy_id, 1, NOON_UTC_MS - 3_600_000);
    let message_id = message_id_of(&envelope);
    let genesis = paired_genesis().encode();
    let v2 = SignedRoster::sign(
        &paired_genesis().unverified_roster().next_version(),
        &vector_device("mum"),
    )
    .unwrap()
    .encode();
    let approval = sign_approval(&dad, household_id(), message_id);
    let frames = [
        (
            "pair-request",
            Frame::PairRequest {
                identity: toy_id,
                signature: [7; 64],
            },
        ),
        (
            "auth",
            Frame::Auth {
                device_id: toy_id.device_id,
                roster_version: 1,
                signature: [8; 64],
            },
        ),
        (
            "rotate-key",
            Frame::RotateKey {
                new_identity: grandma.public(),
                signature_by_old_key: [9; 64],
            },
        ),
        ("delivered", Frame::Delivered { message_id }),
        (
            "rejected",
            Frame::Rejected {
                message_id,
                reason: RejectReason::QueueFull,
            },
        ),
        ("played", Frame::Played { message_id }),
        (
            "upload",
            Frame::Upload {
                envelope: &envelope,
            },
        ),
        (
            "roster-rejected",
            Frame::RosterRejected {
                version: 2,
                reason: RosterRefusal::StaleVersion,
            },
        ),
        (
            "challenge",
            Frame::Challenge {
                nonce: [0x11; 32],
                server_time_ms: NOON_UTC_MS,
            },
        ),
        (
            "pair-code",
            Frame::PairCode {
                code: PairingCode::from_number(482_913).unwrap(),
                expires_in_s: 600,
            },
        ),
        (
            "paired",
            Frame::Paired {
                household_id: household_id(),
                signed_roster: &genesis,
            },
        ),
        ("roster-update", Frame::RosterUpdate { signed_roster: &v2 }),
        (
            "deliver",
            Frame::Deliver {
                envelope: &envelope,
            },
        ),
        (
            "approval",
            Frame::Approval {
                message_id,
                approver: dad.device_id(),
                signature: approval,
            },
        ),
        ("upload-ack", Frame::UploadAck { message_id }),
        (
            "rotate-ack",
            Frame::RotateAck {
                ed25519_pub: toy_id.ed25519_pub,
            },
        ),
        (
            "error",
            Frame::Error {
                code: ServerError::AuthFailed,
            },
        ),
    ];
    frames
        .into_iter()
        .map(|(name, f)| (name, f.encode().unwrap()))
        .collect()
}

fn toy_frame_corpus(frames: &[(&str, Vec<u8>)]) {
    let mut c = Corpus::new("toy_frame");
    for (name, bytes) in frames {
        c.add(name, bytes);
    }
}

/// `payload` as a client's masked WebSocket frame with first byte `first`.
fn masked_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![first];
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len if len <= usize::from(u16::MAX) => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// The toy's frames as it sends them on its WebSocket, whole and in fragments, with a
/// ping and a close; the first byte chooses the size of the pieces they are read in.
fn toy_websocket_corpus(frames: &[(&str, Vec<u8>)]) {
    let mut c = Corpus::new("toy_websocket");
    for (i, (name, bytes)) in frames.iter().enumerate() {
        let mut data = vec![i as u8];
        data.extend(masked_frame(0x89, b"ping"));
        data.extend(masked_frame(0x82, bytes));
        c.add(&format!("{name}-whole"), &data);
        let half = bytes.len() / 2;
        let mut data = vec![(i * 7) as u8];
        data.extend(masked_frame(0x02, &bytes[..half]));
        data.extend(masked_frame(0x80, &bytes[half..]));
        data.extend(masked_frame(0x88, &[0x03, 0xe8]));
        c.add(&format!("{name}-fragments"), &data);
    }
}

/// The toy's WebSocket frames as TLS 1.3 records sealed with the fixed keys of the target,
/// with every suite and in pieces of several sizes, and a closing alert.
fn tls_records_corpus(frames: &[(&str, Vec<u8>)]) {
    let mut c = Corpus::new("tls_records");
    for (i, (name, frame)) in frames.iter().enumerate() {
        let choice = (i % 3 + 3 * (i * 5 % 64)) as u8;
        let (mut client, _) = tls_records_pair(TLS_SUITES[usize::from(choice % 3)]);
        let mut data = vec![choice];
        client.seal(&masked_frame(0x82, frame), &mut data).unwrap();
        client
            .seal(&masked_frame(0x89, b"ping"), &mut data)
            .unwrap();
        c.add(&format!("{name}-records"), &data);
        client.seal_close_notify(&mut data).unwrap();
        c.add(&format!("{name}-then-close"), &data);
    }
}

fn ble_corpus(frames: &[(&str, Vec<u8>)]) {
    let mut c = Corpus::new("ble_reassembly");
    let mut seq = 0u16;
    for (i, (name, frame)) in frames.iter().enumerate() {
        let mtu = [23, 185, 517][i % 3];
        let mut fragmenter = pawpost_ble::Fragmenter::with_first_seq(mtu, seq).unwrap();
        seq = seq.wrapping_add(1);
        let fragments: Vec<Vec<u8>> = fragmenter.fragment(frame).unwrap().collect();
        if fragments.len() > 64 {
            continue;
        }
        c.add(
            &format!("{name}-mtu{mtu}"),
            &join_ble_input(mtu, &fragments),
        );
    }
    // Damage the reassembler must detect: a fragment twice, two fragments swapped, and a
    // frame interleaved with the next one.
    let (_, challenge) = &frames[8];
    let (_, approval) = &frames[13];
    let mut fragmenter = pawpost_ble::Fragmenter::new(23).unwrap();
    let a: Vec<Vec<u8>> = fragmenter.fragment(challenge).unwrap().collect();
    let b: Vec<Vec<u8>> = fragmenter.fragment(approval).unwrap().collect();
    let mut dup = a.clone();
    dup.insert(1, a[1].clone());
    c.add("duplicate-fragment-mtu23", &join_ble_input(23, &dup));
    let mut swapped = a.clone();
    swapped.swap(1, 2);
    c.add("swapped-fragments-mtu23", &join_ble_input(23, &swapped));
    let mut interleaved = Vec::new();
    for (x, y) in a.iter().zip(&b) {
        interleaved.push(x.clone());
        interleaved.push(y.clone());
    }
    c.add(
        "interleaved-frames-mtu23",
        &join_ble_input(23, &interleaved),
    );
    let mut both = a.clone();
    both.extend(b.iter().cloned());
    both.extend(a.iter().cloned());
    c.add("two-frames-then-replay-mtu23", &join_ble_input(23, &both));
}

fn frame_named<'a>(frames: &'a [(&str, Vec<u8>)], name: &str) -> &'a [u8] {
    &frames.iter().find(|(n, _)| *n == name).unwrap().1
}

fn toy_state_corpus(toy: &Toy, frames: &[(&str, Vec<u8>)]) {
    let mut c = Corpus::new("toy_state_machine");
    let toy_id = toy.identity();
    let mum = vector_device("mum");
    let deliver = frame_named(frames, "deliver");
    let approval = frame_named(frames, "approval");
    let genesis = paired_genesis();

    let roster_update = |edit: &dyn Fn(&mut pawpost_crypto::Roster)| {
        let mut next = genesis.unverified_roster().next_version();
        edit(&mut next);
        let signed = SignedRoster::sign(&next, &mum).unwrap().encode();
        Frame::RosterUpdate {
            signed_roster: &signed,
        }
        .encode()
        .unwrap()
    };
    let approvals_off = roster_update(&|r| r.settings.parent_approves_before_play = false);
    let grandma_blocked = roster_update(&|r| {
        let grandma = vector_device("grandma").device_id();
        for m in &mut r.members {
            if m.device_id == grandma {
                m.status = MemberStatus::Blocked;
            }
        }
    });
    let toy_removed = roster_update(&|r| r.members.retain(|m| m.device_id != toy_id.device_id));
    let deliver_from = |sender: &str, n: u8| {
        let envelope = message(&vector_device(sender), &toy_id, n, NOON_UTC_MS - 60_000);
        Frame::Deliver {
            envelope: &envelope,
        }
        .encode()
        .unwrap()
    };
    let from_uncle = deliver_from("uncle", 2);
    let from_outsider = deliver_from("outsider", 3);
    let from_mum = deliver_from("mum", 4);
    let challenge = frame_named(frames, "challenge");
    let pair_code = frame_named(frames, "pair-code");
    let paired = frame_named(frames, "paired");
    let error = frame_named(frames, "error");

    // The seeds reach deep: a real message is accepted, and the approval releases it.
    let sent = |ops: &[Op<'_>]| -> Vec<pawpost_toy::FrameType> {
        run_toy(ops)
            .iter()
            .filter_map(|a| match a {
                Action::SendFrame(bytes) => Some(Frame::decode(bytes).unwrap().frame_type()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        sent(&[Op::Frame(deliver)]),
        [pawpost_toy::FrameType::Delivered]
    );
    let approved = run_toy(&[Op::Frame(deliver), Op::Frame(approval)]);
    assert!(
        !approved.iter().any(|a| matches!(
            a,
            Action::Report(pawpost_toy::Report::ApprovalRefused { .. })
        )),
        "{approved:?}"
    );
    assert!(sent(&[Op::Frame(&from_uncle)]).contains(&pawpost_toy::FrameType::Rejected));
    c.add("deliver", &encode_ops(&[Op::Frame(deliver)]));
    c.add(
        "deliver-approve",
        &encode_ops(&[Op::Frame(deliver), Op::Frame(approval)]),
    );
    c.add(
        "deliver-twice",
        &encode_ops(&[Op::Frame(deliver), Op::Frame(deliver)]),
    );
    c.add(
        "approvals-off-then-deliver",
        &encode_ops(&[
            Op::Frame(&approvals_off),
            Op::Frame(deliver),
            Op::Frame(&from_mum),
        ]),
    );
    c.add(
        "deliver-then-block-sender",
        &encode_ops(&[Op::Frame(deliver), Op::Frame(&grandma_blocked)]),
    );
    c.add(
        "blocked-and-outsider-senders",
        &encode_ops(&[Op::Frame(&from_uncle), Op::Frame(&from_outsider)]),
    );
    c.add(
        "removed-then-pair-again",
        &encode_ops(&[
            Op::Frame(&toy_removed),
            Op::LongPress,
            Op::Connect,
            Op::Frame(challenge),
            Op::Frame(pair_code),
            Op::Frame(paired),
        ]),
    );
    c.add(
        "offline-deliver-then-reconnect",
        &encode_ops(&[
            Op::Disconnect,
            Op::Frame(deliver),
            Op::Wait(5_000),
            Op::Connect,
            Op::Frame(challenge),
            Op::Frame(error),
        ]),
    );
    c.add(
        "quiet-hours-evening",
        &encode_ops(&[
            Op::Frame(&approvals_off),
            Op::Frame(deliver),
            Op::Wait(8 * 3_600_000),
        ]),
    );

    // Thirty-one days on, the toy rotates its key; answer with the key it sent.
    let wait = [Op::Wait(31 * 24 * 3_600_000)];
    let actions = run_toy(&wait);
    let new_key = actions.iter().find_map(|a| match a {
        Action::SendFrame(bytes) => match Frame::decode(bytes).unwrap() {
            Frame::RotateKey { new_identity, .. } => Some(new_identity.ed25519_pub),
            _ => None,
        },
        _ => None,
    });
    let new_key = new_key.expect("the toy rotates after 30 days");
    let ack = Frame::RotateAck {
        ed25519_pub: new_key,
    }
    .encode()
    .unwrap();
    c.add(
        "rotate-ack",
        &encode_ops(&[wait[0].clone(), Op::Frame(&ack)]),
    );
    c.add(
        "rotate-auth-failed",
        &encode_ops(&[wait[0].clone(), Op::Frame(error), Op::Frame(challenge)]),
    );
    for (name, frame) in frames {
        c.add(&format!("single-{name}"), &encode_ops(&[Op::Frame(frame)]));
    }
}

fn main() {
    envelope_corpus();
    roster_corpus();
    identity_corpus();
    ogg_corpus();
    let toy = paired_toy(&mut run_rng());
    let frames = frames(&toy);
    toy_frame_corpus(&frames);
    ble_corpus(&frames);
    toy_websocket_corpus(&frames);
    tls_records_corpus(&frames);
    toy_state_corpus(&toy, &frames);
}
