//! The boot stage of the pawpost toy on QEMU's `mps2-an386` board: the image QEMU starts
//! (`-kernel`). It reads the emulated flash from its file, reads the boot record (which
//! image slot is confirmed, which one is pending with how many tries), settles it (a
//! pending image gets `MAX_BOOT_TRIES` boots, must not go back in anti-rollback counter,
//! and falls back to the confirmed one otherwise), checks the chosen slot's size and
//! SHA-256 (a torn or tampered image never runs), copies the image to where it executes
//! and starts it. It says what it does on the wires (UART1): `boot slot A version 1`.
//!
//! The image runs from RAM on this board, as it would from a chip's RAM after the boot
//! stage copied it out of external flash. The steps that hand over to it (the copy, the
//! vector table's address, the stack pointer and the jump) are unsafe, each allowed
//! where it stands with its reason.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

// Shared with the image, which uses more of each.
#[allow(dead_code)]
mod storage;
#[allow(dead_code)]
mod uart;

use cortex_m_rt::entry;
use embedded_alloc::LlffHeap;
use pawpost_firmware::flash::{BootRecord, MemFlash, IMAGE_SLOTS};

use storage::{halt, FileWriteBack, FlashFile};
use uart::{Uart, UART1};

/// Where the image runs: above the boot stage in the SSRAM at 0 (memory.x of the image).
const IMAGE_BASE: usize = 0x0001_0000;

/// The boot stage allocates nothing; the shared library's allocating code is never
/// called here, and this heap is never given memory (any allocation would fail).
#[global_allocator]
static NO_HEAP: LlffHeap = LlffHeap::empty();

#[entry]
fn main() -> ! {
    let mut wires = Uart::new(UART1);
    let file = FlashFile::open().unwrap_or_else(|why| {
        wires.write(b"boot error ");
        halt(why)
    });
    let memory = storage::flash_memory();
    if !file.read_all(memory) {
        halt("boot error the flash file cannot be read");
    }
    let mut flash = MemFlash::new(memory, FileWriteBack::new(file));
    let Some(mut record) = BootRecord::load(&flash) else {
        halt("boot error the flash holds no boot record: program it with a factory image")
    };
    let (slot, changed) = record.decide(|slot, info| info.verify(&flash, usize::from(slot)));
    if changed && record.save(&mut flash).is_err() {
        halt("boot error the boot record cannot be saved");
    }
    let Some(slot) = slot else {
        halt("boot error no image slot holds an image that verifies")
    };
    let info = record.slots[usize::from(slot)];
    wires.write(b"boot slot ");
    wires.write(if slot == 0 { b"A" } else { b"B" });
    wires.write(b" version ");
    let mut digits = [0u8; 10];
    wires.write(decimal(info.version, &mut digits));
    wires.write(b"\n");

    let start = IMAGE_SLOTS[usize::from(slot)];
    let image = &flash.bytes()[start..start + info.size as usize];
    // SAFETY: IMAGE_BASE.. is the SSRAM above this boot stage (its memory.x ends there),
    // which nothing of this program uses; `verify` checked that `image` fits a slot, and
    // a slot fits between IMAGE_BASE and the end of that SSRAM; the two do not overlap
    // (the flash is the PSRAM).
    #[allow(unsafe_code)]
    unsafe {
        core::ptr::copy_nonoverlapping(image.as_ptr(), IMAGE_BASE as *mut u8, image.len());
    }
    cortex_m::asm::dsb();
    cortex_m::asm::isb();
    // SAFETY: the image's vector table is at IMAGE_BASE (its memory.x puts it first), a
    // 64 KiB boundary as VTOR requires; no interrupt is enabled in the boot stage, so none
    // can arrive between the two steps.
    #[allow(unsafe_code)]
    unsafe {
        (*cortex_m::peripheral::SCB::PTR)
            .vtor
            .write(IMAGE_BASE as u32);
    }
    // SAFETY: the vector table's first word is the image's initial stack pointer and its
    // second its reset handler, as cortex-m-rt laid them out; the boot stage keeps nothing
    // that the image needs, and never returns.
    #[allow(unsafe_code)]
    unsafe {
        cortex_m::asm::bootload(IMAGE_BASE as *const u32)
    }
}

/// `n` in decimal digits, in `buf`.
fn decimal(mut n: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    halt("boot error the boot stage panicked")
}
