//! Host tests of `select`'s two orders (lab 6). The fairness tests are chi-square tests
//! against the uniform distribution at significance p = 0.001, with a fixed generator seed,
//! so they are deterministic: a correct shuffle passes every time, and a select that favours
//! some case (no shuffle, a rotation, an off-by-one in `randn`'s bound) fails every time.

use super::*;
use crate::rand::FastRand;

/// Chi-square critical values at p = 0.001 for 1..=23 degrees of freedom (the upper 0.1 %
/// point: a uniform sample exceeds it with probability 0.001).
const CHI2_P001: [f64; 24] = [
    0.0, 10.828, 13.816, 16.266, 18.467, 20.515, 22.458, 24.322, 26.124, 27.877, 29.588, 31.264, 32.909,
    34.528, 36.123, 37.697, 39.252, 40.790, 42.312, 43.820, 45.315, 46.797, 48.268, 49.728,
];

fn chi2(counts: &[u64]) -> f64 {
    let n: u64 = counts.iter().sum();
    let e = n as f64 / counts.len() as f64;
    counts.iter().map(|&c| (c as f64 - e) * (c as f64 - e) / e).sum()
}

fn shuffled(ncases: usize, nil: &[usize], r: &mut FastRand) -> Vec<u16> {
    let mut order = vec![0u16; ncases];
    let n = pollorder(ncases, |i| nil.contains(&i), &mut order, |k| r.cheaprandn(k));
    order.truncate(n);
    order
}

/// Every live case exactly once, no nil case, and `randn` is asked for `0..1`, `0..2`, ...
#[test]
fn pollorder_is_a_permutation_of_the_live_cases() {
    let mut r = FastRand::new(42);
    for ncases in 0..40usize {
        let nil: Vec<usize> = (0..ncases).filter(|i| i % 3 == 1).collect();
        for _ in 0..50 {
            let order = shuffled(ncases, &nil, &mut r);
            let mut sorted = order.clone();
            sorted.sort_unstable();
            let want: Vec<u16> = (0..ncases).filter(|i| !nil.contains(i)).map(|i| i as u16).collect();
            assert_eq!(sorted, want, "pollorder of {ncases} cases (nil: {nil:?}) gave {order:?}");
        }
    }
    // All nil: nothing to poll.
    let mut order = [7u16; 4];
    assert_eq!(pollorder(4, |_| true, &mut order, |_| 0), 0);
    // randn's bounds: one call per live case, with 1, 2, 3, ...
    let mut asked = Vec::new();
    let mut order = [0u16; 6];
    let n = pollorder(6, |i| i == 2, &mut order, |k| {
        asked.push(k);
        0
    });
    assert_eq!(n, 5);
    assert_eq!(asked, [1, 2, 3, 4, 5], "randn(norder + 1) for each live case, in case order");
    // randn always 0: each new case goes to the front, the old front to the end (Go's loop).
    assert_eq!(order[..5], [5, 0, 1, 3, 4]);
    // randn always its maximum: every case stays where it lands, the identity.
    let mut order = [0u16; 5];
    pollorder(5, |_| false, &mut order, |k| k - 1);
    assert_eq!(order, [0, 1, 2, 3, 4]);
}

/// Which case is polled first, over k ready cases: uniform, by a chi-square test at
/// p = 0.001 (k - 1 degrees of freedom). This is the fairness of `select` itself: pass 1
/// takes the first ready case in poll order.
#[test]
fn pollorder_first_case_is_uniform_chi_square() {
    let mut r = FastRand::new(0x5e1ec7);
    for k in 2..=16usize {
        let trials = 2000 * k as u64;
        let mut counts = vec![0u64; k];
        for _ in 0..trials {
            counts[shuffled(k, &[], &mut r)[0] as usize] += 1;
        }
        let x = chi2(&counts);
        assert!(x < CHI2_P001[k - 1], "first case over {k} ready cases: counts {counts:?}, chi2 {x:.1} >= {} (p = 0.001)", CHI2_P001[k - 1]);
    }
}

/// Every whole permutation of 3 and of 4 cases equally likely (6 and 24 outcomes, chi-square
/// at p = 0.001). Catches shuffles whose first case is uniform but whose order is not (a
/// random rotation, or `randn(norder)` instead of `randn(norder + 1)`).
#[test]
fn pollorder_permutations_are_uniform_chi_square() {
    let mut r = FastRand::new(0xfa1e);
    for k in [3usize, 4] {
        let perms: usize = (1..=k).product();
        let trials = 1000 * perms as u64;
        let mut counts = vec![0u64; perms];
        for _ in 0..trials {
            let order = shuffled(k, &[], &mut r);
            // The permutation's rank (Lehmer code).
            let mut rank = 0;
            for i in 0..k {
                let smaller = order[i + 1..].iter().filter(|&&x| x < order[i]).count();
                rank = rank * (k - i) + smaller;
            }
            counts[rank] += 1;
        }
        let x = chi2(&counts);
        assert!(counts.iter().all(|&c| c > 0), "some orders of {k} cases never happen: {counts:?}");
        assert!(x < CHI2_P001[perms - 1], "orders of {k} cases: counts {counts:?}, chi2 {x:.1} >= {} (p = 0.001)", CHI2_P001[perms - 1]);
    }
}

/// Nil cases are left out, and the live ones stay uniform around them.
#[test]
fn pollorder_skips_nil_cases_uniformly() {
    let mut r = FastRand::new(7);
    let nil = [0usize, 2, 5];
    let mut counts = [0u64; 6];
    for _ in 0..9000 {
        let order = shuffled(6, &nil, &mut r);
        assert_eq!(order.len(), 3);
        counts[order[0] as usize] += 1;
    }
    assert_eq!((counts[0], counts[2], counts[5]), (0, 0, 0), "a nil case was polled: {counts:?}");
    let live = [counts[1], counts[3], counts[4]];
    let x = chi2(&live);
    assert!(x < CHI2_P001[2], "first live case: {live:?}, chi2 {x:.1}");
}

/// The lock order: the poll order's cases sorted by channel address, cases on one channel
/// next to each other, every case once.
#[test]
fn lockorder_sorts_by_channel_address() {
    let mut r = FastRand::new(99);
    for ncases in 1..30usize {
        // Case i's channel: a few shared addresses, not in case order.
        let addr = |i: u16| 0x1000 + ((i as usize * 7) % 5) * 0x40;
        let poll = shuffled(ncases, &[], &mut r);
        let mut lock = vec![0u16; poll.len()];
        lockorder(&poll, &mut lock, addr);
        let mut a = lock.clone();
        a.sort_unstable();
        let mut b = poll.clone();
        b.sort_unstable();
        assert_eq!(a, b, "lock order {lock:?} is not a permutation of poll order {poll:?}");
        assert!(lock.windows(2).all(|w| addr(w[0]) <= addr(w[1])), "lock order {lock:?} is not sorted by address");
    }
    // The poll order is left alone.
    let poll = [2u16, 0, 1];
    let mut lock = [0u16; 3];
    lockorder(&poll, &mut lock, |i| 100 - i as usize);
    assert_eq!((poll, lock), ([2, 0, 1], [2, 1, 0]));
}
