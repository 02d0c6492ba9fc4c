//! The only `unsafe` of `cavmem-fw`: the entry point, Linux x86-64 system calls, the
//! memory functions the compiler expects from libc, the panic handler, and the one static.

use core::arch::asm;
use core::cell::UnsafeCell;

/// A static that the single thread of this program borrows once.
pub struct Global<T>(UnsafeCell<T>);

// SAFETY: cavmem-fw has one thread, and `with` is called once, from `entry`.
unsafe impl<T> Sync for Global<T> {}

impl<T> Global<T> {
    /// Wraps the value.
    pub const fn new(value: T) -> Self {
        Self(UnsafeCell::new(value))
    }

    /// Runs `f` with the value. Must be called once only.
    pub fn with<R>(&'static self, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: single-threaded, and the only call is in `entry`, so this is the only
        // reference to the value for the life of the program.
        f(unsafe { &mut *self.0.get() })
    }
}

/// Process entry: align the stack as the ABI requires for a call, then run `entry`.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub extern "C" fn _start() -> ! {
    core::arch::naked_asm!("xor ebp, ebp", "and rsp, -16", "call {entry}", "ud2", entry = sym super::entry)
}

const SYS_READ: usize = 0;
const SYS_WRITE: usize = 1;
const SYS_EXIT_GROUP: usize = 231;
const EINTR: isize = -4;

fn syscall3(n: usize, a: usize, b: usize, c: usize) -> isize {
    let ret: isize;
    // SAFETY: read and write take a file descriptor, a pointer and a length that come from a
    // live Rust slice; the kernel clobbers rcx and r11 only.
    unsafe {
        asm!("syscall", inlateout("rax") n as isize => ret, in("rdi") a, in("rsi") b, in("rdx") c,
             lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

/// `read(2)` into `buf`, retrying on EINTR.
pub fn read(fd: usize, buf: &mut [u8]) -> Result<usize, ()> {
    loop {
        let r = syscall3(SYS_READ, fd, buf.as_mut_ptr() as usize, buf.len());
        if r == EINTR {
            continue;
        }
        return usize::try_from(r).map_err(|_| ());
    }
}

/// `write(2)` of all of `buf`, retrying on EINTR and short writes.
pub fn write_all(fd: usize, mut buf: &[u8]) -> Result<(), ()> {
    while !buf.is_empty() {
        let r = syscall3(SYS_WRITE, fd, buf.as_ptr() as usize, buf.len());
        if r == EINTR {
            continue;
        }
        let n = usize::try_from(r).map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        buf = buf.get(n..).unwrap_or_default();
    }
    Ok(())
}

/// `exit_group(2)`.
pub fn exit(code: i32) -> ! {
    // SAFETY: exit_group does not return.
    unsafe {
        asm!("syscall", in("rax") SYS_EXIT_GROUP, in("rdi") code as isize, options(noreturn, nostack));
    }
}

/// The pattern painted below the stack pointer.
const PAINT: u8 = 0xA5;
/// Bytes of stack painted at start to measure the high-water mark.
pub const STACK_PAINT_BYTES: usize = 6 << 20;

/// A painted stack region: `[low, top)`.
pub struct Painted {
    low: usize,
    top: usize,
}

/// Fills the next [`STACK_PAINT_BYTES`] of stack with a pattern, by giving this function
/// a frame that large (the compiler probes it page by page, so the kernel, and valgrind,
/// grow the stack as usual) and filling it.
#[inline(never)]
pub fn paint_stack() -> Painted {
    let mut area = [0u8; STACK_PAINT_BYTES];
    area.fill(PAINT);
    let low = core::hint::black_box(&mut area).as_ptr() as usize;
    Painted {
        low,
        top: low + STACK_PAINT_BYTES,
    }
}

/// Bytes of the painted region written since [`paint_stack`]: the stack the program used
/// below `entry`'s frame.
pub fn stack_used(p: &Painted) -> usize {
    let mut addr = p.low;
    while addr < p.top {
        // SAFETY: the region is stack that paint_stack's frame occupied: mapped, and below
        // every live frame only while deeper calls ran; reading it is reading our own stack.
        if unsafe { core::ptr::read_volatile(addr as *const u8) } != PAINT {
            break;
        }
        addr += 1;
    }
    p.top - addr
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // The core has no panicking paths on its decision path; if anything panics, stop with a
    // distinct status rather than answer with corrupted state.
    exit(101)
}

// The compiler lowers copies and fills to these libc functions; there is no libc, so they
// are here, in string instructions that the optimizer cannot turn back into calls to
// themselves.

/// `memcpy(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees two valid, non-overlapping regions of n bytes.
    unsafe {
        asm!("rep movsb", inout("rcx") n => _, inout("rdi") dst => _, inout("rsi") src => _, options(nostack, preserves_flags));
    }
    dst
}

/// `memmove(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize) <= (src as usize) || (dst as usize) >= (src as usize).wrapping_add(n) {
        // SAFETY: copying forwards is safe when dst starts before src or past its end.
        return unsafe { memcpy(dst, src, n) };
    }
    // SAFETY: overlapping with dst after src: copy backwards from the last byte.
    unsafe {
        asm!("std", "rep movsb", "cld", inout("rcx") n => _, inout("rdi") dst.wrapping_add(n - 1) => _,
             inout("rsi") src.wrapping_add(n - 1) => _, options(nostack));
    }
    dst
}

/// `memset(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(dst: *mut u8, value: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees a valid region of n bytes.
    unsafe {
        asm!("rep stosb", inout("rcx") n => _, inout("rdi") dst => _, in("al") value as u8, options(nostack, preserves_flags));
    }
    dst
}

/// `memcmp(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: the caller guarantees two valid regions of n bytes; volatile reads keep the
        // loop from being turned into a call to memcmp.
        let (x, y) = unsafe {
            (
                core::ptr::read_volatile(a.add(i)),
                core::ptr::read_volatile(b.add(i)),
            )
        };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
    }
    0
}

/// `bcmp(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: as for memcmp.
    unsafe { memcmp(a, b, n) }
}
