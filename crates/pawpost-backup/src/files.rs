//! Private, durable file handling: folders 0700, files 0600, every write synced before
//! it is relied on, and SHA-256 computed on the bytes as they pass.
use crate::error::BackupError;
use sha2::{Digest, Sha256};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const CHUNK: usize = 64 * 1024;

/// A file's size and lowercase-hex SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digested {
    pub bytes: u64,
    pub sha256: String,
}

pub fn create_private_dir_all(dir: &Path) -> Result<(), BackupError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(BackupError::io("cannot create folder", dir))
}

/// Makes a finished rename or file creation in `dir` survive a power cut.
pub fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(BackupError::io("cannot sync folder", dir))
}

/// Creates `path` empty with mode 0600; it must not exist yet.
pub fn create_private_file(path: &Path) -> Result<std::fs::File, BackupError> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(BackupError::io("cannot create file", path))
}

/// Reads `path` through and returns its size and digest.
pub fn digest_file(path: &Path) -> Result<Digested, BackupError> {
    let mut file = std::fs::File::open(path).map_err(BackupError::io("cannot read", path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut bytes = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(BackupError::io("cannot read", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok(Digested {
        bytes,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// Copies `from` to a new private file `to` (parents created 0700), synced, and returns
/// the digest of the bytes written. `Ok(None)` when `from` vanished before it was opened,
/// which for a live blob folder means the server deleted that blob meanwhile.
pub fn copy_digested(from: &Path, to: &Path) -> Result<Option<Digested>, BackupError> {
    let mut src = match std::fs::File::open(from) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(BackupError::io("cannot read", from)(e)),
    };
    if let Some(parent) = to.parent() {
        create_private_dir_all(parent)?;
    }
    let mut dst = create_private_file(to)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut bytes = 0u64;
    loop {
        let n = src
            .read(&mut buf)
            .map_err(BackupError::io("cannot read", from))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        dst.write_all(&buf[..n])
            .map_err(BackupError::io("cannot write", to))?;
        bytes += n as u64;
    }
    dst.sync_all().map_err(BackupError::io("cannot sync", to))?;
    Ok(Some(Digested {
        bytes,
        sha256: hex::encode(hasher.finalize()),
    }))
}

fn digest_bytes(bytes: &[u8]) -> Digested {
    Digested {
        bytes: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(bytes)),
    }
}

/// Writes `bytes` to a new private file `to` (parents created 0700), synced, and returns
/// their digest.
pub fn write_digested(to: &Path, bytes: &[u8]) -> Result<Digested, BackupError> {
    if let Some(parent) = to.parent() {
        create_private_dir_all(parent)?;
    }
    let mut dst = create_private_file(to)?;
    dst.write_all(bytes)
        .map_err(BackupError::io("cannot write", to))?;
    dst.sync_all().map_err(BackupError::io("cannot sync", to))?;
    Ok(digest_bytes(bytes))
}

/// The whole of `path` and its digest; `Ok(None)` when it is missing.
pub fn read_digested(path: &Path) -> Result<Option<(Vec<u8>, Digested)>, BackupError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let digest = digest_bytes(&bytes);
            Ok(Some((bytes, digest)))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(BackupError::io("cannot read", path)(e)),
    }
}

/// Writes `bytes` to `path` through a temporary file, synced and renamed into place, so
/// that `path` is either absent or complete.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    let dir = path.parent().expect("written files have a parent folder");
    let name = path
        .file_name()
        .expect("written files have a name")
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp-{:016x}", rand::random::<u64>()));
    let result = (|| {
        let mut file = create_private_file(&tmp)?;
        file.write_all(bytes)
            .map_err(BackupError::io("cannot write", &tmp))?;
        file.sync_all()
            .map_err(BackupError::io("cannot sync", &tmp))?;
        std::fs::rename(&tmp, path).map_err(BackupError::io("cannot rename into", path))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// What [`walk`] finds: the files as (relative name, path), and the folders.
pub struct Listing {
    pub files: Vec<(String, PathBuf)>,
    pub dirs: Vec<PathBuf>,
}

/// Every regular file under `root`, as `/`-joined relative names, sorted; folders are
/// listed separately so they can be synced. A missing root has no files.
pub fn walk(root: &Path) -> Result<Listing, BackupError> {
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    let mut stack = vec![(root.to_owned(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound && dir == root => {
                return Ok(Listing { files, dirs })
            }
            Err(e) => return Err(BackupError::io("cannot list", &dir)(e)),
        };
        dirs.push(dir.clone());
        for entry in entries {
            let entry = entry.map_err(BackupError::io("cannot list", &dir))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            // DirEntry::file_type does not follow links: a link to a folder is listed as a
            // file, never walked into, so the walk cannot leave root.
            let kind = entry
                .file_type()
                .map_err(BackupError::io("cannot inspect", &path))?;
            if kind.is_dir() {
                stack.push((path, rel));
            } else {
                files.push((rel, path));
            }
        }
    }
    files.sort();
    Ok(Listing { files, dirs })
}

/// Whether `dir` holds any file at any depth (empty folders do not count).
pub fn holds_files(dir: &Path) -> Result<bool, BackupError> {
    Ok(!walk(dir)?.files.is_empty())
}

/// Whether `name` is a relative path that stays inside the folder it is joined to.
pub fn is_safe_relative(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && name
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != ".." && !s.contains('\\'))
}
