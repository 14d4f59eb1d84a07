//! Lab 2's QEMU test (`labs/lab2/`): every goroutine is spawned on P0, and stealing half
//! (`runqgrab`, in the coprime order of `stealWork`) still gives every P its share.
//!
//! Graded by `./run-qemu.sh grade lab2`, which boots it with a fresh random `seed=` (the nonce)
//! and recomputes the expected checksum on the host: the workers' inputs come from the nonce,
//! so only a kernel that really ran every worker exactly once prints the right number. The
//! grader also checks that this file is unchanged. The formula is [`work`]; the grader has its
//! own copy (`boot/src/lab/spec/lab2.rs`), keep the two equal.
//!
//! How the work lands on P0 alone: the test first sets GOMAXPROCS to 1, so P0 is the only P,
//! spawns all [`N`] workers there (they fit in P0's ring and `runnext`, so none overflows to
//! the global queue), and sets GOMAXPROCS back. The other Ps come back empty, and the only way
//! for them to get work is to steal it, half of a ring at a time, from P0 or from each other.
//! Each worker computes for a few milliseconds, long enough that an idle P spinning in
//! `stealWork` finds work to take, and records the P it ran on. Every P must have done at
//! least a tenth of the work (a quarter is a fair share at `-smp 4`: the margin is for TCG on a
//! loaded host, where a vCPU thread may wait for a host core).
use crate::latch::Latch;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use kernel::ktest::ktest;
use kernel::println;
use gmp_core::rand::mix64;

/// Waves, and workers per wave: fewer than a ring (256 slots) plus `runnext`, so P0 holds all
/// the workers of a wave.
const WAVES: u64 = 8;
const PER_WAVE: u64 = 200;
/// Workers in all.
const N: u64 = WAVES * PER_WAVE;
/// Rounds of splitmix each worker burns: the fixed part (about 2 ms under TCG, well below
/// sysmon's 10 ms time slice, so that a worker is seldom preempted: a preempted G goes to the
/// global queue, and this test is about stealing) ...
const ROUNDS: u64 = 200_000;
/// ... and a part from the worker's result, `0..ROUNDS_SPREAD`.
const ROUNDS_SPREAD: u64 = 1 << 14;

/// Worker `i`'s result for nonce `seed` (what the checksum adds up): 1..=64 rounds of
/// splitmix, the count from the nonce (lab 1's formula).
fn work(seed: u64, i: u64) -> u64 {
    let mut x = mix64(seed ^ i.wrapping_mul(0xd6e8_feb8_6659_fd93));
    for _ in 0..1 + (x & 63) {
        x = mix64(x);
    }
    x
}

/// The worker's computing time: `ROUNDS` and then some more rounds of splitmix, whose result
/// only `black_box` sees (the host does not redo them to check the checksum).
fn burn(x: u64) {
    let mut y = x;
    for _ in 0..ROUNDS + (x & (ROUNDS_SPREAD - 1)) {
        y = mix64(core::hint::black_box(y));
    }
    core::hint::black_box(y);
}

#[ktest(smp = [1, 2, 4], also = [(3, "schedrandom=1")], timeout = 120, output = ["/^lab2: checksum [0-9a-f]{16} nonce [0-9]+ goroutines 1600 ok$/"])]
fn steal_half_from_p0() {
    let seed = kernel::boot::params().seed.unwrap_or(1);
    let procs = kernel::current_gomaxprocs();
    let ran: &'static [AtomicU8] = Box::leak((0..N).map(|_| AtomicU8::new(0)).collect::<Vec<_>>().into_boxed_slice());
    let per_p: &'static [AtomicU64] = Box::leak((0..procs).map(|_| AtomicU64::new(0)).collect::<Vec<_>>().into_boxed_slice());
    let sum: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
    let steals0 = kernel::runtime::trace::stats().steals;

    let t0 = kernel::nanotime();
    for wave in 0..WAVES {
        let done: &'static Latch = Box::leak(Box::new(Latch::new(PER_WAVE)));
        // P0 is the only P while we spawn.
        kernel::gomaxprocs(1).expect("GOMAXPROCS(1)");
        {
            // No preemption while spawning: the workers wait in P0's queue until we are done.
            let _pg = kernel::PreemptGuard::new();
            assert_eq!(kernel::runtime::proc::current_p_id(), 0, "lab2: GOMAXPROCS=1 but not on P0");
            for i in wave * PER_WAVE..(wave + 1) * PER_WAVE {
                kernel::go(move || {
                    let x = work(seed, i);
                    burn(x);
                    let _pg = kernel::PreemptGuard::new();
                    let p = kernel::runtime::proc::current_p_id() as usize;
                    per_p[p].fetch_add(1, Ordering::Relaxed);
                    ran[i as usize].fetch_add(1, Ordering::Relaxed);
                    sum.fetch_add(x, Ordering::Relaxed);
                    drop(_pg);
                    done.done();
                });
            }
            assert_eq!(kernel::runtime::proc::current_p_id(), 0, "lab2: the spawner left P0");
        }
        // The other Ps come back with empty queues: they can only steal.
        kernel::gomaxprocs(procs).expect("GOMAXPROCS back");
        done.wait();
    }
    let ms = (kernel::nanotime() - t0) / 1_000_000;
    let steals = kernel::runtime::trace::stats().steals - steals0;

    let (mut never, mut twice) = (0, 0);
    for r in ran {
        match r.load(Ordering::Relaxed) {
            0 => never += 1,
            1 => {}
            _ => twice += 1,
        }
    }
    assert!(never == 0 && twice == 0, "lab2: {never} goroutines never ran, {twice} ran twice");
    let shares: Vec<u64> = per_p.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    println!("lab2: {N} workers spawned on P0 in {WAVES} waves, done per P {shares:?}, {steals} steals, {ms} ms");
    for (p, &c) in shares.iter().enumerate() {
        assert!(c * 10 >= N, "lab2: P{p} did {c} of {N} workers, less than 10% (per P: {shares:?})");
    }
    if procs > 1 {
        assert!(steals > 0, "lab2: work reached the other Ps without a steal");
    }
    // The grader recomputes the checksum from the nonce (not done here: it costs as much as
    // the whole test on one core).
    let got = sum.load(Ordering::Relaxed);
    println!("lab2: checksum {got:016x} nonce {seed} goroutines {N} ok");
}
