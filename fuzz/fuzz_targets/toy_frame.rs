//! Toy protocol frames from untrusted bytes (WebSocket messages, reassembled BLE frames).
//! Decoding must never panic, and a decoded frame must encode back to exactly its bytes
//! and decode to the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pawpost_toy::{frame_len, Frame};

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = Frame::decode(data) else {
        return;
    };
    assert_eq!(frame_len(data), Ok(data.len()));
    let encoded = frame.encode().expect("a decoded frame encodes");
    assert_eq!(encoded, data, "a frame has one encoding");
    assert_eq!(Frame::decode(&encoded), Ok(frame));
});
