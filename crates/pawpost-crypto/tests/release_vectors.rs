//! `test-vectors/release-v1.json`: signed release manifests (docs/UPDATES.md), rebuilt from
//! fixed seeds and required to equal the committed file; every manifest to refuse fails with
//! its named error. After an intended format change (which also needs a new manifest
//! version), rewrite the file with
//! `PAWPOST_REGENERATE_VECTORS=1 cargo test -p pawpost-crypto --test release_vectors`.

use pawpost_crypto::{
    manifest_signature_input, verify_manifest, ImageDigest, Manifest, ManifestError, ReleaseKey,
};
use serde_json::{json, Value};

const FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../test-vectors/release-v1.json"
);

fn image() -> Vec<u8> {
    (0..10_000u32)
        .map(|i| u8::try_from(i * 31 % 256).unwrap())
        .collect()
}

fn vectors() -> Value {
    let key = ReleaseKey::from_seed(&[0x11; 32]);
    let other = ReleaseKey::from_seed(&[0x22; 32]);
    let image = image();
    let manifest = Manifest {
        board: "mps2-an386".into(),
        version: 2,
        counter: 7,
        size: u32::try_from(image.len()).unwrap(),
        sha256: ImageDigest::of(&image),
    };
    let bytes = manifest.encode().unwrap();
    let signature = key.sign(&bytes);
    let mut trailing = bytes.clone();
    trailing.push(0);
    let mut bad_board = bytes.clone();
    bad_board[2] = b'M';
    let mut empty = bytes.clone();
    let size_at = bytes.len() - 32 - 4;
    empty[size_at..size_at + 4].copy_from_slice(&[0; 4]);
    let mut version_2 = bytes.clone();
    version_2[0] = 2;
    let refuse = |name: &str, manifest: &[u8], signature: [u8; 64], error: ManifestError| {
        json!({
            "name": name,
            "manifest": hex::encode(manifest),
            "signature": hex::encode(signature),
            "expected_error": error.code(),
        })
    };
    json!({
        "domain": "pawpost/v1/release-manifest",
        "release_key": {
            "seed": hex::encode(key.seed().as_slice()),
            "public_key": hex::encode(key.public_key()),
        },
        "image": {
            "pattern": "byte i = (i * 31) mod 256, for i in 0..10000",
            "sha256": hex::encode(ImageDigest::of(&image)),
        },
        "manifest": {
            "board": manifest.board,
            "version": manifest.version,
            "counter": manifest.counter,
            "size": manifest.size,
            "sha256": hex::encode(manifest.sha256),
            "encoded": hex::encode(&bytes),
            "signature_input": hex::encode(manifest_signature_input(&bytes)),
            "signature": hex::encode(signature),
        },
        "refuse": [
            refuse("signed by another key", &bytes, other.sign(&bytes), ManifestError::BadSignature),
            refuse("manifest format version 2", &version_2, signature, ManifestError::UnsupportedVersion),
            refuse("a byte after the digest", &trailing, key.sign(&trailing), ManifestError::TrailingBytes),
            refuse("cut short", &bytes[..bytes.len() - 1], signature, ManifestError::Truncated),
            refuse("board with a capital letter", &bad_board, key.sign(&bad_board), ManifestError::InvalidBoard),
            refuse("empty image", &empty, key.sign(&empty), ManifestError::EmptyImage),
        ],
    })
}

#[test]
fn the_committed_release_vectors_are_the_ones_this_code_makes() {
    let made = vectors();
    if std::env::var_os("PAWPOST_REGENERATE_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&made).unwrap() + "\n";
        std::fs::write(FILE, text).unwrap();
    }
    let committed: Value = serde_json::from_str(&std::fs::read_to_string(FILE).unwrap()).unwrap();
    assert_eq!(
        committed, made,
        "test-vectors/release-v1.json is out of date"
    );
}

#[test]
fn the_vector_manifest_verifies_and_every_refusal_is_named() {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(FILE).unwrap()).unwrap();
    let key: [u8; 32] = hex::decode(v["release_key"]["public_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let m = &v["manifest"];
    let bytes = hex::decode(m["encoded"].as_str().unwrap()).unwrap();
    let signature: [u8; 64] = hex::decode(m["signature"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let manifest = verify_manifest(&bytes, &signature, &[key]).unwrap();
    assert_eq!(manifest.board, m["board"].as_str().unwrap());
    assert_eq!(u64::from(manifest.counter), m["counter"].as_u64().unwrap());
    assert_eq!(
        manifest.encode().unwrap(),
        bytes,
        "re-encoding gives the same bytes"
    );
    // An independent reading of the layout in docs/UPDATES.md.
    let board_len = usize::from(bytes[1]);
    assert_eq!(&bytes[2..2 + board_len], b"mps2-an386");
    assert_eq!(
        hex::encode(&bytes[bytes.len() - 32..]),
        m["sha256"].as_str().unwrap()
    );
    let mut input = b"pawpost/v1/release-manifest".to_vec();
    input.extend_from_slice(&bytes);
    assert_eq!(hex::encode(input), m["signature_input"].as_str().unwrap());
    for case in v["refuse"].as_array().unwrap() {
        let bytes = hex::decode(case["manifest"].as_str().unwrap()).unwrap();
        let signature: [u8; 64] = hex::decode(case["signature"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let error = verify_manifest(&bytes, &signature, &[key]).unwrap_err();
        assert_eq!(error.code(), case["expected_error"], "{}", case["name"]);
    }
}
