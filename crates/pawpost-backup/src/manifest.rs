//! `manifest.json`: what a backup holds, with a SHA-256 of every file and of itself.
//!
//! The manifest's own checksum is taken over the compact JSON of [`Manifest`] (fields in
//! declaration order), and stored beside those fields as `manifest_sha256`. Reading
//! re-serialises the parsed fields and compares, so any edited value, a dropped blob
//! entry or a truncated file is caught. It detects damage, not forgery: anyone able to
//! edit the backup can recompute it, so keep backups where only operators can write.
use crate::error::BackupError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

/// The manifest layout this version writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The manifest's file name inside a backup folder.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The field holding the manifest's own checksum.
const CHECKSUM_FIELD: &str = "manifest_sha256";

/// Which metadata store the backup came from, and so how it is restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseKind {
    /// A `VACUUM INTO` copy of the SQLite file, restored by copying it into place.
    Sqlite,
    /// A `pg_dump --format=custom` of one schema, restored with `pg_restore` and `psql`.
    Postgres,
}

impl std::fmt::Display for DatabaseKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DatabaseKind::Sqlite => "SQLite",
            DatabaseKind::Postgres => "PostgreSQL",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseEntry {
    pub kind: DatabaseKind,
    /// File name inside the backup folder.
    pub file: String,
    pub bytes: u64,
    /// Lowercase hex.
    pub sha256: String,
    /// PostgreSQL only: the schema that was dumped.
    pub schema: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobEntry {
    /// The blob store key, which is also the path under `blobs/`.
    pub key: String,
    pub bytes: u64,
    /// Lowercase hex.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format_version: u32,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub pawpost_version: String,
    pub database: DatabaseEntry,
    /// Sorted by key.
    pub blobs: Vec<BlobEntry>,
}

impl Manifest {
    pub fn blob_bytes(&self) -> u64 {
        self.blobs.iter().map(|b| b.bytes).sum()
    }

    fn checksum(&self) -> String {
        let body = serde_json::to_vec(self).expect("a manifest always serialises");
        hex::encode(Sha256::digest(body))
    }

    /// The file's bytes: the fields and their checksum, pretty-printed for people.
    pub(crate) fn to_file_bytes(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct OnDisk<'a> {
            #[serde(flatten)]
            body: &'a Manifest,
            manifest_sha256: String,
        }
        let mut bytes = serde_json::to_vec_pretty(&OnDisk {
            body: self,
            manifest_sha256: self.checksum(),
        })
        .expect("a manifest always serialises");
        bytes.push(b'\n');
        bytes
    }

    /// Parses and checks a manifest file's bytes; `path` is only for messages.
    pub(crate) fn from_file_bytes(path: &Path, bytes: &[u8]) -> Result<Self, BackupError> {
        let bad = |reason: String| BackupError::BadManifest {
            path: path.to_owned(),
            reason,
        };
        let mut value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not valid JSON ({e})")))?;
        let object = value
            .as_object_mut()
            .ok_or_else(|| bad("not a JSON object".into()))?;
        // The version is checked before anything else so that a newer layout is named
        // as such rather than reported as damage.
        let version = object
            .get("format_version")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| bad("no format_version".into()))?;
        if version != u64::from(FORMAT_VERSION) {
            return Err(BackupError::UnknownVersion {
                path: path.to_owned(),
                found: version,
                pawpost_version: object
                    .get("pawpost_version")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("unknown")
                    .to_owned(),
            });
        }
        let stored = match object.remove(CHECKSUM_FIELD) {
            Some(serde_json::Value::String(s)) => s,
            _ => return Err(bad(format!("no {CHECKSUM_FIELD}"))),
        };
        let manifest: Manifest =
            serde_json::from_value(value).map_err(|e| bad(format!("unexpected layout ({e})")))?;
        if manifest.checksum() != stored {
            return Err(BackupError::ManifestChecksum(path.to_owned()));
        }
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            format_version: FORMAT_VERSION,
            created_at: "2025-01-01T00:00:00Z".into(),
            pawpost_version: "0.1.0".into(),
            database: DatabaseEntry {
                kind: DatabaseKind::Sqlite,
                file: "pawpost.db".into(),
                bytes: 4096,
                sha256: "00".repeat(32),
                schema: None,
            },
            blobs: vec![BlobEntry {
                key: "envelopes/a/b".into(),
                bytes: 10,
                sha256: "11".repeat(32),
            }],
        }
    }

    #[test]
    fn a_manifest_reads_back_as_written() {
        let m = sample();
        let read = Manifest::from_file_bytes(Path::new("m"), &m.to_file_bytes()).unwrap();
        assert_eq!(read, m);
    }

    #[test]
    fn an_edited_value_fails_the_manifest_checksum() {
        let text = String::from_utf8(sample().to_file_bytes()).unwrap();
        let edited = text.replace("\"bytes\": 10", "\"bytes\": 11");
        assert_ne!(edited, text);
        let err = Manifest::from_file_bytes(Path::new("m"), edited.as_bytes()).unwrap_err();
        assert!(matches!(err, BackupError::ManifestChecksum(_)), "{err}");
    }

    #[test]
    fn a_newer_format_is_named_as_such() {
        let text = String::from_utf8(sample().to_file_bytes()).unwrap();
        let newer = text.replace("\"format_version\": 1", "\"format_version\": 2");
        let err = Manifest::from_file_bytes(Path::new("m"), newer.as_bytes()).unwrap_err();
        assert!(
            matches!(err, BackupError::UnknownVersion { found: 2, .. }),
            "{err}"
        );
    }
}
