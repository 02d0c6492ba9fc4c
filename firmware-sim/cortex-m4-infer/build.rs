//! Puts memory.x where cortex-m-rt's link.x finds it, and an empty device.x (the image
//! provides its own one-entry interrupt table, `__INTERRUPTS`, and binds no handlers).
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let _ = std::fs::write(out.join("memory.x"), include_bytes!("memory.x"));
    let _ = std::fs::write(out.join("device.x"), b"/* no device interrupts are bound */\n");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
}
