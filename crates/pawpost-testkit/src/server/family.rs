//! A family with keys: devices, a signed roster, sealed envelopes; shared by the stories
//! about messages and toys.
use super::{invited_member, parent_with_household, Client, TestServer};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use pawpost_crypto::{
    os_rng, seal, DeviceKeys, HouseholdSettings, MediaType, Member, MemberStatus, MessageId,
    MessageParams, PublicIdentity, Role, Roster, SignedRoster,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

pub const VOICE: &[u8] =
    include_bytes!("../../../pawpost-media/tests/fixtures/hello-mono-20ms.ogg");
pub const CHILD_NAME: &str = "Matilda Quenneville-Oyelaran";

pub fn uuid_bytes(text: &str) -> [u8; 16] {
    *Uuid::parse_str(text).unwrap().as_bytes()
}

pub fn new_device() -> DeviceKeys {
    DeviceKeys::generate(
        &mut os_rng(),
        pawpost_crypto::DeviceId(*Uuid::new_v4().as_bytes()),
    )
}

pub async fn register(client: &Client, keys: &DeviceKeys, label: &str) -> Value {
    let identity = URL_SAFE_NO_PAD.encode(keys.public().encode());
    let (status, body) = client
        .post(
            "/api/v1/devices",
            json!({"identity": identity, "label": label}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

pub fn member(keys: &DeviceKeys, account: &str, role: Role) -> Member {
    Member::new(
        &keys.public(),
        pawpost_crypto::AccountId(uuid_bytes(account)),
        role,
        MemberStatus::Approved,
    )
}

pub fn settings() -> HouseholdSettings {
    HouseholdSettings {
        quiet_hours: None,
        timezone_offset_minutes: 60,
        parent_approves_before_play: false,
        retention_days: 30,
    }
}

pub async fn publish(
    client: &Client,
    household: &str,
    signed: &SignedRoster,
) -> (StatusCode, Value) {
    client
        .post(
            &format!("/api/v1/households/{household}/roster"),
            json!({"signed_roster": URL_SAFE_NO_PAD.encode(signed.encode())}),
        )
        .await
}

pub fn sealed(
    sender: &DeviceKeys,
    household: &str,
    media: MediaType,
    recipients: &[PublicIdentity],
    payload: &[u8],
) -> (Vec<u8>, Uuid) {
    let id = Uuid::now_v7();
    let params = MessageParams {
        message_id: MessageId(*id.as_bytes()),
        household_id: pawpost_crypto::HouseholdId(uuid_bytes(household)),
        created_at_ms: 1_764_000_000_000,
        media_type: media,
        duration_ms: if media == MediaType::OggOpus { 3633 } else { 0 },
        recipients,
    };
    (seal(&mut os_rng(), sender, &params, payload).unwrap(), id)
}

pub async fn upload(client: &Client, household: &str, envelope: Vec<u8>) -> (StatusCode, Value) {
    let mut request = client
        .http
        .post(format!(
            "{}/api/v1/households/{household}/messages",
            client.base
        ))
        .header("content-type", "application/octet-stream")
        .body(envelope);
    if let Some(token) = &client.token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub async fn download(client: &Client, message: &str) -> (StatusCode, Vec<u8>) {
    let response = client
        .http
        .get(format!("{}/api/v1/messages/{message}", client.base))
        .bearer_auth(client.token.as_ref().unwrap())
        .send()
        .await
        .unwrap();
    (response.status(), response.bytes().await.unwrap().to_vec())
}

/// Every byte the server keeps: database files and blobs, on PostgreSQL a dump of the
/// server's schema, and on S3 its objects with their keys.
pub fn everything_stored(server: &TestServer) -> Vec<u8> {
    let mut all = Vec::new();
    if let Some((url, schema)) = &server.postgres {
        let dump = std::process::Command::new("pg_dump")
            .args(["--data-only", "--schema", schema, url])
            .output()
            .expect("pg_dump runs");
        assert!(
            dump.status.success(),
            "{}",
            String::from_utf8_lossy(&dump.stderr)
        );
        all.extend(dump.stdout);
    }
    let mut stack = vec![server.data.path().join("data")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                all.extend(std::fs::read(path).unwrap());
            }
        }
    }
    for (key, bytes) in bucket_objects(server).unwrap_or_default() {
        all.extend(key.into_bytes());
        all.extend(bytes);
    }
    all
}

/// The server's objects in the test bucket, keys and contents, when its blobs are on S3.
pub fn bucket_objects(server: &TestServer) -> Option<Vec<(String, Vec<u8>)>> {
    let prefix = server.s3_prefix.as_deref()?;
    let moto = super::s3().expect("a server with an S3 prefix runs on moto");
    Some(moto.objects(super::S3_BUCKET, prefix))
}

/// How many blobs the server holds, in its blob folder or under its bucket prefix.
pub fn blob_count(server: &TestServer) -> usize {
    if let Some(objects) = bucket_objects(server) {
        return objects.len();
    }
    let mut count = 0;
    let mut stack = vec![server.data.path().join("data/blobs")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                count += 1;
            }
        }
    }
    count
}

/// Whether `needle` occurs raw or hex-encoded (as a database dump shows bytes).
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let hex = hex::encode(needle).into_bytes();
    haystack.windows(needle.len()).any(|w| w == needle)
        || haystack.windows(hex.len()).any(|w| w == hex.as_slice())
}

pub struct Family {
    pub server: TestServer,
    pub home: String,
    pub mum: Client,
    pub mum_keys: DeviceKeys,
    pub gran: Client,
    pub gran_keys: DeviceKeys,
    pub gran_id: String,
    pub toy_keys: DeviceKeys,
    pub roster: SignedRoster,
}

/// A household with an owner, an approved grandmother, a toy, and a published roster.
pub async fn family() -> Family {
    family_on(TestServer::start().await).await
}

/// The same household on a server already started.
pub async fn family_on(server: TestServer) -> Family {
    let (mum, mum_id, home) = parent_with_household(&server, "mum@example.org").await;
    let (gran, gran_id) = invited_member(&server, &mum, &home, "gran@example.org", "family").await;
    mum.post(
        &format!("/api/v1/households/{home}/members/{gran_id}/approve"),
        json!({}),
    )
    .await;
    let (mum_keys, gran_keys, toy_keys) = (new_device(), new_device(), new_device());
    register(&mum, &mum_keys, "Mum's laptop").await;
    let view = register(&gran, &gran_keys, "Gran's tablet").await;
    assert_eq!(
        view["fingerprint"],
        gran_keys.public().fingerprint().to_string()
    );
    let roster = Roster::genesis(
        pawpost_crypto::HouseholdId(uuid_bytes(&home)),
        settings(),
        vec![
            member(&mum_keys, &mum_id, Role::Owner),
            member(&gran_keys, &gran_id, Role::Family),
            member(&toy_keys, &home, Role::Toy),
        ],
    );
    let signed = SignedRoster::sign(&roster, &mum_keys).unwrap();
    let (status, body) = publish(&mum, &home, &signed).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    Family {
        server,
        home,
        mum,
        mum_keys,
        gran,
        gran_keys,
        gran_id,
        toy_keys,
        roster: signed,
    }
}
