//! Lab 4: spinning Ms and wakep without lost wake-ups (`labs/lab4/`).
use super::{Kind, Lab, Test};
use gmp_core::rand::mix64;

/// The QEMU test's expected line: the same formulas as `rounds` and `work` in
/// `kernel/src/bin/testkernel/lab4.rs` (kept equal by hand; the grader is the reference).
fn lab4_expect(seed: u64) -> String {
    fn work(seed: u64, r: u64, b: u64) -> u64 {
        let mut x = mix64(seed ^ r.wrapping_mul(0xd6e8_feb8_6659_fd93) ^ b.wrapping_mul(0x9e37_79b9));
        for _ in 0..1 + (x & 15) {
            x = mix64(x);
        }
        x
    }
    const RACE_BATCHES: u64 = 6;
    let rounds = 12 + mix64(seed) % 8;
    let mut sum = 0u64;
    for r in 0..rounds {
        for b in 0..=RACE_BATCHES {
            sum = sum.wrapping_add(work(seed, r, b));
        }
    }
    format!("lab4: nonce {seed} rounds {rounds} checksum {sum:016x} ok")
}

const LAB4_TESTS: &[Test] = &[
    Test { title: "wakep claims the one spinner slot only when none spins", kind: Kind::Host("spinning::tests::wakep_claims_only_when_none_spins"), points: 5 },
    Test { title: "the last spinner decrements, then re-checks", kind: Kind::Host("spinning::tests::drop_spinning_decrements_then_rechecks"), points: 5 },
    Test { title: "notesleep announces the halt before checking the key", kind: Kind::Host("spinning::tests::note_sleep_check_announces_the_halt"), points: 5 },
    Test { title: "notewakeup: key first, IPI only to a halted core", kind: Kind::Host("spinning::tests::notewakeup_sends_the_ipi_only_to_a_halted_core"), points: 5 },
    Test { title: "loom: last spinner's re-check vs a submitter", kind: Kind::Loom("spinning::loom_tests::loom_last_spinner_vs_submitter"), points: 20 },
    Test { title: "loom: notewakeup always ends the halt", kind: Kind::Loom("spinning::loom_tests::loom_note_wakeup_ends_the_halt"), points: 15 },
    Test { title: "loom: spinner parks, submitter wakes it", kind: Kind::Loom("spinning::loom_tests::loom_spinner_parks_submitter_wakes"), points: 15 },
    Test { title: "qemu: halted cores woken, idle cores halt", kind: Kind::Qemu { test: "lab4::wake_idle_cores", smp: 2, expect: lab4_expect }, points: 5 },
    Test { title: "qemu: halted cores woken, idle cores halt", kind: Kind::Qemu { test: "lab4::wake_idle_cores", smp: 4, expect: lab4_expect }, points: 5 },
];

pub const LAB: Lab = Lab {
    number: 4,
    title: "Spinning Ms and wakep without lost wake-ups",
    tests: LAB4_TESTS,
    qemu_runs: 3,
    uses: &[],
    protected: &[
        "kernel/core/src/spinning/tests.rs",
        "kernel/core/src/spinning/loom_tests.rs",
        "kernel/src/bin/testkernel/lab4.rs",
        "kernel/src/bin/testkernel/latch.rs",
        "boot/src/lab/spec/lab4.rs",
    ],
};

#[cfg(test)]
mod tests {
    #[test]
    fn lab4_expect_matches_a_boot() {
        // From a boot of the full tree: `--smp 4 test=lab4::wake_idle_cores seed=12345`.
        assert_eq!(super::lab4_expect(12345), "lab4: nonce 12345 rounds 12 checksum e20564f84932b2fe ok");
    }
}
