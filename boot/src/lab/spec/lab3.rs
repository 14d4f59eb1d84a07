//! Lab 3: runnext and 1-in-61 fairness (`labs/lab3/`).
use super::{Kind, Lab, Test};
use gmp_core::rand::mix64;

/// The QEMU test's expected line: the same formulas as `rounds`, `cycles`, `pingpong_value`
/// and `forkjoin_value` in `kernel/src/bin/testkernel/lab3.rs` (kept equal by hand; the
/// grader is the reference).
fn lab3_expect(seed: u64) -> String {
    let rounds = 1000 + mix64(seed ^ 0x1a3) % 1000;
    let cycles = 2000 + mix64(seed ^ 0x2b4) % 1000;
    let mut v = mix64(seed ^ 0x3c5);
    for _ in 0..2 * rounds {
        v = mix64(v);
    }
    let mut x = mix64(seed ^ 0x4d6);
    for _ in 0..cycles {
        x = mix64(mix64(x ^ 0xa) ^ mix64(mix64(x ^ 0xb)));
    }
    format!("lab3: pingpong rounds {rounds} value {v:016x} forkjoin cycles {cycles} value {x:016x} nonce {seed} ok")
}

const LAB3_TESTS: &[Test] = &[
    Test { title: "runnext: the old runnext is kicked out to the tail", kind: Kind::Host("runq::runnext_tests::runnext_kick_out_order"), points: 10 },
    Test { title: "runnext: inheritTime only for the G from runnext", kind: Kind::Host("runq::runnext_tests::inherit_time_only_for_runnext"), points: 10 },
    Test { title: "proptest: runnext and the ring vs a model", kind: Kind::Host("runq::runnext_tests::runnext_matches_model"), points: 15 },
    Test { title: "globrunqget batch rule (table)", kind: Kind::Host("gqueue::tests::globrunqget_batch_rule"), points: 10 },
    Test { title: "proptest: globrunqget batch vs Go's formula", kind: Kind::Host("gqueue::tests::batch_model::globrunqget_count_matches_go"), points: 10 },
    Test { title: "the global queue first on every 61st schedtick", kind: Kind::Host("gqueue::tests::check_global_first_every_61st_tick"), points: 15 },
    Test { title: "qemu: ping-pong shares a time slice, W waits <= 61 ticks", kind: Kind::Qemu { test: "lab3::runnext_fairness", smp: 2, expect: lab3_expect }, points: 5 },
    Test { title: "qemu: ping-pong shares a time slice, W waits <= 61 ticks", kind: Kind::Qemu { test: "lab3::runnext_fairness", smp: 4, expect: lab3_expect }, points: 5 },
];

pub const LAB: Lab = Lab {
    number: 3,
    title: "runnext and 1-in-61 fairness: time-slice inheritance and the globrunqget batch size",
    tests: LAB3_TESTS,
    qemu_runs: 3,
    // Its tests put and get through the ring (lab 1).
    uses: &[1],
    protected: &[
        "kernel/core/src/runq/runnext_tests.rs",
        "kernel/core/src/gqueue/tests.rs",
        "kernel/src/bin/testkernel/lab3.rs",
        "kernel/src/bin/testkernel/latch.rs",
        "boot/src/lab/spec/lab3.rs",
    ],
};
