//! pawpost's test support, shared by every crate's tests.
//!
//! - What a test needs from the machine: [`require`] and [`skip`]. A test that finds
//!   PostgreSQL, S3, an SMTP server or Node.js missing fails in CI (`CI` set) and
//!   otherwise records its skip, which `scripts/test` counts and lists at the end.
//! - [`moto`] (feature `s3`): a throwaway S3-compatible server.
//! - [`server`] (feature `server`): a real server on 127.0.0.1:0 with its own data
//!   folder, an API client, and the families and toys of the stories.
#![forbid(unsafe_code)]

#[cfg(feature = "s3")]
pub mod moto;
#[cfg(feature = "server")]
pub mod server;

use std::io::Write;
use std::path::PathBuf;

/// Set in CI (to anything but empty, `0` or `false`): a test whose requirement is missing
/// fails instead of skipping.
pub const CI_ENV: &str = "CI";
/// The folder skipped tests are recorded in; `target/test-skips` of the workspace when
/// unset.
pub const SKIPS_DIR_ENV: &str = "PAWPOST_TEST_SKIPS_DIR";
/// The file in that folder: one line per skip, `test<TAB>what is missing<TAB>why`.
pub const SKIPS_FILE: &str = "skipped.tsv";

/// Whether this run is CI's, where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var(CI_ENV).is_ok_and(|value| !matches!(value.as_str(), "" | "0" | "false"))
}

/// Whether a missing `need` must fail this run: in CI, or when `require_var` (such as
/// `PAWPOST_REQUIRE_S3`) is `1`.
pub fn required(require_var: Option<&str>) -> bool {
    in_ci() || require_var.is_some_and(|var| std::env::var(var).as_deref() == Ok("1"))
}

/// The value of the environment variable `var`, which points the test at `need` (e.g.
/// `require("PostgreSQL", "PAWPOST_TEST_DATABASE_URL")`). When it is unset or empty the
/// test is recorded as skipped and `None` returned; in CI the test fails instead.
pub fn require(need: &str, var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ => {
            skip(need, &format!("set {var} to run it"), None);
            None
        }
    }
}

/// Records that the calling test does not run (or runs without `need`) because `need` is
/// missing, for `why`: written to standard error, past the harness's capture, and to
/// the skips file. Fails the test instead when [`required`] says so.
pub fn skip(need: &str, why: &str, require_var: Option<&str>) {
    let test = test_name();
    if required(require_var) {
        let by = match require_var {
            Some(var) if !in_ci() => format!("{var}=1"),
            _ => format!("{CI_ENV} is set"),
        };
        panic!("{test} needs {need}: {why} ({by}, so nothing may be skipped)");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: no {need}: {why}");
    let dir = skips_dir();
    let line = format!("{test}\t{need}\t{}\n", why.replace(['\t', '\n'], " "));
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(SKIPS_FILE))?
            .write_all(line.as_bytes())
    });
    if let Err(e) = written {
        let _ = writeln!(
            std::io::stderr(),
            "cannot record the skip in {}: {e} (set {SKIPS_DIR_ENV} to a writable folder)",
            dir.display()
        );
    }
}

/// Where skips are recorded: [`SKIPS_DIR_ENV`], or the workspace's `target/test-skips`.
pub fn skips_dir() -> PathBuf {
    match std::env::var_os(SKIPS_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-skips"),
    }
}

/// `BINARY::TEST`: the test binary's name and the test's (the harness names each test's
/// thread after it).
fn test_name() -> String {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.file_stem()?.to_string_lossy().into_owned()))
        .map(|stem| match stem.rsplit_once('-') {
            // Cargo adds `-HASH` to test binaries.
            Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_owned(),
            _ => stem,
        })
        .unwrap_or_else(|| "test".to_owned());
    match std::thread::current().name() {
        Some(name) if name != "main" => format!("{binary}::{name}"),
        _ => binary,
    }
}
