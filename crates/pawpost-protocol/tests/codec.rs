//! The frame codec: every frame survives a round trip, and nothing else decodes.

use pawpost_crypto::rand_core::SeedableRng;
use pawpost_crypto::{DeviceId, DeviceKeys, MessageId};
use pawpost_protocol::testing::one_of_each;
use pawpost_protocol::{
    frame_len, Frame, FrameError, FrameType, PairingCode, RejectReason, ServerError,
    FRAME_HEADER_LEN, MAX_ENVELOPE_LEN, MAX_FRAME_LEN, MAX_SIGNED_ROSTER_LEN, PROTOCOL_VERSION,
};
use rand_chacha::ChaCha20Rng;

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

/// The same keys as the toy's stories use for device `n`.
fn keys(n: u8) -> DeviceKeys {
    let mut id = [0u8; 16];
    id[0] = 0xd0;
    id[6] = 0x40;
    id[8] = 0x80;
    id[15] = n;
    DeviceKeys::generate(&mut rng(n), DeviceId(id))
}

#[test]
fn every_frame_round_trips_and_its_header_tells_its_length() {
    let envelope = vec![0xee; 300];
    let roster = vec![0x77; 200];
    for frame in one_of_each(keys(9).public(), &envelope, &roster) {
        let bytes = frame.encode().unwrap();
        assert_eq!(bytes[0], PROTOCOL_VERSION);
        assert_eq!(bytes[1], frame.frame_type() as u8);
        assert_eq!(frame_len(&bytes), Ok(bytes.len()));
        assert_eq!(Frame::decode(&bytes), Ok(frame));
    }
}

#[test]
fn a_frame_cut_short_or_followed_by_anything_is_refused() {
    let envelope = vec![0xee; 40];
    let roster = vec![0x77; 40];
    for frame in one_of_each(keys(9).public(), &envelope, &roster) {
        let bytes = frame.encode().unwrap();
        for cut in 0..bytes.len() {
            assert_eq!(
                Frame::decode(&bytes[..cut]),
                Err(FrameError::Truncated),
                "{:?} cut at {cut}",
                frame.frame_type()
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Frame::decode(&longer), Err(FrameError::TrailingBytes));
        // A body length that claims one more byte than the fields use.
        let mut padded = bytes.clone();
        padded.push(0);
        let body = u32::from_be_bytes(padded[2..6].try_into().unwrap()) + 1;
        padded[2..6].copy_from_slice(&body.to_be_bytes());
        assert_eq!(Frame::decode(&padded), Err(FrameError::TrailingBytes));
    }
}

#[test]
fn unknown_versions_types_and_codes_are_refused() {
    let bytes = Frame::Played {
        message_id: MessageId([1; 16]),
    }
    .encode()
    .unwrap();
    let mut wrong_version = bytes.clone();
    wrong_version[0] = 2;
    assert_eq!(
        Frame::decode(&wrong_version),
        Err(FrameError::UnsupportedVersion)
    );
    for t in 0..=255u8 {
        if FrameType::from_u8(t).is_none() {
            let mut unknown = bytes.clone();
            unknown[1] = t;
            assert_eq!(Frame::decode(&unknown), Err(FrameError::UnknownType));
        }
    }
    let rejected = Frame::Rejected {
        message_id: MessageId([1; 16]),
        reason: RejectReason::Replayed,
    }
    .encode()
    .unwrap();
    let mut unknown_reason = rejected.clone();
    *unknown_reason.last_mut().unwrap() = 0;
    assert_eq!(Frame::decode(&unknown_reason), Err(FrameError::UnknownCode));
    let error = Frame::Error {
        code: ServerError::AuthFailed,
    }
    .encode()
    .unwrap();
    let mut unknown_error = error.clone();
    *unknown_error.last_mut().unwrap() = 200;
    assert_eq!(Frame::decode(&unknown_error), Err(FrameError::UnknownCode));
    let code = Frame::PairCode {
        code: PairingCode::from_number(1).unwrap(),
        expires_in_s: 1,
    }
    .encode()
    .unwrap();
    let mut not_a_digit = code.clone();
    not_a_digit[FRAME_HEADER_LEN] = 10;
    assert_eq!(
        Frame::decode(&not_a_digit),
        Err(FrameError::InvalidPairingCode)
    );
}

#[test]
fn over_long_fields_are_neither_sent_nor_accepted() {
    let big_roster = vec![0; MAX_SIGNED_ROSTER_LEN + 1];
    assert_eq!(
        Frame::RosterUpdate {
            signed_roster: &big_roster
        }
        .encode(),
        Err(FrameError::FieldTooLong)
    );
    let big_envelope = vec![0; MAX_ENVELOPE_LEN + 1];
    assert_eq!(
        Frame::Deliver {
            envelope: &big_envelope
        }
        .encode(),
        Err(FrameError::FieldTooLong)
    );
    let largest = vec![0; MAX_ENVELOPE_LEN];
    let bytes = Frame::Deliver { envelope: &largest }.encode().unwrap();
    assert_eq!(bytes.len(), MAX_FRAME_LEN);
    assert!(Frame::decode(&bytes).is_ok());

    // A roster field whose length says more than the limit, inside a small frame.
    let mut lying = Frame::RosterUpdate {
        signed_roster: &[1, 2, 3],
    }
    .encode()
    .unwrap();
    lying[FRAME_HEADER_LEN..FRAME_HEADER_LEN + 4].copy_from_slice(
        &u32::try_from(MAX_SIGNED_ROSTER_LEN + 1)
            .unwrap()
            .to_be_bytes(),
    );
    assert_eq!(Frame::decode(&lying), Err(FrameError::FieldTooLong));
}

#[test]
fn a_weak_or_invalid_public_key_in_a_pair_request_is_refused() {
    let mut identity = keys(9).public();
    // The identity point has small order: anyone could forge signatures for it.
    identity.ed25519_pub = [0; 32];
    identity.ed25519_pub[0] = 1;
    let mut bytes = Frame::PairRequest {
        identity: keys(9).public(),
        signature: [0; 64],
    }
    .encode()
    .unwrap();
    let key_at = FRAME_HEADER_LEN + 1 + 16 + 32;
    bytes[key_at..key_at + 32].copy_from_slice(&identity.ed25519_pub);
    assert_eq!(Frame::decode(&bytes), Err(FrameError::InvalidKey));
}

#[test]
fn random_bytes_never_panic_the_decoder() {
    use pawpost_crypto::rand_core::Rng;
    let mut rng = rng(42);
    for len in 0..2000usize {
        let mut bytes = vec![0u8; len % 200];
        rng.fill_bytes(&mut bytes);
        if len % 3 == 0 && bytes.len() >= 6 {
            // A plausible header, so that the body parsers run too.
            bytes[0] = PROTOCOL_VERSION;
            bytes[1] = FrameType::ALL[len % FrameType::ALL.len()] as u8;
            let body = u32::try_from(bytes.len() - 6).unwrap();
            bytes[2..6].copy_from_slice(&body.to_be_bytes());
        }
        let _ = Frame::decode(&bytes);
    }
}

#[test]
fn a_names_record_over_its_limit_is_neither_sent_nor_read() {
    use pawpost_protocol::MAX_NAMES_ENVELOPE_LEN;
    let fits = vec![0x11; MAX_NAMES_ENVELOPE_LEN];
    let bytes = Frame::Names { envelope: &fits }.encode().unwrap();
    assert_eq!(bytes[1], 0x8F);
    assert_eq!(Frame::decode(&bytes), Ok(Frame::Names { envelope: &fits }));
    let over = vec![0x11; MAX_NAMES_ENVELOPE_LEN + 1];
    assert_eq!(
        Frame::Names { envelope: &over }.encode(),
        Err(FrameError::FieldTooLong)
    );
    // The same frame built by hand: refused from its length field, before the bytes.
    let mut forged = vec![PROTOCOL_VERSION, 0x8F];
    let body = u32::try_from(4 + over.len()).unwrap();
    forged.extend_from_slice(&body.to_be_bytes());
    forged.extend_from_slice(&u32::try_from(over.len()).unwrap().to_be_bytes());
    forged.extend_from_slice(&over);
    assert_eq!(Frame::decode(&forged), Err(FrameError::FieldTooLong));
}
