//! Everything an operator can set. Every limit lives here or is a named constant.
pub use pawpost_domain::password::{DEFAULT_MIN_PASSWORD_CHARS, MAX_PASSWORD_CHARS};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Default address: loopback only, so a fresh install is not on the network.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default data folder, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "pawpost-data";
/// Largest JSON body accepted on the API.
pub const DEFAULT_MAX_JSON_BYTES: usize = 64 * 1024;
/// Largest message envelope accepted (a 30 s voice message is about 100 KiB).
pub const DEFAULT_MAX_ENVELOPE_BYTES: usize = 1_000_000;
/// The most `max_envelope_bytes` may be: what one toy frame carries. A larger message
/// could be accepted and then never reach the toy.
pub const MAX_ENVELOPE_BYTES_LIMIT: usize = pawpost_protocol::MAX_ENVELOPE_LEN;
const _: () = assert!(DEFAULT_MAX_ENVELOPE_BYTES <= MAX_ENVELOPE_BYTES_LIMIT);
/// Envelopes up to this size are kept in their message's database row, written in the
/// same commit as the row: one sync makes both durable, and concurrent uploads share it.
/// Larger ones go to the blob store (a folder or a bucket) first.
pub const DEFAULT_ENVELOPE_IN_ROW_MAX_BYTES: usize = 128 * 1024;
/// How long a session lasts after sign-in.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long an invitation link can be used.
pub const INVITATION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Invitations one account may create within `INVITATION_WINDOW`, in all its households:
/// a family invites a handful of relatives, a spammer thousands of strangers.
pub const INVITATIONS_PER_ACCOUNT_PER_DAY: u32 = 20;
/// Invitations one household may have created within `INVITATION_WINDOW`, by all its
/// parents together.
pub const INVITATIONS_PER_HOUSEHOLD_PER_DAY: u32 = 30;
/// The window the invitation limits count over.
pub const INVITATION_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// A request that takes longer than this (a slow body, say) is answered 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often expired sessions are swept away.
pub const SESSION_SWEEP_INTERVAL: Duration = Duration::from_secs(3600);
/// Failed sign-ins allowed per account within `LOGIN_WINDOW`.
pub const DEFAULT_LOGIN_FAILURES_PER_ACCOUNT: u32 = 10;
/// Failed sign-ins allowed per client address within `LOGIN_WINDOW`.
pub const DEFAULT_LOGIN_FAILURES_PER_ADDRESS: u32 = 100;
/// The window over which failed sign-ins are counted.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
/// New accounts allowed per client address within `SIGNUP_WINDOW`.
pub const DEFAULT_SIGNUPS_PER_ADDRESS: u32 = 20;
pub const SIGNUP_WINDOW: Duration = Duration::from_secs(3600);
/// How long a link to choose a new password works (it also stops at its first use, and
/// once the password changes).
pub const PASSWORD_RESET_TTL: Duration = Duration::from_secs(30 * 60);
/// How long the stored hash of an expired link to choose a new password is kept, so
/// that opening the link late is answered "expired" rather than "not a link"; the
/// retention sweep deletes it after that.
pub const PASSWORD_RESET_KEPT_EXPIRED: Duration = Duration::from_secs(24 * 3600);
/// Links to choose a new password one email address may ask for within
/// `PASSWORD_RESET_WINDOW` (counted whether or not the address has an account).
pub const PASSWORD_RESETS_PER_ACCOUNT: u32 = 3;
/// Links to choose a new password one client address may ask for within
/// `PASSWORD_RESET_WINDOW`, for any email addresses.
pub const PASSWORD_RESETS_PER_ADDRESS: u32 = 20;
/// The window the password reset limits count over.
pub const PASSWORD_RESET_WINDOW: Duration = Duration::from_secs(3600);
/// How long a link to confirm an account's email address works (it also stops at its
/// first use, and once the address is confirmed).
pub const EMAIL_VERIFICATION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Links to confirm its email address one account is sent within
/// `EMAIL_VERIFICATION_WINDOW`, the one sent at sign-up included; asking for more is
/// answered 429.
pub const EMAIL_VERIFICATIONS_PER_DAY: u32 = 4;
/// The window `EMAIL_VERIFICATIONS_PER_DAY` counts over. An expired link is kept this
/// long after its expiry (so that opening it late is answered "expired"), and deleted
/// when the account is sent a new link, is confirmed, or is deleted.
pub const EMAIL_VERIFICATION_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Password hashes allowed to wait for a worker.
pub const DEFAULT_HASH_QUEUE: usize = 64;
/// Default security.txt contact; operators set their own.
pub const DEFAULT_SECURITY_CONTACT: &str = "mailto:security@pawpost.invalid";
/// How long a toy's pairing code stays valid (DESIGN.md: 10 minutes).
pub const PAIRING_CODE_TTL: Duration = Duration::from_secs(10 * 60);
/// Wrong pairing codes one account may enter within `PAIRING_WINDOW`.
pub const PAIRING_WRONG_CODES_PER_ACCOUNT: u32 = 5;
/// Pairing codes one client address may ask for within `PAIRING_WINDOW`.
pub const DEFAULT_PAIRING_REQUESTS_PER_ADDRESS: u32 = 10;
pub const PAIRING_WINDOW: Duration = Duration::from_secs(10 * 60);
/// A toy must authenticate or ask to pair this soon after connecting.
pub const TOY_HELLO_DEADLINE: Duration = Duration::from_secs(30);
/// Toy sockets one client address may hold open before they authenticate or ask to pair
/// (a family's toys and a phone relaying for them need a few).
pub const MAX_UNAUTHENTICATED_TOY_SOCKETS_PER_ADDRESS: usize = 16;
/// How long a toy has to confirm a parent's claim with a press of its paw.
pub const PAIRING_CONFIRM_TTL: Duration = Duration::from_secs(2 * 60);
/// Failed toy authentications on one connection before it is closed.
pub const TOY_AUTH_ATTEMPTS: u32 = 3;
/// Failed toy authentications one client address may make within `TOY_AUTH_WINDOW`
/// before its toy connections are refused (each failure used to add an audit row).
pub const TOY_AUTH_FAILURES_PER_ADDRESS: u32 = 30;
pub const TOY_AUTH_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Frames waiting to be written to one toy; a toy that does not read is disconnected.
pub const TOY_OUTBOX_FRAMES: usize = 64;
/// Bytes a toy's WebSocket reads at once into a buffer on the stack: a connection keeps
/// no read buffer while it waits, and only a frame that arrives in pieces is kept on the
/// heap until it is whole (`routes/toy_ws/socket.rs`).
pub const TOY_WS_READ_BUFFER_BYTES: usize = 1024;
/// How long a toy's connection that ends waits to send its close frame (a toy that does
/// not read is not waited for longer).
pub const TOY_WS_CLOSE_WAIT: Duration = Duration::from_secs(5);
/// The oldest toy protocol version the server speaks: version 2, in the clear on
/// `/api/v1/toy/ws`.
pub const OLDEST_TOY_PROTOCOL: u8 = 2;
/// The toy protocol version of the encrypted channel, `/api/v1/toy/channel`.
pub const CHANNEL_TOY_PROTOCOL: u8 = 3;
/// The oldest toy protocol version accepted unless configured otherwise: version 2, so
/// that toys not yet updated to the channel still connect.
pub const DEFAULT_TOY_MIN_PROTOCOL: u8 = OLDEST_TOY_PROTOCOL;
/// Days a played message is kept when the household's roster does not say.
pub const DEFAULT_RETENTION_DAYS: u16 = 30;
/// The most days any household may keep played messages.
pub const DEFAULT_MAX_RETENTION_DAYS: u16 = 365;
/// Days an unplayed message is kept before it expires.
pub const DEFAULT_MAX_UNPLAYED_DAYS: u16 = 90;
/// How often expired messages are swept away.
pub const RETENTION_SWEEP_INTERVAL: Duration = Duration::from_secs(3600);
/// Longest display name and household name.
pub const MAX_NAME_CHARS: usize = 80;
/// A TLS client must finish its handshake this soon after connecting, or it is closed.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// TLS handshakes in progress at once; beyond this, new connections wait in the kernel's
/// backlog until one finishes or times out.
pub const MAX_PENDING_TLS_HANDSHAKES: usize = 1024;
/// A request's headers must arrive whole this soon after its connection opens (after the
/// TLS handshake), or after the answer to the request before, however slowly they
/// trickle; otherwise the connection is closed. So it is also how long a kept-alive
/// connection may sit idle between requests.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections one client address may hold open before they send a whole request. A
/// browser opens a few at once and families behind one NAT share an address, so this is
/// generous; past it, the address's oldest such connection is closed to make room. A
/// trusted proxy's connections are not counted: they carry many clients (`serve.rs`).
pub const MAX_PENDING_CONNECTIONS_PER_ADDRESS: usize = 32;
/// A connection that has not sent a request is closed to make room for a newer one from
/// its address only once it is this old: its request may be waiting to be read (a
/// browser's burst of connections is accepted faster than it is read).
pub const NEW_CONNECTION_GRACE: Duration = Duration::from_secs(1);
/// File descriptors kept back from client connections for the database, blob files and
/// logs (or a quarter of the process's limit, if less). Past the rest, a new connection
/// closes the oldest one that is idle or has sent no request, or is refused.
pub const FD_RESERVE: u64 = 128;
/// Largest certificate or key file read at start (a chain is a few KiB).
pub const MAX_TLS_PEM_BYTES: u64 = 1024 * 1024;
/// The HSTS header sent when pawpost is reached over https: browsers then use https for a
/// year. Without `includeSubDomains`, since pawpost cannot know that every other host
/// under its domain serves https; a proxy in front can add it (and `preload`).
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

/// Throttling of one kind of attempt: at most `max` within `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub max: u32,
    pub window: Duration,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// The data folder, for the outbox when there is no SMTP server. The stores are
    /// handed to `start` (`pawpost-storage` keeps their defaults in this folder too).
    pub data_dir: PathBuf,
    /// The address people use to reach this server, for links in invitations and
    /// security.txt; `http://<bound address>` when unset (`https://` with TLS). An
    /// `https://` address also turns on HSTS, for TLS ended at a proxy. Its host is the
    /// passkeys' relying party (`services::passkeys::relying_party`).
    pub public_url: Option<String>,
    /// PEM certificate chain (the server's certificate first) to serve HTTPS and wss
    /// itself on `listen`; needs `tls_key`. Plain HTTP when both are unset.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, RSA or EC) of the certificate in `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Leave `Secure` off the session cookie, for plain-http local use only.
    pub insecure_cookies: bool,
    /// security.txt `Contact:` value (a `mailto:` or `https:` URI).
    pub security_contact: String,
    pub min_password_chars: usize,
    pub max_password_chars: usize,
    pub session_ttl: Duration,
    pub max_json_bytes: usize,
    /// Largest message envelope accepted; bigger uploads get 413 and nothing is stored.
    pub max_envelope_bytes: usize,
    /// Envelopes up to this size are kept in the database row of their message, larger
    /// ones in the blob store; 0 keeps every envelope in the blob store.
    pub envelope_in_row_max_bytes: usize,
    /// Wrong passwords (sign-in, password change, account deletion) allowed per account
    /// from clients it does not know, and per browser it knows (see `credentials`).
    pub login_failures_per_account: RateLimit,
    /// Failed sign-ins allowed per client address (IPv6 by /64), from clients the
    /// account does not know.
    pub login_failures_per_address: RateLimit,
    /// New accounts allowed per client address.
    pub signups_per_address: RateLimit,
    /// Pairing codes a client address may ask for within `PAIRING_WINDOW`.
    pub pairing_requests_per_address: RateLimit,
    /// The most days a household may keep played messages (its roster asks for fewer).
    pub max_retention_days: u16,
    /// Days after which a message nobody played is deleted.
    pub max_unplayed_days: u16,
    /// SMTP server for email (`smtp://host:port`, `smtps://user:password@host`); without
    /// one, emails are written to `<data_dir>/outbox`.
    pub smtp_url: Option<String>,
    /// The sender of pawpost's emails.
    pub mail_from: String,
    /// Password hashes computed at once; each takes 19 MiB and one core. By default
    /// [`default_hash_workers`]: one core is always left to everything else.
    pub hash_workers: usize,
    /// Password hashes allowed to wait for a worker before the server answers 503.
    pub hash_queue: usize,
    /// Load balancers whose `X-Forwarded-For` names the client; none by default.
    pub trusted_proxies: Vec<crate::proxy::TrustedProxy>,
    /// Ed25519 public keys of the release keys whose signed releases of the toy's software
    /// the server publishes and offers (docs/UPDATES.md); none: no update is offered.
    pub release_public_keys: Vec<[u8; 32]>,
    /// The oldest toy protocol version accepted ([`OLDEST_TOY_PROTOCOL`] to
    /// [`CHANNEL_TOY_PROTOCOL`]): at 3, `/api/v1/toy/ws` (version 2, in the clear) is
    /// refused with 426 and only the channel is served.
    pub toy_min_protocol: u8,
}

/// One password hash at a time per core but one (at least one): a flood of wrong
/// passwords then never takes every core from the deliveries (the login storm of
/// BENCHMARKS.md).
pub fn default_hash_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}

impl ServerConfig {
    /// The embedded defaults, with data under `data_dir`.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            data_dir: data_dir.into(),
            public_url: None,
            tls_cert: None,
            tls_key: None,
            insecure_cookies: false,
            security_contact: DEFAULT_SECURITY_CONTACT.into(),
            min_password_chars: DEFAULT_MIN_PASSWORD_CHARS,
            max_password_chars: MAX_PASSWORD_CHARS,
            session_ttl: DEFAULT_SESSION_TTL,
            max_json_bytes: DEFAULT_MAX_JSON_BYTES,
            max_envelope_bytes: DEFAULT_MAX_ENVELOPE_BYTES,
            envelope_in_row_max_bytes: DEFAULT_ENVELOPE_IN_ROW_MAX_BYTES,
            login_failures_per_account: RateLimit {
                max: DEFAULT_LOGIN_FAILURES_PER_ACCOUNT,
                window: LOGIN_WINDOW,
            },
            login_failures_per_address: RateLimit {
                max: DEFAULT_LOGIN_FAILURES_PER_ADDRESS,
                window: LOGIN_WINDOW,
            },
            signups_per_address: RateLimit {
                max: DEFAULT_SIGNUPS_PER_ADDRESS,
                window: SIGNUP_WINDOW,
            },
            pairing_requests_per_address: RateLimit {
                max: DEFAULT_PAIRING_REQUESTS_PER_ADDRESS,
                window: PAIRING_WINDOW,
            },
            max_retention_days: DEFAULT_MAX_RETENTION_DAYS,
            max_unplayed_days: DEFAULT_MAX_UNPLAYED_DAYS,
            smtp_url: None,
            mail_from: crate::mail::DEFAULT_MAIL_FROM.into(),
            hash_workers: default_hash_workers(),
            hash_queue: DEFAULT_HASH_QUEUE,
            trusted_proxies: Vec::new(),
            release_public_keys: Vec::new(),
            toy_min_protocol: DEFAULT_TOY_MIN_PROTOCOL,
        }
    }
}
