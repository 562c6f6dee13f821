//! Email: invitations, new sign-in alerts, password changes, links to choose a new
//! password, notifications ([`crate::notify`]), and breach notices. Sent through SMTP when `--smtp-url` is set; otherwise
//! written as `.eml` files to the data folder's outbox, so that whoever tries pawpost out
//! can read what would have gone out. The outbox holds live invitation and password links
//! in clear, so it is pruned: mail older than [`OUTBOX_MAX_AGE`] goes at start, on every
//! write and on every retention sweep, and it never holds more than [`OUTBOX_MAX_MAILS`].
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;

/// Default sender address; operators set their own with `--mail-from`.
pub const DEFAULT_MAIL_FROM: &str = "pawpost <no-reply@pawpost.invalid>";
/// Outbox folder name inside the data folder.
pub const OUTBOX_DIR: &str = "outbox";
/// Mail older than this is deleted from the outbox: it holds live invitation links in
/// clear, and whoever tries pawpost out reads them at once.
pub const OUTBOX_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// The most mails the outbox keeps; the oldest go first.
pub const OUTBOX_MAX_MAILS: usize = 200;

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
            None => {
                let dir = data_dir.join(OUTBOX_DIR);
                prune_and_log(&dir);
                Ok(Mailer::Outbox { dir, from })
            }
        }
    }

    pub async fn send(&self, mail: Mail) -> Result<(), MailError> {
        self.send_tagged(mail, None, None).await
    }

    /// [`send`](Self::send), with the `List-Unsubscribe` and `List-Unsubscribe-Post`
    /// headers of RFC 8058 when `unsubscribe` (an https or http URL answering a POST) is
    /// given, and the id of the household the mail is about when there is one, by which
    /// [`forget_household`](Self::forget_household) finds it in the outbox.
    pub async fn send_tagged(
        &self,
        mail: Mail,
        unsubscribe: Option<&str>,
        household: Option<uuid::Uuid>,
    ) -> Result<(), MailError> {
        let from = match self {
            Mailer::Smtp { from, .. } | Mailer::Outbox { from, .. } => from.clone(),
        };
        let mut builder = Message::builder()
            .from(from)
            .to(mailbox(&mail.to)?)
            .subject(mail.subject)
            .header(ContentType::TEXT_PLAIN);
        if let Some(url) = unsubscribe {
            builder = builder
                .raw_header(HeaderValue::new(LIST_UNSUBSCRIBE, format!("<{url}>")))
                .raw_header(HeaderValue::new(
                    LIST_UNSUBSCRIBE_POST,
                    "List-Unsubscribe=One-Click".to_owned(),
                ));
        }
        if let Some(household) = household {
            builder = builder.raw_header(HeaderValue::new(HOUSEHOLD_HEADER, household.to_string()));
        }
        let message = builder
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
    // Room is made first, so that the outbox never holds more than its maximum, even
    // for a moment.
    prune_to_and_log(dir, OUTBOX_MAX_MAILS - 1);
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
    file.sync_all().map_err(fail)?;
    Ok(())
}

/// Deletes outbox mail last written more than [`OUTBOX_MAX_AGE`] ago, then the oldest
/// beyond [`OUTBOX_MAX_MAILS`]; returns how many went. Only `.eml` files are touched.
pub fn prune_outbox(dir: &std::path::Path) -> std::io::Result<usize> {
    prune_outbox_to(dir, OUTBOX_MAX_MAILS)
}

/// [`prune_outbox`], keeping at most `keep` mails.
fn prune_outbox_to(dir: &std::path::Path, keep: usize) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut mails = Vec::new();
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let meta = entry.metadata()?;
        if meta.is_file() && path.extension().is_some_and(|e| e == "eml") {
            mails.push((meta.modified()?, path));
        }
    }
    // Newest first: everything past the count, or too old, goes.
    mails.sort_by(|a, b| b.cmp(a));
    let now = std::time::SystemTime::now();
    let mut removed = 0;
    for (i, (written, path)) in mails.into_iter().enumerate() {
        let too_old = now
            .duration_since(written)
            .is_ok_and(|age| age > OUTBOX_MAX_AGE);
        if i >= keep || too_old {
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                // Another process pruning the same outbox got there first.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

fn prune_and_log(dir: &std::path::Path) {
    prune_to_and_log(dir, OUTBOX_MAX_MAILS);
}

fn prune_to_and_log(dir: &std::path::Path, keep: usize) {
    if let Err(error) = prune_outbox_to(dir, keep) {
        tracing::warn!(%error, dir = %dir.display(), "old mail could not be pruned from the outbox");
    }
}

impl Mailer {
    /// Prunes the outbox (see [`prune_outbox`]); SMTP mail is not ours to keep.
    pub async fn prune(&self) {
        if let Mailer::Outbox { dir, .. } = self {
            let dir = dir.clone();
            if let Err(error) = tokio::task::spawn_blocking(move || prune_and_log(&dir)).await {
                tracing::warn!(%error, "pruning the outbox stopped");
            }
        }
    }

    /// Removes unsent mail to `address` from the outbox, when an account is deleted.
    /// (Mail handed to an SMTP server is no longer ours to delete.)
    pub async fn forget(&self, address: &str) {
        self.forget_containing(&format!("To: {address}\r\n")).await;
    }

    /// Removes unsent mail about `household` from the outbox, when it is deleted.
    pub async fn forget_household(&self, household: uuid::Uuid) {
        self.forget_containing(&format!("{}: {household}\r\n", HOUSEHOLD_HEADER))
            .await;
    }

    async fn forget_containing(&self, needle: &str) {
        let Mailer::Outbox { dir, .. } = self else {
            return;
        };
        let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
            return;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let path = entry.path();
            let Ok(bytes) = tokio::fs::read(&path).await else {
                continue;
            };
            if String::from_utf8_lossy(&bytes).contains(needle) {
                if let Err(error) = tokio::fs::remove_file(&path).await {
                    tracing::warn!(%error, "unsent mail to a deleted account or about a deleted household could not be removed");
                }
            }
        }
    }
}

/// RFC 2369's header naming where a reader unsubscribes.
const LIST_UNSUBSCRIBE: HeaderName = HeaderName::new_from_ascii_str("List-Unsubscribe");
/// RFC 8058's header saying that a POST to the `List-Unsubscribe` URL unsubscribes at once.
const LIST_UNSUBSCRIBE_POST: HeaderName = HeaderName::new_from_ascii_str("List-Unsubscribe-Post");

/// Names the household a mail is about (its id only), so that deleting the household
/// removes the mail from the outbox.
const HOUSEHOLD_HEADER: HeaderName = HeaderName::new_from_ascii_str("X-Pawpost-Household");

/// Sends in the background: a slow mail server must not hold up a sign-in.
pub fn send_later(mailer: &Mailer, mail: Mail) {
    let mailer = mailer.clone();
    tokio::spawn(async move {
        if let Err(error) = mailer.send(mail).await {
            tracing::warn!(%error, "an email could not be sent");
        }
    });
}
