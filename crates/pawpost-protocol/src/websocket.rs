//! The server's reading of a toy's WebSocket frames (RFC 6455), sans I/O: bytes go in as
//! the socket gives them ([`FrameReader::unread_mut`]), whole messages come out
//! ([`FrameReader::next_message`]). Kept here, away from the server's sockets, so that the same
//! code is fuzzed (`fuzz/fuzz_targets/toy_websocket.rs`).
//!
//! What it accepts: masked frames (a client's), binary messages of at most the reader's
//! limit (whole, or in fragments whose sum is within it), pings, pongs and closes whose
//! payload is at most 125 bytes and not fragmented. A text message ends the connection
//! (toys speak binary only); reserved bits, an unmasked frame, an unknown opcode, a frame
//! or message over the limit, and fragments out of order are refused ([`Violation`]).
//! Nothing is kept between messages: while a toy is idle the reader holds no buffer.

use alloc::vec::Vec;

/// Largest payload of a control frame (ping, pong, close), RFC 6455 section 5.5.
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A continuation frame.
pub const OP_CONTINUATION: u8 = 0x0;
/// A text frame.
pub const OP_TEXT: u8 = 0x1;
/// A binary frame.
pub const OP_BINARY: u8 = 0x2;
/// A close frame.
pub const OP_CLOSE: u8 = 0x8;
/// A ping.
pub const OP_PING: u8 = 0x9;
/// A pong.
pub const OP_PONG: u8 = 0xA;

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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    /// A reserved bit is set (no extension was agreed).
    Reserved,
    /// A client's frame without a mask.
    Unmasked,
    /// An opcode RFC 6455 does not define.
    Opcode,
    /// A control frame fragmented or longer than [`MAX_CONTROL_PAYLOAD`].
    Control,
    /// A frame or message over the reader's limit.
    TooLong,
    /// A continuation without a message begun, or a new message before the last ended.
    Fragments,
}

impl Violation {
    /// A short name for the server's log.
    pub fn code(&self) -> &'static str {
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The frame ends its message.
    pub fin: bool,
    /// The frame's opcode.
    pub opcode: u8,
    /// The client's masking key.
    pub mask: [u8; 4],
    /// Header length: the payload starts here.
    pub start: usize,
    /// Payload length.
    pub len: usize,
}

/// The header at the start of `bytes`, for frames of at most `max_len` bytes of payload;
/// `None` if it has not arrived whole.
pub fn header(bytes: &[u8], max_len: usize) -> Result<Option<Header>, Violation> {
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
            Some(b) => {
                let mut eight = [0u8; 8];
                eight.copy_from_slice(b);
                (u64::from_be_bytes(eight), 10)
            }
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
    let mut key = [0u8; 4];
    key.copy_from_slice(mask);
    Ok(Some(Header {
        fin,
        opcode,
        mask: key,
        start: at + 4,
        len,
    }))
}

/// Reads a toy's frames into messages of at most `max_len` bytes.
#[derive(Debug)]
pub struct FrameReader {
    max_len: usize,
    /// Bytes read that are not yet a whole frame; empty, without an allocation, while
    /// the toy is idle.
    unread: Vec<u8>,
    /// The fragments of a message that is not finished (toys send whole messages, so
    /// this is rare); `None` between messages.
    fragments: Option<Vec<u8>>,
}

impl FrameReader {
    /// A reader of frames and messages of at most `max_len` bytes.
    pub fn new(max_len: usize) -> Self {
        Self {
            max_len,
            unread: Vec::new(),
            fragments: None,
        }
    }

    /// The bytes read that are not yet a whole frame: the socket's bytes are appended
    /// here (and nothing else is done to them).
    pub fn unread_mut(&mut self) -> &mut Vec<u8> {
        &mut self.unread
    }

    /// Whether bytes of a frame not yet whole are held.
    pub fn is_idle(&self) -> bool {
        self.unread.is_empty()
    }

    /// Bytes still missing of the frame being read (at least one).
    pub fn missing(&self) -> usize {
        match header(&self.unread, self.max_len) {
            Ok(Some(h)) => (h.start + h.len).saturating_sub(self.unread.len()).max(1),
            _ => 1,
        }
    }

    /// The next message in the bytes read, if they hold one. After an error the
    /// connection is to be ended: the reader's state is not meant to be used again.
    pub fn next_message(&mut self) -> Result<Option<Incoming>, Violation> {
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
                // Toys speak binary only: text ends the connection.
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

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

    #[test]
    fn messages_come_whole_from_bytes_in_any_pieces_and_the_reader_then_holds_nothing() {
        let mut bytes = masked(0x02, b"hel");
        bytes.extend(masked(0x89, b"are you there"));
        bytes.extend(masked(0x80, b"lo"));
        bytes.extend(masked(0x88, &[0x03, 0xe8]));
        let want = [
            Incoming::Ping(b"are you there".to_vec()),
            Incoming::Binary(b"hello".to_vec()),
            Incoming::Close(Some([0x03, 0xe8])),
        ];
        for piece in [1, 3, 7, bytes.len()] {
            let mut reader = FrameReader::new(16);
            let mut got = Vec::new();
            for chunk in bytes.chunks(piece) {
                reader.unread_mut().extend_from_slice(chunk);
                while let Some(incoming) = reader.next_message().unwrap() {
                    got.push(incoming);
                }
            }
            assert_eq!(got, want, "in pieces of {piece}");
            assert!(reader.is_idle());
            assert_eq!(reader.unread_mut().capacity(), 0, "no buffer kept");
        }
    }

    #[test]
    fn fragments_out_of_order_or_over_the_limit_are_refused() {
        let mut reader = FrameReader::new(4);
        reader.unread_mut().extend(masked(0x80, b"x"));
        assert_eq!(reader.next_message(), Err(Violation::Fragments));

        let mut reader = FrameReader::new(4);
        reader.unread_mut().extend(masked(0x02, b"abc"));
        reader.unread_mut().extend(masked(0x82, b"d"));
        assert_eq!(reader.next_message(), Err(Violation::Fragments));

        let mut reader = FrameReader::new(4);
        reader.unread_mut().extend(masked(0x02, b"abc"));
        reader.unread_mut().extend(masked(0x80, b"de"));
        assert_eq!(reader.next_message(), Err(Violation::TooLong));

        let mut reader = FrameReader::new(4);
        reader.unread_mut().extend(masked(0x81, b"hi"));
        assert_eq!(
            reader.next_message(),
            Ok(Some(Incoming::End)),
            "text ends it"
        );
    }
}
