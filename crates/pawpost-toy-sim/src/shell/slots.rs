//! The simulated toy's two image slots (docs/UPDATES.md). A computer cannot boot the code it
//! downloads, so the "image" the toy runs is a description in the state folder,
//! [`FIRMWARE_FILE`]: its board, version, anti-rollback counter, whether it is confirmed, and
//! the release keys built into it. The inactive slot is a file the toy writes updates into;
//! installing one checks it again as a boot stage would, records it as the image to try,
//! and the shell restarts its toy with the new version.
//!
//! `firmware.txt`, one `name=value` a line:
//!
//! ```text
//! board=pawpost-sim
//! version=1
//! counter=1
//! confirmed=1
//! release-key=<64 hex digits>   (one line per trusted key)
//! ```
//!
//! Without the file the toy reports no version and takes no update.

use std::fs;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use pawpost_crypto::ImageDigest;
use pawpost_toy::Firmware;

use crate::store::write_atomically;

/// The running image's description inside the state directory.
pub(crate) const FIRMWARE_FILE: &str = "firmware.txt";
/// The inactive slot an update is written into.
pub(crate) const UPDATE_SLOT_FILE: &str = "update-slot.bin";

/// What the simulated toy runs, and the keys its image trusts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SimFirmware {
    /// Board, version, counter and whether the image is confirmed.
    pub(crate) firmware: Firmware,
    /// Ed25519 public keys that may sign its updates.
    pub(crate) release_keys: Vec<[u8; 32]>,
}

impl SimFirmware {
    /// The file's text.
    pub(crate) fn to_text(&self) -> String {
        let f = &self.firmware;
        let mut text = format!(
            "board={}\nversion={}\ncounter={}\nconfirmed={}\n",
            f.board,
            f.version,
            f.counter,
            u8::from(f.confirmed)
        );
        for key in &self.release_keys {
            text.push_str(&format!("release-key={}\n", to_hex(key)));
        }
        text
    }

    /// Parses the file's text.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let mut board = None;
        let (mut version, mut counter, mut confirmed) = (None, None, true);
        let mut release_keys = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (name, value) = line
                .split_once('=')
                .ok_or_else(|| format!("`{line}` is not name=value"))?;
            let number = |v: &str| {
                v.parse::<u32>()
                    .map_err(|_| format!("{name} must be a whole number, not `{v}`"))
            };
            match name {
                "board" if pawpost_crypto::valid_board_name(value) => board = Some(value.into()),
                "board" => return Err(format!("`{value}` is not a board name (a-z, 0-9, -)")),
                "version" => version = Some(number(value)?),
                "counter" => counter = Some(number(value)?),
                "confirmed" => confirmed = value == "1",
                "release-key" => {
                    let key: [u8; 32] = from_hex(value)
                        .and_then(|k| k.try_into().ok())
                        .filter(pawpost_crypto::valid_release_public_key)
                        .ok_or_else(|| {
                            format!("release-key `{value}` is not an Ed25519 public key in hex")
                        })?;
                    release_keys.push(key);
                }
                _ => return Err(format!("unknown line `{name}`")),
            }
        }
        Ok(Self {
            firmware: Firmware {
                board: board.ok_or("board= is missing")?,
                version: version.ok_or("version= is missing")?,
                counter: counter.ok_or("counter= is missing")?,
                confirmed,
            },
            release_keys,
        })
    }
}

/// The slots in a state directory.
#[derive(Clone, Debug)]
pub(crate) struct Slots {
    dir: PathBuf,
}

/// Writes the image a toy leaves the factory with, unless the state folder already says
/// what it runs (it may have installed an update since); returns whether it wrote it.
pub(crate) fn install_factory(dir: &Path, firmware: &SimFirmware) -> io::Result<bool> {
    if dir.join(FIRMWARE_FILE).exists() {
        return Ok(false);
    }
    crate::store::Store::open(dir)?;
    write_atomically(dir, FIRMWARE_FILE, firmware.to_text().as_bytes())?;
    Ok(true)
}

impl Slots {
    pub(crate) fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    fn slot_path(&self) -> PathBuf {
        self.dir.join(UPDATE_SLOT_FILE)
    }

    /// What the toy runs, if the state folder describes it.
    pub(crate) fn running(&self) -> io::Result<Option<SimFirmware>> {
        let text = match fs::read_to_string(self.dir.join(FIRMWARE_FILE)) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        SimFirmware::parse(&text).map(Some).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("{FIRMWARE_FILE}: {e}"))
        })
    }

    fn set_running(&self, firmware: &SimFirmware) -> io::Result<()> {
        write_atomically(&self.dir, FIRMWARE_FILE, firmware.to_text().as_bytes())
    }

    pub(crate) fn erase(&self) -> io::Result<()> {
        match fs::remove_file(self.slot_path()) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    pub(crate) fn write(&self, offset: u32, bytes: &[u8]) -> io::Result<()> {
        let mut file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.slot_path())?;
        file.seek(SeekFrom::Start(u64::from(offset)))?;
        file.write_all(bytes)?;
        file.sync_all()
    }

    /// Checks the slot against the manifest as a boot stage would and, if it holds that
    /// image, makes it the running one (unconfirmed); returns it.
    pub(crate) fn install(
        &self,
        running: &SimFirmware,
        version: u32,
        counter: u32,
        size: u32,
        sha256: &[u8; 32],
    ) -> io::Result<SimFirmware> {
        let image = fs::read(self.slot_path())?;
        if u32::try_from(image.len()).ok() != Some(size) || ImageDigest::of(&image) != *sha256 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the image slot does not hold the image that was checked; it stays unused",
            ));
        }
        let next = SimFirmware {
            firmware: Firmware {
                board: running.firmware.board.clone(),
                version,
                counter,
                confirmed: false,
            },
            release_keys: running.release_keys.clone(),
        };
        self.set_running(&next)?;
        Ok(next)
    }

    pub(crate) fn confirm(&self, running: &mut SimFirmware) -> io::Result<()> {
        running.firmware.confirmed = true;
        self.set_running(running)
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn factory() -> SimFirmware {
        SimFirmware {
            firmware: Firmware {
                board: "pawpost-sim".into(),
                version: 1,
                counter: 4,
                confirmed: true,
            },
            release_keys: vec![pawpost_crypto::ReleaseKey::from_seed(&[9; 32]).public_key()],
        }
    }

    #[test]
    fn what_the_toy_runs_reads_back_as_written() {
        let written = factory();
        assert_eq!(SimFirmware::parse(&written.to_text()), Ok(written));
        assert!(SimFirmware::parse("board=Big Board\nversion=1\ncounter=1\n").is_err());
        assert!(SimFirmware::parse("board=b\nversion=1\ncounter=1\nrelease-key=00\n").is_err());
    }

    #[test]
    fn the_factory_image_never_replaces_an_installed_update() {
        let dir = tempfile::tempdir().unwrap();
        assert!(install_factory(dir.path(), &factory()).unwrap());
        let slots = Slots::new(dir.path());
        let image = b"version two".to_vec();
        slots.write(0, &image).unwrap();
        let running = slots.running().unwrap().unwrap();
        let next = slots
            .install(&running, 2, 5, 11, &ImageDigest::of(&image))
            .unwrap();
        assert!(!next.firmware.confirmed);
        assert!(!install_factory(dir.path(), &factory()).unwrap());
        assert_eq!(slots.running().unwrap(), Some(next));
    }

    #[test]
    fn a_slot_that_does_not_hold_the_checked_image_is_not_installed() {
        let dir = tempfile::tempdir().unwrap();
        install_factory(dir.path(), &factory()).unwrap();
        let slots = Slots::new(dir.path());
        slots.write(0, b"half").unwrap();
        let running = slots.running().unwrap().unwrap();
        assert!(slots
            .install(&running, 2, 5, 11, &ImageDigest::of(b"version two"))
            .is_err());
        assert_eq!(slots.running().unwrap(), Some(factory()));
    }
}
