//! The shared test vectors in `test-vectors/`.
//!
//! Every run rebuilds the vectors from seeded generators and requires them to equal the
//! committed files byte for byte, so any change to the format shows up here. After an
//! intended change, rewrite them with
//! `PAWPOST_REGENERATE_VECTORS=1 cargo test -p pawpost-crypto --test crypto vectors`.
//! Every run also checks the committed files on their own terms: positive cases open and
//! re-derive with an independent implementation of the spec, negative cases fail with the
//! named error.

use std::path::PathBuf;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::Aes256Gcm;
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use hkdf::Hkdf;
use hpke::{Deserializable, OpModeR};
use pawpost_crypto::rand_core::Rng;
use pawpost_crypto::{
    certificate_input, open, seal, sign_certificate, verify_certificate, AccountId, DeviceId,
    DeviceKeys, EnvelopePrefix, LinkCode, MediaType, Member, MemberStatus, MessageId,
    MessageParams, OpenError, PublicIdentity, RecoveryCode, RecoveryKey, Role, Roster, RosterError,
    SignedRoster, StreamOpener, CHUNK_SIZE, HEADER_FIXED_LEN, MAX_CHUNK_COUNT, MAX_MEMBERS,
    MAX_PAYLOAD_LEN, MAX_RECIPIENTS, MAX_RETENTION_DAYS, MEMBER_LEN, RECOVERY_CODE_LEN, TAG_LEN,
    WRAPPED_KEY_LEN,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::fixtures::{account_id, household_id, other_household_id, rng, Household};

const REGENERATE_VAR: &str = "PAWPOST_REGENERATE_VECTORS";
const DEVICE_NAMES: [&str; 6] = ["mum", "dad", "grandma", "uncle", "toy", "outsider"];

pub fn repo_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../test-vectors")
        .join(name)
}

pub fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap_or_else(|e| panic!("bad hex {s:.20}...: {e}"))
}

fn hx(bytes: impl AsRef<[u8]>) -> Value {
    Value::String(hex::encode(bytes))
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("missing string field {key}"))
}

fn b(v: &Value, key: &str) -> Vec<u8> {
    unhex(s(v, key))
}

fn arr<const N: usize>(v: &Value, key: &str) -> [u8; N] {
    b(v, key)
        .try_into()
        .unwrap_or_else(|_| panic!("{key} is not {N} bytes"))
}

fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("missing number field {key}"))
}

/// Compares a freshly built vector file with the committed one, or rewrites it on request,
/// then returns the file's content for the checks that follow.
fn committed(name: &str, built: Value) -> Value {
    let text = serde_json::to_string_pretty(&built).unwrap() + "\n";
    let path = repo_file(name);
    if std::env::var(REGENERATE_VAR).as_deref() == Ok("1") {
        std::fs::write(&path, &text).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with {REGENERATE_VAR}=1", path.display()));
    assert!(
        on_disk == text,
        "{name} no longer matches what this code produces: the wire format changed. \
         If that is intended, regenerate with {REGENERATE_VAR}=1 and bump the format version."
    );
    serde_json::from_str(&on_disk).unwrap()
}

fn devices_json(h: &Household) -> Value {
    Value::Array(
        DEVICE_NAMES
            .iter()
            .map(|name| {
                let keys = h.by_name(name);
                let secret = keys.to_secret_bytes();
                let public = keys.public();
                json!({
                    "name": name,
                    "device_id": hx(keys.device_id().as_bytes()),
                    "x25519_secret": hx(&secret[17..49]),
                    "ed25519_seed": hx(&secret[49..81]),
                    "x25519_pub": hx(public.x25519_pub),
                    "ed25519_pub": hx(public.ed25519_pub),
                })
            })
            .collect(),
    )
}

/// Device keys rebuilt from a vector file's secrets alone.
fn device_from(file: &Value, name: &str) -> DeviceKeys {
    let d = file["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| s(d, "name") == name)
        .unwrap_or_else(|| panic!("no device {name}"));
    let keys = DeviceKeys::from_secrets(
        DeviceId(arr(d, "device_id")),
        &arr(d, "x25519_secret"),
        &arr(d, "ed25519_seed"),
    );
    assert_eq!(keys.public().x25519_pub, arr(d, "x25519_pub"));
    assert_eq!(keys.public().ed25519_pub, arr(d, "ed25519_pub"));
    keys
}

// ---------------------------------------------------------------- identity

fn build_identity() -> Value {
    let h = Household::new();
    let mut devices = devices_json(&h);
    for d in devices.as_array_mut().unwrap() {
        let keys = h.by_name(s(d, "name"));
        d["public_identity"] = hx(keys.public().encode());
        d["device_secret"] = hx(keys.to_secret_bytes().as_slice());
        d["fingerprint"] = Value::String(keys.public().fingerprint().to_string());
    }
    let good = h.toy.public().encode();
    let mut wrong_version = good;
    wrong_version[0] = 2;
    let mut small_order = good;
    // The Edwards identity point (y = 1): signatures for it are trivially forged.
    small_order[49..81].copy_from_slice(&{
        let mut y = [0u8; 32];
        y[0] = 1;
        y
    });
    let mut not_on_curve = good;
    not_on_curve[49..81].copy_from_slice(&first_non_point());
    let mut appended = good.to_vec();
    appended.push(0);
    json!({
        "description": "Device identities: secrets, public keys, the 81-byte public identity \
            encoding, the 81-byte device secret encoding and the fingerprint. See docs/ENVELOPE.md.",
        "fingerprint_domain": "pawpost/v1/fingerprint",
        "devices": devices,
        "invalid_public_identities": [
            {"name": "unknown format version", "bytes": hx(wrong_version), "expected_error": "unsupported_version"},
            {"name": "one byte short", "bytes": hx(&good[..80]), "expected_error": "truncated"},
            {"name": "one byte appended", "bytes": hx(appended), "expected_error": "trailing_bytes"},
            {"name": "ed25519 key of small order (identity point)", "bytes": hx(small_order), "expected_error": "invalid_key"},
            {"name": "ed25519 key that is not a curve point", "bytes": hx(not_on_curve), "expected_error": "invalid_key"},
        ],
    })
}

/// The smallest `y` (as `[n, 0, ..., 0]`) that does not decode to an Edwards point.
fn first_non_point() -> [u8; 32] {
    (2u8..=255)
        .map(|n| {
            let mut y = [0u8; 32];
            y[0] = n;
            y
        })
        .find(|y| VerifyingKey::from_bytes(y).is_err())
        .expect("some small y is off the curve")
}

#[test]
fn identity_vectors_hold() {
    let file = committed("identity-v1.json", build_identity());
    for d in file["devices"].as_array().unwrap() {
        let keys = device_from(&file, s(d, "name"));
        let public = keys.public();
        assert_eq!(public.encode().to_vec(), b(d, "public_identity"));
        assert_eq!(PublicIdentity::decode(&b(d, "public_identity")), Ok(public));
        assert_eq!(keys.to_secret_bytes().to_vec(), b(d, "device_secret"));
        assert_eq!(public.fingerprint().to_string(), s(d, "fingerprint"));
        assert_eq!(spec_fingerprint(&public), s(d, "fingerprint"));
    }
    for case in file["invalid_public_identities"].as_array().unwrap() {
        let err = PublicIdentity::decode(&b(case, "bytes")).unwrap_err();
        assert_eq!(err.code(), s(case, "expected_error"), "{}", s(case, "name"));
    }
}

fn build_safety_numbers() -> Value {
    let h = Household::new();
    let mut cases: Vec<Value> = DEVICE_NAMES
        .iter()
        .map(|name| {
            let public = h.by_name(name).public();
            json!({
                "name": name,
                "x25519_pub": hx(public.x25519_pub),
                "ed25519_pub": hx(public.ed25519_pub),
                "safety_number": public.safety_number().to_string(),
            })
        })
        .collect();
    // Keys whose number starts with zeros: the digits are kept, never dropped.
    let leading_zero = (0u8..=255)
        .map(|n| ([n; 32], [n.wrapping_add(1); 32]))
        .find(|(x, e)| pawpost_crypto::SafetyNumber::of(x, e).0 < 10_000)
        .expect("a number under 10000 among 256 key pairs");
    cases.push(json!({
        "name": "leading zeros",
        "x25519_pub": hx(leading_zero.0),
        "ed25519_pub": hx(leading_zero.1),
        "safety_number": pawpost_crypto::SafetyNumber::of(&leading_zero.0, &leading_zero.1).to_string(),
    }));
    json!({
        "description": "Safety numbers: the six digits a toy speaks and a parent's app shows for the \
            same public keys, written as two groups of three. See docs/ENVELOPE.md, \"Safety number\".",
        "safety_number_domain": "pawpost/v1/safety-number",
        "cases": cases,
    })
}

#[test]
fn safety_number_vectors_hold() {
    let file = committed("safety-number-v1.json", build_safety_numbers());
    for case in file["cases"].as_array().unwrap() {
        let (x, e) = (
            arr::<32>(case, "x25519_pub"),
            arr::<32>(case, "ed25519_pub"),
        );
        let number = pawpost_crypto::SafetyNumber::of(&x, &e);
        assert_eq!(
            number.to_string(),
            s(case, "safety_number"),
            "{}",
            s(case, "name")
        );
        // Independently, as the document says.
        let mut input = b"pawpost/v1/safety-number".to_vec();
        input.extend_from_slice(&x);
        input.extend_from_slice(&e);
        let d = Sha256::digest(&input);
        let n = d[..5].iter().fold(0u64, |acc, b| acc * 256 + u64::from(*b)) % 1_000_000;
        assert_eq!(
            format!("{:03} {:03}", n / 1000, n % 1000),
            s(case, "safety_number")
        );
        let digits: String = number.digits().iter().map(u8::to_string).collect();
        assert_eq!(digits, s(case, "safety_number").replace(' ', ""));
    }
}

/// The fingerprint as docs/ENVELOPE.md describes it, written out independently.
fn spec_fingerprint(p: &PublicIdentity) -> String {
    let mut input = b"pawpost/v1/fingerprint".to_vec();
    input.extend_from_slice(&p.x25519_pub);
    input.extend_from_slice(&p.ed25519_pub);
    let d = Sha256::digest(&input);
    (0..6)
        .map(|i| {
            let mut n = 0u64;
            for byte in &d[5 * i..5 * i + 5] {
                n = n * 256 + u64::from(*byte);
            }
            format!("{:05}", n % 100_000)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------- envelope spec

/// `HKDF-SHA256(salt = message id, ikm = content key, info = "pawpost/v1/payload")`.
fn spec_payload_key(content_key: &[u8], message_id: &[u8]) -> ([u8; 32], [u8; 7]) {
    let mut okm = [0u8; 39];
    Hkdf::<Sha256>::new(Some(message_id), content_key)
        .expand(b"pawpost/v1/payload", &mut okm)
        .unwrap();
    (okm[..32].try_into().unwrap(), okm[32..].try_into().unwrap())
}

fn spec_nonce(prefix: &[u8; 7], index: u32, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..7].copy_from_slice(prefix);
    n[7..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// Seals the payload's chunks; `flag` decides each chunk's last flag, so that a vector can
/// be built with a wrong one.
fn spec_chunks(
    key: &[u8; 32],
    prefix: &[u8; 7],
    header: &[u8],
    payload: &[u8],
    flag: impl Fn(u32, u32) -> bool,
) -> Vec<u8> {
    let aead = Aes256Gcm::new_from_slice(key).unwrap();
    let pieces: Vec<&[u8]> = if payload.is_empty() {
        vec![&[][..]]
    } else {
        payload.chunks(CHUNK_SIZE).collect()
    };
    let count = u32::try_from(pieces.len()).unwrap();
    let mut out = Vec::new();
    for (i, piece) in (0..count).zip(pieces) {
        let mut buf = piece.to_vec();
        let nonce = spec_nonce(prefix, i, flag(i, count));
        let tag = aead
            .encrypt_inout_detached(&nonce.into(), header, buf.as_mut_slice().into())
            .unwrap();
        out.extend_from_slice(&buf);
        out.extend_from_slice(&tag);
    }
    out
}

fn spec_signature_input(header: &[u8], digest: &[u8]) -> Vec<u8> {
    let mut input = b"pawpost/v1/envelope-signature".to_vec();
    input.extend_from_slice(header);
    input.extend_from_slice(digest);
    input
}

fn spec_hpke_info(header: &[u8]) -> Vec<u8> {
    let mut info = b"pawpost/v1/content-key".to_vec();
    info.extend_from_slice(&Sha256::digest(header));
    info
}

/// Header, digest, signature, wrapped keys and chunks of an envelope, split apart.
struct Parts {
    header: Vec<u8>,
    digest: Vec<u8>,
    signature: Vec<u8>,
    wrapped: Vec<Vec<u8>>,
    chunks: Vec<u8>,
}

fn split(envelope: &[u8]) -> Parts {
    let n = usize::from(u16::from_be_bytes([envelope[70], envelope[71]]));
    let h_end = HEADER_FIXED_LEN + 16 * n;
    let keys = h_end + 96;
    let end = keys + n * WRAPPED_KEY_LEN;
    Parts {
        header: envelope[..h_end].to_vec(),
        digest: envelope[h_end..h_end + 32].to_vec(),
        signature: envelope[h_end + 32..keys].to_vec(),
        wrapped: envelope[keys..end]
            .chunks(WRAPPED_KEY_LEN)
            .map(<[u8]>::to_vec)
            .collect(),
        chunks: envelope[end..].to_vec(),
    }
}

fn join(p: &Parts) -> Vec<u8> {
    let mut out = p.header.clone();
    out.extend_from_slice(&p.digest);
    out.extend_from_slice(&p.signature);
    for w in &p.wrapped {
        out.extend_from_slice(w);
    }
    out.extend_from_slice(&p.chunks);
    out
}

fn chunk_lens(payload_len: usize) -> Vec<usize> {
    if payload_len == 0 {
        return vec![TAG_LEN];
    }
    (0..payload_len.div_ceil(CHUNK_SIZE))
        .map(|i| (payload_len - i * CHUNK_SIZE).min(CHUNK_SIZE) + TAG_LEN)
        .collect()
}

// ---------------------------------------------------------------- envelope vectors

struct MessageCase {
    name: &'static str,
    sender: &'static str,
    recipients: &'static [&'static str],
    seed: u8,
    message_id: [u8; 16],
    media_type: MediaType,
    created_at_ms: u64,
    duration_ms: u32,
    payload: Vec<u8>,
}

fn message_cases() -> Vec<MessageCase> {
    vec![
        MessageCase {
            name: "grandma's voice message to the toy and mum (three chunks)",
            sender: "grandma",
            recipients: &["toy", "mum"],
            seed: 100,
            message_id: uuid_like(0x01),
            media_type: MediaType::OggOpus,
            created_at_ms: 1_767_225_600_000,
            duration_ms: 4_250,
            payload: crate::envelope_stories::voice(crate::envelope_stories::VOICE_LEN),
        },
        MessageCase {
            name: "mum tells the toy the child's name (one short chunk)",
            sender: "mum",
            recipients: &["toy"],
            seed: 101,
            message_id: uuid_like(0x02),
            media_type: MediaType::Text,
            created_at_ms: 1_767_225_660_000,
            duration_ms: 0,
            payload: "Ada".as_bytes().to_vec(),
        },
        MessageCase {
            name: "the toy sends an empty JSON payload to mum, dad and grandma (one empty chunk)",
            sender: "toy",
            recipients: &["mum", "dad", "grandma"],
            seed: 102,
            message_id: uuid_like(0x03),
            media_type: MediaType::Json,
            created_at_ms: 1_767_225_720_000,
            duration_ms: 0,
            payload: Vec::new(),
        },
    ]
}

fn uuid_like(n: u8) -> [u8; 16] {
    let mut id = [0x3e; 16];
    id[6] = 0x40;
    id[8] = 0x80;
    id[15] = n;
    id
}

fn seal_case(h: &Household, c: &MessageCase) -> Vec<u8> {
    let recipients: Vec<PublicIdentity> =
        c.recipients.iter().map(|r| h.by_name(r).public()).collect();
    let params = MessageParams {
        message_id: MessageId(c.message_id),
        household_id: household_id(),
        created_at_ms: c.created_at_ms,
        media_type: c.media_type,
        duration_ms: c.duration_ms,
        recipients: &recipients,
    };
    seal(&mut rng(c.seed), h.by_name(c.sender), &params, &c.payload).unwrap()
}

fn message_json(h: &Household, c: &MessageCase) -> Value {
    let envelope = seal_case(h, c);
    let parts = split(&envelope);
    // The same seeded generator, drawn in the documented order.
    let mut draws = rng(c.seed);
    let mut content_key = [0u8; 32];
    draws.fill_bytes(&mut content_key);
    let ephemeral: Vec<Value> = c
        .recipients
        .iter()
        .map(|_| {
            let mut ikm = [0u8; 32];
            draws.fill_bytes(&mut ikm);
            hx(ikm)
        })
        .collect();
    let (key, prefix) = spec_payload_key(&content_key, &c.message_id);
    let lens = chunk_lens(c.payload.len());
    let nonces: Vec<Value> = (0..u32::try_from(lens.len()).unwrap())
        .map(|i| hx(spec_nonce(&prefix, i, i as usize + 1 == lens.len())))
        .collect();
    let wrapped: Vec<Value> = c
        .recipients
        .iter()
        .zip(&parts.wrapped)
        .map(|(r, w)| {
            json!({
                "recipient": r,
                "aad": hx(h.by_name(r).device_id().as_bytes()),
                "enc": hx(&w[..32]),
                "sealed_key": hx(&w[32..]),
            })
        })
        .collect();
    json!({
        "name": c.name,
        "sender": c.sender,
        "recipients": c.recipients,
        "message_id": hx(c.message_id),
        "household_id": hx(household_id().as_bytes()),
        "created_at_ms": c.created_at_ms,
        "media_type": c.media_type as u8,
        "duration_ms": c.duration_ms,
        "payload": hx(&c.payload),
        "content_key": hx(content_key),
        "hpke_ephemeral_ikm": ephemeral,
        "header": hx(&parts.header),
        "payload_key": hx(key),
        "nonce_prefix": hx(prefix),
        "chunk_nonces": nonces,
        "chunk_lengths": lens,
        "payload_digest": hx(&parts.digest),
        "signature_input": hx(spec_signature_input(&parts.header, &parts.digest)),
        "signature": hx(&parts.signature),
        "hpke_info": hx(spec_hpke_info(&parts.header)),
        "wrapped_keys": wrapped,
        "envelope": hx(&envelope),
    })
}

struct Negative {
    name: &'static str,
    description: &'static str,
    opener: &'static str,
    sender: &'static str,
    envelope: Vec<u8>,
    expected_error: &'static str,
    expected_stream_error: &'static str,
}

fn negative_cases(h: &Household) -> Vec<Negative> {
    let cases = message_cases();
    let voice = seal_case(h, &cases[0]);
    let p = split(&voice);
    let lens = chunk_lens(cases[0].payload.len());
    let chunk = |i: usize| {
        let start: usize = lens[..i].iter().sum();
        p.chunks[start..start + lens[i]].to_vec()
    };
    let with_chunks = |chunks: Vec<u8>| {
        join(&Parts {
            chunks,
            ..clone_parts(&p)
        })
    };

    // Cases that touch no chunk use the short message to keep the file small.
    let short = seal_case(h, &cases[1]);
    let mut header_flip = short.clone();
    header_flip[57] ^= 0x01;
    let mut version = short.clone();
    version[0] = 2;
    let mut too_many = short.clone();
    too_many[70..72].copy_from_slice(&(u16::try_from(MAX_RECIPIENTS).unwrap() + 1).to_be_bytes());
    let mut chunk_flip = p.chunks.clone();
    chunk_flip[lens[0] + 5] ^= 0x01;
    let mut key_flip = split(&short);
    key_flip.wrapped[0][40] ^= 0x80;
    let dropped = p.chunks[..p.chunks.len() - lens[2]].to_vec();
    let mut extra = p.chunks.clone();
    extra.extend_from_slice(&chunk(2));
    let swapped = [chunk(1), chunk(0), chunk(2)].concat();
    let replayed = [chunk(0), chunk(0), chunk(2)].concat();

    vec![
        Negative {
            name: "header_bit_flip",
            description: "one bit of created_at_ms flipped (offset 57)",
            opener: "toy",
            sender: "mum",
            envelope: header_flip,
            expected_error: "bad_signature",
            expected_stream_error: "bad_signature",
        },
        Negative {
            name: "unknown_format_version",
            description: "first byte set to 2",
            opener: "toy",
            sender: "mum",
            envelope: version,
            expected_error: "unsupported_version",
            expected_stream_error: "unsupported_version",
        },
        Negative {
            name: "too_many_recipients",
            description: "recipient count set to MAX_RECIPIENTS + 1",
            opener: "toy",
            sender: "mum",
            envelope: too_many,
            expected_error: "too_many_recipients",
            expected_stream_error: "too_many_recipients",
        },
        Negative {
            name: "chunk_bit_flip",
            description: "one bit flipped in the second chunk",
            opener: "toy",
            sender: "grandma",
            envelope: with_chunks(chunk_flip),
            expected_error: "payload_digest_mismatch",
            expected_stream_error: "chunk_authentication",
        },
        Negative {
            name: "wrapped_key_bit_flip",
            description: "one bit flipped in the toy's sealed content key",
            opener: "toy",
            sender: "mum",
            envelope: join(&key_flip),
            expected_error: "key_unwrap",
            expected_stream_error: "key_unwrap",
        },
        Negative {
            name: "wrong_recipient",
            description: "an untouched envelope opened by a device that is not a recipient",
            opener: "outsider",
            sender: "mum",
            envelope: short.clone(),
            expected_error: "not_a_recipient",
            expected_stream_error: "not_a_recipient",
        },
        Negative {
            name: "wrong_sender",
            description: "an untouched envelope checked against another sender identity",
            opener: "toy",
            sender: "grandma",
            envelope: short,
            expected_error: "wrong_sender",
            expected_stream_error: "wrong_sender",
        },
        Negative {
            name: "truncated_last_chunk_dropped",
            description: "the last chunk removed",
            opener: "toy",
            sender: "grandma",
            envelope: with_chunks(dropped),
            expected_error: "truncated",
            expected_stream_error: "missing_chunks",
        },
        Negative {
            name: "extra_chunk_appended",
            description: "a copy of the last chunk appended",
            opener: "toy",
            sender: "grandma",
            envelope: with_chunks(extra),
            expected_error: "trailing_bytes",
            expected_stream_error: "extra_chunk",
        },
        Negative {
            name: "reordered_chunks",
            description: "chunks 0 and 1 swapped",
            opener: "toy",
            sender: "grandma",
            envelope: with_chunks(swapped),
            expected_error: "payload_digest_mismatch",
            expected_stream_error: "chunk_authentication",
        },
        Negative {
            name: "replayed_chunk",
            description: "chunk 0 sent again in place of chunk 1",
            opener: "toy",
            sender: "grandma",
            envelope: with_chunks(replayed),
            expected_error: "payload_digest_mismatch",
            expected_stream_error: "chunk_authentication",
        },
        Negative {
            name: "last_chunk_not_flagged",
            description: "validly signed by grandma, but the final chunk sealed with last flag 0: \
                a stream that looks unfinished must not open",
            opener: "toy",
            sender: "grandma",
            envelope: resealed(h, &cases[0], |_, _| false),
            expected_error: "chunk_authentication",
            expected_stream_error: "chunk_authentication",
        },
        Negative {
            name: "middle_chunk_flagged_last",
            description: "validly signed by grandma, but chunk 1 of 3 sealed with last flag 1",
            opener: "toy",
            sender: "grandma",
            envelope: resealed(h, &cases[0], |i, n| i + 1 == n || i == 1),
            expected_error: "chunk_authentication",
            expected_stream_error: "chunk_authentication",
        },
        Negative {
            name: "forged_signature",
            description:
                "sealed by the outsider under grandma's device id with his own signing key",
            opener: "toy",
            sender: "grandma",
            envelope: forged(h),
            expected_error: "bad_signature",
            expected_stream_error: "bad_signature",
        },
    ]
}

fn clone_parts(p: &Parts) -> Parts {
    Parts {
        header: p.header.clone(),
        digest: p.digest.clone(),
        signature: p.signature.clone(),
        wrapped: p.wrapped.clone(),
        chunks: p.chunks.clone(),
    }
}

/// The case's envelope with its chunks resealed under `flag` and signed again by the real
/// sender: only the last-chunk flag is wrong.
fn resealed(h: &Household, c: &MessageCase, flag: impl Fn(u32, u32) -> bool) -> Vec<u8> {
    let mut p = split(&seal_case(h, c));
    let mut content_key = [0u8; 32];
    rng(c.seed).fill_bytes(&mut content_key);
    let (key, prefix) = spec_payload_key(&content_key, &c.message_id);
    p.chunks = spec_chunks(&key, &prefix, &p.header, &c.payload, flag);
    p.digest = Sha256::digest(&p.chunks).to_vec();
    let secret = h.by_name(c.sender).to_secret_bytes();
    let signer = SigningKey::from_bytes(&secret[49..81].try_into().unwrap());
    p.signature = signer
        .sign(&spec_signature_input(&p.header, &p.digest))
        .to_bytes()
        .to_vec();
    join(&p)
}

fn forged(h: &Household) -> Vec<u8> {
    let mut secret = *h.outsider.to_secret_bytes();
    secret[1..17].copy_from_slice(h.grandma.device_id().as_bytes());
    let forger = DeviceKeys::from_secret_bytes(&secret).unwrap();
    let recipients = [h.toy.public()];
    let params = MessageParams {
        message_id: MessageId(uuid_like(0x04)),
        household_id: household_id(),
        created_at_ms: 1_767_225_780_000,
        media_type: MediaType::OggOpus,
        duration_ms: 1_000,
        recipients: &recipients,
    };
    seal(&mut rng(103), &forger, &params, b"not really grandma").unwrap()
}

fn build_envelope() -> Value {
    let h = Household::new();
    let messages: Vec<Value> = message_cases()
        .iter()
        .map(|c| message_json(&h, c))
        .collect();
    let negatives: Vec<Value> = negative_cases(&h)
        .into_iter()
        .map(|n| {
            json!({
                "name": n.name,
                "description": n.description,
                "opener": n.opener,
                "sender": n.sender,
                "envelope": hx(n.envelope),
                "expected_error": n.expected_error,
                "expected_stream_error": n.expected_stream_error,
            })
        })
        .collect();
    json!({
        "description": "Envelope v1. For each message: inputs, the content key and HPKE ephemeral \
            IKMs drawn by the sender, every intermediate value and the envelope. Invalid envelopes: \
            expected_error is what a one-shot open returns; expected_stream_error is what a \
            streaming opener returns when it parses the prefix, feeds each chunk with the length \
            the header implies, feeds any bytes left after the last chunk as one more chunk, and \
            calls finish when the bytes end. See docs/ENVELOPE.md.",
        "constants": {
            "format_version": 1,
            "chunk_size": CHUNK_SIZE,
            "tag_len": TAG_LEN,
            "header_fixed_len": HEADER_FIXED_LEN,
            "wrapped_key_len": WRAPPED_KEY_LEN,
            "max_recipients": MAX_RECIPIENTS,
            "max_payload_len": MAX_PAYLOAD_LEN,
            "max_chunk_count": MAX_CHUNK_COUNT,
        },
        "domains": {
            "signature": "pawpost/v1/envelope-signature",
            "hpke_info": "pawpost/v1/content-key",
            "payload_key": "pawpost/v1/payload",
        },
        "hpke_suite": {"mode": 0, "kem_id": 32, "kdf_id": 1, "aead_id": 2},
        "devices": devices_json(&h),
        "messages": messages,
        "invalid_envelopes": negatives,
    })
}

fn stream_open(
    envelope: &[u8],
    me: &DeviceKeys,
    sender: &PublicIdentity,
) -> Result<Vec<u8>, OpenError> {
    crate::envelope_stories::open_streaming(envelope, me, sender)
}

#[test]
fn envelope_vectors_hold() {
    let file = committed("envelope-v1.json", build_envelope());
    for m in file["messages"].as_array().unwrap() {
        check_message(&file, m);
    }
    for n in file["invalid_envelopes"].as_array().unwrap() {
        let me = device_from(&file, s(n, "opener"));
        let sender = device_from(&file, s(n, "sender")).public();
        let envelope = b(n, "envelope");
        let name = s(n, "name");
        let one_shot = open(&envelope, &me, &sender).expect_err(name);
        assert_eq!(one_shot.code(), s(n, "expected_error"), "{name}");
        let streamed = stream_open(&envelope, &me, &sender).expect_err(name);
        assert_eq!(streamed.code(), s(n, "expected_stream_error"), "{name}");
    }
}

/// Opens a committed message, and re-derives each of its values from the spec alone.
fn check_message(file: &Value, m: &Value) {
    let name = s(m, "name");
    let envelope = b(m, "envelope");
    let sender = device_from(file, s(m, "sender"));
    let recipients: Vec<DeviceKeys> = m["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| device_from(file, r.as_str().unwrap()))
        .collect();
    let payload = b(m, "payload");
    for me in &recipients {
        let opened = open(&envelope, me, &sender.public()).expect(name);
        assert_eq!(opened.payload, payload, "{name}");
        assert_eq!(
            stream_open(&envelope, me, &sender.public()).unwrap(),
            payload,
            "{name}"
        );
    }

    // Header from the inputs.
    let mut header = vec![1, u8::try_from(u(m, "media_type")).unwrap()];
    header.extend(b(m, "message_id"));
    header.extend(b(m, "household_id"));
    header.extend(sender.device_id().as_bytes());
    header.extend(u(m, "created_at_ms").to_be_bytes());
    header.extend(u32::try_from(u(m, "duration_ms")).unwrap().to_be_bytes());
    header.extend((payload.len() as u64).to_be_bytes());
    header.extend(u16::try_from(recipients.len()).unwrap().to_be_bytes());
    for r in &recipients {
        header.extend(r.device_id().as_bytes());
    }
    assert_eq!(header, b(m, "header"), "{name}");
    let parts = split(&envelope);
    assert_eq!(parts.header, header);

    // Chunks from the content key.
    let (key, prefix) = spec_payload_key(&b(m, "content_key"), &b(m, "message_id"));
    assert_eq!(key.to_vec(), b(m, "payload_key"));
    assert_eq!(prefix.to_vec(), b(m, "nonce_prefix"));
    let chunks = spec_chunks(&key, &prefix, &header, &payload, |i, n| i + 1 == n);
    assert_eq!(chunks, parts.chunks, "{name}");
    let lens: Vec<u64> = m["chunk_lengths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_u64().unwrap())
        .collect();
    assert_eq!(lens.iter().sum::<u64>(), chunks.len() as u64);
    for (i, nonce) in m["chunk_nonces"].as_array().unwrap().iter().enumerate() {
        let last = i + 1 == lens.len();
        assert_eq!(
            spec_nonce(&prefix, u32::try_from(i).unwrap(), last).to_vec(),
            unhex(nonce.as_str().unwrap())
        );
    }

    // Digest and signature: Ed25519 is deterministic, so re-signing gives the same bytes.
    let digest = Sha256::digest(&chunks).to_vec();
    assert_eq!(digest, b(m, "payload_digest"));
    assert_eq!(parts.digest, digest);
    let input = spec_signature_input(&header, &digest);
    assert_eq!(input, b(m, "signature_input"));
    let verifying = VerifyingKey::from_bytes(&sender.public().ed25519_pub).unwrap();
    let signature = ed25519_dalek::Signature::from_slice(&b(m, "signature")).unwrap();
    verifying.verify(&input, &signature).unwrap();
    let secret = sender.to_secret_bytes();
    let signer = SigningKey::from_bytes(&secret[49..81].try_into().unwrap());
    assert_eq!(signer.sign(&input).to_bytes().to_vec(), parts.signature);

    // Wrapped keys: each recipient's slot opens with plain HPKE to the content key, and the
    // sender's ephemeral IKM reproduces its enc.
    let info = spec_hpke_info(&header);
    assert_eq!(info, b(m, "hpke_info"));
    type Kem = hpke::kem::X25519HkdfSha256;
    for ((me, slot), ikm) in recipients
        .iter()
        .zip(m["wrapped_keys"].as_array().unwrap())
        .zip(m["hpke_ephemeral_ikm"].as_array().unwrap())
    {
        let (_, pk_e) = <Kem as hpke::Kem>::derive_keypair(&unhex(ikm.as_str().unwrap()));
        assert_eq!(hpke::Serializable::to_bytes(&pk_e).to_vec(), b(slot, "enc"));
        let secret = me.to_secret_bytes();
        let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(&secret[17..49]).unwrap();
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&b(slot, "enc")).unwrap();
        let mut ctx = hpke::setup_receiver::<hpke::aead::AesGcm256, hpke::kdf::HkdfSha256, Kem>(
            &OpModeR::Base,
            &sk,
            &enc,
            &info,
        )
        .unwrap();
        let content_key = ctx
            .open(&b(slot, "sealed_key"), me.device_id().as_bytes())
            .unwrap();
        assert_eq!(content_key, b(m, "content_key"), "{name}");
        assert_eq!(b(slot, "aad"), me.device_id().as_bytes());
    }

    // The server's view needs no key.
    let (prefix_view, rest) = EnvelopePrefix::parse(&envelope).unwrap();
    assert_eq!(prefix_view.verify_sender(&sender.public()), Ok(()));
    assert_eq!(rest, &parts.chunks[..]);
    let (prefix_again, _) = EnvelopePrefix::parse(&envelope).unwrap();
    assert!(StreamOpener::new(&prefix_again, &recipients[0], &sender.public()).is_ok());
}

// ---------------------------------------------------------------- roster vectors

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Owner => "owner",
        Role::Guardian => "guardian",
        Role::Family => "family",
        Role::Toy => "toy",
        Role::Recovery => "recovery",
    }
}

fn status_name(status: MemberStatus) -> &'static str {
    match status {
        MemberStatus::Approved => "approved",
        MemberStatus::Blocked => "blocked",
    }
}

fn roster_json(r: &Roster) -> Value {
    let mut members: Vec<_> = r.members.clone();
    members.sort_by_key(|m| m.device_id);
    json!({
        "household_id": hx(r.household_id.as_bytes()),
        "version": r.version,
        "previous_digest": hx(r.previous_digest),
        "settings": {
            "quiet_hours": r.settings.quiet_hours.map(|q| json!({"start_minute": q.start_minute, "end_minute": q.end_minute})),
            "timezone_offset_minutes": r.settings.timezone_offset_minutes,
            "parent_approves_before_play": r.settings.parent_approves_before_play,
            "retention_days": r.settings.retention_days,
        },
        "members": members.iter().map(|m| json!({
            "device_id": hx(m.device_id.as_bytes()),
            "account_id": hx(m.account_id.as_bytes()),
            "role": role_name(m.role),
            "status": status_name(m.status),
            "x25519_pub": hx(m.x25519_pub),
            "ed25519_pub": hx(m.ed25519_pub),
        })).collect::<Vec<_>>(),
    })
}

fn signed_json(name: &str, signer: &str, verify: Value, signed: &SignedRoster) -> Value {
    let bytes = signed.encode();
    let body = &bytes[..bytes.len() - 80];
    let mut input = b"pawpost/v1/roster-signature".to_vec();
    input.extend_from_slice(body);
    json!({
        "name": name,
        "signer": signer,
        "roster": roster_json(signed.unverified_roster()),
        "roster_bytes": hx(body),
        "digest": hx(signed.digest()),
        "signature_input": hx(input),
        "signature": hx(&bytes[bytes.len() - 64..]),
        "signed_roster": hx(&bytes),
        "verify": verify,
    })
}

fn build_roster() -> Value {
    let h = Household::new();
    let v1 = SignedRoster::sign(&h.genesis(), &h.mum).unwrap();
    let v2 = SignedRoster::sign(&h.with_relatives(v1.unverified_roster()), &h.mum).unwrap();
    let v3 = SignedRoster::sign(&h.uncle_blocked(v2.unverified_roster()), &h.mum).unwrap();
    let sign = |r: &Roster, by: &DeviceKeys| SignedRoster::sign(r, by).unwrap().encode();

    let mut fork = v2.unverified_roster().next_version();
    fork.settings.retention_days = 7;
    let mut grab = v2.unverified_roster().next_version();
    promote(&mut grab, h.grandma.device_id());
    let mut promoted = v1.unverified_roster().next_version();
    promote(&mut promoted, h.dad.device_id());
    let mut tampered = v3.encode();
    let uncle = v3
        .unverified_roster()
        .members
        .iter()
        .position(|m| m.device_id == h.uncle.device_id())
        .unwrap();
    tampered[69 + uncle * MEMBER_LEN + 33] = MemberStatus::Approved as u8;
    let mut unchained = v2.unverified_roster().next_version();
    unchained.previous_digest = v1.digest();
    let mut elsewhere = v1.unverified_roster().next_version();
    elsewhere.household_id = other_household_id();

    let genesis = v1.encode();
    let mut appended = genesis.clone();
    appended.push(0);
    let mut unsorted = genesis.clone();
    let (a, b_) = (69..69 + MEMBER_LEN, 69 + MEMBER_LEN..69 + 2 * MEMBER_LEN);
    let first = unsorted[a.clone()].to_vec();
    unsorted.copy_within(b_.clone(), a.start);
    unsorted[b_].copy_from_slice(&first);
    let mut role = genesis.clone();
    role[69 + 32] = 9;
    let mut retention = genesis.clone();
    retention[65..67].copy_from_slice(&0u16.to_be_bytes());
    let mut digest_on_v1 = genesis.clone();
    digest_on_v1[25] = 1;
    let mut many = genesis.clone();
    many[67..69].copy_from_slice(&(u16::try_from(MAX_MEMBERS).unwrap() + 1).to_be_bytes());

    let bad = |name: &str,
               description: &str,
               check: &str,
               previous: Option<&str>,
               bytes: Vec<u8>,
               error: &str| {
        json!({
            "name": name,
            "description": description,
            "check": check,
            "previous": previous,
            "signed_roster": hx(bytes),
            "expected_error": error,
        })
    };
    json!({
        "description": "Household rosters v1: a chain of three versions, each signed by mum (owner), \
            then rosters to refuse. check = decode (decoding fails), genesis (verify_genesis fails) \
            or successor (verify_successor against the named valid roster fails). See docs/ENVELOPE.md.",
        "domains": {
            "digest": "pawpost/v1/roster-digest",
            "signature": "pawpost/v1/roster-signature",
        },
        "constants": {
            "member_len": MEMBER_LEN,
            "max_members": MAX_MEMBERS,
            "max_retention_days": MAX_RETENTION_DAYS,
        },
        "devices": devices_json(&h),
        "rosters": [
            signed_json("v1", "mum", json!({"check": "genesis"}), &v1),
            signed_json("v2", "mum", json!({"check": "successor", "previous": "v1"}), &v2),
            signed_json("v3", "mum", json!({"check": "successor", "previous": "v2"}), &v3),
        ],
        "invalid_signed_rosters": [
            bad("stale_lower_version", "v2 offered again after v3", "successor", Some("v3"), v2.encode(), "stale_version"),
            bad("stale_equal_version", "another version 3 (retention 7 days), validly signed by mum, offered after v3", "successor", Some("v3"), sign(&fork, &h.mum), "stale_version"),
            bad("rollback_to_genesis", "v1 offered after v2", "successor", Some("v2"), v1.encode(), "stale_version"),
            bad("signed_by_family_member", "grandma signs a v3 that makes her an owner", "successor", Some("v2"), sign(&grab, &h.grandma), "signer_not_owner"),
            bad("guardian_self_promotion", "dad (guardian) signs a v2 that makes him an owner", "successor", Some("v1"), sign(&promoted, &h.dad), "signer_not_owner"),
            bad("signed_by_outsider", "a v2 signed by a device outside the household", "successor", Some("v1"), sign(&v1.unverified_roster().next_version(), &h.outsider), "signer_not_owner"),
            bad("tampered_after_signing", "v3 with the uncle's status byte set back to approved", "successor", Some("v2"), tampered, "bad_signature"),
            bad("previous_digest_mismatch", "a v3 that points at v1's digest instead of v2's", "successor", Some("v2"), sign(&unchained, &h.mum), "previous_digest_mismatch"),
            bad("other_household", "a v2 with another household id", "successor", Some("v1"), sign(&elsewhere, &h.mum), "household_mismatch"),
            bad("genesis_signed_by_guardian", "v1 signed by dad (guardian)", "genesis", None, sign(&h.genesis(), &h.dad), "signer_not_owner"),
            bad("genesis_not_version_1", "v2 presented as a first roster", "genesis", None, v2.encode(), "not_genesis"),
            bad("trailing_byte", "v1 with one byte appended", "decode", None, appended, "trailing_bytes"),
            bad("truncated", "v1 without its last byte", "decode", None, genesis[..genesis.len() - 1].to_vec(), "truncated"),
            bad("members_not_sorted", "v1 with its first two members swapped", "decode", None, unsorted, "members_not_sorted"),
            bad("unknown_role", "v1 with the first member's role byte set to 9", "decode", None, role, "unknown_role"),
            bad("retention_zero", "v1 with retention_days 0", "decode", None, retention, "invalid_settings"),
            bad("genesis_with_previous_digest", "v1 with a non-zero previous digest", "decode", None, digest_on_v1, "invalid_roster_version"),
            bad("too_many_members", "v1 with member count MAX_MEMBERS + 1", "decode", None, many, "too_many_members"),
        ],
    })
}

fn promote(roster: &mut Roster, device: DeviceId) {
    for m in &mut roster.members {
        if m.device_id == device {
            m.role = Role::Owner;
        }
    }
}

/// Builds a roster from its JSON description alone, as another implementation would.
fn roster_from_json(v: &Value) -> Vec<u8> {
    let settings = &v["settings"];
    let mut out = vec![1];
    out.extend(b(v, "household_id"));
    out.extend(u(v, "version").to_be_bytes());
    out.extend(b(v, "previous_digest"));
    match settings["quiet_hours"].as_object() {
        Some(q) => {
            out.push(1);
            out.extend(
                u16::try_from(q["start_minute"].as_u64().unwrap())
                    .unwrap()
                    .to_be_bytes(),
            );
            out.extend(
                u16::try_from(q["end_minute"].as_u64().unwrap())
                    .unwrap()
                    .to_be_bytes(),
            );
        }
        None => out.extend([0, 0, 0, 0, 0]),
    }
    out.extend(
        i16::try_from(settings["timezone_offset_minutes"].as_i64().unwrap())
            .unwrap()
            .to_be_bytes(),
    );
    out.push(u8::from(
        settings["parent_approves_before_play"].as_bool().unwrap(),
    ));
    out.extend(
        u16::try_from(settings["retention_days"].as_u64().unwrap())
            .unwrap()
            .to_be_bytes(),
    );
    let members = v["members"].as_array().unwrap();
    out.extend(u16::try_from(members.len()).unwrap().to_be_bytes());
    for m in members {
        out.extend(b(m, "device_id"));
        out.extend(b(m, "account_id"));
        out.push(match s(m, "role") {
            "owner" => 1,
            "guardian" => 2,
            "family" => 3,
            "toy" => 4,
            "recovery" => 5,
            other => panic!("role {other}"),
        });
        out.push(match s(m, "status") {
            "approved" => 1,
            "blocked" => 2,
            other => panic!("status {other}"),
        });
        out.extend(b(m, "x25519_pub"));
        out.extend(b(m, "ed25519_pub"));
    }
    out
}

#[test]
fn roster_vectors_hold() {
    let file = committed("roster-v1.json", build_roster());
    let mut valid: Vec<(String, SignedRoster)> = Vec::new();
    for r in file["rosters"].as_array().unwrap() {
        let name = s(r, "name").to_string();
        let body = roster_from_json(&r["roster"]);
        assert_eq!(body, b(r, "roster_bytes"), "{name}");
        let mut digest_input = b"pawpost/v1/roster-digest".to_vec();
        digest_input.extend_from_slice(&body);
        assert_eq!(
            Sha256::digest(&digest_input).to_vec(),
            b(r, "digest"),
            "{name}"
        );
        let mut input = b"pawpost/v1/roster-signature".to_vec();
        input.extend_from_slice(&body);
        assert_eq!(input, b(r, "signature_input"));
        let signer = device_from(&file, s(r, "signer"));
        let secret = signer.to_secret_bytes();
        let key = SigningKey::from_bytes(&secret[49..81].try_into().unwrap());
        assert_eq!(
            key.sign(&input).to_bytes().to_vec(),
            b(r, "signature"),
            "{name}"
        );
        let mut signed_bytes = body.clone();
        signed_bytes.extend(signer.device_id().as_bytes());
        signed_bytes.extend(b(r, "signature"));
        assert_eq!(signed_bytes, b(r, "signed_roster"));

        let signed = SignedRoster::decode(&signed_bytes).unwrap();
        assert_eq!(signed.encode(), signed_bytes);
        assert_eq!(Roster::decode(&body).unwrap().encode(), body);
        match s(&r["verify"], "check") {
            "genesis" => {
                signed.verify_genesis().expect(&name);
            }
            _ => {
                let prev = lookup(&valid, s(&r["verify"], "previous"));
                signed.verify_successor(prev).expect(&name);
            }
        }
        valid.push((name, signed));
    }
    for case in file["invalid_signed_rosters"].as_array().unwrap() {
        let name = s(case, "name");
        let bytes = b(case, "signed_roster");
        let got = match s(case, "check") {
            "decode" => SignedRoster::decode(&bytes).unwrap_err().code(),
            "genesis" => roster_err(SignedRoster::decode(&bytes).unwrap().verify_genesis()),
            _ => {
                let prev = lookup(&valid, s(case, "previous"));
                roster_err(SignedRoster::decode(&bytes).unwrap().verify_successor(prev))
            }
        };
        assert_eq!(got, s(case, "expected_error"), "{name}");
    }
}

fn lookup<'a>(valid: &'a [(String, SignedRoster)], name: &str) -> &'a SignedRoster {
    &valid
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no roster {name}"))
        .1
}

fn roster_err(result: Result<&Roster, RosterError>) -> &'static str {
    result.expect_err("roster should be refused").code()
}

// ---------------------------------------------------------------- recovery and certificates

/// The recovery code of the roster chain in `recovery-v1.json`.
fn vector_recovery_code() -> RecoveryCode {
    RecoveryCode::generate(&mut rng(40))
}

fn code_json(name: &str, code: &RecoveryCode) -> Value {
    let key = RecoveryKey::from_code(code);
    json!({
        "name": name,
        "code_bytes": hx(code.as_bytes()),
        "code": code.to_string(),
        "ed25519_seed": hx(code.seed().as_slice()),
        "ed25519_pub": hx(key.ed25519_pub()),
        "device_id": hx(key.device_id().as_bytes()),
    })
}

fn build_recovery() -> Value {
    let h = Household::new();
    let code = vector_recovery_code();
    let key = RecoveryKey::from_code(&code);
    let shown = code.to_string();

    // The household of the stories, with mum's recovery key; v2 is signed by that key and
    // adds dad's device as an owner (standing in for mum's new phone); v3 is signed by it.
    let mut genesis = Roster::genesis(
        household_id(),
        Household::settings(),
        vec![
            Member::new(
                &h.mum.public(),
                account_id(1),
                Role::Owner,
                MemberStatus::Approved,
            ),
            Member::new(
                &h.toy.public(),
                account_id(1),
                Role::Toy,
                MemberStatus::Approved,
            ),
        ],
    );
    genesis.members.push(key.member(account_id(1)));
    let v1 = SignedRoster::sign(&genesis, &h.mum).unwrap();
    let mut next = v1.unverified_roster().next_version();
    next.members.push(Member::new(
        &h.dad.public(),
        account_id(1),
        Role::Owner,
        MemberStatus::Approved,
    ));
    let v2 = SignedRoster::sign_with_recovery(&next, &key).unwrap();
    let mut next = v2.unverified_roster().next_version();
    next.members.retain(|m| m.device_id != key.device_id());
    let v3 = SignedRoster::sign(&next, &h.dad).unwrap();
    let mut grab = v3.unverified_roster().next_version();
    grab.settings.retention_days = 365;
    let grab = SignedRoster::sign_with_recovery(&grab, &key)
        .unwrap()
        .encode();
    let by_recovery = SignedRoster::sign_with_recovery(&genesis, &key)
        .unwrap()
        .encode();
    let mut keyed = v1.encode();
    let at = v1
        .unverified_roster()
        .members
        .iter()
        .position(|m| m.device_id == key.device_id())
        .unwrap();
    keyed[69 + at * MEMBER_LEN + 34] = 9;

    let account = account_id(1);
    let certificate = |certifier: &str, certified: &str| {
        let c = h.by_name(certifier);
        let identity = h.by_name(certified).public();
        json!({
            "name": format!("{certifier} certifies {certified}"),
            "certifier": certifier,
            "account_id": hx(account.as_bytes()),
            "certifier_id": hx(c.device_id().as_bytes()),
            "certified": certified,
            "identity": hx(identity.encode()),
            "input": hx(certificate_input(account, c.device_id(), &identity)),
            "signature": hx(sign_certificate(c, account, &identity)),
        })
    };
    let good = sign_certificate(&h.mum, account, &h.dad.public());
    let mut flipped = good;
    flipped[0] ^= 1;
    let mut high_s = good;
    add_group_order(&mut high_s[32..]);
    let refused = |name: &str, certifier: &str, account: AccountId, certified: &str, sig: &[u8]| {
        json!({
            "name": name,
            "certifier": certifier,
            "account_id": hx(account.as_bytes()),
            "certifier_id": hx(h.by_name(certifier).device_id().as_bytes()),
            "identity": hx(h.by_name(certified).public().encode()),
            "signature": hx(sig),
        })
    };
    let bad_roster = |name: &str,
                      description: &str,
                      check: &str,
                      previous: Option<&str>,
                      bytes: Vec<u8>,
                      error: &str| {
        json!({
            "name": name,
            "description": description,
            "check": check,
            "previous": previous,
            "signed_roster": hx(bytes),
            "expected_error": error,
        })
    };
    json!({
        "description": "Recovery codes (Crockford base32), the recovery key derived from them, its \
            roster role (5, recovery) in a chain where it signs v2, device certificates and link \
            codes. See docs/ENVELOPE.md.",
        "domains": {
            "recovery_seed": "pawpost/v1/recovery-seed",
            "recovery_id": "pawpost/v1/recovery-id",
            "device_certificate": "pawpost/v1/device-certificate",
            "device_link": "pawpost/v1/device-link",
        },
        "alphabet": "0123456789ABCDEFGHJKMNPQRSTVWXYZ",
        "devices": devices_json(&h),
        "codes": [
            code_json("zeros", &RecoveryCode::from_bytes([0; RECOVERY_CODE_LEN])),
            code_json("ones", &RecoveryCode::from_bytes([0xff; RECOVERY_CODE_LEN])),
            code_json("counting", &RecoveryCode::from_bytes(core::array::from_fn(|i| u8::try_from(i).unwrap()))),
            code_json("household", &code),
        ],
        "parse_cases": [
            {"input": shown.to_lowercase(), "code_bytes": hx(code.as_bytes())},
            {"input": shown.replace('-', " "), "code_bytes": hx(code.as_bytes())},
            {"input": format!("  {}  ", shown.replace('-', "")), "code_bytes": hx(code.as_bytes())},
            {"input": "oOiI-lL00-0000-0000-0000-0000-0000-0000", "code_bytes": hx(RecoveryCode::parse(&format!("001111{}", "0".repeat(26))).unwrap().as_bytes())},
            {"input": "", "expected_error": "invalid_recovery_code"},
            {"input": &shown[..38], "expected_error": "invalid_recovery_code"},
            {"input": format!("{shown}0"), "expected_error": "invalid_recovery_code"},
            {"input": "U".repeat(32), "expected_error": "invalid_recovery_code"},
            {"input": shown.replace('-', "_"), "expected_error": "invalid_recovery_code"},
            {"input": shown.replace('-', "\u{e9}"), "expected_error": "invalid_recovery_code"},
        ],
        "rosters": [
            signed_json("v1", "mum", json!({"check": "genesis"}), &v1),
            signed_json("v2", "recovery", json!({"check": "successor", "previous": "v1"}), &v2),
            signed_json("v3", "dad", json!({"check": "successor", "previous": "v2"}), &v3),
        ],
        "invalid_signed_rosters": [
            bad_roster("genesis_signed_by_recovery", "v1 signed by the recovery key", "genesis", None, by_recovery, "signer_not_owner"),
            bad_roster("signed_by_removed_recovery", "a v4 signed by the recovery key that v3 removed", "successor", Some("v3"), grab, "signer_not_owner"),
            bad_roster("recovery_with_encryption_key", "v1 with a non-zero byte in the recovery member's X25519 key", "decode", None, keyed, "invalid_key"),
        ],
        "certificates": [certificate("mum", "dad"), certificate("dad", "grandma")],
        "invalid_certificates": [
            refused("signature with a bit flipped", "mum", account, "dad", &flipped),
            refused("another account", "mum", account_id(2), "dad", &good),
            refused("another device", "mum", account, "uncle", &good),
            refused("another certifier", "grandma", account, "dad", &good),
            refused("s not below the group order", "mum", account, "dad", &high_s),
        ],
        "link_codes": DEVICE_NAMES.iter().map(|name| json!({
            "name": name,
            "identity": hx(h.by_name(name).public().encode()),
            "link_code": LinkCode::of(&h.by_name(name).public()).to_string(),
        })).collect::<Vec<_>>(),
    })
}

/// Adds the Ed25519 group order to a little-endian scalar: the same signature with a
/// non-canonical `s`, which strict verification refuses.
fn add_group_order(s: &mut [u8]) {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for (b, l) in s.iter_mut().zip(L) {
        let sum = u16::from(*b) + u16::from(l) + carry;
        *b = sum.to_le_bytes()[0];
        carry = sum >> 8;
    }
}

#[test]
fn recovery_vectors_hold() {
    let file = committed("recovery-v1.json", build_recovery());
    let alphabet = s(&file, "alphabet").as_bytes().to_vec();
    for c in file["codes"].as_array().unwrap() {
        let bytes: [u8; RECOVERY_CODE_LEN] = arr(c, "code_bytes");
        let code = RecoveryCode::from_bytes(bytes);
        assert_eq!(code.to_string(), s(c, "code"));
        assert_eq!(spec_code(&alphabet, &bytes), s(c, "code"));
        assert_eq!(RecoveryCode::parse(s(c, "code")), Ok(code.clone()));
        let mut input = b"pawpost/v1/recovery-seed".to_vec();
        input.extend_from_slice(&bytes);
        assert_eq!(Sha256::digest(&input).to_vec(), b(c, "ed25519_seed"));
        let key = SigningKey::from_bytes(&arr(c, "ed25519_seed"));
        assert_eq!(key.verifying_key().to_bytes().to_vec(), b(c, "ed25519_pub"));
        let mut input = b"pawpost/v1/recovery-id".to_vec();
        input.extend_from_slice(&b(c, "ed25519_pub"));
        assert_eq!(Sha256::digest(&input)[..16].to_vec(), b(c, "device_id"));
        let derived = RecoveryKey::from_code(&code);
        assert_eq!(derived.device_id().as_bytes().to_vec(), b(c, "device_id"));
    }
    for c in file["parse_cases"].as_array().unwrap() {
        let input = s(c, "input");
        match c.get("expected_error") {
            Some(e) => assert_eq!(
                RecoveryCode::parse(input).unwrap_err().code(),
                e.as_str().unwrap(),
                "{input:?}"
            ),
            None => assert_eq!(
                RecoveryCode::parse(input).unwrap().as_bytes().to_vec(),
                b(c, "code_bytes"),
                "{input:?}"
            ),
        }
    }

    let household = file["codes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| s(c, "name") == "household")
        .unwrap();
    let recovery = RecoveryKey::from_code(&RecoveryCode::from_bytes(arr(household, "code_bytes")));
    let mut valid: Vec<(String, SignedRoster)> = Vec::new();
    for r in file["rosters"].as_array().unwrap() {
        let name = s(r, "name").to_string();
        let body = roster_from_json(&r["roster"]);
        assert_eq!(body, b(r, "roster_bytes"), "{name}");
        let signed = SignedRoster::decode(&b(r, "signed_roster")).unwrap();
        let again = match s(r, "signer") {
            "recovery" => SignedRoster::sign_with_recovery(signed.unverified_roster(), &recovery),
            other => SignedRoster::sign(signed.unverified_roster(), &device_from(&file, other)),
        };
        assert_eq!(again.unwrap().encode(), b(r, "signed_roster"), "{name}");
        match s(&r["verify"], "check") {
            "genesis" => {
                signed.verify_genesis().expect(&name);
            }
            _ => {
                let prev = lookup(&valid, s(&r["verify"], "previous"));
                signed.verify_successor(prev).expect(&name);
            }
        }
        valid.push((name, signed));
    }
    for case in file["invalid_signed_rosters"].as_array().unwrap() {
        let bytes = b(case, "signed_roster");
        let got = match s(case, "check") {
            "decode" => SignedRoster::decode(&bytes).unwrap_err().code(),
            "genesis" => roster_err(SignedRoster::decode(&bytes).unwrap().verify_genesis()),
            _ => {
                let prev = lookup(&valid, s(case, "previous"));
                roster_err(SignedRoster::decode(&bytes).unwrap().verify_successor(prev))
            }
        };
        assert_eq!(got, s(case, "expected_error"), "{}", s(case, "name"));
    }

    for c in file["certificates"].as_array().unwrap() {
        let certifier = device_from(&file, s(c, "certifier"));
        let identity = PublicIdentity::decode(&b(c, "identity")).unwrap();
        let account = AccountId(arr(c, "account_id"));
        let mut input = b"pawpost/v1/device-certificate".to_vec();
        input.extend(b(c, "account_id"));
        input.extend(b(c, "certifier_id"));
        input.extend(b(c, "identity"));
        assert_eq!(input, b(c, "input"));
        assert_eq!(
            certificate_input(account, certifier.device_id(), &identity),
            input
        );
        assert_eq!(
            sign_certificate(&certifier, account, &identity).to_vec(),
            b(c, "signature")
        );
        assert!(verify_certificate(
            &certifier.public(),
            account,
            &identity,
            &arr(c, "signature")
        ));
    }
    for c in file["invalid_certificates"].as_array().unwrap() {
        let certifier = device_from(&file, s(c, "certifier")).public();
        let identity = PublicIdentity::decode(&b(c, "identity")).unwrap();
        assert!(
            !verify_certificate(
                &certifier,
                AccountId(arr(c, "account_id")),
                &identity,
                &arr(c, "signature")
            ),
            "{}",
            s(c, "name")
        );
    }
    for c in file["link_codes"].as_array().unwrap() {
        let identity = PublicIdentity::decode(&b(c, "identity")).unwrap();
        assert_eq!(LinkCode::of(&identity).to_string(), s(c, "link_code"));
        let mut input = b"pawpost/v1/device-link".to_vec();
        input.extend(b(c, "identity"));
        let d = Sha256::digest(&input);
        let value = u64::from_be_bytes(d[..8].try_into().unwrap()) % 10_000_000_000_000_000;
        let digits = format!("{value:016}");
        let spec = format!(
            "{} {} {} {}",
            &digits[..4],
            &digits[4..8],
            &digits[8..12],
            &digits[12..]
        );
        assert_eq!(spec, s(c, "link_code"));
    }
}

/// Base32 as docs/ENVELOPE.md describes it, written out independently: bit `i` of the
/// 160 is bit `7 - i % 8` of byte `i / 8`; each 5 bits, most significant first, pick a
/// character.
fn spec_code(alphabet: &[u8], bytes: &[u8]) -> String {
    let bit = |i: usize| (bytes[i / 8] >> (7 - i % 8)) & 1;
    let chars: Vec<char> = (0..32)
        .map(|c| {
            let v = (0..5).fold(0usize, |acc, k| (acc << 1) | usize::from(bit(5 * c + k)));
            char::from(alphabet[v])
        })
        .collect();
    chars
        .chunks(4)
        .map(|g| g.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}
