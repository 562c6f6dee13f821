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

/// One device's keys, with the Ed25519 seed kept for signing toy-protocol challenges.
pub struct BenchDevice {
    pub keys: DeviceKeys,
    ed25519_seed: [u8; 32],
}

impl BenchDevice {
    pub fn new(label: &str, index: u64) -> Self {
        let id_bytes = derive(label, index, "id");
        let mut random = [0u8; 16];
        random.copy_from_slice(&id_bytes[..16]);
        let id = uuid::Builder::from_random_bytes(random).into_uuid();
        let x = derive(label, index, "x25519");
        let ed = derive(label, index, "ed25519");
        Self {
            keys: DeviceKeys::from_secrets(DeviceId(*id.as_bytes()), &x, &ed),
            ed25519_seed: ed,
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

    /// The `Auth` frame's signature over this connection's challenge.
    pub fn sign_auth(&self, nonce: &[u8; NONCE_LEN], roster_version: u64) -> [u8; 64] {
        use ed25519_dalek::Signer;
        let input = auth_signature_input(nonce, self.keys.device_id(), roster_version);
        ed25519_dalek::SigningKey::from_bytes(&self.ed25519_seed)
            .sign(&input)
            .to_bytes()
    }
}
