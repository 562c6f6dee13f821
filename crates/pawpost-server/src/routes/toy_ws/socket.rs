//! The toy's WebSocket (RFC 6455), kept to what an idle toy needs: nothing. The upgrade
//! is answered here and the connection taken from hyper; frames are read when the socket
//! has bytes, first into a buffer on the stack, and only a frame that arrives in pieces
//! is kept on the heap until it is whole. Frames are written as they come. There is no
//! read buffer, write buffer, split lock or writer task per connection.
//!
//! What the toys' WebSocket library did before stays: one binary message per frame of
//! docs/TOY-PROTOCOL.md, messages and frames at most the route's limit, a ping answered
//! with a pong, a close answered with a close, and anything else (text, an unmasked
//! frame, reserved bits or opcodes) ends the connection.
use crate::config::{TOY_WS_CLOSE_WAIT, TOY_WS_READ_BUFFER_BYTES};
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
use sha1::{Digest, Sha1};
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::task::{ready, Poll};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};

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
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => run(ToySocket::new(upgraded, max_len)).await,
                Err(e) => tracing::debug!(error = %e, "a toy's WebSocket upgrade failed"),
            }
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
    io: TokioIo<Upgraded>,
    /// The frames read (`pawpost_protocol::websocket`, fuzzed there).
    reader: FrameReader,
}

impl ToySocket {
    fn new(upgraded: Upgraded, max_len: usize) -> Self {
        Self {
            io: TokioIo::new(upgraded),
            reader: FrameReader::new(max_len),
        }
    }

    /// The next message. Cancel-safe: bytes read are kept until a call returns them.
    pub async fn recv(&mut self) -> Incoming {
        loop {
            match self.reader.next_message() {
                Ok(Some(incoming)) => return incoming,
                Ok(None) => {}
                Err(violation) => {
                    tracing::info!(
                        error = violation.code(),
                        "toy broke the WebSocket protocol; closing"
                    );
                    return Incoming::End;
                }
            }
            match self.read_more().await {
                Ok(0) | Err(_) => return Incoming::End,
                Ok(_) => {}
            }
        }
    }

    /// Reads what the socket has: onto the stack when nothing is pending (the idle case,
    /// so that waiting holds no buffer), else straight onto the end of the pending frame.
    /// Everything happens inside one poll, so dropping the future loses nothing.
    async fn read_more(&mut self) -> io::Result<usize> {
        let missing = self.reader.missing();
        poll_fn(|cx| {
            if self.reader.is_idle() {
                let mut stack = [0u8; TOY_WS_READ_BUFFER_BYTES];
                let mut buf = ReadBuf::new(&mut stack);
                ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf))?;
                let got = buf.filled();
                self.reader.unread_mut().extend_from_slice(got);
                Poll::Ready(Ok(got.len()))
            } else {
                let unread = self.reader.unread_mut();
                let at = unread.len();
                let chunk = missing.min(MAX_READ_CHUNK_BYTES);
                unread.resize(at + chunk, 0);
                let mut buf = ReadBuf::new(&mut unread[at..]);
                let read = Pin::new(&mut self.io).poll_read(cx, &mut buf);
                let got = buf.filled().len();
                unread.truncate(at + got);
                ready!(read)?;
                Poll::Ready(Ok(got))
            }
        })
        .await
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
        self.io.write_all(&frame).await?;
        self.io.flush().await
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
    pub async fn close(mut self, code: Option<[u8; 2]>) {
        let closing = async {
            self.write_frame(OP_CLOSE, code.as_ref().map_or(&[][..], |c| &c[..]))
                .await?;
            self.io.shutdown().await
        };
        let _ = tokio::time::timeout(TOY_WS_CLOSE_WAIT, closing).await;
    }
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
