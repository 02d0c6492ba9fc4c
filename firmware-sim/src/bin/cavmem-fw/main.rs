//! `cavmem-fw`: one CAVMem agent as a freestanding executable speaking the framed wire
//! protocol (docs/protocol.md) on stdin/stdout. It stands in for a BMC or hypervisor
//! component: no libc, its own entry point, raw system calls, all state in static memory
//! sized at compile time. The logic is `cavmem-core`'s `AgentServer`; this file only
//! moves bytes.

#![no_std]
#![no_main]

mod sys;

use cavmem_core::agent::QLearning;
use cavmem_core::wire::FrameDecoder;
use cavmem_core::wire::frame::MAX_FRAME;
use cavmem_core::wire::server::AgentServer;

/// Replay capacity of the deep learners: the harness's, so trajectories match.
const REPLAY_CAPACITY: usize = 16_384;
/// Room for the largest snapshot (the Q-table's).
const SNAPSHOT_BYTES: usize = QLearning::SNAPSHOT_BYTES;

/// Everything the agent needs, in static memory.
struct State {
    server: AgentServer<REPLAY_CAPACITY, SNAPSHOT_BYTES>,
    decoder: FrameDecoder,
    input: [u8; 4096],
    output: [u8; MAX_FRAME],
}

static STATE: sys::Global<State> = sys::Global::new(State {
    server: AgentServer::new(),
    decoder: FrameDecoder::new(),
    input: [0; 4096],
    output: [0; MAX_FRAME],
});

/// Reads requests until end of input, answering each; exits 0 at end of input, 1 on an I/O error.
/// Not inlined, so its frames lie inside the painted stack.
#[inline(never)]
fn run(state: &mut State) -> i32 {
    let State {
        server,
        decoder,
        input,
        output,
    } = state;
    loop {
        let n = match sys::read(0, input) {
            Ok(0) => return 0,
            Ok(n) => n,
            Err(()) => return 1,
        };
        let mut rest = input.get(..n).unwrap_or_default();
        loop {
            let (used, event) = decoder.push(rest);
            rest = rest.get(used..).unwrap_or_default();
            match event {
                Some(event) => {
                    let len = server.serve(event, output);
                    if sys::write_all(1, output.get(..len).unwrap_or_default()).is_err() {
                        return 1;
                    }
                }
                None if used == 0 => break,
                None => {}
            }
        }
    }
}

/// Called by `_start`. Paints the stack, serves requests, and at the end reports the stack
/// high-water mark on stderr (`cavmem-fw: stack high-water N bytes`).
extern "C" fn entry() -> ! {
    let painted = sys::paint_stack();
    let code = STATE.with(run);
    let used = sys::stack_used(&painted);
    let mut line = *b"cavmem-fw: stack high-water 00000000000000000000 bytes\n";
    let digits = line.get_mut(28..48).unwrap_or_default();
    let mut n = used;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let _ = sys::write_all(2, &line);
    sys::exit(code)
}
