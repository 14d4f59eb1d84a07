//! The torture scenario, after Linux's rcutorture: for `duration=` seconds,
//! worker goroutines mix every part of the runtime at random, while the
//! invariants are checked all the time. Its random choices come from
//! `seed=` (0: taken from the TSC); the seed is printed, so a failing boot
//! can be rerun with the same choices (the interleaving on several cores is
//! not reproducible, the mix of operations is).
//!
//! Invariants:
//! - every message sent is received exactly once (a bitmap of message ids;
//!   a second receipt is an assertion failure at once);
//! - every goroutine spawned runs exactly once and exits (a bitmap of child
//!   ids, and the count at the end);
//! - counters updated under a `Mutex` are exact, a `Semaphore` never admits
//!   more holders than it has units, a `Once` runs its function once;
//! - a goroutine locked to its core stays there, also across syscalls;
//! - no goroutine runs on two cores (the runtime's own check in `execute`);
//! - a watchdog sees every P make progress: a P that stays `_Prunning` with
//!   the same `schedtick` for `STUCK_NS`, or no operation completing
//!   anywhere for as long, is reported with a scheduler dump (scheddetail)
//!   and a failure exit: never a silent hang.
//!
//! At the end it prints the operations by kind, preemptions, steals, parks
//! and wake-ups.
use crate::latch::Latch;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use gmp_core::rand::{mix64, FastRand};
use kernel::ktest::ktest;
use kernel::{after, println, select, Chan, Mutex, Once, Semaphore, WaitGroup};

/// A P that does not reschedule for this long, or no operation completing
/// for this long, is a hang (emulated time; the longest legitimate pause is
/// a stop-the-world or a 20 ms CPU hog, far below).
const STUCK_NS: u64 = 10_000_000_000;
/// Bitmap sizes: ids beyond them stop the producer (it then does other ops).
const MAX_MSGS: u64 = 1 << 22;
const MAX_CHILDREN: u64 = 1 << 21;
/// Shared channels (buffered and unbuffered) with one consumer each.
const NCHAN: usize = 4;

#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
enum Op {
    Spawn,
    Gosched,
    Send,
    SelectAfter,
    CloseChain,
    MutexOp,
    WaitGroupOp,
    OnceOp,
    SemaOp,
    Sleep,
    Locked,
    Syscall,
    SyscallBlock,
    Hog,
}
const NOPS: usize = 14;
const OP_NAMES: [&str; NOPS] = [
    "spawn",
    "gosched",
    "send",
    "select+after",
    "close",
    "mutex",
    "waitgroup",
    "once",
    "semaphore",
    "sleep",
    "lockosthread",
    "syscall",
    "syscallblock",
    "hog",
];
const ALL_OPS: [Op; NOPS] = [
    Op::Spawn,
    Op::Gosched,
    Op::Send,
    Op::SelectAfter,
    Op::CloseChain,
    Op::MutexOp,
    Op::WaitGroupOp,
    Op::OnceOp,
    Op::SemaOp,
    Op::Sleep,
    Op::Locked,
    Op::Syscall,
    Op::SyscallBlock,
    Op::Hog,
];

struct Bitmap(Vec<AtomicU64>);

impl Bitmap {
    fn new(bits: u64) -> Self {
        Bitmap((0..bits / 64).map(|_| AtomicU64::new(0)).collect())
    }
    /// Set bit `i`; false if it was set already.
    fn set(&self, i: u64) -> bool {
        let m = 1u64 << (i % 64);
        self.0[(i / 64) as usize].fetch_or(m, Ordering::AcqRel) & m == 0
    }
    fn count(&self) -> u64 {
        self.0.iter().map(|w| w.load(Ordering::Acquire).count_ones() as u64).sum()
    }
}

struct State {
    stop: AtomicBool,
    deadline: u64,
    ops: [AtomicU64; NOPS],
    /// Any operation completed (the watchdog's global progress).
    progress: AtomicU64,
    // Messages: ids handed out, sent (acknowledged), received (bitmap).
    next_msg: AtomicU64,
    sent: AtomicU64,
    received: Bitmap,
    chans: Vec<Chan<u64>>,
    // Children: ids handed out, started (bitmap), exited.
    next_child: AtomicU64,
    started: Bitmap,
    exited: AtomicU64,
    children: WaitGroup,
    // Mutex: both halves always equal, and equal to the increments done.
    pair: Mutex<(u64, u64)>,
    increments: AtomicU64,
    // Semaphore: at most SEMA_UNITS holders.
    sema: Semaphore,
    holders: AtomicU32,
}

const SEMA_UNITS: u32 = 3;

fn rng_for(seed: u64, worker: u64) -> FastRand {
    FastRand::new(mix64(seed ^ worker.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
}

fn spin_ns(ns: u64) {
    let t0 = kernel::nanotime();
    while kernel::nanotime() - t0 < ns {
        core::hint::spin_loop();
    }
}

fn done(st: &State, op: Op) {
    st.ops[op as usize].fetch_add(1, Ordering::Relaxed);
    st.progress.fetch_add(1, Ordering::Relaxed);
}

/// Briefly here, at odd core counts; the campaign (`./run-qemu.sh torture`)
/// runs it long and at random settings.
#[ktest(smp = [1, 3], params = "duration=8", also = [(3, "schedrandom=1")], timeout = 300, output = ["/^torture: ok \\(seed=[0-9]+\\)$/"])]
fn torture() {
    let p = kernel::boot::params();
    let seed = p.seed.filter(|&s| s != 0).unwrap_or_else(|| mix64(kernel::arch::x86_64::time::rdtsc()) | 1);
    let duration_ns = p.duration_s as u64 * 1_000_000_000;
    let ncpu = kernel::num_cpu();
    let nworkers = (3 * ncpu as u64).clamp(4, 24);
    println!(
        "torture: seed={seed} duration={}s ncpu={ncpu} workers={nworkers} (rerun: seed={seed} duration={})",
        p.duration_s, p.duration_s
    );
    let st: &'static State = Box::leak(Box::new(State {
        stop: AtomicBool::new(false),
        deadline: kernel::nanotime() + duration_ns,
        ops: Default::default(),
        progress: AtomicU64::new(0),
        next_msg: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        received: Bitmap::new(MAX_MSGS),
        chans: (0..NCHAN).map(|i| Chan::new([0, 1, 4, 64][i % 4])).collect(),
        next_child: AtomicU64::new(0),
        started: Bitmap::new(MAX_CHILDREN),
        exited: AtomicU64::new(0),
        children: WaitGroup::new(),
        pair: Mutex::new((0, 0)),
        increments: AtomicU64::new(0),
        sema: Semaphore::new(SEMA_UNITS),
        holders: AtomicU32::new(0),
    }));
    let a0 = kernel::runtime::preempt::ASYNC_PREEMPTS.load(Ordering::Relaxed);
    let c0 = kernel::runtime::preempt::COOP_PREEMPTS.load(Ordering::Relaxed);

    // One consumer per shared channel, until it is closed and drained.
    let consumers: &'static Latch = Box::leak(Box::new(Latch::new(NCHAN as u64)));
    for c in st.chans.iter() {
        let c = c.clone();
        kernel::go(move || {
            for id in c.iter() {
                assert!(st.received.set(id), "torture: message {id} received twice");
            }
            consumers.done();
        });
    }

    // The watchdog: every P makes progress, and so does the whole.
    let wd_done: &'static Latch = Box::leak(Box::new(Latch::new(1)));
    kernel::go(move || watchdog(st, wd_done));

    // GOMAXPROCS changes, from their own goroutine (a few per second).
    let gmp_done: &'static Latch = Box::leak(Box::new(Latch::new(1)));
    kernel::go(move || {
        let mut r = rng_for(seed, 1000);
        let mut changes = 0u64;
        while !st.stop.load(Ordering::Acquire) {
            kernel::sleep(10_000_000 + (r.next_u32() % 40) as u64 * 1_000_000);
            if ncpu > 1 {
                let n = 1 + r.next_u32() % ncpu;
                kernel::gomaxprocs(n).expect("valid GOMAXPROCS");
                changes += 1;
            }
        }
        kernel::gomaxprocs(ncpu).expect("valid GOMAXPROCS");
        println!("torture: {changes} GOMAXPROCS changes");
        gmp_done.done();
    });

    let workers: &'static Latch = Box::leak(Box::new(Latch::new(nworkers)));
    for w in 0..nworkers {
        kernel::go(move || {
            worker(st, rng_for(seed, w));
            workers.done();
        });
    }

    // Run until the deadline, then stop everything and check.
    while kernel::nanotime() < st.deadline {
        kernel::sleep(50_000_000);
    }
    st.stop.store(true, Ordering::Release);
    workers.wait();
    gmp_done.wait();
    st.children.wait();
    for c in st.chans.iter() {
        c.close();
    }
    consumers.wait();
    wd_done.wait();

    // The invariants, exactly.
    let sent = st.sent.load(Ordering::Acquire);
    let received = st.received.count();
    let spawned = st.next_child.load(Ordering::Acquire).min(MAX_CHILDREN);
    let started = st.started.count();
    let exited = st.exited.load(Ordering::Acquire);
    let (a, b) = *st.pair.lock();
    let incs = st.increments.load(Ordering::Acquire);
    println!("torture: messages sent={sent} received={received}; goroutines spawned={spawned} ran={started} exited={exited}; mutex pair=({a},{b}) increments={incs}");
    assert_eq!(sent, received, "messages lost or duplicated");
    assert_eq!(spawned, started, "a spawned goroutine never ran");
    assert_eq!(spawned, exited, "a spawned goroutine never exited");
    assert_eq!((a, b), (incs, incs), "a counter under the Mutex is off");
    assert_eq!(st.sema.available(), SEMA_UNITS, "semaphore units lost");

    let mut line = alloc::string::String::new();
    let mut total = 0;
    for (i, name) in OP_NAMES.iter().enumerate() {
        let n = st.ops[i].load(Ordering::Relaxed);
        total += n;
        line += &alloc::format!(" {name}={n}");
    }
    let steals: u64 = kernel::runtime::proc::allm_slice().map(|m| m.steals.load(Ordering::Relaxed)).sum();
    let parks: u64 = kernel::runtime::proc::allm_slice().map(|m| m.parks.load(Ordering::Relaxed)).sum();
    let wakeups: u64 = kernel::runtime::proc::allm_slice().map(|m| m.wakeups.load(Ordering::Relaxed)).sum();
    println!("torture: {total} operations:{line}");
    println!(
        "torture: preemptions async={} cooperative={}; steals={steals} M parks={parks} wakeups={wakeups}",
        kernel::runtime::preempt::ASYNC_PREEMPTS.load(Ordering::Relaxed) - a0,
        kernel::runtime::preempt::COOP_PREEMPTS.load(Ordering::Relaxed) - c0,
    );
    for (i, n) in st.ops.iter().enumerate() {
        // With a few seconds every kind must have happened.
        if p.duration_s >= 5 && ALL_OPS[i] != Op::Spawn {
            assert!(n.load(Ordering::Relaxed) > 0, "torture: no {} operation ran", OP_NAMES[i]);
        }
    }
    println!("torture: ok (seed={seed})");
}

fn watchdog(st: &'static State, done: &'static Latch) {
    use kernel::runtime::runtime2::P_RUNNING;
    let mut last_tick = [(0u32, 0u64); 256];
    let mut last_progress = (st.progress.load(Ordering::Relaxed), kernel::nanotime());
    while !st.stop.load(Ordering::Acquire) {
        kernel::sleep(100_000_000);
        let now = kernel::nanotime();
        for pp in kernel::runtime::proc::allp_slice() {
            let i = pp.id as usize;
            let t = pp.schedtick.load(Ordering::Relaxed);
            let running = pp.status.load(Ordering::Relaxed) == P_RUNNING;
            if !running || t != last_tick[i].0 || last_tick[i].1 == 0 {
                last_tick[i] = (t, now);
            } else if now - last_tick[i].1 > STUCK_NS {
                kernel::runtime::trace::schedtrace(true);
                kernel::runtime::fatal::throw("torture: watchdog: a P made no progress for 10 s");
            }
        }
        let pr = st.progress.load(Ordering::Relaxed);
        if pr != last_progress.0 {
            last_progress = (pr, now);
        } else if now - last_progress.1 > STUCK_NS {
            kernel::runtime::trace::schedtrace(true);
            kernel::runtime::fatal::throw("torture: watchdog: no operation completed for 10 s");
        }
    }
    done.done();
}

fn pick(r: &mut FastRand) -> Op {
    // Weights: cheap operations often, heavy ones rarely.
    const W: [u32; NOPS] = [12, 10, 14, 6, 3, 10, 3, 2, 6, 6, 2, 3, 2, 2];
    let total: u32 = W.iter().sum();
    let mut x = r.next_u32() % total;
    for (i, w) in W.iter().enumerate() {
        if x < *w {
            return ALL_OPS[i];
        }
        x -= w;
    }
    Op::Gosched
}

fn worker(st: &'static State, mut r: FastRand) {
    while !st.stop.load(Ordering::Acquire) && kernel::nanotime() < st.deadline {
        let op = pick(&mut r);
        match op {
            Op::Spawn => {
                let id = st.next_child.fetch_add(1, Ordering::Relaxed);
                if id >= MAX_CHILDREN {
                    continue;
                }
                st.children.add(1);
                let small = r.next_u32() % 4;
                kernel::go(move || {
                    assert!(st.started.set(id), "torture: goroutine {id} ran twice");
                    match small {
                        0 => kernel::gosched(),
                        1 => kernel::sleep(100_000),
                        _ => {}
                    }
                    st.exited.fetch_add(1, Ordering::AcqRel);
                    st.children.done();
                });
            }
            Op::Gosched => kernel::gosched(),
            Op::Send => {
                let id = st.next_msg.fetch_add(1, Ordering::Relaxed);
                if id >= MAX_MSGS {
                    continue;
                }
                st.chans[(r.next_u32() as usize) % NCHAN].send(id);
                st.sent.fetch_add(1, Ordering::AcqRel);
            }
            Op::SelectAfter => {
                // Send with a timeout: either the consumer takes it, or the
                // timer wins and the message is not sent (so not counted).
                let id = st.next_msg.fetch_add(1, Ordering::Relaxed);
                if id >= MAX_MSGS {
                    continue;
                }
                let c = &st.chans[(r.next_u32() as usize) % NCHAN];
                let t = after(50_000 + (r.next_u32() % 2000) as u64 * 1000);
                select! {
                    send(c, id) => { st.sent.fetch_add(1, Ordering::AcqRel); },
                    recv(t) -> _ => {},
                }
            }
            Op::CloseChain => {
                // A private channel: send n, close; the receiver sees n then
                // the close.
                let n = r.next_u32() % 20;
                let c: Chan<u32> = Chan::new((r.next_u32() % 3) as usize);
                let got: &'static AtomicU32 = Box::leak(Box::new(AtomicU32::new(u32::MAX)));
                let l: &'static Latch = Box::leak(Box::new(Latch::new(1)));
                let rc = c.clone();
                kernel::go(move || {
                    let mut k = 0;
                    let mut expect = 0;
                    while let Some(v) = rc.recv() {
                        assert_eq!(v, expect, "torture: channel reordered or lost a value");
                        expect += 1;
                        k += 1;
                    }
                    got.store(k, Ordering::Release);
                    l.done();
                });
                for v in 0..n {
                    c.send(v);
                }
                c.close();
                l.wait();
                assert_eq!(got.load(Ordering::Acquire), n, "torture: receiver saw the wrong count before close");
            }
            Op::MutexOp => {
                let mut g = st.pair.lock();
                g.0 += 1;
                if r.next_u32() % 8 == 0 {
                    kernel::gosched(); // hold it across a reschedule
                }
                g.1 += 1;
                assert_eq!(g.0, g.1, "torture: Mutex admitted two holders");
                st.increments.fetch_add(1, Ordering::Relaxed);
            }
            Op::WaitGroupOp => {
                let wg: &'static WaitGroup = Box::leak(Box::new(WaitGroup::new()));
                let n = 1 + r.next_u32() % 6;
                let count: &'static AtomicU32 = Box::leak(Box::new(AtomicU32::new(0)));
                wg.add(n as i32);
                for _ in 0..n {
                    kernel::go(move || {
                        count.fetch_add(1, Ordering::Relaxed);
                        wg.done();
                    });
                }
                wg.wait();
                assert_eq!(count.load(Ordering::Relaxed), n, "torture: WaitGroup.wait returned early");
            }
            Op::OnceOp => {
                let once: &'static Once = Box::leak(Box::new(Once::new()));
                let runs: &'static AtomicU32 = Box::leak(Box::new(AtomicU32::new(0)));
                let wg: &'static WaitGroup = Box::leak(Box::new(WaitGroup::new()));
                wg.add(4);
                for _ in 0..4 {
                    kernel::go(move || {
                        once.call_once(|| {
                            runs.fetch_add(1, Ordering::Relaxed);
                            kernel::gosched();
                        });
                        assert_eq!(runs.load(Ordering::Relaxed), 1, "torture: Once returned before its function ran");
                        wg.done();
                    });
                }
                wg.wait();
                assert_eq!(runs.load(Ordering::Relaxed), 1, "torture: Once ran twice");
            }
            Op::SemaOp => {
                st.sema.acquire();
                let h = st.holders.fetch_add(1, Ordering::AcqRel) + 1;
                assert!(h <= SEMA_UNITS, "torture: semaphore admitted {h} holders (units {SEMA_UNITS})");
                if r.next_u32() % 2 == 0 {
                    kernel::gosched();
                }
                st.holders.fetch_sub(1, Ordering::AcqRel);
                st.sema.release();
            }
            Op::Sleep => kernel::sleep((r.next_u32() % 2000) as u64 * 1000),
            Op::Locked => {
                kernel::lock_os_thread();
                let cpu = kernel::cpu_id();
                for _ in 0..1 + r.next_u32() % 4 {
                    match r.next_u32() % 3 {
                        0 => kernel::gosched(),
                        1 => kernel::sleep(200_000),
                        _ => {
                            kernel::entersyscall();
                            spin_ns(100_000);
                            kernel::exitsyscall();
                        }
                    }
                    assert_eq!(kernel::cpu_id(), cpu, "torture: a locked goroutine moved to another core");
                }
                kernel::unlock_os_thread();
            }
            Op::Syscall => {
                kernel::entersyscall();
                spin_ns((r.next_u32() % 3000) as u64 * 1000);
                kernel::exitsyscall();
            }
            Op::SyscallBlock => {
                kernel::entersyscallblock();
                spin_ns((r.next_u32() % 3000) as u64 * 1000);
                kernel::exitsyscall();
            }
            Op::Hog => {
                // No safe point at all: only asynchronous preemption (or
                // the end of the spin) gives the P to someone else.
                let ns = 2_000_000 + (r.next_u32() % 18) as u64 * 1_000_000;
                let t0 = kernel::nanotime();
                while kernel::nanotime() - t0 < ns {
                    core::hint::spin_loop();
                }
            }
        }
        done(st, op);
    }
}
