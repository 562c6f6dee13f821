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
/// Largest payload of a control frame (ping, pong, close), RFC 6455 section 5.5.
const MAX_CONTROL_PAYLOAD: usize = 125;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

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

/// What arrived on a toy's WebSocket.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A whole binary message.
    Binary(Vec<u8>),
    /// A ping, to be answered with a pong carrying its payload.
    Ping(Vec<u8>),
    /// The toy closed the connection, with this status code if it gave one.
    Close(Option<[u8; 2]>),
    /// The connection ended: the socket closed or failed, or the toy broke the protocol.
    End,
}

/// Why a frame ends the connection.
#[derive(Debug, PartialEq, Eq)]
enum Violation {
    Reserved,
    Unmasked,
    Opcode,
    Control,
    TooLong,
    Fragments,
}

impl Violation {
    fn code(&self) -> &'static str {
        match self {
            Self::Reserved => "reserved_bits",
            Self::Unmasked => "unmasked_frame",
            Self::Opcode => "unknown_opcode",
            Self::Control => "bad_control_frame",
            Self::TooLong => "too_long",
            Self::Fragments => "bad_fragments",
        }
    }
}

/// A frame's header: what it is, and where its payload lies in the bytes read.
struct Header {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    /// Header length: the payload starts here.
    start: usize,
    len: usize,
}

/// The header at the start of `bytes`; `None` if it has not arrived whole.
fn header(bytes: &[u8], max_len: usize) -> Result<Option<Header>, Violation> {
    let [first, second, ..] = *bytes else {
        return Ok(None);
    };
    if first & 0x70 != 0 {
        return Err(Violation::Reserved);
    }
    if second & 0x80 == 0 {
        return Err(Violation::Unmasked);
    }
    let fin = first & 0x80 != 0;
    let opcode = first & 0x0F;
    let (len, at) = match second & 0x7F {
        126 => match bytes.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match bytes.get(2..10) {
            Some(b) => (u64::from_be_bytes(b.try_into().expect("eight bytes")), 10),
            None => return Ok(None),
        },
        short => (u64::from(short), 2),
    };
    match opcode {
        OP_CLOSE | OP_PING | OP_PONG => {
            if !fin || len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(Violation::Control);
            }
        }
        OP_CONTINUATION | OP_TEXT | OP_BINARY => {}
        _ => return Err(Violation::Opcode),
    }
    let len = usize::try_from(len).map_err(|_| Violation::TooLong)?;
    if len > max_len {
        return Err(Violation::TooLong);
    }
    let Some(mask) = bytes.get(at..at + 4) else {
        return Ok(None);
    };
    Ok(Some(Header {
        fin,
        opcode,
        mask: mask.try_into().expect("four bytes"),
        start: at + 4,
        len,
    }))
}

/// A toy's upgraded connection.
pub struct ToySocket {
    io: TokioIo<Upgraded>,
    max_len: usize,
    /// Bytes read that are not yet a whole frame; empty, without an allocation, while
    /// the toy is idle.
    unread: Vec<u8>,
    /// The fragments of a message that is not finished (toys send whole messages, so
    /// this is rare); `None` between messages.
    fragments: Option<Vec<u8>>,
}

impl ToySocket {
    fn new(upgraded: Upgraded, max_len: usize) -> Self {
        Self {
            io: TokioIo::new(upgraded),
            max_len,
            unread: Vec::new(),
            fragments: None,
        }
    }

    /// The next message. Cancel-safe: bytes read are kept until a call returns them.
    pub async fn recv(&mut self) -> Incoming {
        loop {
            match self.next_buffered() {
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

    /// A message from the bytes read, if they hold one.
    fn next_buffered(&mut self) -> Result<Option<Incoming>, Violation> {
        loop {
            let Some(h) = header(&self.unread, self.max_len)? else {
                return Ok(None);
            };
            let end = h.start + h.len;
            if self.unread.len() < end {
                return Ok(None);
            }
            let mut payload = self.unread[h.start..end].to_vec();
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= h.mask[i % 4];
            }
            if end == self.unread.len() {
                // Nothing left over: give the buffer back.
                self.unread = Vec::new();
            } else {
                self.unread.drain(..end);
            }
            match h.opcode {
                OP_BINARY if self.fragments.is_some() => return Err(Violation::Fragments),
                OP_BINARY if h.fin => return Ok(Some(Incoming::Binary(payload))),
                OP_BINARY => self.fragments = Some(payload),
                OP_CONTINUATION => {
                    let Some(message) = self.fragments.as_mut() else {
                        return Err(Violation::Fragments);
                    };
                    if message.len() + payload.len() > self.max_len {
                        return Err(Violation::TooLong);
                    }
                    message.extend_from_slice(&payload);
                    if h.fin {
                        let whole = self.fragments.take().unwrap_or_default();
                        return Ok(Some(Incoming::Binary(whole)));
                    }
                }
                // Toys speak binary only; as before, text ends the connection.
                OP_TEXT => return Ok(Some(Incoming::End)),
                OP_PING => return Ok(Some(Incoming::Ping(payload))),
                OP_CLOSE => {
                    let code = payload.get(..2).map(|c| [c[0], c[1]]);
                    return Ok(Some(Incoming::Close(code)));
                }
                // A pong answers nothing here.
                _ => {}
            }
        }
    }

    /// Bytes still missing of the frame being read (at least one).
    fn missing(&self) -> usize {
        match header(&self.unread, self.max_len) {
            Ok(Some(h)) => (h.start + h.len).saturating_sub(self.unread.len()).max(1),
            _ => 1,
        }
    }

    /// Reads what the socket has: onto the stack when nothing is pending (the idle case,
    /// so that waiting holds no buffer), else straight onto the end of the pending frame.
    /// Everything happens inside one poll, so dropping the future loses nothing.
    async fn read_more(&mut self) -> io::Result<usize> {
        let missing = self.missing();
        poll_fn(|cx| {
            if self.unread.is_empty() {
                let mut stack = [0u8; TOY_WS_READ_BUFFER_BYTES];
                let mut buf = ReadBuf::new(&mut stack);
                ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf))?;
                let got = buf.filled();
                self.unread.extend_from_slice(got);
                Poll::Ready(Ok(got.len()))
            } else {
                let at = self.unread.len();
                let chunk = missing.min(MAX_READ_CHUNK_BYTES);
                self.unread.resize(at + chunk, 0);
                let mut buf = ReadBuf::new(&mut self.unread[at..]);
                let read = Pin::new(&mut self.io).poll_read(cx, &mut buf);
                let got = buf.filled().len();
                self.unread.truncate(at + got);
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

    fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1, 2, 3, 4];
        let mut frame = vec![first];
        match payload.len() {
            len @ 0..=125 => frame.push(0x80 | u8::try_from(len).unwrap()),
            len => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        frame
    }

    #[test]
    fn headers_are_read_only_when_whole_and_within_the_limits() {
        let frame = masked(0x82, &[7; 300]);
        for cut in 0..8 {
            assert!(header(&frame[..cut], 1000).unwrap().is_none(), "{cut}");
        }
        let h = header(&frame, 1000).unwrap().unwrap();
        assert_eq!((h.fin, h.opcode, h.start, h.len), (true, OP_BINARY, 8, 300));
        assert_eq!(header(&frame, 299).err(), Some(Violation::TooLong));
        let mut unmasked = frame.clone();
        unmasked[1] &= 0x7F;
        assert_eq!(header(&unmasked, 1000).err(), Some(Violation::Unmasked));
        assert_eq!(
            header(&masked(0xC2, b"x"), 1000).err(),
            Some(Violation::Reserved)
        );
        assert_eq!(
            header(&masked(0x83, b"x"), 1000).err(),
            Some(Violation::Opcode)
        );
        assert_eq!(
            header(&masked(0x09, b"x"), 1000).err(),
            Some(Violation::Control),
            "a fragmented ping"
        );
        assert_eq!(
            header(&masked(0x89, &[0; 126]), 1000).err(),
            Some(Violation::Control),
            "a ping too long"
        );
    }
}
