//! A real `pawpost serve` child process over a data folder seeded directly through the
//! store: the owner, households and toys exist before the server starts, so that tens of
//! thousands of toys need no pairing.
use crate::keys::BenchDevice;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use eyre::{bail, eyre, Result, WrapErr};
use pawpost_crypto::{HouseholdSettings, Member, MemberStatus, Role, Roster, SignedRoster};
use pawpost_domain::{
    Account, AccountId, Device, DeviceId, DeviceKind, Email, Household, HouseholdId,
};
use pawpost_storage::{DatabaseUrl, SQLITE_FILE};
use pawpost_store::MetadataStore;
use pawpost_store_postgres::PostgresStore;
use pawpost_store_sqlite::SqliteStore;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use uuid::Uuid;

pub const OWNER_EMAIL: &str = "bench-owner@example.org";
pub const OWNER_PASSWORD: &str = "violet kettle harbour sprocket";

/// The owner's browser device; signs every roster.
pub fn owner_device() -> BenchDevice {
    BenchDevice::new("owner-device", 0)
}

pub fn settings() -> HouseholdSettings {
    HouseholdSettings {
        quiet_hours: None,
        timezone_offset_minutes: 0,
        parent_approves_before_play: false,
        retention_days: 30,
    }
}

/// Households and the toys in each: toy `first_toy + k` for k below `toys`.
#[derive(Clone, Debug)]
pub struct HouseholdPlan {
    pub id: Uuid,
    pub first_toy: u64,
    pub toys: u64,
}

/// Toy indices `first..first + count`, `per_household` toys to a household.
pub fn plan(first: u64, count: u64, per_household: u64, label: &str) -> Vec<HouseholdPlan> {
    let per = per_household.max(1);
    let mut out = Vec::new();
    let mut next = first;
    let mut n = 0u64;
    while next < first + count {
        let toys = per.min(first + count - next);
        let seed = BenchDevice::new(label, n);
        out.push(HouseholdPlan {
            id: seed.uuid(),
            first_toy: next,
            toys,
        });
        next += toys;
        n += 1;
    }
    out
}

/// The genesis roster of one household: the owner's device and its toys.
pub fn roster_for(plan: &HouseholdPlan, owner_account: Uuid) -> Result<SignedRoster> {
    let owner = owner_device();
    let mut members = vec![Member::new(
        &owner.public(),
        pawpost_crypto::AccountId(*owner_account.as_bytes()),
        Role::Owner,
        MemberStatus::Approved,
    )];
    for i in plan.first_toy..plan.first_toy + plan.toys {
        members.push(Member::new(
            &BenchDevice::toy(i).public(),
            pawpost_crypto::AccountId(*plan.id.as_bytes()),
            Role::Toy,
            MemberStatus::Approved,
        ));
    }
    let roster = Roster::genesis(
        pawpost_crypto::HouseholdId(*plan.id.as_bytes()),
        settings(),
        members,
    );
    SignedRoster::sign(&roster, &owner.keys).map_err(|e| eyre!("signing a roster: {e:?}"))
}

pub struct Seeded {
    pub owner_account: Uuid,
}

/// Where [`seed`] writes the households and toys.
pub enum SeedInto<'a> {
    /// `DIR/pawpost.db`, the SQLite database a server started with `--data-dir DIR` opens.
    Sqlite(&'a Path),
    /// A PostgreSQL schema (created, and migrated, if missing), as the server opens it
    /// with `--database-url` and `--database-schema`.
    Postgres(&'a SharedStore),
}

/// Writes the owner account, `households` and their toys through the server's own store
/// crate. Rosters of `with_rosters` are stored too (the others are published over HTTP
/// later).
///
/// A SQLite database is built in memory-backed /dev/shm when it exists (no fsync cost
/// for a setup step) and copied into place; the server then runs on the real disk. A
/// PostgreSQL schema is written in place.
pub async fn seed(
    into: SeedInto<'_>,
    households: &[HouseholdPlan],
    with_rosters: &[HouseholdPlan],
) -> Result<Seeded> {
    match into {
        SeedInto::Sqlite(data_dir) => seed_sqlite(data_dir, households, with_rosters).await,
        SeedInto::Postgres(shared) => {
            let store = PostgresStore::open_in_schema(&shared.url, &shared.schema)
                .await
                .map_err(|e| {
                    eyre!(
                        "opening PostgreSQL schema {} to seed it: {e}; check --database-url \
                         and that its role may create schemas in the database",
                        shared.schema
                    )
                })?;
            let seeded = write_seed(&store, households, with_rosters).await;
            store.pool().close().await;
            seeded
        }
    }
}

async fn seed_sqlite(
    data_dir: &Path,
    households: &[HouseholdPlan],
    with_rosters: &[HouseholdPlan],
) -> Result<Seeded> {
    let staging_root = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let staging = staging_root.join(format!("pawpost-bench-seed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)?;
    let store = SqliteStore::open(DatabaseUrl::sqlite_in(&staging).as_str())
        .await
        .map_err(|e| eyre!("opening the seed database: {e}"))?;
    let seeded = write_seed(&store, households, with_rosters).await?;
    store.close().await;
    drop(store);
    // No connection is open any more: the database file and its log, if one is left,
    // are a consistent copy.
    std::fs::create_dir_all(data_dir)?;
    for name in [SQLITE_FILE.to_owned(), format!("{SQLITE_FILE}-wal")] {
        let from = staging.join(&name);
        if from.exists() {
            std::fs::copy(&from, data_dir.join(&name))
                .wrap_err_with(|| format!("copying {}", from.display()))?;
        }
    }
    let _ = std::fs::remove_dir_all(&staging);
    Ok(seeded)
}

/// The rows [`seed`] writes, through any store.
async fn write_seed(
    store: &dyn MetadataStore,
    households: &[HouseholdPlan],
    with_rosters: &[HouseholdPlan],
) -> Result<Seeded> {
    let hasher = pawpost_server::passwords::PasswordHasher::new(1, 1)
        .map_err(|e| eyre!("password hasher: {e}"))?;
    let now = OffsetDateTime::now_utc();
    let owner = AccountId::new();
    store
        .create_account(&Account {
            id: owner,
            email: Email::parse(OWNER_EMAIL).map_err(|e| eyre!("{e:?}"))?,
            display_name: "Bench Owner".into(),
            password_hash: hasher
                .hash(OWNER_PASSWORD.into())
                .await
                .map_err(|e| eyre!("{e}"))?,
            created_at: now,
            locked: false,
            email_verified_at: None,
        })
        .await
        .map_err(|e| eyre!("create_account: {e}"))?;
    let all = households.iter().chain(with_rosters.iter());
    for plan in all {
        let household = HouseholdId(plan.id);
        store
            .create_household(
                &Household {
                    id: household,
                    name: "Bench family".into(),
                    created_at: now,
                },
                owner,
            )
            .await
            .map_err(|e| eyre!("create_household: {e}"))?;
        for i in plan.first_toy..plan.first_toy + plan.toys {
            let toy = BenchDevice::toy(i);
            store
                .create_device(&Device {
                    id: DeviceId(toy.uuid()),
                    kind: DeviceKind::Toy,
                    account_id: None,
                    household_id: Some(household),
                    identity: toy.public().encode().to_vec(),
                    label: format!("Bench toy {i}"),
                    created_at: now,
                })
                .await
                .map_err(|e| eyre!("create_device: {e}"))?;
        }
    }
    for plan in with_rosters {
        let signed = roster_for(plan, owner.0)?;
        store
            .insert_roster(&pawpost_domain::StoredRoster {
                household_id: HouseholdId(plan.id),
                version: 1,
                signed: signed.encode(),
                created_at: now,
            })
            .await
            .map_err(|e| eyre!("insert_roster: {e}"))?;
    }
    Ok(Seeded {
        owner_account: owner.0,
    })
}

/// Prefix of the PostgreSQL schemas the bench makes; a run that was killed leaves one
/// behind, which `DROP SCHEMA pawpost_bench_... CASCADE` removes.
pub const SCHEMA_PREFIX: &str = "pawpost_bench";

/// One metadata database and one blob folder shared by several server processes: a
/// fresh PostgreSQL schema on `url`, and a folder every process reaches as `file://`.
pub struct SharedStore {
    pub url: String,
    pub schema: String,
    pub blob_dir: PathBuf,
}

impl SharedStore {
    /// A new schema name on `url` (created when seeded) and `blob_dir` (created now).
    pub fn fresh(url: &str, blob_dir: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&blob_dir)?;
        Ok(Self {
            url: url.to_owned(),
            schema: format!("{SCHEMA_PREFIX}_{}", Uuid::new_v4().simple()),
            blob_dir,
        })
    }

    /// The arguments that point `pawpost serve` at this store.
    pub fn server_args(&self) -> Vec<String> {
        vec![
            "--database-url".into(),
            self.url.clone(),
            "--database-schema".into(),
            self.schema.clone(),
            "--blob-url".into(),
            format!("file://{}", self.blob_dir.display()),
        ]
    }

    /// The PostgreSQL server's version and durability settings, for the results.
    pub async fn describe(&self) -> Result<Value> {
        let mut conn = self.connect().await?;
        let mut out = serde_json::Map::new();
        for setting in [
            "server_version",
            "fsync",
            "synchronous_commit",
            "max_connections",
        ] {
            let value: String = sqlx::query_scalar(&format!("SHOW {setting}"))
                .fetch_one(&mut conn)
                .await
                .map_err(|e| eyre!("SHOW {setting} on PostgreSQL: {e}"))?;
            out.insert(setting.to_owned(), Value::String(value));
        }
        let _ = conn.close().await;
        Ok(Value::Object(out))
    }

    /// Drops the schema with everything in it. The blob folder goes with the scratch
    /// folder it lives in.
    pub async fn drop_schema(&self) -> Result<()> {
        let mut conn = self.connect().await?;
        sqlx::query(&format!(
            "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
            self.schema
        ))
        .execute(&mut conn)
        .await
        .map_err(|e| {
            eyre!(
                "dropping PostgreSQL schema {}: {e}; drop it by hand with DROP SCHEMA {} CASCADE",
                self.schema,
                self.schema
            )
        })?;
        let _ = conn.close().await;
        Ok(())
    }

    async fn connect(&self) -> Result<PgConnection> {
        PgConnection::connect(&self.url).await.map_err(|e| {
            eyre!("connecting to PostgreSQL: {e}; check --database-url (postgres://USER@HOST:PORT/DATABASE)")
        })
    }
}

/// A free port on 127.0.0.1 (bound and released; the server binds it right after).
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
    pub base: String,
    /// From spawn to the first successful /healthz.
    pub startup: Duration,
}

impl ServerProcess {
    pub async fn start(bin: &Path, data_dir: &Path, log: &Path, extra: &[String]) -> Result<Self> {
        if !bin.exists() {
            bail!(
                "{} not found: build it with `cargo build --release -p pawpost`",
                bin.display()
            );
        }
        let port = free_port()?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let log_file = std::fs::File::create(log)?;
        let started = Instant::now();
        let child = Command::new(bin)
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg(addr.to_string())
            .args(extra)
            .args(
                crate::tls::current()
                    .map(|t| t.server_args())
                    .unwrap_or_default(),
            )
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .wrap_err_with(|| format!("starting {}", bin.display()))?;
        let mut server = Self {
            child,
            addr,
            base: format!("{}://{addr}", crate::tls::scheme()),
            startup: Duration::ZERO,
        };
        let health =
            crate::tls::http_client(reqwest::Client::builder().timeout(Duration::from_secs(2)))?;
        let deadline = started + Duration::from_secs(60);
        loop {
            if let Ok(r) = health.get(format!("{}/healthz", server.base)).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            if let Some(status) = server.child.try_wait()? {
                bail!("pawpost serve exited with {status}; see {}", log.display());
            }
            if Instant::now() > deadline {
                bail!("pawpost serve not ready after 60 s; see {}", log.display());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        server.startup = started.elapsed();
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn rss_kib(&self) -> Result<u64> {
        rss_kib(self.pid())
    }

    pub fn stop(mut self) -> Result<()> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// VmRSS of a process, in KiB, from /proc/<pid>/status.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| eyre!("no VmRSS for pid {pid}"))
}

/// The owner signed in over the API, with the owner's device registered.
pub struct OwnerClient {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl OwnerClient {
    pub async fn sign_in(base: &str) -> Result<Self> {
        let http = crate::tls::http_client(
            reqwest::Client::builder()
                .pool_max_idle_per_host(1024)
                .timeout(Duration::from_secs(60)),
        )?;
        let response = http
            .post(format!("{base}/api/v1/sessions"))
            .json(&json!({"email": OWNER_EMAIL, "password": OWNER_PASSWORD}))
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("sign-in answered {status}: {body}");
        }
        let token = body["token"]
            .as_str()
            .ok_or_else(|| eyre!("no token in {body}"))?
            .to_owned();
        Ok(Self {
            http,
            base: base.to_owned(),
            token,
        })
    }

    async fn post(&self, path: &str, body: Value) -> Result<(reqwest::StatusCode, Value)> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// Registers the owner's device (POST /api/v1/devices).
    pub async fn register_owner_device(&self) -> Result<()> {
        let identity = URL_SAFE_NO_PAD.encode(owner_device().public().encode());
        let (status, body) = self
            .post(
                "/api/v1/devices",
                json!({"identity": identity, "label": "Bench owner's laptop"}),
            )
            .await?;
        if status != reqwest::StatusCode::CREATED {
            bail!("registering the owner's device answered {status}: {body}");
        }
        Ok(())
    }

    /// The same signed-in owner, talking to the server process at `base` (processes
    /// sharing one store accept each other's sessions).
    pub fn at(&self, base: &str) -> Self {
        Self {
            http: self.http.clone(),
            base: base.to_owned(),
            token: self.token.clone(),
        }
    }

    /// Publishes a household's genesis roster (POST /api/v1/households/{id}/roster).
    pub async fn publish_roster(&self, plan: &HouseholdPlan, owner_account: Uuid) -> Result<()> {
        let signed = roster_for(plan, owner_account)?;
        let (status, body) = self
            .post(
                &format!("/api/v1/households/{}/roster", plan.id),
                json!({"signed_roster": URL_SAFE_NO_PAD.encode(signed.encode())}),
            )
            .await?;
        if status != reqwest::StatusCode::CREATED {
            bail!("publishing a roster answered {status}: {body}");
        }
        Ok(())
    }
}
