//! The toy's flash: its state file and the audio it played, private to the user.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The toy's saved state (keys, roster, queue) inside the state directory.
pub const STATE_FILE: &str = "toy-state.bin";

const PLAYED_DIR: &str = "played";
/// Queued audio, one file per message, apart from the state (which changes often).
const AUDIO_DIR: &str = "audio";
const SPOKEN_DIR: &str = "spoken";

/// The state directory. Everything in it is written with owner-only permissions: the state
/// holds the toy's secret keys, and played files are decrypted family voices.
#[derive(Clone, Debug)]
pub(crate) struct Store {
    dir: PathBuf,
}

impl Store {
    /// Creates the directory (0700) if it is missing.
    pub(crate) fn open(dir: &Path) -> io::Result<Self> {
        create_private_dir(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    pub(crate) fn state_path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    pub(crate) fn played_dir(&self) -> PathBuf {
        self.dir.join(PLAYED_DIR)
    }

    pub(crate) fn spoken_dir(&self) -> PathBuf {
        self.dir.join(SPOKEN_DIR)
    }

    /// The saved state, or `None` for a toy that never started here.
    pub(crate) fn load_state(&self) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.state_path()) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces the state so that a crash leaves either the old or the new one, never a mix.
    pub(crate) fn save_state(&self, bytes: &[u8]) -> io::Result<()> {
        write_atomically(&self.dir, STATE_FILE, bytes)
    }

    fn audio_path(&self, name: &str) -> PathBuf {
        self.dir.join(AUDIO_DIR).join(name)
    }

    /// Writes `bytes` at `offset` of a message's stored audio, on disk before it returns.
    pub(crate) fn store_audio(&self, name: &str, offset: u64, bytes: &[u8]) -> io::Result<()> {
        use std::io::{Seek, SeekFrom};
        create_private_dir(&self.dir.join(AUDIO_DIR))?;
        let mut file = private_file_options()
            .truncate(offset == 0)
            .open(self.audio_path(name))?;
        file.seek(SeekFrom::Start(offset))?;
        file.write_all(bytes)?;
        file.sync_all()
    }

    /// A message's stored audio.
    pub(crate) fn read_audio(&self, name: &str) -> io::Result<Vec<u8>> {
        fs::read(self.audio_path(name))
    }

    /// Deletes a message's stored audio; gone already is fine.
    pub(crate) fn discard_audio(&self, name: &str) -> io::Result<()> {
        match fs::remove_file(self.audio_path(name)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The names of the stored audio files.
    pub(crate) fn audio_names(&self) -> io::Result<Vec<String>> {
        match fs::read_dir(self.dir.join(AUDIO_DIR)) {
            Ok(entries) => entries
                .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Writes a played message's audio; returns its path.
    pub(crate) fn save_played(&self, name: &str, bytes: &[u8]) -> io::Result<PathBuf> {
        let dir = self.played_dir();
        create_private_dir(&dir)?;
        write_atomically(&dir, name, bytes)?;
        Ok(dir.join(name))
    }
}

/// `dir/name` replaced via a temporary file that is synced, renamed over it, and the
/// directory synced, so the rename itself survives a power cut.
pub(crate) fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    // A temporary file left by a crash may have any permissions: start from a new one.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut file = private_file_options().open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

fn private_file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        // Only Unix can open a directory to sync it; elsewhere the rename is what we get.
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_replaced_whole_and_private() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("a/b")).unwrap();
        assert_eq!(store.load_state().unwrap(), None);
        store.save_state(b"first").unwrap();
        store.save_state(b"second").unwrap();
        assert_eq!(store.load_state().unwrap().as_deref(), Some(&b"second"[..]));
        let leftovers: Vec<_> = fs::read_dir(tmp.path().join("a/b"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from(STATE_FILE)]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&store.state_path()), 0o600);
            assert_eq!(mode(&tmp.path().join("a/b")), 0o700);
        }
    }

    #[test]
    fn a_stale_temporary_file_does_not_block_saving() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        fs::write(tmp.path().join(format!(".{STATE_FILE}.tmp")), b"half").unwrap();
        store.save_state(b"whole").unwrap();
        assert_eq!(store.load_state().unwrap().as_deref(), Some(&b"whole"[..]));
    }
}
