//! Lab 7's QEMU test (`labs/lab7/`): GOMAXPROCS 4 → 1 → 3 → 4 under load, a checksum, and
//! the stop-the-world latency.
//!
//! Graded by `./run-qemu.sh grade lab7`, which boots it with a fresh random `seed=` (the nonce)
//! and recomputes the expected checksum on the host (the formula is [`work`]; the grader has its
//! own copy in `boot/src/lab/spec/lab7.rs`, keep the two equal). The grader also checks that this
//! file is unchanged.
//!
//! The load, all of it started before the first resize and still there at the last one:
//! - 8 hogs: goroutines that spin without a single safe point until the resizes are over, so
//!   every P is busy and a stop-the-world must preempt them (`preemptall`);
//! - 4 sleepers: they sleep 0.5 ms in a loop, so Ps have timers (work that `procresize` must
//!   hand to an M, and that `destroy` must move);
//! - 4 spawners that start 1000 short workers (as in lab 1) at a slow pace, so run queues
//!   hold goroutines when a P is destroyed.
//!
//! Every goroutine's result goes into the checksum exactly once; a goroutine that never runs
//! (lost with a destroyed P's run queue) fails the test after a deadline, not a hang.
//!
//! The targets are clamped to the cores online: 4 → 1 → 3 → 4 is 2 → 1 → 2 → 2 at `-smp 2`,
//! and all 1 at `-smp 1` (`gomaxprocs(n)` refuses `n` above the core count).
//!
//! The stop-the-world latency. The runtime records no duration of its own (the tracer has
//! `STW_BEGIN`/`STW_END` events only when tracing), so each `gomaxprocs` call is timed with
//! `nanotime` and must stay under [`MAX_BOUND_NS`] (the runtime's own limit is a fatal error at
//! 20 s). Wall-clock time alone cannot tell a stop that preempts the running Ps from one that
//! waits for sysmon to end their 10 ms time slices: under TCG on a loaded host a vCPU that the
//! host does not run takes the preemption IPI late, and the median of a correct kernel was
//! measured between 3 and 15 ms. So the test counts in the guest's own time: the hogs count
//! their iterations from the moment the stop begins (the runtime's `gcwaiting`, set just before
//! `preemptall`) to the moment GOMAXPROCS changes (it changes only while the world is stopped).
//! Counting from the call instead also counted the caller's own delays before the stop began
//! (its vCPU not run by the host for tens of microseconds): a CI run failed on that.
//!
//! A hog that is preempted runs a handful of iterations after the IPI reaches its core (none
//! while the host does not run that core). A hog whose request was lost, because its P was
//! switching it in just then, stops when the stopper asks again 100 us later; one left to the
//! end of its time slice runs up to 10 ms. So a stop is late when a hog ran for more than
//! [`LATE_US`] of its own time: the rate is measured first, by the main goroutine running the
//! hogs' loop alone (the best of a few tries, so that a try the host interrupted does not
//! count). At most a quarter of the stops with another P running may be late.
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use kernel::ktest::ktest;
use kernel::println;
use gmp_core::rand::mix64;

/// Short workers.
const N: u64 = 1000;
const SPAWNERS: u64 = 4;
/// Goroutines that spin until the resizes are over.
const HOGS: u64 = 8;
/// Goroutines that sleep in a loop until the resizes are over.
const SLEEPERS: u64 = 4;
/// Every goroutine with a result: workers, hogs, sleepers.
const TOTAL: u64 = N + HOGS + SLEEPERS;
/// Times through 4 → 1 → 3 → 4 (three `gomaxprocs` calls each).
const CYCLES: usize = 6;
/// Every stop-the-world must be shorter than this (the runtime's own limit is 20 s).
const MAX_BOUND_NS: u64 = 5_000_000_000;
/// Hog time between the start of a stop and the world stopped, above which the stop counts as
/// late: two of the stopper's 100 us re-preemptions (a preempted hog stops within a few
/// microseconds; one left to the end of its sysmon time slice runs up to 10 ms).
const LATE_US: u64 = 200;
/// Iterations of the hogs' loop timed at once to measure its rate, and how many tries.
const CALIBRATE_ITERS: u64 = 20_000;
const CALIBRATE_TRIES: usize = 5;
/// How long the goroutines may take to finish after the resizes.
const DEADLINE_NS: u64 = 60_000_000_000;

/// Goroutine `i`'s result for nonce `seed`: 1..=64 rounds of splitmix, the count from the nonce.
fn work(seed: u64, i: u64) -> u64 {
    let mut x = mix64(seed ^ 0x1ab7 ^ i.wrapping_mul(0xd6e8_feb8_6659_fd93));
    for _ in 0..1 + (x & 63) {
        x = mix64(x);
    }
    x
}

struct Shared {
    seed: u64,
    ran: Vec<AtomicU8>,
    sum: AtomicU64,
    finished: AtomicU64,
    stop: AtomicBool,
    /// Set by the main goroutine around each `gomaxprocs` call.
    stw: AtomicBool,
    /// The setting `gomaxprocs` is changing from (valid while `stw` is set).
    from: AtomicU32,
    /// Hog iterations done while `stw` was set, the stop had begun (`gcwaiting`) and the setting
    /// was still `from`: before the world stopped (GOMAXPROCS changes only while it is stopped).
    during: AtomicU64,
}

/// One iteration of a hog's loop: the step of its generator, and the count when a stop is
/// under way. Also what the calibration times (with a `sh` whose `stw` is not set).
#[inline(always)]
fn hog_step(sh: &Shared, x: u64) -> u64 {
    let x = core::hint::black_box(mix64(x));
    // `gcwaiting` is the runtime's own flag (Go's `sched.gcwaiting`), read only for this count.
    if sh.stw.load(Ordering::Relaxed)
        && kernel::runtime::proc::SCHED.gcwaiting.load(Ordering::Relaxed)
        && kernel::current_gomaxprocs() == sh.from.load(Ordering::Relaxed)
    {
        sh.during.fetch_add(1, Ordering::Relaxed);
    }
    x
}

impl Shared {
    fn record(&self, i: u64) {
        self.ran[i as usize].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(work(self.seed, i), Ordering::Relaxed);
        // Release: pairs with the main goroutine's acquire load of `finished`.
        self.finished.fetch_add(1, Ordering::Release);
    }
}

#[ktest(smp = [1, 2, 4], timeout = 170, output = ["/^lab7: checksum [0-9a-f]{16} nonce [0-9]+ goroutines 1012 resizes 4-1-3-4 x6 ok$/"])]
fn gomaxprocs_resize() {
    let seed = kernel::boot::params().seed.unwrap_or(1);
    let ncpu = kernel::num_cpu();
    let sh: &'static Shared = Box::leak(Box::new(Shared {
        seed,
        ran: (0..TOTAL).map(|_| AtomicU8::new(0)).collect(),
        sum: AtomicU64::new(0),
        finished: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        stw: AtomicBool::new(false),
        from: AtomicU32::new(0),
        during: AtomicU64::new(0),
    }));
    let clamp = |n: u32| n.min(ncpu);
    kernel::gomaxprocs(clamp(4)).expect("gomaxprocs in range");

    // The hogs' rate, before there are hogs: the same loop (with `stw` clear, as between the
    // stops), timed alone. The fastest try is the one the host did not interrupt.
    let mut best = u64::MAX;
    for t in 0..CALIBRATE_TRIES {
        let t0 = kernel::nanotime();
        let mut x = t as u64;
        for _ in 0..CALIBRATE_ITERS {
            x = hog_step(sh, x);
        }
        core::hint::black_box(x);
        best = best.min((kernel::nanotime() - t0).max(1));
    }
    let late_iters = (CALIBRATE_ITERS * LATE_US * 1000 / best).max(1);

    for h in 0..HOGS {
        kernel::go(move || {
            let mut x = mix64(h);
            // No safe point in this loop: only an asynchronous preemption stops it.
            while !sh.stop.load(Ordering::Relaxed) {
                x = hog_step(sh, x);
            }
            sh.record(N + h);
        });
    }
    for s in 0..SLEEPERS {
        kernel::go(move || {
            while !sh.stop.load(Ordering::Relaxed) {
                kernel::sleep(500_000);
            }
            sh.record(N + HOGS + s);
        });
    }
    for s in 0..SPAWNERS {
        kernel::go(move || {
            for i in s * N / SPAWNERS..(s + 1) * N / SPAWNERS {
                kernel::go(move || {
                    if i % 8 == 0 {
                        kernel::gosched();
                    }
                    sh.record(i);
                });
                if i % 16 == 15 && !sh.stop.load(Ordering::Relaxed) {
                    kernel::sleep(1_000_000);
                }
            }
        });
    }

    // The resizes. Each is timed alone: gosched first, so the call starts on a fresh time
    // slice (a goroutine woken from sleep inherits the slice of the one it follows, and sysmon
    // could preempt it in the middle of the call).
    let mut lat: Vec<u64> = Vec::new();
    let (mut checked, mut late) = (0u32, 0u32);
    for _ in 0..CYCLES {
        for n in [1, 3, 4] {
            let n = clamp(n);
            kernel::sleep(2_000_000);
            kernel::gosched();
            let before = kernel::current_gomaxprocs();
            let d0 = sh.during.load(Ordering::Relaxed);
            sh.from.store(before, Ordering::SeqCst);
            sh.stw.store(true, Ordering::SeqCst);
            let t0 = kernel::nanotime();
            let prev = kernel::gomaxprocs(n).expect("gomaxprocs in range");
            let dt = kernel::nanotime() - t0;
            sh.stw.store(false, Ordering::SeqCst);
            let ran_on = sh.during.load(Ordering::Relaxed) - d0;
            assert_eq!(prev, before, "lab7: gomaxprocs returned {prev}, the setting was {before}");
            assert_eq!(kernel::current_gomaxprocs(), n, "lab7: gomaxprocs({n}) did not take");
            assert!(
                dt < MAX_BOUND_NS,
                "lab7: gomaxprocs {prev} -> {n}: the stop-the-world took {} ms (bound {} ms)",
                dt / 1_000_000,
                MAX_BOUND_NS / 1_000_000
            );
            if prev > 1 {
                lat.push(dt);
            }
            // Only a change shows when the world was stopped (and another P must have run).
            if prev > 1 && n != prev {
                checked += 1;
                if ran_on > late_iters {
                    late += 1;
                    println!("lab7: gomaxprocs {prev} -> {n}: hogs ran {ran_on} iterations before the world stopped");
                }
            }
        }
    }
    sh.stop.store(true, Ordering::Relaxed);
    let load = sh.finished.load(Ordering::Acquire);

    // Every goroutine finishes, or the test fails after the deadline (no hang).
    let t0 = kernel::nanotime();
    while sh.finished.load(Ordering::Acquire) < TOTAL {
        if kernel::nanotime() - t0 > DEADLINE_NS {
            break;
        }
        kernel::sleep(5_000_000);
    }
    let (mut never, mut twice) = (0, 0);
    for r in &sh.ran {
        match r.load(Ordering::Relaxed) {
            0 => never += 1,
            1 => {}
            _ => twice += 1,
        }
    }
    assert!(
        never == 0 && twice == 0,
        "lab7: {never} goroutines never ran (within {} s), {twice} ran twice",
        DEADLINE_NS / 1_000_000_000
    );

    lat.sort_unstable();
    let median = lat.get(lat.len() / 2).copied().unwrap_or(0);
    let seq: Vec<u32> = [4, 1, 3, 4].iter().map(|&n| clamp(n)).collect();
    println!(
        "lab7: {ncpu} cores, resizes {seq:?} x{CYCLES}, {load} of {TOTAL} goroutines done during them; \
         gomaxprocs with other Ps running: median {} us, max {} us ({} calls); late stops {late} of {checked} \
         (over {late_iters} hog iterations: {LATE_US} us at {} per ms)",
        median / 1000,
        lat.last().copied().unwrap_or(0) / 1000,
        lat.len(),
        CALIBRATE_ITERS * 1_000_000 / best,
    );
    assert!(
        late * 4 <= checked,
        "lab7: in {late} of {checked} stops the hogs ran on (over {late_iters} iterations, {LATE_US} us) after \
         the stop began and before the world stopped: are running Ps preempted?"
    );

    let want = (0..TOTAL).fold(0u64, |a, i| a.wrapping_add(work(seed, i)));
    let got = sh.sum.load(Ordering::Relaxed);
    assert_eq!(got, want, "lab7: wrong checksum");
    println!("lab7: checksum {got:016x} nonce {seed} goroutines {TOTAL} resizes 4-1-3-4 x{CYCLES} ok");
}
