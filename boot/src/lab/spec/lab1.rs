//! Lab 1: the run queue ring (`labs/lab1/`).
use super::{Kind, Lab, Test};
use gmp_core::rand::mix64;

/// The QEMU test's expected line: the same formula as `work` in
/// `kernel/src/bin/testkernel/lab1.rs` (kept equal by hand; the grader is the reference).
fn lab1_expect(seed: u64) -> String {
    let mut sum = 0u64;
    for i in 0..1000u64 {
        let mut x = mix64(seed ^ i.wrapping_mul(0xd6e8_feb8_6659_fd93));
        for _ in 0..1 + (x & 63) {
            x = mix64(x);
        }
        sum = sum.wrapping_add(x);
    }
    format!("lab1: checksum {sum:016x} nonce {seed} goroutines 1000 ok")
}

const LAB1_TESTS: &[Test] = &[
    Test { title: "FIFO order (Go's TestSchedLocalQueue)", kind: Kind::Host("runq::tests::sched_local_queue"), points: 10 },
    Test { title: "full ring overflows half + 1 to the global queue", kind: Kind::Host("runq::tests::put_overflow_moves_half_plus_one"), points: 5 },
    Test { title: "head/tail wrap around u32::MAX", kind: Kind::Host("runq::tests::counters_wrap_around"), points: 10 },
    Test { title: "proptest: ring across the u32 wrap vs VecDeque", kind: Kind::Host("runq::tests::model::ring_across_u32_wrap_matches_model"), points: 10 },
    Test { title: "proptest: every operation vs VecDeque", kind: Kind::Host("runq::tests::model::matches_model"), points: 10 },
    Test { title: "two threads: owner put/get vs a thief", kind: Kind::Host("runq::tests::owner_and_thief_stress"), points: 5 },
    Test { title: "loom: put/get vs steal", kind: Kind::Loom("runq::loom_tests::loom_put_get_vs_steal"), points: 10 },
    Test { title: "loom: overflow vs steal", kind: Kind::Loom("runq::loom_tests::loom_overflow_vs_steal"), points: 10 },
    Test { title: "qemu: 1000 goroutines, checksum", kind: Kind::Qemu { test: "lab1::goroutines_checksum", smp: 2, expect: lab1_expect }, points: 5 },
    Test { title: "qemu: 1000 goroutines, checksum", kind: Kind::Qemu { test: "lab1::goroutines_checksum", smp: 4, expect: lab1_expect }, points: 5 },
];

pub const LAB: Lab = Lab {
    number: 1,
    title: "The run queue ring: runqput, runqget and runqputslow",
    tests: LAB1_TESTS,
    qemu_runs: 3,
    // Its host and loom tests also steal (runqgrab, lab 2) and go through runqput's runnext
    // kick-out and runqget's inheritTime (lab 3): a lab 2 or lab 3 starter fails them.
    uses: &[2, 3],
    protected: &[
        "kernel/core/src/runq/tests.rs",
        "kernel/core/src/runq/loom_tests.rs",
        "kernel/src/bin/testkernel/lab1.rs",
        "kernel/src/bin/testkernel/latch.rs",
        "boot/src/lab/spec/lab1.rs",
    ],
};

