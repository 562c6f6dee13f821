//! The pawpost toy as firmware: the part that does not depend on the board.
//!
//! - [`Shell`]: link bytes in → [`pawpost_ble::Reassembler`] →
//!   [`pawpost_toy::ChannelToy`] (the toy behind its encrypted channel, toy protocol
//!   version 3) → actions out, through a [`Board`] that only moves bytes, tells the time and keeps the
//!   toy's state and its [`audio`] storage. A board (the `mps2_an386` image in this crate, later an nRF52 or an
//!   ESP32-C3) adds its drivers and feeds the shell.
//! - [`link`]: how the BLE fragments of `pawpost-ble` cross a byte stream (a UART standing
//!   for the GATT characteristic), with the phone's word that the server connection is up
//!   or down.
//! - [`wires`]: the wires inside the toy (paw button, speaker, microphone, heart light),
//!   as text lines on a second UART that a test harness drives and reads.
//!
//! Nothing arriving on the link can press the paw, start the microphone or play sound:
//! only [`wires`] input produces paw events, and sound is only what the toy's own
//! [`pawpost_toy::Action::PlayAudio`] asks for after it verified a message.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod audio;
pub mod bench;
pub mod flash;
pub mod link;
mod shell;
pub mod wires;

pub use shell::{Board, HeapStats, Shell, TICK_MS};

/// The ATT MTU the emulated link uses unless the phone says otherwise (the largest a
/// phone commonly grants).
pub const DEFAULT_MTU: u16 = 247;
