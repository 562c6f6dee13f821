use crate::StoreResult;
use async_trait::async_trait;
use std::fmt;

/// Longest blob key accepted.
pub const MAX_BLOB_KEY_LEN: usize = 200;
/// Most keys one [`BlobStore::list_page`] returns, and the page size of
/// [`BlobStore::list`].
pub const BLOB_LIST_PAGE_SIZE: usize = 1000;

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

/// Where a listing goes on: the stored name after which the next page starts. Only a
/// store's own [`BlobStore::list_page`] makes one; callers hand it back unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobCursor(String);

impl BlobCursor {
    pub fn new(after: impl Into<String>) -> Self {
        Self(after.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlobPage {
    /// In ascending byte order, each after the cursor the page was asked for.
    pub keys: Vec<BlobKey>,
    /// Where the next page starts; `None` once the listing is complete.
    pub next: Option<BlobCursor>,
}

/// Opaque bytes by key. The server only ever stores ciphertext here.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores the bytes durably: when this returns, a crash does not lose them.
    async fn put(&self, key: &BlobKey, bytes: &[u8]) -> StoreResult<()>;
    async fn get(&self, key: &BlobKey) -> StoreResult<Option<Vec<u8>>>;
    /// Deleting a missing blob succeeds.
    async fn delete(&self, key: &BlobKey) -> StoreResult<()>;

    /// The keys of the stored blobs after `cursor` (from the first when `None`), in
    /// ascending byte order, at most `limit` of them (taken as 1 to
    /// [`BLOB_LIST_PAGE_SIZE`]). Only this store's blobs are listed: nothing outside its
    /// folder or prefix, and nothing there that is not a valid [`BlobKey`] (such as a
    /// temporary file of an unfinished write). A page may hold fewer keys than `limit`,
    /// even none, while [`BlobPage::next`] is `Some`. A blob put or deleted while a
    /// listing runs may or may not be in it.
    async fn list_page(&self, cursor: Option<&BlobCursor>, limit: usize) -> StoreResult<BlobPage>;

    /// Every key, in ascending byte order, fetched [`BLOB_LIST_PAGE_SIZE`] at a time. The
    /// whole list is held in memory: use [`BlobStore::list_page`] to go through a store
    /// too large for that.
    async fn list(&self) -> StoreResult<Vec<BlobKey>> {
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.list_page(cursor.as_ref(), BLOB_LIST_PAGE_SIZE).await?;
            keys.extend(page.keys);
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(keys),
            }
        }
    }
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
