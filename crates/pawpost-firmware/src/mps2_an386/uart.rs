//! The mps2-an386 board's two CMSDK APB UARTs, polled: registers at fixed addresses,
//! which Rust can reach only through volatile pointer access (no peripheral access crate
//! covers this board), in two functions that allow unsafe code with their reason.

/// UART0's registers: the link to the phone.
pub const UART0: usize = 0x4000_4000;
/// UART1's registers: the wires inside the toy.
pub const UART1: usize = 0x4000_5000;

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
