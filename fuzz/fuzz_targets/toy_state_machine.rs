//! A paired toy fed arbitrary frames, timer ticks, connections and long presses, as a
//! malicious server, a relay phone or a BLE neighbour could. It must never panic, never start
//! the microphone, never play without a press, send only valid toy frames, and save a state
//! it can restore. The checks are in `pawpost_fuzz::run_toy`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pawpost_fuzz::{parse_ops, run_toy};

fuzz_target!(|data: &[u8]| {
    run_toy(&parse_ops(data));
});
