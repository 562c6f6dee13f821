//! The mps2-an386 board's hardware: two CMSDK APB UARTs, SysTick as the millisecond clock,
//! and the heap. The only unsafe code of the image is here, each block allowed where it
//! stands with its reason: a UART is registers at fixed addresses, which Rust can reach
//! only through volatile pointer access (no peripheral access crate covers this board),
//! a global allocator is an unsafe trait by definition, the stack's deepest use is read
//! from the paint left below it, and the audio storage is a region of the SSRAM that holds
//! the image (the emulated flash), which Rust reaches through a pointer to it.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::exception;
use embedded_alloc::LlffHeap;
use pawpost_firmware::HeapStats;

/// UART0's registers: the link to the phone.
pub const UART0: usize = 0x4000_4000;
/// UART1's registers: the wires inside the toy.
pub const UART1: usize = 0x4000_5000;
/// The board's processor clock (AN386: 25 MHz).
const SYSCLK_HZ: u32 = 25_000_000;
/// SysTick interrupts per second: one per millisecond.
const TICKS_PER_SECOND: u32 = 1000;
/// The heap: from the end of the static data, well below the stack at the top of the
/// 4 MiB of RAM.
const HEAP_SIZE: usize = 2 * 1024 * 1024;
/// The top of RAM, where the stack starts (memory.x).
const RAM_END: usize = 0x2040_0000;
/// The emulated flash for queued audio: memory.x's AUDIO region, above the image.
const AUDIO_FLASH_START: usize = 0x0010_0000;
const AUDIO_FLASH_LEN: usize = 3 * 1024 * 1024;
static AUDIO_FLASH_TAKEN: AtomicBool = AtomicBool::new(false);

// CMSDK APB UART registers (ARM DDI 0479C, §4.3), as offsets from its base.
const DATA: usize = 0x000;
const STATE: usize = 0x004;
const CTRL: usize = 0x008;
const BAUDDIV: usize = 0x010;
const STATE_TX_FULL: u32 = 1 << 0;
const STATE_RX_FULL: u32 = 1 << 1;
const CTRL_TX_ENABLE: u32 = 1 << 0;
const CTRL_RX_ENABLE: u32 = 1 << 1;
/// The smallest divider the UART accepts; the emulator ignores the baud rate.
const MIN_BAUDDIV: u32 = 16;

fn read_register(address: usize) -> u32 {
    // SAFETY: called only with a register address of a CMSDK UART of this board (the
    // constants above), which is mapped, 4-byte aligned, and has no side effect on read
    // other than the UART's own (reading DATA takes the received byte).
    #[allow(unsafe_code)]
    unsafe {
        core::ptr::read_volatile(address as *const u32)
    }
}

fn write_register(address: usize, value: u32) {
    // SAFETY: as in `read_register`; no Rust object lives at these addresses.
    #[allow(unsafe_code)]
    unsafe {
        core::ptr::write_volatile(address as *mut u32, value);
    }
}

/// A CMSDK UART, polled.
pub struct Uart {
    base: usize,
}

impl Uart {
    /// Enables the UART at `base` (one of [`UART0`], [`UART1`]) to send and receive.
    pub fn new(base: usize) -> Self {
        write_register(base + BAUDDIV, MIN_BAUDDIV);
        write_register(base + CTRL, CTRL_TX_ENABLE | CTRL_RX_ENABLE);
        Self { base }
    }

    /// The byte received, if one is waiting.
    pub fn read(&mut self) -> Option<u8> {
        if read_register(self.base + STATE) & STATE_RX_FULL == 0 {
            return None;
        }
        Some(read_register(self.base + DATA).to_le_bytes()[0])
    }

    /// Sends `bytes`, waiting while the transmitter is full.
    pub fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            while read_register(self.base + STATE) & STATE_TX_FULL != 0 {}
            write_register(self.base + DATA, u32::from(byte));
        }
    }
}

impl core::fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.write(s.as_bytes());
        Ok(())
    }
}

/// Milliseconds since SysTick started, counted by its interrupt.
static MILLIS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    MILLIS.fetch_add(1, Ordering::Relaxed);
}

/// The monotonic clock: SysTick's millisecond count, widened to 64 bits.
pub struct Clock {
    last: Cell<u32>,
    wraps: Cell<u32>,
}

impl Clock {
    /// Starts SysTick interrupting every millisecond. Call once.
    pub fn start() -> Self {
        let Some(mut core) = cortex_m::Peripherals::take() else {
            panic!("the clock was started twice");
        };
        core.SYST.set_clock_source(SystClkSource::Core);
        core.SYST.set_reload(SYSCLK_HZ / TICKS_PER_SECOND - 1);
        core.SYST.clear_current();
        core.SYST.enable_interrupt();
        core.SYST.enable_counter();
        Self {
            last: Cell::new(0),
            wraps: Cell::new(0),
        }
    }

    /// Milliseconds since [`Clock::start`].
    pub fn now_ms(&self) -> u64 {
        let now = MILLIS.load(Ordering::Relaxed);
        if now < self.last.get() {
            self.wraps.set(self.wraps.get().wrapping_add(1));
        }
        self.last.set(now);
        (u64::from(self.wraps.get()) << 32) | u64::from(now)
    }
}

/// The heap, counting its peak use.
struct CountingHeap {
    heap: LlffHeap,
    peak: AtomicUsize,
}

// SAFETY: every call is passed on unchanged to `LlffHeap`, a correct allocator; only
// counting is added.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc`, passed on.
        let ptr = unsafe { self.heap.alloc(layout) };
        self.peak.fetch_max(self.heap.used(), Ordering::Relaxed);
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc`, passed on.
        unsafe { self.heap.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static HEAP: CountingHeap = CountingHeap {
    heap: LlffHeap::empty(),
    peak: AtomicUsize::new(0),
};

/// Gives the heap its memory. Call once, first.
pub fn init_heap() {
    let start = cortex_m_rt::heap_start() as usize;
    // SAFETY: called once at start, before any allocation; the range starts at the end of
    // the static data (cortex-m-rt's `heap_start`) and ends far below the stack at the top
    // of RAM (memory.x), so nothing else uses it.
    #[allow(unsafe_code)]
    unsafe {
        HEAP.heap.init(start, HEAP_SIZE);
    }
}

/// The heap in use and its peak (`reset` starts a new peak from what is in use now), and
/// the stack's deepest use.
pub fn heap_stats(reset: bool) -> HeapStats {
    let used = HEAP.heap.used();
    let peak = HEAP.peak.load(Ordering::Relaxed).max(used);
    if reset {
        HEAP.peak.store(used, Ordering::Relaxed);
    }
    HeapStats {
        used,
        peak,
        stack_peak: stack_peak(),
    }
}

/// The deepest the stack has been: from the end of the heap up, the first word that no
/// longer holds the paint cortex-m-rt put there at reset.
fn stack_peak() -> usize {
    let mut address = cortex_m_rt::heap_start() as usize + HEAP_SIZE;
    while address < RAM_END && read_ram_word(address) == cortex_m_rt::STACK_PAINT_VALUE {
        address += 4;
    }
    RAM_END - address
}

fn read_ram_word(address: usize) -> u32 {
    // SAFETY: called only for 4-byte aligned addresses between the end of the heap and the
    // top of RAM, which are mapped; below the stack pointer no Rust object lives, and the
    // scan stops at the first word the stack ever wrote, reading it once without keeping
    // or changing it.
    #[allow(unsafe_code)]
    unsafe {
        core::ptr::read_volatile(address as *const u32)
    }
}

/// The emulated flash that holds queued audio (memory.x's AUDIO region), handed out once.
pub fn audio_flash() -> &'static mut [u8] {
    assert!(
        !AUDIO_FLASH_TAKEN.swap(true, Ordering::Relaxed),
        "the audio flash is handed out once"
    );
    // SAFETY: the AUDIO region of memory.x is mapped RAM of this board that the linker
    // places nothing in, the flag above makes this the only reference to it for the
    // program's life, and bytes have no invalid values.
    #[allow(unsafe_code)]
    unsafe {
        core::slice::from_raw_parts_mut(AUDIO_FLASH_START as *mut u8, AUDIO_FLASH_LEN)
    }
}
