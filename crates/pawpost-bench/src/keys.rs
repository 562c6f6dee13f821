//! Deterministic device keys: toy `i` always has the same id and keys, so a seeded
//! database and the clients that connect to it agree without sharing any file.
use pawpost_crypto::{DeviceId, DeviceKeys, PublicIdentity};
use pawpost_protocol::{auth_signature_input, NONCE_LEN};
use sha2::{Digest, Sha256};
use uuid::Uuid;

fn derive(label: &str, index: u64, part: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(b"pawpost-bench/");
    hash.update(label.as_bytes());
    hash.update(b"/");
    hash.update(part.as_bytes());
    hash.update(index.to_be_bytes());
    hash.finalize().into()
}

/// The device id of device `index` under `label`.
fn device_id(label: &str, index: u64) -> DeviceId {
    let id_bytes = derive(label, index, "id");
    let mut random = [0u8; 16];
    random.copy_from_slice(&id_bytes[..16]);
    DeviceId(
        *uuid::Builder::from_random_bytes(random)
            .into_uuid()
            .as_bytes(),
    )
}

/// One device's keys.
pub struct BenchDevice {
    pub keys: DeviceKeys,
}

impl BenchDevice {
    pub fn new(label: &str, index: u64) -> Self {
        let x = derive(label, index, "x25519");
        let ed = derive(label, index, "ed25519");
        Self {
            keys: DeviceKeys::from_secrets(device_id(label, index), &x, &ed),
        }
    }

    pub fn toy(index: u64) -> Self {
        Self::new("toy", index)
    }

    pub fn uuid(&self) -> Uuid {
        Uuid::from_bytes(self.keys.device_id().0)
    }

    pub fn public(&self) -> PublicIdentity {
        self.keys.public()
    }
}

/// What a toy needs to authenticate, derived once, as a toy keeps its keys: its id and
/// its Ed25519 signing key (the same as [`BenchDevice::toy`]'s). Deriving every key of
/// a toy (an X25519 and two Ed25519 public keys) for each connect made the bench's
/// clients spend three scalar multiplications a toy never makes.
pub struct ToyAuthKey {
    pub id: DeviceId,
    signing: ed25519_dalek::SigningKey,
}

impl ToyAuthKey {
    pub fn toy(index: u64) -> Self {
        Self {
            id: device_id("toy", index),
            signing: ed25519_dalek::SigningKey::from_bytes(&derive("toy", index, "ed25519")),
        }
    }

    /// The `Auth` frame's signature over this connection's challenge.
    pub fn sign_auth(&self, nonce: &[u8; NONCE_LEN], roster_version: u64) -> [u8; 64] {
        use ed25519_dalek::Signer;
        let input = auth_signature_input(nonce, self.id, roster_version);
        self.signing.sign(&input).to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_toys_auth_key_is_the_one_its_device_keys_hold() {
        for index in [0, 1, 9_999] {
            let toy = BenchDevice::toy(index);
            let auth = ToyAuthKey::toy(index);
            assert_eq!(auth.id, toy.keys.device_id());
            let nonce = [7; NONCE_LEN];
            let signature = ed25519_dalek::Signature::from_bytes(&auth.sign_auth(&nonce, 3));
            let input = auth_signature_input(&nonce, auth.id, 3);
            let public = ed25519_dalek::VerifyingKey::from_bytes(&toy.public().ed25519_pub)
                .expect("a valid key");
            assert!(public.verify_strict(&input, &signature).is_ok());
        }
    }
}
