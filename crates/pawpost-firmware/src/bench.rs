//! The toy's public-key operations timed one by one (`bench` on the wires), so that their
//! cost can be told apart from the rest of a delivery: under QEMU's `-icount shift=0` a
//! virtual millisecond is a million instructions. Each runs [`REPEATS`] times on inputs
//! made once before the clock starts: a sender's and a toy's keys and a message sealed
//! from one to the other, opened through the same calls the toy makes for a `DeliverStart`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use pawpost_crypto::rand_core::CryptoRng;
use pawpost_crypto::{
    seal, sign_certificate, AccountId, DeviceId, DeviceKeys, Envelope, EnvelopePrefix, HouseholdId,
    MediaType, MessageId, MessageParams, StreamOpener, CHUNK_SIZE,
};

/// Times each operation runs: the clock ticks in milliseconds, so ten runs of an operation
/// of a few million instructions read to a tenth of a million each.
pub const REPEATS: u32 = 10;
/// How many lines [`run`] says: one for each operation it times.
pub const OPERATIONS: usize = 6;

/// Runs every operation [`REPEATS`] times; returns one line each, `bench NAME REPEATS MS`
/// (`MS` for all the runs together), or `error …` when an operation failed.
pub fn run(rng: &mut impl CryptoRng, now_ms: impl Fn() -> u64) -> Vec<String> {
    let sender = DeviceKeys::generate(rng, DeviceId([1; 16]));
    let toy = DeviceKeys::generate(rng, DeviceId([2; 16]));
    let sender_public = sender.public();
    let toy_public = toy.public();
    let recipients = [toy_public];
    let params = MessageParams {
        message_id: MessageId([3; 16]),
        household_id: HouseholdId([4; 16]),
        created_at_ms: 0,
        media_type: MediaType::OggOpus,
        duration_ms: 0,
        recipients: &recipients,
    };
    let Ok(envelope) = seal(rng, &sender, &params, &[0; 16]) else {
        return alloc::vec![String::from("error bench: sealing the test message failed")];
    };
    let Ok((prefix, _)) = EnvelopePrefix::parse(&envelope) else {
        return alloc::vec![String::from("error bench: the test message does not parse")];
    };
    let mut lines = Vec::new();
    let mut time = |name: &str, op: &mut dyn FnMut() -> bool| {
        let started = now_ms();
        let mut ok = true;
        for _ in 0..REPEATS {
            ok &= op();
        }
        let took = now_ms().saturating_sub(started);
        lines.push(if ok {
            format!("bench {name} {REPEATS} {took}")
        } else {
            format!("error bench: {name} failed")
        });
    };
    // What a `DeliverStart` costs: the sender's signature alone, then the signature and the
    // content key's HPKE open together (the toy's own call), whose difference is the open.
    time("ed25519-verify", &mut || {
        prefix.verify_sender(&sender_public).is_ok()
    });
    time("ed25519-verify+hpke-open", &mut || {
        StreamOpener::new(&prefix, &toy, &sender_public).is_ok()
    });
    // What the toy signs (its answer to each connection's challenge) and its new keys
    // (pairing, rotation): the fixed-base multiplications precomputed tables speed up.
    time("ed25519-sign", &mut || {
        sign_certificate(&sender, AccountId([5; 16]), &toy_public) != [0; 64]
    });
    // What each 16 KiB chunk of a message costs: SHA-256 over its ciphertext (the digest
    // the sender signed) alone, then its AES-256-GCM open with that hash (the toy's own
    // call; each run decrypts a fresh copy, whose 16 KiB memcpy is a few thousand
    // instructions).
    let voice = alloc::vec![0x55; CHUNK_SIZE];
    let long_params = MessageParams {
        message_id: MessageId([6; 16]),
        ..params
    };
    let Ok(long) = seal(rng, &sender, &long_params, &voice) else {
        return alloc::vec![String::from("error bench: sealing the test chunk failed")];
    };
    let Ok(long) = Envelope::parse(&long) else {
        return alloc::vec![String::from("error bench: the test chunk does not parse")];
    };
    let chunk = long.ciphertext();
    time("sha256-16k", &mut || {
        let mut verifier = long.prefix().payload_verifier();
        verifier.update(chunk).is_ok()
    });
    let mut openers: Vec<StreamOpener> = (0..REPEATS)
        .filter_map(|_| StreamOpener::new(long.prefix(), &toy, &sender_public).ok())
        .collect();
    time("aes-gcm+sha256-16k", &mut || {
        let Some(mut opener) = openers.pop() else {
            return false;
        };
        let mut bytes = chunk.to_vec();
        opener.open_chunk(&mut bytes).is_ok()
    });
    let mut made = 0u8;
    time("device-keys", &mut || {
        made = made.wrapping_add(1);
        DeviceKeys::generate(rng, DeviceId([made; 16])).device_id() == DeviceId([made; 16])
    });
    lines
}
