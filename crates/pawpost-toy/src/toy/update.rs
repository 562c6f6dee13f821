//! Signed updates of the toy's own software (`docs/UPDATES.md`). The shell says what the toy
//! runs ([`Firmware`]) and which release keys it trusts (built into the image). After `Auth`
//! the toy tells the server its version; the server may offer a signed release. The toy
//! takes it only when a trusted key signed the manifest, the board is its own and the
//! counter is above the running one; it then asks for the image a few pieces at a time,
//! writes each piece into the inactive slot and hashes it, and only when every byte hashes
//! to the manifest's digest asks the shell to install it and restart. Anything else erases
//! the slot: the toy keeps running the version it has.
//!
//! A download lives in memory only. A cut connection resumes it on the next one, from the
//! first byte not received; a restart (a power loss, say) starts it again from the first
//! byte, erasing what the slot held. A half-written slot is never installed.

use alloc::string::String;
use alloc::vec::Vec;

use pawpost_crypto::{verify_manifest, ImageDigest, Manifest, ManifestError};
use pawpost_protocol::{Frame, FRAME_SIGNATURE_LEN, UPDATE_CHUNK_BYTES};

use super::{Action, Report, Toy};

/// Largest image the toy takes on any board; a board with smaller image slots says so
/// ([`Toy::with_update_slot`]), and the toy takes no image larger than its slot.
pub const MAX_UPDATE_IMAGE_BYTES: u32 = 1024 * 1024;
/// Pieces of an image the toy asks for ahead of the one it is writing: two pieces of
/// [`UPDATE_CHUNK_BYTES`] in memory at most, whatever the link.
pub const UPDATE_WINDOW_CHUNKS: u8 = 2;
/// [`UPDATE_CHUNK_BYTES`] as image offsets count (4096 fits).
#[allow(clippy::cast_possible_truncation)]
const CHUNK: u32 = UPDATE_CHUNK_BYTES as u32;

/// What the toy runs, as its shell knows it (from the boot stage, or built in).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Firmware {
    /// The board the image was built for, as release manifests name it.
    pub board: String,
    /// The software version people see.
    pub version: u32,
    /// The anti-rollback counter of the running image.
    pub counter: u32,
    /// Whether this image already proved it works (it authenticated to the server since
    /// it was installed). An unconfirmed image is tried once more at most by the boot
    /// stage, which otherwise falls back to the previous one.
    pub confirmed: bool,
}

/// Why the toy refused an update; it keeps running the version it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UpdateRefusal {
    /// The manifest does not parse, or names an empty image.
    Malformed,
    /// No release key the toy trusts signed the manifest.
    BadSignature,
    /// The release is for another board.
    WrongBoard,
    /// Its counter is not above the running image's. An equal counter is refused as well:
    /// it offers nothing the toy does not run, and taking it would let an old image of the
    /// same counter be installed again.
    StaleCounter,
    /// The image is larger than the board's image slot ([`Toy::with_update_slot`]), or
    /// than [`MAX_UPDATE_IMAGE_BYTES`].
    TooLarge,
    /// A piece arrived for another place in the image than the next, or of another length
    /// than the protocol's.
    OutOfOrder,
    /// The image's bytes do not hash to the manifest's digest: altered or corrupt.
    DigestMismatch,
    /// The shell gave the toy no [`Firmware`], so it cannot tell what it runs.
    NoFirmware,
}

impl UpdateRefusal {
    /// A stable name, for logs.
    pub const fn code(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::BadSignature => "bad_signature",
            Self::WrongBoard => "wrong_board",
            Self::StaleCounter => "stale_counter",
            Self::TooLarge => "too_large",
            Self::OutOfOrder => "out_of_order",
            Self::DigestMismatch => "digest_mismatch",
            Self::NoFirmware => "no_firmware",
        }
    }
}

/// An image being received into the inactive slot.
pub(super) struct Download {
    /// The manifest's bytes as signed, to recognise the same offer on a later connection.
    manifest_bytes: Vec<u8>,
    manifest: Manifest,
    digest: ImageDigest,
    /// The first byte not written yet.
    next: u32,
    /// The end of what was asked for on this connection.
    requested_end: u32,
}

/// What the toy knows about updates: what it runs, whom it trusts, what it downloads.
#[derive(Default)]
pub(super) struct Updates {
    firmware: Option<Firmware>,
    release_keys: Vec<[u8; 32]>,
    /// The size of the board's image slot, if the shell gave it.
    slot_bytes: Option<u32>,
    download: Option<Download>,
    /// The last manifest refused for its image (its digest did not match): not downloaded
    /// again until the toy restarts.
    refused: Option<Vec<u8>>,
}

impl Updates {
    /// A connection ended: nothing asked for on it arrives any more.
    pub(super) fn link_lost(&mut self) {
        if let Some(download) = &mut self.download {
            download.requested_end = download.next;
        }
    }
}

impl Toy {
    /// Tells the toy what it runs and which release keys (Ed25519 public keys) may sign
    /// its updates. Without it the toy reports no version and takes no update.
    #[must_use]
    pub fn with_firmware(mut self, firmware: Firmware, release_keys: Vec<[u8; 32]>) -> Self {
        self.updates.firmware = Some(firmware);
        self.updates.release_keys = release_keys;
        self
    }

    /// Tells the toy how large an image its board's slot holds: it refuses a larger offer
    /// (`TooLarge`) before downloading any of it. Never above [`MAX_UPDATE_IMAGE_BYTES`].
    #[must_use]
    pub fn with_update_slot(mut self, slot_bytes: u32) -> Self {
        self.updates.slot_bytes = Some(slot_bytes.min(MAX_UPDATE_IMAGE_BYTES));
        self
    }

    /// The largest image the toy takes: its board's slot, or [`MAX_UPDATE_IMAGE_BYTES`].
    pub fn max_update_image_bytes(&self) -> u32 {
        self.updates.slot_bytes.unwrap_or(MAX_UPDATE_IMAGE_BYTES)
    }

    /// What the toy runs, as its shell told it.
    pub fn firmware(&self) -> Option<&Firmware> {
        self.updates.firmware.as_ref()
    }

    /// Says what the toy runs, after `Auth`.
    pub(super) fn send_version(&self, out: &mut Vec<Action>) {
        if let Some(firmware) = &self.updates.firmware {
            self.send_now(
                &Frame::Version {
                    board: &firmware.board,
                    version: firmware.version,
                    counter: firmware.counter,
                },
                out,
            );
        }
    }

    /// The server accepted the toy: an image tried for the first time works.
    pub(super) fn confirm_image(&mut self, out: &mut Vec<Action>) {
        if let Some(firmware) = &mut self.updates.firmware {
            if !firmware.confirmed && self.link.authenticated {
                firmware.confirmed = true;
                out.push(Action::ConfirmImage);
            }
        }
    }

    pub(super) fn update_offer(
        &mut self,
        manifest_bytes: &[u8],
        signature: &[u8; FRAME_SIGNATURE_LEN],
        out: &mut Vec<Action>,
    ) {
        if !self.link.authenticated {
            super::ignored(pawpost_protocol::FrameType::UpdateOffer, out);
            return;
        }
        let manifest = match self.check_offer(manifest_bytes, signature) {
            Ok(manifest) => manifest,
            Err(reason) => {
                out.push(Action::Report(Report::UpdateRefused { reason }));
                return;
            }
        };
        if self.updates.refused.as_deref() == Some(manifest_bytes) {
            // Its image did not match before: the server's copy is bad, not the link.
            out.push(Action::Report(Report::UpdateRefused {
                reason: UpdateRefusal::DigestMismatch,
            }));
            return;
        }
        let resume = self
            .updates
            .download
            .as_ref()
            .is_some_and(|d| d.manifest_bytes == manifest_bytes);
        if !resume {
            out.push(Action::EraseUpdate);
            self.updates.download = Some(Download {
                manifest_bytes: manifest_bytes.to_vec(),
                manifest,
                digest: ImageDigest::new(),
                next: 0,
                requested_end: 0,
            });
        }
        self.request_update_chunks(UPDATE_WINDOW_CHUNKS, out);
    }

    fn check_offer(
        &self,
        manifest_bytes: &[u8],
        signature: &[u8; FRAME_SIGNATURE_LEN],
    ) -> Result<Manifest, UpdateRefusal> {
        let firmware = self
            .updates
            .firmware
            .as_ref()
            .ok_or(UpdateRefusal::NoFirmware)?;
        let manifest = verify_manifest(manifest_bytes, signature, &self.updates.release_keys)
            .map_err(|e| match e {
                ManifestError::BadSignature => UpdateRefusal::BadSignature,
                _ => UpdateRefusal::Malformed,
            })?;
        if manifest.board != firmware.board {
            return Err(UpdateRefusal::WrongBoard);
        }
        if manifest.counter <= firmware.counter {
            return Err(UpdateRefusal::StaleCounter);
        }
        if manifest.size > self.max_update_image_bytes() {
            return Err(UpdateRefusal::TooLarge);
        }
        Ok(manifest)
    }

    /// Asks for up to `window` more pieces after those already asked for.
    fn request_update_chunks(&mut self, window: u8, out: &mut Vec<Action>) {
        let Some(download) = &mut self.updates.download else {
            return;
        };
        let size = download.manifest.size;
        let in_flight = download.requested_end.saturating_sub(download.next);
        let chunk = CHUNK;
        let room = u32::from(window).saturating_sub(in_flight.div_ceil(chunk));
        if room == 0 || download.requested_end >= size {
            return;
        }
        let offset = download.requested_end;
        let wanted = u8::try_from(room).unwrap_or(u8::MAX);
        download.requested_end = size.min(offset.saturating_add(room.saturating_mul(chunk)));
        self.send_now(
            &Frame::UpdateRequest {
                offset,
                window: wanted,
            },
            out,
        );
    }

    pub(super) fn update_chunk(&mut self, offset: u32, bytes: &[u8], out: &mut Vec<Action>) {
        let Some(download) = &mut self.updates.download else {
            super::ignored(pawpost_protocol::FrameType::UpdateChunk, out);
            return;
        };
        let expected = CHUNK.min(download.manifest.size - download.next);
        let length_ok = u32::try_from(bytes.len()).is_ok_and(|len| len == expected);
        if offset != download.next || !length_ok || offset >= download.requested_end {
            self.abandon_update(UpdateRefusal::OutOfOrder, out);
            return;
        }
        out.push(Action::WriteUpdate {
            offset,
            bytes: bytes.to_vec(),
        });
        download.digest.update(bytes);
        download.next += expected;
        if download.next < download.manifest.size {
            self.request_update_chunks(UPDATE_WINDOW_CHUNKS, out);
            return;
        }
        let Some(done) = self.updates.download.take() else {
            return;
        };
        if done.digest.finish() != done.manifest.sha256 {
            self.updates.refused = Some(done.manifest_bytes);
            out.push(Action::EraseUpdate);
            out.push(Action::Report(Report::UpdateRefused {
                reason: UpdateRefusal::DigestMismatch,
            }));
            return;
        }
        out.push(Action::InstallUpdate {
            version: done.manifest.version,
            counter: done.manifest.counter,
            size: done.manifest.size,
            sha256: done.manifest.sha256,
        });
    }

    fn abandon_update(&mut self, reason: UpdateRefusal, out: &mut Vec<Action>) {
        self.updates.download = None;
        out.push(Action::EraseUpdate);
        out.push(Action::Report(Report::UpdateRefused { reason }));
    }
}
