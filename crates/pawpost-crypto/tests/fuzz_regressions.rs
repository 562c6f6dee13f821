//! Inputs found by the fuzz targets in `fuzz/` that once panicked. Each must now give an
//! error, never a panic.

use pawpost_crypto::{DeviceId, DeviceKeys, Roster, RosterError, SignedRoster};

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// Mum, the owner in `test-vectors/roster-v1.json`.
fn mum() -> DeviceKeys {
    let id = unhex("d0000000000040008000000000000001");
    let x = unhex("023f37203a2476c42566a61cc55c3ca875dbb4cc41c0deb789f8e7bf88183638");
    let ed = unhex("1ecc3686b60ee3b84b6c7d321d70d5c06e9dac63a4d0a79d731b17c0d04d030d");
    DeviceKeys::from_secrets(
        DeviceId(id.try_into().unwrap()),
        &x.try_into().unwrap(),
        &ed.try_into().unwrap(),
    )
}

/// fuzz target `roster`: a roster at version u64::MAX decodes, and asking for its next
/// version overflowed (a panic in debug builds, version 0 in release builds).
#[test]
fn a_roster_at_the_last_version_has_no_next_version_and_does_not_panic() {
    let bytes = unhex(concat!(
        "0140000000000040008000000000000001ffffffffffffffff6d9297d909f6c5c67745401175b13be3",
        "0e087b0cda8016c2ab77945140b7ee6b01049201a4003c01001e0001d000000000004000800000000000",
        "0001ac0000000000400080000000000000010101d53b9fea1dd4d570dbe38180767c236456ca6633f103",
        "f1aa0637e7b613d2527449cf7548e60a3c0603b620724b2c2353fcc6560e81269131dca856b05cb5ac77",
    ));
    let roster = Roster::decode(&bytes).expect("the roster decodes");
    assert_eq!(roster.version, u64::MAX);
    let next = roster.next_version();
    assert_eq!(next.version, u64::MAX);
    let prev = SignedRoster::sign(&roster, &mum()).unwrap();
    let next = SignedRoster::sign(&next, &mum()).unwrap();
    assert_eq!(next.verify_successor(&prev), Err(RosterError::StaleVersion));
}
