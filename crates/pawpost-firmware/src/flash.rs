//! The toy's flash, board-independent: its layout, flash semantics (a page is erased
//! before it is written, and a write only turns erased bytes into data), the toy's state
//! kept in two alternating copies so that a write torn by a power cut leaves the previous
//! one, and the record of which image slot the boot stage runs.
//!
//! ```text
//! offset     length     what
//! 0x000000   2 pages    the boot record, two alternating copies (BootRecord)
//! 0x010000   2 × 32 KiB the toy's state, two alternating copies (StateStore)
//! 0x040000   512 KiB    image slot A
//! 0x0c0000   512 KiB    image slot B
//! 0x140000   the rest   queued audio (crate::audio)
//! ```
//!
//! Every copy and header carries a CRC-32 over what it holds and is written last, after
//! the data it describes, so a torn write reads as "not there" and the copy before it
//! counts.

use pawpost_ble::crc32;
use sha2::{Digest, Sha256};

/// The erase unit: a page is erased (all bytes 0xff) before any byte of it is written.
pub const PAGE: usize = 4096;
/// The whole flash.
pub const FLASH_LEN: usize = 8 * 1024 * 1024;
/// The two copies of the boot record.
pub const RECORD_COPIES: [usize; 2] = [0, PAGE];
/// The largest state the toy may save (its header included).
pub const STATE_COPY_LEN: usize = 32 * 1024;
/// The two copies of the toy's state.
pub const STATE_COPIES: [usize; 2] = [0x1_0000, 0x1_0000 + STATE_COPY_LEN];
/// The largest image a slot holds.
pub const IMAGE_SLOT_LEN: usize = 512 * 1024;
/// Image slots A and B.
pub const IMAGE_SLOTS: [usize; 2] = [0x4_0000, 0x4_0000 + IMAGE_SLOT_LEN];
/// Where queued audio starts; it runs to the end of the flash.
pub const AUDIO_START: usize = IMAGE_SLOTS[1] + IMAGE_SLOT_LEN;
/// Boots a pending image gets before the boot stage goes back to the confirmed one.
pub const MAX_BOOT_TRIES: u8 = 3;

const STATE_MAGIC: u32 = u32::from_le_bytes(*b"PPST");
const RECORD_MAGIC: u32 = u32::from_le_bytes(*b"PPBR");
/// A state copy's header: magic, sequence number, length, CRC-32 of the rest.
pub const STATE_HEADER_LEN: usize = 16;

/// What went wrong with the flash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlashError {
    /// Outside the flash, or an erase not on page boundaries.
    OutOfRange,
    /// A write over bytes that were not erased first.
    NotErased,
    /// The state is larger than a state copy.
    TooLarge,
}

impl FlashError {
    /// What it means, in words.
    pub fn as_str(self) -> &'static str {
        match self {
            FlashError::OutOfRange => "a flash access out of range",
            FlashError::NotErased => "a flash write over bytes not erased first",
            FlashError::TooLarge => "the state is larger than its place in flash",
        }
    }
}

/// A NOR flash: read anywhere, erase whole pages, write erased bytes.
pub trait Flash {
    /// Reads `buf.len()` bytes at `offset`.
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), FlashError>;
    /// Erases the pages in `offset..offset + len` (both multiples of [`PAGE`]).
    fn erase(&mut self, offset: usize, len: usize) -> Result<(), FlashError>;
    /// Writes `bytes` at `offset`, where every byte must have been erased.
    fn program(&mut self, offset: usize, bytes: &[u8]) -> Result<(), FlashError>;
}

/// Something told of every change to a [`MemFlash`] (a board writes it back to where the
/// flash survives a power cut).
pub trait WriteBack {
    /// `bytes` now stand at `offset` (after an erase, 0xff).
    fn changed(&mut self, offset: usize, bytes: &[u8]);
}

impl WriteBack for () {
    fn changed(&mut self, _offset: usize, _bytes: &[u8]) {}
}

/// A flash held in memory, with flash semantics, telling `W` of each change.
pub struct MemFlash<'a, W> {
    mem: &'a mut [u8],
    write_back: W,
}

impl<'a, W: WriteBack> MemFlash<'a, W> {
    /// A flash over `mem` (its contents are the flash's).
    pub fn new(mem: &'a mut [u8], write_back: W) -> Self {
        Self { mem, write_back }
    }

    /// The whole flash, to read.
    pub fn bytes(&self) -> &[u8] {
        self.mem
    }

    /// Its write-back.
    pub fn write_back(&mut self) -> &mut W {
        &mut self.write_back
    }

    fn range(&self, offset: usize, len: usize) -> Result<core::ops::Range<usize>, FlashError> {
        let end = offset.checked_add(len).ok_or(FlashError::OutOfRange)?;
        if end > self.mem.len() {
            return Err(FlashError::OutOfRange);
        }
        Ok(offset..end)
    }
}

impl<W: WriteBack> Flash for MemFlash<'_, W> {
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), FlashError> {
        let range = self.range(offset, buf.len())?;
        buf.copy_from_slice(&self.mem[range]);
        Ok(())
    }

    fn erase(&mut self, offset: usize, len: usize) -> Result<(), FlashError> {
        if offset % PAGE != 0 || len % PAGE != 0 {
            return Err(FlashError::OutOfRange);
        }
        let range = self.range(offset, len)?;
        self.mem[range.clone()].fill(0xff);
        self.write_back.changed(offset, &self.mem[range]);
        Ok(())
    }

    fn program(&mut self, offset: usize, bytes: &[u8]) -> Result<(), FlashError> {
        let range = self.range(offset, bytes.len())?;
        if self.mem[range.clone()].iter().any(|b| *b != 0xff) {
            return Err(FlashError::NotErased);
        }
        self.mem[range.clone()].copy_from_slice(bytes);
        self.write_back.changed(offset, &self.mem[range]);
        Ok(())
    }
}

/// Rounds `len` up to whole pages.
pub fn pages(len: usize) -> usize {
    len.div_ceil(PAGE) * PAGE
}

/// The toy's state in two alternating copies, each with a sequence number and a CRC-32:
/// a save goes to the older copy, so a save torn by a power cut leaves the newer one.
pub struct StateStore {
    /// The copy holding the newest valid state, and its sequence number.
    newest: Option<(usize, u32)>,
}

impl StateStore {
    /// Finds the newest valid copy.
    pub fn open(flash: &impl Flash) -> Self {
        let mut newest: Option<(usize, u32)> = None;
        for (index, at) in STATE_COPIES.iter().enumerate() {
            if let Some((seq, _)) = read_state_copy(flash, *at, false) {
                if newest.is_none_or(|(_, best)| seq > best) {
                    newest = Some((index, seq));
                }
            }
        }
        Self { newest }
    }

    /// The newest state saved, if any.
    pub fn load(&self, flash: &impl Flash) -> Option<alloc::vec::Vec<u8>> {
        let (index, _) = self.newest?;
        read_state_copy(flash, STATE_COPIES[index], true).and_then(|(_, data)| data)
    }

    /// Saves `state` into the older copy: its data first, its header last.
    pub fn save(&mut self, flash: &mut impl Flash, state: &[u8]) -> Result<(), FlashError> {
        let total = STATE_HEADER_LEN + state.len();
        if total > STATE_COPY_LEN {
            return Err(FlashError::TooLarge);
        }
        let (index, seq) = match self.newest {
            Some((index, seq)) => (1 - index, seq.wrapping_add(1)),
            None => (0, 1),
        };
        let at = STATE_COPIES[index];
        flash.erase(at, pages(total))?;
        flash.program(at + STATE_HEADER_LEN, state)?;
        let len = u32::try_from(state.len()).map_err(|_| FlashError::TooLarge)?;
        let mut header = [0u8; STATE_HEADER_LEN];
        header[0..4].copy_from_slice(&STATE_MAGIC.to_le_bytes());
        header[4..8].copy_from_slice(&seq.to_le_bytes());
        header[8..12].copy_from_slice(&len.to_le_bytes());
        let crc = state_crc(seq, len, state);
        header[12..16].copy_from_slice(&crc.to_le_bytes());
        flash.program(at, &header)?;
        self.newest = Some((index, seq));
        Ok(())
    }
}

fn state_crc(seq: u32, len: u32, state: &[u8]) -> u32 {
    let mut covered = alloc::vec::Vec::with_capacity(8 + state.len());
    covered.extend_from_slice(&seq.to_le_bytes());
    covered.extend_from_slice(&len.to_le_bytes());
    covered.extend_from_slice(state);
    crc32(&covered)
}

/// A valid state copy at `at`: its sequence number, and its data if `data`.
fn read_state_copy(
    flash: &impl Flash,
    at: usize,
    data: bool,
) -> Option<(u32, Option<alloc::vec::Vec<u8>>)> {
    let mut header = [0u8; STATE_HEADER_LEN];
    flash.read(at, &mut header).ok()?;
    let word =
        |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    if word(0) != STATE_MAGIC {
        return None;
    }
    let (seq, len) = (word(4), word(8));
    let size = usize::try_from(len).ok()?;
    if size > STATE_COPY_LEN - STATE_HEADER_LEN {
        return None;
    }
    let mut state = alloc::vec![0u8; size];
    flash.read(at + STATE_HEADER_LEN, &mut state).ok()?;
    if state_crc(seq, len, &state) != word(12) {
        return None;
    }
    Some((seq, data.then_some(state)))
}

/// What an image slot holds, as the record says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlotInfo {
    /// The image's version (0: the slot holds no image).
    pub version: u32,
    /// Its anti-rollback counter.
    pub counter: u32,
    /// Its length in bytes.
    pub size: u32,
    /// The SHA-256 of its `size` bytes.
    pub sha256: [u8; 32],
}

const SLOT_INFO_LEN: usize = 44;

impl SlotInfo {
    /// The slot info of `image`.
    pub fn of(version: u32, counter: u32, image: &[u8]) -> Option<Self> {
        Some(Self {
            version,
            counter,
            size: u32::try_from(image.len()).ok()?,
            sha256: sha256(image),
        })
    }

    /// Whether `slot` of the flash holds this image: its size fits a slot and its bytes
    /// have this digest. A torn or tampered image does not.
    pub fn verify(&self, flash: &impl Flash, slot: usize) -> bool {
        let Ok(size) = usize::try_from(self.size) else {
            return false;
        };
        if self.version == 0 || size == 0 || size > IMAGE_SLOT_LEN {
            return false;
        }
        let mut hasher = Sha256::new();
        let mut piece = [0u8; 256];
        let mut done = 0;
        while done < size {
            let n = piece.len().min(size - done);
            if flash
                .read(IMAGE_SLOTS[slot] + done, &mut piece[..n])
                .is_err()
            {
                return false;
            }
            hasher.update(&piece[..n]);
            done += n;
        }
        let digest: [u8; 32] = hasher.finalize().into();
        digest == self.sha256
    }

    fn encode(&self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&self.version.to_le_bytes());
        out[4..8].copy_from_slice(&self.counter.to_le_bytes());
        out[8..12].copy_from_slice(&self.size.to_le_bytes());
        out[12..44].copy_from_slice(&self.sha256);
    }

    fn decode(bytes: &[u8]) -> Self {
        let word =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&bytes[12..44]);
        Self {
            version: word(0),
            counter: word(4),
            size: word(8),
            sha256,
        }
    }
}

/// The SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Which image slot the boot stage runs: the confirmed one, and a pending one to try
/// (after an install) with the boots it has had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootRecord {
    /// Sequence number: of the two copies, the valid one with the higher counts.
    pub seq: u32,
    /// The confirmed slot (0: A, 1: B).
    pub active: u8,
    /// A slot installed but not yet confirmed.
    pub pending: Option<u8>,
    /// Boots the pending slot has had.
    pub tries: u8,
    /// What each slot holds.
    pub slots: [SlotInfo; 2],
}

/// magic, seq, active, pending (0xff none), tries, reserved, 2 × slot info, CRC-32.
const RECORD_LEN: usize = 12 + 2 * SLOT_INFO_LEN + 4;
const NO_PENDING: u8 = 0xff;

impl BootRecord {
    /// A new toy's record: `image` in slot A, confirmed.
    pub fn factory(version: u32, counter: u32, image: &[u8]) -> Option<Self> {
        Some(Self {
            seq: 1,
            active: 0,
            pending: None,
            tries: 0,
            slots: [SlotInfo::of(version, counter, image)?, SlotInfo::default()],
        })
    }

    /// The slot that runs after the boot stage settled this record.
    pub fn running(&self) -> u8 {
        self.pending.unwrap_or(self.active)
    }

    /// The slot an update is written to: the one not running.
    pub fn inactive(&self) -> u8 {
        1 - (self.running() & 1)
    }

    /// The bytes of one copy.
    pub fn encode(&self) -> [u8; RECORD_LEN] {
        let mut out = [0u8; RECORD_LEN];
        out[0..4].copy_from_slice(&RECORD_MAGIC.to_le_bytes());
        out[4..8].copy_from_slice(&self.seq.to_le_bytes());
        out[8] = self.active;
        out[9] = self.pending.unwrap_or(NO_PENDING);
        out[10] = self.tries;
        for (i, slot) in self.slots.iter().enumerate() {
            slot.encode(&mut out[12 + i * SLOT_INFO_LEN..12 + (i + 1) * SLOT_INFO_LEN]);
        }
        let crc = crc32(&out[..RECORD_LEN - 4]);
        out[RECORD_LEN - 4..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8; RECORD_LEN]) -> Option<Self> {
        let word =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        if word(0) != RECORD_MAGIC || crc32(&bytes[..RECORD_LEN - 4]) != word(RECORD_LEN - 4) {
            return None;
        }
        let pending = match bytes[9] {
            NO_PENDING => None,
            slot @ (0 | 1) => Some(slot),
            _ => return None,
        };
        if bytes[8] > 1 {
            return None;
        }
        Some(Self {
            seq: word(4),
            active: bytes[8],
            pending,
            tries: bytes[10],
            slots: [
                SlotInfo::decode(&bytes[12..12 + SLOT_INFO_LEN]),
                SlotInfo::decode(&bytes[12 + SLOT_INFO_LEN..12 + 2 * SLOT_INFO_LEN]),
            ],
        })
    }

    /// The newest valid copy, if any.
    pub fn load(flash: &impl Flash) -> Option<Self> {
        let mut best: Option<Self> = None;
        for at in RECORD_COPIES {
            let mut bytes = [0u8; RECORD_LEN];
            if flash.read(at, &mut bytes).is_err() {
                continue;
            }
            if let Some(record) = Self::decode(&bytes) {
                if best.is_none_or(|b| record.seq > b.seq) {
                    best = Some(record);
                }
            }
        }
        best
    }

    /// Saves this record with the next sequence number into the copy not holding the
    /// newest one (found by `seq`), so a torn save leaves the record before it.
    pub fn save(&mut self, flash: &mut impl Flash) -> Result<(), FlashError> {
        self.seq = self.seq.wrapping_add(1);
        // The copy written alternates with the sequence number.
        let at = RECORD_COPIES[usize::from(self.seq % 2 == 1)];
        flash.erase(at, PAGE)?;
        flash.program(at, &self.encode())
    }

    /// What the boot stage does with this record at power-on: which slot to run (None:
    /// no image verifies), and whether the record changed and must be saved first. A
    /// pending slot gets [`MAX_BOOT_TRIES`] boots, must verify and must not go back in
    /// counter; otherwise the confirmed slot runs, and if that does not verify, the
    /// other one.
    pub fn decide(&mut self, verifies: impl Fn(u8, &SlotInfo) -> bool) -> (Option<u8>, bool) {
        let mut changed = false;
        if let Some(pending) = self.pending {
            let info = self.slots[usize::from(pending)];
            let counter_ok = info.counter >= self.slots[usize::from(self.active)].counter;
            changed = true;
            if self.tries < MAX_BOOT_TRIES
                && counter_ok
                && pending != self.active
                && verifies(pending, &info)
            {
                self.tries += 1;
                return (Some(pending), changed);
            }
            self.pending = None;
            self.tries = 0;
        }
        let active = self.active;
        if verifies(active, &self.slots[usize::from(active)]) {
            return (Some(active), changed);
        }
        let other = 1 - active;
        if verifies(other, &self.slots[usize::from(other)]) {
            self.active = other;
            return (Some(other), true);
        }
        (None, changed)
    }

    /// The running image works: a pending slot becomes the confirmed one. Returns whether
    /// the record changed.
    pub fn confirm(&mut self) -> bool {
        match self.pending.take() {
            Some(slot) => {
                self.active = slot;
                self.tries = 0;
                true
            }
            None => false,
        }
    }

    /// Marks the inactive slot, holding `info`, to be tried at the next boot.
    pub fn install(&mut self, info: SlotInfo) {
        let slot = self.inactive();
        self.slots[usize::from(slot)] = info;
        self.pending = Some(slot);
        self.tries = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// Stops taking changes after `budget` bytes, as a power cut would.
    struct Cut {
        budget: usize,
        kept: Vec<(usize, Vec<u8>)>,
    }

    impl WriteBack for Cut {
        fn changed(&mut self, offset: usize, bytes: &[u8]) {
            let n = bytes.len().min(self.budget);
            self.budget -= n;
            self.kept.push((offset, bytes[..n].to_vec()));
        }
    }

    /// The flash as the write-back saw it: what survived the cut.
    fn survived(base: &[u8], cut: &Cut) -> Vec<u8> {
        let mut out = base.to_vec();
        for (offset, bytes) in &cut.kept {
            out[*offset..*offset + bytes.len()].copy_from_slice(bytes);
        }
        out
    }

    #[test]
    fn flash_writes_only_erased_bytes() {
        let mut mem = vec![0xffu8; 4 * PAGE];
        let mut flash = MemFlash::new(&mut mem, ());
        flash.program(10, b"abc").unwrap();
        assert_eq!(flash.program(11, b"x"), Err(FlashError::NotErased));
        assert_eq!(flash.erase(1, PAGE), Err(FlashError::OutOfRange));
        flash.erase(0, PAGE).unwrap();
        flash.program(11, b"x").unwrap();
        assert_eq!(
            flash.program(4 * PAGE - 1, b"xy"),
            Err(FlashError::OutOfRange)
        );
    }

    #[test]
    fn the_state_alternates_and_a_torn_save_keeps_the_one_before() {
        let mut mem = vec![0xffu8; AUDIO_START];
        let mut flash = MemFlash::new(&mut mem, ());
        let mut store = StateStore::open(&flash);
        assert_eq!(store.load(&flash), None);
        store.save(&mut flash, b"first").unwrap();
        store.save(&mut flash, b"second").unwrap();
        let store = StateStore::open(&flash);
        assert_eq!(store.load(&flash).as_deref(), Some(&b"second"[..]));

        // Every point at which a third save could be cut leaves "second" or "third".
        let base = mem.clone();
        let total = {
            let mut probe = base.clone();
            let mut flash = MemFlash::new(
                &mut probe,
                Cut {
                    budget: usize::MAX,
                    kept: Vec::new(),
                },
            );
            let mut store = StateStore::open(&flash);
            store.save(&mut flash, b"third!").unwrap();
            flash
                .write_back()
                .kept
                .iter()
                .map(|(_, b)| b.len())
                .sum::<usize>()
        };
        for budget in (0..=total).step_by(97).chain([total - 1, total]) {
            let mut live = base.clone();
            let mut flash = MemFlash::new(
                &mut live,
                Cut {
                    budget,
                    kept: Vec::new(),
                },
            );
            let mut store = StateStore::open(&flash);
            store.save(&mut flash, b"third!").unwrap();
            let cut = flash.write_back().kept.clone();
            let mut after = survived(
                &base,
                &Cut {
                    budget: 0,
                    kept: cut,
                },
            );
            let flash = MemFlash::new(&mut after, ());
            let loaded = StateStore::open(&flash).load(&flash).unwrap();
            if budget == total {
                assert_eq!(loaded, b"third!");
            } else {
                assert_eq!(loaded, b"second", "cut after {budget} of {total} bytes");
            }
        }
    }

    fn image(n: u8) -> Vec<u8> {
        (0..=255u8)
            .cycle()
            .take(3000)
            .map(|i| i.wrapping_mul(n))
            .collect()
    }

    fn flashed(record: &mut BootRecord, images: [&[u8]; 2]) -> Vec<u8> {
        let mut mem = vec![0xffu8; AUDIO_START];
        let mut flash = MemFlash::new(&mut mem, ());
        for (slot, image) in images.iter().enumerate() {
            flash.program(IMAGE_SLOTS[slot], image).unwrap();
        }
        record.save(&mut flash).unwrap();
        mem
    }

    #[test]
    fn a_pending_image_runs_its_tries_then_the_confirmed_one_comes_back() {
        let (one, two) = (image(1), image(2));
        let mut record = BootRecord::factory(1, 1, &one).unwrap();
        record.install(SlotInfo::of(2, 2, &two).unwrap());
        let mut mem = flashed(&mut record, [&one, &two]);
        let mut flash = MemFlash::new(&mut mem, ());
        for _ in 0..MAX_BOOT_TRIES {
            let mut record = BootRecord::load(&flash).unwrap();
            let (slot, changed) = record.decide(|s, info| info.verify(&flash, usize::from(s)));
            assert_eq!((slot, changed), (Some(1), true));
            record.save(&mut flash).unwrap();
        }
        let mut record = BootRecord::load(&flash).unwrap();
        assert_eq!(
            record
                .decide(|s, info| info.verify(&flash, usize::from(s)))
                .0,
            Some(0)
        );
        assert_eq!(record.pending, None, "never confirmed: back to version 1");
    }

    #[test]
    fn a_torn_tampered_or_older_image_never_runs() {
        let (one, two) = (image(1), image(2));
        let mut torn = two.clone();
        torn[2000..].fill(0xff);
        for (slot_b, counter) in [(&torn, 2), (&two, 0)] {
            let mut record = BootRecord::factory(1, 1, &one).unwrap();
            record.install(SlotInfo::of(2, counter, &two).unwrap());
            let mut mem = flashed(&mut record, [&one, slot_b]);
            let flash = MemFlash::new(&mut mem, ());
            let mut record = BootRecord::load(&flash).unwrap();
            assert_eq!(
                record.decide(|s, info| info.verify(&flash, usize::from(s))),
                (Some(0), true)
            );
        }
        // A confirmed slot that no longer verifies gives way to the other one.
        let mut record = BootRecord::factory(1, 1, &one).unwrap();
        record.slots[1] = SlotInfo::of(2, 2, &two).unwrap();
        let mut mem = flashed(&mut record, [&torn, &two]);
        let flash = MemFlash::new(&mut mem, ());
        let mut record = BootRecord::load(&flash).unwrap();
        assert_eq!(
            record
                .decide(|s, info| info.verify(&flash, usize::from(s)))
                .0,
            Some(1)
        );
        // Nothing that verifies: nothing runs.
        let mut record = BootRecord::factory(1, 1, &two).unwrap();
        let mut mem = flashed(&mut record, [&one, &one]);
        let flash = MemFlash::new(&mut mem, ());
        let mut record = BootRecord::load(&flash).unwrap();
        assert_eq!(
            record
                .decide(|s, info| info.verify(&flash, usize::from(s)))
                .0,
            None
        );
    }

    #[test]
    fn a_confirmed_update_stays_and_a_torn_record_keeps_the_one_before() {
        let (one, two) = (image(1), image(2));
        let mut record = BootRecord::factory(1, 1, &one).unwrap();
        record.install(SlotInfo::of(2, 2, &two).unwrap());
        let mut mem = flashed(&mut record, [&one, &two]);
        let mut flash = MemFlash::new(&mut mem, ());
        let mut record = BootRecord::load(&flash).unwrap();
        assert_eq!(
            record
                .decide(|s, info| info.verify(&flash, usize::from(s)))
                .0,
            Some(1)
        );
        assert!(record.confirm());
        record.save(&mut flash).unwrap();
        let before = BootRecord::load(&flash).unwrap();
        assert_eq!(
            (before.active, before.pending, before.inactive()),
            (1, None, 0)
        );
        // A save cut half way leaves the record before it.
        let base = mem.clone();
        let mut live = base.clone();
        let mut flash = MemFlash::new(
            &mut live,
            Cut {
                budget: PAGE + 20,
                kept: Vec::new(),
            },
        );
        let mut record = before;
        record.install(SlotInfo::of(3, 3, &one).unwrap());
        record.save(&mut flash).unwrap();
        let cut = flash.write_back().kept.clone();
        let mut after = survived(
            &base,
            &Cut {
                budget: 0,
                kept: cut,
            },
        );
        let flash = MemFlash::new(&mut after, ());
        assert_eq!(BootRecord::load(&flash), Some(before));
    }
}
