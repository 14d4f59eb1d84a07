//! Scenarios for the execution tracer and the CPU profiler (tests/trace.rs).
use core::hint::black_box;
use kernel::ktest::ktest;
use kernel::{go, nanotime, Chan};

/// The function the profiler test expects at the top of the profile. The
/// loop is one asm block, so that no inlined library function (whose frames
/// a profiler would report as the innermost) shares its instructions.
#[inline(never)]
pub fn profile_hot_loop(n: u64) -> u64 {
    let mut x = 1u64;
    // SAFETY: arithmetic on two registers; no memory, no stack.
    unsafe {
        core::arch::asm!(
            "2:",
            "imul {x}, {x}, 3",
            "add {x}, {i}",
            "dec {i}",
            "jnz 2b",
            x = inout(reg) x,
            i = inout(reg) n.max(1) => _,
            options(nomem, nostack)
        );
    }
    x
}

/// Every P spins in `profile_hot_loop` for 300 ms of emulated time.
/// Booted by tests/trace.rs with the profiler on; alone it just spins.
#[ktest(smp = [2], tags = ["manual"])]
fn profile_spin() {
    let procs = kernel::current_gomaxprocs();
    let done: Chan<u64> = Chan::new(procs as usize);
    for _ in 0..procs {
        let done = done.clone();
        go(move || {
            let t0 = nanotime();
            let mut acc = 0u64;
            while nanotime() - t0 < 300_000_000 {
                acc = acc.wrapping_add(profile_hot_loop(20_000));
                kernel::morestack_check!();
            }
            done.send(acc);
        });
    }
    for _ in 0..procs {
        black_box(done.recv());
    }
}
