//! Email: invitations, new sign-in alerts and breach notices. Sent through SMTP when
//! `--smtp-url` is set; otherwise written as `.eml` files to the data folder's outbox,
//! so that nothing is lost and an operator can read what would have gone out.
use lettre::message::{header::ContentType, Mailbox, Message};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;

/// Default sender address; operators set their own with `--mail-from`.
pub const DEFAULT_MAIL_FROM: &str = "pawpost <no-reply@pawpost.invalid>";
/// Outbox folder name inside the data folder.
pub const OUTBOX_DIR: &str = "outbox";

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid SMTP URL (use smtp://host:port, smtp://host?tls=required or smtps://user:password@host): {0}")]
    SmtpUrl(String),
    #[error("invalid address {0:?}: {1}")]
    Address(String, String),
    #[error("the email could not be built: {0}")]
    Build(String),
    #[error("the SMTP server refused or could not be reached: {0}")]
    Smtp(String),
    #[error("the email could not be written to the outbox {0}: {1}")]
    Outbox(PathBuf, std::io::Error),
}

/// Where mail goes.
#[derive(Clone)]
pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
    Outbox {
        dir: PathBuf,
        from: Mailbox,
    },
}

/// One email, plain text.
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

fn mailbox(address: &str) -> Result<Mailbox, MailError> {
    address.parse().map_err(|e: lettre::address::AddressError| {
        MailError::Address(address.to_owned(), e.to_string())
    })
}

impl Mailer {
    /// SMTP when `smtp_url` is given (credentials may ride in the URL; they are never
    /// logged), else an outbox folder under `data_dir`.
    pub fn new(
        smtp_url: Option<&str>,
        from: &str,
        data_dir: &std::path::Path,
    ) -> Result<Self, MailError> {
        let from = mailbox(from)?;
        match smtp_url {
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| MailError::SmtpUrl(e.to_string()))?
                    .build();
                Ok(Mailer::Smtp { transport, from })
            }
            None => Ok(Mailer::Outbox {
                dir: data_dir.join(OUTBOX_DIR),
                from,
            }),
        }
    }

    pub async fn send(&self, mail: Mail) -> Result<(), MailError> {
        let from = match self {
            Mailer::Smtp { from, .. } | Mailer::Outbox { from, .. } => from.clone(),
        };
        let message = Message::builder()
            .from(from)
            .to(mailbox(&mail.to)?)
            .subject(mail.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body)
            .map_err(|e| MailError::Build(e.to_string()))?;
        match self {
            Mailer::Smtp { transport, .. } => transport
                .send(message)
                .await
                .map(drop)
                .map_err(|e| MailError::Smtp(e.to_string())),
            Mailer::Outbox { dir, .. } => {
                let dir = dir.clone();
                let bytes = message.formatted();
                tokio::task::spawn_blocking(move || write_outbox(&dir, &bytes))
                    .await
                    .map_err(|e| MailError::Outbox(PathBuf::new(), std::io::Error::other(e)))?
            }
        }
    }
}

fn write_outbox(dir: &std::path::Path, bytes: &[u8]) -> Result<(), MailError> {
    let fail = |e| MailError::Outbox(dir.to_owned(), e);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(fail)?;
    let name = format!(
        "{}-{}.eml",
        time::OffsetDateTime::now_utc().unix_timestamp(),
        uuid::Uuid::new_v4().simple()
    );
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dir.join(name))
        .map_err(fail)?;
    file.write_all(bytes).map_err(fail)?;
    file.sync_all().map_err(fail)
}

impl Mailer {
    /// Removes unsent mail to `address` from the outbox, when an account is deleted.
    /// (Mail handed to an SMTP server is no longer ours to delete.)
    pub async fn forget(&self, address: &str) {
        let Mailer::Outbox { dir, .. } = self else {
            return;
        };
        let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
            return;
        };
        let needle = format!("To: {address}\r\n");
        while let Ok(Some(entry)) = entries.next_entry().await {
            let path = entry.path();
            let Ok(bytes) = tokio::fs::read(&path).await else {
                continue;
            };
            if String::from_utf8_lossy(&bytes).contains(&needle) {
                if let Err(error) = tokio::fs::remove_file(&path).await {
                    tracing::warn!(%error, "unsent mail to a deleted account could not be removed");
                }
            }
        }
    }
}

/// Sends in the background: a slow mail server must not hold up a sign-in.
pub fn send_later(mailer: &Mailer, mail: Mail) {
    let mailer = mailer.clone();
    tokio::spawn(async move {
        if let Err(error) = mailer.send(mail).await {
            tracing::warn!(%error, "an email could not be sent");
        }
    });
}
