//! For the mps2-an386 image and its boot stage: the board's memory map for each in
//! cortex-m-rt's linker script, and
//! the build id the image announces (PAWPOST_FIRMWARE_BUILD_ID, set by
//! scripts/firmware-test, so that a test knows the image it booted is the one just built),
//! and the release keys built into it.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=boot.x");
    println!("cargo:rerun-if-env-changed=PAWPOST_FIRMWARE_BUILD_ID");
    let build_id = env::var("PAWPOST_FIRMWARE_BUILD_ID").unwrap_or_else(|_| "dev".into());
    println!("cargo:rustc-env=PAWPOST_FIRMWARE_BUILD_ID={build_id}");
    release_keys();
    let bare_arm = env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("arm")
        && env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none");
    if bare_arm {
        // cortex-m-rt's link.x includes `memory.x`: each binary finds its own in a folder
        // of its own.
        let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
        for (bin, memory) in [
            (
                "pawpost-firmware-mps2-an386",
                &include_bytes!("memory.x")[..],
            ),
            (
                "pawpost-firmware-mps2-an386-boot",
                &include_bytes!("boot.x")[..],
            ),
        ] {
            let dir = out.join(bin);
            fs::create_dir_all(&dir).expect("OUT_DIR is writable");
            fs::write(dir.join("memory.x"), memory).expect("OUT_DIR is writable");
            println!("cargo:rustc-link-arg-bin={bin}=-L{}", dir.display());
            println!("cargo:rustc-link-arg-bin={bin}=-Tlink.x");
        }
    }
}

/// The release keys built into the image (PAWPOST_RELEASE_KEYS: the Ed25519 public keys
/// whose signed updates the toy takes, 64 hex digits each, separated by commas; none if
/// unset, and then the toy takes no update), as a Rust array for `include!`.
fn release_keys() {
    println!("cargo:rerun-if-env-changed=PAWPOST_RELEASE_KEYS");
    let keys = env::var("PAWPOST_RELEASE_KEYS").unwrap_or_default();
    let mut array = String::from("&[");
    for key in keys.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        assert!(
            key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()),
            "PAWPOST_RELEASE_KEYS: each key is 64 hex digits (an Ed25519 public key), not {key:?}"
        );
        array.push('[');
        for pair in key.as_bytes().chunks(2) {
            array.push_str("0x");
            array.push_str(std::str::from_utf8(pair).expect("hex digits are ASCII"));
            array.push(',');
        }
        array.push_str("],");
    }
    array.push(']');
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out.join("release_keys.rs"), array).expect("OUT_DIR is writable");
}
