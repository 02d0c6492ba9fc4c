#![no_std]
#![forbid(unsafe_code)]
//! The CAVMem agent core packaged for foreign hosts.
//!
//! - `cavmem-fw` (`src/bin/cavmem-fw/`, feature `fw`): one agent as a freestanding static
//!   executable without libc, serving the wire protocol (docs/protocol.md) on stdin/stdout.
//!   Build: `cargo build --profile firmware -p cavmem-firmware-sim --features fw --bin cavmem-fw`.
//! - `capi/`: `libcavmem.a`, the C interface, with the header `include/cavmem.h` and a C
//!   example host in `examples/c/` (docs/embedding.md).
//! - `cortex-m4/` and `cortex-m4-infer/`: the core bare-metal on a Cortex-M4F under QEMU —
//!   the training self-test and the inference-only build.
//!
//! The logic lives in `cavmem-core`; this library only re-exports it for the binaries.

pub use cavmem_core as core_crate;
