//! Units: memory is counted in integer bytes, rates in pages per second (`f32`).
//!
//! Names carry their unit (`capacity_bytes`, `miss_rate_pages_per_s`); these constants
//! keep the arithmetic readable.

/// One kibibyte, 2¹⁰ bytes.
pub const KIB: u64 = 1 << 10;
/// One mebibyte, 2²⁰ bytes.
pub const MIB: u64 = 1 << 20;
/// One gibibyte, 2³⁰ bytes.
pub const GIB: u64 = 1 << 30;
/// A 4 KiB page, the unit of a major fault.
pub const PAGE_BYTES: u64 = 4 * KIB;

/// The paper's minimum VM allocation, "set manually at 384 MB" (section 3.2), read as MiB.
pub const DEFAULT_FLOOR_BYTES: u64 = 384 * MIB;
