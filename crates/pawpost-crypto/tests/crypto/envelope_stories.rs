//! Stories about messages: who can open them, and what tampering on the way is caught.

use pawpost_crypto::{
    open, seal, DecodeError, DeviceKeys, Envelope, EnvelopePrefix, MediaType, MessageId,
    MessageParams, OpenError, PublicIdentity, SealError, SignedRoster, StreamOpener, CHUNK_SIZE,
    HEADER_FIXED_LEN, MAX_PAYLOAD_LEN, MAX_RECIPIENTS, TAG_LEN,
};

use crate::fixtures::{device_id, household_id, other_household_id, rng, Household};

/// A recognisable stand-in for Ogg Opus audio, two and a bit chunks long.
pub fn voice(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from(i * 31 % 251).unwrap())
        .collect()
}

pub const VOICE_LEN: usize = 2 * CHUNK_SIZE + 100;

fn params<'a>(recipients: &'a [PublicIdentity]) -> MessageParams<'a> {
    MessageParams {
        message_id: MessageId([0x77; 16]),
        household_id: household_id(),
        created_at_ms: 1_767_225_600_000,
        media_type: MediaType::OggOpus,
        duration_ms: 4_250,
        recipients,
    }
}

fn grandmas_voice_message(h: &Household) -> Vec<u8> {
    let recipients = [h.toy.public(), h.mum.public()];
    seal(
        &mut rng(100),
        &h.grandma,
        &params(&recipients),
        &voice(VOICE_LEN),
    )
    .unwrap()
}

/// Offsets of each chunk in an envelope.
fn chunk_ranges(envelope: &[u8]) -> Vec<core::ops::Range<usize>> {
    let env = Envelope::parse(envelope).unwrap();
    let mut start = env.prefix().encoded_len();
    let mut ranges = Vec::new();
    let mut left = usize::try_from(env.header().payload_len).unwrap();
    for _ in 0..env.header().chunk_count() {
        let len = left.min(CHUNK_SIZE) + TAG_LEN;
        left -= len - TAG_LEN;
        ranges.push(start..start + len);
        start += len;
    }
    ranges
}

/// Opens an envelope the way a toy does: prefix first, then chunk by chunk as bytes arrive.
pub fn open_streaming(
    envelope: &[u8],
    me: &DeviceKeys,
    sender: &PublicIdentity,
) -> Result<Vec<u8>, OpenError> {
    let (prefix, mut rest) = EnvelopePrefix::parse(envelope)?;
    let mut opener = StreamOpener::new(&prefix, me, sender)?;
    let mut payload = Vec::new();
    let mut buf = vec![0u8; CHUNK_SIZE + TAG_LEN];
    while !rest.is_empty() {
        // Bytes after the last chunk are offered as one more chunk, which must be refused.
        let len = opener.next_chunk_len().unwrap_or(rest.len().min(buf.len()));
        if rest.len() < len {
            break;
        }
        buf[..len].copy_from_slice(&rest[..len]);
        rest = &rest[len..];
        payload.extend_from_slice(opener.open_chunk(&mut buf[..len])?);
    }
    opener.finish()?;
    Ok(payload)
}

#[test]
fn a_relatives_voice_message_opens_for_the_toy_and_for_another_member() {
    let h = Household::new();
    let envelope = grandmas_voice_message(&h);
    for reader in [&h.toy, &h.mum] {
        let opened = open(&envelope, reader, &h.grandma.public()).unwrap();
        assert_eq!(opened.payload, voice(VOICE_LEN));
        assert_eq!(opened.header.sender, h.grandma.device_id());
        assert_eq!(opened.header.media_type, MediaType::OggOpus);
        assert_eq!(opened.header.duration_ms, 4_250);
        assert_eq!(
            opened.header.recipients,
            vec![h.toy.device_id(), h.mum.device_id()]
        );
    }
}

#[test]
fn the_toy_opens_a_long_message_chunk_by_chunk_in_one_chunk_of_memory() {
    let h = Household::new();
    let envelope = grandmas_voice_message(&h);
    assert_eq!(
        open_streaming(&envelope, &h.toy, &h.grandma.public()).unwrap(),
        voice(VOICE_LEN)
    );
}

#[test]
fn an_outsider_who_is_not_a_recipient_cannot_open() {
    let h = Household::new();
    let envelope = grandmas_voice_message(&h);
    assert_eq!(
        open(&envelope, &h.outsider, &h.grandma.public()),
        Err(OpenError::NotARecipient)
    );
    // Even a household member who was not addressed cannot.
    assert_eq!(
        open(&envelope, &h.dad, &h.grandma.public()),
        Err(OpenError::NotARecipient)
    );
}

#[test]
fn an_outsider_who_relabels_his_key_slot_as_the_toys_still_cannot_read() {
    let h = Household::new();
    let recipients = [h.toy.public(), h.mum.public()];
    let envelope = seal(&mut rng(100), &h.grandma, &params(&recipients), b"secret").unwrap();
    // Pretend to be the toy: same device id, the outsider's private key.
    let impostor = DeviceKeys::from_secret_bytes(&{
        let mut secret = *h.outsider.to_secret_bytes();
        secret[1..17].copy_from_slice(h.toy.device_id().as_bytes());
        secret
    })
    .unwrap();
    assert_eq!(
        open(&envelope, &impostor, &h.grandma.public()),
        Err(OpenError::KeyUnwrap)
    );
}

#[test]
fn a_message_whose_last_chunk_was_dropped_is_refused() {
    let h = Household::new();
    let envelope = grandmas_voice_message(&h);
    let last = chunk_ranges(&envelope).pop().unwrap();
    let truncated = &envelope[..last.start];
    assert_eq!(
        open(truncated, &h.toy, &h.grandma.public()),
        Err(OpenError::Malformed(DecodeError::Truncated))
    );
    assert_eq!(
        open_streaming(truncated, &h.toy, &h.grandma.public()),
        Err(OpenError::MissingChunks)
    );
}

#[test]
fn a_message_with_an_extra_chunk_after_the_last_is_refused() {
    let h = Household::new();
    let mut envelope = grandmas_voice_message(&h);
    let last = chunk_ranges(&envelope).pop().unwrap();
    envelope.extend_from_within(last);
    assert_eq!(
        open(&envelope, &h.toy, &h.grandma.public()),
        Err(OpenError::Malformed(DecodeError::TrailingBytes))
    );
    assert_eq!(
        open_streaming(&envelope, &h.toy, &h.grandma.public()),
        Err(OpenError::ExtraChunk)
    );
}

#[test]
fn chunks_swapped_on_the_way_are_refused() {
    let h = Household::new();
    let envelope = grandmas_voice_message(&h);
    let chunks = chunk_ranges(&envelope);
    let mut swapped = envelope.clone();
    swapped[chunks[0].clone()].copy_from_slice(&envelope[chunks[1].clone()]);
    swapped[chunks[1].clone()].copy_from_slice(&envelope[chunks[0].clone()]);
    assert_eq!(
        open(&swapped, &h.toy, &h.grandma.public()),
        Err(OpenError::PayloadDigestMismatch)
    );
    assert_eq!(
        open_streaming(&swapped, &h.toy, &h.grandma.public()),
        Err(OpenError::ChunkAuthentication)
    );
}

#[test]
fn a_replayed_chunk_is_refused() {
    let h = Household::new();
    let envelope = grandmas_voice_message(&h);
    let chunks = chunk_ranges(&envelope);
    let mut replayed = envelope.clone();
    replayed[chunks[1].clone()].copy_from_slice(&envelope[chunks[0].clone()]);
    assert_eq!(
        open(&replayed, &h.toy, &h.grandma.public()),
        Err(OpenError::PayloadDigestMismatch)
    );
    assert_eq!(
        open_streaming(&replayed, &h.toy, &h.grandma.public()),
        Err(OpenError::ChunkAuthentication)
    );
}

#[test]
fn a_flipped_bit_in_a_chunk_is_refused() {
    let h = Household::new();
    let mut envelope = grandmas_voice_message(&h);
    let chunks = chunk_ranges(&envelope);
    envelope[chunks[1].start + 5] ^= 0x01;
    assert_eq!(
        open(&envelope, &h.toy, &h.grandma.public()),
        Err(OpenError::PayloadDigestMismatch)
    );
    assert_eq!(
        open_streaming(&envelope, &h.toy, &h.grandma.public()),
        Err(OpenError::ChunkAuthentication)
    );
}

#[test]
fn a_header_changed_on_the_way_is_refused() {
    let h = Household::new();
    let mut envelope = grandmas_voice_message(&h);
    // Make the message look a day older.
    envelope[57] ^= 0x01;
    assert_eq!(
        open(&envelope, &h.toy, &h.grandma.public()),
        Err(OpenError::BadSignature)
    );
    assert_eq!(
        open_streaming(&envelope, &h.toy, &h.grandma.public()),
        Err(OpenError::BadSignature)
    );
}

#[test]
fn a_wrapped_key_changed_on_the_way_is_refused() {
    let h = Household::new();
    let mut envelope = grandmas_voice_message(&h);
    let prefix_start_of_keys = HEADER_FIXED_LEN + 2 * 16 + 32 + 64;
    envelope[prefix_start_of_keys + 40] ^= 0x80;
    assert_eq!(
        open(&envelope, &h.toy, &h.grandma.public()),
        Err(OpenError::KeyUnwrap)
    );
    // Mum's key slot was untouched, so she still reads it.
    assert!(open(&envelope, &h.mum, &h.grandma.public()).is_ok());
}

#[test]
fn a_message_signed_by_an_outsider_in_grandmas_name_is_refused() {
    let h = Household::new();
    let recipients = [h.toy.public()];
    // The outsider seals with a device id equal to grandma's but his own signing key.
    let forger = DeviceKeys::from_secret_bytes(&{
        let mut secret = *h.outsider.to_secret_bytes();
        secret[1..17].copy_from_slice(h.grandma.device_id().as_bytes());
        secret
    })
    .unwrap();
    let envelope = seal(&mut rng(7), &forger, &params(&recipients), b"hello").unwrap();
    assert_eq!(
        open(&envelope, &h.toy, &h.grandma.public()),
        Err(OpenError::BadSignature)
    );
}

#[test]
fn a_message_from_someone_else_than_expected_is_refused() {
    let h = Household::new();
    let envelope = grandmas_voice_message(&h);
    assert_eq!(
        open(&envelope, &h.toy, &h.mum.public()),
        Err(OpenError::WrongSender)
    );
}

#[test]
fn the_server_checks_sender_and_size_from_the_first_bytes_of_an_upload() {
    let h = Household::new();
    let v1 = SignedRoster::sign(&h.genesis(), &h.mum).unwrap();
    let v2 = SignedRoster::sign(&h.with_relatives(v1.unverified_roster()), &h.mum).unwrap();
    let roster = v2.verify_successor(&v1).unwrap();
    let envelope = grandmas_voice_message(&h);

    let need = EnvelopePrefix::required_len(&envelope[..HEADER_FIXED_LEN]).unwrap();
    let (prefix, rest) = EnvelopePrefix::parse(&envelope[..need]).unwrap();
    assert!(rest.is_empty());
    assert_eq!(
        prefix.verify_sender_in_roster(roster),
        Ok(h.grandma.public())
    );
    assert_eq!(
        prefix.header().recipients,
        vec![h.toy.device_id(), h.mum.device_id()]
    );
    assert_eq!(prefix.header().payload_len, VOICE_LEN as u64);

    // The chunks stream into storage in arbitrary pieces; the digest is checked at the end.
    let mut verifier = prefix.payload_verifier();
    for piece in envelope[need..].chunks(1000) {
        verifier.update(piece).unwrap();
    }
    assert_eq!(verifier.finish(), Ok(()));

    let mut cut = prefix.payload_verifier();
    cut.update(&envelope[need..envelope.len() - 1]).unwrap();
    assert_eq!(
        cut.finish(),
        Err(OpenError::Malformed(DecodeError::Truncated))
    );
}

#[test]
fn the_server_refuses_an_upload_from_a_blocked_relative_or_an_outsider() {
    let h = Household::new();
    let v1 = SignedRoster::sign(&h.genesis(), &h.mum).unwrap();
    let v2 = SignedRoster::sign(&h.with_relatives(v1.unverified_roster()), &h.mum).unwrap();
    let v3 = SignedRoster::sign(&h.uncle_blocked(v2.unverified_roster()), &h.mum).unwrap();
    let roster = v3.verify_successor(&v2).unwrap();
    let recipients = [h.toy.public()];
    for stranger in [&h.uncle, &h.outsider] {
        let envelope = seal(&mut rng(9), stranger, &params(&recipients), b"hi").unwrap();
        let (prefix, _) = EnvelopePrefix::parse(&envelope).unwrap();
        assert_eq!(
            prefix.verify_sender_in_roster(roster),
            Err(OpenError::SenderNotApproved)
        );
    }
}

#[test]
fn a_message_for_another_household_is_refused() {
    let h = Household::new();
    let v1 = SignedRoster::sign(&h.genesis(), &h.mum).unwrap();
    let roster = v1.verify_genesis().unwrap();
    let recipients = [h.toy.public()];
    let mut p = params(&recipients);
    p.household_id = other_household_id();
    let envelope = seal(&mut rng(9), &h.mum, &p, b"hi").unwrap();
    let (prefix, _) = EnvelopePrefix::parse(&envelope).unwrap();
    assert_eq!(
        prefix.verify_sender_in_roster(roster),
        Err(OpenError::WrongHousehold)
    );
}

#[test]
fn messages_of_every_size_around_the_chunk_boundary_open() {
    let h = Household::new();
    let recipients = [h.toy.public()];
    for len in [
        0,
        1,
        CHUNK_SIZE - 1,
        CHUNK_SIZE,
        CHUNK_SIZE + 1,
        2 * CHUNK_SIZE,
    ] {
        let envelope = seal(&mut rng(3), &h.mum, &params(&recipients), &voice(len)).unwrap();
        assert_eq!(
            open(&envelope, &h.toy, &h.mum.public()).unwrap().payload,
            voice(len)
        );
        assert_eq!(
            open_streaming(&envelope, &h.toy, &h.mum.public()).unwrap(),
            voice(len)
        );
    }
}

#[test]
fn a_chunk_of_the_wrong_size_is_refused_before_decrypting() {
    let h = Household::new();
    let envelope = grandmas_voice_message(&h);
    let (prefix, rest) = EnvelopePrefix::parse(&envelope).unwrap();
    let mut opener = StreamOpener::new(&prefix, &h.toy, &h.grandma.public()).unwrap();
    let mut short = rest[..100].to_vec();
    assert_eq!(opener.open_chunk(&mut short), Err(OpenError::ChunkLength));
}

#[test]
fn sealing_refuses_messages_outside_the_limits() {
    let h = Household::new();
    assert_eq!(
        seal(&mut rng(1), &h.mum, &params(&[]), b"x"),
        Err(SealError::NoRecipients)
    );
    let twice = [h.toy.public(), h.toy.public()];
    assert_eq!(
        seal(&mut rng(1), &h.mum, &params(&twice), b"x"),
        Err(SealError::DuplicateRecipient)
    );
    let crowd: Vec<PublicIdentity> = (0..=u16::try_from(MAX_RECIPIENTS).unwrap())
        .map(|n| PublicIdentity {
            device_id: pawpost_crypto::DeviceId((u128::from(n)).to_be_bytes()),
            ..h.toy.public()
        })
        .collect();
    assert_eq!(
        seal(&mut rng(1), &h.mum, &params(&crowd), b"x"),
        Err(SealError::TooManyRecipients)
    );
    let huge = vec![0u8; usize::try_from(MAX_PAYLOAD_LEN).unwrap() + 1];
    let one = [h.toy.public()];
    assert_eq!(
        seal(&mut rng(1), &h.mum, &params(&one), &huge),
        Err(SealError::PayloadTooLarge)
    );
}

#[test]
fn a_header_announcing_too_many_recipients_is_refused_before_they_are_read() {
    let h = Household::new();
    let mut envelope = grandmas_voice_message(&h);
    envelope[70..72].copy_from_slice(&(u16::try_from(MAX_RECIPIENTS).unwrap() + 1).to_be_bytes());
    assert_eq!(
        EnvelopePrefix::required_len(&envelope),
        Err(DecodeError::TooManyRecipients)
    );
    assert_eq!(
        Envelope::parse(&envelope).err(),
        Some(DecodeError::TooManyRecipients)
    );
}

#[test]
fn a_future_format_version_is_refused() {
    let h = Household::new();
    let mut envelope = grandmas_voice_message(&h);
    envelope[0] = 2;
    assert_eq!(
        open(&envelope, &h.toy, &h.grandma.public()),
        Err(OpenError::Malformed(DecodeError::UnsupportedVersion))
    );
}

#[test]
fn a_device_keeps_its_identity_across_restarts() {
    let h = Household::new();
    let stored = h.toy.to_secret_bytes();
    let restored = DeviceKeys::from_secret_bytes(stored.as_slice()).unwrap();
    assert_eq!(restored.public(), h.toy.public());
    let public = PublicIdentity::decode(&h.toy.public().encode()).unwrap();
    assert_eq!(public, h.toy.public());
    assert_eq!(restored.device_id(), device_id(5));
}

#[test]
fn parents_compare_thirty_digits_that_change_with_any_key() {
    let h = Household::new();
    let shown = h.toy.public().fingerprint().to_string();
    assert_eq!(shown.len(), 6 * 5 + 5);
    assert!(shown
        .split(' ')
        .all(|g| g.len() == 5 && g.bytes().all(|b| b.is_ascii_digit())));
    let mut swapped = h.toy.public();
    swapped.ed25519_pub = h.outsider.public().ed25519_pub;
    assert_ne!(swapped.fingerprint(), h.toy.public().fingerprint());
}
