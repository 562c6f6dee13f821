//! Real `pawpost serve` processes for the stories that need one: started on a data folder
//! (and, with extra arguments, on PostgreSQL or another blob folder), their address read
//! from what they print, killed with SIGKILL and started again on the same data.
#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a server may take to print its address.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The environment variables `pawpost serve` reads its storage from; removed from the
/// child's environment so that the test's own environment cannot redirect it.
const STORAGE_VARS: [&str; 5] = [
    "PAWPOST_LISTEN",
    "PAWPOST_DATA_DIR",
    "PAWPOST_DATABASE_URL",
    "PAWPOST_DATABASE_SCHEMA",
    "PAWPOST_BLOB_URL",
];

/// How to start `pawpost serve`: always on 127.0.0.1 with a port of the system's choosing,
/// on `data_dir`, with any further arguments and environment variables.
#[derive(Clone, Debug)]
pub struct Serve {
    pub data_dir: PathBuf,
    pub args: Vec<OsString>,
    pub envs: Vec<(OsString, OsString)>,
}

impl Serve {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            args: Vec::new(),
            envs: vec![("PAWPOST_LOG".into(), "warn".into())],
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable for the server (a later value for the same name wins).
    pub fn env(mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((name.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Metadata in `schema` of the PostgreSQL database at `url`.
    pub fn postgres(self, url: &str, schema: &str) -> Self {
        self.args(["--database-url", url, "--database-schema", schema])
    }

    /// Metadata on PostgreSQL when `schema` is given, else in SQLite in the data folder.
    pub fn on(self, schema: Option<&PgSchema>) -> Self {
        match schema {
            Some(s) => self.postgres(&s.url, &s.name),
            None => self,
        }
    }

    /// Starts the server and waits until it prints the address it listens on.
    pub fn start(&self) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pawpost"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&self.data_dir)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for name in STORAGE_VARS {
            command.env_remove(name);
        }
        for (name, value) in &self.envs {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("pawpost serve starts");
        let output = Arc::new(Mutex::new(String::new()));
        let (address_tx, address_rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let out = output.clone();
        std::thread::spawn(move || {
            // Keeps reading so that the server never blocks on a full pipe.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = served_address(&line) {
                    let _ = address_tx.send(addr);
                }
                out.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let err = output.clone();
        std::thread::spawn(move || {
            let mut stderr = stderr;
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                err.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        match address_rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => Server {
                child,
                addr,
                output,
            },
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                // Give the reader threads a moment to take the last output.
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "pawpost serve printed no address ({status:?}):\n{}",
                    output.lock().unwrap()
                );
            }
        }
    }
}

/// `127.0.0.1:PORT` from "pawpost is serving http://127.0.0.1:PORT (data in ...)".
fn served_address(line: &str) -> Option<String> {
    line.split("pawpost is serving http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
}

/// A running `pawpost serve`. Dropping it kills it.
pub struct Server {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    output: Arc<Mutex<String>>,
}

impl Server {
    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server printed so far (its log and its errors).
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// SIGKILL: the process ends at once, whatever it was doing. Returns once it is gone.
    pub fn kill(mut self) -> String {
        self.child.kill().expect("SIGKILL is delivered");
        self.child.wait().expect("the killed server is reaped");
        self.output()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh PostgreSQL schema, dropped with everything in it when this goes.
pub struct PgSchema {
    pub url: String,
    pub name: String,
}

impl PgSchema {
    /// A new schema name on `url`, starting with `prefix` (lowercase letters, digits, `_`).
    /// The server creates the schema when it starts.
    pub fn fresh(url: &str, prefix: &str) -> Self {
        Self {
            url: url.to_owned(),
            name: format!("{prefix}_{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// A fresh schema when `PAWPOST_TEST_DATABASE_URL` is set; without it the calling
    /// test is recorded as skipped (or fails, in CI).
    pub fn from_env(prefix: &str) -> Option<Self> {
        pawpost_testkit::require("PostgreSQL", "PAWPOST_TEST_DATABASE_URL")
            .map(|url| Self::fresh(&url, prefix))
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                self.url.as_str(),
                "-q",
                "-c",
                &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name),
            ])
            .output();
    }
}
