//! Signed releases of the toy's own software (`docs/UPDATES.md`): a manifest names the board
//! an image is for, its version, its anti-rollback counter, its size and its SHA-256, and a
//! release key kept off the server signs it. The toy installs an image only when a key built
//! into it signed the manifest and every byte it received hashes to the manifest's digest.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::identity::{parse_verifying_key, verify_signature};

/// The version byte that starts a manifest.
pub const MANIFEST_VERSION: u8 = 1;
/// Longest board name, in bytes.
pub const MAX_BOARD_NAME_LEN: usize = 32;
/// Length of a manifest's Ed25519 signature.
pub const MANIFEST_SIGNATURE_LEN: usize = 64;
/// Longest encoded manifest: version, board name with its length, version, counter, size
/// and digest.
pub const MAX_MANIFEST_LEN: usize = 1 + 1 + MAX_BOARD_NAME_LEN + 4 + 4 + 4 + 32;

const MANIFEST_DOMAIN: &[u8] = b"pawpost/v1/release-manifest";

/// Why a manifest was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ManifestError {
    /// The bytes end before the manifest does.
    Truncated,
    /// Bytes follow the manifest's last field.
    TrailingBytes,
    /// The version byte is not [`MANIFEST_VERSION`].
    UnsupportedVersion,
    /// The board name is empty, longer than [`MAX_BOARD_NAME_LEN`], or has a character
    /// other than `a`–`z`, `0`–`9` and `-`.
    InvalidBoard,
    /// The image size is zero.
    EmptyImage,
    /// No trusted release key signed the manifest.
    BadSignature,
}

impl ManifestError {
    /// Stable snake_case name, used by the test vectors and in logs.
    pub const fn code(self) -> &'static str {
        match self {
            Self::Truncated => "truncated",
            Self::TrailingBytes => "trailing_bytes",
            Self::UnsupportedVersion => "unsupported_version",
            Self::InvalidBoard => "invalid_board",
            Self::EmptyImage => "empty_image",
            Self::BadSignature => "bad_signature",
        }
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Truncated => "the manifest is cut short",
            Self::TrailingBytes => "bytes follow the end of the manifest",
            Self::UnsupportedVersion => "unsupported manifest version",
            Self::InvalidBoard => "the board name must be 1 to 32 characters of a-z, 0-9 and '-'",
            Self::EmptyImage => "the image is empty",
            Self::BadSignature => "no trusted release key signed this manifest",
        })
    }
}

/// What a release is: `version (1) || board length (u8) || board || firmware version (u32)
/// || counter (u32) || image size (u32) || image SHA-256 (32)`, integers big-endian.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Manifest {
    /// The board the image runs on, such as `mps2-an386`.
    pub board: String,
    /// The software version people see ("version 2").
    pub version: u32,
    /// The anti-rollback counter: a toy installs only a counter above the one it runs.
    pub counter: u32,
    /// The image's length in bytes (at least 1).
    pub size: u32,
    /// SHA-256 of the whole image.
    pub sha256: [u8; 32],
}

/// Whether `board` is a valid board name.
pub fn valid_board_name(board: &str) -> bool {
    !board.is_empty()
        && board.len() <= MAX_BOARD_NAME_LEN
        && board
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl Manifest {
    /// The manifest's bytes. Fails only for an invalid board name or an empty image, which
    /// [`Manifest::decode`] would refuse.
    pub fn encode(&self) -> Result<Vec<u8>, ManifestError> {
        if !valid_board_name(&self.board) {
            return Err(ManifestError::InvalidBoard);
        }
        let board_len = u8::try_from(self.board.len()).map_err(|_| ManifestError::InvalidBoard)?;
        if self.size == 0 {
            return Err(ManifestError::EmptyImage);
        }
        let mut out = Vec::with_capacity(MAX_MANIFEST_LEN);
        out.push(MANIFEST_VERSION);
        out.push(board_len);
        out.extend_from_slice(self.board.as_bytes());
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.counter.to_be_bytes());
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.sha256);
        Ok(out)
    }

    /// Strict decode of exactly one manifest (its signature is not checked here).
    pub fn decode(bytes: &[u8]) -> Result<Self, ManifestError> {
        let (&version, rest) = bytes.split_first().ok_or(ManifestError::Truncated)?;
        if version != MANIFEST_VERSION {
            return Err(ManifestError::UnsupportedVersion);
        }
        let (&board_len, rest) = rest.split_first().ok_or(ManifestError::Truncated)?;
        let board_len = usize::from(board_len);
        if board_len == 0 || board_len > MAX_BOARD_NAME_LEN {
            return Err(ManifestError::InvalidBoard);
        }
        let fixed = 4 + 4 + 4 + 32;
        if rest.len() < board_len + fixed {
            return Err(ManifestError::Truncated);
        }
        if rest.len() > board_len + fixed {
            return Err(ManifestError::TrailingBytes);
        }
        let (board, rest) = rest.split_at(board_len);
        let board = core::str::from_utf8(board).map_err(|_| ManifestError::InvalidBoard)?;
        if !valid_board_name(board) {
            return Err(ManifestError::InvalidBoard);
        }
        let u32_at =
            |at: usize| u32::from_be_bytes([rest[at], rest[at + 1], rest[at + 2], rest[at + 3]]);
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&rest[12..44]);
        let manifest = Self {
            board: String::from(board),
            version: u32_at(0),
            counter: u32_at(4),
            size: u32_at(8),
            sha256,
        };
        if manifest.size == 0 {
            return Err(ManifestError::EmptyImage);
        }
        Ok(manifest)
    }
}

/// What a release key signs: `"pawpost/v1/release-manifest" || manifest`.
pub fn manifest_signature_input(manifest: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MANIFEST_DOMAIN.len() + manifest.len());
    out.extend_from_slice(MANIFEST_DOMAIN);
    out.extend_from_slice(manifest);
    out
}

/// Decodes `manifest` and checks strictly that one of `trusted` (Ed25519 public keys)
/// signed it.
pub fn verify_manifest(
    manifest: &[u8],
    signature: &[u8; MANIFEST_SIGNATURE_LEN],
    trusted: &[[u8; 32]],
) -> Result<Manifest, ManifestError> {
    let decoded = Manifest::decode(manifest)?;
    let input = manifest_signature_input(manifest);
    if trusted
        .iter()
        .any(|key| verify_signature(key, &input, signature))
    {
        Ok(decoded)
    } else {
        Err(ManifestError::BadSignature)
    }
}

/// Whether `key` is an Ed25519 public key a release may be checked against (a valid point,
/// not a weak one).
pub fn valid_release_public_key(key: &[u8; 32]) -> bool {
    parse_verifying_key(key).is_ok()
}

/// A release signing key. It belongs on the release manager's machine, never on the
/// server; zeroed when dropped.
pub struct ReleaseKey {
    key: SigningKey,
}

impl ReleaseKey {
    /// The key whose Ed25519 seed is `seed` (32 random bytes).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(seed),
        }
    }

    /// The seed, to keep in a file only its owner reads.
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.key.to_bytes())
    }

    /// The public key toys and servers are given.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// Signs an encoded manifest.
    pub fn sign(&self, manifest: &[u8]) -> [u8; MANIFEST_SIGNATURE_LEN] {
        self.key
            .sign(&manifest_signature_input(manifest))
            .to_bytes()
    }
}

/// SHA-256 of an image fed in pieces as they arrive.
#[derive(Clone, Default)]
pub struct ImageDigest(Sha256);

impl ImageDigest {
    /// An empty digest.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next bytes of the image.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest of everything added.
    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }

    /// The digest of `image` at once.
    pub fn of(image: &[u8]) -> [u8; 32] {
        let mut digest = Self::new();
        digest.update(image);
        digest.finish()
    }
}
