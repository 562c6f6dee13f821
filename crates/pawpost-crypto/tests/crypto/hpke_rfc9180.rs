//! Our HPKE suite checked against RFC 9180 Appendix A (mode_base, DHKEM(X25519,
//! HKDF-SHA256), HKDF-SHA256, AES-256-GCM), from the committed vector file.

use core::convert::Infallible;

use hpke::aead::AesGcm256;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::rand_core::{TryCryptoRng, TryRng};
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use serde::Deserialize;

use crate::vectors::{repo_file, unhex};

#[derive(Deserialize)]
struct File {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    mode: u8,
    kem_id: u16,
    kdf_id: u16,
    aead_id: u16,
    info: String,
    #[serde(rename = "ikmR")]
    ikm_r: String,
    #[serde(rename = "ikmE")]
    ikm_e: String,
    #[serde(rename = "skRm")]
    sk_rm: String,
    #[serde(rename = "pkRm")]
    pk_rm: String,
    #[serde(rename = "skEm")]
    sk_em: String,
    #[serde(rename = "pkEm")]
    pk_em: String,
    enc: String,
    encryptions: Vec<Encryption>,
    exports: Vec<Export>,
}

#[derive(Deserialize)]
struct Encryption {
    seq: u64,
    aad: String,
    ct: String,
    pt: String,
}

#[derive(Deserialize)]
struct Export {
    exporter_context: String,
    #[serde(rename = "L")]
    length: usize,
    exported_value: String,
}

/// Hands out the RFC's ephemeral IKM, so that `setup_sender_with_rng` derives the RFC's
/// ephemeral key (it runs DeriveKeyPair on 32 random bytes).
struct FixedBytes(Vec<u8>);

impl TryRng for FixedBytes {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        unreachable!("HPKE asks for bytes only")
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        unreachable!("HPKE asks for bytes only")
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        let rest = self.0.split_off(dst.len());
        dst.copy_from_slice(&self.0);
        self.0 = rest;
        Ok(())
    }
}

impl TryCryptoRng for FixedBytes {}

fn clamped(hex_scalar: &str) -> Vec<u8> {
    let mut k = unhex(hex_scalar);
    k[0] &= 248;
    k[31] &= 127;
    k[31] |= 64;
    k
}

fn load() -> Vec<Vector> {
    let text =
        std::fs::read_to_string(repo_file("hpke-rfc9180-x25519-sha256-aes256gcm.json")).unwrap();
    let file: File = serde_json::from_str(&text).unwrap();
    assert!(!file.vectors.is_empty());
    file.vectors
}

#[test]
fn our_hpke_suite_derives_the_rfc_9180_key_pairs() {
    for v in load() {
        assert_eq!((v.mode, v.kem_id, v.kdf_id, v.aead_id), (0, 0x20, 1, 2));
        let (sk_r, pk_r) = X25519HkdfSha256::derive_keypair(&unhex(&v.ikm_r));
        // The RFC prints the raw scalar; the hpke crate keeps it clamped (RFC 7748), which is
        // the same X25519 key.
        assert_eq!(sk_r.to_bytes().to_vec(), clamped(&v.sk_rm));
        assert_eq!(pk_r.to_bytes().to_vec(), unhex(&v.pk_rm));
        let (sk_e, pk_e) = X25519HkdfSha256::derive_keypair(&unhex(&v.ikm_e));
        assert_eq!(sk_e.to_bytes().to_vec(), clamped(&v.sk_em));
        assert_eq!(pk_e.to_bytes().to_vec(), unhex(&v.pk_em));
    }
}

#[test]
fn our_hpke_suite_seals_and_opens_the_rfc_9180_encryptions() {
    for v in load() {
        let info = unhex(&v.info);
        let (sk_r, pk_r) = X25519HkdfSha256::derive_keypair(&unhex(&v.ikm_r));
        let mut eph = FixedBytes(unhex(&v.ikm_e));
        let (enc, mut sender) = hpke::setup_sender_with_rng::<
            AesGcm256,
            HkdfSha256,
            X25519HkdfSha256,
        >(&OpModeS::Base, &pk_r, &info, &mut eph)
        .unwrap();
        assert_eq!(enc.to_bytes().to_vec(), unhex(&v.enc));

        let enc = <X25519HkdfSha256 as Kem>::EncappedKey::from_bytes(&unhex(&v.enc)).unwrap();
        let mut receiver = hpke::setup_receiver::<AesGcm256, HkdfSha256, X25519HkdfSha256>(
            &OpModeR::Base,
            &sk_r,
            &enc,
            &info,
        )
        .unwrap();
        // The encryptions are successive messages of one context; the file skips some
        // sequence numbers, which are used up here with throwaway messages.
        let mut next_seq = 0;
        for e in &v.encryptions {
            while next_seq < e.seq {
                let filler = sender.seal(b"", b"").unwrap();
                receiver.open(&filler, b"").unwrap();
                next_seq += 1;
            }
            let ct = sender.seal(&unhex(&e.pt), &unhex(&e.aad)).unwrap();
            assert_eq!(ct, unhex(&e.ct), "sequence {}", e.seq);
            let pt = receiver.open(&ct, &unhex(&e.aad)).unwrap();
            assert_eq!(pt, unhex(&e.pt));
            next_seq += 1;
        }
        for x in &v.exports {
            let mut out = vec![0u8; x.length];
            receiver
                .export(&unhex(&x.exporter_context), &mut out)
                .unwrap();
            assert_eq!(out, unhex(&x.exported_value));
        }
    }
}
