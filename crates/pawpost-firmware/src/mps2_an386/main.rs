//! The pawpost toy on QEMU's `mps2-an386` board (Cortex-M4F): UART0 is the link to the
//! phone (`pawpost relay`), UART1 the wires inside the toy (the test harness), SysTick the
//! clock, a heap in RAM, the toy's state kept in RAM and its queued audio in a region of
//! the SSRAM that holds the image (emulated flash: neither survives a power cycle of the
//! emulator).
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

use alloc::vec::Vec;
use cortex_m_rt::entry;
use pawpost_crypto::rand_core::SeedableRng;
use pawpost_firmware::audio::SlotStore;
use pawpost_firmware::wires::{Input, Lines};
use pawpost_firmware::{Board, HeapStats, Shell};
use pawpost_toy::MessageId;
use rand_chacha::ChaCha20Rng;

use hw::{Clock, Uart, UART0, UART1};

/// What the image says it is: the build id scripts/firmware-test gave it.
const BUILD_ID: &str = env!("PAWPOST_FIRMWARE_BUILD_ID");

struct Mps2 {
    link: Uart,
    wires: Uart,
    clock: Clock,
    /// The emulated flash: the last state saved.
    flash: Option<Vec<u8>>,
    /// Queued audio, in emulated flash of its own.
    audio: SlotStore<'static>,
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
        self.flash.clone()
    }

    fn save_state(&mut self, state: &[u8]) -> Result<(), &'static str> {
        let flash = self.flash.get_or_insert_with(Vec::new);
        flash.clear();
        flash
            .try_reserve(state.len())
            .map_err(|_| "the emulated flash is full")?;
        flash.extend_from_slice(state);
        Ok(())
    }

    fn store_audio(
        &mut self,
        message: MessageId,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), &'static str> {
        self.audio.write(message, offset, bytes)
    }

    fn read_audio(&mut self, message: MessageId, offset: usize, buf: &mut [u8]) -> usize {
        self.audio.read(message, offset, buf)
    }

    fn discard_audio(&mut self, message: MessageId) {
        self.audio.discard(message);
    }

    fn heap(&mut self, reset: bool) -> HeapStats {
        hw::heap_stats(reset)
    }
}

#[entry]
fn main() -> ! {
    hw::init_heap();
    let clock = Clock::start();
    let link = Uart::new(UART0);
    let mut wires = Uart::new(UART1);

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

    let board = Mps2 {
        link,
        wires,
        clock,
        flash: None,
        audio: SlotStore::new(hw::audio_flash()),
    };
    let mut shell = match Shell::start(board, ChaCha20Rng::from_seed(seed)) {
        Ok(shell) => shell,
        Err(e) => panic!("the saved state cannot be read: {e:?}"),
    };
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
