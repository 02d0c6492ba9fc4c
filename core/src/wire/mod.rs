//! The wire protocol between a host and an agent in another process or device: framed,
//! versioned, CRC-checked little-endian messages (docs/protocol.md has the byte tables).
//!
//! [`frame`] cuts a byte stream into frames and back, resynchronizing after garbage;
//! [`message`] gives each frame's payload its typed meaning. Both are heap-free, so the
//! harness, the freestanding `cavmem-fw` executable and a microcontroller share one codec.

pub mod analyze;
pub mod frame;
pub mod message;
#[cfg(feature = "learn")]
pub mod server;

pub use frame::{FrameDecoder, FrameError, MAX_PAYLOAD, PROTOCOL_VERSION, encode_frame};
pub use message::{Message, MessageError};
