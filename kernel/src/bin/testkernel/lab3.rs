//! Lab 3's QEMU test (`labs/lab3/`): `runnext` hand-offs share one time slice, and the
//! 1-in-61 rule keeps them from starving the global queue.
//!
//! Graded by `./run-qemu.sh grade lab3`, which boots it with a fresh random `seed=` (the
//! nonce) and recomputes the last line on the host: the values the goroutines pass around
//! come from the nonce, so only a kernel that really made every hand-off prints the right
//! numbers. The formulas are [`rounds`], [`cycles`], [`pingpong_value`] and
//! [`forkjoin_value`]; the grader has its own copy (`boot/src/lab/spec/lab3.rs`), keep them
//! equal. The grader also checks that this file is unchanged.
//!
//! Everything runs on one P (`gomaxprocs(1)`; the other cores have no P and stay idle), and
//! reads that P's `schedtick`: `execute` increments it for every G that does not inherit the
//! time slice, so it counts time slices, not hand-offs.
//!
//! 1. **Ping-pong** (Go's TestPingPongHog, one pair). Two goroutines pass a value back and
//!    forth through unbuffered channels `R` times. Each send readies the partner into
//!    `runnext` and the sender then parks, so the partner runs at once *inheriting* the time
//!    slice: the `2R` hand-offs must advance `schedtick` by far less than `R`. A goroutine W
//!    waits on the global queue meanwhile; the pair never leaves the local queue empty and
//!    does not advance `schedtick`, so only sysmon can let W in: it sees the same
//!    `schedtick` for `forcePreemptNS` (10 ms) and preempts the pair. The pair goes on after
//!    `R` rounds until W has run (at most 5 s).
//! 2. **Fork-join** (the 1-in-61 rule). S sends a value to A and then to B (B takes
//!    `runnext`, A is kicked out to the ring), B and A each send a result to J, and J sends
//!    their combination back to S, `C` times. At every schedule the local queue holds a G
//!    (`runnext`, or A on the ring), and one G per cycle comes from the ring, so
//!    `schedtick` advances once per cycle and sysmon never preempts anything. A goroutine W
//!    keeps yielding to the global queue (`gosched`): only the check at the top of
//!    `findRunnable` (`schedtick % 61 == 0`) can bring it back, and it must, every time,
//!    within 61 ticks. (A wait during which sysmon preempted something, which only happens
//!    when the host stalls the P's core for 10 ms, is not counted.)
use crate::latch::Latch;
use alloc::boxed::Box;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use kernel::ktest::ktest;
use kernel::runtime::preempt::{ASYNC_PREEMPTS, COOP_PREEMPTS};
use kernel::runtime::runtime2::P;
use kernel::{println, Chan};
use gmp_core::rand::mix64;

/// Ping-pong rounds for nonce `seed`: 1000..=1999.
fn rounds(seed: u64) -> u64 {
    1000 + mix64(seed ^ 0x1a3) % 1000
}

/// Fork-join cycles for nonce `seed`: 2000..=2999 (at least 32 turns of the 61-tick rule).
fn cycles(seed: u64) -> u64 {
    2000 + mix64(seed ^ 0x2b4) % 1000
}

/// The value after `rounds(seed)` ping-pong rounds (each round two steps).
fn pingpong_value(seed: u64) -> u64 {
    let mut v = mix64(seed ^ 0x3c5);
    for _ in 0..2 * rounds(seed) {
        v = mix64(v);
    }
    v
}

/// One fork-join cycle: A's and B's results combined by J (xor: the order J receives them
/// in does not matter).
fn forkjoin_step(x: u64) -> u64 {
    let a = mix64(x ^ 0xa);
    let b = mix64(mix64(x ^ 0xb));
    mix64(a ^ b)
}

/// The value after `cycles(seed)` fork-join cycles.
fn forkjoin_value(seed: u64) -> u64 {
    let mut x = mix64(seed ^ 0x4d6);
    for _ in 0..cycles(seed) {
        x = forkjoin_step(x);
    }
    x
}

fn leak<T>(v: T) -> &'static T {
    Box::leak(Box::new(v))
}

/// The only P (after `gomaxprocs(1)`).
fn the_p() -> &'static P {
    kernel::runtime::proc::allp_slice().next().expect("no P")
}

fn schedtick() -> u32 {
    the_p().schedtick.load(Ordering::Relaxed)
}

/// Preemptions so far (sysmon's, asynchronous or at a stack check). A preempted G goes to
/// the global queue and the next one starts a new time slice: each adds a schedtick or two.
fn preemptions() -> u64 {
    ASYNC_PREEMPTS.load(Ordering::Relaxed) + COOP_PREEMPTS.load(Ordering::Relaxed)
}

/// The 61-tick bound: W goes to the global queue at schedtick T and is taken by the first
/// schedule whose schedtick is a multiple of 61 (at most T + 60), whose `execute` makes it
/// T + 61 at most.
const FAIR_TICKS: u32 = 61;

#[ktest(smp = [1, 2, 4], timeout = 150, output = ["/^lab3: pingpong rounds [0-9]+ value [0-9a-f]{16} forkjoin cycles [0-9]+ value [0-9a-f]{16} nonce [0-9]+ ok$/"])]
fn runnext_fairness() {
    let seed = kernel::boot::params().seed.unwrap_or(1);
    // schedrandom=1 turns half of the runnext puts into plain puts (Go's race mode): the
    // hand-offs then do not all inherit, so the time-slice check is left out.
    let randomized = kernel::boot::params().schedrandom;
    let prev = kernel::gomaxprocs(1).expect("gomaxprocs(1)");
    assert_eq!(kernel::runtime::proc::allp_slice().count(), 1);

    // ---- 1. ping-pong ------------------------------------------------------------------
    let r = rounds(seed);
    const STOP: u64 = u64::MAX;
    let (to_a, to_b): (Chan<(u64, u64)>, Chan<(u64, u64)>) = (Chan::new(0), Chan::new(0));
    let result: Chan<(u64, u32)> = Chan::new(0);
    let w_ran = leak(AtomicBool::new(false));
    let w_done = leak(Latch::new(1));
    let deadline = kernel::nanotime() + 5_000_000_000;
    {
        let (to_a, to_b, result) = (to_a.clone(), to_b.clone(), result.clone());
        kernel::go(move || loop {
            let (i, v) = to_a.recv().unwrap();
            if i == r {
                // The R rounds are done (the schedtick they took is read here): keep
                // playing, unchanged, until W has had its turn.
                if w_ran.load(Ordering::Acquire) || kernel::nanotime() > deadline {
                    result.send((v, schedtick()));
                    to_b.send((STOP, 0));
                    return;
                }
                to_b.send((r, v));
            } else {
                to_b.send((i, mix64(v)));
            }
        });
    }
    {
        let (to_a, to_b) = (to_a.clone(), to_b.clone());
        kernel::go(move || loop {
            let (i, v) = to_b.recv().unwrap();
            match i {
                STOP => return,
                _ if i == r => to_a.send((r, v)),
                _ => to_a.send((i + 1, mix64(v))),
            }
        });
    }
    // W: spawned last, so it runs first (from runnext) and goes straight to the global queue.
    kernel::go(move || {
        kernel::gosched();
        w_ran.store(true, Ordering::Release);
        w_done.done();
    });
    let (t0, p0) = (schedtick(), preemptions());
    to_a.send((0, mix64(seed ^ 0x3c5)));
    let (v, t_r) = result.recv().unwrap();
    w_done.wait();
    let ticks = t_r.wrapping_sub(t0);
    let preempts = preemptions() - p0;
    println!("lab3: ping-pong: {r} rounds ({} hand-offs) took {ticks} schedticks, {preempts} preemptions", 2 * r);
    assert!(w_ran.load(Ordering::Acquire), "lab3: the ping-pong kept W off the P for 5 s: nothing preempted it");
    assert_eq!(v, pingpong_value(seed), "lab3: wrong ping-pong value");
    if !randomized {
        assert!(
            (ticks as u64) < r / 2 + 2 * preempts,
            "lab3: {} runnext hand-offs advanced schedtick by {ticks}: a G taken from runnext must inherit \
             the time slice (runqget's inheritTime, execute does not increment schedtick)",
            2 * r
        );
    }

    // ---- 2. fork-join ------------------------------------------------------------------
    let c = cycles(seed);
    let (to_s, to_fa, to_fb, to_j): (Chan<u64>, Chan<u64>, Chan<u64>, Chan<u64>) =
        (Chan::new(0), Chan::new(0), Chan::new(0), Chan::new(0));
    let fresult: Chan<u64> = Chan::new(0);
    let stop = leak(AtomicBool::new(false));
    let w_runs = leak(AtomicU64::new(0));
    let w_max = leak(AtomicU32::new(0));
    let w_over = leak(AtomicU64::new(0));
    let w_disturbed = leak(AtomicU64::new(0));
    let w2_done = leak(Latch::new(1));
    {
        let (to_s, to_fa, to_fb, fresult) = (to_s.clone(), to_fa.clone(), to_fb.clone(), fresult.clone());
        kernel::go(move || {
            for _ in 0..c {
                let x = to_s.recv().unwrap();
                to_fa.send(x);
                to_fb.send(x);
            }
            let x = to_s.recv().unwrap();
            stop.store(true, Ordering::Release);
            fresult.send(x);
        });
    }
    {
        let (to_fa, to_j) = (to_fa.clone(), to_j.clone());
        kernel::go(move || {
            for _ in 0..c {
                let x = to_fa.recv().unwrap();
                to_j.send(mix64(x ^ 0xa));
            }
        });
    }
    {
        let (to_fb, to_j) = (to_fb.clone(), to_j.clone());
        kernel::go(move || {
            for _ in 0..c {
                let x = to_fb.recv().unwrap();
                to_j.send(mix64(mix64(x ^ 0xb)));
            }
        });
    }
    {
        let (to_j, to_s) = (to_j.clone(), to_s.clone());
        kernel::go(move || {
            for _ in 0..c {
                let a = to_j.recv().unwrap();
                let b = to_j.recv().unwrap();
                to_s.send(mix64(a ^ b));
            }
        });
    }
    kernel::go(move || {
        while !stop.load(Ordering::Acquire) {
            let (t, p) = (schedtick(), preemptions());
            kernel::gosched();
            let d = schedtick().wrapping_sub(t);
            w_runs.fetch_add(1, Ordering::Relaxed);
            if preemptions() != p {
                // sysmon preempted someone meanwhile (a host so busy that the P's core
                // stood still for forcePreemptNS): W itself may have been sent to the back of
                // the global queue twice. Not a wait the 61 rule bounds; not counted.
                w_disturbed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            w_max.fetch_max(d, Ordering::Relaxed);
            if d > FAIR_TICKS {
                w_over.fetch_add(1, Ordering::Relaxed);
            }
        }
        w2_done.done();
    });
    let t0 = schedtick();
    to_s.send(mix64(seed ^ 0x4d6));
    let x = fresult.recv().unwrap();
    w2_done.wait();
    let ticks = schedtick().wrapping_sub(t0);
    let (runs, max, over, disturbed) = (
        w_runs.load(Ordering::Relaxed),
        w_max.load(Ordering::Relaxed),
        w_over.load(Ordering::Relaxed),
        w_disturbed.load(Ordering::Relaxed),
    );
    println!(
        "lab3: fork-join: {c} cycles took {ticks} schedticks; W on the global queue ran {runs} times, \
         waiting at most {max} schedticks ({over} waits over {FAIR_TICKS}, {disturbed} not counted: preemptions)"
    );
    assert_eq!(x, forkjoin_value(seed), "lab3: wrong fork-join value");
    assert!(
        over == 0,
        "lab3: W waited {max} schedticks on the global queue ({over} times more than {FAIR_TICKS}): \
         findRunnable must take a G from the global queue when schedtick % 61 == 0"
    );
    assert!(
        runs - disturbed >= c / 2 / FAIR_TICKS as u64,
        "lab3: W ran only {runs} times in {c} cycles ({disturbed} disturbed by preemptions)"
    );
    kernel::gomaxprocs(prev).expect("gomaxprocs(prev)");
    println!(
        "lab3: pingpong rounds {r} value {v:016x} forkjoin cycles {c} value {x:016x} nonce {seed} ok"
    );
}
