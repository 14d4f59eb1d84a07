//! Lab 5's QEMU test (`labs/lab5/`): sysmon preempts a goroutine that loops without yielding.
//!
//! Graded by `./run-qemu.sh grade lab5`, which boots it with `gomaxprocs=1 asyncpreemptoff=1`
//! and a fresh random `seed=` (the nonce), and recomputes the expected line on the host (the
//! formulas are [`loop_value`] and [`worker_value`]; the grader has its own copy in
//! `boot/src/lab/spec/lab5.rs`, keep them equal). The grader also checks that this file is
//! unchanged.
//!
//! One P, no asynchronous preemption: the only way off the CPU for the looping goroutine is the
//! cooperative one, as in a Go program's tight loop that calls a function: sysmon's `retake`
//! sees the P on the same `schedtick` for `forcePreemptNS`, `preemptone` poisons the G's
//! `stackguard0`, the stack check in the called function ([`step`]) fails, and `newstack`'s
//! preempt branch yields (`gopreempt_m`: the G goes to the global queue). Meanwhile a worker
//! goroutine does its work in [`ROUNDS`] rounds with a `gosched` after each: it can only run
//! when the loop is preempted, and after each of its rounds the loop gets a whole time slice.
//! The loop measures its slices from the inside: a slice that ends by preemption must have
//! lasted about `forcePreemptNS` (not one sysmon tick), and the worker must finish within
//! [`DEADLINE_NS`].
use crate::latch::Latch;
use alloc::boxed::Box;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use kernel::ktest::ktest;
use kernel::println;
use kernel::runtime::preempt::{ASYNC_PREEMPTS, COOP_PREEMPTS};
use gmp_core::rand::mix64;

/// The worker's rounds (each ends with a `gosched`, giving the loop one more time slice).
pub const ROUNDS: u64 = 8;
/// The loop gives up after this long (ns): the worker should be done in about
/// `ROUNDS * forcePreemptNS`, 80 ms.
pub const DEADLINE_NS: u64 = 10_000_000_000;
/// At most this many slices are recorded (the loop allocates nothing).
const MAX_SLICES: usize = 64;

/// The loop's start value and how many steps count for the checksum (1024..=2047).
fn loop_params(seed: u64) -> (u64, u64) {
    let x = mix64(seed ^ 0x6c6f_6f70);
    (x, 1024 + (x >> 53))
}

/// The loop's value: its start value after `loop_params(seed).1` steps.
pub fn loop_value(seed: u64) -> u64 {
    let (mut x, n) = loop_params(seed);
    for _ in 0..n {
        x = mix64(x);
    }
    x
}

/// The worker's round `r`: 256..=511 steps from a value of the nonce.
fn worker_round(seed: u64, r: u64) -> u64 {
    let mut x = mix64(seed ^ r.wrapping_mul(0xd6e8_feb8_6659_fd93));
    for _ in 0..256 + (x & 255) {
        x = mix64(x);
    }
    x
}

/// The worker's value: the sum of its rounds.
pub fn worker_value(seed: u64) -> u64 {
    (0..ROUNDS).fold(0u64, |a, r| a.wrapping_add(worker_round(seed, r)))
}

/// One step of the loop: a function with the stack check in its prologue, as every Go
/// function has (`morestack_check!` is the check Rust functions lack).
#[inline(never)]
fn step(x: u64) -> u64 {
    kernel::morestack_check!();
    mix64(x)
}

/// What the loop saw: its value, its iterations, its preemptions, the slices it measured (ns).
struct LoopReport {
    value: u64,
    iterations: u64,
    preempted: u64,
    slices: [u64; MAX_SLICES],
    nslices: usize,
    gave_up: bool,
}

#[ktest(
    smp = [1, 2, 4],
    timeout = 300,
    params = "gomaxprocs=1 asyncpreemptoff=1",
    output = ["/^lab5: loop [0-9a-f]{16} worker [0-9a-f]{16} nonce [0-9]+ rounds 8 preempted ok$/"]
)]
fn tight_loop_preempted() {
    let params = kernel::boot::params();
    assert!(
        params.asyncpreemptoff && kernel::current_gomaxprocs() == 1,
        "lab5: boot with gomaxprocs=1 asyncpreemptoff=1 (the grader does)"
    );
    let seed = params.seed.unwrap_or(1);
    let force = params.forcepreemptns;
    let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    let started: &'static Latch = Box::leak(Box::new(Latch::new(1)));
    let finished: &'static Latch = Box::leak(Box::new(Latch::new(2)));
    let report: &'static spin::Mutex<Option<LoopReport>> = Box::leak(Box::new(spin::Mutex::new(None)));
    let worker_sum: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
    let worker_rounds: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
    let async0 = ASYNC_PREEMPTS.load(Ordering::Relaxed);
    let t0 = kernel::nanotime();

    // The loop: never parks, never yields, calls no runtime function; only `step`'s stack
    // check can take it off the CPU.
    kernel::go(move || {
        started.done();
        let (mut x, n) = loop_params(seed);
        let mut value = 0;
        let mut i = 0u64;
        let (mut slices, mut nslices) = ([0u64; MAX_SLICES], 0usize);
        let mut preempted = 0u64;
        let mut seen = COOP_PREEMPTS.load(Ordering::Relaxed);
        let start = kernel::nanotime();
        // A slice is measured from the loop's first step after a preemption to its first step
        // after the next one: that includes the worker's short turn, but also any time the host
        // stalled this core right before the preemption, which the last step before it would
        // miss. Only slices that began after a preemption count: the first one was inherited
        // from the goroutine that spawned the loop (runnext), and may be nearly used up.
        let mut slice_start: Option<u64> = None;
        let mut gave_up = false;
        while !stop.load(Ordering::Acquire) || i < n {
            x = step(x);
            i += 1;
            if i == n {
                value = x;
            }
            let now = kernel::nanotime();
            // With one P and no asynchronous preemption the counter moves only when this
            // goroutine was preempted (the others run only while it is off the CPU).
            let c = COOP_PREEMPTS.load(Ordering::Relaxed);
            if c != seen {
                seen = c;
                preempted += 1;
                if let Some(s) = slice_start {
                    if nslices < MAX_SLICES {
                        slices[nslices] = now - s;
                        nslices += 1;
                    }
                }
                slice_start = Some(now);
            }
            if now - start > DEADLINE_NS {
                gave_up = true;
                break;
            }
        }
        *report.lock() = Some(LoopReport { value, iterations: i, preempted, slices, nslices, gave_up });
        finished.done();
    });
    // Let the loop take the P: this goroutine runs again only once the loop is preempted.
    started.wait();
    kernel::go(move || {
        for r in 0..ROUNDS {
            worker_sum.fetch_add(worker_round(seed, r), Ordering::Relaxed);
            worker_rounds.fetch_add(1, Ordering::Relaxed);
            // To the global queue, behind the loop: the loop gets a whole slice.
            kernel::gosched();
        }
        stop.store(true, Ordering::Release);
        finished.done();
    });
    finished.wait();
    let elapsed = kernel::nanotime() - t0;
    let r = report.lock().take().expect("the loop's report");
    let mut s = r.slices;
    let s = &mut s[..r.nslices];
    s.sort_unstable();
    let median = if s.is_empty() { 0 } else { s[s.len() / 2] };
    println!(
        "lab5: {} ms; the loop ran {} steps, preempted {} times; slices (ms) min {} median {} max {}; \
         forcePreemptNS {} ms; async preemptions {}",
        elapsed / 1_000_000,
        r.iterations,
        r.preempted,
        s.first().map_or(0, |v| v / 1_000_000),
        median / 1_000_000,
        s.last().map_or(0, |v| v / 1_000_000),
        force / 1_000_000,
        ASYNC_PREEMPTS.load(Ordering::Relaxed) - async0,
    );
    let rounds = worker_rounds.load(Ordering::Relaxed);
    assert!(
        !r.gave_up,
        "lab5: the worker did {rounds} of {ROUNDS} rounds in {} s: the loop was never preempted \
         (retake never asked, or preemptone's request never reached the stack check)",
        DEADLINE_NS / 1_000_000_000
    );
    assert_eq!(rounds, ROUNDS);
    assert_eq!(ASYNC_PREEMPTS.load(Ordering::Relaxed), async0, "lab5: asyncpreemptoff=1, yet asynchronous preemption");
    // The loop went off the CPU after (nearly) every round of the worker.
    assert!(r.preempted >= ROUNDS - 1, "lab5: the loop was preempted only {} times for {ROUNDS} rounds", r.preempted);
    // A slice lasts forcePreemptNS (plus up to a sysmon period, plus the worker's turn).
    // Preempting at every sysmon tick gives ~1 ms slices; half of forcePreemptNS leaves room.
    assert!(
        s.len() >= 3 && median >= force / 2,
        "lab5: the loop's time slices were too short (median {median} ns of {} measured, forcePreemptNS {force} ns): \
         preempted before its slice was used up",
        s.len()
    );
    let (lv, wv) = (loop_value(seed), worker_value(seed));
    assert_eq!(r.value, lv, "lab5: wrong loop value");
    assert_eq!(worker_sum.load(Ordering::Relaxed), wv, "lab5: wrong worker value");
    println!("lab5: loop {lv:016x} worker {wv:016x} nonce {seed} rounds {ROUNDS} preempted ok");
}
