//! The pawpost server: one HTTP port, the family API, the toy WebSocket and the web app.
//! `start` runs it on any address, which is how the tests and `pawpost serve` both use it.
//!
//! What the server does lives in [`services`] (accounts, households, keys, messages,
//! toys), each with its own typed error and no knowledge of HTTP; [`routes`] and the toy
//! WebSocket translate requests into service calls and errors into answers. Everything
//! that reaches a toy connected here goes through [`delivery`]; [`relay`] tells the
//! other processes sharing the store. Every password check goes through [`credentials`].
#![forbid(unsafe_code)]

pub mod admin;
pub mod audit;
pub mod auth;
pub mod batch;
pub mod config;
pub mod credentials;
pub mod delivery;
pub mod error;
pub mod events;
pub mod mail;
pub mod notify;
pub mod passwords;
pub mod proxy;
pub mod ratelimit;
pub mod relay;
pub mod retention;
pub mod routes;
mod serve;
pub mod services;
pub mod state;
mod storage;
pub use storage::Stores;
pub mod tls;
pub mod tokens;
pub mod toyhub;
mod web;

use axum::http::{header, HeaderName, HeaderValue};
use axum::Router;
use config::ServerConfig;
use routes::{
    accounts, events as live, households, keys, messages, meta, notifications, passkeys, privacy,
    sessions, toy_ws, toys,
};
use state::{AppState, Limits};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use storage::StartError;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pawpost",
        description = "Voice messages between a family and a child's toy, end-to-end encrypted. \
            Browsers authenticate with the HttpOnly session cookie and echo `csrf_token` in \
            `X-CSRF-Token` on changes; API clients send `Authorization: Bearer <token>`.",
        license(name = "AGPL-3.0-or-later")
    ),
    tags(
        (name = "meta", description = "Health, security contact, this document"),
        (name = "accounts", description = "Accounts and passwords"),
        (name = "sessions", description = "Signing in and out"),
        (name = "passkeys", description = "Passkeys (WebAuthn): signing up and in without a password, and recovery material kept with a passkey"),
        (name = "households", description = "Households, members, invitations"),
        (name = "keys", description = "Device public keys and the signed household roster"),
        (name = "messages", description = "End-to-end encrypted message envelopes"),
        (name = "privacy", description = "Export and deletion of a family's data"),
        (name = "toys", description = "Pairing toys, and the toys' WebSocket (docs/TOY-PROTOCOL.md)"),
        (name = "events", description = "Live updates while the app is open (Server-Sent Events): what changed, by kind and ids"),
        (name = "notifications", description = "Which notification mails a person gets, and the one-click unsubscribe link in each"),
    )
)]
struct ApiDoc;

/// The router and the OpenAPI document, built from one list of handlers so they agree.
pub fn app(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let max_json = state.config.max_json_bytes;
    let max_envelope = state.config.max_envelope_bytes;
    let https = reached_over_https(&state);
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(meta::healthz))
        .routes(routes!(meta::security_txt))
        .routes(routes!(meta::security_policy))
        .routes(routes!(accounts::create_account))
        .routes(routes!(accounts::me, privacy::delete_account))
        .routes(routes!(privacy::export))
        .routes(routes!(accounts::change_password))
        .routes(routes!(accounts::request_password_reset))
        .routes(routes!(accounts::confirm_password_reset))
        .routes(routes!(accounts::resend_email_verification))
        .routes(routes!(accounts::confirm_email_verification))
        .routes(routes!(sessions::sign_in, sessions::list))
        .routes(routes!(sessions::current, sessions::sign_out))
        .routes(routes!(sessions::end_others))
        .routes(routes!(passkeys::start_registration))
        .routes(routes!(passkeys::finish_registration))
        .routes(routes!(passkeys::start_sign_up))
        .routes(routes!(passkeys::finish_sign_up))
        .routes(routes!(passkeys::start_sign_in))
        .routes(routes!(passkeys::finish_sign_in))
        .routes(routes!(passkeys::list))
        .routes(routes!(passkeys::remove))
        .routes(routes!(
            notifications::get_settings,
            notifications::put_settings
        ))
        .routes(routes!(
            notifications::unsubscribe_page,
            notifications::unsubscribe_one_click
        ))
        .routes(routes!(
            passkeys::put_recovery_material,
            passkeys::get_recovery_material
        ))
        .routes(routes!(households::create, households::list))
        .routes(routes!(
            households::get,
            households::rename,
            privacy::delete_household
        ))
        .routes(routes!(households::members))
        .routes(routes!(households::audit_trail))
        .routes(routes!(households::my_activity))
        .routes(routes!(households::invite))
        .routes(routes!(households::accept))
        .routes(routes!(households::approve))
        .routes(routes!(households::block))
        .routes(routes!(households::unblock))
        .routes(routes!(households::change_role, households::remove))
        .routes(routes!(keys::register_device, keys::my_devices))
        .routes(routes!(keys::household_devices))
        .routes(routes!(keys::certify_device))
        .routes(routes!(keys::remove_device))
        .routes(routes!(keys::roster_versions))
        .routes(routes!(keys::get_roster, keys::publish_roster))
        .routes(routes!(live::events))
        .routes(routes!(messages::upload, messages::list))
        .routes(routes!(messages::download))
        .routes(routes!(messages::receipt))
        .routes(routes!(messages::approve))
        .routes(routes!(toys::pair, toys::list))
        .routes(routes!(toys::remove))
        .routes(routes!(toys::set_names))
        .routes(routes!(toys::safety_checked))
        .routes(routes!(toy_ws::toy_ws))
        .routes(routes!(toy_ws::channel::toy_channel))
        .with_state(state)
        .split_for_parts();
    let doc_json: Arc<str> = doc
        .to_pretty_json()
        .expect("the document serialises")
        .into();
    let router = router
        .route(
            "/api/openapi.json",
            axum::routing::get(move || {
                let body = doc_json.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        body.to_string(),
                    )
                }
            }),
        )
        .fallback(web::serve)
        .layer(axum::middleware::from_fn_with_state(
            auth::OwnScheme::https(https),
            auth::reject_cross_site,
        ))
        .layer(axum::middleware::from_fn_with_state(
            max_json.max(max_envelope),
            auth::reject_oversized,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(max_json))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            config::REQUEST_TIMEOUT,
        ))
        .layer(axum::middleware::from_fn(no_store_for_the_api));
    (security_headers(router, https), doc)
}

/// People reach pawpost over https when it serves TLS itself, or when its public address
/// is `https://` (TLS ended at a proxy). Then HSTS is sent (over plain http it would be
/// ignored by browsers anyway, and a promise the server cannot keep), and a page must
/// come from an `https://` origin to make changes.
fn reached_over_https(state: &AppState) -> bool {
    let https_public_url = state
        .public_url
        .get(.."https://".len())
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"));
    state.config.tls_cert.is_some() || https_public_url
}

/// Every answer under `/api/` (errors included) carries `Cache-Control: no-store`: they
/// hold tokens, a family's data and its envelopes, which no browser or proxy cache
/// should keep.
async fn no_store_for_the_api(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let api = request.uri().path().starts_with("/api/");
    let mut response = next.run(request).await;
    if api {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Headers every answer carries: no framing, no sniffing, no referrer, a strict CSP, and
/// with `hsts` the `Strict-Transport-Security` header.
fn security_headers(router: Router, hsts: bool) -> Router {
    const CSP: &str =
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; \
        media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
        form-action 'self'; frame-ancestors 'none'";
    let headers: [(HeaderName, &'static str); 6] = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("permissions-policy"),
            "microphone=(self), camera=(), geolocation=()",
        ),
    ];
    let hsts = hsts.then_some((
        header::STRICT_TRANSPORT_SECURITY,
        config::STRICT_TRANSPORT_SECURITY,
    ));
    headers
        .into_iter()
        .chain(hsts)
        .fold(router, |router, (name, value)| {
            router.layer(SetResponseHeaderLayer::overriding(
                name,
                HeaderValue::from_static(value),
            ))
        })
}

/// A server that is listening. Dropping it does not stop it; call `shutdown`.
pub struct RunningServer {
    pub addr: SocketAddr,
    /// The server's state, for maintenance run in the same process (and tests).
    pub state: AppState,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// `https://<address>` when the server speaks TLS itself, else `http://<address>`.
    pub fn local_url(&self) -> String {
        let scheme = if self.state.config.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// Stops accepting, lets requests in flight finish, and returns.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.shutdown.send(());
        self.task.await.map_err(std::io::Error::other)?
    }

    /// Serves until `stop` completes (a signal, say), then shuts down gracefully.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<()> {
        let RunningServer {
            shutdown, mut task, ..
        } = self;
        tokio::select! {
            result = &mut task => return result.map_err(std::io::Error::other)?,
            () = stop => {}
        }
        let _ = shutdown.send(());
        task.await.map_err(std::io::Error::other)?
    }
}

/// Binds the address in `config` and starts serving on the stores that `storage` opens.
/// The caller chooses the backends (the `pawpost` binary through `pawpost-storage`);
/// `storage` is awaited only once the configuration and the TLS files are checked, so
/// that a mistake there stops the start before any store is opened or created.
pub async fn start<E>(
    config: ServerConfig,
    storage: impl std::future::Future<Output = Result<Stores, E>>,
) -> Result<RunningServer, StartError>
where
    E: std::error::Error + Send + Sync + 'static,
{
    if config.max_envelope_bytes > config::MAX_ENVELOPE_BYTES_LIMIT {
        return Err(StartError::Other(format!(
            "--max-envelope-bytes {} is more than a toy can receive in one frame; use at most {}",
            config.max_envelope_bytes,
            config::MAX_ENVELOPE_BYTES_LIMIT
        )));
    }
    // First, so that a wrong certificate or key stops the start before anything is opened.
    let tls_handshakes = tls::acceptor(&config)?;
    let (store, blobs) = storage
        .await
        .map_err(|e| StartError::OpenStorage(Box::new(e)))?;
    let hasher = passwords::PasswordHasher::new(config.hash_workers, config.hash_queue)
        .map_err(|e| StartError::Other(e.to_string()))?;
    let limits = Arc::new(Limits {
        login_per_account: ratelimit::Limiter::new(config.login_failures_per_account),
        login_per_device: ratelimit::Limiter::new(config.login_failures_per_account),
        login_per_address: ratelimit::Limiter::new(config.login_failures_per_address),
        signup_per_address: ratelimit::Limiter::new(config.signups_per_address),
        pairing_per_address: ratelimit::Limiter::new(config.pairing_requests_per_address),
        wrong_pairing_codes_per_account: ratelimit::Limiter::new(config::RateLimit {
            max: config::PAIRING_WRONG_CODES_PER_ACCOUNT,
            window: config::PAIRING_WINDOW,
        }),
        toy_auth_failures_per_address: ratelimit::Limiter::new(config::RateLimit {
            max: config::TOY_AUTH_FAILURES_PER_ADDRESS,
            window: config::TOY_AUTH_WINDOW,
        }),
        password_resets_per_account: ratelimit::Limiter::new(config::RateLimit {
            max: config::PASSWORD_RESETS_PER_ACCOUNT,
            window: config::PASSWORD_RESET_WINDOW,
        }),
        password_resets_per_address: ratelimit::Limiter::new(config::RateLimit {
            max: config::PASSWORD_RESETS_PER_ADDRESS,
            window: config::PASSWORD_RESET_WINDOW,
        }),
        passkey_ceremonies_per_address: ratelimit::Limiter::new(config::RateLimit {
            max: services::passkeys::CEREMONIES_PER_ADDRESS,
            window: services::passkeys::CEREMONY_WINDOW,
        }),
    });
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| StartError::Bind(config.listen, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Bind(config.listen, e))?;
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| {
            let scheme = if tls_handshakes.is_some() {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{addr}")
        })
        .trim_end_matches('/')
        .into();
    let mailer = mail::Mailer::new(
        config.smtp_url.as_deref(),
        &config.mail_from,
        &config.data_dir,
    )
    .map_err(|e| StartError::Other(e.to_string()))?;
    // Listen before serving, so that no note meant for a toy connected here is missed.
    let relay = store
        .peers()
        .map(|peers| Arc::new(relay::Relay::new(peers)));
    let notes = match &relay {
        Some(relay) => Some(relay.listen().await?),
        None => None,
    };
    let state = AppState::new(state::Services {
        mailer,
        public_url,
        store: store.clone(),
        blobs,
        config: Arc::new(config),
        hasher,
        limits,
        toys: Arc::new(toyhub::ToyHub::default()),
        relay: relay.clone(),
        writes: batch::writer(store.clone()),
        events: Arc::new(events::EventHub::default()),
        started_at: time::OffsetDateTime::now_utc(),
        toy_channel_key: Arc::default(),
    });
    let (router, _) = app(state.clone());
    let sweeper = tokio::spawn(sweep_sessions(store));
    let retention = tokio::spawn(retention::run(state.clone()));
    let relaying = notes.map(|notes| {
        (
            tokio::spawn(relay::run(state.clone(), notes)),
            tokio::spawn(relay::heartbeat(state.clone())),
        )
    });
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let serving_tls = tls_handshakes.is_some();
    let trusted_proxies = state.config.trusted_proxies.clone();
    let live = state.events.clone();
    let task = tokio::spawn(async move {
        let stop = async move {
            let _ = rx.await;
            // Open live-update streams never end by themselves.
            live.close();
        };
        let result = serve::serve(listener, router, tls_handshakes, trusted_proxies, stop).await;
        sweeper.abort();
        retention.abort();
        if let Some((relaying, heartbeat)) = relaying {
            relaying.abort();
            heartbeat.abort();
        }
        result
    });
    tracing::info!(%addr, tls = serving_tls, "pawpost is listening");
    Ok(RunningServer {
        state,
        addr,
        shutdown: tx,
        task,
    })
}

async fn sweep_sessions(store: Arc<dyn pawpost_store::MetadataStore>) {
    let mut tick = tokio::time::interval(config::SESSION_SWEEP_INTERVAL);
    loop {
        tick.tick().await;
        match store
            .delete_expired_sessions(time::OffsetDateTime::now_utc())
            .await
        {
            Ok(n) if n > 0 => tracing::info!(ended = n, "expired sessions removed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "sweeping expired sessions failed"),
        }
    }
}
