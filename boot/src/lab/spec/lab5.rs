//! Lab 5: sysmon preemption (`labs/lab5/`).
use super::{Kind, Lab, Test};
use gmp_core::rand::mix64;

/// The QEMU test's expected line: the same formulas as `loop_value` and `worker_value` in
/// `kernel/src/bin/testkernel/lab5.rs` (kept equal by hand; the grader is the reference).
fn lab5_expect(seed: u64) -> String {
    let mut lv = mix64(seed ^ 0x6c6f_6f70);
    for _ in 0..1024 + (lv >> 53) {
        lv = mix64(lv);
    }
    let mut wv = 0u64;
    for r in 0..8u64 {
        let mut x = mix64(seed ^ r.wrapping_mul(0xd6e8_feb8_6659_fd93));
        for _ in 0..256 + (x & 255) {
            x = mix64(x);
        }
        wv = wv.wrapping_add(x);
    }
    format!("lab5: loop {lv:016x} worker {wv:016x} nonce {seed} rounds 8 preempted ok")
}

/// The QEMU test's boot parameters: one P, and only the cooperative path (the stack check).
const PARAMS: &str = "gomaxprocs=1 asyncpreemptoff=1";

const LAB5_TESTS: &[Test] = &[
    Test { title: "retake: a new schedtick is remembered, not preempted", kind: Kind::Host("retake::tests::new_schedtick_is_remembered_not_preempted"), points: 4 },
    Test { title: "retake: the same schedtick for forcePreemptNS is preempted", kind: Kind::Host("retake::tests::same_schedtick_for_force_preempt_ns_is_preempted"), points: 6 },
    Test { title: "retake: a schedtick that moves at every visit is never preempted", kind: Kind::Host("retake::tests::changing_schedtick_is_never_preempted"), points: 4 },
    Test { title: "retake: schedtick wraps around u32::MAX", kind: Kind::Host("retake::tests::schedtick_wraps"), points: 2 },
    Test { title: "retake: forcePreemptNS is the caller's", kind: Kind::Host("retake::tests::force_preempt_ns_is_a_parameter"), points: 4 },
    Test { title: "retake: idle, stopped and dead Ps are left alone", kind: Kind::Host("retake::tests::idle_and_stopped_ps_are_left_alone"), points: 2 },
    Test { title: "retake: a new syscalltick is remembered, a second sight hands off", kind: Kind::Host("retake::tests::syscall_new_syscalltick_is_remembered"), points: 4 },
    Test { title: "retake: a cheap syscall keeps its P for 10 ms", kind: Kind::Host("retake::tests::syscall_kept_while_cheap"), points: 4 },
    Test { title: "retake: work waiting or nobody spinning/idle: hand off", kind: Kind::Host("retake::tests::syscall_handed_off_when_work_waits_or_nobody_else"), points: 4 },
    Test { title: "retake: slice and syscall memories are separate", kind: Kind::Host("retake::tests::running_and_syscall_memories_are_separate"), points: 2 },
    Test { title: "proptest: preempt iff one slice lasted forcePreemptNS", kind: Kind::Host("retake::tests::preempts_iff_one_slice_lasted_force_preempt_ns"), points: 4 },
    Test { title: "qemu: a tight loop at gomaxprocs=1 is preempted", kind: Kind::QemuParams { test: "lab5::tight_loop_preempted", smp: 2, params: PARAMS, expect: lab5_expect }, points: 10 },
    Test { title: "qemu: a tight loop at gomaxprocs=1 is preempted", kind: Kind::QemuParams { test: "lab5::tight_loop_preempted", smp: 4, params: PARAMS, expect: lab5_expect }, points: 10 },
];

pub const LAB: Lab = Lab {
    number: 5,
    title: "sysmon preemption: retake, preemptone and the stackguard0 path",
    tests: LAB5_TESTS,
    qemu_runs: 3,
    uses: &[],
    protected: &[
        "kernel/core/src/retake/tests.rs",
        "kernel/src/bin/testkernel/lab5.rs",
        "kernel/src/bin/testkernel/latch.rs",
        "boot/src/lab/spec/lab5.rs",
    ],
};

#[cfg(test)]
mod tests {
    #[test]
    fn expect_matches_the_kernels_line() {
        // seed=123, as printed by the testkernel (tight_loop_preempted).
        assert_eq!(
            super::lab5_expect(123),
            "lab5: loop 0f021233d4fd5fb9 worker ef9ef7711de487f9 nonce 123 rounds 8 preempted ok"
        );
    }
}
