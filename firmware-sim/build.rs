//! Link `cavmem-fw` as a freestanding static executable: no C runtime start files, no libc,
//! not position-independent (it applies no relocations of its own).
fn main() {
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        "-no-pie",
        "-Wl,--gc-sections",
        "-Wl,--build-id=none",
    ] {
        println!("cargo:rustc-link-arg-bin=cavmem-fw={arg}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
