//! Lab 4's QEMU test (`labs/lab4/`): wake-ups of halted cores are never lost, and idle cores
//! really halt.
//!
//! Graded by `./run-qemu.sh grade lab4`, which boots it with a fresh random `seed=` (the nonce)
//! and recomputes the expected line on the host (`boot/src/lab/spec/lab4.rs` has its copy of
//! [`work`] and [`rounds`]; keep them equal). The grader also checks that this file is unchanged.
//!
//! Each round:
//! 1. **Idle.** The test goroutine sleeps, so every core has nothing to do. Then, within a
//!    bound, every other M must be parked on `midle` with its note announcing a halt
//!    (`halted`), and no M may still spin: idle cores halt, they do not spin for ever.
//! 2. **Wake from halt.** The test goroutine becomes non-preemptible (so sysmon's preemption
//!    cannot run the new goroutines on this core: there is no backstop) and starts one worker
//!    per other core; the workers wait for each other, so all of them must run at once, on
//!    cores woken by `wakep`'s IPIs. A lost wake-up leaves a worker queued for ever: the test
//!    fails after [`WAKE_BOUND_NS`] instead. The worst wake latency is printed.
//! 3. **Race the parking.** A few more batches, each started a nonce-derived few microseconds
//!    after the previous one ended, while the cores that ran it are dropping `nmspinning`
//!    and re-checking the queues on their way to park (the window of the last spinner's
//!    re-check).
//!
//! Worker 0 of each batch adds [`work`] of its round and batch to a checksum, so only a run
//! that really ran every batch prints the right line; the line does not depend on the core count.
use crate::latch::Latch;
use alloc::boxed::Box;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use kernel::ktest::ktest;
use kernel::println;
use kernel::runtime::lock::PreemptGuard;
use kernel::runtime::proc::{ALLM, SCHED};
use gmp_core::rand::mix64;

/// A worker batch not all running by then is a lost wake-up (no backstop can run it: see above).
const WAKE_BOUND_NS: u64 = 3_000_000_000;
/// Idle cores must be parked and halted by then.
const IDLE_BOUND_NS: u64 = 3_000_000_000;
/// Batches per round after the first (phase 3).
const RACE_BATCHES: u64 = 6;

/// Rounds for nonce `seed`: 12 to 19.
fn rounds(seed: u64) -> u64 {
    12 + mix64(seed) % 8
}

/// Batch `b` of round `r`'s contribution to the checksum.
fn work(seed: u64, r: u64, b: u64) -> u64 {
    let mut x = mix64(seed ^ r.wrapping_mul(0xd6e8_feb8_6659_fd93) ^ b.wrapping_mul(0x9e37_79b9));
    for _ in 0..1 + (x & 15) {
        x = mix64(x);
    }
    x
}

/// Start one worker per other core and wait, non-preemptible, until all of them run at once.
/// Returns the worst time from the start of the batch to a worker's start (ns).
fn batch(seed: u64, r: u64, b: u64, others: u64, sum: &'static AtomicU64) -> u64 {
    if others == 0 {
        sum.fetch_add(work(seed, r, b), Ordering::Relaxed);
        return 0;
    }
    let arrived: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
    let latest: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
    let done: &'static Latch = Box::leak(Box::new(Latch::new(others)));
    let t0 = kernel::nanotime();
    {
        let _np = PreemptGuard::new();
        for i in 0..others {
            kernel::go(move || {
                latest.fetch_max(kernel::nanotime(), Ordering::Relaxed);
                arrived.fetch_add(1, Ordering::AcqRel);
                // All of them at once: each on its own core.
                let t = kernel::nanotime();
                while arrived.load(Ordering::Acquire) < others {
                    assert!(kernel::nanotime() - t < WAKE_BOUND_NS, "lab4: a batch never ran all at once");
                    core::hint::spin_loop();
                }
                if i == 0 {
                    sum.fetch_add(work(seed, r, b), Ordering::Relaxed);
                }
                done.done();
            });
        }
        // Non-preemptible: only cores woken by wakep can run the workers.
        while arrived.load(Ordering::Acquire) < others {
            let waited = kernel::nanotime() - t0;
            assert!(
                waited < WAKE_BOUND_NS,
                "lab4: lost wake-up: round {r} batch {b}: {} of {others} workers ran after {} ms (nmspinning {}, idle Ms {})",
                arrived.load(Ordering::Relaxed),
                waited / 1_000_000,
                SCHED.nmspinning.load(Ordering::Relaxed),
                kernel::runtime::proc::midle_count()
            );
            core::hint::spin_loop();
        }
    }
    done.wait();
    latest.load(Ordering::Relaxed).saturating_sub(t0)
}

/// Every M but ours is parked and halted, and none spins.
fn all_others_halted(others: u64) -> bool {
    if SCHED.nmspinning.load(Ordering::SeqCst) != 0 || kernel::runtime::proc::midle_count() as u64 != others {
        return false;
    }
    let me = kernel::cpu_id();
    let n = kernel::num_cpu() as usize;
    (0..n).filter(|&i| i != me).all(|i| {
        let m = ALLM[i].load(Ordering::Acquire);
        // SAFETY: Ms are never freed; a null entry is a core not started.
        !m.is_null() && unsafe { &*m }.park.halted.load(Ordering::SeqCst) != 0
    })
}

#[ktest(smp = [1, 2, 4], also = [(3, "schedrandom=1")], timeout = 120,
        output = ["/^lab4: nonce [0-9]+ rounds [0-9]+ checksum [0-9a-f]{16} ok$/"])]
fn wake_idle_cores() {
    let seed = kernel::boot::params().seed.unwrap_or(1);
    let procs = kernel::current_gomaxprocs() as u64;
    assert_eq!(procs, kernel::num_cpu() as u64, "lab4: one P per core");
    let others = procs - 1;
    let sum: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
    let rounds = rounds(seed);
    let parks0 = kernel::runtime::trace::stats().parks;
    let (mut worst_wake, mut worst_idle) = (0u64, 0u64);
    let idle_checks = AtomicU32::new(0);
    for r in 0..rounds {
        let x = mix64(seed ^ r);
        // 1. Idle: everything parks and halts.
        kernel::sleep(1_000_000 + x % 3_000_000);
        let t = kernel::nanotime();
        // Non-preemptible, and no gosched (it calls wakep): nothing here wakes a core.
        let np = PreemptGuard::new();
        while !all_others_halted(others) {
            let waited = kernel::nanotime() - t;
            assert!(
                waited < IDLE_BOUND_NS,
                "lab4: idle cores did not halt within {} ms: nmspinning {}, idle Ms {} of {others}",
                waited / 1_000_000,
                SCHED.nmspinning.load(Ordering::Relaxed),
                kernel::runtime::proc::midle_count()
            );
            core::hint::spin_loop();
        }
        drop(np);
        worst_idle = worst_idle.max(kernel::nanotime() - t);
        idle_checks.fetch_add(1, Ordering::Relaxed);
        // 2. Wake the halted cores.
        worst_wake = worst_wake.max(batch(seed, r, 0, others, sum));
        // 3. Race their parking.
        for b in 1..=RACE_BATCHES {
            kernel::arch::x86_64::time::udelay(mix64(x ^ b) % 64);
            worst_wake = worst_wake.max(batch(seed, r, b, others, sum));
        }
    }
    let parks = kernel::runtime::trace::stats().parks - parks0;
    // Every other core was woken in every round (its worker ran) and halted again after.
    assert!(parks >= rounds * others, "lab4: {parks} parks in {rounds} rounds with {others} other cores");
    println!(
        "lab4: {} idle checks, {parks} parks, worst wake {} us, worst time to halt {} us",
        idle_checks.load(Ordering::Relaxed),
        worst_wake / 1000,
        worst_idle / 1000
    );
    let want = (0..rounds).flat_map(|r| (0..=RACE_BATCHES).map(move |b| (r, b))).fold(0u64, |a, (r, b)| a.wrapping_add(work(seed, r, b)));
    let got = sum.load(Ordering::Relaxed);
    assert_eq!(got, want, "lab4: wrong checksum");
    println!("lab4: nonce {seed} rounds {rounds} checksum {got:016x} ok");
}
