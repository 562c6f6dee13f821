//! The toy behind the version 3 channel: it pairs through the channel and pins the
//! server's key, speaks the number of its own handshake, and a neighbour on the link can
//! neither read a frame nor make the toy do anything with an injected, altered or
//! replayed one.

use pawpost_ble::{Fragmenter, Reassembler, MAX_FRAME_LEN as BLE_MAX_FRAME_LEN};
use pawpost_channel::{
    accept, message_kind, Accepted, ChannelError, Established, StaticKey, ToyPairing, KIND_PAIR_1,
    KIND_RESUME_1,
};
use pawpost_crypto::rand_core::SeedableRng;
use pawpost_crypto::{
    AccountId, DeviceId, DeviceKeys, HouseholdId, HouseholdSettings, Member, MemberStatus, Role,
    Roster, SignedRoster,
};
use pawpost_protocol::testing::one_of_each;
use pawpost_toy::{
    Action, ChannelToy, ConfirmationNumber, Event, Frame, FrameType, PairingCode, Prompt,
    ReconnectReason, CHANNEL_STATE_VERSION, STATE_VERSION,
};
use rand_chacha::ChaCha20Rng;

const NONCE: [u8; 32] = [0x5a; 32];
/// 2025-06-01 12:00:00 UTC.
const NOON_UTC_MS: u64 = 1_748_779_200_000;

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

fn server_key() -> StaticKey {
    StaticKey::from_secret([0x51; 32])
}

fn id(kind: u8, n: u8) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    bytes[0] = kind;
    bytes[6] = 0x40;
    bytes[8] = 0x80;
    bytes[15] = n;
    bytes
}

fn household() -> HouseholdId {
    HouseholdId(id(0x40, 1))
}

fn mum() -> DeviceKeys {
    DeviceKeys::generate(&mut rng(1), DeviceId(id(0xd0, 1)))
}

fn sent(actions: &[Action]) -> Vec<Vec<u8>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SendFrame(bytes) => Some(bytes.clone()),
            _ => None,
        })
        .collect()
}

fn spoken(actions: &[Action]) -> Vec<Prompt> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Speak(p) => Some(*p),
            _ => None,
        })
        .collect()
}

fn persisted(actions: &[Action]) -> Option<Vec<u8>> {
    actions.iter().rev().find_map(|a| match a {
        Action::Persist(blob) => Some(blob.as_bytes().to_vec()),
        _ => None,
    })
}

/// Whether the actions do anything a child or a parent would notice, or change what the
/// toy keeps.
fn does_something(actions: &[Action]) -> bool {
    actions.iter().any(|a| {
        matches!(
            a,
            Action::PlayAudio { .. }
                | Action::StoreAudio { .. }
                | Action::DiscardAudio { .. }
                | Action::StartRecording { .. }
                | Action::StopRecording
                | Action::SetHeart(_)
                | Action::Speak(_)
                | Action::Persist(_)
                | Action::SendFrame(_)
        )
    })
}

/// The toy and a stand-in server, joined by the channel.
struct Link {
    toy: ChannelToy,
    rng: ChaCha20Rng,
    server: Option<Established>,
    /// Everything the toy sent and received, as a neighbour on the link saw it.
    wire: Vec<Vec<u8>>,
    /// The server's records the toy received, to replay.
    records_to_toy: Vec<Vec<u8>>,
}

impl Link {
    fn new_toy() -> Self {
        let mut rng = rng(77);
        let mut toy = ChannelToy::first_start(&mut rng);
        let actions = toy.handle(
            Event::PowerOn {
                now_ms: 1_000,
                wall_clock_unix_ms: Some(NOON_UTC_MS),
            },
            &mut rng,
        );
        assert_eq!(persisted(&actions).unwrap()[0], CHANNEL_STATE_VERSION);
        Self {
            toy,
            rng,
            server: None,
            wire: Vec::new(),
            records_to_toy: Vec::new(),
        }
    }

    fn event(&mut self, event: Event<'_>) -> Vec<Action> {
        let actions = self.toy.handle(event, &mut self.rng);
        self.wire.extend(sent(&actions));
        actions
    }

    /// Connects to the server holding `key`, runs the handshake, and returns what the
    /// server's side established (None if it refused).
    fn connect_to(&mut self, key: &StaticKey, seed: u8) -> Option<Established> {
        let actions = self.event(Event::Connected);
        let first = sent(&actions).remove(0);
        let mut reply = Vec::new();
        let e = StaticKey::from_secret([seed; 32]);
        match accept(key, &e, [seed ^ 0xff; 32], &first, &mut reply).ok()? {
            Accepted::Resumed(server) => {
                self.wire.push(reply.clone());
                let actions = self.event(Event::FrameReceived(&reply));
                assert!(self.toy.channel_up(), "{actions:?}");
                Some(*server)
            }
            Accepted::Pairing(pairing) => {
                self.wire.push(reply.clone());
                let actions = self.event(Event::FrameReceived(&reply));
                let last = sent(&actions).remove(0);
                pairing.read_final(&last).ok()
            }
        }
    }

    fn connect(&mut self) {
        self.server = self.connect_to(&server_key(), 9);
        assert!(self.server.is_some());
    }

    /// The server sends `frame` through the channel.
    fn receive(&mut self, frame: Frame<'_>) -> Vec<Action> {
        let mut record = Vec::new();
        let server = self.server.as_mut().unwrap();
        server
            .channel
            .seal(&frame.encode().unwrap(), &mut record)
            .unwrap();
        self.wire.push(record.clone());
        self.records_to_toy.push(record.clone());
        self.event(Event::FrameReceived(&record))
    }

    /// The frames the server reads from the toy's records.
    fn opened(&mut self, actions: &[Action]) -> Vec<Vec<u8>> {
        let server = self.server.as_mut().unwrap();
        sent(actions)
            .iter()
            .map(|record| server.channel.open(record).unwrap())
            .collect()
    }

    /// Pairs through the channel, the parent's app showing the server's number.
    fn pair(&mut self) -> [u8; 3] {
        self.connect();
        let server_number = self.server.as_ref().unwrap().pairing_number.unwrap();
        let toy_number = self.pairing_number_spoken_for(server_number);
        assert_eq!(
            toy_number, server_number,
            "no one in the middle: the same number"
        );
        let roster = self.genesis();
        let bytes = SignedRoster::sign(&roster, &mum()).unwrap().encode();
        let actions = self.receive(Frame::Paired {
            household_id: household(),
            signed_roster: &bytes,
        });
        assert_eq!(spoken(&actions)[0], Prompt::Paired);
        toy_number
    }

    /// Runs pairing up to the toy's confirmation; the server's `ConfirmPairing` carries
    /// `claimed`. Returns the number the toy spoke, after checking that its
    /// `PairConfirmed` carries the same.
    fn pairing_number_spoken_for(&mut self, claimed: [u8; 3]) -> [u8; 3] {
        self.receive(Frame::Challenge {
            nonce: NONCE,
            server_time_ms: NOON_UTC_MS,
        });
        let actions = self.event(Event::PawPressed { long: true });
        let frames = self.opened(&actions);
        assert_eq!(
            Frame::decode(&frames[0]).unwrap().frame_type(),
            FrameType::PairRequest
        );
        let code = PairingCode::from_number(482_913).unwrap();
        self.receive(Frame::PairCode {
            code,
            expires_in_s: 600,
        });
        let actions = self.receive(Frame::ConfirmPairing {
            number: ConfirmationNumber::new(claimed).unwrap(),
        });
        let [Prompt::ConfirmPairing(spoken_number)] = spoken(&actions)[..] else {
            panic!("the toy speaks a number: {actions:?}");
        };
        let actions = self.event(Event::PawPressed { long: false });
        let frames = self.opened(&actions);
        assert_eq!(
            Frame::decode(&frames[0]).unwrap(),
            Frame::PairConfirmed {
                number: spoken_number
            }
        );
        let digits = spoken_number.to_string().into_bytes();
        [digits[0] - b'0', digits[1] - b'0', digits[2] - b'0']
    }

    fn genesis(&self) -> Roster {
        let settings = HouseholdSettings {
            quiet_hours: None,
            timezone_offset_minutes: 0,
            parent_approves_before_play: false,
            retention_days: 30,
        };
        Roster::genesis(
            household(),
            settings,
            vec![
                Member::new(
                    &mum().public(),
                    AccountId(id(0xac, 1)),
                    Role::Owner,
                    MemberStatus::Approved,
                ),
                Member::new(
                    &self.toy.toy().identity(),
                    AccountId(id(0xac, 1)),
                    Role::Toy,
                    MemberStatus::Approved,
                ),
            ],
        )
    }
}

#[test]
fn the_toy_pairs_through_the_channel_and_pins_the_servers_key() {
    let mut link = Link::new_toy();
    assert_eq!(link.toy.pinned_server_key(), None);
    let actions = link.event(Event::Connected);
    assert_eq!(
        message_kind(&sent(&actions)[0]),
        Ok(KIND_PAIR_1),
        "an unpaired toy pairs (XX)"
    );
    link.event(Event::Disconnected);
    link.pair();
    assert_eq!(link.toy.pinned_server_key(), Some(server_key().public()));
    let server = link.server.as_ref().unwrap();
    assert_eq!(&server.peer_key, link.toy.channel_public_key());

    // The pinned key is saved, and the next connection uses it (IK).
    let saved = link.toy.state_blob().as_bytes().to_vec();
    assert_eq!(saved[0], CHANNEL_STATE_VERSION);
    link.event(Event::Disconnected);
    let mut restored = ChannelToy::restore(&saved, &mut rng(3)).unwrap();
    assert_eq!(restored.pinned_server_key(), Some(server_key().public()));
    assert_eq!(restored.channel_public_key(), link.toy.channel_public_key());
    let actions = restored.handle(Event::Connected, &mut rng(4));
    assert_eq!(
        message_kind(&sent(&actions)[0]),
        Ok(KIND_RESUME_1),
        "a paired toy resumes (IK)"
    );

    let mut link = Link {
        toy: restored,
        rng: rng(5),
        server: None,
        wire: Vec::new(),
        records_to_toy: Vec::new(),
    };
    link.connect();
    let actions = link.receive(Frame::Challenge {
        nonce: NONCE,
        server_time_ms: NOON_UTC_MS,
    });
    let frames = link.opened(&actions);
    assert!(
        frames
            .iter()
            .any(|f| Frame::decode(f).unwrap().frame_type() == FrameType::Auth),
        "the paired toy authenticates inside the channel"
    );
}

#[test]
fn the_toy_speaks_the_number_of_its_own_handshake_whatever_the_server_says() {
    let mut link = Link::new_toy();
    link.connect();
    let channel_number = link.server.as_ref().unwrap().pairing_number.unwrap();
    let other = [
        (channel_number[0] + 1) % 10,
        channel_number[1],
        channel_number[2],
    ];
    assert_eq!(link.pairing_number_spoken_for(other), channel_number);
}

#[test]
fn a_man_in_the_middle_at_pairing_makes_the_numbers_differ() {
    // He answers the toy with a key of his own and pairs with the server as a toy,
    // passing frames between the two channels.
    for seed in 0..10u8 {
        let mut link = Link::new_toy();
        let mitm_key = StaticKey::from_secret([0x66; 32]);
        link.server = link.connect_to(&mitm_key, 20 + seed);
        let mitm_toy_side = link.server.as_ref().unwrap().pairing_number.unwrap();

        let mut first = Vec::new();
        let mitm_as_toy = ToyPairing::start(
            &StaticKey::from_secret([0x67; 32]),
            &StaticKey::from_secret([seed; 32]),
            [seed; 32],
            &mut first,
        )
        .unwrap();
        let mut reply = Vec::new();
        let Ok(Accepted::Pairing(real_server)) = accept(
            &server_key(),
            &StaticKey::from_secret([0x70 + seed; 32]),
            [0x80 + seed; 32],
            &first,
            &mut reply,
        ) else {
            panic!("the server pairs with him");
        };
        let mut last = Vec::new();
        let mitm_server_side = mitm_as_toy.read_reply(&reply, &mut last).unwrap();
        let real = real_server.read_final(&last).unwrap();
        let app_shows = real.pairing_number.unwrap();
        assert_eq!(mitm_server_side.pairing_number, Some(app_shows));

        // The server's ConfirmPairing, passed on by him with the app's number.
        let toy_says = link.pairing_number_spoken_for(app_shows);
        assert_eq!(toy_says, mitm_toy_side);
        assert_ne!(
            toy_says, app_shows,
            "seed {seed}: the parent hears one number and sees another, and says they don't match"
        );
        assert_eq!(
            link.toy.pinned_server_key(),
            None,
            "nothing pinned before Paired"
        );
    }
}

#[test]
fn a_paired_toy_talks_to_no_other_server() {
    let mut link = Link::new_toy();
    link.pair();
    link.event(Event::Disconnected);
    // An impostor with another key cannot answer the toy's first message...
    assert!(link
        .connect_to(&StaticKey::from_secret([0x66; 32]), 30)
        .is_none());
    link.event(Event::Disconnected);
    // ...and a pairing reply (XX) of his, or a reply to another toy's handshake, ends the
    // connection: the toy reads nothing on it.
    let actions = link.event(Event::Connected);
    let mut mitm_first = Vec::new();
    let _ = ToyPairing::start(
        &StaticKey::from_secret([1; 32]),
        &StaticKey::from_secret([2; 32]),
        [3; 32],
        &mut mitm_first,
    )
    .unwrap();
    let mut reply = Vec::new();
    let _ = accept(
        &StaticKey::from_secret([0x66; 32]),
        &StaticKey::from_secret([4; 32]),
        [5; 32],
        &mitm_first,
        &mut reply,
    )
    .unwrap();
    assert_eq!(message_kind(&sent(&actions)[0]), Ok(KIND_RESUME_1));
    let actions = link.event(Event::FrameReceived(&reply));
    assert_eq!(
        actions,
        vec![Action::Reconnect(ReconnectReason::AuthRefused)]
    );
    assert_eq!(
        link.toy.last_channel_error(),
        Some(ChannelError::UnexpectedMessage)
    );
    assert!(!link.toy.channel_up());
}

#[test]
fn injected_frames_in_the_clear_change_nothing() {
    let mut link = Link::new_toy();
    link.pair();
    link.event(Event::Disconnected);
    let roster = SignedRoster::sign(&link.genesis(), &mum())
        .unwrap()
        .encode();
    let identity = link.toy.toy().identity();
    for frame in one_of_each(identity, b"envelope", &roster) {
        let bytes = frame.encode().unwrap();
        link.connect();
        let before = link.toy.state_blob();
        let actions = link.event(Event::FrameReceived(&bytes));
        assert!(
            !does_something(&actions),
            "{:?}: {actions:?}",
            frame.frame_type()
        );
        assert_eq!(
            actions,
            vec![Action::Reconnect(ReconnectReason::AuthRefused)]
        );
        assert_eq!(link.toy.state_blob(), before);
        // The genuine server's next record is not read on that connection either.
        let actions = link.receive(Frame::Challenge {
            nonce: NONCE,
            server_time_ms: NOON_UTC_MS,
        });
        assert!(actions.is_empty(), "{actions:?}");
        link.event(Event::Disconnected);
    }
}

#[test]
fn replayed_altered_and_foreign_records_change_nothing() {
    let mut link = Link::new_toy();
    link.connect();
    link.receive(Frame::Challenge {
        nonce: NONCE,
        server_time_ms: NOON_UTC_MS,
    });
    let actions = link.event(Event::PawPressed { long: true });
    assert!(link.opened(&actions).len() == 1);
    let code = PairingCode::from_number(111_111).unwrap();
    let actions = link.receive(Frame::PairCode {
        code,
        expires_in_s: 600,
    });
    assert_eq!(spoken(&actions), vec![Prompt::PairingCode(code)]);
    let pair_code_record = link.records_to_toy.last().unwrap().clone();

    // The same PairCode record again (a neighbour replaying it) is refused.
    let actions = link.event(Event::FrameReceived(&pair_code_record));
    assert_eq!(
        actions,
        vec![Action::Reconnect(ReconnectReason::AuthRefused)]
    );
    assert_eq!(
        link.toy.last_channel_error(),
        Some(ChannelError::RecordRefused)
    );

    // An altered record, on a fresh connection.
    for position in [0usize, 1, 2, 10, 100, 200] {
        link.event(Event::Disconnected);
        link.connect();
        let mut record = Vec::new();
        let frame = Frame::PairCode {
            code: PairingCode::from_number(666_666).unwrap(),
            expires_in_s: 600,
        };
        link.server
            .as_mut()
            .unwrap()
            .channel
            .seal(&frame.encode().unwrap(), &mut record)
            .unwrap();
        record[position] ^= 0x04;
        let actions = link.event(Event::FrameReceived(&record));
        assert!(!does_something(&actions), "byte {position}: {actions:?}");
        assert!(!link.toy.channel_up());
    }

    // A record sealed by the neighbour's own channel with the same server.
    link.event(Event::Disconnected);
    link.connect();
    let mut neighbour = Link::new_toy();
    neighbour.rng = rng(99);
    neighbour.connect();
    let mut injected = Vec::new();
    let frame = Frame::Error {
        code: pawpost_toy::ServerError::PairingExpired,
    };
    neighbour
        .server
        .as_mut()
        .unwrap()
        .channel
        .seal(&frame.encode().unwrap(), &mut injected)
        .unwrap();
    let actions = link.event(Event::FrameReceived(&injected));
    assert_eq!(
        actions,
        vec![Action::Reconnect(ReconnectReason::AuthRefused)]
    );
}

#[test]
fn a_neighbour_sees_no_frame_type_id_or_roster() {
    let mut link = Link::new_toy();
    link.pair();
    let roster = SignedRoster::sign(&link.genesis(), &mum())
        .unwrap()
        .encode();
    let identity = link.toy.toy().identity().encode();
    let contains =
        |haystack: &[u8], needle: &[u8]| haystack.windows(needle.len()).any(|w| w == needle);
    for message in &link.wire {
        assert_eq!(
            message[0], 3,
            "every message is a version 3 channel message"
        );
        assert!(!contains(message, &roster[..64]), "no roster bytes");
        assert!(
            !contains(message, &identity[..40]),
            "no identity of the toy"
        );
        assert!(!contains(message, &household().0), "no household id");
        assert!(!contains(message, &NONCE), "no challenge nonce");
    }
}

#[test]
fn older_state_blobs_restore_and_a_reset_forgets_the_server() {
    // A version 2 blob (before the channel): it restores with a new channel key and no
    // pinned server key, and saves as version 3.
    let mut r = rng(8);
    let old = pawpost_toy::Toy::first_start(&mut r).state_blob();
    assert_eq!(old.as_bytes()[0], STATE_VERSION);
    let toy = ChannelToy::restore(old.as_bytes(), &mut r).unwrap();
    assert_eq!(toy.pinned_server_key(), None);
    assert_eq!(toy.state_blob().as_bytes()[0], CHANNEL_STATE_VERSION);
    // A cut version 3 blob, or a bad flag, is refused.
    let blob = toy.state_blob().as_bytes().to_vec();
    assert!(ChannelToy::restore(&blob[..20], &mut r).is_err());
    let mut bad = blob.clone();
    bad[33] = 7;
    assert!(ChannelToy::restore(&bad, &mut r).is_err());

    // A factory reset forgets the pinned key and makes a new channel key.
    let mut link = Link::new_toy();
    link.pair();
    let before = *link.toy.channel_public_key();
    let actions = link.event(Event::PawHeld { ms: 10_000 });
    assert_eq!(link.toy.pinned_server_key(), None);
    assert_ne!(*link.toy.channel_public_key(), before);
    let saved = persisted(&actions).unwrap();
    assert_eq!(saved[0], CHANNEL_STATE_VERSION);
    assert_eq!(saved[33], 0, "the saved state pins no server");
}

/// What a phone relaying over Bluetooth (or a neighbour listening to it) gets from a
/// channel message: its `pawpost-ble` fragments at `mtu`, and the message they rebuild.
fn over_ble(message: &[u8], mtu: u16, seq: u16) -> (Vec<Vec<u8>>, Vec<u8>) {
    assert!(message.len() <= BLE_MAX_FRAME_LEN);
    let mut fragmenter = Fragmenter::with_first_seq(mtu, seq).unwrap();
    let fragments: Vec<Vec<u8>> = fragmenter.fragment(message).unwrap().collect();
    let mut reassembler = Reassembler::new(mtu, BLE_MAX_FRAME_LEN).unwrap();
    let mut rebuilt = None;
    for fragment in &fragments {
        if let Some(done) = reassembler.push(fragment).unwrap() {
            rebuilt = Some(done.data.to_vec());
        }
    }
    (fragments, rebuilt.expect("the message was reassembled"))
}

#[test]
fn over_bluetooth_the_phone_and_a_neighbour_see_only_ciphertext_and_inject_nothing() {
    let mut link = Link::new_toy();
    link.pair();
    let roster = SignedRoster::sign(&link.genesis(), &mum())
        .unwrap()
        .encode();
    let identity = link.toy.toy().identity().encode();
    let contains =
        |haystack: &[u8], needle: &[u8]| haystack.windows(needle.len()).any(|w| w == needle);
    for (seq, message) in (0u16..).zip(link.wire.clone()) {
        let (fragments, rebuilt) = over_ble(&message, 23, seq);
        assert_eq!(
            rebuilt, message,
            "the relay passes the channel's bytes unchanged"
        );
        let payloads: Vec<u8> = fragments.concat();
        assert!(
            !contains(&payloads, &roster[..32]),
            "no roster bytes in a fragment"
        );
        assert!(
            !contains(&payloads, &identity[..32]),
            "no identity in a fragment"
        );
        assert!(
            !contains(&payloads, &household().0),
            "no household id in a fragment"
        );
    }

    // A neighbour writes a whole frame of his own to the toy's GATT service: well formed
    // fragments of a plaintext `Error { pairing_expired }`, and then of a channel record
    // he sealed himself. The toy acts on neither.
    link.event(Event::Disconnected);
    link.connect();
    let forged = Frame::Error {
        code: pawpost_toy::ServerError::PairingExpired,
    }
    .encode()
    .unwrap();
    let (_, rebuilt) = over_ble(&forged, 23, 500);
    let actions = link.event(Event::FrameReceived(&rebuilt));
    assert!(!does_something(&actions), "{actions:?}");
    assert_eq!(
        link.toy.last_channel_error(),
        Some(ChannelError::NotVersion3)
    );

    link.event(Event::Disconnected);
    link.connect();
    let mut his = Link::new_toy();
    his.rng = rng(98);
    his.connect();
    let mut record = Vec::new();
    his.server
        .as_mut()
        .unwrap()
        .channel
        .seal(&forged, &mut record)
        .unwrap();
    let (_, rebuilt) = over_ble(&record, 23, 501);
    let actions = link.event(Event::FrameReceived(&rebuilt));
    assert!(!does_something(&actions), "{actions:?}");
    assert_eq!(
        link.toy.last_channel_error(),
        Some(ChannelError::RecordRefused)
    );
}

#[test]
fn records_open_where_they_lie_and_a_replay_is_refused_there_too() {
    let mut link = Link::new_toy();
    link.pair();
    link.event(Event::Disconnected);
    link.connect();
    let mut record = Vec::new();
    let challenge = Frame::Challenge {
        nonce: NONCE,
        server_time_ms: NOON_UTC_MS,
    }
    .encode()
    .unwrap();
    link.server
        .as_mut()
        .unwrap()
        .channel
        .seal(&challenge, &mut record)
        .unwrap();
    let mut replay = record.clone();
    let (actions, audio) = link.toy.handle_frame_in_place(&mut record, &mut link.rng);
    assert_eq!(audio, None);
    let frames = link.opened(&actions);
    assert!(
        frames
            .iter()
            .any(|f| Frame::decode(f).unwrap().frame_type() == FrameType::Auth),
        "the toy answers the challenge: {actions:?}"
    );
    let (actions, audio) = link.toy.handle_frame_in_place(&mut replay, &mut link.rng);
    assert_eq!(audio, None);
    assert_eq!(
        actions,
        vec![Action::Reconnect(ReconnectReason::AuthRefused)]
    );
    assert_eq!(
        link.toy.last_channel_error(),
        Some(ChannelError::RecordRefused)
    );
}
