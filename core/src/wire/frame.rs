//! Frames: `sync(2) version(1) type(1) length(2) payload(length) crc32(4)`.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 2 | sync bytes `0xC5 0xA7` |
//! | 2 | 1 | protocol version ([`PROTOCOL_VERSION`]) |
//! | 3 | 1 | message type |
//! | 4 | 2 | payload length `n` (u16 LE, at most [`MAX_PAYLOAD`]) |
//! | 6 | n | payload |
//! | 6 + n | 4 | CRC-32 (ISO-HDLC) of bytes 2 .. 6 + n, LE |
//!
//! The decoder reads any byte stream. On a bad frame (wrong version, oversized length,
//! wrong CRC) it reports the error once and resynchronizes: it drops the first sync byte
//! and searches for the next sync pair, so one good frame after any garbage is found.

use crc::{CRC_32_ISO_HDLC, Crc};

/// The two bytes that start every frame.
pub const SYNC: [u8; 2] = [0xC5, 0xA7];
/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u8 = 1;
/// Largest payload, bytes.
pub const MAX_PAYLOAD: usize = 1024;
/// Bytes before the payload.
pub const HEADER_BYTES: usize = 6;
/// Bytes after the payload.
pub const TRAILER_BYTES: usize = 4;
/// Largest frame, bytes.
pub const MAX_FRAME: usize = HEADER_BYTES + MAX_PAYLOAD + TRAILER_BYTES;

const CRC32: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

/// Why bytes were not a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum FrameError {
    /// The version byte is not [`PROTOCOL_VERSION`].
    Version {
        /// The version found.
        found: u8,
    },
    /// The length field exceeds [`MAX_PAYLOAD`].
    Oversized {
        /// The length found.
        length: u16,
    },
    /// The CRC does not match.
    Crc,
    /// An output buffer is too small or a payload too long to encode.
    TooLong,
}

impl FrameError {
    /// A one-byte code for error frames.
    pub const fn code(self) -> u8 {
        match self {
            Self::Version { .. } => 1,
            Self::Oversized { .. } => 2,
            Self::Crc => 3,
            Self::TooLong => 4,
        }
    }
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Version { found } => write!(
                f,
                "frame of protocol version {found}, expected {PROTOCOL_VERSION}"
            ),
            Self::Oversized { length } => write!(f, "frame payload of {length} bytes exceeds {MAX_PAYLOAD}"),
            Self::Crc => f.write_str("frame CRC mismatch"),
            Self::TooLong => f.write_str("payload or frame does not fit"),
        }
    }
}

impl core::error::Error for FrameError {}

/// Writes a frame of `msg_type` around `payload` into `out`; returns the frame's length.
///
/// # Errors
/// [`FrameError::TooLong`] when the payload exceeds [`MAX_PAYLOAD`] or `out` is too small.
///
/// # Examples
/// ```
/// use cavmem_core::wire::{FrameDecoder, encode_frame};
/// let mut buf = [0u8; 64];
/// let n = encode_frame(0x02, b"hello", &mut buf).unwrap();
/// let mut dec = FrameDecoder::new();
/// let (used, frame) = dec.push(&buf[..n]);
/// assert_eq!(used, n);
/// let (msg_type, payload) = frame.unwrap().unwrap();
/// assert_eq!((msg_type, payload), (0x02, &b"hello"[..]));
/// ```
pub fn encode_frame(msg_type: u8, payload: &[u8], out: &mut [u8]) -> Result<usize, FrameError> {
    let n = payload.len();
    if n > MAX_PAYLOAD {
        return Err(FrameError::TooLong);
    }
    let total = HEADER_BYTES + n + TRAILER_BYTES;
    let out = out.get_mut(..total).ok_or(FrameError::TooLong)?;
    let (head, rest) = out.split_at_mut(HEADER_BYTES);
    head.copy_from_slice(&[
        SYNC[0],
        SYNC[1],
        PROTOCOL_VERSION,
        msg_type,
        (n & 0xff) as u8,
        (n >> 8) as u8,
    ]);
    let (body, trailer) = rest.split_at_mut(n);
    body.copy_from_slice(payload);
    let mut digest = CRC32.digest();
    digest.update(&head[2..]);
    digest.update(body);
    trailer.copy_from_slice(&digest.finalize().to_le_bytes());
    Ok(total)
}

/// A streaming decoder with room for one whole frame.
#[derive(Clone, Debug)]
pub struct FrameDecoder {
    buf: [u8; MAX_FRAME],
    len: usize,
    /// Set when the buffered frame was returned and must be dropped on the next push.
    consumed: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

/// What one call to [`FrameDecoder::push`] found: a frame `(type, payload)`, an error, or
/// nothing yet.
pub type Decoded<'a> = Option<Result<(u8, &'a [u8]), FrameError>>;

impl FrameDecoder {
    /// An empty decoder (`const`, for `static` placement).
    pub const fn new() -> Self {
        Self {
            buf: [0; MAX_FRAME],
            len: 0,
            consumed: 0,
        }
    }

    /// Drops everything buffered.
    pub fn clear(&mut self) {
        self.len = 0;
        self.consumed = 0;
    }

    /// Feeds bytes; returns how many of `input` were taken and at most one event. Call again
    /// with the rest of `input` (and after every event) until it takes nothing and reports
    /// nothing. A returned payload is valid until the next call.
    pub fn push<'a>(&'a mut self, input: &[u8]) -> (usize, Decoded<'a>) {
        if self.consumed > 0 {
            self.drop_front(self.consumed);
            self.consumed = 0;
        }
        let space = MAX_FRAME - self.len;
        let take = input.len().min(space);
        if let (Some(dst), Some(src)) = (self.buf.get_mut(self.len..self.len + take), input.get(..take)) {
            dst.copy_from_slice(src);
        }
        self.len += take;
        (take, self.scan())
    }

    /// Gives up on a partial frame (e.g. after an inter-frame timeout: a truncated frame
    /// will never complete): drops its first byte and looks for the next frame in what is
    /// buffered. Returns what [`FrameDecoder::push`] would.
    pub fn abandon_partial(&mut self) -> Decoded<'_> {
        if self.consumed > 0 {
            self.drop_front(self.consumed);
            self.consumed = 0;
        } else {
            self.drop_front(1);
        }
        self.scan()
    }

    /// Bytes buffered but not yet part of a returned frame.
    pub fn buffered(&self) -> usize {
        self.len - self.consumed
    }

    /// Looks for a frame at the start of the buffer, dropping garbage before it.
    fn scan(&mut self) -> Decoded<'_> {
        // Align the buffer on a sync pair, or on a lone first sync byte at the end.
        let start = (0..self.len).find(|&i| {
            self.buf.get(i) == Some(&SYNC[0]) && (i + 1 == self.len || self.buf.get(i + 1) == Some(&SYNC[1]))
        });
        match start {
            Some(i) => self.drop_front(i),
            None => {
                self.len = 0;
                return None;
            }
        }
        if self.len < HEADER_BYTES {
            return None;
        }
        let version = self.buf[2];
        let length = u16::from_le_bytes([self.buf[4], self.buf[5]]);
        let n = usize::from(length);
        let error = if version != PROTOCOL_VERSION {
            Some(FrameError::Version { found: version })
        } else if n > MAX_PAYLOAD {
            Some(FrameError::Oversized { length })
        } else {
            None
        };
        if let Some(e) = error {
            self.drop_front(1);
            return Some(Err(e));
        }
        let total = HEADER_BYTES + n + TRAILER_BYTES;
        if self.len < total {
            return None;
        }
        let covered = self.buf.get(2..HEADER_BYTES + n).unwrap_or_default();
        let stored = self.buf.get(total - TRAILER_BYTES..total).unwrap_or_default();
        if stored != CRC32.checksum(covered).to_le_bytes() {
            self.drop_front(1);
            return Some(Err(FrameError::Crc));
        }
        self.consumed = total;
        let msg_type = self.buf[3];
        Some(Ok((
            msg_type,
            self.buf.get(HEADER_BYTES..HEADER_BYTES + n).unwrap_or_default(),
        )))
    }

    fn drop_front(&mut self, n: usize) {
        let n = n.min(self.len);
        self.buf.copy_within(n..self.len, 0);
        self.len -= n;
    }
}

#[cfg(test)]
mod tests;
