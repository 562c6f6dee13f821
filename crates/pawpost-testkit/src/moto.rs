//! A throwaway S3-compatible server for tests: `moto_server` (Python's `moto[server]`)
//! on a free loopback port, with dummy credentials, stopped when dropped or when the
//! test process ends, however it ends.
//!
//! Without `moto_server` on PATH, [`MotoServer::start`] and [`MotoServer::shared`]
//! record the calling test as skipped ([`crate::skip`]) and return `None`; in CI, or
//! with `PAWPOST_REQUIRE_S3=1`, the test fails instead.
use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The program started.
pub const MOTO_PROGRAM: &str = "moto_server";
/// Set to `1` to fail, not skip, when `moto_server` is missing (as `CI` does).
pub const REQUIRE_ENV: &str = "PAWPOST_REQUIRE_S3";
/// What the tests that skip without moto miss.
pub const NEED: &str = "S3 (moto_server)";
/// The standard environment variables S3 clients, pawpost's among them, read credentials
/// from.
pub const ENV_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
pub const ENV_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
pub const ENV_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
/// Longest wait for a fresh moto server to answer.
pub const MOTO_START_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause between two checks whether it answers.
pub const MOTO_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Longest wait for one plain request to it.
pub const MOTO_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Credentials for the tests (moto accepts any).
pub const TEST_ACCESS_KEY_ID: &str = "pawpost-test-key-id";
pub const TEST_SECRET_ACCESS_KEY: &str = "pawpost-test-secret";
/// The region of the test buckets.
pub const TEST_REGION: &str = "us-east-1";
/// What the shell's exit status is when a program is missing.
const EXIT_NOT_FOUND: i32 = 127;

/// Runs moto, and stops it when its standard input closes: when the `MotoServer` is
/// dropped, or when the test process exits without dropping it (a `static`).
const SUPERVISOR: &str = r#"
command -v "$0" >/dev/null 2>&1 || exit 127
exec 3<&0
"$0" -H 127.0.0.1 -p "$1" </dev/null >/dev/null 2>&1 &
server=$!
{ read -r _ <&3; kill "$server" 2>/dev/null; } &
wait "$server"
"#;

pub struct MotoServer {
    supervisor: Child,
    port: u16,
}

/// An environment holding only the test credentials, for `S3BlobStore::open_with_env`.
pub fn test_env(name: &str) -> Option<String> {
    match name {
        ENV_ACCESS_KEY_ID => Some(TEST_ACCESS_KEY_ID.to_owned()),
        ENV_SECRET_ACCESS_KEY => Some(TEST_SECRET_ACCESS_KEY.to_owned()),
        _ => None,
    }
}

/// Why moto cannot run here, if it cannot: found once per test process.
static UNAVAILABLE: OnceLock<String> = OnceLock::new();

/// Records the calling test as skipped for `why` (or fails it where skips are not allowed).
fn unavailable(why: &str) -> Option<MotoServer> {
    crate::skip(
        NEED,
        &format!("{why}; install it with `python3 -m pip install 'moto[server]'`"),
        Some(REQUIRE_ENV),
    );
    None
}

impl MotoServer {
    /// Starts a moto server and waits until it answers; `None` when moto is missing and
    /// not required.
    pub fn start() -> Option<Self> {
        let port = free_port();
        let spawned = Command::new("sh")
            .args(["-c", SUPERVISOR, MOTO_PROGRAM, &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let supervisor = match spawned {
            Ok(child) => child,
            Err(e) => {
                let why = UNAVAILABLE
                    .get_or_init(|| format!("cannot run sh to start {MOTO_PROGRAM}: {e}"));
                return unavailable(why);
            }
        };
        let mut server = Self { supervisor, port };
        let deadline = Instant::now() + MOTO_START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = server.supervisor.try_wait() {
                return if status.code() == Some(EXIT_NOT_FOUND) {
                    unavailable(
                        UNAVAILABLE.get_or_init(|| format!("{MOTO_PROGRAM} is not on PATH")),
                    )
                } else {
                    panic!("{MOTO_PROGRAM} on port {port} stopped at once ({status})")
                };
            }
            if server.request("GET", "/").is_ok() {
                return Some(server);
            }
            assert!(
                Instant::now() < deadline,
                "{MOTO_PROGRAM} did not answer on port {port} within {MOTO_START_TIMEOUT:?}"
            );
            std::thread::sleep(MOTO_POLL_INTERVAL);
        }
    }

    /// The shared moto server with `bucket` made and its dummy credentials in this
    /// process's environment, for servers and tools that read them only from there (set
    /// once, before any of them starts); `None` as for [`MotoServer::start`].
    pub fn shared_in_env(bucket: &str) -> Option<&'static Self> {
        let moto = Self::shared()?;
        moto.create_bucket(bucket);
        static CREDENTIALS: OnceLock<()> = OnceLock::new();
        CREDENTIALS.get_or_init(|| {
            std::env::set_var(ENV_ACCESS_KEY_ID, TEST_ACCESS_KEY_ID);
            std::env::set_var(ENV_SECRET_ACCESS_KEY, TEST_SECRET_ACCESS_KEY);
            std::env::remove_var(ENV_SESSION_TOKEN);
        });
        Some(moto)
    }

    /// One moto server for the whole test process, started on first use; `None` as for
    /// [`MotoServer::start`], and each test that finds it missing is recorded.
    pub fn shared() -> Option<&'static Self> {
        static SHARED: OnceLock<Option<MotoServer>> = OnceLock::new();
        let mut first = false;
        let shared = SHARED
            .get_or_init(|| {
                first = true;
                Self::start()
            })
            .as_ref();
        if shared.is_none() && !first {
            unavailable(
                UNAVAILABLE
                    .get()
                    .map_or("moto did not start", String::as_str),
            );
        }
        shared
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `--blob-url` of `prefix` in `bucket` on this server.
    pub fn blob_url(&self, bucket: &str, prefix: &str) -> String {
        format!(
            "s3://{bucket}/{prefix}?endpoint={}&region={TEST_REGION}",
            self.endpoint()
        )
    }

    /// Creates `bucket` (which may exist already).
    pub fn create_bucket(&self, bucket: &str) {
        let status = self
            .request("PUT", &format!("/{bucket}"))
            .unwrap_or_else(|e| panic!("cannot create bucket {bucket} on moto: {e}"));
        assert_eq!(status, 200, "moto refused to create bucket {bucket}");
    }

    /// A plain client of `bucket`, which knows nothing of pawpost's blob store.
    fn client(&self, bucket: &str) -> AmazonS3 {
        AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(TEST_REGION)
            .with_endpoint(self.endpoint())
            .with_allow_http(true)
            .with_access_key_id(TEST_ACCESS_KEY_ID)
            .with_secret_access_key(TEST_SECRET_ACCESS_KEY)
            .build()
            .expect("an S3 client for moto")
    }

    /// Deletes every object under `prefix` in `bucket` (as an attacker with the bucket's
    /// credentials would); returns how many there were.
    pub fn delete_objects(&self, bucket: &str, prefix: &str) -> usize {
        let store = self.client(bucket);
        let prefix = (!prefix.is_empty()).then(|| Path::from(prefix));
        on_own_runtime(async move {
            let listed = list_under(&store, prefix.as_ref()).await;
            for meta in &listed {
                store
                    .delete(&meta.location)
                    .await
                    .expect("moto deletes the object");
            }
            listed.len()
        })
    }

    /// Every object under `prefix` in `bucket`, by key (the prefix included), sorted.
    /// Usable from synchronous and asynchronous tests alike.
    pub fn objects(&self, bucket: &str, prefix: &str) -> Vec<(String, Vec<u8>)> {
        let store = self.client(bucket);
        let prefix = (!prefix.is_empty()).then(|| Path::from(prefix));
        on_own_runtime(async move {
            let listed = list_under(&store, prefix.as_ref()).await;
            let mut objects = Vec::with_capacity(listed.len());
            for meta in listed {
                let found = store
                    .get(&meta.location)
                    .await
                    .expect("moto finds the object");
                let bytes = found.bytes().await.expect("moto returns the object");
                objects.push((meta.location.to_string(), bytes.to_vec()));
            }
            objects.sort();
            objects
        })
    }

    /// A plain HTTP/1.1 request without a body; returns the status code.
    fn request(&self, method: &str, path: &str) -> std::io::Result<u16> {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port))?;
        stream.set_read_timeout(Some(MOTO_REQUEST_TIMEOUT))?;
        stream.set_write_timeout(Some(MOTO_REQUEST_TIMEOUT))?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n",
            self.port
        )?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer)?;
        let answer = String::from_utf8_lossy(&answer);
        answer
            .strip_prefix("HTTP/1.1 ")
            .or_else(|| answer.strip_prefix("HTTP/1.0 "))
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| std::io::Error::other("not an HTTP answer"))
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // Closing its standard input makes the supervisor stop moto, then exit.
        drop(self.supervisor.stdin.take());
        let _ = self.supervisor.wait();
    }
}

/// Runs `work` to its end on a thread and runtime of its own, so that a caller inside a
/// runtime does not block it.
fn on_own_runtime<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(work)
    })
    .join()
    .expect("a request to moto")
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Every object under `prefix`, as moto lists them.
async fn list_under(store: &AmazonS3, prefix: Option<&Path>) -> Vec<object_store::ObjectMeta> {
    store
        .list(prefix)
        .try_collect()
        .await
        .expect("moto lists the bucket")
}
