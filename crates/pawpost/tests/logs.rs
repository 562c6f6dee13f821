//! Logs as an operator collects them: `pawpost serve` with standard error going to a pipe
//! (a file, journald, a log shipper), not a terminal.
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

/// Runs `pawpost serve` with `args` until it announces its address, stops it, and
/// returns everything it wrote to standard error.
fn serve_logs(args: &[&str], env: &[(&str, &str)]) -> String {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pawpost"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path().join("data"))
        .args(args)
        .env_remove("PAWPOST_DATABASE_URL")
        .env_remove("PAWPOST_LOG_FORMAT")
        .env_remove("NO_COLOR")
        .env("PAWPOST_LOG", "info")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pawpost starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("pawpost is serving"), "{line:?}");
    child.kill().unwrap();
    child.wait().unwrap();
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(logs.contains("pawpost is listening"), "{logs}");
    logs
}

#[test]
fn logs_written_to_a_pipe_carry_no_colour_codes() {
    let logs = serve_logs(&[], &[]);
    assert!(!logs.contains('\u{1b}'), "an escape byte in {logs:?}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    for (args, env) in [
        (&["--log-format", "json"][..], &[][..]),
        (&[][..], &[("PAWPOST_LOG_FORMAT", "json")][..]),
    ] {
        let logs = serve_logs(args, env);
        assert!(!logs.contains('\u{1b}'), "an escape byte in {logs:?}");
        let lines: Vec<serde_json::Value> = logs
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect();
        let listening = lines
            .iter()
            .find(|l| l["fields"]["message"] == "pawpost is listening")
            .unwrap_or_else(|| panic!("no listening line in {logs}"));
        assert_eq!(listening["level"], "INFO");
        assert!(listening["fields"]["addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"));
    }
}

#[test]
fn the_log_format_is_documented_and_checked() {
    let out = Command::new(env!("CARGO_BIN_EXE_pawpost"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("--log-format"), "{help}");
    assert!(help.contains("PAWPOST_LOG_FORMAT"), "{help}");
    let out = Command::new(env!("CARGO_BIN_EXE_pawpost"))
        .args(["serve", "--log-format", "xml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let error = String::from_utf8(out.stderr).unwrap();
    assert!(error.contains("text") && error.contains("json"), "{error}");
}
