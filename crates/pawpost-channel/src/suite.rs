//! The Noise suite `25519_AESGCM_SHA256`, built on the primitives the toy already links
//! (x25519-dalek, aes-gcm and sha2 of `pawpost-crypto`), so that the channel adds the
//! Noise state machine to the firmware and no second copy of any primitive.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::Aes256Gcm;
use clatter::bytearray::{ByteArray, SensitiveByteArray};
use clatter::error::{CipherError, CipherResult, DhError, DhResult};
use clatter::traits::{Cipher, CryptoComponent, Dh, Hash, Rng};
use clatter::KeyPair;
use sha2::Digest;

/// X25519, refusing a peer key whose shared secret is not contributory (a low-order
/// point would make every shared secret zero).
#[derive(Clone)]
pub struct X25519;

impl CryptoComponent for X25519 {
    fn name() -> &'static str {
        "25519"
    }
}

impl Dh for X25519 {
    type PrivateKey = SensitiveByteArray<[u8; 32]>;
    type PubKey = [u8; 32];
    type Output = SensitiveByteArray<[u8; 32]>;

    /// Never used: the channel hands every ephemeral key to the handshake itself, made
    /// from the randomness its caller supplies (see [`NoRng`]).
    fn genkey_rng<R: Rng>(_rng: &mut R) -> DhResult<KeyPair<Self::PubKey, Self::PrivateKey>> {
        Err(DhError::KeyGeneration)
    }

    fn pubkey(k: &Self::PrivateKey) -> Self::PubKey {
        x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(**k)).to_bytes()
    }

    fn dh(k: &Self::PrivateKey, pk: &Self::PubKey) -> DhResult<Self::Output> {
        let shared = x25519_dalek::StaticSecret::from(**k)
            .diffie_hellman(&x25519_dalek::PublicKey::from(*pk));
        if !shared.was_contributory() {
            return Err(DhError::KeyGeneration);
        }
        Ok(Self::Output::from_slice(shared.as_bytes()))
    }
}

/// AES-256-GCM with Noise's nonce: 32 zero bits, then the counter big-endian.
#[derive(Clone)]
pub struct AesGcm;

impl CryptoComponent for AesGcm {
    fn name() -> &'static str {
        "AESGCM"
    }
}

const TAG_LEN: usize = 16;

fn nonce(n: u64) -> aes_gcm::Nonce<aes_gcm::aead::consts::U12> {
    let mut full = [0u8; 12];
    full[4..].copy_from_slice(&n.to_be_bytes());
    full.into()
}

fn aead(k: &SensitiveByteArray<[u8; 32]>) -> Aes256Gcm {
    Aes256Gcm::new_from_slice(k.as_slice()).expect("an AES-256 key is 32 bytes")
}

impl Cipher for AesGcm {
    type Key = SensitiveByteArray<[u8; 32]>;

    fn tag_len() -> usize {
        TAG_LEN
    }

    fn encrypt(
        k: &Self::Key,
        n: u64,
        ad: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> CipherResult<()> {
        if out.len() != plaintext.len() + TAG_LEN {
            return Err(CipherError::Encrypt);
        }
        out[..plaintext.len()].copy_from_slice(plaintext);
        Self::encrypt_in_place(k, n, ad, out, plaintext.len()).map(|_| ())
    }

    fn encrypt_in_place(
        k: &Self::Key,
        n: u64,
        ad: &[u8],
        in_out: &mut [u8],
        plaintext_len: usize,
    ) -> CipherResult<usize> {
        let out_len = plaintext_len + TAG_LEN;
        if in_out.len() < out_len {
            return Err(CipherError::Encrypt);
        }
        let (body, tag_out) = in_out[..out_len].split_at_mut(plaintext_len);
        let tag = aead(k)
            .encrypt_inout_detached(&nonce(n), ad, body.into())
            .map_err(|_| CipherError::Encrypt)?;
        tag_out.copy_from_slice(&tag);
        Ok(out_len)
    }

    fn decrypt(
        k: &Self::Key,
        n: u64,
        ad: &[u8],
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> CipherResult<()> {
        if ciphertext.len() != out.len() + TAG_LEN {
            return Err(CipherError::Decrypt);
        }
        let (body, tag) = ciphertext.split_at(out.len());
        out.copy_from_slice(body);
        let tag = aes_gcm::Tag::try_from(tag).map_err(|_| CipherError::Decrypt)?;
        aead(k)
            .decrypt_inout_detached(&nonce(n), ad, (&mut *out).into(), &tag)
            .map_err(|_| CipherError::Decrypt)
    }

    fn decrypt_in_place(
        k: &Self::Key,
        n: u64,
        ad: &[u8],
        in_out: &mut [u8],
        ciphertext_len: usize,
    ) -> CipherResult<usize> {
        if ciphertext_len > in_out.len() || ciphertext_len < TAG_LEN {
            return Err(CipherError::Decrypt);
        }
        let (body, tag) = in_out[..ciphertext_len].split_at_mut(ciphertext_len - TAG_LEN);
        let tag = aes_gcm::Tag::try_from(&*tag).map_err(|_| CipherError::Decrypt)?;
        aead(k)
            .decrypt_inout_detached(&nonce(n), ad, (&mut *body).into(), &tag)
            .map_err(|_| CipherError::Decrypt)?;
        Ok(body.len())
    }
}

/// SHA-256.
#[derive(Clone, Default)]
pub struct Sha256(sha2::Sha256);

impl CryptoComponent for Sha256 {
    fn name() -> &'static str {
        "SHA256"
    }
}

impl Hash for Sha256 {
    type Block = [u8; 64];
    type Output = SensitiveByteArray<[u8; 32]>;

    fn input(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn result(self) -> Self::Output {
        Self::Output::from_slice(&self.0.finalize())
    }
}

/// The generator type the handshake asks for. It is never called: every ephemeral key
/// is given to the handshake (made by [`crate::StaticKey::from_secret`] from the
/// caller's randomness), and [`X25519::genkey_rng`] refuses to make one. Should it ever
/// be called it fails the handshake rather than produce predictable bytes.
#[derive(Clone, Default)]
pub struct NoRng;

impl clatter::rand_core::RngCore for NoRng {
    fn next_u32(&mut self) -> u32 {
        unreachable!("the channel supplies every ephemeral key itself")
    }

    fn next_u64(&mut self) -> u64 {
        unreachable!("the channel supplies every ephemeral key itself")
    }

    fn fill_bytes(&mut self, _dest: &mut [u8]) {
        unreachable!("the channel supplies every ephemeral key itself")
    }

    fn try_fill_bytes(&mut self, _dest: &mut [u8]) -> Result<(), clatter::rand_core::Error> {
        unreachable!("the channel supplies every ephemeral key itself")
    }
}

impl clatter::rand_core::CryptoRng for NoRng {}
