//! The pawpost toy on QEMU's `mps2-an386` board (Cortex-M4F): UART0 is the link to the
//! phone (`pawpost relay`), UART1 the wires inside the toy (the test harness), SysTick the
//! clock, a heap in RAM, and the toy's state, its queued audio and its image slots in an
//! emulated flash backed by a file on the host (`storage.rs`), which survives QEMU being
//! killed. The boot stage (`boot.rs`) copied this image from its slot and started it.
//!
//! At power-on the toy waits on UART1 for `seed HEX64`: the emulator has no hardware random
//! number generator, so the harness stands in for one (a real board seeds from its TRNG).
//! It answers `build ID` and then runs the shell.
#![no_std]
#![no_main]
// Only the board's registers and the allocator need unsafe code, each in one narrowly
// allowed place in `hw.rs` with its reason.
#![deny(unsafe_code)]

extern crate alloc;

mod hw;
// Shared with the boot stage, which uses part of each.
#[allow(dead_code)]
mod storage;
#[allow(dead_code)]
mod uart;

use alloc::format;
use alloc::vec::Vec;
use cortex_m_rt::entry;
use pawpost_crypto::rand_core::SeedableRng;
use pawpost_firmware::audio::SlotStore;
use pawpost_firmware::flash::{
    pages, BootRecord, Flash, MemFlash, SlotInfo, StateStore, AUDIO_START, FLASH_LEN, IMAGE_SLOTS,
    IMAGE_SLOT_LEN, STATE_HEADER_LEN,
};
use pawpost_firmware::wires::{Input, Lines};
use pawpost_firmware::{Board, HeapStats, Shell};
use pawpost_toy::MessageId;
use rand_chacha::ChaCha20Rng;

use hw::Clock;
use storage::{FileWriteBack, FlashFile};
use uart::{Uart, UART0, UART1};

/// What the image says it is: the build id scripts/firmware-test gave it.
const BUILD_ID: &str = env!("PAWPOST_FIRMWARE_BUILD_ID");
/// The board's name in release manifests.
const BOARD: &str = "mps2-an386";
/// The Ed25519 public keys whose signed updates the toy takes (PAWPOST_RELEASE_KEYS at
/// build time; the release key's private half never comes near the toy or the server).
const RELEASE_KEYS: &[[u8; 32]] = include!(concat!(env!("OUT_DIR"), "/release_keys.rs"));

struct Mps2 {
    link: Uart,
    wires: Uart,
    clock: Clock,
    /// The emulated flash, written back to its file.
    flash: MemFlash<'static, FileWriteBack>,
    /// The toy's state, in two alternating copies.
    state: StateStore,
    /// Queued audio, in flash of its own.
    audio: SlotStore,
    /// States saved since power-on.
    saves: u32,
    /// The harness's test point: the power goes half way through this save
    /// (`cut-state=N` on QEMU's command line).
    cut_state: Option<u32>,
    /// The harness's test point: the power goes half way through this write of an
    /// update (`cut-update=N`).
    cut_update: Option<u32>,
    /// Update writes since power-on.
    update_writes: u32,
}

impl Mps2 {
    fn report(&mut self, line: &str) {
        self.wires.write(line.as_bytes());
        self.wires.write(b"\n");
    }

    /// The boot record, which the boot stage settled before starting this image.
    fn record(&mut self) -> Option<BootRecord> {
        let record = BootRecord::load(&self.flash);
        if record.is_none() {
            self.report("report update refused: the flash holds no boot record");
        }
        record
    }
}

impl Board for Mps2 {
    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    fn link_write(&mut self, bytes: &[u8]) {
        self.link.write(bytes);
    }

    fn wires_write(&mut self, bytes: &[u8]) {
        self.wires.write(bytes);
    }

    fn load_state(&mut self) -> Option<Vec<u8>> {
        self.state.load(&self.flash)
    }

    fn save_state(&mut self, state: &[u8]) -> Result<(), &'static str> {
        self.saves += 1;
        if self.cut_state == Some(self.saves) {
            // The erase done and half the state written, the power goes.
            let erased = pages(STATE_HEADER_LEN + state.len());
            self.flash.write_back().cut_after(erased + state.len() / 2);
        }
        self.state
            .save(&mut self.flash, state)
            .map_err(|e| e.as_str())
    }

    fn store_audio(
        &mut self,
        message: MessageId,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), &'static str> {
        self.audio.write(&mut self.flash, message, offset, bytes)
    }

    fn read_audio(&mut self, message: MessageId, offset: usize, buf: &mut [u8]) -> usize {
        self.audio.read(&self.flash, message, offset, buf)
    }

    fn discard_audio(&mut self, message: MessageId) {
        self.audio.discard(&mut self.flash, message);
    }

    fn heap(&mut self, reset: bool) -> HeapStats {
        hw::heap_stats(reset)
    }

    fn erase_update(&mut self) {
        let Some(record) = self.record() else { return };
        let slot = usize::from(record.inactive());
        if let Err(e) = self.flash.erase(IMAGE_SLOTS[slot], IMAGE_SLOT_LEN) {
            self.report(&format!("report update not erased: {}", e.as_str()));
        }
    }

    fn write_update(&mut self, offset: u32, bytes: &[u8]) {
        let Some(record) = self.record() else { return };
        self.update_writes += 1;
        if self.cut_update == Some(self.update_writes) {
            self.flash.write_back().cut_after(bytes.len() / 2);
        }
        let slot = usize::from(record.inactive());
        let fits = usize::try_from(offset)
            .ok()
            .and_then(|offset| offset.checked_add(bytes.len()))
            .is_some_and(|end| end <= IMAGE_SLOT_LEN);
        let written = if fits {
            self.flash
                .program(IMAGE_SLOTS[slot] + offset as usize, bytes)
                .map_err(|e| e.as_str())
        } else {
            Err("the image is larger than an image slot")
        };
        if let Err(why) = written {
            self.report(&format!("report update not written: {why}"));
        }
    }

    fn install_update(&mut self, version: u32, counter: u32, size: u32, sha256: &[u8; 32]) {
        let Some(mut record) = self.record() else {
            return;
        };
        let info = SlotInfo {
            version,
            counter,
            size,
            sha256: *sha256,
        };
        // The boot stage checks the digest again at every boot; checking here too keeps a
        // toy from restarting into an image it would refuse.
        if !info.verify(&self.flash, usize::from(record.inactive())) {
            self.report("report update not installed: the slot does not hold that image");
            return;
        }
        record.install(info);
        if let Err(e) = record.save(&mut self.flash) {
            self.report(&format!("report update not installed: {}", e.as_str()));
            return;
        }
        self.report(&format!("restart for version {version}"));
        cortex_m::peripheral::SCB::sys_reset();
    }

    fn firmware(&mut self) -> Option<(pawpost_toy::Firmware, Vec<[u8; 32]>)> {
        let record = self.record()?;
        let running = record.slots[usize::from(record.running())];
        let firmware = pawpost_toy::Firmware {
            board: BOARD.into(),
            version: running.version,
            counter: running.counter,
            confirmed: record.pending.is_none(),
        };
        Some((firmware, RELEASE_KEYS.to_vec()))
    }

    fn update_slot_bytes(&self) -> Option<u32> {
        u32::try_from(IMAGE_SLOT_LEN).ok()
    }

    fn confirm_image(&mut self) {
        let Some(mut record) = self.record() else {
            return;
        };
        if !record.confirm() {
            return;
        }
        match record.save(&mut self.flash) {
            Ok(()) => {
                let version = record.slots[usize::from(record.active)].version;
                self.report(&format!("confirmed {version}"));
            }
            Err(e) => self.report(&format!("report image not confirmed: {}", e.as_str())),
        }
    }
}

#[entry]
fn main() -> ! {
    hw::init_heap();
    let clock = Clock::start();
    let link = Uart::new(UART0);
    let mut wires = Uart::new(UART1);
    let file = match FlashFile::open() {
        Ok(file) => file,
        Err(why) => {
            wires.write(b"error ");
            storage::halt(why)
        }
    };
    // The boot stage read the file into the flash's memory before starting this image.
    let flash = MemFlash::new(storage::flash_memory(), FileWriteBack::new(file));

    let mut lines = Lines::new();
    let seed = loop {
        let Some(byte) = wires.read() else { continue };
        match lines.push(byte) {
            Some(Input::Seed(seed)) => break seed,
            Some(_) => wires.write(b"error send `seed HEX64` first\n"),
            None => {}
        }
    };
    wires.write(b"build ");
    wires.write(BUILD_ID.as_bytes());
    wires.write(b"\n");
    if let Some(record) = BootRecord::load(&flash) {
        let running = record.running();
        let line = format!(
            "firmware {} slot {} {}\n",
            record.slots[usize::from(running)].version,
            if running == 0 { "A" } else { "B" },
            if record.pending.is_none() {
                "confirmed"
            } else {
                "trying"
            }
        );
        wires.write(line.as_bytes());
    }

    let board = Mps2 {
        link,
        wires,
        clock,
        state: StateStore::open(&flash),
        audio: SlotStore::open(&flash, AUDIO_START, FLASH_LEN - AUDIO_START),
        flash,
        saves: 0,
        cut_state: FlashFile::number("cut-state"),
        cut_update: FlashFile::number("cut-update"),
        update_writes: 0,
    };
    let mut shell = match Shell::start(board, ChaCha20Rng::from_seed(seed)) {
        Ok(shell) => shell,
        Err(e) => panic!("the saved state cannot be read: {e:?}"),
    };
    // Audio of a message the toy no longer keeps (a delivery cut short by a power cut,
    // that the server then dropped) is deleted.
    let held: Vec<MessageId> = shell.board().audio.held().collect();
    for message in held {
        if !shell.toy().toy().keeps_audio_of(message) {
            let board = shell.board();
            board.audio.discard(&mut board.flash, message);
        }
    }
    loop {
        if let Some(byte) = shell.board().link.read() {
            shell.link_byte(byte);
        }
        if let Some(byte) = shell.board().wires.read() {
            shell.wires_byte(byte);
        }
        shell.poll();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    use core::fmt::Write;
    let mut wires = Uart::new(UART1);
    let _ = writeln!(wires, "panic {info}");
    loop {
        cortex_m::asm::wfi();
    }
}
