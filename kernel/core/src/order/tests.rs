//! Host tests of the steal order: ports of Go's TestStealOrder (every walk
//! visits every P exactly once; the start arguments give distinct walks), the
//! coprimes, and the walk after GOMAXPROCS changes.

use super::*;
use crate::rand::FastRand;

/// Port of Go's TestStealOrder, first half: for every P count and every
/// walk, each position is visited exactly once and the walk then ends.
#[test]
fn steal_order_visits_every_p_once() {
    let mut ord = RandomOrder::new();
    let mut rng = FastRand::new(99);
    for procs in 1..=MAX_PROCS {
        ord.reset(procs);
        if procs >= 3 {
            assert!(ord.coprimes().len() >= 2, "too few coprimes for {procs}");
        }
        // Every stride (argument c*procs + start selects stride c), each
        // with a pseudo-random start ...
        let ncop = ord.coprimes().len() as u32;
        let strides = (0..ncop).map(|c| c * procs + (c * 7919 + 13) % procs);
        // ... plus a hundred random arguments as stealWork would pass.
        let randoms = (0..100).map(|_| rng.next_u32());
        for arg in strides.chain(randoms) {
            let mut e = ord.start(arg);
            let mut seen = [false; MAX_PROCS as usize];
            for _ in 0..procs {
                assert!(!e.done(), "procs={procs} arg={arg}: done too early");
                let x = e.position() as usize;
                assert!(x < procs as usize);
                assert!(!seen[x], "procs={procs} inc={}: {x} visited twice", e.stride());
                seen[x] = true;
                e.next();
            }
            assert!(e.done(), "procs={procs} arg={arg}: not done");
        }
    }
}

/// Port of Go's TestStealOrder, second half: the arguments
/// `0..count*len(coprimes)` give pairwise different (start, stride).
#[test]
fn steal_order_start_args_give_distinct_walks() {
    let mut ord = RandomOrder::new();
    for procs in 2..=MAX_PROCS {
        ord.reset(procs);
        let mut seen = vec![false; (procs * (procs + 1)) as usize];
        for arg in 0..procs * ord.coprimes().len() as u32 {
            let e = ord.start(arg);
            let key = (e.position() * (procs + 1) + e.stride()) as usize;
            assert!(!seen[key], "procs={procs}: pos {} inc {} twice", e.position(), e.stride());
            seen[key] = true;
        }
    }
}

#[test]
fn coprimes_are_right() {
    let mut ord = RandomOrder::new();
    ord.reset(1);
    assert_eq!(ord.coprimes(), &[1]);
    ord.reset(8);
    assert_eq!(ord.coprimes(), &[1, 3, 5, 7]);
    ord.reset(12);
    assert_eq!(ord.coprimes(), &[1, 5, 7, 11]);
    ord.reset(256);
    assert_eq!(ord.coprimes().len(), 128);
    ord.reset(MAX_PROCS);
    assert_eq!(ord.coprimes().len(), MAX_PROCS as usize / 2, "MAX_PROCS is a power of two");
    ord.reset(251); // prime
    assert_eq!(ord.coprimes().len(), 250);
}

#[test]
fn iterator_matches_manual_walk() {
    let mut ord = RandomOrder::new();
    ord.reset(10);
    let e = ord.start(1234);
    let mut manual = e.clone();
    let from_iter: Vec<u32> = e.positions().collect();
    assert_eq!(from_iter.len(), 10);
    for x in from_iter {
        assert_eq!(x, manual.position());
        manual.next();
    }
    assert!(manual.done());
}

#[test]
#[should_panic(expected = "count must be 1..=")]
fn reset_rejects_zero() {
    RandomOrder::new().reset(0);
}

#[test]
#[should_panic(expected = "count must be 1..=")]
fn reset_rejects_too_many() {
    RandomOrder::new().reset(MAX_PROCS + 1);
}

/// GOMAXPROCS also shrinks (`procresize` calls `reset` with a smaller count):
/// from [`MAX_PROCS`] down to 1, the strides are exactly the numbers coprime
/// with the count (checked here without `gcd`, by the count's prime factors), in
/// increasing order, and every walk still visits every P exactly once.
#[test]
fn order_visits_every_p_as_gomaxprocs_shrinks() {
    fn prime_factors(mut n: u32) -> Vec<u32> {
        let mut f = vec![];
        let mut d = 2;
        while n > 1 {
            if n % d == 0 {
                f.push(d);
                while n % d == 0 {
                    n /= d;
                }
            }
            d += 1;
        }
        f
    }
    let mut ord = RandomOrder::new();
    let mut rng = FastRand::new(2);
    for procs in (1..=MAX_PROCS).rev() {
        ord.reset(procs);
        assert_eq!(ord.count(), procs);
        let factors = prime_factors(procs);
        let want: Vec<u16> = (1..=procs).filter(|i| factors.iter().all(|f| i % f != 0)).map(|i| i as u16).collect();
        assert_eq!(ord.coprimes(), &want[..], "coprimes of {procs}");
        for _ in 0..8 {
            let arg = rng.next_u32();
            let e = ord.start(arg);
            assert!(ord.coprimes().contains(&(e.stride() as u16)), "procs={procs}: stride {} is not coprime", e.stride());
            let mut seen = vec![false; procs as usize];
            let mut n = 0;
            for x in e.positions() {
                assert!(x < procs && !seen[x as usize], "procs={procs} arg={arg}: {x} visited twice or out of range");
                seen[x as usize] = true;
                n += 1;
            }
            assert_eq!(n, procs, "procs={procs} arg={arg}: walk of {n} steps");
        }
    }
}
