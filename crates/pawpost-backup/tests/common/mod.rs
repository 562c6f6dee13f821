//! A real server with a family in it, driven over HTTP, for the backup stories.
#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use pawpost_crypto::{
    os_rng, seal, DeviceKeys, HouseholdSettings, MediaType, Member, MemberStatus, MessageId,
    MessageParams, PublicIdentity, Role, Roster, SignedRoster,
};
use pawpost_server::config::{RateLimit, ServerConfig};
use pawpost_server::RunningServer;
use pawpost_storage::StorageConfig;
use pawpost_testkit::moto::MotoServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;
use uuid::Uuid;

pub const PASSWORD: &str = "violet kettle harbour sprocket";

/// The PostgreSQL server the stories may also run on.
pub fn postgres_url() -> Option<String> {
    std::env::var("PAWPOST_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// Where a story's server keeps its data: under `data_dir`, on PostgreSQL in `schema`
/// when one is given.
pub fn config(data_dir: &Path, postgres: Option<(&str, &str)>) -> StorageConfig {
    let mut storage = StorageConfig::with_data_dir(data_dir);
    if let Some((url, schema)) = postgres {
        storage.database = url.parse().unwrap();
        storage.database_schema = Some(schema.to_owned());
    }
    storage
}

/// A server on 127.0.0.1:0 on the storage `storage` names.
pub async fn start(storage: &StorageConfig) -> RunningServer {
    let mut config = ServerConfig::with_data_dir(&storage.data_dir);
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.signups_per_address = RateLimit {
        max: 1000,
        window: Duration::from_secs(600),
    };
    config.hash_workers = 2;
    pawpost_server::start(config, pawpost_storage::open(storage))
        .await
        .expect("the server starts")
}

/// The bucket of the stories that keep their blobs on S3; each takes prefixes of its own.
pub const S3_BUCKET: &str = "pawpost-backups";

/// The moto server of this test binary, with `S3_BUCKET` made and its dummy credentials
/// in the environment (where the server and the backup read them); `None`, said on
/// standard error, when `moto_server` is missing and `PAWPOST_REQUIRE_S3` is not 1.
pub fn moto() -> Option<&'static MotoServer> {
    static READY: OnceLock<Option<&'static MotoServer>> = OnceLock::new();
    // The server reads S3 credentials from its environment only: moto's dummies.
    *READY.get_or_init(|| MotoServer::shared_in_env(S3_BUCKET))
}

pub fn fresh_prefix() -> String {
    format!("backup-{}", Uuid::new_v4().simple())
}

pub fn fresh_schema() -> String {
    format!("pawpost_backup_{}", Uuid::new_v4().simple())
}

pub fn drop_schema(url: &str, schema: &str) {
    let output = std::process::Command::new("psql")
        .args([
            url,
            "-q",
            "-c",
            &format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
        ])
        .output()
        .expect("psql runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Drops the schemas a story made, even when it fails part-way.
pub struct Schemas {
    pub url: String,
    pub names: Vec<String>,
}

impl Drop for Schemas {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = std::process::Command::new("psql")
                .args([
                    self.url.as_str(),
                    "-q",
                    "-c",
                    &format!("DROP SCHEMA IF EXISTS {name} CASCADE"),
                ])
                .output();
        }
    }
}

#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
    pub token: Option<String>,
}

impl Client {
    pub fn anonymous(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            http: reqwest::Client::new(),
            token: None,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.call(Method::POST, path, Some(body)).await;
        assert!(status.is_success(), "POST {path}: {status} {answer}");
        answer
    }

    pub async fn upload(&self, household: &str, envelope: Vec<u8>) -> StatusCode {
        self.http
            .post(format!(
                "{}/api/v1/households/{household}/messages",
                self.base
            ))
            .header("content-type", "application/octet-stream")
            .bearer_auth(self.token.as_ref().unwrap())
            .body(envelope)
            .send()
            .await
            .unwrap()
            .status()
    }

    pub async fn download(&self, message: &str) -> (StatusCode, Vec<u8>) {
        let response = self
            .http
            .get(format!("{}/api/v1/messages/{message}", self.base))
            .bearer_auth(self.token.as_ref().unwrap())
            .send()
            .await
            .unwrap();
        (response.status(), response.bytes().await.unwrap().to_vec())
    }
}

pub async fn sign_up(base: &str, email: &str, name: &str) -> (Client, String) {
    let anon = Client::anonymous(base);
    let body = anon
        .post(
            "/api/v1/accounts",
            json!({"email": email, "password": PASSWORD, "display_name": name}),
        )
        .await;
    (
        sign_in(base, email).await,
        body["id"].as_str().unwrap().to_owned(),
    )
}

pub async fn sign_in(base: &str, email: &str) -> Client {
    let anon = Client::anonymous(base);
    let body = anon
        .post(
            "/api/v1/sessions",
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    Client {
        token: Some(body["token"].as_str().unwrap().to_owned()),
        ..anon
    }
}

fn uuid_bytes(text: &str) -> [u8; 16] {
    *Uuid::parse_str(text).unwrap().as_bytes()
}

fn new_device() -> DeviceKeys {
    DeviceKeys::generate(
        &mut os_rng(),
        pawpost_crypto::DeviceId(*Uuid::new_v4().as_bytes()),
    )
}

async fn register(client: &Client, keys: &DeviceKeys, label: &str) {
    let identity = URL_SAFE_NO_PAD.encode(keys.public().encode());
    client
        .post(
            "/api/v1/devices",
            json!({"identity": identity, "label": label}),
        )
        .await;
}

fn member(keys: &DeviceKeys, account: &str, role: Role) -> Member {
    Member::new(
        &keys.public(),
        pawpost_crypto::AccountId(uuid_bytes(account)),
        role,
        MemberStatus::Approved,
    )
}

pub struct Family {
    pub home: String,
    pub mum: Client,
    pub mum_keys: DeviceKeys,
    pub gran: Client,
    pub gran_keys: DeviceKeys,
    pub toy_keys: DeviceKeys,
    pub emails: Vec<&'static str>,
}

impl Family {
    /// An owner, an approved grandmother, a toy, and a roster signed by the owner.
    pub async fn create(base: &str) -> Self {
        let (mum, mum_id) = sign_up(base, "mum@example.org", "Mum").await;
        let home = mum
            .post("/api/v1/households", json!({"name": "Lee family"}))
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let invitation = mum
            .post(
                &format!("/api/v1/households/{home}/invitations"),
                json!({"role": "family"}),
            )
            .await;
        let (gran, gran_id) = sign_up(base, "gran@example.org", "Gran").await;
        gran.post(
            "/api/v1/invitations/accept",
            json!({"token": invitation["token"]}),
        )
        .await;
        mum.post(
            &format!("/api/v1/households/{home}/members/{gran_id}/approve"),
            json!({}),
        )
        .await;
        let (mum_keys, gran_keys, toy_keys) = (new_device(), new_device(), new_device());
        register(&mum, &mum_keys, "Mum's laptop").await;
        register(&gran, &gran_keys, "Gran's tablet").await;
        let roster = Roster::genesis(
            pawpost_crypto::HouseholdId(uuid_bytes(&home)),
            HouseholdSettings {
                quiet_hours: None,
                timezone_offset_minutes: 60,
                parent_approves_before_play: false,
                retention_days: 30,
            },
            vec![
                member(&mum_keys, &mum_id, Role::Owner),
                member(&gran_keys, &gran_id, Role::Family),
                member(&toy_keys, &home, Role::Toy),
            ],
        );
        let signed = SignedRoster::sign(&roster, &mum_keys).unwrap();
        mum.post(
            &format!("/api/v1/households/{home}/roster"),
            json!({"signed_roster": URL_SAFE_NO_PAD.encode(signed.encode())}),
        )
        .await;
        Family {
            home,
            mum,
            mum_keys,
            gran,
            gran_keys,
            toy_keys,
            emails: vec!["mum@example.org", "gran@example.org"],
        }
    }

    fn recipients(&self) -> Vec<PublicIdentity> {
        vec![
            self.toy_keys.public(),
            self.mum_keys.public(),
            self.gran_keys.public(),
        ]
    }

    /// Gran seals a voice message for everyone and sends it; returns its id and bytes.
    pub fn seal_from_gran(&self, payload: &[u8]) -> (String, Vec<u8>) {
        let id = Uuid::now_v7();
        let recipients = self.recipients();
        let params = MessageParams {
            message_id: MessageId(*id.as_bytes()),
            household_id: pawpost_crypto::HouseholdId(uuid_bytes(&self.home)),
            created_at_ms: 1_764_000_000_000,
            media_type: MediaType::OggOpus,
            duration_ms: 3633,
            recipients: &recipients,
        };
        let envelope = seal(&mut os_rng(), &self.gran_keys, &params, payload).unwrap();
        (id.to_string(), envelope)
    }

    /// Everything a family would miss after losing its server, as the API shows it.
    pub async fn visible_state(&self, mum: &Client) -> Value {
        let home = &self.home;
        json!({
            "households": mum.get("/api/v1/households").await,
            "members": mum.get(&format!("/api/v1/households/{home}/members")).await,
            "devices": mum.get(&format!("/api/v1/households/{home}/devices")).await,
            "roster": mum.get(&format!("/api/v1/households/{home}/roster")).await,
        })
    }
}
