//! Public identities from untrusted bytes (inside `PairRequest`, `RotateKey`, device
//! registration), and the device secret the toy keeps in its saved state.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pawpost_crypto::{DeviceKeys, PublicIdentity, PUBLIC_IDENTITY_LEN};

fuzz_target!(|data: &[u8]| {
    if let Ok(identity) = PublicIdentity::decode(data) {
        assert_eq!(&identity.encode()[..], data, "an identity has one encoding");
        assert_eq!(data.len(), PUBLIC_IDENTITY_LEN);
        let _ = identity.fingerprint().to_string();
    }
    if let Ok(keys) = DeviceKeys::from_secret_bytes(data) {
        assert_eq!(
            &keys.to_secret_bytes()[..],
            data,
            "a device secret has one encoding"
        );
        let public = keys.public();
        assert_eq!(PublicIdentity::decode(&public.encode()), Ok(public));
    }
});
