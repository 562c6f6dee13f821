//! For the mps2-an386 image: the board's memory map for cortex-m-rt's linker script, and
//! the build id the image announces (PAWPOST_FIRMWARE_BUILD_ID, set by
//! scripts/firmware-test, so that a test knows the image it booted is the one just built).

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-env-changed=PAWPOST_FIRMWARE_BUILD_ID");
    let build_id = env::var("PAWPOST_FIRMWARE_BUILD_ID").unwrap_or_else(|_| "dev".into());
    println!("cargo:rustc-env=PAWPOST_FIRMWARE_BUILD_ID={build_id}");
    let bare_arm = env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("arm")
        && env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none");
    if bare_arm {
        let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
        fs::write(out.join("memory.x"), include_bytes!("memory.x")).expect("OUT_DIR is writable");
        println!("cargo:rustc-link-search={}", out.display());
        println!("cargo:rustc-link-arg-bins=-Tlink.x");
    }
}
