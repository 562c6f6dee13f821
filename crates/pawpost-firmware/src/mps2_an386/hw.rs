//! The mps2-an386 board's clock and memory: SysTick as the millisecond clock, and the
//! heap. Unsafe code is allowed where it stands with its reason: a global allocator is an
//! unsafe trait by definition, and the stack's deepest use is read from the paint left
//! below it. (The UARTs are in `uart.rs`, the flash in `storage.rs`.)

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::exception;
use embedded_alloc::LlffHeap;
use pawpost_firmware::HeapStats;

/// The board's processor clock (AN386: 25 MHz).
const SYSCLK_HZ: u32 = 25_000_000;
/// SysTick interrupts per second: one per millisecond.
const TICKS_PER_SECOND: u32 = 1000;
/// The heap: from the end of the static data, well below the stack at the top of the
/// 4 MiB of RAM.
const HEAP_SIZE: usize = 2 * 1024 * 1024;
/// The top of RAM, where the stack starts (memory.x).
const RAM_END: usize = 0x2040_0000;

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
