//! `pawpost serve` as an operator runs it: a real process, its help, its sockets.
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

fn pawpost() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pawpost"))
}

struct Serving {
    child: Child,
    addr: String,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(data: &std::path::Path) -> Serving {
    let mut child = pawpost()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env_remove("PAWPOST_DATABASE_URL")
        .env("PAWPOST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("pawpost starts");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    Serving { child, addr }
}

/// Inodes of the sockets this process holds open.
fn socket_inodes(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.unwrap().path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().into_owned();
            t.strip_prefix("socket:[")
                .map(|s| s.trim_end_matches(']').to_owned())
        })
        .collect()
}

/// (local address hex, state hex) of every socket in a /proc/net table, by inode.
fn table(name: &str) -> Vec<(String, String, String)> {
    std::fs::read_to_string(format!("/proc/net/{name}"))
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 9).then(|| (f[9].to_owned(), f[1].to_owned(), f[3].to_owned()))
        })
        .collect()
}

#[test]
fn a_port_scan_finds_nothing_but_the_one_http_port() {
    let data = tempfile::tempdir().unwrap();
    let server = serve(&data.path().join("data"));
    let port: u16 = server.addr.rsplit(':').next().unwrap().parse().unwrap();
    let inodes = socket_inodes(server.child.id());
    const LISTEN: &str = "0A";
    let listening: Vec<_> = ["tcp", "tcp6"]
        .iter()
        .flat_map(|t| table(t))
        .filter(|(inode, _, state)| inodes.contains(inode) && state == LISTEN)
        .collect();
    assert_eq!(
        listening.len(),
        1,
        "exactly one listening socket: {listening:?}"
    );
    assert!(
        listening[0].1.ends_with(&format!(":{port:04X}")),
        "{listening:?} is not port {port}"
    );
    let udp: Vec<_> = ["udp", "udp6"]
        .iter()
        .flat_map(|t| table(t))
        .filter(|(inode, _, _)| inodes.contains(inode))
        .collect();
    assert!(udp.is_empty(), "no UDP sockets: {udp:?}");
}

#[test]
fn help_explains_every_serve_option() {
    let out = pawpost().args(["serve", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for option in [
        "--listen",
        "--data-dir",
        "--database-url",
        "--blob-url",
        "--insecure-cookies",
        "--security-contact",
        "PAWPOST_LISTEN",
    ] {
        assert!(help.contains(option), "{option} missing from help");
    }
}

#[test]
fn a_bad_database_url_is_refused_with_a_clear_error() {
    let data = tempfile::tempdir().unwrap();
    let out = pawpost()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            "mongodb://open-to-the-world",
        ])
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unsupported database URL") && err.contains("sqlite://"),
        "{err}"
    );
}

#[test]
fn a_running_server_is_backed_up_checked_and_restored_and_a_corrupt_backup_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = serve(&data);
    let backup = dir.path().join("backup");
    let out = pawpost()
        .args(["backup", "--to"])
        .arg(&backup)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1/1"),
        "progress is shown"
    );
    drop(server);

    let check = pawpost()
        .args(["restore", "--check-only", "--from"])
        .arg(&backup)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let audit = pawpost()
        .args(["audit", "verify", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(audit.status.success());
    assert!(String::from_utf8_lossy(&audit.stdout).contains("intact"));

    let restored = dir.path().join("restored");
    let out = pawpost()
        .args(["restore", "--from"])
        .arg(&backup)
        .arg("--data-dir")
        .arg(&restored)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(restored.join("pawpost.db").exists());
    let again = pawpost()
        .args(["restore", "--from"])
        .arg(&backup)
        .arg("--data-dir")
        .arg(&restored)
        .output()
        .unwrap();
    assert!(
        !again.status.success(),
        "restoring over existing data needs --force"
    );

    let db = backup.join("pawpost.db");
    let mut bytes = std::fs::read(&db).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&db, bytes).unwrap();
    let corrupt = pawpost()
        .args(["restore", "--check-only", "--from"])
        .arg(&backup)
        .output()
        .unwrap();
    assert!(!corrupt.status.success());
    assert!(
        String::from_utf8_lossy(&corrupt.stderr).contains("damaged"),
        "{}",
        String::from_utf8_lossy(&corrupt.stderr)
    );
}
