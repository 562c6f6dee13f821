//! Shared pieces of the fuzz targets and of the seed corpus generator
//! (`cargo run --example gen_corpus`): the test-vector devices, the input formats of the
//! structured targets, and a paired toy built the same way every time.
//!
//! Everything here is deterministic, so that an input found by the fuzzer (or written by the
//! generator) means the same thing on every run.

use std::sync::OnceLock;

use pawpost_crypto::rand_core::SeedableRng;
use pawpost_crypto::{
    AccountId, DeviceId, DeviceKeys, HouseholdId, HouseholdSettings, Member, MemberStatus,
    PublicIdentity, QuietHours, Role, Roster, SignedRoster,
};
use pawpost_toy::{Action, Event, Frame, PairingCode, Toy, MAX_QUEUED_MESSAGES};
use rand_chacha::ChaCha20Rng;

fn unhex<const N: usize>(s: &str) -> [u8; N] {
    assert_eq!(s.len(), 2 * N, "hex length");
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex digit");
    }
    out
}

/// The six devices of `test-vectors/*.json`: device id, X25519 secret, Ed25519 seed. Using
/// them as the fuzz targets' fixed keys lets the committed vectors open all the way.
const VECTOR_DEVICES: [(&str, &str, &str, &str); 6] = [
    (
        "mum",
        "d0000000000040008000000000000001",
        "023f37203a2476c42566a61cc55c3ca875dbb4cc41c0deb789f8e7bf88183638",
        "1ecc3686b60ee3b84b6c7d321d70d5c06e9dac63a4d0a79d731b17c0d04d030d",
    ),
    (
        "dad",
        "d0000000000040008000000000000002",
        "f6a12ca8ffc30a66ca140ccc7276336115819361186d3f535dd99f8eaaca8fce",
        "7f82dd63f4f75c33da444b72372be3aa43c0027a076bf9675eb7932695d127a4",
    ),
    (
        "grandma",
        "d0000000000040008000000000000003",
        "385553aa23a24b14d8bbc2dff606277f444e049797ae7e0404e3a9ba0ecef2fb",
        "904a64524ce3c873b94a11402512c7694e72deaed1ab837a08622c46ab5f17ce",
    ),
    (
        "uncle",
        "d0000000000040008000000000000004",
        "78774a186003cdaf73dfefce516edeaccb6e387de1e6234aa45f4df00a8b62ad",
        "0796cb28571102ff06ea2ad26933a17e8225858a085270d721d028432b824e84",
    ),
    (
        "toy",
        "d0000000000040008000000000000005",
        "8108aedfacf5cf1d73c67b6936397ba5fa72817f1b5aab94658238ddcdc08010",
        "a65007ae15ae021092cb4503061f215b3a2ff602e2000b781c543b6c14eed1a3",
    ),
    (
        "outsider",
        "d0000000000040008000000000000006",
        "bbfa396220fac064621db2171fa5a61eec23612fa6352902b290e78241c72767",
        "ca877d6f07e846f73a7214b47c614d9fb49c5aa90929002fa7e40a6f98b5f412",
    ),
];

/// A test-vector device by name (`mum`, `dad`, `grandma`, `uncle`, `toy`, `outsider`).
pub fn vector_device(name: &str) -> DeviceKeys {
    let (_, id, x, ed) = VECTOR_DEVICES
        .iter()
        .find(|d| d.0 == name)
        .expect("a test-vector device");
    DeviceKeys::from_secrets(DeviceId(unhex(id)), &unhex(x), &unhex(ed))
}

/// The public identities of all test-vector devices, built once.
pub fn vector_identities() -> &'static [PublicIdentity] {
    static IDS: OnceLock<Vec<PublicIdentity>> = OnceLock::new();
    IDS.get_or_init(|| {
        VECTOR_DEVICES
            .iter()
            .map(|d| vector_device(d.0).public())
            .collect()
    })
}

// ----- ble_reassembly input -----

/// ATT MTUs the BLE target feeds the same fragments to: the smallest, a common phone value,
/// and the largest.
pub const BLE_MTUS: [u16; 6] = [23, 27, 64, 185, 247, 517];

/// `mtu selector (1) || (fragment length (u16 little-endian) || fragment)*`; a last length
/// that runs past the end takes what is left.
pub fn split_ble_input(data: &[u8]) -> Option<(u16, Vec<&[u8]>)> {
    let (&selector, mut rest) = data.split_first()?;
    let mtu = BLE_MTUS[usize::from(selector) % BLE_MTUS.len()];
    let mut fragments = Vec::new();
    while rest.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
        let len = len.min(rest.len());
        fragments.push(&rest[..len]);
        rest = &rest[len..];
    }
    Some((mtu, fragments))
}

/// The inverse of [`split_ble_input`], for the corpus generator.
pub fn join_ble_input(mtu: u16, fragments: &[Vec<u8>]) -> Vec<u8> {
    let selector = BLE_MTUS
        .iter()
        .position(|m| *m == mtu)
        .expect("a known MTU") as u8;
    let mut out = vec![selector];
    for f in fragments {
        out.extend_from_slice(&(f.len() as u16).to_le_bytes());
        out.extend_from_slice(f);
    }
    out
}

// ----- the paired toy -----

/// 2025-06-01 12:00:00 UTC, the wall clock the toy is started with.
pub const NOON_UTC_MS: u64 = 1_748_779_200_000;
/// The nonce of the harness's own `Challenge`.
pub const NONCE: [u8; 32] = [0x5a; 32];

fn uuid(kind: u8, n: u8) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    bytes[0] = kind;
    bytes[6] = 0x40;
    bytes[8] = 0x80;
    bytes[15] = n;
    bytes
}

/// The toy's household.
pub fn household_id() -> HouseholdId {
    HouseholdId(unhex("40000000000040008000000000000001"))
}

/// Settings of the first roster: quiet hours 19:30 to 07:00 at UTC+1, and parent approval
/// before play, so that held messages and approvals are reachable.
pub fn genesis_settings() -> HouseholdSettings {
    HouseholdSettings {
        quiet_hours: Some(QuietHours {
            start_minute: 1170,
            end_minute: 420,
        }),
        timezone_offset_minutes: 60,
        parent_approves_before_play: true,
        retention_days: 30,
    }
}

fn member(keys: &DeviceKeys, account: u8, role: Role, status: MemberStatus) -> Member {
    Member::new(&keys.public(), AccountId(uuid(0xac, account)), role, status)
}

/// The first roster: mum owner, dad guardian, grandma family, uncle blocked, and the toy.
pub fn genesis_roster(toy: &PublicIdentity) -> Roster {
    Roster::genesis(
        household_id(),
        genesis_settings(),
        vec![
            member(
                &vector_device("mum"),
                1,
                Role::Owner,
                MemberStatus::Approved,
            ),
            member(
                &vector_device("dad"),
                2,
                Role::Guardian,
                MemberStatus::Approved,
            ),
            member(
                &vector_device("grandma"),
                3,
                Role::Family,
                MemberStatus::Approved,
            ),
            member(
                &vector_device("uncle"),
                4,
                Role::Family,
                MemberStatus::Blocked,
            ),
            Member::new(
                toy,
                AccountId(uuid(0xac, 1)),
                Role::Toy,
                MemberStatus::Approved,
            ),
        ],
    )
}

/// Randomness the toy draws during one fuzz run (fresh keys on rotation, message ids).
pub fn run_rng() -> ChaCha20Rng {
    ChaCha20Rng::from_seed([0x42; 32])
}

struct Paired {
    state: Vec<u8>,
    genesis: SignedRoster,
}

fn paired() -> &'static Paired {
    static PAIRED: OnceLock<Paired> = OnceLock::new();
    PAIRED.get_or_init(|| {
        let mut rng = ChaCha20Rng::from_seed([0x77; 32]);
        let mut toy = Toy::first_start(&mut rng);
        let mut feed = |toy: &mut Toy, event: Event<'_>| toy.handle(event, &mut rng);
        feed(
            &mut toy,
            Event::PowerOn {
                now_ms: 1_000,
                wall_clock_unix_ms: Some(NOON_UTC_MS),
            },
        );
        feed(&mut toy, Event::Connected);
        let challenge = Frame::Challenge {
            nonce: NONCE,
            server_time_ms: NOON_UTC_MS,
        }
        .encode()
        .unwrap();
        feed(&mut toy, Event::FrameReceived(&challenge));
        feed(&mut toy, Event::PawPressed { long: true });
        let code = Frame::PairCode {
            code: PairingCode::from_number(482_913).unwrap(),
            expires_in_s: 600,
        }
        .encode()
        .unwrap();
        feed(&mut toy, Event::FrameReceived(&code));
        let genesis =
            SignedRoster::sign(&genesis_roster(&toy.identity()), &vector_device("mum")).unwrap();
        let paired = Frame::Paired {
            household_id: household_id(),
            signed_roster: &genesis.encode(),
        }
        .encode()
        .unwrap();
        feed(&mut toy, Event::FrameReceived(&paired));
        assert_eq!(toy.household_id(), Some(household_id()), "the toy paired");
        Paired {
            state: toy.state_blob().as_bytes().to_vec(),
            genesis,
        }
    })
}

/// The signed first roster the harness's toy holds; the corpus generator chains updates to it.
pub fn paired_genesis() -> &'static SignedRoster {
    &paired().genesis
}

/// A toy paired into [`household_id`] with [`genesis_roster`], switched on at
/// [`NOON_UTC_MS`], connected, challenged with [`NONCE`] and authenticated.
pub fn paired_toy(rng: &mut ChaCha20Rng) -> Toy {
    let mut toy = Toy::restore(&paired().state).expect("the saved state restores");
    toy.handle(
        Event::PowerOn {
            now_ms: 1_000,
            wall_clock_unix_ms: Some(NOON_UTC_MS),
        },
        rng,
    );
    toy.handle(Event::Connected, rng);
    let challenge = Frame::Challenge {
        nonce: NONCE,
        server_time_ms: NOON_UTC_MS,
    }
    .encode()
    .unwrap();
    toy.handle(Event::FrameReceived(&challenge), rng);
    toy
}

/// One step of a `toy_state_machine` input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op<'a> {
    /// Bytes from the server, as one frame.
    Frame(&'a [u8]),
    /// The monotonic clock moves on by this many milliseconds.
    Wait(u32),
    /// A new connection opens (the server then speaks first).
    Connect,
    /// The connection closes.
    Disconnect,
    /// A long paw press (it never starts the microphone; on an unpaired toy it starts pairing).
    LongPress,
}

const OP_FRAME: u8 = 0;
const OP_WAIT: u8 = 4;
const OP_CONNECT: u8 = 5;
const OP_DISCONNECT: u8 = 6;
const OP_LONG_PRESS: u8 = 7;

/// Reads the ops of a `toy_state_machine` input: a tag byte (modulo 8: 0-3 frame, 4 wait,
/// 5 connect, 6 disconnect, 7 long press), then for a frame a u16 little-endian length and the
/// bytes (cut at the end of the input), for a wait a u32 little-endian number of milliseconds.
pub fn parse_ops(mut data: &[u8]) -> Vec<Op<'_>> {
    let mut ops = Vec::new();
    while let Some((&tag, rest)) = data.split_first() {
        data = rest;
        match tag % 8 {
            OP_WAIT => {
                let mut ms = [0u8; 4];
                let n = data.len().min(4);
                ms[..n].copy_from_slice(&data[..n]);
                data = &data[n..];
                ops.push(Op::Wait(u32::from_le_bytes(ms)));
            }
            OP_CONNECT => ops.push(Op::Connect),
            OP_DISCONNECT => ops.push(Op::Disconnect),
            OP_LONG_PRESS => ops.push(Op::LongPress),
            _ => {
                let len = match data {
                    [a, b, ..] => usize::from(u16::from_le_bytes([*a, *b])),
                    _ => 0,
                };
                data = &data[data.len().min(2)..];
                let len = len.min(data.len());
                ops.push(Op::Frame(&data[..len]));
                data = &data[len..];
            }
        }
    }
    ops
}

/// The inverse of [`parse_ops`], for the corpus generator.
pub fn encode_ops(ops: &[Op<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for op in ops {
        match op {
            Op::Frame(bytes) => {
                out.push(OP_FRAME);
                let len = u16::try_from(bytes.len()).expect("a frame the u16 length can carry");
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(bytes);
            }
            Op::Wait(ms) => {
                out.push(OP_WAIT);
                out.extend_from_slice(&ms.to_le_bytes());
            }
            Op::Connect => out.push(OP_CONNECT),
            Op::Disconnect => out.push(OP_DISCONNECT),
            Op::LongPress => out.push(OP_LONG_PRESS),
        }
    }
    out
}

/// Runs `ops` against a freshly paired toy and checks, after every step, what must hold
/// whatever the server or a BLE neighbour sends. Returns every action, for the generator.
///
/// - No frame (nor a long press, a timer or a connection) starts the microphone or plays
///   audio: only a short paw press does, and there is none here.
/// - Every frame the toy sends decodes, travels toy to server, and re-encodes to itself.
/// - The queue stays within [`MAX_QUEUED_MESSAGES`].
/// - The state the toy saves restores, and saves back to the same bytes.
pub fn run_toy(ops: &[Op<'_>]) -> Vec<Action> {
    let mut rng = run_rng();
    let mut toy = paired_toy(&mut rng);
    let mut now_ms: u64 = 1_000;
    let mut all = Vec::new();
    let mut last_state: Option<Vec<u8>> = None;
    for op in ops {
        let actions = match op {
            Op::Frame(bytes) => toy.handle(Event::FrameReceived(bytes), &mut rng),
            Op::Wait(ms) => {
                now_ms += u64::from(*ms);
                toy.handle(Event::Timer { now_ms }, &mut rng)
            }
            Op::Connect => toy.handle(Event::Connected, &mut rng),
            Op::Disconnect => toy.handle(Event::Disconnected, &mut rng),
            Op::LongPress => toy.handle(Event::PawPressed { long: true }, &mut rng),
        };
        for action in &actions {
            match action {
                Action::StartRecording { .. } => {
                    panic!("{op:?} started the microphone without a paw press")
                }
                Action::PlayAudio { .. } => panic!("{op:?} played audio without a paw press"),
                Action::SendFrame(bytes) => {
                    let frame = Frame::decode(bytes).expect("the toy sends only valid frames");
                    assert!(
                        !frame.frame_type().is_server_to_toy(),
                        "the toy sent a server frame: {frame:?}"
                    );
                    assert_eq!(&frame.encode().unwrap(), bytes, "canonical frame");
                }
                Action::Persist(blob) => last_state = Some(blob.as_bytes().to_vec()),
                _ => {}
            }
        }
        assert!(toy.queued_messages() <= MAX_QUEUED_MESSAGES);
        all.extend(actions);
    }
    if let Some(state) = last_state {
        let restored = Toy::restore(&state).expect("a saved state restores");
        assert_eq!(
            restored.state_blob().as_bytes(),
            &state[..],
            "state round trip"
        );
    }
    all
}

/// The TLS 1.3 suites of `pawpost_tls_records`, chosen by a fuzz input's first byte.
pub const TLS_SUITES: [pawpost_tls_records::Suite; 3] = [
    pawpost_tls_records::Suite::Aes128Gcm,
    pawpost_tls_records::Suite::Aes256Gcm,
    pawpost_tls_records::Suite::Chacha20Poly1305,
];

/// A client's side and the server's side of one TLS 1.3 connection's records with fixed
/// keys: what the first writes, the second opens.
pub fn tls_records_pair(
    suite: pawpost_tls_records::Suite,
) -> (pawpost_tls_records::Records, pawpost_tls_records::Records) {
    use pawpost_tls_records::{Records, TrafficKeys, NONCE_LEN};
    let key_len = match suite {
        pawpost_tls_records::Suite::Aes128Gcm => 16,
        _ => 32,
    };
    const IV: [u8; NONCE_LEN] = [0x33; NONCE_LEN];
    fn traffic(suite: pawpost_tls_records::Suite, key: &[u8]) -> TrafficKeys<'_> {
        TrafficKeys {
            suite,
            key,
            iv: &IV,
            seq: 0,
        }
    }
    let (client_key, server_key) = (&[0x11; 32][..key_len], &[0x22; 32][..key_len]);
    let client =
        Records::new(traffic(suite, server_key), traffic(suite, client_key)).expect("valid keys");
    let server =
        Records::new(traffic(suite, client_key), traffic(suite, server_key)).expect("valid keys");
    (client, server)
}
