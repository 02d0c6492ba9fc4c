//! Which kernels this process runs: detected once, or chosen.

use core::sync::atomic::{AtomicU8, Ordering};

/// A set of kernels. Every path gives the same bits; they differ in speed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelPath {
    /// The core's own kernels, as the build compiled them: 8-lane vectors with AVX2 and
    /// FMA in the workspace's x86-64-v3 build, SSE2 and software fused multiply-adds in
    /// an x86-64 baseline build, scalar code on a Cortex-M4F.
    Generic,
    /// 16-lane AVX-512F kernels for the layers whose output count is a multiple of 16
    /// (forward passes, input gradients through transposed weights, weight gradients);
    /// the rest stays generic. Needs a CPU and OS with AVX-512F (x86-64 only).
    Avx512,
}

impl KernelPath {
    /// Every path, generic first.
    pub const ALL: [KernelPath; 2] = [KernelPath::Generic, KernelPath::Avx512];

    /// The name used by `CAVMEM_KERNELS` and in reports: `generic` or `avx512`.
    pub const fn name(self) -> &'static str {
        match self {
            KernelPath::Generic => "generic",
            KernelPath::Avx512 => "avx512",
        }
    }

    /// The path named `name` ([`KernelPath::name`]), if any.
    pub fn from_name(name: &str) -> Option<KernelPath> {
        KernelPath::ALL.into_iter().find(|p| p.name() == name)
    }

    /// What the path's vectors are in this build: `avx512` for [`KernelPath::Avx512`];
    /// for [`KernelPath::Generic`] the instruction-set level the build assumed
    /// (`x86-64-v3` with AVX2 and FMA, `x86-64` without, or `portable` off x86-64).
    pub const fn describe(self) -> &'static str {
        match self {
            KernelPath::Avx512 => "avx512 (16 lanes, AVX-512F)",
            KernelPath::Generic if cfg!(all(target_feature = "avx2", target_feature = "fma")) => {
                "generic (8 lanes, x86-64-v3: AVX2, FMA)"
            }
            KernelPath::Generic if cfg!(target_arch = "x86_64") => {
                "generic (8 lanes, x86-64 baseline: SSE2, software FMA)"
            }
            KernelPath::Generic => "generic (portable)",
        }
    }

    const fn code(self) -> u8 {
        match self {
            KernelPath::Generic => 0,
            KernelPath::Avx512 => 1,
        }
    }
}

/// The path was asked for but this CPU (or OS) cannot run it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unavailable(pub KernelPath);

impl core::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "the {} kernels need a CPU feature this machine lacks",
            self.0.name()
        )
    }
}

const UNDECIDED: u8 = u8::MAX;
static ACTIVE: AtomicU8 = AtomicU8::new(UNDECIDED);

#[cfg(target_arch = "x86_64")]
cpufeatures::new!(avx512f_cpuid, "avx512f");

/// Whether this machine can run `path`.
pub fn available(path: KernelPath) -> bool {
    match path {
        KernelPath::Generic => true,
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx512 => avx512f_cpuid::get(),
        #[cfg(not(target_arch = "x86_64"))]
        KernelPath::Avx512 => false,
    }
}

/// The widest path this machine can run.
pub fn detect() -> KernelPath {
    if available(KernelPath::Avx512) {
        KernelPath::Avx512
    } else {
        KernelPath::Generic
    }
}

/// This process's path: the one [`select`]ed, else [`detect`]ed on the first call.
#[inline]
pub fn active() -> KernelPath {
    match ACTIVE.load(Ordering::Relaxed) {
        0 => KernelPath::Generic,
        1 => KernelPath::Avx512,
        _ => {
            let path = detect();
            ACTIVE.store(path.code(), Ordering::Relaxed);
            path
        }
    }
}

/// Makes `path` this process's path from now on (results do not change, only speed).
///
/// # Errors
/// [`Unavailable`] if this machine cannot run `path`; the path in force stays.
pub fn select(path: KernelPath) -> Result<(), Unavailable> {
    if !available(path) {
        return Err(Unavailable(path));
    }
    ACTIVE.store(path.code(), Ordering::Relaxed);
    Ok(())
}

/// The environment variable that chooses the path: `auto` (or unset), `generic`, `avx512`.
#[cfg(feature = "std")]
pub const ENV_VAR: &str = "CAVMEM_KERNELS";

/// What was wrong with `CAVMEM_KERNELS`.
#[cfg(feature = "std")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvError {
    /// Not `auto`, `generic` or `avx512` (the value given).
    Unknown(std::string::String),
    /// A path this machine cannot run.
    Unavailable(Unavailable),
}

#[cfg(feature = "std")]
impl core::fmt::Display for EnvError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            EnvError::Unknown(v) => write!(f, "{ENV_VAR}={v:?}: expected auto, generic or avx512"),
            EnvError::Unavailable(u) => write!(f, "{ENV_VAR}={}: {u}", u.0.name()),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for EnvError {}

/// Applies `CAVMEM_KERNELS` (unset or `auto`: detect) and returns the path in force.
///
/// # Errors
/// [`EnvError`] for a value that names no path or a path this machine cannot run.
#[cfg(feature = "std")]
pub fn select_from_env() -> Result<KernelPath, EnvError> {
    let value = std::env::var(ENV_VAR).unwrap_or_default();
    let path = match value.as_str() {
        "" | "auto" => detect(),
        name => KernelPath::from_name(name).ok_or_else(|| EnvError::Unknown(value.clone()))?,
    };
    select(path).map_err(EnvError::Unavailable)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_names_round_trip() {
        for p in KernelPath::ALL {
            assert_eq!(KernelPath::from_name(p.name()), Some(p));
        }
        assert_eq!(KernelPath::from_name("avx2"), None);
    }

    #[test]
    fn path_select_refuses_what_the_machine_lacks() {
        assert!(available(KernelPath::Generic));
        assert!(available(detect()));
        for p in KernelPath::ALL {
            assert_eq!(select(p).is_ok(), available(p), "{p:?}");
        }
        assert_eq!(select(detect()), Ok(()));
    }
}
