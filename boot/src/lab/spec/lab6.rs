//! Lab 6: channels and `select` (`labs/lab6/`).
use super::{Kind, Lab, Test};
use gmp_core::rand::mix64;

// The QEMU tests' expected lines: the same formulas as `kernel/src/bin/testkernel/lab6.rs`
// (kept equal by hand; the grader is the reference).

/// `semantics_table`: the buffered capacity (1..=8), the receivers close wakes (2..=6), and the
/// sum of the 6 + 2 cap values the rows send and receive.
fn table_expect(seed: u64) -> String {
    let cap = 1 + mix64(seed) % 8;
    let nrecv = 2 + mix64(seed ^ 1) % 5;
    let sum = (0..6 + 2 * cap).fold(0u64, |s, k| s.wrapping_add(mix64(seed ^ k.wrapping_mul(0xa076_1d64_78bd_642f))));
    format!("lab6: semantics table 12 rows, cap {cap}, {nrecv} receivers woken by close, checksum {sum:016x} nonce {seed} ok")
}

/// `select_fairness`: k channels (3..=8) of n = 1000 k values each, the chi-square critical
/// value at p = 1e-6 for k - 1 degrees of freedom, the sum of every value.
fn fairness_expect(seed: u64) -> String {
    const CHI2_P1E6: [f64; 8] = [0.0, 23.928, 27.631, 30.665, 33.377, 35.888, 38.258, 40.522];
    let k = 3 + mix64(seed ^ 2) % 6;
    let n = 1000 * k;
    let mut sum = 0u64;
    for i in 0..k {
        for j in 0..n {
            sum = sum.wrapping_add(mix64(seed ^ (i << 40) ^ j));
        }
    }
    let crit = CHI2_P1E6[k as usize - 1];
    format!("lab6: select fairness over {k} channels, {n} selects, chi2 below {crit} (p = 1e-6), sum {sum:016x} nonce {seed} ok")
}

/// `prime_sieve`: the first n primes (100..=199) over channels of capacity 0..=3.
fn sieve_expect(seed: u64) -> String {
    let n = 100 + mix64(seed ^ 4) % 100;
    let cap = mix64(seed ^ 5) % 4;
    let primes: Vec<u64> = (2u64..).filter(|&k| (2..k).take_while(|d| d * d <= k).all(|d| k % d != 0)).take(n as usize).collect();
    let sum: u64 = primes.iter().sum();
    format!("lab6: sieve {n} primes over channels of capacity {cap}, last {}, sum {sum} nonce {seed} ok", primes[n as usize - 1])
}

const TABLE: &str = "qemu: the semantics table (nil, unbuffered, buffered, closed)";
const FAIR: &str = "qemu: select fairness, chi-square at p = 1e-6";
const SIEVE: &str = "qemu: the concurrent prime sieve";

const LAB6_TESTS: &[Test] = &[
    Test { title: "poll order: a permutation of the live cases", kind: Kind::Host("selorder::tests::pollorder_is_a_permutation_of_the_live_cases"), points: 10 },
    Test { title: "poll order: first case uniform (chi-square)", kind: Kind::Host("selorder::tests::pollorder_first_case_is_uniform_chi_square"), points: 10 },
    Test { title: "poll order: all orders uniform (chi-square)", kind: Kind::Host("selorder::tests::pollorder_permutations_are_uniform_chi_square"), points: 10 },
    Test { title: "poll order: nil cases skipped, uniform", kind: Kind::Host("selorder::tests::pollorder_skips_nil_cases_uniformly"), points: 5 },
    Test { title: "lock order: sorted by channel address", kind: Kind::Host("selorder::tests::lockorder_sorts_by_channel_address"), points: 5 },
    Test { title: TABLE, kind: Kind::Qemu { test: "lab6::semantics_table", smp: 2, expect: table_expect }, points: 5 },
    Test { title: TABLE, kind: Kind::Qemu { test: "lab6::semantics_table", smp: 4, expect: table_expect }, points: 5 },
    Test { title: FAIR, kind: Kind::Qemu { test: "lab6::select_fairness", smp: 2, expect: fairness_expect }, points: 3 },
    Test { title: FAIR, kind: Kind::Qemu { test: "lab6::select_fairness", smp: 4, expect: fairness_expect }, points: 3 },
    Test { title: SIEVE, kind: Kind::Qemu { test: "lab6::prime_sieve", smp: 2, expect: sieve_expect }, points: 2 },
    Test { title: SIEVE, kind: Kind::Qemu { test: "lab6::prime_sieve", smp: 4, expect: sieve_expect }, points: 2 },
];

pub const LAB: Lab = Lab {
    number: 6,
    title: "Channels and select: chansend, chanrecv, closechan, the poll and lock orders",
    tests: LAB6_TESTS,
    qemu_runs: 3,
    uses: &[],
    protected: &[
        "kernel/core/src/selorder/tests.rs",
        "kernel/src/bin/testkernel/lab6.rs",
        "boot/src/lab/spec/lab6.rs",
    ],
};
