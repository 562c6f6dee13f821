//! Mail the server sent: its outbox folder (no SMTP server configured), and a real SMTP
//! server (Python's aiosmtpd) that keeps what it receives in a Maildir.
use super::TestServer;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a story waits for a mail the server sends in the background.
pub const MAIL_WAIT: Duration = Duration::from_secs(15);
/// What [`SmtpServer`] needs from the machine, as skips name it.
pub const SMTP: &str = "SMTP (python3 -m aiosmtpd)";
/// Set to `1` (as `.ci/run` does) so that a missing aiosmtpd fails the test.
pub const REQUIRE_SMTP: &str = "PAWPOST_REQUIRE_SMTP";

/// The server's outbox folder.
pub fn outbox(server: &TestServer) -> PathBuf {
    server.data.path().join("data/outbox")
}

/// Every mail file in `dir` as written: headers, a blank line, the encoded body.
pub fn raw_mails_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect()
}

/// Every mail in `dir`: its headers, and its body decoded from quoted-printable.
pub fn mails_in(dir: &Path) -> Vec<(String, String)> {
    raw_mails_in(dir)
        .into_iter()
        .map(|mail| {
            let (head, raw) = mail.split_once("\r\n\r\n").unwrap_or((&mail, ""));
            let body = quoted_printable::decode(raw, quoted_printable::ParseMode::Robust)
                .unwrap_or_else(|e| panic!("the mail body is not quoted-printable: {e}"));
            (head.to_owned(), String::from_utf8_lossy(&body).into_owned())
        })
        .collect()
}

/// The decoded bodies of the outbox's mails to `to` whose subject is `subject`.
pub fn mails_to(server: &TestServer, to: &str, subject: &str) -> Vec<String> {
    mails_in(&outbox(server))
        .into_iter()
        .filter(|(head, _)| {
            head.contains(&format!("To: {to}\r\n"))
                && head.contains(&format!("Subject: {subject}\r\n"))
        })
        .map(|(_, body)| body)
        .collect()
}

/// Waits until the outbox holds `n` mails to `to` with `subject`; returns their bodies.
pub async fn wait_for_mails(server: &TestServer, to: &str, subject: &str, n: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + MAIL_WAIT;
    loop {
        let mails = mails_to(server, to, subject);
        if mails.len() >= n {
            return mails;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {n} mails {subject:?} to {to} in the outbox",
            mails.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A real SMTP server on a free loopback port, stopped when dropped.
pub struct SmtpServer {
    pub port: u16,
    maildir: tempfile::TempDir,
    child: std::process::Child,
}

impl SmtpServer {
    /// Starts aiosmtpd and waits until it listens. Without python3 or aiosmtpd it records
    /// the skip and returns `None`, or fails the test under CI or `PAWPOST_REQUIRE_SMTP=1`.
    pub async fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port on loopback");
        let maildir = tempfile::tempdir().unwrap();
        // aiosmtpd's Mailbox handler writes a Maildir whose folders must exist.
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir(maildir.path().join(sub)).unwrap();
        }
        let child = std::process::Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.path())
            .stderr(std::process::Stdio::piped())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) => {
                crate::skip(
                    SMTP,
                    &format!("python3 is not runnable ({e})"),
                    Some(REQUIRE_SMTP),
                );
                return None;
            }
        };
        let mut smtpd = SmtpServer {
            port,
            maildir,
            child,
        };
        let deadline = tokio::time::Instant::now() + MAIL_WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if let Ok(Some(_)) = smtpd.child.try_wait() {
                let why =
                    "aiosmtpd did not start: install it with `python3 -m pip install aiosmtpd`";
                crate::skip(SMTP, why, Some(REQUIRE_SMTP));
                return None;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "aiosmtpd never listened"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(smtpd)
    }

    /// The `--smtp-url` that reaches it.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The Maildir folder where the mails it received are.
    pub fn received(&self) -> PathBuf {
        self.maildir.path().join("new")
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
