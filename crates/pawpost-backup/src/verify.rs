//! Checking a backup against its manifest, before any restore.
use crate::error::BackupError;
use crate::files::{self, Digested};
use crate::manifest::{Manifest, MANIFEST_FILE};
use crate::shared::{blocking, mismatch};
use crate::{Phase, Progress, BLOBS_DIR};
use pawpost_store::BlobKey;
use std::collections::BTreeSet;
use std::path::Path;

/// Checks the backup in `from` without restoring it: the manifest is present, of a known
/// version and intact, every file it lists is there with its size and SHA-256, and
/// nothing else is.
pub async fn verify(from: &Path) -> Result<Manifest, BackupError> {
    verify_with_progress(from, |_| {}).await
}

/// [`verify`], reporting each file checked.
pub async fn verify_with_progress(
    from: &Path,
    mut progress: impl FnMut(Progress),
) -> Result<Manifest, BackupError> {
    let manifest_path = from.join(MANIFEST_FILE);
    let read_path = manifest_path.clone();
    let bytes = match blocking(move || {
        std::fs::read(&read_path).map_err(BackupError::io("cannot read", &read_path))
    })
    .await
    {
        Ok(bytes) => bytes,
        Err(BackupError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound && from.is_dir() =>
        {
            return Err(BackupError::Partial(from.to_owned()));
        }
        Err(e) => return Err(e),
    };
    let manifest = Manifest::from_file_bytes(&manifest_path, &bytes)?;

    // Names come from a file anyone with write access could edit; none may leave `from`.
    let db_file = &manifest.database.file;
    if !files::is_safe_relative(db_file) || db_file.contains('/') || db_file == MANIFEST_FILE {
        return Err(BackupError::UnsafeName(db_file.clone()));
    }
    let mut expected = BTreeSet::from([MANIFEST_FILE.to_owned(), db_file.clone()]);
    for blob in &manifest.blobs {
        if BlobKey::new(blob.key.as_str()).is_err() || !files::is_safe_relative(&blob.key) {
            return Err(BackupError::UnsafeName(blob.key.clone()));
        }
        expected.insert(format!("{BLOBS_DIR}/{}", blob.key));
    }

    let root = from.to_owned();
    let present = blocking(move || files::walk(&root)).await?.files;
    if let Some((_, path)) = present.iter().find(|(rel, _)| !expected.contains(rel)) {
        return Err(BackupError::ExtraFile(path.clone()));
    }

    let mut checks = vec![(
        from.join(db_file),
        manifest.database.bytes,
        manifest.database.sha256.clone(),
    )];
    checks.extend(
        manifest
            .blobs
            .iter()
            .map(|b| (from.join(BLOBS_DIR).join(&b.key), b.bytes, b.sha256.clone())),
    );
    let total = checks.len() as u64;
    progress(Progress {
        phase: Phase::Verify,
        done: 0,
        total,
    });
    for (done, (path, bytes, sha256)) in checks.into_iter().enumerate() {
        let expect = Digested { bytes, sha256 };
        blocking(move || check_file(&path, &expect)).await?;
        progress(Progress {
            phase: Phase::Verify,
            done: done as u64 + 1,
            total,
        });
    }
    Ok(manifest)
}

fn check_file(path: &Path, expected: &Digested) -> Result<(), BackupError> {
    // A link where a file should be is not the file the backup wrote.
    let regular = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file());
    if !regular {
        return Err(BackupError::MissingFile(path.to_owned()));
    }
    let found = files::digest_file(path)?;
    mismatch(path, expected, &found)
}
