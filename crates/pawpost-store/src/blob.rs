use crate::StoreResult;
use async_trait::async_trait;
use std::fmt;

/// Longest blob key accepted.
pub const MAX_BLOB_KEY_LEN: usize = 200;

/// A blob's name: `/`-separated segments of lower-case letters, digits and `-`, so that
/// no key can climb out of a folder or a bucket prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid blob key {0:?}: use `/`-separated segments of a-z, 0-9 and -")]
pub struct BlobKeyError(pub String);

impl BlobKey {
    pub fn new(key: impl Into<String>) -> Result<Self, BlobKeyError> {
        let key = key.into();
        let segment_ok = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if key.len() > MAX_BLOB_KEY_LEN || !key.split('/').all(segment_ok) {
            return Err(BlobKeyError(key));
        }
        Ok(Self(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Opaque bytes by key. The server only ever stores ciphertext here.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores the bytes durably: when this returns, a crash does not lose them.
    async fn put(&self, key: &BlobKey, bytes: &[u8]) -> StoreResult<()>;
    async fn get(&self, key: &BlobKey) -> StoreResult<Option<Vec<u8>>>;
    /// Deleting a missing blob succeeds.
    async fn delete(&self, key: &BlobKey) -> StoreResult<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_climb_out_of_their_folder() {
        for bad in [
            "",
            "../etc/passwd",
            "a//b",
            "/abs",
            "a/",
            "A",
            "a/./b",
            "a b",
            "a\\b",
        ] {
            assert!(BlobKey::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(BlobKey::new("envelopes/0190-abc/ff01").is_ok());
    }
}
