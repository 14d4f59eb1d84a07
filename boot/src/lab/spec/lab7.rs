//! Lab 7: GOMAXPROCS and stop-the-world (`labs/lab7/`).
use super::{Kind, Lab, Test};
use gmp_core::rand::mix64;

/// The QEMU test's expected line: the same formula as `work` in
/// `kernel/src/bin/testkernel/lab7.rs` (kept equal by hand; the grader is the reference).
fn lab7_expect(seed: u64) -> String {
    // 1000 workers, 8 hogs, 4 sleepers.
    let total: u64 = 1000 + 8 + 4;
    let mut sum = 0u64;
    for i in 0..total {
        let mut x = mix64(seed ^ 0x1ab7 ^ i.wrapping_mul(0xd6e8_feb8_6659_fd93));
        for _ in 0..1 + (x & 63) {
            x = mix64(x);
        }
        sum = sum.wrapping_add(x);
    }
    format!("lab7: checksum {sum:016x} nonce {seed} goroutines {total} resizes 4-1-3-4 x6 ok")
}

// The regions are kernel code (kernel/src/runtime/stw.rs), which only QEMU can run: every
// point is a QEMU run. 2 tests x 5 runs x 10 points (with 3 runs, 100 is not a sum of runs).
const LAB7_TESTS: &[Test] = &[
    Test { title: "qemu: GOMAXPROCS 4-1-3-4 under load, checksum, STW preempts", kind: Kind::Qemu { test: "lab7::gomaxprocs_resize", smp: 2, expect: lab7_expect }, points: 10 },
    Test { title: "qemu: GOMAXPROCS 4-1-3-4 under load, checksum, STW preempts", kind: Kind::Qemu { test: "lab7::gomaxprocs_resize", smp: 4, expect: lab7_expect }, points: 10 },
];

pub const LAB: Lab = Lab {
    number: 7,
    title: "GOMAXPROCS and stop-the-world: stopTheWorld, startTheWorld and procresize",
    tests: LAB7_TESTS,
    qemu_runs: 5,
    uses: &[],
    protected: &["kernel/src/bin/testkernel/lab7.rs", "boot/src/lab/spec/lab7.rs"],
};
