//! The toy's voice: prompts as text, and as WAV files when `espeak-ng` is installed.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use pawpost_toy::Prompt;

use crate::language::Language;
use crate::store::create_private_dir;

const ESPEAK: &str = "espeak-ng";

/// A stuck speech synthesiser must not stall the toy.
const ESPEAK_TIMEOUT: Duration = Duration::from_secs(10);

/// What the toy says for a prompt. A pairing code is its digits separated by spaces, so that
/// a parent hears (and a speech synthesiser reads) one digit at a time.
pub fn prompt_text(prompt: Prompt) -> String {
    match prompt {
        Prompt::PairingStarted => "let's find your family".into(),
        Prompt::PairingCode(code) => spaced_digits(&code.digits()),
        Prompt::ConfirmPairing(number) => format!(
            "if your app shows {}, press my paw",
            spaced_digits(&number.digits())
        ),
        Prompt::Paired => "hooray, I found my family".into(),
        Prompt::PairingFailed => "I could not find my family; hold my paw to try again".into(),
        Prompt::AlreadyPaired => "I already have a family".into(),
        Prompt::NotPaired => "I don't have a family yet; hold my paw to find them".into(),
        Prompt::Unpaired => "goodbye, family".into(),
        Prompt::NoMessages => "no new messages".into(),
        Prompt::Recording => "I'm listening".into(),
        Prompt::RecordingFailed => "oops, that message did not work".into(),
        Prompt::Sent => "message sent".into(),
        Prompt::QuietHours => "shh, it's quiet time".into(),
        Prompt::TryLater => "let's try again later".into(),
        Prompt::Forgotten => "I've forgotten everything. I'm ready to be paired again.".into(),
        Prompt::LeftFamily => "I left my family. I can be set up with a family again.".into(),
        Prompt::SafetyNumber(number) => {
            format!("my safety number is {}", spaced_digits(&number.digits()))
        }
        Prompt::MessageFrom(name) => format!("a message from {name}"),
    }
}

pub(crate) fn spaced_digits(digits: &[u8]) -> String {
    digits
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes prompts as `spoken/NNN.wav`, numbered on from the files already there so that a
/// restarted toy does not overwrite what it said before.
pub(crate) struct Speaker {
    dir: PathBuf,
    espeak: PathBuf,
    language: Language,
    next: u32,
}

impl Speaker {
    /// `None` when WAVs are not wanted or `espeak-ng` is not installed: text only.
    pub(crate) fn new(wanted: bool, dir: PathBuf, language: Language) -> Option<Self> {
        if !wanted {
            return None;
        }
        let espeak = find_in_path(ESPEAK)?;
        let next = last_number(&dir).map_or(1, |n| n + 1);
        Some(Self {
            dir,
            espeak,
            language,
            next,
        })
    }

    /// Speaks `text` into the next WAV file; returns its path, or why it failed.
    pub(crate) async fn speak(&mut self, text: &str) -> Result<PathBuf, String> {
        create_private_dir(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let path = self.dir.join(format!("{:03}.wav", self.next));
        self.next += 1;
        let mut child = tokio::process::Command::new(&self.espeak)
            .arg("-v")
            .arg(self.language.code())
            .arg("-w")
            .arg(&path)
            .arg(text)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("{ESPEAK}: {e}"))?;
        match tokio::time::timeout(ESPEAK_TIMEOUT, child.wait()).await {
            Ok(Ok(status)) if status.success() => {
                // The synthesiser creates the file with the default permissions; what the toy
                // says (a pairing code among it) stays as private as the rest of its storage.
                make_private(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                Ok(path)
            }
            Ok(Ok(status)) => Err(format!("{ESPEAK} failed: {status}")),
            Ok(Err(e)) => Err(format!("{ESPEAK}: {e}")),
            Err(_) => Err(format!("{ESPEAK} took longer than {ESPEAK_TIMEOUT:?}")),
        }
    }
}

fn make_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// The highest `NNN` of the `NNN.wav` files in `dir`.
fn last_number(dir: &Path) -> Option<u32> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            if path.extension() != Some(OsStr::new("wav")) {
                return None;
            }
            path.file_stem()?.to_str()?.parse::<u32>().ok()
        })
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pawpost_toy::PairingCode;

    #[test]
    fn a_pairing_code_is_spoken_digit_by_digit() {
        let code = PairingCode::from_number(48_190).unwrap();
        assert_eq!(prompt_text(Prompt::PairingCode(code)), "0 4 8 1 9 0");
    }

    #[test]
    fn the_safety_number_is_spoken_digit_by_digit_and_a_sender_by_name() {
        let number = pawpost_toy::SafetyNumber(5_107);
        assert_eq!(
            prompt_text(Prompt::SafetyNumber(number)),
            "my safety number is 0 0 5 1 0 7"
        );
        let gran = pawpost_toy::SpokenName::new("Grandma").unwrap();
        assert_eq!(
            prompt_text(Prompt::MessageFrom(gran)),
            "a message from Grandma"
        );
    }

    #[test]
    fn spoken_files_are_numbered_after_the_ones_already_there() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(last_number(tmp.path()), None);
        for name in ["001.wav", "007.wav", "notes.txt", "x.wav"] {
            std::fs::write(tmp.path().join(name), b"").unwrap();
        }
        assert_eq!(last_number(tmp.path()), Some(7));
    }
}
