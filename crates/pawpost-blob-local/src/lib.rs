//! Blobs as files in a private folder (mode 0700, files 0600). A blob is written to a
//! temporary file, flushed to disk, and renamed into place, and the folder is synced, so
//! that a reader never sees half a blob and an acknowledged write survives a crash.
#![forbid(unsafe_code)]

use async_trait::async_trait;
use pawpost_store::{BlobKey, BlobStore, StoreError, StoreResult};
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
