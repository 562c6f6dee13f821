//! Blobs as files in a private folder (mode 0700, files 0600). A blob is written to a
//! temporary file, flushed to disk, and renamed into place, and the folder is synced, so
//! that a reader never sees half a blob and an acknowledged write survives a crash.
//!
//! A listing walks the folder in the byte order of the keys, reading only the folders
//! that can hold keys after its cursor, and names only regular files whose path is a
//! valid key and whose name is not hidden: never a temporary file, a link or a stray
//! file someone else put there.
#![forbid(unsafe_code)]

use async_trait::async_trait;
use pawpost_store::{
    BlobCursor, BlobKey, BlobPage, BlobStore, StoreError, StoreResult, BLOB_LIST_PAGE_SIZE,
};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub struct LocalBlobStore {
    root: PathBuf,
}

impl LocalBlobStore {
    /// Opens the folder, creating it with mode 0700 when missing.
    pub fn open(root: impl Into<PathBuf>) -> StoreResult<Self> {
        let root = root.into();
        create_private_dir(&root)?;
        Ok(Self { root })
    }

    fn path_of(&self, key: &BlobKey) -> PathBuf {
        // BlobKey admits only [a-z0-9-] segments, so the path stays under root.
        self.root.join(key.as_str())
    }
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Backend(format!("{what} {}: {e}", path.display()))
}

fn create_private_dir(path: &Path) -> StoreResult<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| io_err("cannot create folder", path, e))
}

fn write_durably(path: &Path, bytes: &[u8]) -> StoreResult<()> {
    let dir = path.parent().expect("blob paths have a parent");
    create_private_dir(dir)?;
    let tmp = dir.join(format!(".tmp-{:016x}", rand::random::<u64>()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err("cannot write blob", path, e)
    })
}

/// Whether a file at `rel` (`/`-joined, under the root) is a blob: writes go through
/// hidden temporary files, and only valid keys name blobs.
pub fn is_blob(rel: &str) -> bool {
    let hidden = rel.rsplit('/').next().is_some_and(|n| n.starts_with('.'));
    !hidden && BlobKey::new(rel).is_ok()
}

/// Whether a folder name can appear in a key; no other folder can hold a blob.
fn is_key_segment(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Up to `limit` keys after `after`, in byte order, from the folder `dir` whose keys
/// start with `prefix` (empty, or ending in `/`). Returns whether it stopped because
/// `keys` is full.
///
/// Each folder's entries are sorted with a `/` after folder names, so that going down
/// into folders in that order yields the keys in byte order (`a-b` before `a/c`).
fn walk_sorted(
    dir: &Path,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
    keys: &mut Vec<BlobKey>,
) -> StoreResult<bool> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        // The root of an empty store, or a folder emptied meanwhile.
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_err("cannot list blobs in", dir, e)),
    };
    let mut children = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_err("cannot list blobs in", dir, e))?;
        // Not UTF-8: cannot be part of a key.
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        // Does not follow links: a link is neither a blob nor a folder to walk into.
        let kind = match entry.file_type() {
            Ok(kind) => kind,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err("cannot inspect", &entry.path(), e)),
        };
        if kind.is_dir() && is_key_segment(&name) {
            children.push((format!("{prefix}{name}/"), true));
        } else if kind.is_file() {
            children.push((format!("{prefix}{name}"), false));
        }
    }
    children.sort_unstable();
    for (rel, is_dir) in children {
        if is_dir {
            // Every key in the folder starts with `rel`; skip it when all are too early.
            if after.is_some_and(|a| !a.starts_with(rel.as_str()) && rel.as_str() < a) {
                continue;
            }
            let sub = dir.join(rel[prefix.len()..].trim_end_matches('/'));
            if walk_sorted(&sub, &rel, after, limit, keys)? {
                return Ok(true);
            }
        } else if after.is_none_or(|a| rel.as_str() > a) && is_blob(&rel) {
            keys.push(BlobKey::new(rel).expect("is_blob checked the key"));
            if keys.len() >= limit {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn put(&self, key: &BlobKey, bytes: &[u8]) -> StoreResult<()> {
        let path = self.path_of(key);
        let bytes = bytes.to_vec();
        tokio::task::spawn_blocking(move || write_durably(&path, &bytes))
            .await
            .map_err(|e| StoreError::Backend(format!("blob writer stopped: {e}")))?
    }

    async fn get(&self, key: &BlobKey) -> StoreResult<Option<Vec<u8>>> {
        let path = self.path_of(key);
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("cannot read blob", &path, e)),
        }
    }

    async fn delete(&self, key: &BlobKey) -> StoreResult<()> {
        let path = self.path_of(key);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("cannot delete blob", &path, e)),
        }
    }

    async fn list_page(&self, cursor: Option<&BlobCursor>, limit: usize) -> StoreResult<BlobPage> {
        let limit = limit.clamp(1, BLOB_LIST_PAGE_SIZE);
        let root = self.root.clone();
        let after = cursor.map(|c| c.as_str().to_owned());
        tokio::task::spawn_blocking(move || {
            let mut keys = Vec::with_capacity(limit);
            let full = walk_sorted(&root, "", after.as_deref(), limit, &mut keys)?;
            let next = full
                .then(|| keys.last().map(|k| BlobCursor::new(k.as_str())))
                .flatten();
            Ok(BlobPage { keys, next })
        })
        .await
        .map_err(|e| StoreError::Backend(format!("blob lister stopped: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn the_local_folder_passes_the_blob_store_suite() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path().join("blobs")).unwrap();
        pawpost_store::testsuite::blob_store(&store).await;
    }

    #[tokio::test]
    async fn a_listing_names_only_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("blobs");
        let store = LocalBlobStore::open(&root).unwrap();
        let key = BlobKey::new("envelopes/abc/def").unwrap();
        store.put(&key, b"ciphertext").await.unwrap();
        // An unfinished write, a hidden folder, names no key can have, and links.
        std::fs::write(root.join("envelopes/abc/.tmp-0123456789abcdef"), b"half").unwrap();
        std::fs::create_dir_all(root.join(".staging/abc")).unwrap();
        std::fs::write(root.join(".staging/abc/def"), b"x").unwrap();
        std::fs::write(root.join("envelopes/abc/Upper"), b"x").unwrap();
        std::fs::create_dir_all(root.join("envelopes/Odd")).unwrap();
        std::fs::write(root.join("envelopes/Odd/def"), b"x").unwrap();
        std::os::unix::fs::symlink(root.join("envelopes/abc/def"), root.join("linked")).unwrap();
        std::os::unix::fs::symlink(root.join("envelopes"), root.join("folder-link")).unwrap();
        assert_eq!(store.list().await.unwrap(), std::slice::from_ref(&key));
        for limit in [1, 2] {
            let page = store.list_page(None, limit).await.unwrap();
            assert_eq!(page.keys, std::slice::from_ref(&key));
            let rest = match page.next {
                Some(next) => store.list_page(Some(&next), limit).await.unwrap(),
                None => BlobPage::default(),
            };
            assert_eq!(rest, BlobPage::default(), "nothing after the only blob");
        }
        assert!(is_blob("envelopes/abc/def"));
        assert!(!is_blob("envelopes/abc/.tmp-0123456789abcdef"));
        assert!(!is_blob("envelopes/abc/Upper"));
    }

    #[tokio::test]
    async fn a_store_whose_folder_vanished_lists_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("blobs");
        let store = LocalBlobStore::open(&root).unwrap();
        std::fs::remove_dir(&root).unwrap();
        assert_eq!(store.list().await.unwrap(), Vec::<BlobKey>::new());
    }

    #[tokio::test]
    async fn blobs_are_private_to_the_server_user() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("blobs");
        let store = LocalBlobStore::open(&root).unwrap();
        let key = BlobKey::new("envelopes/abc/def").unwrap();
        store.put(&key, b"ciphertext").await.unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("envelopes/abc")), 0o700);
        assert_eq!(mode(&root.join("envelopes/abc/def")), 0o600);
        let leftovers: Vec<_> = std::fs::read_dir(root.join("envelopes/abc"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with(".tmp"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "temporary files left behind: {leftovers:?}"
        );
    }
}
