//! A real server on 127.0.0.1:0 with its own data folder, and a small API client.

pub mod family;
pub mod mail;
pub mod toys;

use crate::moto::MotoServer;
use pawpost_server::config::{RateLimit, ServerConfig};
use pawpost_server::{RunningServer, StartError};
use pawpost_storage::{BlobUrl, DatabaseUrl, StorageConfig};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::OnceLock;
use std::time::Duration;

/// Failed sign-ins allowed per account in these stories.
pub const TEST_LOGIN_FAILURES: u32 = 5;
/// A password that passes every rule.
pub const GOOD_PASSWORD: &str = "violet kettle harbour sprocket";

pub struct TestServer {
    pub base: String,
    /// With TLS: the server's self-signed certificate (PEM), which its clients trust.
    pub tls_cert: Option<std::path::PathBuf>,
    /// The PostgreSQL URL and schema when the stories run on PostgreSQL.
    pub postgres: Option<(String, String)>,
    /// The key prefix in `S3_BUCKET` when the stories keep their blobs on S3.
    pub s3_prefix: Option<String>,
    pub server: Option<RunningServer>,
    /// Where the server keeps its data (`None` for a server elsewhere).
    pub storage: Option<StorageConfig>,
    pub data: tempfile::TempDir,
}

pub fn test_config(data: &std::path::Path) -> ServerConfig {
    let mut config = ServerConfig::with_data_dir(data.join("data"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.login_failures_per_account = RateLimit {
        max: TEST_LOGIN_FAILURES,
        window: Duration::from_secs(600),
    };
    config.signups_per_address = RateLimit {
        max: 1000,
        window: Duration::from_secs(600),
    };
    config
}

/// Where a story's server keeps its data: in `data_dir`, on PostgreSQL in a fresh schema
/// and on S3 under a fresh prefix when the stories run there.
pub fn test_storage(data_dir: &std::path::Path) -> StorageConfig {
    let mut storage = StorageConfig::with_data_dir(data_dir);
    if let Some(url) = postgres_url() {
        storage.database = url
            .parse()
            .expect("PAWPOST_TEST_DATABASE_URL is postgres://");
        storage.database_schema = Some(format!("pawpost_story_{}", uuid::Uuid::new_v4().simple()));
    }
    if let Some(moto) = s3() {
        let prefix = format!("story-{}", uuid::Uuid::new_v4().simple());
        storage.blobs = BlobUrl::S3(moto.blob_url(S3_BUCKET, &prefix));
    }
    storage
}

/// Starts a server with `config` on the storage `test_storage` chooses for its data
/// folder.
pub async fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
    let storage = test_storage(&config.data_dir);
    pawpost_server::start(config, pawpost_storage::open(&storage)).await
}

/// The bucket that holds every story's blobs when they run on S3.
pub const S3_BUCKET: &str = "pawpost-stories";

/// With `PAWPOST_TEST_BLOB=s3`, every story keeps its blobs on one moto server started
/// for the test binary, each server under a fresh prefix of `S3_BUCKET`. Without
/// `moto_server` the stories are recorded as skipped on S3 and keep using a local folder
/// (or fail, in CI or with `PAWPOST_REQUIRE_S3=1`).
pub fn s3() -> Option<&'static MotoServer> {
    if std::env::var("PAWPOST_TEST_BLOB").as_deref() != Ok("s3") {
        return None;
    }
    static READY: OnceLock<Option<&'static MotoServer>> = OnceLock::new();
    let mut first = false;
    // The server reads S3 credentials from its environment only: moto's dummies.
    let ready = *READY.get_or_init(|| {
        first = true;
        MotoServer::shared_in_env(S3_BUCKET)
    });
    if ready.is_none() && !first {
        // Records this story too as run without S3, as the first one was.
        MotoServer::shared();
    }
    ready
}

/// The S3 prefix named by a `test_storage` blob URL.
fn s3_prefix_of(storage: &StorageConfig) -> Option<String> {
    let BlobUrl::S3(url) = &storage.blobs else {
        return None;
    };
    let rest = url.strip_prefix(&format!("s3://{S3_BUCKET}/"))?;
    Some(rest.split('?').next().unwrap_or(rest).to_owned())
}

/// With `PAWPOST_TEST_BACKEND=postgres` (and `PAWPOST_TEST_DATABASE_URL`), every story
/// runs on PostgreSQL, each server in a fresh schema.
pub fn postgres_url() -> Option<String> {
    match std::env::var("PAWPOST_TEST_BACKEND").as_deref() {
        Ok("postgres") => Some(
            std::env::var("PAWPOST_TEST_DATABASE_URL")
                .expect("PAWPOST_TEST_BACKEND=postgres needs PAWPOST_TEST_DATABASE_URL"),
        ),
        _ => None,
    }
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A server that serves https itself, with a self-signed certificate for 127.0.0.1.
    pub async fn start_tls() -> Self {
        Self::start_with(|config| {
            let dir = config.data_dir.parent().unwrap().to_owned();
            let rcgen::CertifiedKey { cert, key_pair } =
                rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
            let (cert_file, key_file) = (dir.join("tls.crt"), dir.join("tls.key"));
            std::fs::write(&cert_file, cert.pem()).unwrap();
            std::fs::write(&key_file, key_pair.serialize_pem()).unwrap();
            config.tls_cert = Some(cert_file);
            config.tls_key = Some(key_file);
        })
        .await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut ServerConfig)) -> Self {
        Self::start_with_storage(|config, _| adjust(config)).await
    }

    /// As `start_with`, choosing the storage too (`test_storage` to begin with).
    pub async fn start_with_storage(
        adjust: impl FnOnce(&mut ServerConfig, &mut StorageConfig),
    ) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut config = test_config(data.path());
        let mut storage = test_storage(&config.data_dir);
        adjust(&mut config, &mut storage);
        let postgres = match &storage.database {
            DatabaseUrl::Postgres(url) => Some(url.clone()).zip(storage.database_schema.clone()),
            DatabaseUrl::Sqlite { .. } => None,
        };
        let tls_cert = config.tls_cert.clone();
        let s3_prefix = s3_prefix_of(&storage);
        let server = pawpost_server::start(config, pawpost_storage::open(&storage))
            .await
            .expect("server starts");
        Self {
            base: server.local_url(),
            tls_cert,
            postgres,
            s3_prefix,
            server: Some(server),
            storage: Some(storage),
            data,
        }
    }

    /// A server that runs elsewhere (another process) at `base`, e.g.
    /// `http://127.0.0.1:PORT`: the clients of these stories, pointed at it. Its data and
    /// schema are the other process's business.
    pub fn at(base: impl Into<String>) -> Self {
        Self {
            base: base.into(),
            tls_cert: None,
            postgres: None,
            s3_prefix: None,
            server: None,
            storage: None,
            data: tempfile::tempdir().unwrap(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A client with no session.
    pub fn anonymous(&self) -> Client {
        Client {
            base: self.base.clone(),
            http: self.http_client(),
            token: None,
        }
    }

    /// A new HTTP client; with TLS, one that trusts this server's certificate.
    pub fn http_client(&self) -> reqwest::Client {
        let Some(cert) = &self.tls_cert else {
            return reqwest::Client::new();
        };
        let pem = std::fs::read(cert).unwrap();
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .build()
            .unwrap()
    }

    /// Signs up and signs in a new person; returns their client and account id.
    pub async fn person(&self, email: &str, name: &str) -> (Client, String) {
        let anon = self.anonymous();
        let (status, body) = anon
            .call(
                Method::POST,
                "/api/v1/accounts",
                Some(json!({"email": email, "password": GOOD_PASSWORD, "display_name": name})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let client = self.sign_in(email, GOOD_PASSWORD).await;
        (client, body["id"].as_str().unwrap().to_owned())
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Client {
        let anon = self.anonymous();
        let (status, body) = anon
            .call(
                Method::POST,
                "/api/v1/sessions",
                Some(json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        Client {
            token: Some(body["token"].as_str().unwrap().to_owned()),
            ..anon
        }
    }
}

/// How long dropping a story's schema waits for a lock before giving up (the schema is
/// then left behind).
const DROP_SCHEMA_LOCK_TIMEOUT: &str = "10s";

impl Drop for TestServer {
    /// Each story's PostgreSQL schema goes with it, so that runs do not pile up.
    ///
    /// The server runs in the story's own runtime, which this drop blocks: a transaction
    /// it had under way (a batch of last-seen times, say) can never finish and would
    /// hold its locks on the schema's tables for ever. Its connections are therefore
    /// ended first; and the drop waits for a lock at most [`DROP_SCHEMA_LOCK_TIMEOUT`].
    fn drop(&mut self) {
        if let Some((url, schema)) = &self.postgres {
            let sql = format!(
                "SET lock_timeout = '{DROP_SCHEMA_LOCK_TIMEOUT}'; \
                 SELECT pg_terminate_backend(pid) FROM (SELECT DISTINCT l.pid FROM pg_locks l \
                 JOIN pg_class c ON c.oid = l.relation \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = '{schema}' AND l.pid <> pg_backend_pid()) AS holders; \
                 DROP SCHEMA IF EXISTS {schema} CASCADE"
            );
            let _ = std::process::Command::new("psql")
                .args([url.as_str(), "-q", "-o", "/dev/null", "-c", &sql])
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

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }
}

/// A parent with a household, and the household's id.
pub async fn parent_with_household(server: &TestServer, email: &str) -> (Client, String, String) {
    let (parent, parent_id) = server.person(email, "Parent").await;
    let (status, body) = parent
        .post("/api/v1/households", json!({"name": "Lee family"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (parent, parent_id, body["id"].as_str().unwrap().to_owned())
}

/// Invites `email` into the household as `role`, has them accept, and returns their
/// client and account id (still pending).
pub async fn invited_member(
    server: &TestServer,
    parent: &Client,
    household: &str,
    email: &str,
    role: &str,
) -> (Client, String) {
    let (status, invitation) = parent
        .post(
            &format!("/api/v1/households/{household}/invitations"),
            json!({"role": role}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{invitation}");
    let (member, member_id) = server.person(email, "Relative").await;
    let (status, joined) = member
        .post(
            "/api/v1/invitations/accept",
            json!({"token": invitation["token"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{joined}");
    assert_eq!(joined["status"], "pending");
    (member, member_id)
}
