//! A toy's TLS 1.3 records as anyone on the network may send them, opened by the server's
//! record layer (`pawpost_tls_records`) in pieces of the sizes the input chooses. It must
//! never panic; what it opens is never more than the records carried; the bytes held for
//! a record never exceed one record and a piece. And the input's own bytes, sealed by the
//! client's side, open to the same bytes on the server's side.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pawpost_fuzz::{tls_records_pair, TLS_SUITES};
use pawpost_tls_records::{Opened, HEADER_LEN, MAX_CIPHERTEXT_LEN, MAX_PLAINTEXT_LEN};

fuzz_target!(|data: &[u8]| {
    let Some((&choice, bytes)) = data.split_first() else {
        return;
    };
    let suite = TLS_SUITES[usize::from(choice % 3)];
    let piece = usize::from(choice / 3) % 64 + 1;

    // The bytes as records from the network.
    let (_, mut server) = tls_records_pair(suite);
    let mut raw = Vec::new();
    let mut plain = Vec::new();
    let mut records = 0usize;
    'read: for chunk in bytes.chunks(piece) {
        raw.extend_from_slice(chunk);
        loop {
            let before = plain.len();
            match server.open(&mut raw, &mut plain) {
                Ok(Opened::Data(used)) => {
                    assert!((HEADER_LEN..=raw.len()).contains(&used));
                    assert!(plain.len() - before <= MAX_PLAINTEXT_LEN + 256);
                    raw.drain(..used);
                    records += 1;
                }
                Ok(Opened::Missing(n)) => {
                    assert!(n >= 1);
                    break;
                }
                Ok(Opened::Closed) | Err(_) => break 'read,
            }
        }
        assert!(raw.len() <= HEADER_LEN + MAX_CIPHERTEXT_LEN + piece);
    }
    assert!(plain.len() <= records * (MAX_PLAINTEXT_LEN + 256));

    // The same bytes sealed by the client's side open whole on the server's.
    let (mut client, mut server) = tls_records_pair(suite);
    let mut wire = Vec::new();
    client
        .seal(bytes, &mut wire)
        .expect("a fresh connection seals");
    let mut opened = Vec::new();
    while !wire.is_empty() {
        match server.open(&mut wire, &mut opened) {
            Ok(Opened::Data(used)) => {
                wire.drain(..used);
            }
            other => panic!("a sealed record did not open: {other:?}"),
        }
    }
    assert_eq!(opened, bytes);
});
