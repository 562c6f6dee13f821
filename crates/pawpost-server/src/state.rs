use crate::config::ServerConfig;
use crate::passwords::PasswordHasher;
use crate::ratelimit::{LimitName, Limiter};
use pawpost_domain::PasswordPolicy;
use pawpost_store::{BlobStore, MetadataStore};
use std::sync::Arc;
use time::OffsetDateTime;

/// What every handler can reach: one pointer, so that a clone (one per request, one
/// per connected toy) costs a reference count, not a copy of every field.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The server's parts, behind [`AppState`].
pub struct Services {
    pub store: Arc<dyn MetadataStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub config: Arc<ServerConfig>,
    pub hasher: PasswordHasher,
    pub limits: Arc<Limits>,
    /// The toys connected to this process.
    pub toys: Arc<crate::toyhub::ToyHub>,
    /// The other processes sharing the store, when it has any (PostgreSQL).
    pub relay: Option<Arc<crate::relay::link::Relay>>,
    /// The writer of audit entries and of when toys were last seen, which commits what
    /// is recorded at once together.
    pub writes: crate::batch::Batcher<crate::batch::Write>,
    /// The live-update streams open on this process (`GET /api/v1/events`).
    pub events: Arc<crate::events::EventHub>,
    pub started_at: OffsetDateTime,
    pub mailer: crate::mail::Mailer,
    /// The configured public URL, or the bound address; without a trailing slash.
    pub public_url: Arc<str>,
    /// The server's static key of the toys' channel (protocol version 3), read from its
    /// secrets at the first channel connection and kept for the next ones.
    pub toy_channel_key: Arc<tokio::sync::OnceCell<pawpost_channel::StaticKey>>,
}

/// The keyed rate limiters.
pub struct Limits {
    pub login_per_account: Limiter,
    pub login_per_device: Limiter,
    pub login_per_address: Limiter,
    pub signup_per_address: Limiter,
    pub pairing_per_address: Limiter,
    pub wrong_pairing_codes_per_account: Limiter,
    pub toy_auth_failures_per_address: Limiter,
    pub password_resets_per_account: Limiter,
    pub password_resets_per_address: Limiter,
    /// Passkey ceremonies started from one address (each keeps a row until it expires).
    pub passkey_ceremonies_per_address: Limiter,
}

impl Limits {
    pub fn get(&self, name: LimitName) -> &Limiter {
        match name {
            LimitName::LoginPerAccount => &self.login_per_account,
            LimitName::LoginPerDevice => &self.login_per_device,
            LimitName::LoginPerAddress => &self.login_per_address,
            LimitName::SignupPerAddress => &self.signup_per_address,
            LimitName::PairingPerAddress => &self.pairing_per_address,
            LimitName::WrongPairingCodesPerAccount => &self.wrong_pairing_codes_per_account,
            LimitName::ToyAuthFailuresPerAddress => &self.toy_auth_failures_per_address,
            LimitName::PasswordResetsPerAccount => &self.password_resets_per_account,
            LimitName::PasswordResetsPerAddress => &self.password_resets_per_address,
        }
    }
}

impl AppState {
    pub fn password_policy(&self) -> PasswordPolicy {
        PasswordPolicy {
            min_chars: self.config.min_password_chars,
            max_chars: self.config.max_password_chars,
        }
    }
}
