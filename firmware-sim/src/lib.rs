#![no_std]
#![forbid(unsafe_code)]
//! The CAVMem agent core packaged for a foreign host.
//!
//! Not built yet: the freestanding `cavmem-fw` executable, its framed wire protocol and
//! the static library with a C header are tracked as open work (see README.md). Today this
//! crate only re-exports the core so the workspace layout is in place.

pub use cavmem_core as core_crate;
