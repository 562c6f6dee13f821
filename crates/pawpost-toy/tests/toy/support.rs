//! A household and a stand-in server, built from pawpost-crypto directly, to tell the toy's
//! stories with. Seeds are fixed so that every run sees the same bytes.

use pawpost_crypto::rand_core::SeedableRng;
use pawpost_crypto::{
    seal, AccountId, DeviceId, DeviceKeys, HouseholdId, HouseholdSettings, MediaType, Member,
    MemberStatus, MessageId, MessageParams, PublicIdentity, Role, Roster, SignedRoster,
};
use pawpost_media::OggOpusWriter;
use pawpost_toy::{Action, Event, Frame, FrameType, Heart, PairingCode, Prompt, Report, Toy};
use rand_chacha::ChaCha20Rng;

/// 2025-06-01 12:00:00 UTC.
pub const NOON_UTC_MS: u64 = 1_748_779_200_000;
pub const HOUR_MS: u64 = 60 * 60 * 1000;
pub const NONCE: [u8; 32] = [0x5a; 32];

pub fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

fn uuid(kind: u8, n: u8) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    bytes[0] = kind;
    bytes[6] = 0x40;
    bytes[8] = 0x80;
    bytes[15] = n;
    bytes
}

pub fn household_id() -> HouseholdId {
    HouseholdId(uuid(0x40, 1))
}

pub fn other_household_id() -> HouseholdId {
    HouseholdId(uuid(0x40, 2))
}

pub fn message_id(n: u8) -> MessageId {
    MessageId(uuid(0x3e, n))
}

pub fn keys(n: u8) -> DeviceKeys {
    DeviceKeys::generate(&mut rng(n), DeviceId(uuid(0xd0, n)))
}

/// The people around the toy.
pub struct Family {
    /// Owner: the parent who paired the toy.
    pub mum: DeviceKeys,
    /// Guardian.
    pub dad: DeviceKeys,
    /// Approved relative.
    pub grandma: DeviceKeys,
    /// Relative who is blocked.
    pub uncle: DeviceKeys,
    /// Never let in; runs a household of their own.
    pub stranger: DeviceKeys,
}

impl Family {
    pub fn new() -> Self {
        Self {
            mum: keys(1),
            dad: keys(2),
            grandma: keys(3),
            uncle: keys(4),
            stranger: keys(6),
        }
    }
}

pub fn settings() -> HouseholdSettings {
    HouseholdSettings {
        quiet_hours: None,
        timezone_offset_minutes: 0,
        parent_approves_before_play: false,
        retention_days: 30,
    }
}

pub fn member(keys: &DeviceKeys, account: u8, role: Role, status: MemberStatus) -> Member {
    Member::new(&keys.public(), AccountId(uuid(0xac, account)), role, status)
}

pub fn toy_member(identity: &PublicIdentity) -> Member {
    Member::new(
        identity,
        AccountId(uuid(0xac, 1)),
        Role::Toy,
        MemberStatus::Approved,
    )
}

/// A valid Ogg Opus file of about `ms` milliseconds (20 ms CELT packets).
pub fn voice(ms: u32) -> Vec<u8> {
    let mut writer = OggOpusWriter::new(1, 312, 0x5EED).unwrap();
    for _ in 0..(ms / 20) {
        writer.push_packet(&[31 << 3, 1, 2, 3]).unwrap();
    }
    writer.finish(0).unwrap()
}

/// Seals `payload` as a voice message from `sender` to `recipients`.
pub fn seal_voice(
    sender: &DeviceKeys,
    household: HouseholdId,
    id: MessageId,
    recipients: &[PublicIdentity],
    payload: &[u8],
) -> Vec<u8> {
    seal_with(
        sender,
        household,
        id,
        recipients,
        payload,
        MediaType::OggOpus,
    )
}

pub fn seal_with(
    sender: &DeviceKeys,
    household: HouseholdId,
    id: MessageId,
    recipients: &[PublicIdentity],
    payload: &[u8],
    media_type: MediaType,
) -> Vec<u8> {
    let params = MessageParams {
        message_id: id,
        household_id: household,
        created_at_ms: NOON_UTC_MS - HOUR_MS,
        media_type,
        duration_ms: 1000,
        recipients,
    };
    seal(&mut rng(id.0[15]), sender, &params, payload).unwrap()
}

pub fn encode(frame: Frame<'_>) -> Vec<u8> {
    frame.encode().unwrap()
}

/// Frames the toy sent, still encoded.
pub fn sent(actions: &[Action]) -> Vec<Vec<u8>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SendFrame(bytes) => Some(bytes.clone()),
            _ => None,
        })
        .collect()
}

pub fn sent_types(actions: &[Action]) -> Vec<FrameType> {
    sent(actions)
        .iter()
        .map(|b| Frame::decode(b).unwrap().frame_type())
        .collect()
}

pub fn spoken(actions: &[Action]) -> Vec<Prompt> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Speak(p) => Some(*p),
            _ => None,
        })
        .collect()
}

pub fn reports(actions: &[Action]) -> Vec<Report> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Report(r) => Some(*r),
            _ => None,
        })
        .collect()
}

pub fn played(actions: &[Action]) -> Vec<MessageId> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::PlayAudio { message_id } => Some(*message_id),
            _ => None,
        })
        .collect()
}

pub fn hearts(actions: &[Action]) -> Vec<Heart> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SetHeart(h) => Some(*h),
            _ => None,
        })
        .collect()
}

pub fn persisted(actions: &[Action]) -> Option<Vec<u8>> {
    actions.iter().rev().find_map(|a| match a {
        Action::Persist(blob) => Some(blob.as_bytes().to_vec()),
        _ => None,
    })
}

pub fn starts_microphone(actions: &[Action]) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::StartRecording { .. }))
}

/// A toy, its household and the server it talks to.
pub struct World {
    pub toy: Toy,
    pub rng: ChaCha20Rng,
    pub family: Family,
    pub now_ms: u64,
    /// The roster the server last sent.
    pub roster: Option<SignedRoster>,
    /// The toy's last saved state.
    pub saved: Option<Vec<u8>>,
    /// The toy's audio storage, as the shell keeps it apart from the state.
    pub audio: std::collections::BTreeMap<MessageId, Vec<u8>>,
    /// What the speaker played, read from the audio storage.
    pub heard: Vec<(MessageId, Vec<u8>)>,
}

impl World {
    /// A toy fresh out of the box, switched on at `wall_ms`.
    pub fn new_toy_at(wall_ms: u64) -> Self {
        let mut rng = rng(77);
        let toy = Toy::first_start(&mut rng);
        let mut world = Self {
            toy,
            rng,
            family: Family::new(),
            now_ms: 1_000,
            roster: None,
            saved: None,
            audio: std::collections::BTreeMap::new(),
            heard: Vec::new(),
        };
        let actions = world.event(Event::PowerOn {
            now_ms: 1_000,
            wall_clock_unix_ms: Some(wall_ms),
        });
        assert!(persisted(&actions).is_some(), "first start saves the keys");
        world
    }

    pub fn new_toy() -> Self {
        Self::new_toy_at(NOON_UTC_MS)
    }

    /// A toy paired into a household whose genesis roster has `settings`, mum as owner, dad
    /// as guardian, grandma as family and the uncle blocked; connected and authenticated.
    pub fn paired_with(settings: HouseholdSettings) -> Self {
        let mut world = Self::new_toy();
        world.pair(settings);
        world.connect();
        world
    }

    pub fn paired() -> Self {
        Self::paired_with(settings())
    }

    pub fn event(&mut self, event: Event<'_>) -> Vec<Action> {
        let actions = self.toy.handle(event, &mut self.rng);
        self.apply(&actions);
        actions
    }

    /// As [`World::receive`], handing the toy a frame it may decrypt where it lies (as the
    /// firmware does): the audio it points to is stored before its actions are applied.
    pub fn receive_in_place(&mut self, frame: Frame<'_>) -> Vec<Action> {
        let mut bytes = encode(frame);
        let (actions, audio) = self.toy.handle_frame_in_place(&mut bytes, &mut self.rng);
        if let Some(audio) = audio {
            let stored = self.audio.entry(audio.message_id).or_default();
            let at = usize::try_from(audio.offset).unwrap();
            assert_eq!(at, stored.len(), "audio is written in order");
            stored.extend_from_slice(&bytes[audio.range]);
        }
        self.apply(&actions);
        actions
    }

    fn apply(&mut self, actions: &[Action]) {
        for action in actions {
            match action {
                Action::Persist(blob) => self.saved = Some(blob.as_bytes().to_vec()),
                Action::StoreAudio {
                    message_id,
                    offset,
                    bytes,
                } => {
                    let audio = self.audio.entry(*message_id).or_default();
                    let at = usize::try_from(*offset).unwrap();
                    assert_eq!(at, audio.len(), "audio is written in order");
                    audio.extend_from_slice(bytes);
                }
                Action::DiscardAudio { message_id } => {
                    self.audio.remove(message_id);
                }
                Action::PlayAudio { message_id } => {
                    let audio = self.audio.get(message_id).expect("played audio is stored");
                    self.heard.push((*message_id, audio.clone()));
                }
                _ => {}
            }
        }
    }

    pub fn receive(&mut self, frame: Frame<'_>) -> Vec<Action> {
        let bytes = encode(frame);
        self.event(Event::FrameReceived(&bytes))
    }

    pub fn press(&mut self) -> Vec<Action> {
        self.event(Event::PawPressed { long: false })
    }

    pub fn advance(&mut self, ms: u64) -> Vec<Action> {
        self.now_ms += ms;
        self.event(Event::Timer {
            now_ms: self.now_ms,
        })
    }

    /// Connects and sends the challenge; returns what the toy answered.
    pub fn connect(&mut self) -> Vec<Action> {
        let mut actions = self.event(Event::Connected);
        actions.extend(self.receive(Frame::Challenge {
            nonce: NONCE,
            server_time_ms: NOON_UTC_MS,
        }));
        actions
    }

    pub fn genesis(&self, settings: HouseholdSettings) -> Roster {
        let f = &self.family;
        Roster::genesis(
            household_id(),
            settings,
            vec![
                member(&f.mum, 1, Role::Owner, MemberStatus::Approved),
                member(&f.dad, 2, Role::Guardian, MemberStatus::Approved),
                member(&f.grandma, 3, Role::Family, MemberStatus::Approved),
                member(&f.uncle, 4, Role::Family, MemberStatus::Blocked),
                toy_member(&self.toy.identity()),
            ],
        )
    }

    /// The whole pairing story, checked step by step.
    pub fn pair(&mut self, settings: HouseholdSettings) {
        self.pair_into(self.genesis(settings));
    }

    /// Pairs the toy into a household whose first roster (signed by mum) is `genesis`.
    pub fn pair_into(&mut self, genesis: Roster) {
        self.event(Event::Connected);
        self.receive(Frame::Challenge {
            nonce: NONCE,
            server_time_ms: NOON_UTC_MS,
        });
        let actions = self.event(Event::PawPressed { long: true });
        assert_eq!(sent_types(&actions), vec![FrameType::PairRequest]);
        let code = PairingCode::from_number(482_913).unwrap();
        let actions = self.receive(Frame::PairCode {
            code,
            expires_in_s: 600,
        });
        assert_eq!(spoken(&actions), vec![Prompt::PairingCode(code)]);
        let roster = SignedRoster::sign(&genesis, &self.family.mum).unwrap();
        let bytes = roster.encode();
        let actions = self.receive(Frame::Paired {
            household_id: household_id(),
            signed_roster: &bytes,
        });
        let number = Prompt::SafetyNumber(self.toy.identity().safety_number());
        assert_eq!(
            spoken(&actions),
            vec![Prompt::Paired, number],
            "{actions:?}"
        );
        assert_eq!(self.toy.household_id(), Some(household_id()));
        self.roster = Some(roster);
        self.event(Event::Disconnected);
    }

    /// The current roster, edited into its next version and signed by `signer`.
    pub fn next_roster(&self, signer: &DeviceKeys, edit: impl FnOnce(&mut Roster)) -> SignedRoster {
        let mut next = self
            .roster
            .as_ref()
            .unwrap()
            .unverified_roster()
            .next_version();
        edit(&mut next);
        SignedRoster::sign(&next, signer).unwrap()
    }

    /// Sends a roster update; remembers it as current if the toy did not refuse it.
    pub fn update_roster(&mut self, roster: SignedRoster) -> Vec<Action> {
        let bytes = roster.encode();
        let actions = self.receive(Frame::RosterUpdate {
            signed_roster: &bytes,
        });
        let refused = reports(&actions)
            .iter()
            .any(|r| matches!(r, Report::RosterRefused { .. }));
        if !refused {
            self.roster = Some(roster);
        }
        actions
    }

    /// The toy's identity as its roster lists it.
    pub fn toy_in_roster(&self) -> PublicIdentity {
        self.roster
            .as_ref()
            .unwrap()
            .unverified_roster()
            .member(self.toy.device_id())
            .unwrap()
            .public_identity()
    }

    /// A voice message from `sender` to the toy.
    pub fn message_from(&self, sender: &DeviceKeys, id: MessageId) -> Vec<u8> {
        seal_voice(
            sender,
            household_id(),
            id,
            &[self.toy_in_roster(), self.family.mum.public()],
            &voice(1000),
        )
    }

    /// A voice message to the toy's current keys, paired or not.
    pub fn message_from_any(&self, sender: &DeviceKeys, id: MessageId) -> Vec<u8> {
        let toy = match &self.roster {
            Some(_) => self.toy_in_roster(),
            None => self.toy.identity(),
        };
        seal_voice(sender, household_id(), id, &[toy], &voice(1000))
    }

    pub fn deliver(&mut self, envelope: &[u8]) -> Vec<Action> {
        self.receive(Frame::Deliver { envelope })
    }
}
