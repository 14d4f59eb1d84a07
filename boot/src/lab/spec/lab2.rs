//! Lab 2: stealing half, `runqgrab`, and the coprime visiting order (`labs/lab2/`).
use super::{Kind, Lab, Test};
use gmp_core::rand::mix64;

/// The QEMU test's expected line: the same formula as `work` in
/// `kernel/src/bin/testkernel/lab2.rs` (kept equal by hand; the grader is the reference). The
/// kernel's `burn`, which only takes time, is not part of it.
fn lab2_expect(seed: u64) -> String {
    const N: u64 = 8 * 200;
    let mut sum = 0u64;
    for i in 0..N {
        let mut x = mix64(seed ^ i.wrapping_mul(0xd6e8_feb8_6659_fd93));
        for _ in 0..1 + (x & 63) {
            x = mix64(x);
        }
        sum = sum.wrapping_add(x);
    }
    format!("lab2: checksum {sum:016x} nonce {seed} goroutines {N} ok")
}

const LAB2_TESTS: &[Test] = &[
    Test { title: "a steal takes half, nothing lost (Go's TestSchedLocalQueueSteal)", kind: Kind::Host("runq::tests::sched_local_queue_steal"), points: 10 },
    Test { title: "the thief takes ceil(n/2) in order, every n, across the u32 wrap", kind: Kind::Host("runq::tests::steal_takes_half_in_order"), points: 10 },
    Test { title: "the ring is stolen before runnext", kind: Kind::Host("runq::tests::steal_prefers_the_ring"), points: 5 },
    Test { title: "runnext is stolen only when asked, after the wait", kind: Kind::Host("runq::tests::steal_runnext_only_when_asked"), points: 5 },
    Test { title: "two threads: owner put/get vs a thief", kind: Kind::Host("runq::tests::owner_and_thief_stress"), points: 5 },
    Test { title: "order: every walk visits every P once, 1..=1024 Ps (Go's TestStealOrder)", kind: Kind::Host("order::tests::steal_order_visits_every_p_once"), points: 10 },
    Test { title: "order: the start arguments give distinct walks", kind: Kind::Host("order::tests::steal_order_start_args_give_distinct_walks"), points: 5 },
    Test { title: "order: exact coprimes, every P visited, as GOMAXPROCS shrinks", kind: Kind::Host("order::tests::order_visits_every_p_as_gomaxprocs_shrinks"), points: 5 },
    Test { title: "loom: owner vs a thief stealing half", kind: Kind::Loom("runq::loom_tests::loom_owner_vs_steal_half"), points: 5 },
    Test { title: "loom: put/get vs steal", kind: Kind::Loom("runq::loom_tests::loom_put_get_vs_steal"), points: 5 },
    Test { title: "loom: two thieves and the owner", kind: Kind::Loom("runq::loom_tests::loom_two_thieves"), points: 5 },
    Test { title: "qemu: spawned on P0, every P does 10%", kind: Kind::Qemu { test: "lab2::steal_half_from_p0", smp: 2, expect: lab2_expect }, points: 5 },
    Test { title: "qemu: spawned on P0, every P does 10%", kind: Kind::Qemu { test: "lab2::steal_half_from_p0", smp: 4, expect: lab2_expect }, points: 5 },
];

pub const LAB: Lab = Lab {
    number: 2,
    title: "Stealing half: runqgrab and the coprime visiting order",
    tests: LAB2_TESTS,
    qemu_runs: 3,
    // Its tests put and get (lab 1) and put into runnext (lab 3) before they steal.
    uses: &[1, 3],
    protected: &[
        "kernel/core/src/runq/tests.rs",
        "kernel/core/src/runq/loom_tests.rs",
        "kernel/core/src/order/tests.rs",
        "kernel/src/bin/testkernel/lab2.rs",
        "kernel/src/bin/testkernel/latch.rs",
        "boot/src/lab/spec/lab2.rs",
    ],
};

#[cfg(test)]
mod tests {
    /// The grader's formula against a value the kernel printed (`seed=123`, `-smp 2`).
    #[test]
    fn lab2_expect_matches_the_kernel() {
        assert_eq!(super::lab2_expect(123), "lab2: checksum 70640eaaa3890c49 nonce 123 goroutines 1600 ok");
    }
}
