//! The board's flash: 8 MiB of the PSRAM at 0x2100_0000, backed by a file on the host
//! that survives QEMU being killed and started again. The boot stage reads the file into
//! that memory at every boot ([`load`]); every erase and write is then written back to
//! the file at once through semihosting ([`FileWriteBack`]), so the file always holds what
//! a real flash would after a power cut. The harness names the file on QEMU's command
//! line (`-semihosting-config enable=on,target=native,arg=pawpost,arg=flash=PATH`).
//!
//! Semihosting is a `bkpt 0xab` with an operation in r0 and a parameter block in r1, which
//! QEMU carries out on the host: one function below allows unsafe code for it, and one
//! hands out the flash memory once as a byte slice.

use core::sync::atomic::{AtomicBool, Ordering};

use pawpost_firmware::flash::{WriteBack, FLASH_LEN};

use crate::uart::{Uart, UART1};

/// Where the flash's content is mapped: the board's 16 MiB PSRAM, which nothing else uses.
const FLASH_BASE: usize = 0x2100_0000;
static FLASH_TAKEN: AtomicBool = AtomicBool::new(false);

// Semihosting operations (Arm's "Semihosting for AArch32 and AArch64", v2.0).
const SYS_OPEN: u32 = 0x01;
const SYS_WRITE: u32 = 0x05;
const SYS_READ: u32 = 0x06;
const SYS_SEEK: u32 = 0x0a;
const SYS_FLEN: u32 = 0x0c;
const SYS_GET_CMDLINE: u32 = 0x15;
/// SYS_OPEN's mode for "r+b": read and write an existing file, bytes as they are.
const MODE_READ_WRITE: u32 = 3;
/// The longest command line and file name read.
const MAX_CMDLINE: usize = 512;

fn semihosting(operation: u32, block: &mut [u32]) -> i32 {
    let result: u32;
    // SAFETY: `bkpt 0xab` with semihosting enabled (the harness's QEMU command line) makes
    // QEMU carry out `operation` on the host; it reads and writes only the parameter block
    // (`block`, borrowed mutably for the call) and the buffers the block points to, which
    // the callers below keep borrowed for the call; it changes no register but r0.
    #[allow(unsafe_code)]
    unsafe {
        core::arch::asm!(
            "bkpt #0xab",
            inout("r0") operation => result,
            in("r1") block.as_mut_ptr(),
            options(nostack),
        );
    }
    result as i32
}

fn address<T>(p: *const T) -> u32 {
    // Addresses are 32 bits on this board.
    p as usize as u32
}

/// What QEMU was told on its command line: `arg=` values joined by spaces.
struct Cmdline {
    buf: [u8; MAX_CMDLINE],
    len: usize,
}

impl Cmdline {
    fn read() -> Self {
        let mut buf = [0u8; MAX_CMDLINE];
        let mut block = [address(buf.as_mut_ptr()), MAX_CMDLINE as u32];
        let len = if semihosting(SYS_GET_CMDLINE, &mut block) == 0 {
            (block[1] as usize).min(MAX_CMDLINE)
        } else {
            0
        };
        Self { buf, len }
    }

    /// The value of `key=value`.
    fn value(&self, key: &str) -> Option<&str> {
        let line = core::str::from_utf8(&self.buf[..self.len]).ok()?;
        line.split(' ')
            .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
    }
}

/// The file that holds the flash, open for reading and writing.
#[derive(Clone, Copy)]
pub struct FlashFile {
    handle: u32,
}

impl FlashFile {
    /// Opens the file named by `flash=PATH` on QEMU's command line.
    pub fn open() -> Result<Self, &'static str> {
        let cmdline = Cmdline::read();
        let path = cmdline
            .value("flash")
            .ok_or("no flash file: start QEMU with -semihosting-config enable=on,target=native,arg=pawpost,arg=flash=PATH")?;
        let mut name = [0u8; MAX_CMDLINE + 1];
        name[..path.len()].copy_from_slice(path.as_bytes());
        let mut block = [address(name.as_ptr()), MODE_READ_WRITE, path.len() as u32];
        let handle = semihosting(SYS_OPEN, &mut block);
        if handle < 0 {
            return Err("the flash file cannot be opened: check the path given as flash=");
        }
        let file = Self {
            handle: handle as u32,
        };
        let mut block = [file.handle];
        if semihosting(SYS_FLEN, &mut block) != FLASH_LEN as i32 {
            return Err("the flash file is not 8 MiB: make it with the harness's factory image");
        }
        Ok(file)
    }

    /// A `n=N` number on QEMU's command line (the harness's test points).
    pub fn number(key: &str) -> Option<u32> {
        Cmdline::read().value(key)?.parse().ok()
    }

    fn seek(self, offset: usize) -> bool {
        let mut block = [self.handle, offset as u32];
        semihosting(SYS_SEEK, &mut block) == 0
    }

    /// Writes `bytes` at `offset` of the file.
    fn write(self, offset: usize, bytes: &[u8]) -> bool {
        let mut block = [self.handle, address(bytes.as_ptr()), bytes.len() as u32];
        self.seek(offset) && semihosting(SYS_WRITE, &mut block) == 0
    }

    /// Reads the whole file into `memory`.
    pub fn read_all(self, memory: &mut [u8]) -> bool {
        let mut block = [
            self.handle,
            address(memory.as_mut_ptr()),
            memory.len() as u32,
        ];
        self.seek(0) && semihosting(SYS_READ, &mut block) == 0
    }
}

/// The flash's memory, handed out once.
pub fn flash_memory() -> &'static mut [u8] {
    assert!(
        !FLASH_TAKEN.swap(true, Ordering::Relaxed),
        "the flash memory is handed out once"
    );
    // SAFETY: FLASH_BASE..+FLASH_LEN is the board's PSRAM, mapped, which neither linker
    // script places anything in; the flag above makes this the only reference to it for
    // the program's life, and bytes have no invalid values.
    #[allow(unsafe_code)]
    unsafe {
        core::slice::from_raw_parts_mut(FLASH_BASE as *mut u8, FLASH_LEN)
    }
}

/// Writes every change of the flash back to its file; the harness may ask it to lose
/// power part way through a write (a test point: `cut=N` bytes from now).
pub struct FileWriteBack {
    file: FlashFile,
    cut_after: Option<usize>,
}

impl FileWriteBack {
    /// Writes back to `file`.
    pub fn new(file: FlashFile) -> Self {
        Self {
            file,
            cut_after: None,
        }
    }

    /// The power goes after `bytes` more bytes reached the flash.
    pub fn cut_after(&mut self, bytes: usize) {
        self.cut_after = Some(bytes);
    }
}

impl WriteBack for FileWriteBack {
    fn changed(&mut self, offset: usize, bytes: &[u8]) {
        let n = self
            .cut_after
            .map_or(bytes.len(), |left| left.min(bytes.len()));
        if !self.file.write(offset, &bytes[..n]) {
            halt("error the flash file cannot be written: the toy stops");
        }
        if let Some(left) = &mut self.cut_after {
            *left -= n;
            if *left == 0 {
                halt("power cut");
            }
        }
    }
}

/// Says `line` on the wires and stops, as the toy does when its power goes or its flash
/// fails.
pub fn halt(line: &str) -> ! {
    let mut wires = Uart::new(UART1);
    wires.write(line.as_bytes());
    wires.write(b"\n");
    loop {
        cortex_m::asm::wfi();
    }
}
