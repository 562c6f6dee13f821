//! The toy's connection: one WebSocket at a time, reopened with a bounded backoff.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use pawpost_toy::MAX_FRAME_LEN;
use tokio::net::TcpStream;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

/// Wait before the first retry; doubled after each failure up to [`MAX_BACKOFF`].
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// Longest wait between attempts: a toy should be back soon after its server is.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

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
    backoff: Duration,
    /// Set when sending failed, so that the owner learns of it after the current batch.
    lost: Option<String>,
}

impl Link {
    /// Starts down, with the first attempt due at once.
    pub(crate) fn new(url: String, tls: Option<Arc<rustls::ClientConfig>>) -> Self {
        Self {
            url,
            tls,
            state: State::Waiting(Instant::now()),
            backoff: INITIAL_BACKOFF,
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
                        self.retry_later();
                        return LinkEvent::ConnectFailed(reason);
                    }
                },
                State::Up(ws) => match ws.next().await {
                    Some(Ok(Message::Binary(bytes))) => {
                        // The server spoke the protocol: this connection is a real one, so a
                        // later drop starts again from the shortest wait.
                        self.backoff = INITIAL_BACKOFF;
                        return LinkEvent::Frame(bytes.to_vec());
                    }
                    // Pings are answered by the WebSocket layer; text is not part of the
                    // protocol.
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Text(_)))
                    | Some(Ok(Message::Frame(_))) => {}
                    Some(Ok(Message::Close(_))) | None => {
                        self.retry_later();
                        return LinkEvent::Lost(None);
                    }
                    Some(Err(e)) => {
                        self.retry_later();
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
        self.retry_later();
        self.lost = Some(failure);
        false
    }

    /// Why the connection was lost while sending, once.
    pub(crate) fn take_lost(&mut self) -> Option<String> {
        self.lost.take()
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

    fn retry_later(&mut self) {
        self.state = State::Waiting(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }
}

/// TLS for `wss://`: the public certificate authorities, and the certificates in
/// `trust_cert` too.
pub(crate) fn tls_config(trust_cert: Option<&Path>) -> eyre::Result<Arc<rustls::ClientConfig>> {
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
    fn the_backoff_doubles_up_to_its_bound() {
        let mut link = Link::new("ws://127.0.0.1:9/api/v1/toy/ws".into(), None);
        let mut waits = Vec::new();
        for _ in 0..8 {
            waits.push(link.backoff);
            link.retry_later();
        }
        let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, vec![200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
    }
}
