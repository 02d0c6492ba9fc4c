//! Policy snapshots: a trained policy as bytes — versioned, CRC-checked, little-endian —
//! for moving it between the harness, the firmware executable and C hosts.
//!
//! Layout (docs/snapshot.md has the byte table):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `CAVM` |
//! | 4 | 2 | format version ([`VERSION`]) |
//! | 6 | 1 | [`SnapshotKind`] |
//! | 7 | 1 | reserved, 0 |
//! | 8 | 2 | state width (5) |
//! | 10 | 2 | hidden width (64; 0 for a table) |
//! | 12 | 2 | outputs (1 for DDPG's actor, 3 for DQN and Q-learning) |
//! | 14 | 2 | reserved, 0 |
//! | 16 | 4 | parameter count `n` |
//! | 20 | 12 | kind-specific: three action bids (f32) for DQN and Q-learning; VM count (u32) for the equal split; three parameters (f32) for a controller or a residual actor's base controller |
//! | 32 | 4·n | parameters, f32, in [`Parameters::tensors`] order |
//! | 32 + 4·n | 4 | CRC-32 (ISO-HDLC) of every byte before it |
//!
//! Reading checks, in order: length, magic, version, kind, exact length, CRC, the kind and
//! shape expected, and that every parameter is finite; each failure is its own
//! [`SnapshotError`].

use crc::{CRC_32_ISO_HDLC, Crc};

use crate::nn::Parameters;

/// The snapshot format's magic bytes.
pub const MAGIC: [u8; 4] = *b"CAVM";
/// The snapshot format version this build reads and writes.
pub const VERSION: u16 = 1;
/// Bytes before the parameters.
pub const HEADER_BYTES: usize = 32;
/// Bytes of the trailing CRC.
pub const CRC_BYTES: usize = 4;

const CRC32: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

/// What a snapshot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum SnapshotKind {
    /// DDPG's actor network (5 → 64 → 64 → 1, tanh).
    DdpgActor = 0,
    /// DQN's Q-network (5 → 64 → 64 → 3).
    DqnQNetwork = 1,
    /// Q-learning's table (10⁵ × 3).
    QTable = 2,
    /// The equal split (no parameters).
    EqualSplit = 3,
    /// The feedback controller (no parameters; its three in the kind-specific bytes).
    Feedback = 4,
    /// The fixed-step (MOM-style) controller (likewise).
    Mom = 5,
    /// The `residual` policy's actor (as [`SnapshotKind::DdpgActor`]) followed by its
    /// scale; its base controller's three parameters in the kind-specific bytes.
    ResidualActor = 6,
}

impl SnapshotKind {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Self::DdpgActor),
            1 => Some(Self::DqnQNetwork),
            2 => Some(Self::QTable),
            3 => Some(Self::EqualSplit),
            4 => Some(Self::Feedback),
            5 => Some(Self::Mom),
            6 => Some(Self::ResidualActor),
            _ => None,
        }
    }
}

/// The shape and extras of a snapshot, as read from its header.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Header {
    /// What it holds.
    pub kind: SnapshotKind,
    /// State width.
    pub state_dim: u16,
    /// Hidden width (0 for a table).
    pub hidden: u16,
    /// Number of outputs.
    pub outputs: u16,
    /// Number of f32 parameters.
    pub parameter_count: u32,
    /// The 12 kind-specific bytes.
    pub extra: [u8; 12],
}

impl Header {
    /// Total snapshot length in bytes for this header; saturates at `usize::MAX` (a crafted
    /// parameter count on a 32-bit target then reads as too long for any buffer instead of
    /// wrapping to a short length).
    pub fn total_bytes(&self) -> usize {
        (self.parameter_count as usize)
            .saturating_mul(4)
            .saturating_add(HEADER_BYTES + CRC_BYTES)
    }

    /// The three action bids stored by DQN and Q-learning snapshots.
    pub fn action_bids(&self) -> [f32; 3] {
        self.extra_f32s()
    }

    /// The kind-specific bytes as three little-endian `f32`: DQN's and Q-learning's action
    /// bids, a controller's parameters.
    pub fn extra_f32s(&self) -> [f32; 3] {
        let e = &self.extra;
        [
            f32::from_le_bytes([e[0], e[1], e[2], e[3]]),
            f32::from_le_bytes([e[4], e[5], e[6], e[7]]),
            f32::from_le_bytes([e[8], e[9], e[10], e[11]]),
        ]
    }

    /// The VM count stored by an equal-split snapshot.
    pub fn vm_count(&self) -> u32 {
        u32::from_le_bytes([self.extra[0], self.extra[1], self.extra[2], self.extra[3]])
    }
}

/// Why a snapshot was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SnapshotError {
    /// Fewer bytes than the header or the header's length says.
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        got: usize,
    },
    /// The first four bytes are not `CAVM`.
    BadMagic,
    /// Written by another version of the format.
    UnsupportedVersion {
        /// The version found.
        found: u16,
    },
    /// The kind byte is unknown, or not the kind asked for.
    WrongKind {
        /// The kind byte found.
        found: u8,
    },
    /// The shape differs from the policy it is loaded into.
    ShapeMismatch,
    /// The CRC does not match: the bytes are corrupted.
    BadCrc,
    /// A parameter is NaN or infinite.
    NonFinite {
        /// Index of the first such parameter.
        index: u32,
    },
    /// More bytes than the header's length says (a snapshot is loaded from exactly its own
    /// bytes, so trailing bytes mean a framing or file mistake).
    TrailingBytes {
        /// Bytes the header announces.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// The output buffer is too small.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
}

impl core::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Truncated { needed, got } => write!(f, "snapshot truncated: {got} bytes of {needed}"),
            Self::BadMagic => f.write_str("not a CAVMem snapshot (bad magic)"),
            Self::UnsupportedVersion { found } => {
                write!(f, "snapshot format version {found}, this build reads {VERSION}")
            }
            Self::WrongKind { found } => {
                write!(f, "snapshot holds policy kind {found}, not the one expected")
            }
            Self::ShapeMismatch => f.write_str("snapshot shape differs from the policy's"),
            Self::BadCrc => f.write_str("snapshot CRC mismatch: corrupted"),
            Self::NonFinite { index } => write!(f, "snapshot parameter {index} is not finite"),
            Self::TrailingBytes { expected, got } => {
                write!(
                    f,
                    "snapshot of {expected} bytes followed by {} more",
                    got.saturating_sub(*expected)
                )
            }
            Self::BufferTooSmall { needed } => write!(f, "buffer too small: {needed} bytes needed"),
        }
    }
}

impl core::error::Error for SnapshotError {}

/// Writes a snapshot of `params` (with `header`'s kind, shape and extras; its parameter
/// count is taken from `params`) into `out`; returns the bytes written.
///
/// # Errors
/// [`SnapshotError::BufferTooSmall`] when `out` cannot hold it.
pub fn write<P: Parameters>(header: &Header, params: &P, out: &mut [u8]) -> Result<usize, SnapshotError> {
    write_tensors(header, params.parameter_count(), params.tensors(), out)
}

/// As [`write()`], with the parameters given as `count` values in `tensors`.
///
/// # Errors
/// [`SnapshotError::BufferTooSmall`] when `out` cannot hold it.
pub fn write_tensors<'p>(
    header: &Header,
    count: usize,
    tensors: impl Iterator<Item = &'p [f32]>,
    out: &mut [u8],
) -> Result<usize, SnapshotError> {
    let needed = HEADER_BYTES + 4 * count + CRC_BYTES;
    let out = out
        .get_mut(..needed)
        .ok_or(SnapshotError::BufferTooSmall { needed })?;
    let (head, rest) = out.split_at_mut(HEADER_BYTES);
    head.fill(0);
    put(head, 0, &MAGIC);
    put(head, 4, &VERSION.to_le_bytes());
    put(head, 6, &[header.kind as u8]);
    put(head, 8, &header.state_dim.to_le_bytes());
    put(head, 10, &header.hidden.to_le_bytes());
    put(head, 12, &header.outputs.to_le_bytes());
    put(head, 16, &(count as u32).to_le_bytes());
    put(head, 20, &header.extra);
    let body = crate::rows::prefix_mut(rest, 4 * count);
    for (dst, p) in body.chunks_exact_mut(4).zip(tensors.flatten()) {
        dst.copy_from_slice(&p.to_le_bytes());
    }
    let (covered, crc) = out.split_at_mut(needed - CRC_BYTES);
    crc.copy_from_slice(&CRC32.checksum(covered).to_le_bytes());
    Ok(needed)
}

fn put(dst: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(slot) = dst.get_mut(at..at + bytes.len()) {
        slot.copy_from_slice(bytes);
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([
        b.get(at).copied().unwrap_or(0),
        b.get(at + 1).copied().unwrap_or(0),
    ])
}

/// The empty parameter set of a policy without network or table parameters.
struct NoParameters;

impl Parameters for NoParameters {
    fn tensors(&self) -> impl Iterator<Item = &[f32]> {
        core::iter::empty()
    }
    fn tensors_mut(&mut self) -> impl Iterator<Item = &mut [f32]> {
        core::iter::empty()
    }
}

/// Bytes of a snapshot without parameters (its state sits in the header's 12 kind-specific bytes).
pub const PARAMETERLESS_BYTES: usize = HEADER_BYTES + CRC_BYTES;

/// Writes a snapshot of `kind` that has no parameters, only the kind-specific bytes
/// `extra` (the equal split, the controllers): state width 5, hidden 0, one output.
///
/// # Errors
/// [`SnapshotError::BufferTooSmall`].
pub fn write_parameterless(
    kind: SnapshotKind,
    extra: [u8; 12],
    out: &mut [u8],
) -> Result<usize, SnapshotError> {
    write(&controller_header(kind, extra, 0), &NoParameters, out)
}

/// The header of a snapshot without a network: state width 5, hidden 0, one output.
fn controller_header(kind: SnapshotKind, extra: [u8; 12], parameter_count: u32) -> Header {
    Header {
        kind,
        state_dim: crate::mdp::STATE_DIM as u16,
        hidden: 0,
        outputs: 1,
        parameter_count,
        extra,
    }
}

/// Reads a snapshot written by [`write_parameterless`] for `kind`; its header after every
/// check and `accept`'s judgement of it.
///
/// # Errors
/// [`SnapshotError`] naming the first failed check, or `accept`'s.
pub fn read_parameterless(
    bytes: &[u8],
    kind: SnapshotKind,
    accept: impl FnOnce(&Header) -> Result<(), SnapshotError>,
) -> Result<Header, SnapshotError> {
    read_into_if(
        bytes,
        kind,
        (crate::mdp::STATE_DIM as u16, 0, 1),
        &mut NoParameters,
        accept,
    )
}

/// As [`write_parameterless`], with one parameter, `value`: a controller's extension.
///
/// # Errors
/// [`SnapshotError::BufferTooSmall`].
pub fn write_extended(
    kind: SnapshotKind,
    extra: [u8; 12],
    value: f32,
    out: &mut [u8],
) -> Result<usize, SnapshotError> {
    let header = controller_header(kind, extra, 1);
    write_tensors(&header, 1, core::iter::once(&[value][..]), out)
}

/// One parameter: a controller's extension.
struct OneParameter([f32; 1]);

impl Parameters for OneParameter {
    fn tensors(&self) -> impl Iterator<Item = &[f32]> {
        core::iter::once(&self.0[..])
    }
    fn tensors_mut(&mut self) -> impl Iterator<Item = &mut [f32]> {
        core::iter::once(&mut self.0[..])
    }
}

/// Reads a snapshot of `kind` written by [`write_parameterless`] or [`write_extended`];
/// `accept` judges its header and extension (`None` without one) after every other check.
///
/// # Errors
/// [`SnapshotError`] naming the first failed check (more than one parameter:
/// [`SnapshotError::ShapeMismatch`]), or `accept`'s.
pub fn read_extended(
    bytes: &[u8],
    kind: SnapshotKind,
    accept: impl FnOnce(&Header, Option<f32>) -> Result<(), SnapshotError>,
) -> Result<Header, SnapshotError> {
    let shape = (crate::mdp::STATE_DIM as u16, 0, 1);
    if read_header(bytes)?.parameter_count != 1 {
        return read_into_if(bytes, kind, shape, &mut NoParameters, |h| accept(h, None));
    }
    let value = bytes
        .get(HEADER_BYTES..HEADER_BYTES + 4)
        .map_or(f32::NAN, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    read_into_if(bytes, kind, shape, &mut OneParameter([0.0]), |h| {
        accept(h, Some(value))
    })
}

/// Reads and checks a snapshot's header and CRC (not the parameters' values).
///
/// # Errors
/// The first failed check, as a [`SnapshotError`].
pub fn read_header(bytes: &[u8]) -> Result<Header, SnapshotError> {
    if bytes.len() < HEADER_BYTES + CRC_BYTES {
        return Err(SnapshotError::Truncated {
            needed: HEADER_BYTES + CRC_BYTES,
            got: bytes.len(),
        });
    }
    if bytes.get(..4) != Some(&MAGIC[..]) {
        return Err(SnapshotError::BadMagic);
    }
    let version = u16_at(bytes, 4);
    if version != VERSION {
        return Err(SnapshotError::UnsupportedVersion { found: version });
    }
    let kind_byte = bytes.get(6).copied().unwrap_or(u8::MAX);
    let kind = SnapshotKind::from_byte(kind_byte).ok_or(SnapshotError::WrongKind { found: kind_byte })?;
    let mut extra = [0u8; 12];
    extra.copy_from_slice(bytes.get(20..32).unwrap_or(&[0; 12]));
    let count = u32::from_le_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    let header = Header {
        kind,
        state_dim: u16_at(bytes, 8),
        hidden: u16_at(bytes, 10),
        outputs: u16_at(bytes, 12),
        parameter_count: count,
        extra,
    };
    let total = header.total_bytes();
    if bytes.len() < total {
        return Err(SnapshotError::Truncated {
            needed: total,
            got: bytes.len(),
        });
    }
    if bytes.len() > total {
        return Err(SnapshotError::TrailingBytes {
            expected: total,
            got: bytes.len(),
        });
    }
    let (body, stored) = bytes
        .split_at_checked(total - CRC_BYTES)
        .ok_or(SnapshotError::Truncated {
            needed: total,
            got: bytes.len(),
        })?;
    if stored != CRC32.checksum(body).to_le_bytes() {
        return Err(SnapshotError::BadCrc);
    }
    Ok(header)
}

/// Reads a snapshot into `target`, after checking that it holds `kind` with the given
/// shape and as many parameters as `target` has. `target` is untouched on error. The
/// values go straight from `bytes` into `target` (no copy of the network on the stack).
///
/// # Errors
/// [`SnapshotError`] naming the first failed check.
pub fn read_into<P: Parameters>(
    bytes: &[u8],
    kind: SnapshotKind,
    shape: (u16, u16, u16),
    target: &mut P,
) -> Result<Header, SnapshotError> {
    read_into_if(bytes, kind, shape, target, |_| Ok(()))
}

/// As [`read_into`], with `accept` judging the header (its kind-specific bytes) after every
/// other check and before anything is written.
///
/// # Errors
/// [`SnapshotError`] naming the first failed check, or `accept`'s.
pub fn read_into_if<P: Parameters>(
    bytes: &[u8],
    kind: SnapshotKind,
    shape: (u16, u16, u16),
    target: &mut P,
    accept: impl FnOnce(&Header) -> Result<(), SnapshotError>,
) -> Result<Header, SnapshotError> {
    let header = read_header(bytes)?;
    if header.kind != kind {
        return Err(SnapshotError::WrongKind {
            found: header.kind as u8,
        });
    }
    if (header.state_dim, header.hidden, header.outputs) != shape
        || header.parameter_count as usize != target.parameter_count()
    {
        return Err(SnapshotError::ShapeMismatch);
    }
    let body = bytes
        .get(HEADER_BYTES..header.total_bytes().saturating_sub(CRC_BYTES))
        .ok_or(SnapshotError::Truncated {
            needed: header.total_bytes(),
            got: bytes.len(),
        })?;
    let values = body
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
    if let Some(index) = values.clone().position(|v| !v.is_finite()) {
        return Err(SnapshotError::NonFinite { index: index as u32 });
    }
    accept(&header)?;
    let mut values = values;
    for t in target.tensors_mut() {
        for (dst, v) in t.iter_mut().zip(&mut values) {
            *dst = v;
        }
    }
    Ok(header)
}

/// Rewrites the CRC after a deliberate change, so a later check is the one that fails.
#[cfg(all(test, feature = "learn"))]
pub(crate) fn reseal(bytes: &mut [u8]) {
    let n = bytes.len() - CRC_BYTES;
    let sum = CRC32.checksum(&bytes[..n]);
    bytes[n..].copy_from_slice(&sum.to_le_bytes());
}

#[cfg(test)]
mod tests;
