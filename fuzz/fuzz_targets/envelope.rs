//! Envelope v1 from untrusted bytes: what a server reads from an upload and a toy from a
//! `Deliver` frame. Parsing must never panic, must agree with itself (prefix, header,
//! required length), and opening with a fixed recipient key (one-shot and streaming) must
//! return an error or the payload, never panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pawpost_crypto::{
    open, DeviceKeys, Envelope, EnvelopeHeader, EnvelopePrefix, StreamOpener, HEADER_FIXED_LEN,
};
use pawpost_fuzz::{vector_device, vector_identities};

fn recipient() -> &'static DeviceKeys {
    static TOY: OnceLock<DeviceKeys> = OnceLock::new();
    TOY.get_or_init(|| vector_device("toy"))
}

fuzz_target!(|data: &[u8]| {
    let prefix = EnvelopePrefix::parse(data);
    let whole = Envelope::parse(data);
    if let Ok((prefix, rest)) = &prefix {
        // The fixed part announces the prefix length a streaming server buffers.
        assert_eq!(
            EnvelopePrefix::required_len(&data[..HEADER_FIXED_LEN]),
            Ok(prefix.encoded_len())
        );
        assert_eq!(prefix.encoded_len() + rest.len(), data.len());
        // The header has exactly one encoding.
        let header = EnvelopeHeader::parse(prefix.header_bytes()).expect("header re-parses");
        assert_eq!(&header, prefix.header());
        assert_eq!(header.encode(), prefix.header_bytes());

        // The sender as the recipient's roster would give it: a known device, else anyone.
        let identities = vector_identities();
        let sender = identities
            .iter()
            .find(|id| id.device_id == header.sender)
            .unwrap_or(&identities[2]);

        // A server's running digest check.
        let mut verifier = prefix.payload_verifier();
        let _ = verifier.update(rest).and_then(|()| verifier.finish());

        // A toy's streaming open: the prefix, then each chunk at the length it expects, then
        // whatever is left as one more chunk.
        if let Ok(mut opener) = StreamOpener::new(prefix, recipient(), sender) {
            let mut rest = rest.to_vec();
            let mut offset = 0;
            let mut failed = false;
            while let Some(len) = opener.next_chunk_len() {
                if rest.len() - offset < len {
                    break;
                }
                if opener.open_chunk(&mut rest[offset..offset + len]).is_err() {
                    failed = true;
                    break;
                }
                offset += len;
            }
            if !failed {
                if offset < rest.len() {
                    assert!(opener.open_chunk(&mut rest[offset..]).is_err());
                } else {
                    let _ = opener.finish();
                }
            }
        }
    }
    match (&prefix, &whole) {
        (Err(e), Err(w)) => assert_eq!(e, w, "a whole envelope fails where its prefix does"),
        (Err(_), Ok(_)) => panic!("a whole envelope parsed without its prefix"),
        _ => {}
    }
    if let Ok(envelope) = &whole {
        let header = envelope.header();
        let identities = vector_identities();
        let sender = identities
            .iter()
            .find(|id| id.device_id == header.sender)
            .unwrap_or(&identities[2]);
        if let Ok(opened) = open(data, recipient(), sender) {
            assert_eq!(opened.payload.len() as u64, header.payload_len);
            assert_eq!(&opened.header, header);
        }
    }
});
