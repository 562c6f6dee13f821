//! TLS 1.3 records (RFC 8446, section 5) for a toy's connection once its handshake is
//! done, so that an idle wss toy costs what an idle plain one does.
//!
//! rustls keeps, for the life of a connection, a 4 KiB buffer for the records it reads,
//! the record layer's expanded keys and the handshake's key schedule: about 7 KiB per
//! toy that waits for days. Once a toy's WebSocket is upgraded, the server takes the
//! traffic keys and sequence numbers out of rustls (`dangerous_extract_secrets`) and
//! keeps only [`Records`]: two keys, two IVs and two counters, under 100 bytes. A key is
//! expanded for each record, which costs far less than the system calls around it.
//!
//! What a toy's connection needs of TLS after the handshake is application data both
//! ways and the closing alert. Anything else the client sends (a `KeyUpdate`, any other
//! handshake message, an alert other than `close_notify`, a record that does not
//! decrypt) ends the connection; the toy connects again with a fresh handshake.
//!
//! Sans I/O: bytes in, bytes out; the server's toy socket
//! (`pawpost-server`, `routes/toy_ws/socket.rs`) reads and writes them, and hands over
//! the keys from rustls's `ExtractedSecrets`.
#![forbid(unsafe_code)]
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroizing;

pub use ring::aead::NONCE_LEN;

/// A record's header: content type, legacy version, length.
pub const HEADER_LEN: usize = 5;
/// The most plaintext in one record (RFC 8446, 5.1).
pub const MAX_PLAINTEXT_LEN: usize = 1 << 14;
/// The most ciphertext in one record (RFC 8446, 5.2): anything longer is refused.
pub const MAX_CIPHERTEXT_LEN: usize = MAX_PLAINTEXT_LEN + 256;
/// The AEAD tag after each record's ciphertext.
const TAG_LEN: usize = 16;
/// The outer content type of every protected record.
const APPLICATION_DATA: u8 = 23;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
/// The legacy version every TLS 1.3 record carries.
const LEGACY_VERSION: [u8; 2] = [0x03, 0x03];
/// The alert that ends a connection in order (level warning, `close_notify`).
const CLOSE_NOTIFY: [u8; 2] = [1, 0];

/// Why the records read cannot go on; each ends the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordError {
    /// A header that is not a TLS 1.3 protected record, or too long a record.
    Malformed,
    /// A record that does not decrypt (altered, replayed, reordered, injected).
    Decrypt,
    /// A handshake message after the handshake (a `KeyUpdate`, say) or an alert other
    /// than `close_notify`: not followed here, the client connects again.
    Unexpected,
    /// A sequence number would wrap.
    Exhausted,
}

impl RecordError {
    pub fn code(self) -> &'static str {
        match self {
            Self::Malformed => "tls_record_malformed",
            Self::Decrypt => "tls_record_not_authentic",
            Self::Unexpected => "tls_message_not_followed",
            Self::Exhausted => "tls_sequence_exhausted",
        }
    }
}

/// The TLS 1.3 cipher suite's AEAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    Aes128Gcm,
    Aes256Gcm,
    Chacha20Poly1305,
}

impl Suite {
    fn algorithm(self) -> &'static aead::Algorithm {
        match self {
            Self::Aes128Gcm => &aead::AES_128_GCM,
            Self::Aes256Gcm => &aead::AES_256_GCM,
            Self::Chacha20Poly1305 => &aead::CHACHA20_POLY1305,
        }
    }
}

/// One direction's traffic key, IV and next sequence number.
struct Direction {
    suite: Suite,
    key: Zeroizing<[u8; 32]>,
    iv: [u8; NONCE_LEN],
    seq: u64,
}

/// One direction's traffic key and IV (RFC 8446, 7.3), and the sequence number of its
/// next record.
pub struct TrafficKeys<'a> {
    pub suite: Suite,
    pub key: &'a [u8],
    pub iv: &'a [u8],
    pub seq: u64,
}

impl Direction {
    fn new(keys: TrafficKeys<'_>) -> Option<Self> {
        let TrafficKeys {
            suite,
            key,
            iv,
            seq,
        } = keys;
        if key.len() != suite.algorithm().key_len() || iv.len() != NONCE_LEN {
            return None;
        }
        let mut stored = Zeroizing::new([0u8; 32]);
        stored[..key.len()].copy_from_slice(key);
        Some(Self {
            suite,
            key: stored,
            iv: iv.try_into().ok()?,
            seq,
        })
    }

    /// The key for the next record and its nonce (RFC 8446, 5.3), counting the record.
    fn next(&mut self) -> Result<(LessSafeKey, Nonce), RecordError> {
        let seq = self.seq;
        self.seq = seq.checked_add(1).ok_or(RecordError::Exhausted)?;
        let algorithm = self.suite.algorithm();
        let key = UnboundKey::new(algorithm, &self.key[..algorithm.key_len()])
            .map_err(|_| RecordError::Decrypt)?;
        let mut nonce = self.iv;
        for (n, s) in nonce[NONCE_LEN - 8..].iter_mut().zip(seq.to_be_bytes()) {
            *n ^= s;
        }
        Ok((LessSafeKey::new(key), Nonce::assume_unique_for_key(nonce)))
    }
}

/// What [`Records::open`] found at the start of the bytes read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// No whole record yet: this many more bytes are needed at least.
    Missing(usize),
    /// A record of application data, whose plaintext was appended; this many bytes of
    /// the input were used.
    Data(usize),
    /// The client closed in order (`close_notify`).
    Closed,
}

/// The traffic keys of a TLS 1.3 connection, both ways.
pub struct Records {
    read: Direction,
    write: Direction,
}

impl Records {
    /// From the keys the TLS library handed over (`read`: the client's, `write`: the
    /// server's); `None` if a key or IV has the wrong length for its suite.
    pub fn new(read: TrafficKeys<'_>, write: TrafficKeys<'_>) -> Option<Self> {
        Some(Self {
            read: Direction::new(read)?,
            write: Direction::new(write)?,
        })
    }

    /// The length of the whole record starting `raw`, once its header is there.
    fn record_len(raw: &[u8]) -> Result<Option<usize>, RecordError> {
        let Some(header) = raw.get(..HEADER_LEN) else {
            return Ok(None);
        };
        if header[0] != APPLICATION_DATA || header[1..3] != LEGACY_VERSION {
            return Err(RecordError::Malformed);
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if !(TAG_LEN + 1..=MAX_CIPHERTEXT_LEN).contains(&len) {
            return Err(RecordError::Malformed);
        }
        Ok(Some(HEADER_LEN + len))
    }

    /// How many more bytes the record starting `raw` needs at least (1 when it cannot
    /// tell: [`Records::open`] then says what is wrong).
    pub fn wanted(raw: &[u8]) -> usize {
        match Self::record_len(raw) {
            Ok(None) => HEADER_LEN - raw.len(),
            Ok(Some(end)) => end.saturating_sub(raw.len()).max(1),
            Err(_) => 1,
        }
    }

    /// Opens the record at the start of `raw` (decrypting it in place) and appends its
    /// application data to `plain`.
    pub fn open(&mut self, raw: &mut [u8], plain: &mut Vec<u8>) -> Result<Opened, RecordError> {
        let end = match Self::record_len(raw)? {
            None => return Ok(Opened::Missing(HEADER_LEN - raw.len())),
            Some(end) if end > raw.len() => return Ok(Opened::Missing(end - raw.len())),
            Some(end) => end,
        };
        let (header, body) = raw[..end].split_at_mut(HEADER_LEN);
        let (key, nonce) = self.read.next()?;
        let inner = key
            .open_in_place(nonce, Aad::from(&*header), body)
            .map_err(|_| RecordError::Decrypt)?;
        // The inner plaintext: content, then its type, then zeros (RFC 8446, 5.4).
        let Some(at) = inner.iter().rposition(|&b| b != 0) else {
            return Err(RecordError::Malformed);
        };
        match inner[at] {
            APPLICATION_DATA => {
                plain.extend_from_slice(&inner[..at]);
                Ok(Opened::Data(end))
            }
            ALERT if inner[..at] == CLOSE_NOTIFY => Ok(Opened::Closed),
            ALERT | HANDSHAKE => Err(RecordError::Unexpected),
            _ => Err(RecordError::Malformed),
        }
    }

    /// Appends `plaintext` to `out` as application-data records.
    pub fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), RecordError> {
        if plaintext.is_empty() {
            return Ok(());
        }
        for piece in plaintext.chunks(MAX_PLAINTEXT_LEN) {
            self.seal_one(APPLICATION_DATA, piece, out)?;
        }
        Ok(())
    }

    /// Appends the `close_notify` alert to `out`.
    pub fn seal_close_notify(&mut self, out: &mut Vec<u8>) -> Result<(), RecordError> {
        self.seal_one(ALERT, &CLOSE_NOTIFY, out)
    }

    fn seal_one(&mut self, kind: u8, piece: &[u8], out: &mut Vec<u8>) -> Result<(), RecordError> {
        // At most MAX_PLAINTEXT_LEN + 17: two bytes.
        let len = u16::try_from(piece.len() + 1 + TAG_LEN).map_err(|_| RecordError::Malformed)?;
        let [high, low] = len.to_be_bytes();
        let header = [
            APPLICATION_DATA,
            LEGACY_VERSION[0],
            LEGACY_VERSION[1],
            high,
            low,
        ];
        let (key, nonce) = self.write.next()?;
        out.reserve(HEADER_LEN + usize::from(len));
        out.extend_from_slice(&header);
        let at = out.len();
        out.extend_from_slice(piece);
        out.push(kind);
        let tag = key
            .seal_in_place_separate_tag(nonce, Aad::from(header), &mut out[at..])
            .map_err(|_| RecordError::Exhausted)?;
        out.extend_from_slice(tag.as_ref());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use rustls::{ClientConnection, ConnectionTrafficSecrets, ServerConnection};
    use std::io::{Read, Write};
    use std::sync::Arc;

    /// The keys of `secrets`, as the server hands them over.
    fn keys(seq: u64, secrets: &ConnectionTrafficSecrets) -> TrafficKeys<'_> {
        let (suite, key, iv) = match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (Suite::Aes128Gcm, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (Suite::Aes256Gcm, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (Suite::Chacha20Poly1305, key, iv)
            }
            _ => unreachable!("TLS 1.3 suites only"),
        };
        TrafficKeys {
            suite,
            key: key.as_ref(),
            iv: iv.as_ref(),
            seq,
        }
    }

    /// A client (rustls, as a toy's TLS library would be) and the server's records,
    /// after a real handshake in memory with `suite`.
    fn connected(suite: rustls::SupportedCipherSuite) -> (ClientConnection, Records) {
        let rcgen::CertifiedKey { cert, key_pair } =
            rcgen::generate_simple_self_signed(vec!["toy.test".into()]).unwrap();
        let der = CertificateDer::from(cert.der().to_vec());
        let key = PrivateKeyDer::try_from(key_pair.serialize_der()).unwrap();
        let mut provider = rustls::crypto::ring::default_provider();
        provider.cipher_suites = vec![suite];
        let provider = Arc::new(provider);
        let mut server_config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![der.clone()], key)
            .unwrap();
        server_config.enable_secret_extraction = true;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(der).unwrap();
        let client_config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut client = ClientConnection::new(
            Arc::new(client_config),
            ServerName::try_from("toy.test").unwrap(),
        )
        .unwrap();
        let mut server = ServerConnection::new(Arc::new(server_config)).unwrap();
        let mut to_client = Vec::new();
        while client.is_handshaking() || server.is_handshaking() || server.wants_write() {
            let mut wire = Vec::new();
            client.write_tls(&mut wire).unwrap();
            let mut read = &wire[..];
            while !read.is_empty() {
                server.read_tls(&mut read).unwrap();
                server.process_new_packets().unwrap();
            }
            while server.wants_write() {
                server.write_tls(&mut to_client).unwrap();
            }
            let mut read = &to_client[..];
            while !read.is_empty() {
                client.read_tls(&mut read).unwrap();
                client.process_new_packets().unwrap();
            }
            to_client.clear();
        }
        let secrets = server.dangerous_extract_secrets().unwrap();
        let records = Records::new(
            keys(secrets.rx.0, &secrets.rx.1),
            keys(secrets.tx.0, &secrets.tx.1),
        )
        .unwrap();
        (client, records)
    }

    fn suites() -> Vec<rustls::SupportedCipherSuite> {
        use rustls::crypto::ring::cipher_suite;
        vec![
            cipher_suite::TLS13_AES_128_GCM_SHA256,
            cipher_suite::TLS13_AES_256_GCM_SHA384,
            cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        ]
    }

    /// Everything the client writes, as the bytes on the wire.
    fn client_wire(client: &mut ClientConnection, data: &[u8]) -> Vec<u8> {
        client.writer().write_all(data).unwrap();
        let mut wire = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut wire).unwrap();
        }
        wire
    }

    fn open_all(records: &mut Records, wire: &mut Vec<u8>) -> Result<Vec<u8>, RecordError> {
        let mut plain = Vec::new();
        loop {
            match records.open(wire, &mut plain)? {
                Opened::Data(used) => {
                    wire.drain(..used);
                }
                Opened::Missing(_) => return Ok(plain),
                Opened::Closed => return Ok(plain),
            }
        }
    }

    #[test]
    fn both_ways_with_every_suite_in_any_size() {
        for suite in suites() {
            let (mut client, mut records) = connected(suite);
            for len in [1, 100, MAX_PLAINTEXT_LEN, MAX_PLAINTEXT_LEN + 1, 40_000] {
                let sent: Vec<u8> = (0..len).map(|i| (i % 251).to_le_bytes()[0]).collect();
                let mut wire = client_wire(&mut client, &sent);
                assert_eq!(
                    open_all(&mut records, &mut wire).unwrap(),
                    sent,
                    "{suite:?}"
                );
                assert!(wire.is_empty());

                let mut out = Vec::new();
                records.seal(&sent, &mut out).unwrap();
                let mut read = &out[..];
                let mut got = Vec::new();
                while !read.is_empty() {
                    client.read_tls(&mut read).unwrap();
                    client.process_new_packets().unwrap();
                    let mut piece = [0u8; 4096];
                    while let Ok(n @ 1..) = client.reader().read(&mut piece) {
                        got.extend_from_slice(&piece[..n]);
                    }
                }
                assert_eq!(got, sent, "{suite:?}");
            }
        }
    }

    #[test]
    fn a_record_in_pieces_is_opened_only_when_whole() {
        let (mut client, mut records) = connected(suites()[0]);
        let wire = client_wire(&mut client, b"hello toy");
        let mut plain = Vec::new();
        let mut got = Vec::new();
        for (i, byte) in wire.iter().enumerate() {
            got.push(*byte);
            match records.open(&mut got, &mut plain).unwrap() {
                Opened::Missing(n) => assert!(i + 1 < wire.len() && n >= 1),
                Opened::Data(used) => assert_eq!((used, i + 1), (wire.len(), wire.len())),
                Opened::Closed => panic!("no alert was sent"),
            }
        }
        assert_eq!(plain, b"hello toy");
    }

    #[test]
    fn altered_replayed_and_out_of_order_records_are_refused() {
        let mut plain = Vec::new();
        // Altered: a flipped bit of the tag.
        let (mut client, mut records) = connected(suites()[0]);
        let mut altered = client_wire(&mut client, b"one");
        *altered.last_mut().unwrap() ^= 1;
        assert_eq!(
            records.open(&mut altered, &mut plain),
            Err(RecordError::Decrypt)
        );
        // Out of order: the second record first.
        let (mut client, mut records) = connected(suites()[0]);
        let _first = client_wire(&mut client, b"one");
        let mut second = client_wire(&mut client, b"two");
        assert_eq!(
            records.open(&mut second, &mut plain),
            Err(RecordError::Decrypt)
        );
        // Replayed: the same record again.
        let (mut client, mut records) = connected(suites()[0]);
        let first = client_wire(&mut client, b"one");
        assert!(matches!(
            records.open(&mut first.clone(), &mut plain),
            Ok(Opened::Data(_))
        ));
        assert_eq!(
            records.open(&mut first.clone(), &mut plain),
            Err(RecordError::Decrypt)
        );
        assert_eq!(plain, b"one");
        // A header that is no protected record, and one too long.
        assert_eq!(
            records.open(&mut [22, 3, 3, 0, 20], &mut plain),
            Err(RecordError::Malformed)
        );
        assert_eq!(
            records.open(&mut [23, 3, 3, 0x48, 0x01], &mut plain),
            Err(RecordError::Malformed)
        );
    }

    #[test]
    fn a_key_update_ends_and_close_notify_closes() {
        let (mut client, mut records) = connected(suites()[0]);
        client.refresh_traffic_keys().unwrap();
        let mut wire = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut wire).unwrap();
        }
        assert_eq!(
            records.open(&mut wire, &mut Vec::new()),
            Err(RecordError::Unexpected)
        );

        let (mut client, mut records) = connected(suites()[0]);
        client.send_close_notify();
        let mut wire = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut wire).unwrap();
        }
        assert_eq!(records.open(&mut wire, &mut Vec::new()), Ok(Opened::Closed));

        // And the server's own close_notify reaches the client as one.
        let (mut client, mut records) = connected(suites()[0]);
        let mut out = Vec::new();
        records.seal_close_notify(&mut out).unwrap();
        let mut read = &out[..];
        client.read_tls(&mut read).unwrap();
        let state = client.process_new_packets().unwrap();
        assert!(state.peer_has_closed());
    }
}
