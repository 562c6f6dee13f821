//! `pawpost serve` as an operator runs it: a real process, its help, its sockets.
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
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
    serve_with(data, &[], "http://")
}

/// `pawpost serve` on a free port with `args`; `scheme` is what its first line announces.
fn serve_with(data: &std::path::Path, args: &[&std::ffi::OsStr], scheme: &str) -> Serving {
    let mut child = pawpost()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(args)
        .env_remove("PAWPOST_DATABASE_URL")
        .env_remove("PAWPOST_TLS_CERT")
        .env_remove("PAWPOST_TLS_KEY")
        .env("PAWPOST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("pawpost starts");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .split(scheme)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {scheme} address in {line:?}"))
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
    assert_only_one_port(&server);
}

/// The server holds exactly one listening TCP socket, on its announced port, and no UDP.
fn assert_only_one_port(server: &Serving) {
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
        "--tls-cert",
        "--tls-key",
        "PAWPOST_TLS_CERT",
        "PAWPOST_TLS_KEY",
        "HSTS",
        "PAWPOST_LISTEN",
    ] {
        assert!(help.contains(option), "{option} missing from help");
    }
}

#[test]
fn with_a_certificate_and_key_the_one_port_serves_https_with_hsts() {
    let dir = tempfile::tempdir().unwrap();
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let (cert_file, key_file) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key_pair.serialize_pem()).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let server = serve_with(
        &dir.path().join("data"),
        &[
            "--tls-cert".as_ref(),
            cert_file.as_os_str(),
            "--tls-key".as_ref(),
            key_file.as_os_str(),
        ],
        "https://",
    );
    assert_only_one_port(&server);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let response = runtime.block_on(async {
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(cert.pem().as_bytes()).unwrap())
            .build()
            .unwrap()
            .get(format!("https://{}/healthz", server.addr))
            .send()
            .await
            .unwrap()
    });
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000"
    );
}

#[test]
fn a_certificate_without_its_key_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cert_file = dir.path().join("tls.crt");
    let out = pawpost()
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&cert_file)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env_remove("PAWPOST_TLS_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--tls-key") && err.contains("give both"),
        "{err}"
    );
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
