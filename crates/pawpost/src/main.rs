//! `pawpost`: the one binary. `pawpost serve` runs the server.
#![forbid(unsafe_code)]

mod relay;
mod release;

use clap::{Args, Parser, Subcommand};
use pawpost_server::config::{self, RateLimit, ServerConfig};
use pawpost_server::proxy::TrustedProxy;
use pawpost_storage::{StorageConfig, UrlError};
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "pawpost",
    version,
    about = "Voice messages between a family and a child's toy, end-to-end encrypted",
    long_about = "pawpost carries short voice messages between relatives and a child's plush toy. \
        Voices are encrypted on the sender's device; the server stores only ciphertext, and only \
        members a parent approved can reach the toy.\n\nStart with `pawpost serve`: with no options \
        it keeps everything in ./pawpost-data (SQLite and a blob folder) and listens on 127.0.0.1:8080."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: the family API, and nothing on any other port.
    Serve(ServeArgs),
    /// Run one simulated toy against a server. It reads commands on standard input:
    /// `press`, `long-press` (pairing), `hold SECONDS` (10 or more: factory reset),
    /// `record FILE.ogg`, `status`, `help`, `quit`.
    Toy(ToyArgs),
    /// Stand in for the parent's phone between a toy's Bluetooth link (an emulated UART on
    /// a TCP port, e.g. the firmware in QEMU) and the server: relays the link's fragments
    /// to the toy's encrypted channel (/api/v1/toy/channel) and back, without a key to
    /// read them.
    Relay(relay::RelayArgs),
    /// Try pawpost on this computer: the server with the embedded defaults (plain http on
    /// loopback) and a simulated toy that reads commands on standard input.
    Demo(DemoArgs),
    /// Copy a running server's database and blobs (from the blob folder or the s3://
    /// bucket prefix of --blob-url), with a checksummed manifest, into an empty folder
    /// (keep it off the server: the ransom attack wiped the database).
    Backup {
        /// The folder to write (created; must be empty).
        #[arg(long)]
        to: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Rebuild the database (SQLite file or PostgreSQL schema) and the blobs (blob folder or
    /// s3:// bucket prefix) from a backup, after checking every checksum; the blobs go in
    /// first, the database last. Stop the server first. Refuses a corrupt or partial backup.
    Restore {
        /// The backup folder.
        #[arg(long)]
        from: PathBuf,
        /// Replace data that is already there: the database, and the blob folder or every
        /// blob under the bucket prefix.
        #[arg(long)]
        force: bool,
        /// Only check the backup; restore nothing.
        #[arg(long)]
        check_only: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Administer the server: accounts, health, breach reports.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Check the audit trail: every entry chained to the one before it, none changed,
    /// none missing.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Signed updates of the toy's software: make a release key, sign an image, publish
    /// a signed release to the server's store (docs/UPDATES.md).
    Release {
        #[command(subcommand)]
        command: release::ReleaseCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// List accounts (email, created, locked), or lock or unlock one.
    Accounts {
        /// Lock this account (by email): it can no longer sign in or use its sessions.
        #[arg(long, conflicts_with = "unlock")]
        lock: Option<String>,
        /// Unlock this account (by email).
        #[arg(long)]
        unlock: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Counts and the audit trail's integrity.
    Health(StoreArgs),
    /// List the accounts an incident could have reached, from the audit trail; with
    /// --notify, send each a "Notice of Data Breach" email.
    BreachReport {
        /// Start of the incident (RFC 3339, e.g. 2026-11-01T00:00:00Z).
        #[arg(long)]
        since: String,
        /// End of the incident (RFC 3339) [default: now].
        #[arg(long)]
        until: Option<String>,
        /// What was exposed: all (database or bucket), sign-ins, messages.
        #[arg(long, default_value = "all")]
        scope: String,
        /// Email each affected account the notice (SMTP with --smtp-url, else the outbox).
        #[arg(long)]
        notify: bool,
        /// For the notice: what happened, in plain words.
        #[arg(
            long,
            default_value = "An unauthorised party gained access to part of the pawpost service."
        )]
        what_happened: String,
        /// For the notice: which of the person's information was involved.
        #[arg(
            long,
            default_value = "Your email address, display name, and the times and sizes of messages you sent or received."
        )]
        information: String,
        /// For the notice: where people reach you.
        #[arg(long, env = "PAWPOST_SECURITY_CONTACT", default_value = config::DEFAULT_SECURITY_CONTACT)]
        contact: String,
        #[command(flatten)]
        mail: MailArgs,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Where pawpost's emails go.
#[derive(Args)]
struct MailArgs {
    /// SMTP server: smtp://host:port, smtp://host:587?tls=required, smtps://user:password@host.
    /// Without one, emails are written to <data-dir>/outbox.
    #[arg(long, env = "PAWPOST_SMTP_URL", hide_env_values = true)]
    smtp_url: Option<String>,
    /// The sender of pawpost's emails.
    #[arg(long, env = "PAWPOST_MAIL_FROM", default_value = pawpost_server::mail::DEFAULT_MAIL_FROM)]
    mail_from: String,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the audit trail's hash chain and report the first broken entry.
    Verify(StoreArgs),
}

/// Where the server keeps its data: the same options for `pawpost serve`, `backup`,
/// `restore`, `admin` and `audit`.
#[derive(Args)]
pub(crate) struct StoreArgs {
    /// Folder for the database and blobs. Every command but `backup` creates it with mode
    /// 0700 (or tightens it to 0700); `backup` only reads it.
    #[arg(long, env = "PAWPOST_DATA_DIR", default_value = config::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,

    /// Metadata database: sqlite:///srv/pawpost/pawpost.db or postgres://pawpost:PASSWORD@db/pawpost
    /// [default: sqlite://<data-dir>/pawpost.db].
    #[arg(long, env = "PAWPOST_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,

    /// PostgreSQL schema for pawpost's tables (created if missing) [default: the URL's, usually public].
    #[arg(long, env = "PAWPOST_DATABASE_SCHEMA")]
    database_schema: Option<String>,

    /// Where encrypted blobs go: file:///path, a folder path, or
    /// s3://BUCKET/PREFIX?endpoint=https://HOST&region=NAME for S3-compatible storage, with
    /// credentials only from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN);
    /// endpoint and region may come from AWS_ENDPOINT_URL and AWS_REGION instead
    /// [default: <data-dir>/blobs].
    #[arg(long, env = "PAWPOST_BLOB_URL", hide_env_values = true)]
    blob_url: Option<String>,
}

impl StoreArgs {
    /// Reads the storage URLs, once; a URL refused here names only its scheme.
    pub(crate) fn storage(self) -> Result<StorageConfig, UrlError> {
        StorageConfig::from_options(
            self.data_dir,
            self.database_url.as_deref(),
            self.database_schema,
            self.blob_url.as_deref(),
        )
    }
}

#[derive(Args)]
struct ToyArgs {
    /// The server's address: http://HOST:PORT, or https:// (the toy then uses wss).
    #[arg(
        long,
        env = "PAWPOST_TOY_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    server: String,
    /// Where the toy keeps its keys, roster, queue and the audio it plays.
    #[arg(long, env = "PAWPOST_TOY_STATE_DIR", default_value = "pawpost-toy")]
    state_dir: PathBuf,
    /// Also write what the toy says as WAV files (with espeak-ng, when installed).
    #[arg(long)]
    speak_wav: bool,
    /// The language the toy speaks: en (English), de (German) or es (Spanish).
    #[arg(
        long,
        env = "PAWPOST_TOY_LANGUAGE",
        default_value = "en",
        value_name = "LANGUAGE"
    )]
    language: pawpost_toy_sim::Language,
    /// For an https:// server: a PEM certificate to trust besides the public certificate
    /// authorities (a server's self-signed certificate, or a private CA).
    #[arg(long, env = "PAWPOST_TOY_TRUST_CERT", value_name = "FILE")]
    trust_cert: Option<PathBuf>,
    /// Reach the server through a phone, as the firmware does: listen on ADDR (e.g.
    /// 127.0.0.1:7000, port 0 for any) for the phone's link (`pawpost relay --serial
    /// tcp:ADDR`, or a test's Bluetooth bridge) instead of connecting to --server. The
    /// address taken is printed as `link: ADDR`.
    #[arg(long, value_name = "ADDR")]
    serial_listen: Option<SocketAddr>,
    /// Speak toy protocol version 3: every frame inside the encrypted channel, on the
    /// server's /api/v1/toy/channel (docs/TOY-PROTOCOL.md). Without it the toy speaks
    /// version 2 in the clear, which the server accepts unless started with
    /// --toy-min-protocol 3. With --serial-listen the phone carries the channel's records
    /// (the web app's Bluetooth relay opens /api/v1/toy/channel).
    #[arg(long)]
    channel: bool,
    /// A release public key (64 hex digits) the simulated toy's image trusts for its
    /// updates; repeat for several. Written with --board, --software-version and
    /// --software-counter to firmware.txt in --state-dir when the toy has none yet
    /// (docs/UPDATES.md); without any, a new toy reports no version and takes no update.
    #[arg(
        long = "release-public-key",
        value_name = "HEX",
        env = "PAWPOST_TOY_RELEASE_PUBLIC_KEY",
        value_delimiter = ',',
        value_parser = release::parse_public_key
    )]
    release_public_keys: Vec<[u8; 32]>,
    /// The board the simulated toy's software is built for.
    #[arg(long, default_value = "pawpost-sim")]
    board: String,
    /// The software version the simulated toy starts with.
    #[arg(long, default_value_t = 1)]
    software_version: u32,
    /// The anti-rollback counter of the software it starts with.
    #[arg(long, default_value_t = 1)]
    software_counter: u32,
}

#[derive(Args)]
struct DemoArgs {
    /// Address and port to listen on.
    #[arg(long, default_value = config::DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Folder for the demo's data; the toy keeps its state in `toy/` inside it.
    #[arg(long, default_value = "pawpost-demo")]
    data_dir: PathBuf,
    #[command(flatten)]
    log: LogArgs,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Lines for people, coloured only when standard error is a terminal.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Args)]
struct LogArgs {
    /// How log lines on standard error are written: `text` for people (coloured only on a
    /// terminal) or `json`, one object per line, for a log collector.
    #[arg(long, env = "PAWPOST_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// Logs go to standard error; standard output is for what a command answers (the
/// address it serves, a report). Which lines: `PAWPOST_LOG` (default `info`).
fn init_logs(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PAWPOST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes are noise in a file or a collector.
        .with_ansi(format == LogFormat::Text && std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[derive(Args)]
struct ServeArgs {
    /// Address and port to listen on. In production either keep it on loopback behind a TLS
    /// proxy, or give --tls-cert and --tls-key.
    #[arg(long, env = "PAWPOST_LISTEN", default_value = config::DEFAULT_LISTEN)]
    listen: SocketAddr,

    #[command(flatten)]
    store: StoreArgs,

    /// The URL people use to reach this server; used in invitation links. An https:// URL
    /// also turns on HSTS (for TLS ended at a proxy), and the web app's changes must then
    /// come from an https:// page. Passkeys belong to its host: a loopback address stands
    /// for localhost, and another bare IP address turns passkeys off [default:
    /// http://<listen>, or https://<listen> with --tls-cert].
    #[arg(long, env = "PAWPOST_PUBLIC_URL")]
    public_url: Option<String>,

    /// Serve https (and the toy's wss) on --listen with this PEM certificate chain, the
    /// server's own certificate first; needs --tls-key. Every answer then carries HSTS
    /// (max-age one year). Without it and --tls-key, plain http.
    #[arg(long, env = "PAWPOST_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,

    /// The PEM private key (PKCS#8, RSA or EC) of --tls-cert; keep it readable only by
    /// the user running pawpost (mode 0600).
    #[arg(long, env = "PAWPOST_TLS_KEY", value_name = "FILE")]
    tls_key: Option<PathBuf>,

    /// Leave the Secure flag off the session cookie. Only for plain-http use away from
    /// localhost; browsers already accept Secure cookies on http://localhost.
    #[arg(long, env = "PAWPOST_INSECURE_COOKIES")]
    insecure_cookies: bool,

    /// Where security researchers reach you, for /.well-known/security.txt (mailto: or https:).
    #[arg(long, env = "PAWPOST_SECURITY_CONTACT", default_value = config::DEFAULT_SECURITY_CONTACT)]
    security_contact: String,

    /// Shortest password accepted (NIST SP 800-63B-4 asks for 15 without a second factor).
    #[arg(long, env = "PAWPOST_MIN_PASSWORD_CHARS", default_value_t = config::DEFAULT_MIN_PASSWORD_CHARS)]
    min_password_chars: usize,

    /// How long a sign-in lasts, in hours.
    #[arg(long, env = "PAWPOST_SESSION_HOURS", default_value_t = config::DEFAULT_SESSION_TTL.as_secs() / 3600)]
    session_hours: u64,

    /// Largest JSON request body accepted, in bytes.
    #[arg(long, env = "PAWPOST_MAX_JSON_BYTES", default_value_t = config::DEFAULT_MAX_JSON_BYTES)]
    max_json_bytes: usize,

    /// Largest message envelope accepted, in bytes (at most 1048566, what one toy frame
    /// carries); bigger uploads get 413 and nothing is stored.
    #[arg(long, env = "PAWPOST_MAX_ENVELOPE_BYTES", default_value_t = config::DEFAULT_MAX_ENVELOPE_BYTES,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new()
            .range(1..=config::MAX_ENVELOPE_BYTES_LIMIT as u64))]
    max_envelope_bytes: usize,

    /// Envelopes up to this many bytes are kept in their message's database row, made
    /// durable by the same commit (uploads arriving together share one sync); larger ones
    /// go to the blob store. 0 keeps every envelope in the blob store.
    #[arg(long, env = "PAWPOST_ENVELOPE_IN_ROW_MAX_BYTES", default_value_t = config::DEFAULT_ENVELOPE_IN_ROW_MAX_BYTES)]
    envelope_in_row_max_bytes: usize,

    /// Wrong passwords allowed per account within 15 minutes from clients the account does
    /// not know (sign-in, password change and account deletion share it), then 429 for
    /// them; each browser that signed in before (its device cookie) has its own allowance.
    #[arg(long, env = "PAWPOST_LOGIN_FAILURES_PER_ACCOUNT", default_value_t = config::DEFAULT_LOGIN_FAILURES_PER_ACCOUNT)]
    login_failures_per_account: u32,

    /// Failed sign-ins allowed per client address (an IPv6 /64 counts as one) within 15
    /// minutes; browsers an account knows are not counted here.
    #[arg(long, env = "PAWPOST_LOGIN_FAILURES_PER_ADDRESS", default_value_t = config::DEFAULT_LOGIN_FAILURES_PER_ADDRESS)]
    login_failures_per_address: u32,

    /// New accounts allowed per client address per hour.
    #[arg(long, env = "PAWPOST_SIGNUPS_PER_ADDRESS", default_value_t = config::DEFAULT_SIGNUPS_PER_ADDRESS)]
    signups_per_address: u32,

    /// The most days a household may keep played messages (its signed roster says how many).
    #[arg(long, env = "PAWPOST_MAX_RETENTION_DAYS", default_value_t = config::DEFAULT_MAX_RETENTION_DAYS)]
    max_retention_days: u16,

    /// Days after which a message nobody played is deleted.
    #[arg(long, env = "PAWPOST_MAX_UNPLAYED_DAYS", default_value_t = config::DEFAULT_MAX_UNPLAYED_DAYS)]
    max_unplayed_days: u16,

    #[command(flatten)]
    mail: MailArgs,

    #[command(flatten)]
    log: LogArgs,

    /// Password hashes computed at once (each uses 19 MiB and a core) [default: one fewer than the cores, at least 1].
    #[arg(long, env = "PAWPOST_HASH_WORKERS")]
    hash_workers: Option<usize>,

    /// A load balancer's address or network (10.0.0.0/8); requests from it are counted
    /// against the client named in its X-Forwarded-For header. Repeat for several
    /// [default: none, the header is ignored].
    #[arg(
        long = "trusted-proxy",
        value_name = "NETWORK",
        env = "PAWPOST_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<TrustedProxy>,

    /// The public half of a release key (64 hex digits, from `pawpost release keygen`):
    /// releases of the toy's software it signed are published and offered to toys.
    /// Repeat for several [default: none, no update is offered].
    #[arg(
        long = "release-public-key",
        value_name = "HEX",
        env = "PAWPOST_RELEASE_PUBLIC_KEY",
        value_delimiter = ',',
        value_parser = release::parse_public_key
    )]
    release_public_keys: Vec<[u8; 32]>,

    /// The oldest toy protocol version accepted: 2 also lets toys speaking version 2 in
    /// the clear connect (/api/v1/toy/ws); 3 accepts only the encrypted channel
    /// (/api/v1/toy/channel) and answers version 2 toys 426, telling their maker to update
    /// them (docs/TOY-PROTOCOL.md).
    #[arg(long, env = "PAWPOST_TOY_MIN_PROTOCOL", default_value_t = config::DEFAULT_TOY_MIN_PROTOCOL,
        value_name = "VERSION",
        value_parser = clap::value_parser!(u8)
            .range(config::OLDEST_TOY_PROTOCOL as i64..=config::CHANNEL_TOY_PROTOCOL as i64))]
    toy_min_protocol: u8,
}

impl ServeArgs {
    /// The server's configuration, and the storage it runs on.
    fn into_config(self) -> Result<(ServerConfig, StorageConfig), UrlError> {
        let mut c = ServerConfig::with_data_dir(&self.store.data_dir);
        let storage = self.store.storage()?;
        c.public_url = self.public_url;
        c.tls_cert = self.tls_cert;
        c.tls_key = self.tls_key;
        c.listen = self.listen;
        c.insecure_cookies = self.insecure_cookies;
        c.security_contact = self.security_contact;
        c.min_password_chars = self.min_password_chars;
        c.session_ttl = Duration::from_secs(self.session_hours.max(1) * 3600);
        c.max_json_bytes = self.max_json_bytes;
        c.max_envelope_bytes = self.max_envelope_bytes;
        c.envelope_in_row_max_bytes = self.envelope_in_row_max_bytes;
        c.login_failures_per_account = RateLimit {
            max: self.login_failures_per_account,
            window: config::LOGIN_WINDOW,
        };
        c.login_failures_per_address = RateLimit {
            max: self.login_failures_per_address,
            window: config::LOGIN_WINDOW,
        };
        c.signups_per_address = RateLimit {
            max: self.signups_per_address,
            window: config::SIGNUP_WINDOW,
        };
        c.max_retention_days = self.max_retention_days.max(1);
        c.max_unplayed_days = self.max_unplayed_days.max(1);
        c.trusted_proxies = self.trusted_proxies;
        c.release_public_keys = self.release_public_keys;
        c.toy_min_protocol = self.toy_min_protocol;
        c.smtp_url = self.mail.smtp_url;
        c.mail_from = self.mail.mail_from;
        if let Some(workers) = self.hash_workers {
            c.hash_workers = workers.max(1);
        }
        Ok((c, storage))
    }
}

async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("stopping: finishing requests in flight");
}

#[tokio::main]
async fn main() -> eyre::Result<()> {
    let cli = Cli::parse();
    init_logs(match &cli.command {
        Command::Serve(args) => args.log.log_format,
        Command::Demo(args) => args.log.log_format,
        _ => LogFormat::Text,
    });
    match cli.command {
        Command::Serve(args) => {
            let (config, storage) = args.into_config()?;
            let data_dir = config.data_dir.clone();
            let server = pawpost_server::start(config, pawpost_storage::open(&storage)).await?;
            println!(
                "pawpost is serving {} (data in {})",
                server.local_url(),
                data_dir.display()
            );
            server.run_until(stop_signal()).await?;
        }
        Command::Toy(args) => {
            // Kept until the toy stops: the phone's link ends with it.
            let link = match args.serial_listen {
                Some(listen) => Some(pawpost_toy_sim::SerialLink::listen(listen).await?),
                None => None,
            };
            if let Some(link) = &link {
                println!("link: {}", link.address());
            }
            if !args.release_public_keys.is_empty() {
                if !pawpost_toy_sim::valid_board(&args.board) {
                    eyre::bail!("--board must be 1 to 32 characters of a-z, 0-9 and -");
                }
                let firmware = pawpost_toy::Firmware {
                    board: args.board,
                    version: args.software_version,
                    counter: args.software_counter,
                    confirmed: true,
                };
                if pawpost_toy_sim::install_factory_firmware(
                    &args.state_dir,
                    firmware,
                    args.release_public_keys,
                )? {
                    println!(
                        "software: version {} (firmware.txt written)",
                        args.software_version
                    );
                }
            }
            let config = pawpost_toy_sim::SimConfig {
                server: link
                    .as_ref()
                    .map_or(args.server, |link| link.toy_server().to_string()),
                state_dir: args.state_dir,
                speak_wav: args.speak_wav,
                language: args.language,
                trust_cert: args.trust_cert,
            };
            let input = tokio::io::BufReader::new(tokio::io::stdin());
            pawpost_toy_sim::run_cli_on(config, args.channel, input, std::io::stdout()).await?;
        }
        Command::Relay(args) => relay::run(args).await?,
        Command::Demo(args) => demo(args).await?,
        Command::Backup { to, store } => {
            let report = pawpost_backup::backup(&store.storage()?, &to, show_progress).await?;
            eprintln!();
            println!(
                "backed up the database ({} bytes) and {} blobs ({} bytes) to {}",
                report.database_bytes,
                report.blobs,
                report.blob_bytes,
                report.dir.display()
            );
        }
        Command::Restore {
            from,
            force,
            check_only,
            store,
        } => {
            if check_only {
                pawpost_backup::verify_with_progress(&from, show_progress).await?;
                eprintln!();
                println!(
                    "{} is a complete backup: every checksum matches",
                    from.display()
                );
            } else {
                let options = pawpost_backup::RestoreOptions { force };
                let report = pawpost_backup::restore_with_options(
                    &store.storage()?,
                    &from,
                    options,
                    show_progress,
                )
                .await?;
                eprintln!();
                println!(
                    "restored the database ({}) and {} blobs ({}); start the server to use them",
                    report.database, report.blobs, report.blob_target
                );
            }
        }
        Command::Admin { command } => admin(command).await?,
        Command::Release { command } => release::run(command).await?,
        Command::Audit {
            command: AuditCommand::Verify(args),
        } => {
            let (store, _) = pawpost_storage::open(&args.storage()?).await?;
            match pawpost_server::audit::verify(store.as_ref()).await {
                Ok(entries) => println!(
                    "the audit trail is intact: {entries} entries, each chained to the one before"
                ),
                Err(e) => {
                    eprintln!("{e}");
                    eprintln!("restore the database from a backup taken before the break, and treat the gap as an incident");
                    std::process::exit(1);
                }
            }
        }
    }
    Ok(())
}

fn parse_time(text: &str) -> eyre::Result<time::OffsetDateTime> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).map_err(|e| {
        eyre::eyre!("{text:?} is not an RFC 3339 time such as 2026-11-01T00:00:00Z: {e}")
    })
}

async fn admin(command: AdminCommand) -> eyre::Result<()> {
    use pawpost_server::admin;
    match command {
        AdminCommand::Accounts {
            lock,
            unlock,
            store,
        } => {
            let (store, _) = pawpost_storage::open(&store.storage()?).await?;
            if let Some((email, locked)) = lock.map(|e| (e, true)).or(unlock.map(|e| (e, false))) {
                let email = pawpost_domain::Email::parse(&email)?;
                let account = store
                    .account_by_email(&email)
                    .await?
                    .ok_or_else(|| eyre::eyre!("no account has the address {email}"))?;
                store.set_account_locked(account.id, locked).await?;
                let action = if locked {
                    pawpost_server::audit::AuditAction::AccountLocked
                } else {
                    pawpost_server::audit::AuditAction::AccountUnlocked
                };
                pawpost_server::audit::record_in(
                    store.as_ref(),
                    pawpost_server::audit::Event::new(action).on(account.id),
                )
                .await;
                println!(
                    "{email} is now {}",
                    if locked { "locked" } else { "unlocked" }
                );
            } else {
                for a in store.accounts().await? {
                    println!(
                        "{}\t{}\t{}{}",
                        a.email,
                        a.id,
                        a.created_at.date(),
                        if a.locked { "\tlocked" } else { "" }
                    );
                }
            }
        }
        AdminCommand::Health(store) => {
            let (store, _) = pawpost_storage::open(&store.storage()?).await?;
            println!("accounts: {}", store.accounts().await?.len());
            match pawpost_server::audit::verify(store.as_ref()).await {
                Ok(n) => println!("audit trail: intact, {n} entries"),
                Err(e) => println!("audit trail: {e}"),
            }
        }
        AdminCommand::BreachReport {
            since,
            until,
            scope,
            notify,
            what_happened,
            information,
            contact,
            mail,
            store,
        } => {
            let since = parse_time(&since)?;
            let until = until
                .as_deref()
                .map(parse_time)
                .transpose()?
                .unwrap_or_else(time::OffsetDateTime::now_utc);
            let scope: admin::BreachScope = scope.parse().map_err(|e: String| eyre::eyre!(e))?;
            let storage = store.storage()?;
            let (store, _) = pawpost_storage::open(&storage).await?;
            let affected = admin::breach_report(store.as_ref(), since, until, scope).await?;
            for a in &affected {
                let email = a
                    .email
                    .as_ref()
                    .map_or_else(|| "(account deleted)".to_owned(), |e| e.to_string());
                println!("{email}\t{}\t{}", a.account, a.reasons.join("; "));
            }
            println!("{} accounts could have been reached", affected.len());
            if notify {
                let mailer = pawpost_server::mail::Mailer::new(
                    mail.smtp_url.as_deref(),
                    &mail.mail_from,
                    &storage.data_dir,
                )?;
                let incident = admin::Incident {
                    what_happened,
                    information_involved: information,
                    contact,
                    since,
                    until,
                };
                let sent = admin::notify(store.as_ref(), &mailer, &affected, &incident).await;
                println!("sent {sent} notices of data breach");
            }
        }
    }
    Ok(())
}

/// One progress line on standard error, rewritten in place.
fn show_progress(p: pawpost_backup::Progress) {
    eprint!("\r{}: {}/{}   ", p.phase, p.done, p.total);
}

async fn demo(args: DemoArgs) -> eyre::Result<()> {
    let storage = StorageConfig::with_data_dir(args.data_dir.join("server"));
    let mut config = ServerConfig::with_data_dir(&storage.data_dir);
    config.listen = args.listen;
    // The demo is plain http on loopback.
    config.insecure_cookies = true;
    let server = pawpost_server::start(config, pawpost_storage::open(&storage)).await?;
    let url = format!("http://{}", server.addr);
    println!("pawpost demo: open {url} in a browser, sign up, and create a household.");
    println!("A simulated toy is running here. Type `long-press` to hear its pairing code, enter");
    println!("the code in the app, and type `press` when the toy says the number the app shows.");
    println!("Then send it a message and type `press` to play it.");
    println!("Type `help` for the toy's commands; Ctrl-C stops the demo.");
    let toy = pawpost_toy_sim::SimConfig {
        server: url,
        state_dir: args.data_dir.join("toy"),
        speak_wav: true,
        language: pawpost_toy_sim::Language::default(),
        trust_cert: None,
    };
    let input = tokio::io::BufReader::new(tokio::io::stdin());
    let toy_task = tokio::spawn(async move {
        if let Err(e) = pawpost_toy_sim::run_cli(toy, input, std::io::stdout()).await {
            eprintln!("the simulated toy stopped: {e}");
        }
    });
    server.run_until(stop_signal()).await?;
    toy_task.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_with_no_options_uses_the_embedded_defaults() {
        let cli = Cli::try_parse_from(["pawpost", "serve"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("`pawpost serve` parses as the serve command");
        };
        let (config, storage) = args.into_config().unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.data_dir, PathBuf::from("pawpost-data"));
        assert_eq!(
            storage.database.as_str(),
            "sqlite://pawpost-data/pawpost.db"
        );
        assert_eq!(
            storage.blobs,
            pawpost_storage::BlobUrl::Folder("pawpost-data/blobs".into())
        );
        assert!(!config.insecure_cookies);
        assert_eq!((config.tls_cert, config.tls_key), (None, None));
        assert_eq!(config.min_password_chars, 15);
    }

    #[test]
    fn the_toy_and_demo_commands_have_sane_defaults() {
        let cli = Cli::try_parse_from(["pawpost", "toy"]).unwrap();
        let Command::Toy(toy) = cli.command else {
            panic!("`pawpost toy` parses as the toy command");
        };
        assert_eq!(toy.server, "http://127.0.0.1:8080");
        assert_eq!(toy.state_dir, PathBuf::from("pawpost-toy"));
        let cli = Cli::try_parse_from(["pawpost", "demo"]).unwrap();
        assert!(matches!(cli.command, Command::Demo(_)));
    }
}
