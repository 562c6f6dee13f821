//! Signed rosters and roster bodies from untrusted bytes: what a toy reads in `Paired` and
//! `RosterUpdate`, and a server in a roster upload. Decoding must never panic, a decoded
//! value must re-encode to the same bytes, and every verification must return, not panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pawpost_crypto::{Roster, SignedRoster};
use pawpost_fuzz::{paired_genesis, vector_device};

fn mum_key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(|| vector_device("mum").public().ed25519_pub)
}

fuzz_target!(|data: &[u8]| {
    if let Ok(signed) = SignedRoster::decode(data) {
        assert_eq!(signed.encode(), data, "a signed roster has one encoding");
        let roster = signed.unverified_roster();
        assert!(!roster.members.is_empty());
        let body = roster.encode();
        assert_eq!(&data[..body.len()], &body[..]);
        assert_eq!(Roster::decode(&body).as_ref(), Ok(roster));
        assert_eq!(signed.digest(), roster.digest());
        if let Ok(accepted) = signed.verify_genesis() {
            assert_eq!(accepted.version, 1);
            assert!(accepted
                .member(signed.signer())
                .is_some_and(|m| m.is_approved_owner()));
        }
        let _ = signed.verify_successor(paired_genesis());
        let _ = signed.verify_signed_by(mum_key());
    }
    if let Ok(roster) = Roster::decode(data) {
        assert_eq!(roster.encode(), data, "a roster has one encoding");
        for m in &roster.members {
            let _ = roster.approved_member(m.device_id);
        }
        let next = roster.next_version();
        assert_eq!(Roster::decode(&next.encode()).as_ref(), Ok(&next));
    }
});
