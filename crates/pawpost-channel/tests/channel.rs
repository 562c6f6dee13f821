//! The channel between toy and server: what a neighbour on the link sees, and that every
//! injected, altered, replayed, reordered or reflected message is refused; the pairing
//! number under a man in the middle.

use pawpost_channel::{
    accept, message_kind, record_size, Accepted, ChannelError, Established, StaticKey, ToyPairing,
    ToyResume, CHANNEL_VERSION, KIND_PAIR_1, KIND_PAIR_2, KIND_PAIR_3, KIND_RECORD, KIND_RESUME_1,
    KIND_RESUME_2, MAX_MESSAGE_LEN, MAX_RECORD_FRAME_LEN, MESSAGE_HEADER_LEN, RECORD_SIZES,
    TAG_LEN,
};
use sha2::{Digest, Sha256};

/// Fixed bytes for a label, so that every run sees the same keys.
fn bytes(label: &str, i: u32) -> [u8; 32] {
    Sha256::new()
        .chain_update(label)
        .chain_update(i.to_be_bytes())
        .finalize()
        .into()
}

fn key(label: &str, i: u32) -> StaticKey {
    StaticKey::from_secret(bytes(label, i))
}

struct Paired {
    toy: Established,
    server: Established,
    /// The three handshake messages as a neighbour saw them.
    wire: Vec<Vec<u8>>,
}

/// A whole pairing handshake between the toy's key and the server's key.
fn pair(toy_key: &StaticKey, server_key: &StaticKey, i: u32) -> Paired {
    let mut m1 = Vec::new();
    let toy = ToyPairing::start(toy_key, &key("toy-e", i), bytes("toy-nonce", i), &mut m1).unwrap();
    let mut m2 = Vec::new();
    let Accepted::Pairing(server) = accept(
        server_key,
        &key("server-e", i),
        bytes("server-nonce", i),
        &m1,
        &mut m2,
    )
    .unwrap() else {
        panic!("a pairing toy's first message starts a pairing handshake");
    };
    let mut m3 = Vec::new();
    let toy = toy.read_reply(&m2, &mut m3).unwrap();
    let server = server.read_final(&m3).unwrap();
    Paired {
        toy,
        server,
        wire: vec![m1, m2, m3],
    }
}

/// A paired toy's connection to the server holding `server_key`.
fn resume(
    toy_key: &StaticKey,
    pinned: &[u8; 32],
    server_key: &StaticKey,
    i: u32,
) -> (Established, Established) {
    let mut m1 = Vec::new();
    let toy = ToyResume::start(toy_key, pinned, &key("toy-e", i), &mut m1).unwrap();
    let mut m2 = Vec::new();
    let Accepted::Resumed(server) = accept(
        server_key,
        &key("server-e", i),
        bytes("server-nonce", i),
        &m1,
        &mut m2,
    )
    .unwrap() else {
        panic!("a paired toy's first message resumes");
    };
    (toy.read_reply(&m2).unwrap(), *server)
}

fn seal(end: &mut Established, frame: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    end.channel.seal(frame, &mut out).unwrap();
    out
}

/// A frame with recognisable bytes: a type, a message id and a roster-like body.
fn sample_frame(len: usize) -> Vec<u8> {
    let mut frame = vec![1u8, 0x8D];
    frame.extend_from_slice(&(u32::try_from(len).unwrap()).to_be_bytes());
    frame.extend_from_slice(b"MESSAGE-ID-0042!");
    while frame.len() < len {
        frame.extend_from_slice(b"roster:grandma;");
    }
    frame.truncate(len.max(22));
    frame
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn pairing_gives_both_ends_the_same_number_and_keys() {
    let toy_key = key("toy", 0);
    let server_key = key("server", 0);
    let paired = pair(&toy_key, &server_key, 0);
    let number = paired.toy.pairing_number.unwrap();
    assert_eq!(Some(number), paired.server.pairing_number);
    assert!(number.iter().all(|d| *d <= 9));
    assert_eq!(
        paired.toy.peer_key,
        *server_key.public(),
        "the toy learns the server's key"
    );
    assert_eq!(
        paired.server.peer_key,
        *toy_key.public(),
        "the server learns the toy's key"
    );
    assert_eq!(paired.toy.handshake_hash, paired.server.handshake_hash);
    assert_eq!(
        paired
            .wire
            .iter()
            .map(|m| message_kind(m).unwrap())
            .collect::<Vec<_>>(),
        [KIND_PAIR_1, KIND_PAIR_2, KIND_PAIR_3]
    );
    // Another pairing of the same keys gives fresh randomness and, here, another number.
    let again = pair(&toy_key, &server_key, 1);
    assert_ne!(again.toy.handshake_hash, paired.toy.handshake_hash);
}

#[test]
fn frames_cross_both_ways_in_order() {
    let mut p = pair(&key("toy", 0), &key("server", 0), 0);
    for len in [0usize, 1, 100, 252, 253, 1_000, 8_000, MAX_RECORD_FRAME_LEN] {
        let frame = sample_frame(len);
        let record = seal(&mut p.server, &frame);
        assert_eq!(p.toy.channel.open(&record).unwrap(), frame);
        let record = seal(&mut p.toy, &frame);
        assert_eq!(p.server.channel.open(&record).unwrap(), frame);
    }
}

#[test]
fn a_resumed_connection_needs_the_pinned_server_key() {
    let toy_key = key("toy", 0);
    let server_key = key("server", 0);
    let (mut toy, mut server) = resume(&toy_key, server_key.public(), &server_key, 0);
    assert_eq!(
        server.peer_key,
        *toy_key.public(),
        "the server learns which toy key connects"
    );
    assert_eq!(toy.pairing_number, None);
    let record = seal(&mut server, b"challenge");
    assert_eq!(toy.channel.open(&record).unwrap(), b"challenge");
    let record = seal(&mut toy, b"auth");
    assert_eq!(server.channel.open(&record).unwrap(), b"auth");

    // A server with another key (an impostor on the link) cannot read the toy's first
    // message, and so cannot answer it.
    let mut m1 = Vec::new();
    let _toy = ToyResume::start(&toy_key, server_key.public(), &key("toy-e", 5), &mut m1).unwrap();
    let mut m2 = Vec::new();
    let impostor = accept(
        &key("impostor", 0),
        &key("server-e", 5),
        [0; 32],
        &m1,
        &mut m2,
    );
    assert_eq!(impostor.err(), Some(ChannelError::HandshakeFailed));
    assert!(m2.is_empty());

    // Nor can the impostor answer as itself: an IK reply from a handshake the toy did
    // not pin is refused.
    let toy = ToyResume::start(
        &toy_key,
        server_key.public(),
        &key("toy-e", 6),
        &mut Vec::new(),
    )
    .unwrap();
    let mut m1 = Vec::new();
    let _other = ToyResume::start(
        &key("impostor-toy", 0),
        key("impostor", 0).public(),
        &key("toy-e", 7),
        &mut m1,
    )
    .unwrap();
    let mut forged = Vec::new();
    let _ = accept(
        &key("impostor", 0),
        &key("server-e", 7),
        [0; 32],
        &m1,
        &mut forged,
    )
    .unwrap();
    assert_eq!(message_kind(&forged).unwrap(), KIND_RESUME_2);
    assert_eq!(
        toy.read_reply(&forged).err(),
        Some(ChannelError::HandshakeFailed)
    );
}

#[test]
fn a_man_in_the_middle_at_pairing_makes_the_numbers_differ() {
    let toy_key = key("toy", 0);
    let server_key = key("server", 0);
    let mitm_key = key("mitm", 0);
    for i in 0..20 {
        // The toy pairs with the man in the middle; he pairs with the server as a toy.
        let toy_side = pair(&toy_key, &mitm_key, i);
        let server_side = pair(&key("mitm-toy", i), &server_key, 1_000 + i);
        assert_ne!(
            toy_side.toy.pairing_number, server_side.server.pairing_number,
            "run {i}: the toy speaks one number, the parent's app shows another"
        );
        assert_ne!(
            toy_side.toy.peer_key,
            *server_key.public(),
            "the toy would pin his key"
        );
        assert_ne!(
            toy_side.toy.handshake_hash,
            server_side.server.handshake_hash
        );
    }
}

#[test]
fn a_man_in_the_middle_cannot_pass_the_toys_messages_through() {
    // He relays the toy's first message unchanged but answers with his own key: the
    // server's reply then cannot be finished by him, and the toy's last message (made
    // for him) does not finish the server's handshake.
    let toy_key = key("toy", 0);
    let mut m1 = Vec::new();
    let toy =
        ToyPairing::start(&toy_key, &key("toy-e", 0), bytes("toy-nonce", 0), &mut m1).unwrap();
    let mut to_server = Vec::new();
    let Ok(Accepted::Pairing(server)) = accept(
        &key("server", 0),
        &key("server-e", 0),
        bytes("server-nonce", 0),
        &m1,
        &mut to_server,
    ) else {
        panic!("pairing");
    };
    let mut from_mitm = Vec::new();
    let _ = accept(
        &key("mitm", 0),
        &key("mitm-e", 0),
        bytes("mitm-nonce", 0),
        &m1,
        &mut from_mitm,
    )
    .unwrap();
    let mut m3 = Vec::new();
    let _toy = toy.read_reply(&from_mitm, &mut m3).unwrap();
    assert_eq!(
        server.read_final(&m3).err(),
        Some(ChannelError::HandshakeFailed)
    );
}

#[test]
fn the_server_refuses_a_revealed_nonce_that_does_not_match() {
    use clatter::bytearray::SensitiveByteArray;
    use clatter::handshakepattern::noise_xx;
    use clatter::traits::Handshaker;
    use clatter::{KeyPair, NqHandshakeCore};
    use pawpost_channel::suite::{AesGcm, NoRng, Sha256 as NoiseSha256, X25519};
    // A toy side driven by hand: it commits to one nonce and reveals another.
    let toy_key = key("toy", 0);
    let toy_e = key("toy-e", 0);
    let kp = |k: &StaticKey| KeyPair::new(*k.public(), SensitiveByteArray::new(*k.secret()));
    let mut hs = NqHandshakeCore::<X25519, AesGcm, NoiseSha256, NoRng>::new(
        noise_xx(),
        pawpost_channel::PROLOGUE,
        true,
        Some(kp(&toy_key)),
        Some(kp(&toy_e)),
        None,
        None,
    )
    .unwrap();
    let commitment: [u8; 32] = Sha256::new()
        .chain_update(pawpost_channel::COMMIT_DOMAIN)
        .chain_update(bytes("committed", 0))
        .finalize()
        .into();
    let mut buf = [0u8; 200];
    let n = hs.write_message(&commitment, &mut buf).unwrap();
    let mut m1 = vec![CHANNEL_VERSION, KIND_PAIR_1];
    m1.extend_from_slice(&buf[..n]);
    let mut m2 = Vec::new();
    let Ok(Accepted::Pairing(server)) = accept(
        &key("server", 0),
        &key("server-e", 0),
        bytes("server-nonce", 0),
        &m1,
        &mut m2,
    ) else {
        panic!("pairing");
    };
    let mut payload = [0u8; 64];
    hs.read_message(&m2[MESSAGE_HEADER_LEN..], &mut payload)
        .unwrap();
    let n = hs.write_message(&bytes("another", 0), &mut buf).unwrap();
    let mut m3 = vec![CHANNEL_VERSION, KIND_PAIR_3];
    m3.extend_from_slice(&buf[..n]);
    assert_eq!(
        server.read_final(&m3).err(),
        Some(ChannelError::CommitmentMismatch)
    );
}

fn refuses_then_closed(
    end: &mut Established,
    bad: &[u8],
    good_next: &[u8],
    expected: ChannelError,
) {
    assert_eq!(end.channel.open(bad).err(), Some(expected));
    assert!(end.channel.is_closed());
    assert_eq!(
        end.channel.open(good_next).err(),
        Some(ChannelError::Closed),
        "any failure ends the channel"
    );
}

#[test]
fn a_replayed_record_is_refused_and_ends_the_channel() {
    let mut p = pair(&key("toy", 0), &key("server", 0), 0);
    let r1 = seal(&mut p.server, b"first");
    let r2 = seal(&mut p.server, b"second");
    assert_eq!(p.toy.channel.open(&r1).unwrap(), b"first");
    refuses_then_closed(&mut p.toy, &r1, &r2, ChannelError::RecordRefused);
}

#[test]
fn reordered_and_dropped_records_are_refused() {
    let mut p = pair(&key("toy", 0), &key("server", 0), 0);
    let r1 = seal(&mut p.toy, b"first");
    let r2 = seal(&mut p.toy, b"second");
    refuses_then_closed(&mut p.server, &r2, &r1, ChannelError::RecordRefused);
}

#[test]
fn every_altered_byte_of_a_record_is_refused() {
    let mut base = pair(&key("toy", 0), &key("server", 0), 0);
    let record = seal(&mut base.server, &sample_frame(300));
    for position in 0..record.len() {
        let mut p = pair(&key("toy", 0), &key("server", 0), 0);
        let _ = seal(&mut p.server, &sample_frame(300));
        let mut bad = record.clone();
        bad[position] ^= 0x01;
        let error = p.toy.channel.open(&bad).unwrap_err();
        assert!(p.toy.channel.is_closed(), "byte {position}: {error:?}");
    }
    // Cut short or lengthened: refused too.
    for bad in [
        &record[..record.len() - 1],
        &[record.as_slice(), &[0]].concat()[..],
    ] {
        let mut p = pair(&key("toy", 0), &key("server", 0), 0);
        assert_eq!(
            p.toy.channel.open(bad).err(),
            Some(ChannelError::WrongLength)
        );
    }
}

#[test]
fn injected_and_reflected_records_are_refused() {
    let mut p = pair(&key("toy", 0), &key("server", 0), 0);
    // A record the neighbour makes with a channel of his own (his own pairing with the
    // server), sent to the toy.
    let mut his = pair(&key("neighbour", 0), &key("server", 0), 9);
    let injected = seal(&mut his.server, b"PairCode 666666");
    let genuine = seal(&mut p.server, b"Challenge");
    refuses_then_closed(&mut p.toy, &injected, &genuine, ChannelError::RecordRefused);

    // The toy's own record sent back to it.
    let mut p = pair(&key("toy", 0), &key("server", 0), 0);
    let own = seal(&mut p.toy, b"Played");
    let genuine = seal(&mut p.server, b"Challenge");
    refuses_then_closed(&mut p.toy, &own, &genuine, ChannelError::RecordRefused);

    // A plaintext version 1 frame, as a neighbour would inject today.
    let mut p = pair(&key("toy", 0), &key("server", 0), 0);
    let genuine = seal(&mut p.server, b"Challenge");
    let plain = [1u8, 0x89, 0, 0, 0, 1, 2];
    refuses_then_closed(&mut p.toy, &plain, &genuine, ChannelError::NotVersion3);

    // A handshake message where a record belongs.
    let mut p = pair(&key("toy", 0), &key("server", 0), 0);
    let genuine = seal(&mut p.server, b"Challenge");
    let hello = p.wire[1].clone();
    refuses_then_closed(
        &mut p.toy,
        &hello,
        &genuine,
        ChannelError::UnexpectedMessage,
    );
}

#[test]
fn a_neighbour_sees_padded_sizes_and_no_plaintext() {
    let mut p = pair(&key("toy", 0), &key("server", 0), 0);
    let mut sizes = std::collections::BTreeSet::new();
    for len in (0..=MAX_RECORD_FRAME_LEN)
        .step_by(97)
        .chain([MAX_RECORD_FRAME_LEN])
    {
        let frame = sample_frame(len);
        let record = seal(&mut p.toy, &frame);
        assert_eq!(record[0], CHANNEL_VERSION);
        assert_eq!(record[1], KIND_RECORD);
        assert!(record.len() <= MAX_MESSAGE_LEN);
        let padded = record.len() - MESSAGE_HEADER_LEN - TAG_LEN;
        assert!(
            RECORD_SIZES.contains(&padded),
            "{len} bytes went out as {padded}"
        );
        assert_eq!(record_size(len), Some(padded));
        if len >= 40 {
            assert!(
                !contains(&record, b"MESSAGE-ID-0042!"),
                "no message id in the clear"
            );
            assert!(
                !contains(&record, b"roster:grandma;"),
                "no roster bytes in the clear"
            );
        }
        assert!(
            !contains(&record, &frame[..22]),
            "no frame header (version, type, length) nor message id in the clear"
        );
        sizes.insert(record.len());
        assert_eq!(p.server.channel.open(&record).unwrap(), frame);
    }
    assert_eq!(
        sizes.len(),
        RECORD_SIZES.len(),
        "every length went out as one of four sizes"
    );
    // Nor do the handshake messages carry anything of the toy's identity in the clear.
    let toy_key = key("toy", 0);
    for message in &p.wire {
        assert!(
            !contains(message, toy_key.public()),
            "the toy's key is encrypted"
        );
    }
}

#[test]
fn a_frame_too_large_for_a_record_is_refused_and_the_channel_goes_on() {
    let mut p = pair(&key("toy", 0), &key("server", 0), 0);
    let mut out = Vec::new();
    assert_eq!(
        p.toy
            .channel
            .seal(&vec![0; MAX_RECORD_FRAME_LEN + 1], &mut out)
            .err(),
        Some(ChannelError::FrameTooLarge)
    );
    assert!(out.is_empty());
    let record = seal(&mut p.toy, b"still here");
    assert_eq!(p.server.channel.open(&record).unwrap(), b"still here");
}

#[test]
fn altered_handshake_messages_are_refused() {
    let toy_key = key("toy", 0);
    let server_key = key("server", 0);
    let clean = pair(&toy_key, &server_key, 0);
    // The server's reply, altered anywhere after its ephemeral key (which is not
    // authenticated until the DH with it), is refused by the toy.
    for position in MESSAGE_HEADER_LEN..clean.wire[1].len() {
        let mut m1 = Vec::new();
        let toy =
            ToyPairing::start(&toy_key, &key("toy-e", 0), bytes("toy-nonce", 0), &mut m1).unwrap();
        let mut bad = clean.wire[1].clone();
        bad[position] ^= 0x80;
        assert!(
            toy.read_reply(&bad, &mut Vec::new()).is_err(),
            "byte {position}"
        );
    }
    // The toy's last message altered anywhere is refused by the server.
    for position in 0..clean.wire[2].len() {
        let mut m2 = Vec::new();
        let Ok(Accepted::Pairing(server)) = accept(
            &server_key,
            &key("server-e", 0),
            bytes("server-nonce", 0),
            &clean.wire[0],
            &mut m2,
        ) else {
            panic!("pairing");
        };
        let mut bad = clean.wire[2].clone();
        bad[position] ^= 0x80;
        assert!(server.read_final(&bad).is_err(), "byte {position}");
    }
    // A resuming toy's first message altered anywhere past its ephemeral key is refused.
    let mut m1 = Vec::new();
    let _ = ToyResume::start(&toy_key, server_key.public(), &key("toy-e", 0), &mut m1).unwrap();
    assert_eq!(message_kind(&m1).unwrap(), KIND_RESUME_1);
    for position in MESSAGE_HEADER_LEN + 32..m1.len() {
        let mut bad = m1.clone();
        bad[position] ^= 0x80;
        assert!(
            accept(
                &server_key,
                &key("server-e", 0),
                [0; 32],
                &bad,
                &mut Vec::new()
            )
            .is_err(),
            "byte {position}"
        );
    }
    // Out of turn, the wrong version, or an unknown kind.
    assert_eq!(
        accept(
            &server_key,
            &key("server-e", 0),
            [0; 32],
            &clean.wire[2],
            &mut Vec::new()
        )
        .err(),
        Some(ChannelError::UnexpectedMessage)
    );
    assert_eq!(
        accept(
            &server_key,
            &key("server-e", 0),
            [0; 32],
            &[1, 0x01, 0, 0, 0, 0],
            &mut Vec::new()
        )
        .err(),
        Some(ChannelError::NotVersion3)
    );
    assert_eq!(
        accept(
            &server_key,
            &key("server-e", 0),
            [0; 32],
            &[],
            &mut Vec::new()
        )
        .err(),
        Some(ChannelError::NotVersion3)
    );
}

#[test]
fn a_low_order_ephemeral_key_is_refused() {
    // An all-zero ephemeral key makes every Diffie-Hellman result zero.
    let mut m1 = vec![CHANNEL_VERSION, KIND_PAIR_1];
    m1.extend_from_slice(&[0; 32]);
    m1.extend_from_slice(&[7; 32]);
    assert_eq!(
        accept(
            &key("server", 0),
            &key("server-e", 0),
            [0; 32],
            &m1,
            &mut Vec::new()
        )
        .err(),
        Some(ChannelError::HandshakeFailed)
    );
}

#[test]
fn oversized_and_undersized_handshake_messages_are_refused_without_panicking() {
    let server_key = key("server", 0);
    let mut huge = vec![CHANNEL_VERSION, KIND_PAIR_1];
    huge.resize(70_000, 0);
    assert_eq!(
        accept(
            &server_key,
            &key("server-e", 0),
            [0; 32],
            &huge,
            &mut Vec::new()
        )
        .err(),
        Some(ChannelError::WrongLength)
    );
    for len in 0..100 {
        let mut short = vec![CHANNEL_VERSION, KIND_RESUME_1];
        short.resize(MESSAGE_HEADER_LEN + len, 5);
        assert!(accept(
            &server_key,
            &key("server-e", 0),
            [0; 32],
            &short,
            &mut Vec::new()
        )
        .is_err());
    }
}

#[test]
fn errors_say_what_to_do() {
    for error in [
        ChannelError::NotVersion3,
        ChannelError::UnexpectedMessage,
        ChannelError::WrongLength,
        ChannelError::HandshakeFailed,
        ChannelError::CommitmentMismatch,
        ChannelError::RecordRefused,
        ChannelError::BadPadding,
        ChannelError::FrameTooLarge,
        ChannelError::Closed,
    ] {
        let text = error.to_string();
        assert!(
            text.contains(';') || text.contains("again"),
            "{}: {text}",
            error.code()
        );
    }
}

#[test]
fn a_record_opens_where_it_lies() {
    let mut p = pair(&key("toy", 0), &key("server", 0), 0);
    let frame = sample_frame(5_000);
    let mut record = seal(&mut p.server, &frame);
    let range = p.toy.channel.open_in_place(&mut record).unwrap();
    assert_eq!(&record[range], &frame[..]);
    // The next record opens; the same record again is refused and closes the channel.
    let mut next = seal(&mut p.server, &frame);
    let mut again = next.clone();
    let range = p.toy.channel.open_in_place(&mut next).unwrap();
    assert_eq!(&next[range], &frame[..]);
    assert_eq!(
        p.toy.channel.open_in_place(&mut again).err(),
        Some(ChannelError::RecordRefused)
    );
    let mut later = seal(&mut p.server, &frame);
    assert_eq!(
        p.toy.channel.open_in_place(&mut later).err(),
        Some(ChannelError::Closed)
    );
    let mut q = pair(&key("toy", 0), &key("server", 0), 1);
    let mut altered = seal(&mut q.server, &frame);
    let last = altered.len() - 1;
    altered[last] ^= 1;
    assert_eq!(
        q.toy.channel.open_in_place(&mut altered).err(),
        Some(ChannelError::RecordRefused)
    );
}
