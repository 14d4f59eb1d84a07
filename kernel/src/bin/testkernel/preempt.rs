//! Scenarios of the preemption-and-time issue: ports of Go's preemption
//! tests, timers, FPU state across asynchronous preemption, PreemptGuard,
//! syscall hand-off and stack overflow.
use kernel::ktest::ktest;
use crate::latch::Latch;
use alloc::boxed::Box;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use kernel::println;
use kernel::runtime::preempt::{ASYNC_PREEMPTS, ASYNC_REFUSED, COOP_PREEMPTS};


fn leak<T>(v: T) -> &'static T {
    Box::leak(Box::new(v))
}

// ---- TestPreemption -----------------------------------------------------------
//
// Two goroutines spin with no safe point at all; a third must still get the
// CPU (at -smp 1 only preemption can give it). `coop` puts the
// cooperative stack check in the spin loops (run with asyncpreemptoff=1).

fn spinners_and_progress(coop: bool) {
    let stop = leak(AtomicBool::new(false));
    let spun = leak(AtomicU64::new(0));
    let done = leak(Latch::new(2));
    let a0 = ASYNC_PREEMPTS.load(Ordering::Relaxed);
    let c0 = COOP_PREEMPTS.load(Ordering::Relaxed);
    for _ in 0..2 {
        kernel::go(move || {
            while !stop.load(Ordering::Relaxed) {
                spun.fetch_add(1, Ordering::Relaxed);
                if coop {
                    kernel::morestack_check!();
                }
            }
            done.done();
        });
    }
    // Let the spinners take the P(s).
    kernel::gosched();
    let progress = leak(Latch::new(1));
    let steps = leak(AtomicU64::new(0));
    kernel::go(move || {
        for _ in 0..5 {
            steps.fetch_add(1, Ordering::Relaxed);
            kernel::gosched();
        }
        progress.done();
    });
    progress.wait();
    stop.store(true, Ordering::Relaxed);
    done.wait();
    let a = ASYNC_PREEMPTS.load(Ordering::Relaxed) - a0;
    let c = COOP_PREEMPTS.load(Ordering::Relaxed) - c0;
    println!(
        "preempt: third goroutine finished {} steps while 2 spun ({} iterations); async preemptions={a} cooperative={c}",
        steps.load(Ordering::Relaxed),
        spun.load(Ordering::Relaxed)
    );
    if kernel::num_cpu() == 1 || kernel::current_gomaxprocs() == 1 {
        if coop {
            assert!(c > 0 && a == 0, "with asyncpreemptoff=1 only the cooperative check may preempt");
        } else {
            assert!(a > 0, "the spinners have no safe point: only asynchronous preemption can have stopped them");
        }
    }
}

#[ktest(output = ["third goroutine finished 5 steps"])]
fn preempt_async() {
    spinners_and_progress(false);
}

#[ktest(params = "asyncpreemptoff=1", output = ["third goroutine finished 5 steps", "async preemptions=0"])]
fn preempt_coop() {
    assert!(kernel::boot::params().asyncpreemptoff, "run with asyncpreemptoff=1");
    spinners_and_progress(true);
}

// ---- TestPingPongHog -----------------------------------------------------------------
//
// Two pairs of goroutines ping-pong on one P: the "hog" pair does 1000x
// more work per hand-off than the "light" pair. Each hand-off goes through
// runnext and inherits the time slice, so without sysmon preempting the
// chain after forcePreemptNS the hog pair would keep the P to itself and
// the counts would differ ~1000x. Go's bound: within a factor of 20.

#[ktest(skip_params = "schedrandom=1", output = ["ping_pong_hog: hog count "])]
fn ping_pong_hog() {
    use kernel::Chan;
    let prev = kernel::gomaxprocs(1).unwrap();
    let done: Chan<()> = Chan::new(0);
    let hog_chan: Chan<bool> = Chan::new(0);
    let light_chan: Chan<bool> = Chan::new(0);
    let hog_count = leak(AtomicU64::new(0));
    let light_count = leak(AtomicU64::new(0));
    fn run(limit: u64, counter: &'static AtomicU64, wake: Chan<bool>, done: Chan<()>) {
        loop {
            kernel::select! {
                recv(done) -> _v => { return; },
                recv(wake) -> _v => {
                    let mut c = 0u64;
                    for _ in 0..limit {
                        c = core::hint::black_box(c + 1);
                    }
                    counter.fetch_add(c, Ordering::Relaxed);
                    wake.send(true);
                },
            }
        }
    }
    for _ in 0..2 {
        let (w, d) = (hog_chan.clone(), done.clone());
        kernel::go(move || run(100_000, hog_count, w, d));
    }
    for _ in 0..2 {
        let (w, d) = (light_chan.clone(), done.clone());
        kernel::go(move || run(100, light_count, w, d));
    }
    hog_chan.send(true);
    light_chan.send(true);
    kernel::sleep(200_000_000);
    done.close();
    hog_chan.recv();
    light_chan.recv();
    let (h, l) = (hog_count.load(Ordering::Relaxed), light_count.load(Ordering::Relaxed));
    println!("ping_pong_hog: hog count {h}, light count {l} (ratio must be within 20)");
    assert!(h / 20 <= l && l / 20 <= h, "hog {h} vs light {l}: not within a factor of 20");
    kernel::gomaxprocs(prev).unwrap();
}

// ---- TestTimerFairness ------------------------------------------------------------
//
// Goroutines flood the run queues (yielding and spinning); a 20 ms timer
// must still fire and its goroutine run.

#[ktest(output = ["timer_fairness: a 20 ms sleep under a flood woke"])]
fn timer_fairness() {
    let stop = leak(AtomicBool::new(false));
    let done = leak(Latch::new(4));
    for i in 0..4 {
        kernel::go(move || {
            while !stop.load(Ordering::Relaxed) {
                if i % 2 == 0 {
                    kernel::gosched();
                } else {
                    core::hint::spin_loop();
                }
            }
            done.done();
        });
    }
    let t0 = kernel::nanotime();
    kernel::sleep(20_000_000);
    let dt = kernel::nanotime() - t0;
    stop.store(true, Ordering::Relaxed);
    done.wait();
    println!("timer_fairness: a 20 ms sleep under a flood woke after {} us", dt / 1000);
    assert!(dt >= 20_000_000);
}

// ---- sleep accuracy ------------------------------------------------------------------

#[ktest(output = ["sleep_accuracy: sleep(5ms) x20"])]
fn sleep_accuracy() {
    let hz = kernel::boot::params().hz as u64;
    let tick = 1_000_000_000 / hz;
    let mut worst = 0;
    let mut sum = 0;
    const N: u64 = 20;
    for _ in 0..N {
        let t0 = kernel::nanotime();
        kernel::sleep(5_000_000);
        let late = (kernel::nanotime() - t0) as i64 - 5_000_000;
        assert!(late >= 0, "sleep(5ms) woke {} us early", -late / 1000);
        worst = worst.max(late as u64);
        sum += late as u64;
    }
    println!("sleep_accuracy: sleep(5ms) x{N}: late by mean {} us, worst {} us (tick {} us)", sum / N / 1000, worst / 1000, tick / 1000);
    // One tick plus scheduling latency; emulation adds host noise, so the
    // bound is generous (the benchmark reports the real figures).
    assert!(worst < tick + 20_000_000, "sleep woke {} us late", worst / 1000);
}

// ---- many sleepers ----------------------------------------------------------------------

#[ktest(output = ["many_sleepers: 10000 sleepers woke", "early=0, out of deadline order per P=0"])]
fn many_sleepers() {
    const N: usize = 10_000;
    let done = leak(Latch::new(N as u64));
    let early = leak(AtomicU64::new(0));
    let v0 = kernel::runtime::time::TIMER_ORDER_VIOLATIONS.load(Ordering::Relaxed);
    let f0 = kernel::runtime::time::TIMERS_FIRED.load(Ordering::Relaxed);
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    for _ in 0..N {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let d = seed % 50_000_000;
        kernel::go(move || {
            let t0 = kernel::nanotime();
            kernel::sleep(d);
            if kernel::nanotime() - t0 < d {
                early.fetch_add(1, Ordering::Relaxed);
            }
            done.done();
        });
    }
    done.wait();
    let fired = kernel::runtime::time::TIMERS_FIRED.load(Ordering::Relaxed) - f0;
    let viol = kernel::runtime::time::TIMER_ORDER_VIOLATIONS.load(Ordering::Relaxed) - v0;
    println!("many_sleepers: {N} sleepers woke; timers fired={fired}, early={}, out of deadline order per P={viol}", early.load(Ordering::Relaxed));
    assert_eq!(early.load(Ordering::Relaxed), 0);
    assert_eq!(viol, 0);
    assert!(fired >= N as u64);
}

// ---- FPU/SSE state across asynchronous preemption ---------------------------------------
//
// Each goroutine fills xmm0-xmm15 with its own values and runs a long loop
// of SSE integer and floating-point additions with no safe point, so it is
// preempted asynchronously many times while other goroutines use the same
// registers with other values. Every result must be exact.

/// Returns (xmm0 low lane, xmm6 high lane, xmm7 as f64 bits) after `n`
/// iterations of: xmm_k += xmm_{8+k} (k = 0..6, 64-bit lanes), xmm7 += 1.0.
fn sse_work(seed: u64, n: u64) -> (u64, u64, u64) {
    let (a, b, c): (u64, u64, u64);
    // SAFETY: SSE is enabled for goroutines (enable_sse); the asm touches
    // only the xmm registers it declares clobbered and the given regs.
    unsafe {
        core::arch::asm!(
            // xmm_k = [seed + k, seed + k], xmm_{8+k} = [k + 1, k + 1]
            "mov rax, {seed}",
            "movq xmm0, rax", "punpcklqdq xmm0, xmm0", "inc rax",
            "movq xmm1, rax", "punpcklqdq xmm1, xmm1", "inc rax",
            "movq xmm2, rax", "punpcklqdq xmm2, xmm2", "inc rax",
            "movq xmm3, rax", "punpcklqdq xmm3, xmm3", "inc rax",
            "movq xmm4, rax", "punpcklqdq xmm4, xmm4", "inc rax",
            "movq xmm5, rax", "punpcklqdq xmm5, xmm5", "inc rax",
            "movq xmm6, rax", "punpcklqdq xmm6, xmm6",
            "mov rax, 1", "movq xmm8, rax", "punpcklqdq xmm8, xmm8",
            "mov rax, 2", "movq xmm9, rax", "punpcklqdq xmm9, xmm9",
            "mov rax, 3", "movq xmm10, rax", "punpcklqdq xmm10, xmm10",
            "mov rax, 4", "movq xmm11, rax", "punpcklqdq xmm11, xmm11",
            "mov rax, 5", "movq xmm12, rax", "punpcklqdq xmm12, xmm12",
            "mov rax, 6", "movq xmm13, rax", "punpcklqdq xmm13, xmm13",
            "mov rax, 7", "movq xmm14, rax", "punpcklqdq xmm14, xmm14",
            "xorpd xmm7, xmm7",
            "mov rax, 0x3ff0000000000000", "movq xmm15, rax",
            "2:",
            "paddq xmm0, xmm8", "paddq xmm1, xmm9", "paddq xmm2, xmm10", "paddq xmm3, xmm11",
            "paddq xmm4, xmm12", "paddq xmm5, xmm13", "paddq xmm6, xmm14", "addsd xmm7, xmm15",
            "dec {n}",
            "jnz 2b",
            // Fold every register into the results so that any corrupted
            // one shows: a = xmm0.lo + xmm1.lo + ... + xmm5.lo; b = xmm6.hi.
            "movq {a}, xmm0",
            "movq rax, xmm1", "add {a}, rax",
            "movq rax, xmm2", "add {a}, rax",
            "movq rax, xmm3", "add {a}, rax",
            "movq rax, xmm4", "add {a}, rax",
            "movq rax, xmm5", "add {a}, rax",
            "pshufd xmm6, xmm6, 0xee", "movq {b}, xmm6",
            "movq {c}, xmm7",
            seed = in(reg) seed,
            n = inout(reg) n => _,
            a = out(reg) a,
            b = out(reg) b,
            c = out(reg) c,
            out("rax") _,
            out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _, out("xmm4") _, out("xmm5") _,
            out("xmm6") _, out("xmm7") _, out("xmm8") _, out("xmm9") _, out("xmm10") _, out("xmm11") _,
            out("xmm12") _, out("xmm13") _, out("xmm14") _, out("xmm15") _,
        );
    }
    (a, b, c)
}

#[ktest(output = [" 0 wrong"])]
fn fpu_preempt() {
    const N: u64 = 3_000_000;
    let workers = 2 * kernel::num_cpu() as u64 + 1;
    let done = leak(Latch::new(workers));
    let bad = leak(AtomicU64::new(0));
    let a0 = ASYNC_PREEMPTS.load(Ordering::Relaxed);
    for w in 0..workers {
        kernel::go(move || {
            let seed = 1000 * (w + 1);
            let (a, b, c) = sse_work(seed, N);
            // xmm_k ends at seed + k + N*(k+1)
            let want_a: u64 = (0..6).map(|k| seed + k + N * (k + 1)).sum();
            let want_b = seed + 6 + N * 7;
            let want_c = (N as f64).to_bits();
            if a != want_a || b != want_b || c != want_c {
                println!("fpu_preempt: worker {w}: got ({a}, {b}, {c:#x}), want ({want_a}, {want_b}, {want_c:#x})");
                bad.fetch_add(1, Ordering::Relaxed);
            }
            done.done();
        });
    }
    done.wait();
    let a = ASYNC_PREEMPTS.load(Ordering::Relaxed) - a0;
    println!("fpu_preempt: {workers} goroutines x {N} SSE iterations, {a} asynchronous preemptions, {} wrong", bad.load(Ordering::Relaxed));
    assert_eq!(bad.load(Ordering::Relaxed), 0);
    assert!(a > 0, "the SSE loops must have been preempted asynchronously");
}

// ---- PreemptGuard ---------------------------------------------------------------------------

/// One P's worth of competition for the two tests below: a goroutine that
/// counts in `other` with no safe point until `stop`, then counts `done`
/// down (a latch of 2, the second count for the test's own goroutine).
fn counting_spinner() -> (&'static AtomicU64, &'static AtomicBool, &'static Latch) {
    let other = leak(AtomicU64::new(0));
    let stop = leak(AtomicBool::new(false));
    let done = leak(Latch::new(2));
    kernel::go(move || {
        while !stop.load(Ordering::Relaxed) {
            other.fetch_add(1, Ordering::Relaxed);
            core::hint::spin_loop();
        }
        done.done();
    });
    (other, stop, done)
}

#[ktest(output = ["preempt_guard: other goroutine ran 0 steps during 5 slices"])]
fn preempt_guard() {
    let prev = kernel::gomaxprocs(1).unwrap();
    let (other, stop, done) = counting_spinner();
    kernel::go(move || {
        let slice = kernel::boot::params().forcepreemptns;
        let (during, a0);
        {
            let _g = kernel::PreemptGuard::new();
            let o0 = other.load(Ordering::Relaxed);
            a0 = ASYNC_PREEMPTS.load(Ordering::Relaxed);
            let t0 = kernel::nanotime();
            while kernel::nanotime() - t0 < 5 * slice {
                core::hint::spin_loop();
            }
            during = other.load(Ordering::Relaxed) - o0;
        }
        let o1 = other.load(Ordering::Relaxed);
        // Now preemptible: the other goroutine must get the P again.
        let deadline = kernel::nanotime() + 5_000_000_000;
        while other.load(Ordering::Relaxed) == o1 {
            assert!(kernel::nanotime() < deadline, "the other goroutine never ran after the guard was released");
            core::hint::spin_loop();
        }
        println!(
            "preempt_guard: other goroutine ran {during} steps during 5 slices under the guard (preemptions then: {})",
            ASYNC_PREEMPTS.load(Ordering::Relaxed) - a0
        );
        assert_eq!(during, 0, "a goroutine holding a PreemptGuard was preempted");
        stop.store(true, Ordering::Relaxed);
        done.done();
    });
    done.wait();
    kernel::gomaxprocs(prev).unwrap();
}

// ---- RuntimeLock: Go's runtime mutex ---------------------------------------------------
//
// The channel and semaphore locks leave interrupts on and keep their holder
// unpreempted through `m.locks` alone: while one is held the preemption
// handler runs and refuses, and the unlock that brings the count back to 0
// yields to the request at once (Go's `releasem`).

#[ktest(output = ["runtime_lock: other goroutine ran 0 steps during 5 slices"])]
fn runtime_lock() {
    static LOCK: kernel::runtime::lock::RuntimeLock<()> = kernel::runtime::lock::RuntimeLock::new(());
    let prev = kernel::gomaxprocs(1).unwrap();
    let (other, stop, done) = counting_spinner();
    kernel::go(move || {
        let slice = kernel::boot::params().forcepreemptns;
        let (during, refused, irq_on, c0, o_end);
        {
            let _held = LOCK.lock();
            irq_on = x86_64::instructions::interrupts::are_enabled();
            let o0 = other.load(Ordering::Relaxed);
            let r0 = ASYNC_REFUSED.load(Ordering::Relaxed);
            let t0 = kernel::nanotime();
            while kernel::nanotime() - t0 < 5 * slice {
                core::hint::spin_loop();
            }
            during = other.load(Ordering::Relaxed) - o0;
            refused = ASYNC_REFUSED.load(Ordering::Relaxed) - r0;
            // Only this P runs goroutines, and the spinner has no safe point:
            // any cooperative preemption from here is the unlock's.
            c0 = COOP_PREEMPTS.load(Ordering::Relaxed);
            o_end = other.load(Ordering::Relaxed);
        }
        // The unlock is a safe point: the request refused under the lock is
        // honoured there, so the spinner has run by the time this statement
        // runs. Almost always the unlock itself yields (one cooperative
        // preemption). Rarely a tick or preemption IPI lands between the
        // unlock's decrement of `m.locks` and its look at `g.preempt`; the
        // handler, finding no lock held, preempts asynchronously, and the
        // unlock then finds the request already served (`execute` cleared
        // it). Both honour the request at the unlock, so what is asserted is
        // that the spinner ran across the unlock, not which of the two did it.
        let ran_at_unlock = other.load(Ordering::Relaxed) - o_end;
        let yielded = COOP_PREEMPTS.load(Ordering::Relaxed) - c0;
        println!(
            "runtime_lock: other goroutine ran {during} steps during 5 slices under the lock \
             (interrupts on: {irq_on}, preemptions refused: {refused}, yields at the unlock: {yielded}, \
             steps of the other goroutine across the unlock: {ran_at_unlock})"
        );
        assert!(irq_on, "a RuntimeLock turned interrupts off");
        assert_eq!(during, 0, "a goroutine holding a RuntimeLock was preempted");
        assert!(refused > 0, "no preemption request was refused while the lock was held: were interrupts on?");
        assert!(ran_at_unlock > 0, "the unlock did not honour the pending preemption request (yields at the unlock: {yielded})");
        assert!(yielded <= 1, "the unlock yielded {yielded} times");
        stop.store(true, Ordering::Relaxed);
        done.done();
    });
    done.wait();
    kernel::gomaxprocs(prev).unwrap();
}

// ---- syscall hand-off -------------------------------------------------------------------

#[ktest(smp = [1])]
fn syscall_handoff() {
    let ncpu = kernel::num_cpu();
    let procs = kernel::current_gomaxprocs();
    let counter = leak(AtomicU64::new(0));
    let stop = leak(AtomicBool::new(false));
    let done = leak(Latch::new(2));
    let in_syscall = leak(AtomicU64::new(0));
    kernel::go(move || {
        while !stop.load(Ordering::Relaxed) {
            counter.fetch_add(1, Ordering::Relaxed);
            kernel::gosched();
        }
        done.done();
    });
    for blocking in [false, true] {
        let result = leak(AtomicU64::new(u64::MAX));
        let d2 = leak(Latch::new(1));
        kernel::go(move || {
            let h0 = kernel::runtime::proc::SYSCALL_HANDOFFS.load(Ordering::Relaxed);
            if blocking {
                kernel::entersyscallblock();
            } else {
                kernel::entersyscall();
            }
            let c0 = counter.load(Ordering::Relaxed);
            // A long polled "device" wait: 100 ms of busy time on this core.
            let t0 = kernel::nanotime();
            while kernel::nanotime() - t0 < 100_000_000 {
                core::hint::spin_loop();
            }
            let c1 = counter.load(Ordering::Relaxed);
            kernel::exitsyscall();
            in_syscall.store(c1 - c0, Ordering::Relaxed);
            let h = kernel::runtime::proc::SYSCALL_HANDOFFS.load(Ordering::Relaxed) - h0;
            result.store(c1 - c0, Ordering::Relaxed);
            println!(
                "syscall_handoff: {} syscall: other goroutine made {} steps meanwhile (sysmon hand-offs {h})",
                if blocking { "blocking" } else { "plain" },
                c1 - c0
            );
            d2.done();
        });
        d2.wait();
        if ncpu > procs {
            assert!(result.load(Ordering::Relaxed) > 0, "the P was not handed off during the syscall");
        }
    }
    stop.store(true, Ordering::Relaxed);
    done.done();
    done.wait();
}

// ---- the cooperative check racing with asynchronous preemption -----------------------
//
// Regression: the check used to read stackguard0 twice; an asynchronous
// preemption between the reads (which resets the guard) turned a
// preemption request into a false "stack overflow". Run with a tiny slice
// (forcepreemptns=100000) so both kinds of preemption hit all the time.

#[ktest(params = "forcepreemptns=100000 hz=2000", output = ["check_under_preemption: 4 goroutines made "])]
fn check_under_preemption() {
    const N: u64 = 10_000;
    let workers = 4;
    let checks = leak(AtomicU64::new(0));
    let done = leak(Latch::new(workers));
    let c0 = COOP_PREEMPTS.load(Ordering::Relaxed);
    let a0 = ASYNC_PREEMPTS.load(Ordering::Relaxed);
    let r0 = kernel::runtime::preempt::ASYNC_REFUSED.load(Ordering::Relaxed);
    let t0 = kernel::nanotime();
    for _ in 0..workers {
        kernel::go(move || {
            // 500 ms of emulated time, in rounds of N checks.
            let start = kernel::nanotime();
            while kernel::nanotime() - start < 500_000_000 {
                for _ in 0..N {
                    kernel::morestack_check!();
                }
                checks.fetch_add(N, Ordering::Relaxed);
            }
            done.done();
        });
    }
    done.wait();
    println!(
        "check_under_preemption: {workers} goroutines made {} checks in {} ms; cooperative preemptions={}, asynchronous={} (refused {})",
        checks.load(Ordering::Relaxed),
        (kernel::nanotime() - t0) / 1_000_000,
        COOP_PREEMPTS.load(Ordering::Relaxed) - c0,
        ASYNC_PREEMPTS.load(Ordering::Relaxed) - a0,
        kernel::runtime::preempt::ASYNC_REFUSED.load(Ordering::Relaxed) - r0
    );
}

// ---- stack overflow ---------------------------------------------------------------------------

#[inline(never)]
#[allow(unconditional_recursion)] // on purpose: it ends in a stack overflow
fn recurse(n: u64, checked: bool) -> u64 {
    if checked {
        kernel::morestack_check!();
    }
    let buf = [n; 64];
    let buf = core::hint::black_box(buf);
    buf[(n % 64) as usize] + recurse(n + 1, checked) + 1
}

// The report names the goroutine that overflowed (it said which it is first).
#[ktest(smp = [1, 4], fatal = "fatal error: stack overflow", output = ["/^stack_overflow: recursing in goroutine (?P<g>[0-9]+)$/", "goroutine {g} [running]:"])]
fn stack_overflow() {
    kernel::go(|| {
        println!("stack_overflow: recursing in goroutine {}", kernel::runtime::api::goid());
        let r = recurse(0, false);
        println!("unreachable {r}");
    });
    loop {
        kernel::sleep(1_000_000);
    }
}

#[ktest(
    smp = [2],
    fatal = "fatal error: stack overflow: goroutine ",
    output = [
        "/^stack_overflow_checked: recursing in goroutine (?P<g>[0-9]+)$/",
        "/^fatal error: stack overflow: goroutine {g} sp=/",
        "goroutine {g} [running]:"
    ]
)]
fn stack_overflow_checked() {
    kernel::go(|| {
        println!("stack_overflow_checked: recursing in goroutine {}", kernel::runtime::api::goid());
        let r = recurse(0, true);
        println!("unreachable {r}");
    });
    loop {
        kernel::sleep(1_000_000);
    }
}

/// The syscall hand-off with a spare core and one P ...
#[ktest(smp = [2], params = "gomaxprocs=1", output = ["syscall_handoff: plain syscall: other goroutine made", "syscall_handoff: blocking syscall: other goroutine made"])]
fn syscall_handoff_gomaxprocs1() {
    syscall_handoff();
}

/// ... and with 2 Ps on 4 cores.
#[ktest(smp = [4], params = "gomaxprocs=2")]
fn syscall_handoff_gomaxprocs2() {
    syscall_handoff();
}

/// The forcepreemptns knob: a 2 ms slice.
#[ktest(smp = [1], params = "forcepreemptns=2000000", output = ["third goroutine finished 5 steps"])]
fn preempt_async_forcepreemptns() {
    preempt_async();
}

/// A time slice is never cut short. sysmon measures a slice from the start
/// that `execute` stamped (`P::slicestart`), not from its first sight of the
/// new `schedtick`: a goroutine with no safe point must run at least
/// `forcepreemptns` past its own slice's stamp before the goroutine it
/// readied into `runnext` gets the one P. A stamp that sysmon read from an
/// earlier slice would preempt it too soon.
#[ktest(smp = [1, 2, 4], params = "forcepreemptns=3000000")]
fn slice_not_cut_short() {
    use kernel::arch::x86_64::time::tsc_to_nanotime;
    let prev = kernel::gomaxprocs(1).unwrap();
    let slice = kernel::boot::params().forcepreemptns;
    for round in 0..5 {
        let stamp = leak(AtomicU64::new(0));
        let started = leak(AtomicU64::new(0));
        let ran = leak(AtomicU64::new(0));
        let stop = leak(AtomicBool::new(false));
        let done = leak(Latch::new(2));
        kernel::go(move || {
            // A slice of its own: through the global queue, not the parent's runnext
            // (a runnext chain shares one slice).
            kernel::gosched();
            started.store(kernel::nanotime(), Ordering::Relaxed);
            let p = kernel::runtime::proc::current_p();
            stamp.store(tsc_to_nanotime(p.slicestart.load(Ordering::Relaxed)), Ordering::Relaxed);
            kernel::go(move || {
                ran.store(kernel::nanotime(), Ordering::Relaxed);
                stop.store(true, Ordering::Relaxed);
                done.done();
            });
            while !stop.load(Ordering::Relaxed) {
                core::hint::spin_loop();
            }
            done.done();
        });
        done.wait();
        let (s, st, r) = (stamp.load(Ordering::Relaxed), started.load(Ordering::Relaxed), ran.load(Ordering::Relaxed));
        println!("slice: round {round}: stamped {} us before the goroutine's first line; the next goroutine ran {} us after the stamp", st.saturating_sub(s) / 1000, r.saturating_sub(s) / 1000);
        assert!(s != 0 && s <= st, "slice: the slice's stamp ({s} ns) is not before the goroutine's first line ({st} ns)");
        assert!(
            r >= s + slice,
            "slice: cut short: the next goroutine ran {} us after the slice began; forcepreemptns is {} us",
            (r - s) / 1000,
            slice / 1000
        );
    }
    kernel::gomaxprocs(prev).unwrap();
}

/// Go's `p.preempt`: a request made for a P, not for its goroutine, still
/// preempts whatever goroutine that P runs (`wantAsyncPreempt` checks both).
/// `preemptone` sets it beside `g.preempt`, and it is what is left of a
/// request when `execute` was switching a G in just then (it clears the new
/// G's `preempt` after storing `m.curg`). Here a goroutine sets its own P's
/// flag only, then spins with no safe point; sysmon will not end its slice
/// (`forcepreemptns=10s`), so only the next tick on its core, seeing the P's
/// flag, can preempt it. Without that check it spins to the 3 s deadline.
/// `schedule` clears the flag: it must be clear soon after the goroutine runs again.
#[ktest(smp = [1, 2, 4], params = "forcepreemptns=10000000000", output = ["/^preempt: p.preempt alone preempted the spinner within [0-9]+ us$/"])]
fn p_preempt_request() {
    use kernel::runtime::proc::{getg, getm};
    const DEADLINE_NS: u64 = 3_000_000_000;
    let done = leak(Latch::new(1));
    let result = leak(AtomicU64::new(0));
    kernel::go(move || {
        let pp = getm().p.load(Ordering::Relaxed);
        // SAFETY: the running goroutine's G and P are live (Gs and Ps are never freed).
        let (g, p) = unsafe { (&*getg(), &*pp) };
        let a0 = ASYNC_PREEMPTS.load(Ordering::Relaxed);
        let n0 = g.nexec.load(Ordering::Relaxed);
        let t0 = kernel::nanotime();
        assert!(!g.preempt.load(Ordering::Relaxed), "the spinner was asked to stop before the test asked its P");
        p.preempt.store(true, Ordering::Release);
        // No safe point: only an asynchronous preemption gets the goroutine
        // off its core, and `execute` counts every time it runs again.
        let mut dt = 0;
        while g.nexec.load(Ordering::Relaxed) == n0 {
            dt = kernel::nanotime() - t0;
            if dt > DEADLINE_NS {
                break;
            }
        }
        let preempted = g.nexec.load(Ordering::Relaxed) != n0;
        assert!(
            preempted,
            "a request for the P alone (p.preempt) did not preempt its goroutine within {} s: the asynchronous check must read it",
            DEADLINE_NS / 1_000_000_000
        );
        assert!(ASYNC_PREEMPTS.load(Ordering::Relaxed) > a0, "the spinner ran again without an asynchronous preemption");
        // The M that preempted us clears the flag in its next `schedule`, after
        // it queued us: another core can run us before that.
        let t1 = kernel::nanotime();
        while p.preempt.load(Ordering::Acquire) && kernel::nanotime() - t1 < DEADLINE_NS {
            core::hint::spin_loop();
        }
        assert!(!p.preempt.load(Ordering::Acquire), "schedule did not clear p.preempt within 3 s");
        result.store(dt / 1000, Ordering::Relaxed);
        done.done();
    });
    done.wait();
    println!("preempt: p.preempt alone preempted the spinner within {} us", result.load(Ordering::Relaxed));
}
