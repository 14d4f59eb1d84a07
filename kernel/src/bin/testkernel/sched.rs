//! Scenarios of the scheduler issue: ports of Go's proc_test.go tests, and
//! stress scenarios that count every goroutine.
use kernel::ktest::ktest;
use crate::latch::Latch;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use kernel::println;


fn leak<T>(v: T) -> &'static T {
    Box::leak(Box::new(v))
}

/// Spin (no safe point) until `cond`, or panic after `secs` of emulated time.
fn spin_until(what: &str, secs: u64, cond: impl Fn() -> bool) {
    let deadline = kernel::nanotime() + secs * 1_000_000_000;
    while !cond() {
        core::hint::spin_loop();
        if kernel::nanotime() > deadline {
            panic!("{what}: not reached within {secs} s");
        }
    }
}

// ---- TestGoroutineParallelism ----------------------------------------------
//
// P goroutines pass a ticket around by spinning on an atomic: goroutine p
// waits for the value P*i + p. They can only finish if all P of them run at
// the same time, on P different cores. No safe point in the spin: a
// scheduler that did not wake idle cores would leave one spinning forever
// (caught by the 10 s bound).

/// The spin bound of one ticket wait, and whether to cut a scenario short.
///
/// Under TCG each vCPU is a host thread. With far more vCPUs than host cores
/// (64 or 128 on this 2-core machine) each hand-off of the ticket waits for
/// the host to schedule the next vCPU's thread, and the host cycles through
/// all of them: a round of `procs` hand-offs takes time growing with
/// `procs²` (measured here: 10 tries take 4 s at 8 Ps, 25 s at 16, 49 s at
/// 32). Up to 32 Ps the bound is the 10 s of before; above, it grows as
/// `procs²` and the scenarios run one try, so that `-smp 64` and `-smp 128`
/// still check that all Ps run at once without taking hours.
fn big_machine_bound(procs: u64) -> (u64, bool) {
    let scale = (procs * procs).div_ceil(32 * 32).max(1);
    (10 * scale, procs > 32)
}

fn parallelism_tries(tries: u32) {
    let procs = kernel::current_gomaxprocs() as u64;
    let (bound, big) = big_machine_bound(procs);
    let tries = if big { 1 } else { tries };
    for _ in 0..tries {
        let x = leak(AtomicU64::new(0));
        let done = leak(Latch::new(procs));
        for p in 0..procs {
            kernel::go(move || {
                for i in 0..3u64 {
                    let expected = procs * i + p;
                    spin_until("parallelism ticket", bound, || x.load(Ordering::Acquire) == expected);
                    x.store(expected + 1, Ordering::Release);
                }
                done.done();
            });
        }
        done.wait();
        assert_eq!(x.load(Ordering::Acquire), 3 * procs);
    }
    println!("parallelism: {tries} tries with {procs} goroutines spinning on {procs} Ps: ok");
}

#[ktest(smp = [1, 2, 4], also = [(4, "schedrandom=1")], output = ["with {smp} goroutines spinning on {smp} Ps: ok"])]
fn parallelism() {
    parallelism_tries(10);
}

/// Version 2: first let every other core go idle (halt), so that starting
/// the goroutines depends on wakep's IPIs reaching halted cores.
#[ktest(smp = [1, 2, 4], also = [(4, "schedrandom=1")], output = ["parallelism2: "])]
fn parallelism2() {
    let (_, big) = big_machine_bound(kernel::current_gomaxprocs() as u64);
    for _ in 0..if big { 1 } else { 5 } {
        kernel::sleep(20_000_000);
        let idle = kernel::runtime::proc::midle_count();
        println!("parallelism2: {idle} idle Ms before spawning");
        parallelism_tries(1);
    }
}

// ---- TestYieldProgress -------------------------------------------------------

#[ktest(smp = [1, 2, 4], also = [(4, "schedrandom=1")], output = ["yield_progress: ok"])]
fn yield_progress() {
    let stop = leak(AtomicBool::new(false));
    let done = leak(Latch::new(1));
    kernel::go(move || {
        while !stop.load(Ordering::Acquire) {
            kernel::gosched();
        }
        done.done();
    });
    kernel::sleep(10_000_000);
    stop.store(true, Ordering::Release);
    done.wait();
    println!("yield_progress: ok");
}

// ---- Gosched goes to the tail of the global queue -------------------------------
//
// K goroutines on one P, each calling Gosched N times, log which of them ran
// each turn. A yield puts the G at the tail of the global queue (Go's
// goschedImpl), and a P with an empty local queue takes the global queue's
// head (with a batch behind it, in order), so once each has yielded the
// turns go round: between two turns of one goroutine come the others' turns,
// once each. Two things may bend that: the 1-in-61 check of the global queue
// (the G that just yielded can come straight back), and `schedrandom=1`,
// which shuffles each batch moved to the local queue. Neither lets a G wait
// for more than two batches, 2K - 1 other turns. A yield that lost its G, put
// it at the head, or ran it twice would show here as a missing turn, a
// repeat, or a longer wait. A preemption between a turn's log and its yield
// (a slice limit, forcepreemptns, met on a busy host) also sends a goroutine
// to the tail once more: each goroutine counts its runs (`g.nexec`), and the
// wait is checked only when nothing was preempted.
//
// A yield takes one of two paths (proc.rs, gosched_fast), and both show up
// here: with the local queue empty, the put and the take share one hold of
// sched.lock; with a G in the local queue, or on the 61st schedtick, the G
// is put on its own and schedule() chooses.

#[ktest(smp = [1, 2, 4], also = [(4, "schedrandom=1")], output = ["gosched_fair: 5 goroutines x 2000 yields at GOMAXPROCS 1"])]
fn gosched_fair() {
    const K: usize = 5;
    const N: usize = 2000;
    let prev = kernel::gomaxprocs(1).expect("GOMAXPROCS 1");
    let turns: &'static [AtomicU8] = Box::leak((0..K * N).map(|_| AtomicU8::new(u8::MAX)).collect::<Vec<_>>().into_boxed_slice());
    let next = leak(AtomicU64::new(0));
    let extra_runs = leak(AtomicU64::new(0));
    let done = leak(Latch::new(K as u64));
    for id in 0..K {
        kernel::go(move || {
            // SAFETY: the running goroutine's G is live (Gs are never freed).
            let g = unsafe { &*kernel::runtime::proc::getg() };
            let n0 = g.nexec.load(Ordering::Relaxed);
            for _ in 0..N {
                let t = next.fetch_add(1, Ordering::Relaxed) as usize;
                turns[t].store(id as u8, Ordering::Relaxed);
                kernel::gosched();
            }
            // `execute` counts every run: one per yield, more if preempted.
            let runs = g.nexec.load(Ordering::Relaxed) - n0;
            assert!(runs >= N as u64, "goroutine {id} ran {runs} times after {N} yields");
            extra_runs.fetch_add(runs - N as u64, Ordering::Relaxed);
            done.done();
        });
    }
    done.wait();
    kernel::gomaxprocs(prev).expect("restore GOMAXPROCS");
    assert_eq!(next.load(Ordering::Relaxed) as usize, K * N, "turns taken");
    let mut count = [0usize; K];
    let mut last = [usize::MAX; K];
    let mut max_wait = 0;
    let mut back_to_back = 0;
    for (t, slot) in turns.iter().enumerate() {
        let id = slot.load(Ordering::Relaxed) as usize;
        assert!(id < K, "turn {t} was never logged");
        count[id] += 1;
        if last[id] != usize::MAX {
            let others = t - last[id] - 1;
            if others == 0 {
                back_to_back += 1;
            }
            assert!(
                others <= 2 * K - 1 || extra_runs.load(Ordering::Relaxed) != 0,
                "goroutine {id} waited {others} turns (turn {t}); a yield goes to the global queue's tail, \
                 so it waits at most 2K - 1 = {}",
                2 * K - 1
            );
            max_wait = max_wait.max(others);
        }
        last[id] = t;
    }
    assert!(count.iter().all(|&c| c == N), "turns per goroutine {count:?}, want {N} each");
    let preempted = extra_runs.load(Ordering::Relaxed);
    println!(
        "gosched_fair: {K} goroutines x {N} yields at GOMAXPROCS 1: turns per goroutine {count:?}, \
         longest wait {max_wait} turns (checked only with no preemption: {preempted}), {back_to_back} back-to-back"
    );
}

// ---- spawn storm ---------------------------------------------------------------

#[ktest(smp = [1, 2, 4], also = [(4, "schedrandom=1")], output = ["spawn_storm: 100000 goroutines, never ran=0, ran twice=0"])]
fn spawn_storm() {
    const N: usize = 100_000;
    let ran: &'static [AtomicU8] = Box::leak((0..N).map(|_| AtomicU8::new(0)).collect::<Vec<_>>().into_boxed_slice());
    let done = leak(Latch::new(N as u64));
    let cpus: &'static [AtomicU64; kernel::MAX_CPUS] = leak([const { AtomicU64::new(0) }; kernel::MAX_CPUS]);
    let t0 = kernel::nanotime();
    for (i, slot) in ran.iter().enumerate() {
        let _ = i;
        kernel::go(move || {
            slot.fetch_add(1, Ordering::Relaxed);
            cpus[kernel::cpu_id()].fetch_add(1, Ordering::Relaxed);
            done.done();
        });
    }
    done.wait();
    let dt = kernel::nanotime() - t0;
    let mut twice = 0;
    let mut never = 0;
    for s in ran {
        match s.load(Ordering::Relaxed) {
            0 => never += 1,
            1 => {}
            _ => twice += 1,
        }
    }
    let per_cpu: Vec<u64> = (0..kernel::num_cpu() as usize).map(|c| cpus[c].load(Ordering::Relaxed)).collect();
    println!("spawn_storm: {N} goroutines, never ran={never}, ran twice={twice}, per cpu {per_cpu:?}, {} ms", dt / 1_000_000);
    assert!(never == 0 && twice == 0, "every goroutine must run exactly once");
    println!("spawn_storm: goroutines alive after: {}", kernel::num_goroutine());
}

// ---- nested spawn tree ---------------------------------------------------------

fn tree(depth: u32, sum: &'static AtomicU64, nodes: &'static AtomicU64) {
    nodes.fetch_add(1, Ordering::Relaxed);
    sum.fetch_add(depth as u64, Ordering::Relaxed);
    if depth == 0 {
        return;
    }
    let done = leak(Latch::new(2));
    for _ in 0..2 {
        kernel::go(move || {
            tree(depth - 1, sum, nodes);
            done.done();
        });
    }
    done.wait();
}

#[ktest(smp = [1, 2, 4], also = [(4, "schedrandom=1")], output = ["spawn_tree: depth 11: 4095 nodes"])]
fn spawn_tree() {
    const DEPTH: u32 = 11;
    let sum = leak(AtomicU64::new(0));
    let nodes = leak(AtomicU64::new(0));
    tree(DEPTH, sum, nodes);
    let want_nodes = (1u64 << (DEPTH + 1)) - 1;
    // sum over levels d of d * 2^(DEPTH-d)
    let want_sum: u64 = (0..=DEPTH).map(|d| d as u64 * (1u64 << (DEPTH - d))).sum();
    println!("spawn_tree: depth {DEPTH}: {} nodes, sum {}", nodes.load(Ordering::Relaxed), sum.load(Ordering::Relaxed));
    assert_eq!(nodes.load(Ordering::Relaxed), want_nodes);
    assert_eq!(sum.load(Ordering::Relaxed), want_sum);
}

// ---- LockOSThread --------------------------------------------------------------

/// While a goroutine is locked, its core runs nothing else: the workers
/// check they never run on the locked core, and (with more than one core)
/// still make progress elsewhere.
#[ktest(smp = [1, 2, 4], also = [(4, "schedrandom=1")], output = ["200 yields and sleeps, always on cpu", ", 0 of them on the locked core"])]
fn lock_os_thread() {
    const NONE: u64 = u64::MAX;
    let stop = leak(AtomicBool::new(false));
    let others = leak(AtomicU64::new(0));
    let locked_cpu = leak(AtomicU64::new(NONE));
    let violations = leak(AtomicU64::new(0));
    let done = leak(Latch::new(1));
    let workers = leak(Latch::new(4));
    for _ in 0..4 {
        kernel::go(move || {
            while !stop.load(Ordering::Acquire) {
                let _pg = kernel::PreemptGuard::new();
                if locked_cpu.load(Ordering::Acquire) == kernel::cpu_id() as u64 {
                    violations.fetch_add(1, Ordering::Relaxed);
                }
                drop(_pg);
                others.fetch_add(1, Ordering::Relaxed);
                kernel::gosched();
            }
            workers.done();
        });
    }
    kernel::go(move || {
        kernel::lock_os_thread();
        let home = kernel::cpu_id();
        locked_cpu.store(home as u64, Ordering::Release);
        for i in 0..200 {
            if i % 2 == 0 {
                kernel::gosched();
            } else {
                kernel::sleep(200_000);
            }
            assert_eq!(kernel::cpu_id(), home, "locked goroutine moved from cpu{home}");
        }
        locked_cpu.store(NONE, Ordering::Release);
        kernel::unlock_os_thread();
        println!("lock_os_thread: 200 yields and sleeps, always on cpu{home}");
        done.done();
    });
    done.wait();
    stop.store(true, Ordering::Release);
    workers.wait();
    println!(
        "lock_os_thread: other goroutines made {} steps, {} of them on the locked core",
        others.load(Ordering::Relaxed),
        violations.load(Ordering::Relaxed)
    );
    assert_eq!(violations.load(Ordering::Relaxed), 0, "a goroutine ran on the core of a locked goroutine");
    if kernel::num_cpu() > 1 {
        assert!(others.load(Ordering::Relaxed) > 0, "other goroutines must progress on the other cores");
    }
}

/// A locked goroutine keeps sleeping (its core waits for it, holding a P)
/// while another goroutine stops the world 100 times to change GOMAXPROCS.
#[ktest(smp = [1, 2, 4], also = [(4, "schedrandom=1")], output = ["slept 100 times; moved 0 times"])]
fn lock_os_thread_stw() {
    let ncpu = kernel::num_cpu();
    let done = leak(Latch::new(1));
    let moved = leak(AtomicU64::new(0));
    kernel::go(move || {
        kernel::lock_os_thread();
        let home = kernel::cpu_id();
        for _ in 0..100 {
            kernel::sleep(300_000);
            if kernel::cpu_id() != home {
                moved.fetch_add(1, Ordering::Relaxed);
            }
        }
        kernel::unlock_os_thread();
        done.done();
    });
    for i in 0..100u32 {
        kernel::gomaxprocs(1 + i % ncpu).unwrap();
    }
    done.wait();
    kernel::gomaxprocs(ncpu).unwrap();
    println!("lock_os_thread_stw: 100 stop-the-worlds while a locked goroutine slept 100 times; moved {} times", moved.load(Ordering::Relaxed));
    assert_eq!(moved.load(Ordering::Relaxed), 0);
}

// ---- GOMAXPROCS churn ------------------------------------------------------------

#[ktest(smp = [1, 2, 4], also = [(4, "schedrandom=1")], output = ["gomaxprocs_churn: 1000 changes", "none lost, stacks back"])]
fn gomaxprocs_churn() {
    let ncpu = kernel::num_cpu();
    // First a burst of 2000 goroutines alive at once, so that the Ps' free
    // lists hold more dead Gs (with their stacks) than the scavenger keeps
    // for good: the changes below move them to the global list.
    const BURST: u64 = 2000;
    let gate: kernel::Chan<()> = kernel::Chan::new(0);
    let burst_done = leak(Latch::new(BURST));
    for _ in 0..BURST {
        let gate = gate.clone();
        kernel::go(move || {
            assert!(gate.recv().is_none(), "the gate is only closed");
            burst_done.done();
        });
    }
    gate.close();
    burst_done.wait();
    let stop = leak(AtomicBool::new(false));
    let spawned = leak(AtomicU64::new(0));
    let finished = leak(AtomicU64::new(0));
    let sleepers = leak(AtomicU64::new(0));
    let spawner_done = leak(Latch::new(1));
    kernel::go(move || {
        while !stop.load(Ordering::Acquire) {
            spawned.fetch_add(1, Ordering::Relaxed);
            let sleep = spawned.load(Ordering::Relaxed) % 16 == 0;
            kernel::go(move || {
                if sleep {
                    kernel::sleep(100_000);
                    sleepers.fetch_add(1, Ordering::Relaxed);
                }
                finished.fetch_add(1, Ordering::Relaxed);
            });
            if spawned.load(Ordering::Relaxed) % 8 == 0 {
                kernel::gosched();
            }
        }
        spawner_done.done();
    });
    const CHANGES: u32 = 1000;
    let mut seen = [0u32; 65];
    for i in 0..CHANGES {
        let n = 1 + (i * 7 + i / 3) % ncpu;
        let prev = kernel::gomaxprocs(n).expect("valid GOMAXPROCS");
        assert!((1..=ncpu).contains(&prev));
        assert_eq!(kernel::current_gomaxprocs(), n);
        seen[n as usize] += 1;
        if i % 50 == 0 {
            kernel::gosched();
        }
    }
    stop.store(true, Ordering::Release);
    spawner_done.wait();
    let want = spawned.load(Ordering::Relaxed);
    let deadline = kernel::nanotime() + 30_000_000_000;
    while finished.load(Ordering::Relaxed) != want {
        assert!(kernel::nanotime() < deadline, "lost goroutines: {} of {want} finished", finished.load(Ordering::Relaxed));
        kernel::sleep(1_000_000);
    }
    kernel::gomaxprocs(ncpu).unwrap();
    // A P that stops existing puts its free Gs, stacks mapped, on the
    // global list (gfpurge), and each change trims every P's list there
    // too: the stack scavenger must still give those stacks back.
    let deadline = kernel::nanotime() + 10_000_000_000;
    while !kernel::runtime::proc::gfree_settled() {
        assert!(kernel::nanotime() < deadline, "the free Gs' stacks did not come back within 10 s of the last change");
        kernel::sleep(1_000_000);
    }
    println!(
        "gomaxprocs_churn: {CHANGES} changes ({:?}), {want} goroutines spawned and finished ({} slept), none lost, stacks back",
        &seen[1..=ncpu as usize],
        sleepers.load(Ordering::Relaxed)
    );
}

/// Holds at any core count (the range is checked against `num_cpu` in the
/// code; the output patterns follow `{smp}`), so `--smp` runs it anywhere.
#[ktest(smp = [2], output = ["gomaxprocs(0) = {smp} (a query)", "/GOMAXPROCS\\([0-9]+\\) is out of range: must be 1\\.\\.={smp} \\(the number of cores\\)/"])]
fn gomaxprocs_invalid() {
    let ncpu = kernel::num_cpu();
    // GOMAXPROCS(0) is Go's query: the value, no change, no error.
    assert_eq!(kernel::gomaxprocs(0), Ok(ncpu));
    kernel::gomaxprocs(1).unwrap();
    assert_eq!(kernel::gomaxprocs(0), Ok(1));
    assert_eq!(kernel::gomaxprocs(ncpu), Ok(1));
    println!("gomaxprocs_invalid: gomaxprocs(0) = {} (a query)", kernel::gomaxprocs(0).unwrap());
    let e = kernel::gomaxprocs(ncpu + 1).unwrap_err();
    println!("gomaxprocs_invalid: {e}");
    assert_eq!(alloc::format!("{e}"), alloc::format!("GOMAXPROCS({}) is out of range: must be 1..={ncpu} (the number of cores)", ncpu + 1));
    assert_eq!(kernel::current_gomaxprocs(), ncpu);
}

// ---- deadlock --------------------------------------------------------------------

#[ktest(smp = [1, 2, 4], fatal = "fatal error: all goroutines are asleep - deadlock!", output = ["goroutine 1 [chan receive]:", "[chan send]:"])]
fn deadlock() {
    let counter = leak(AtomicU32::new(0));
    kernel::go(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        kernel::park(None, core::ptr::null_mut(), kernel::WaitReason::ChanSend);
    });
    println!("deadlock: main goroutine blocks forever");
    kernel::park(None, core::ptr::null_mut(), kernel::WaitReason::ChanReceive);
    unreachable!("parked forever");
}

/// Every core locked to a goroutine that waits for one that cannot run (the
/// README's LockOSThread limit): a deadlock report that says why, naming the
/// runnable goroutine and the locked one.
#[ktest(
    smp = [1],
    smp_only,
    fatal = "fatal error: all goroutines are asleep - deadlock!",
    output = ["runtime: every core (1) is locked (LockOSThread) to a goroutine that waits", "goroutine 1 [runnable]:", "[chan receive]:"]
)]
fn deadlock_locked_core() {
    let c: kernel::Chan<u32> = kernel::Chan::new(0);
    let rx = c.clone();
    kernel::go(move || {
        kernel::lock_os_thread();
        rx.recv();
    });
    println!("deadlock_locked_core: main sends to the locked goroutine, which holds the only core");
    kernel::sleep(1_000_000);
    c.send(1);
    unreachable!("the send completed");
}

/// The `gomaxprocs` boot parameter: 2 Ps on 4 cores.
#[ktest(smp = [4], params = "gomaxprocs=2", output = ["with 2 goroutines spinning on 2 Ps: ok"])]
fn parallelism_gomaxprocs_param() {
    parallelism();
}

/// Misuse of the runtime API: yielding while holding a preempt guard (the
/// guard pins the goroutine to this core's P, and the scheduler would move
/// it) is a fatal error that names the call, the count and the goroutine,
/// not a hang or a corrupted run queue. (`check_no_locks`; its report is out
/// of line since the switch paths inline the check.)
#[ktest(smp = [1, 2, 4], fatal = "fatal error: gosched: called while holding 1 runtime lock(s) or preempt guard(s)", output = ["/^goroutine [0-9]+ \\[running\\]:/"])]
fn gosched_holding_preempt_guard() {
    let _pg = kernel::PreemptGuard::new();
    kernel::gosched();
    unreachable!("gosched with a preempt guard held returned");
}
