//! A toy's WebSocket bytes as anyone on the network may send them, read by the server's
//! frame reader (`pawpost_protocol::websocket`) in pieces of the sizes the input chooses.
//! It must never panic; every message it gives is within its limit; a ping's payload is
//! a control frame's; and the bytes it holds never exceed one frame's header and payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pawpost_protocol::websocket::{FrameReader, Incoming, MAX_CONTROL_PAYLOAD};

/// The reader's limit in the run: small, so that long frames and fragments cross it.
const MAX_LEN: usize = 4096;
/// The longest header: two bytes, eight of length, four of mask.
const MAX_HEADER: usize = 14;

fuzz_target!(|data: &[u8]| {
    let Some((&pieces, bytes)) = data.split_first() else {
        return;
    };
    let piece = usize::from(pieces % 64) + 1;
    let mut reader = FrameReader::new(MAX_LEN);
    for chunk in bytes.chunks(piece) {
        reader.unread_mut().extend_from_slice(chunk);
        loop {
            match reader.next_message() {
                Ok(Some(Incoming::Binary(message))) => assert!(message.len() <= MAX_LEN),
                Ok(Some(Incoming::Ping(payload))) => {
                    assert!(payload.len() <= MAX_CONTROL_PAYLOAD)
                }
                Ok(Some(Incoming::Close(_) | Incoming::End)) => return,
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(reader.missing() >= 1);
        // What is held is one frame not yet whole (the rest of the piece may follow it,
        // at most one piece more).
        assert!(reader.unread_mut().len() <= MAX_HEADER + MAX_LEN + piece);
    }
});
