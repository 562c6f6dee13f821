//! The toy's WebSocket (RFC 6455), kept to what an idle toy needs: nothing. The upgrade
//! is answered here and the connection taken from hyper; frames are read when the socket
//! has bytes, first into a buffer on the stack, and only a frame that arrives in pieces
//! is kept on the heap until it is whole. Frames are written as they come. There is no
//! read buffer, write buffer, split lock or writer task per connection.
//!
//! The socket is taken back from hyper's upgraded stream when it is the server's own
//! TCP socket, and over TLS 1.3 the records are read and written here
//! (`pawpost_tls_records`) with the keys taken out of rustls, so that an idle wss toy
//! keeps no TLS buffer either. Anything else (TLS 1.2) stays behind hyper's stream.
//!
//! What the toys' WebSocket library did before stays: one binary message per frame of
//! docs/TOY-PROTOCOL.md, messages and frames at most the route's limit, a ping answered
//! with a pong, a close answered with a close, and anything else (text, an unmasked
//! frame, reserved bits or opcodes) ends the connection.
use crate::config::{TOY_WS_CLOSE_WAIT, TOY_WS_READ_BUFFER_BYTES};
use crate::serve::ClientSocket;
use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
pub use pawpost_protocol::websocket::Incoming;
use pawpost_protocol::websocket::{FrameReader, MAX_CONTROL_PAYLOAD, OP_BINARY, OP_CLOSE, OP_PONG};
use pawpost_tls_records::{Opened, Records, Suite, TrafficKeys};
use sha1::{Digest, Sha1};
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::task::{ready, Poll};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_rustls::rustls::{ConnectionTrafficSecrets, ExtractedSecrets, ProtocolVersion};
use tokio_rustls::server::TlsStream;

/// The most bytes read at once into a frame that arrives in pieces (a large `Upload`
/// grows its buffer by at most this much per read).
const MAX_READ_CHUNK_BYTES: usize = 64 * 1024;
/// The GUID of RFC 6455 that the accept key is derived with.
const WEBSOCKET_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// A WebSocket upgrade request, checked: answer it with [`ToyUpgrade::on_upgrade`].
pub struct ToyUpgrade {
    accept: HeaderValue,
    on_upgrade: OnUpgrade,
}

fn refused(status: StatusCode, why: &'static str) -> Response {
    (status, why).into_response()
}

fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(token))
        })
    })
}

/// `Sec-WebSocket-Accept` for the client's `Sec-WebSocket-Key`.
pub fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(WEBSOCKET_GUID);
    base64::engine::general_purpose::STANDARD.encode(sha1.finalize())
}

impl<S: Send + Sync> FromRequestParts<S> for ToyUpgrade {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        if parts.method != Method::GET {
            return Err(refused(
                StatusCode::METHOD_NOT_ALLOWED,
                "a toy's WebSocket is opened with GET",
            ));
        }
        if !header_has_token(&parts.headers, header::CONNECTION, "upgrade")
            || !header_has_token(&parts.headers, header::UPGRADE, "websocket")
        {
            return Err(refused(
                StatusCode::BAD_REQUEST,
                "this path speaks WebSocket only: send Connection: upgrade and Upgrade: websocket",
            ));
        }
        if parts
            .headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_none_or(|v| v.as_bytes() != b"13")
        {
            return Err(refused(
                StatusCode::BAD_REQUEST,
                "send Sec-WebSocket-Version: 13 (the only WebSocket version spoken)",
            ));
        }
        let Some(key) = parts.headers.get(header::SEC_WEBSOCKET_KEY) else {
            return Err(refused(
                StatusCode::BAD_REQUEST,
                "send a Sec-WebSocket-Key header to open a WebSocket",
            ));
        };
        let accept = HeaderValue::from_str(&accept_key(key.as_bytes()))
            .expect("base64 is a valid header value");
        let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
            return Err(refused(
                StatusCode::UPGRADE_REQUIRED,
                "this connection cannot be upgraded to a WebSocket (HTTP/1.1 is needed)",
            ));
        };
        Ok(Self { accept, on_upgrade })
    }
}

impl ToyUpgrade {
    /// Answers 101 and, once hyper hands the connection over, runs `run` on it with frames
    /// and messages of at most `max_len` bytes.
    pub fn on_upgrade<F, Fut>(self, max_len: usize, run: F) -> Response
    where
        F: FnOnce(ToySocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        // Boxed until the upgrade is done: a future keeps room for what it was started
        // with all its life, and the connection's task should hold little more than
        // `run`'s future.
        let start = Box::new((self.on_upgrade, run));
        tokio::spawn(async move {
            let (on_upgrade, run) = *start;
            let socket = match on_upgrade.await {
                Ok(upgraded) => ToySocket::new(upgraded, max_len),
                Err(e) => {
                    tracing::debug!(error = %e, "a toy's WebSocket upgrade failed");
                    return;
                }
            };
            run(socket).await
        });
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, self.accept);
        response
    }
}

/// A toy's upgraded connection.
pub struct ToySocket {
    io: Io,
    /// The frames read (`pawpost_protocol::websocket`, fuzzed there).
    reader: FrameReader,
}

/// Where a toy's bytes go.
enum Io {
    /// The server's own TCP socket, taken back from hyper.
    Plain(ClientSocket),
    /// TLS 1.3, its records read and written here. (Each variant but `Plain` is boxed,
    /// so that a plain toy's socket is no larger than its TCP socket.)
    Tls(Box<Tls>),
    /// TLS 1.2, whose records stay with rustls.
    Rustls(Box<TlsStream<ClientSocket>>),
    /// Anything else hyper upgraded.
    Upgraded(Box<TokioIo<Upgraded>>),
    /// The keys could not be taken out of rustls: the connection ends at once.
    Lost,
}

/// A TLS 1.3 connection after its handshake: the socket, the traffic keys, and the
/// bytes of a record that arrived in pieces (nothing while the toy is idle).
struct Tls {
    io: ClientSocket,
    records: Records,
    raw: Vec<u8>,
}

/// Reads what `io` has into `reader`: onto the stack when nothing is pending (the idle
/// case, so that waiting holds no buffer), else straight onto the end of the pending
/// frame.
fn poll_read_frames<R: AsyncRead + Unpin>(
    io: &mut R,
    reader: &mut FrameReader,
    cx: &mut std::task::Context<'_>,
) -> Poll<io::Result<usize>> {
    if reader.is_idle() {
        let mut stack = [0u8; TOY_WS_READ_BUFFER_BYTES];
        let mut buf = ReadBuf::new(&mut stack);
        ready!(Pin::new(io).poll_read(cx, &mut buf))?;
        let got = buf.filled();
        reader.unread_mut().extend_from_slice(got);
        Poll::Ready(Ok(got.len()))
    } else {
        let missing = reader.missing();
        read_onto(io, reader.unread_mut(), missing, cx)
    }
}

/// Reads at most `wanted` (bounded by [`MAX_READ_CHUNK_BYTES`]) onto the end of `buf`.
fn read_onto<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut Vec<u8>,
    wanted: usize,
    cx: &mut std::task::Context<'_>,
) -> Poll<io::Result<usize>> {
    let at = buf.len();
    buf.resize(at + wanted.clamp(1, MAX_READ_CHUNK_BYTES), 0);
    let mut read_buf = ReadBuf::new(&mut buf[at..]);
    let read = Pin::new(io).poll_read(cx, &mut read_buf);
    let got = read_buf.filled().len();
    buf.truncate(at + got);
    ready!(read)?;
    Poll::Ready(Ok(got))
}

impl Tls {
    /// Reads what the socket has and opens every whole record into `reader`; 0 at the
    /// end of the connection (or its `close_notify`).
    fn poll_read_frames(
        &mut self,
        reader: &mut FrameReader,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<io::Result<usize>> {
        let got = if self.raw.is_empty() {
            let mut stack = [0u8; TOY_WS_READ_BUFFER_BYTES];
            let mut buf = ReadBuf::new(&mut stack);
            ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf))?;
            self.raw.extend_from_slice(buf.filled());
            buf.filled().len()
        } else {
            let wanted = Records::wanted(&self.raw);
            ready!(read_onto(&mut self.io, &mut self.raw, wanted, cx))?
        };
        if got == 0 {
            return Poll::Ready(Ok(0));
        }
        loop {
            match self.records.open(&mut self.raw, reader.unread_mut()) {
                Ok(Opened::Data(used)) => {
                    self.raw.drain(..used);
                }
                Ok(Opened::Missing(_)) => break,
                Ok(Opened::Closed) => return Poll::Ready(Ok(0)),
                Err(e) => {
                    tracing::info!(error = e.code(), "toy's TLS record refused; closing");
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e.code())));
                }
            }
        }
        if self.raw.is_empty() {
            // Give the buffer back: an idle toy keeps none.
            self.raw = Vec::new();
        }
        Poll::Ready(Ok(got))
    }
}

/// Takes a TLS 1.3 connection's keys out of rustls, with the plaintext it already
/// decrypted (`reader`); `Err` with the stream untouched when it is not TLS 1.3 or
/// rustls still has records to send.
fn take_tls(
    stream: Box<TlsStream<ClientSocket>>,
    reader: &mut FrameReader,
) -> Result<Option<Tls>, Box<TlsStream<ClientSocket>>> {
    let (_, conn) = stream.get_ref();
    if conn.protocol_version() != Some(ProtocolVersion::TLSv1_3) || conn.wants_write() {
        return Err(stream);
    }
    let (io, mut conn) = (*stream).into_inner();
    let mut plain = [0u8; TOY_WS_READ_BUFFER_BYTES];
    loop {
        match io::Read::read(&mut conn.reader(), &mut plain) {
            Ok(0) | Err(_) => break,
            Ok(n) => reader.unread_mut().extend_from_slice(&plain[..n]),
        }
    }
    match conn.dangerous_extract_secrets() {
        Ok(secrets) => Ok(records(&secrets).map(|records| Tls {
            io,
            records,
            raw: Vec::new(),
        })),
        Err(e) => {
            tracing::warn!(error = %e, "could not take a toy's TLS keys; closing its connection");
            Ok(None)
        }
    }
}

/// The record layer for the keys rustls handed over; `None` for a suite not spoken here.
fn records(secrets: &ExtractedSecrets) -> Option<Records> {
    fn keys(seq: u64, secrets: &ConnectionTrafficSecrets) -> Option<TrafficKeys<'_>> {
        let (suite, key, iv) = match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (Suite::Aes128Gcm, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (Suite::Aes256Gcm, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (Suite::Chacha20Poly1305, key, iv)
            }
            _ => return None,
        };
        Some(TrafficKeys {
            suite,
            key: key.as_ref(),
            iv: iv.as_ref(),
            seq,
        })
    }
    Records::new(
        keys(secrets.rx.0, &secrets.rx.1)?,
        keys(secrets.tx.0, &secrets.tx.1)?,
    )
}

impl ToySocket {
    fn new(upgraded: Upgraded, max_len: usize) -> Self {
        let mut reader = FrameReader::new(max_len);
        let io = match upgraded.downcast::<TokioIo<ClientSocket>>() {
            Ok(parts) => {
                reader.unread_mut().extend_from_slice(&parts.read_buf);
                Io::Plain(parts.io.into_inner())
            }
            Err(upgraded) => match upgraded.downcast::<TokioIo<TlsStream<ClientSocket>>>() {
                Ok(parts) => {
                    reader.unread_mut().extend_from_slice(&parts.read_buf);
                    match take_tls(Box::new(parts.io.into_inner()), &mut reader) {
                        Ok(Some(tls)) => Io::Tls(Box::new(tls)),
                        Ok(None) => Io::Lost,
                        Err(stream) => Io::Rustls(stream),
                    }
                }
                Err(upgraded) => Io::Upgraded(Box::new(TokioIo::new(upgraded))),
            },
        };
        Self { io, reader }
    }

    /// The next message. Cancel-safe: bytes read are kept until a call returns them.
    pub async fn recv(&mut self) -> Incoming {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// [`ToySocket::recv`] as a poll: a connection waiting on its socket and its outbox
    /// needs no future for either.
    pub fn poll_recv(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Incoming> {
        loop {
            match self.reader.next_message() {
                Ok(Some(incoming)) => return Poll::Ready(incoming),
                Ok(None) => {}
                Err(violation) => {
                    tracing::info!(
                        error = violation.code(),
                        "toy broke the WebSocket protocol; closing"
                    );
                    return Poll::Ready(Incoming::End);
                }
            }
            match ready!(self.poll_read_more(cx)) {
                Ok(0) | Err(_) => return Poll::Ready(Incoming::End),
                Ok(_) => {}
            }
        }
    }

    /// Reads what the socket has. Everything happens inside one poll, so dropping the
    /// future loses nothing.
    fn poll_read_more(&mut self, cx: &mut std::task::Context<'_>) -> Poll<io::Result<usize>> {
        match &mut self.io {
            Io::Plain(io) => poll_read_frames(io, &mut self.reader, cx),
            Io::Upgraded(io) => poll_read_frames(&mut **io, &mut self.reader, cx),
            Io::Rustls(io) => poll_read_frames(&mut **io, &mut self.reader, cx),
            Io::Tls(tls) => tls.poll_read_frames(&mut self.reader, cx),
            Io::Lost => Poll::Ready(Ok(0)),
        }
    }

    /// Writes `bytes` (whole WebSocket frames) to the toy.
    async fn write_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.io {
            Io::Plain(io) => write_all(io, bytes).await,
            Io::Upgraded(io) => write_all(&mut **io, bytes).await,
            Io::Rustls(io) => write_all(&mut **io, bytes).await,
            Io::Tls(tls) => {
                let mut records =
                    Vec::with_capacity(bytes.len() + pawpost_tls_records::HEADER_LEN + 32);
                tls.records
                    .seal(bytes, &mut records)
                    .map_err(|e| io::Error::other(e.code()))?;
                write_all(&mut tls.io, &records).await
            }
            Io::Lost => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    async fn write_frame(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        let mut frame = Vec::with_capacity(payload.len() + 10);
        frame.push(0x80 | opcode);
        match payload.len() {
            len if len <= MAX_CONTROL_PAYLOAD => {
                frame.push(u8::try_from(len).expect("at most 125"))
            }
            len => match u16::try_from(len) {
                Ok(short) => {
                    frame.push(126);
                    frame.extend_from_slice(&short.to_be_bytes());
                }
                Err(_) => {
                    frame.push(127);
                    frame.extend_from_slice(&(len as u64).to_be_bytes());
                }
            },
        }
        frame.extend_from_slice(payload);
        self.write_bytes(&frame).await
    }

    /// Sends one binary message.
    pub async fn send(&mut self, message: &[u8]) -> io::Result<()> {
        self.write_frame(OP_BINARY, message).await
    }

    /// Answers a ping.
    pub async fn pong(&mut self, payload: &[u8]) -> io::Result<()> {
        self.write_frame(OP_PONG, payload).await
    }

    /// Sends a close frame (with `code`, answering the toy's) and shuts the connection,
    /// waiting at most [`TOY_WS_CLOSE_WAIT`] for a toy that does not read.
    pub async fn close(&mut self, code: Option<[u8; 2]>) {
        let closing = async {
            self.write_frame(OP_CLOSE, code.as_ref().map_or(&[][..], |c| &c[..]))
                .await?;
            match &mut self.io {
                Io::Plain(io) => io.shutdown().await,
                Io::Upgraded(io) => io.shutdown().await,
                Io::Rustls(io) => io.shutdown().await,
                Io::Tls(tls) => {
                    let mut alert = Vec::new();
                    if tls.records.seal_close_notify(&mut alert).is_ok() {
                        tls.io.write_all(&alert).await?;
                    }
                    tls.io.shutdown().await
                }
                Io::Lost => Ok(()),
            }
        };
        let _ = tokio::time::timeout(TOY_WS_CLOSE_WAIT, closing).await;
    }
}

async fn write_all<W: AsyncWrite + Unpin>(io: &mut W, bytes: &[u8]) -> io::Result<()> {
    io.write_all(bytes).await?;
    io.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_key_is_rfc_6455s() {
        // The example of RFC 6455, section 1.3.
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
