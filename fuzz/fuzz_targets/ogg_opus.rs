//! The Ogg Opus validator on untrusted bytes, with the default voice-message limits: the toy
//! runs it on every decrypted message and the server on every upload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pawpost_media::{validate_ogg_opus, Limits, DURATION_SLACK_MS};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(info) = validate_ogg_opus(data, &limits) {
        assert!(info.channels == 1 || info.channels == 2);
        assert!(info.packet_count <= limits.max_packets);
        assert!(info.duration_ms <= limits.max_duration_ms + DURATION_SLACK_MS);
        assert!(data.len() <= limits.max_bytes);
    }
});
