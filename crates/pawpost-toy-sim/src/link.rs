//! The toy's connection: one WebSocket at a time, reopened after the wait the toy's
//! schedule gives (`pawpost_toy::reconnect_wait_ms`: exponential, with equal jitter,
//! from about a second up to five minutes).

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use pawpost_crypto::os_rng;
use pawpost_crypto::rand_core::Rng;
use pawpost_toy::{reconnect_wait_ms, MAX_FRAME_LEN, RECONNECT_INITIAL_MS, RECONNECT_MAX_MS};
use tokio::net::TcpStream;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

/// The ceiling of the first wait after a failure; each further failure in a row doubles
/// it, up to [`MAX_BACKOFF`] (the toy's `RECONNECT_INITIAL_MS`).
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(RECONNECT_INITIAL_MS);
/// The largest ceiling of a wait between attempts (the toy's `RECONNECT_MAX_MS`).
pub const MAX_BACKOFF: Duration = Duration::from_millis(RECONNECT_MAX_MS);

/// A server that accepts TCP but never finishes the handshake must not hold the toy.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A server that stops reading must not stall the toy's buttons and timers for long.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Closing politely is worth only a moment when stopping.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Connecting = Pin<Box<dyn Future<Output = Result<Ws, String>> + Send>>;

enum State {
    /// Down; the next attempt starts then.
    Waiting(Instant),
    Connecting(Connecting),
    Up(Box<Ws>),
}

/// A wait before the next attempt, as the toy's schedule gave it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Wait {
    /// Failures in a row, this one included.
    pub(crate) attempt: u32,
    /// The scheduled wait (a test's time scale shortens the real one, not this).
    pub(crate) wait: Duration,
    /// The server refused the toy's keys (rather than not being reachable).
    pub(crate) refused: bool,
}

/// What happened on the connection.
#[derive(Debug)]
pub(crate) enum LinkEvent {
    Connected,
    Frame(Vec<u8>),
    /// An open connection failed (with why), or was closed by the server (`None`).
    Lost(Option<String>),
    /// An attempt to connect failed; another follows after the backoff.
    ConnectFailed(String),
}

pub(crate) struct Link {
    url: String,
    /// For `wss://`: whom to trust.
    tls: Option<Arc<rustls::ClientConfig>>,
    state: State,
    /// Failures in a row since the server last accepted the toy.
    failures: u32,
    /// Every wait is divided by this: 1, except in tests that must not take minutes.
    time_scale: u32,
    /// The wait the last failure started, until the owner takes it to announce it.
    waiting: Option<Wait>,
    /// Set when sending failed, so that the owner learns of it after the current batch.
    lost: Option<String>,
}

impl Link {
    /// Starts down, with the first attempt due at once.
    pub(crate) fn new(
        url: String,
        tls: Option<Arc<rustls::ClientConfig>>,
        time_scale: u32,
    ) -> Self {
        Self {
            url,
            tls,
            state: State::Waiting(Instant::now()),
            failures: 0,
            time_scale: time_scale.max(1),
            waiting: None,
            lost: None,
        }
    }

    pub(crate) fn is_up(&self) -> bool {
        matches!(self.state, State::Up(_))
    }

    /// The next thing that happens. Cancel-safe: the attempt in progress and the open
    /// connection live in `self`, so dropping this future loses nothing.
    pub(crate) async fn next(&mut self) -> LinkEvent {
        loop {
            match &mut self.state {
                State::Waiting(at) => {
                    let at = *at;
                    sleep_until(at).await;
                    self.state =
                        State::Connecting(Box::pin(connect(self.url.clone(), self.tls.clone())));
                }
                State::Connecting(attempt) => match attempt.as_mut().await {
                    Ok(ws) => {
                        self.state = State::Up(Box::new(ws));
                        return LinkEvent::Connected;
                    }
                    Err(reason) => {
                        self.retry_later(false);
                        return LinkEvent::ConnectFailed(reason);
                    }
                },
                State::Up(ws) => match ws.next().await {
                    Some(Ok(Message::Binary(bytes))) => {
                        // Speaking the protocol is not being accepted: a server that refuses
                        // the toy's keys speaks it too. The toy says when it was accepted.
                        return LinkEvent::Frame(bytes.to_vec());
                    }
                    // Pings are answered by the WebSocket layer; text is not part of the
                    // protocol.
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Text(_)))
                    | Some(Ok(Message::Frame(_))) => {}
                    Some(Ok(Message::Close(_))) | None => {
                        self.retry_later(false);
                        return LinkEvent::Lost(None);
                    }
                    Some(Err(e)) => {
                        self.retry_later(false);
                        return LinkEvent::Lost(Some(e.to_string()));
                    }
                },
            }
        }
    }

    /// Sends one frame if the connection is open. A frame made for a connection that is gone
    /// is dropped, never sent on the next one: the toy only asks for a send on an open
    /// connection, keeps its acknowledgements for the next `Auth` itself, and signs its
    /// handshake frames over the nonce of the connection they were made for.
    pub(crate) async fn send(&mut self, frame: Vec<u8>) -> bool {
        let State::Up(ws) = &mut self.state else {
            return false;
        };
        let failure = match timeout(SEND_TIMEOUT, ws.send(Message::Binary(frame.into()))).await {
            Ok(Ok(())) => return true,
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("sending took longer than {SEND_TIMEOUT:?}"),
        };
        self.retry_later(false);
        self.lost = Some(failure);
        false
    }

    /// Why the connection was lost while sending, once.
    pub(crate) fn take_lost(&mut self) -> Option<String> {
        self.lost.take()
    }

    /// The wait the last failure started, once, for the owner to say why it waits.
    pub(crate) fn take_wait(&mut self) -> Option<Wait> {
        self.waiting.take()
    }

    /// The server accepted the toy: the next failure waits the shortest time again.
    pub(crate) fn accepted(&mut self) {
        self.failures = 0;
    }

    /// The server refused the toy's keys: closes the connection and counts a failure, so
    /// that the next attempt comes only after the wait.
    pub(crate) async fn refused(&mut self) {
        self.close_and_retry_at(Instant::now()).await;
        self.retry_later(true);
    }

    /// Closes the connection politely, for a toy being switched off.
    pub(crate) async fn close(&mut self) {
        self.close_and_retry_at(Instant::now() + MAX_BACKOFF).await;
    }

    /// Closes the connection and opens a new one at once.
    pub(crate) async fn reconnect(&mut self) {
        self.close_and_retry_at(Instant::now()).await;
    }

    async fn close_and_retry_at(&mut self, at: Instant) {
        if let State::Up(ws) = &mut self.state {
            // Named in full: where another crate turns on futures' `alloc`, `Box<Ws>` is a
            // `Sink` too and `ws.close(..)` would resolve to the sink's close instead.
            let _ = timeout(CLOSE_TIMEOUT, WebSocketStream::close(&mut **ws, None)).await;
        }
        self.state = State::Waiting(at);
    }

    fn retry_later(&mut self, refused: bool) {
        self.failures = self.failures.saturating_add(1);
        let wait = Duration::from_millis(reconnect_wait_ms(self.failures, os_rng().next_u64()));
        self.state = State::Waiting(Instant::now() + wait / self.time_scale);
        self.waiting = Some(Wait {
            attempt: self.failures,
            wait,
            refused,
        });
    }
}

/// TLS for `wss://`: the public certificate authorities, and the certificates in
/// `trust_cert` too.
pub fn tls_config(trust_cert: Option<&Path>) -> eyre::Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = trust_cert {
        let unreadable = |e: &dyn std::fmt::Display| {
            eyre::eyre!(
                "cannot read the certificate to trust {}: {e} (give a PEM file, -----BEGIN CERTIFICATE-----)",
                path.display()
            )
        };
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| unreadable(&e))?;
        if certs.is_empty() {
            return Err(unreadable(&"it holds no certificate"));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| unreadable(&e))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

async fn connect(url: String, tls: Option<Arc<rustls::ClientConfig>>) -> Result<Ws, String> {
    // Nothing larger than a frame is ever valid, so a larger message is refused before it is
    // buffered.
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME_LEN))
        .max_frame_size(Some(MAX_FRAME_LEN));
    match timeout(
        CONNECT_TIMEOUT,
        tokio_tungstenite::connect_async_tls_with_config(
            url.as_str(),
            Some(config),
            true,
            tls.map(Connector::Rustls),
        ),
    )
    .await
    {
        Ok(Ok((ws, _response))) => Ok(ws),
        Ok(Err(e)) => Err(format!("cannot connect to {url}: {e}")),
        Err(_) => Err(format!(
            "cannot connect to {url}: no answer within {CONNECT_TIMEOUT:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_in_a_row_waits_within_the_toys_schedule_until_accepted() {
        let mut link = Link::new("ws://127.0.0.1:9/api/v1/toy/ws".into(), None, 1);
        let mut waits = Vec::new();
        for _ in 0..12 {
            link.retry_later(true);
            waits.push(link.take_wait().unwrap());
            assert_eq!(link.take_wait(), None, "announced once");
        }
        for (n, wait) in (1u32..).zip(&waits) {
            assert_eq!(wait.attempt, n);
            assert!(wait.refused);
            let (floor, ceiling) = pawpost_toy::reconnect_wait_range_ms(n);
            let ms = u64::try_from(wait.wait.as_millis()).unwrap();
            assert!((floor..=ceiling).contains(&ms), "attempt {n}: {ms} ms");
        }
        assert!(waits[11].wait >= MAX_BACKOFF / 2 && waits[11].wait <= MAX_BACKOFF);

        link.accepted();
        link.retry_later(false);
        let wait = link.take_wait().unwrap();
        assert_eq!(wait.attempt, 1, "accepted starts the count again");
        assert!(!wait.refused);
        assert!(wait.wait <= INITIAL_BACKOFF);
    }
}
