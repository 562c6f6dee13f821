//! A stand-in toy endpoint and a household to pair with, built from pawpost-crypto directly.

use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use pawpost_crypto::rand_core::Rng;
use pawpost_crypto::{
    os_rng, AccountId, DeviceId, DeviceKeys, HouseholdId, HouseholdSettings, MediaType, Member,
    MemberStatus, MessageId, MessageParams, PublicIdentity, Role, Roster, SignedRoster,
};
use pawpost_media::OggOpusWriter;
use pawpost_toy::{Frame, PairingCode};
use pawpost_toy_sim::{next_event, SimConfig, SimEvent, SimToy, TOY_WS_PATH};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// How long any one step may take before a test fails.
pub const STEP: Duration = Duration::from_secs(5);

pub const NONCE: [u8; 32] = [0x5a; 32];
pub const CODE: u32 = 482_913;

pub fn config(server: &str, state_dir: &Path) -> SimConfig {
    SimConfig {
        server: server.into(),
        state_dir: state_dir.to_path_buf(),
        speak_wav: false,
        language: pawpost_toy_sim::Language::default(),
        trust_cert: None,
    }
}

/// An address where nothing listens (a port that was free a moment ago).
pub async fn nowhere() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

pub fn random_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    os_rng().fill_bytes(&mut id);
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    id
}

pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .try_into()
        .unwrap()
}

/// A valid Ogg Opus file of about `ms` milliseconds (20 ms CELT packets).
pub fn voice(ms: u32) -> Vec<u8> {
    let mut writer = OggOpusWriter::new(1, 312, 0x5EED).unwrap();
    for _ in 0..(ms / 20) {
        writer.push_packet(&[31 << 3, 1, 2, 3]).unwrap();
    }
    writer.finish(0).unwrap()
}

pub async fn wait(
    events: &mut broadcast::Receiver<SimEvent>,
    pred: impl Fn(&SimEvent) -> bool,
) -> SimEvent {
    next_event(events, pred, STEP).await.unwrap()
}

/// The toy endpoint, accepting one connection at a time.
pub struct FakeServer {
    listener: TcpListener,
    pub base: String,
}

impl FakeServer {
    pub async fn bind() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        Self { listener, base }
    }

    pub async fn on(base: &str) -> Self {
        let addr = base.trim_start_matches("http://");
        let listener = TcpListener::bind(addr).await.unwrap();
        Self {
            listener,
            base: base.into(),
        }
    }

    /// The toy's next connection, checked to be on the toy path.
    // The handshake callback's error type is tungstenite's HTTP response, large by design.
    #[allow(clippy::result_large_err)]
    pub async fn accept(&self) -> Conn {
        let (stream, _) = tokio::time::timeout(STEP, self.listener.accept())
            .await
            .expect("the toy connects")
            .unwrap();
        let check_path = |request: &Request, response: Response| {
            assert_eq!(request.uri().path(), TOY_WS_PATH);
            Ok(response)
        };
        let ws = tokio_tungstenite::accept_hdr_async(stream, check_path)
            .await
            .unwrap();
        Conn { ws }
    }
}

pub struct Conn {
    ws: WebSocketStream<TcpStream>,
}

impl Conn {
    pub async fn send(&mut self, frame: Frame<'_>) {
        let bytes = frame.encode().unwrap();
        self.ws.send(Message::Binary(bytes.into())).await.unwrap();
    }

    pub async fn challenge(&mut self) {
        self.send(Frame::Challenge {
            nonce: NONCE,
            server_time_ms: now_unix_ms(),
        })
        .await;
    }

    /// The next frame the toy sends, as bytes.
    pub async fn recv(&mut self) -> Vec<u8> {
        loop {
            let message = tokio::time::timeout(STEP, self.ws.next())
                .await
                .expect("the toy sends a frame")
                .expect("the connection stays open")
                .unwrap();
            if let Message::Binary(bytes) = message {
                return bytes.to_vec();
            }
        }
    }

    /// Nothing arrives for `quiet`.
    pub async fn expect_nothing(&mut self, quiet: Duration) {
        if let Ok(message) = tokio::time::timeout(quiet, self.ws.next()).await {
            panic!("the toy sent {message:?}");
        }
    }

    pub async fn close(mut self) {
        self.ws.close(None).await.unwrap();
    }
}

/// A parent who owns a household and pairs the toy into it.
pub struct Household {
    pub id: HouseholdId,
    pub owner: DeviceKeys,
    pub roster: Option<SignedRoster>,
}

impl Household {
    pub fn new() -> Self {
        Self {
            id: HouseholdId(random_id()),
            owner: DeviceKeys::generate(&mut os_rng(), DeviceId(random_id())),
            roster: None,
        }
    }

    /// The genesis roster listing the owner and the toy, signed by the owner.
    pub fn roster_with(&mut self, toy: &PublicIdentity) -> Vec<u8> {
        let settings = HouseholdSettings {
            quiet_hours: None,
            timezone_offset_minutes: 0,
            parent_approves_before_play: false,
            retention_days: 30,
        };
        let account = AccountId(random_id());
        let roster = Roster::genesis(
            self.id,
            settings,
            vec![
                Member::new(
                    &self.owner.public(),
                    account,
                    Role::Owner,
                    MemberStatus::Approved,
                ),
                Member::new(toy, account, Role::Toy, MemberStatus::Approved),
            ],
        );
        let signed = SignedRoster::sign(&roster, &self.owner).unwrap();
        let bytes = signed.encode();
        self.roster = Some(signed);
        bytes
    }

    /// A voice message from the owner to the toy.
    pub fn message(&self, toy: &PublicIdentity, id: MessageId, ogg: &[u8]) -> Vec<u8> {
        let recipients = [*toy, self.owner.public()];
        let params = MessageParams {
            message_id: id,
            household_id: self.id,
            created_at_ms: now_unix_ms(),
            media_type: MediaType::OggOpus,
            duration_ms: 1000,
            recipients: &recipients,
        };
        pawpost_crypto::seal(&mut os_rng(), &self.owner, &params, ogg).unwrap()
    }
}

/// The server side of pairing, checked step by step: challenge, long press, verified
/// `PairRequest`, code, roster; then the toy's fresh connection, authenticated. Returns the
/// toy's identity as it presented it, and that connection.
pub async fn pair(
    toy: &SimToy,
    server: &FakeServer,
    mut conn: Conn,
    household: &mut Household,
) -> (PublicIdentity, Conn) {
    let mut events = toy.events();
    conn.challenge().await;
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
    conn.send(Frame::PairCode {
        code: PairingCode::from_number(CODE).unwrap(),
        expires_in_s: 600,
    })
    .await;
    wait(&mut events, |e| matches!(e, SimEvent::PairingCode { .. })).await;
    let roster = household.roster_with(&identity);
    conn.send(Frame::Paired {
        household_id: household.id,
        signed_roster: &roster,
    })
    .await;
    wait(&mut events, |e| matches!(e, SimEvent::Paired { .. })).await;

    // The toy leaves the pairing connection and authenticates on a new one.
    let mut conn = server.accept().await;
    conn.challenge().await;
    // A toy of protocol version 2 says so before its `Auth`.
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
    assert_eq!(device_id, identity.device_id);
    assert_eq!(roster_version, 1);
    assert!(pawpost_toy::signing::verify_auth(
        &identity,
        &NONCE,
        roster_version,
        &signature
    ));
    (identity, conn)
}
