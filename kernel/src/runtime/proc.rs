//! The scheduler: Go's proc.go on bare metal.
//!
//! Read this beside `runtime/proc.go` (and the seed document): the functions
//! have Go's names and do what Go's do, in the same order.
//!
//! ```text
//!   newproc ──> runqput(next) ──> wakep ──> startm ──IPI──> (idle core) stopm returns
//!                                                             │
//!   schedule ──> findRunnable ──> execute ──> gogo ──> goroutine runs
//!      ^            │ local runq, 1/61 global, global, stealWork (4 passes), park
//!      └── mcall(park_m | gosched_m | goexit0 | gopreempt_m) <── goroutine stops
//! ```
//!
//! ## Worker parking and unparking (spinning Ms and IPI wake-ups)
//!
//! Go's problem, and ours: keep enough cores awake to run the runnable Gs,
//! but halt the others, without ever sleeping while work is waiting.
//! Go rejects a centralised scheduler state and rejects waking a core on
//! every `runqput` (too many IPIs); it keeps a count of *spinning* Ms (Ms
//! with a P, looking for work) and follows two rules:
//!
//! 1. A submitter (`newproc`, `ready`) puts the G in a run queue, then calls
//!    `wakep`, which starts a spinning M only if none is spinning already
//!    (`nmspinning` CAS 0→1). If one is spinning, it will find the G, and when
//!    it does, it calls `resetspinning` → `wakep` to start the next one.
//! 2. A spinning M that finds nothing and goes to park first decrements
//!    `nmspinning`, then (after a full barrier) re-checks every run queue. The
//!    submitter wrote its queue before it read `nmspinning`. This is a Dekker
//!    pair: either the submitter sees a spinner and relies on it, or the
//!    parking M sees the work and goes back to spinning. Both orders use
//!    SeqCst operations, which on x86 are the StoreLoad barrier (`lock`ed
//!    instructions). The protocol's steps are in `gmp_core::spinning`
//!    (`wakep_claim`, `drop_spinning_recheck`, and the note's
//!    `note_sleep_check`/`notewakeup`), where loom checks them.
//!
//! Only `2 * nmspinning < gomaxprocs - npidle` Ms may spin at once, so a busy
//! machine does not burn half its cores looking for work.
//!
//! What is different on bare metal: an M is a core, and there is no `newm`.
//! Go can always create a thread for an idle P; we cannot create cores. So an
//! M registers itself on `midle` *in the same critical section* in which it
//! gives its P back (`findRunnable` → `stop_idle`): there is never an idle P
//! that no idle M could be woken for because that M is "about to" park.
//! A parked core halts in `notesleep` (`sti; hlt`), and `notewakeup` sends
//! it the wake-up IPI only if it may be halted; see the Note protocol there.
use super::lock::{PreemptGuard, SpinLock};
use super::runtime2::*;
use crate::arch::x86_64::switch::{self, mcall};
use crate::arch::x86_64::{apic, percpu, time};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ptr::{null_mut, NonNull};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use gmp_core::gqueue::{check_global_first, globrunqget_count, GList, GQueue};
use gmp_core::pmask::{Mask, PMask};
use gmp_core::runq::RunQueue;
use gmp_core::spinning;

pub const MAX_PROCS: usize = percpu::MAX_CPUS;
/// Go's `stealTries`.
const STEAL_TRIES: u32 = 4;
/// g0 stack size of every M.
const G0_STACK_SIZE: usize = 64 * 1024;
/// gFree thresholds. A P's list that reaches GFREE_MAX gives half of it
/// to the global list, and an empty one takes GFREE_BATCH from there. A P
/// that goes idle applies Go's rule: at GFREE_IDLE_MAX (Go's 64), down to
/// GFREE_BATCH (Go's 32). See "Why the local list is long" below.
const GFREE_MAX: u32 = 2048;
const GFREE_IDLE_MAX: u32 = 64;
const GFREE_BATCH: u32 = 32;
/// goids handed to a P at a time (Go's `_GoidCacheBatch`).
const GOID_CACHE_BATCH: u64 = 16;

pub static SCHED: Sched = Sched {
    goidgen: AtomicU64::new(0),
    lock: SpinLock::new(SchedLocked {
        midle: Mask::new(),
        nmidlelocked: 0,
        pidle: None,
        runq: GQueue::new(),
        gfree: GList::new(),
        gfree_stack: GList::new(),
        gfree_stack_low: 0,
        stopwait: 0,
    }),
    nmsys: AtomicU32::new(0),
    npidle: AtomicU32::new(0),
    nmspinning: AtomicU32::new(0),
    needspinning: AtomicU32::new(0),
    runqsize: AtomicU32::new(0),
    idlepmask: PMask::new(),
    gcwaiting: AtomicBool::new(false),
    stopnote: Note { key: AtomicU32::new(0), halted: AtomicU32::new(0) },
    nmidle: AtomicU32::new(0),
};

#[allow(clippy::declare_interior_mutable_const)]
const NULL_P: AtomicPtr<P> = AtomicPtr::new(null_mut());
#[allow(clippy::declare_interior_mutable_const)]
const NULL_M: AtomicPtr<M> = AtomicPtr::new(null_mut());
/// Every P ever created, by id (Go's `allp`; entries >= gomaxprocs are dead).
pub static ALLP: [AtomicPtr<P>; MAX_PROCS] = [NULL_P; MAX_PROCS];
/// Every M, by id = CPU index (Go's `allm`).
pub static ALLM: [AtomicPtr<M>; MAX_PROCS] = [NULL_M; MAX_PROCS];
pub static GOMAXPROCS: AtomicU32 = AtomicU32::new(1);
pub static NCPU: AtomicU32 = AtomicU32::new(1);
/// Set once goroutine 1 runs (Go's `mainStarted`): only then does newproc wakep.
static MAIN_STARTED: AtomicBool = AtomicBool::new(false);
/// `schedrandom=1`: randomise runnext and batch order, as under Go's race detector.
pub static SCHEDRANDOM: AtomicBool = AtomicBool::new(false);

/// Every G ever allocated (Go's `allgs`). Gs are never freed, only reused.
struct GPtr(NonNull<G>);
// SAFETY: just an address; dereferenced under the rules in runtime2.
unsafe impl Send for GPtr {}
static ALLGS: SpinLock<Vec<GPtr>> = SpinLock::new(Vec::new());

/// Serialises stop-the-world users (Go's `worldsema`).
pub(super) static WORLDSEMA: AtomicBool = AtomicBool::new(false);

// ---------------------------------------------------------------------------
// Small accessors

/// This core's M.
#[inline]
pub fn getm() -> &'static M {
    let m: *const M;
    // SAFETY: gs:[24] is this core's M, set in schedinit before any
    // scheduler code runs; Ms are leaked, never freed. One instruction, so
    // a preemption cannot hand us another core's M half-way (callers that
    // use the M's or its P's state still hold a PreemptGuard).
    unsafe { core::arch::asm!("mov {}, gs:[24]", out(reg) m, options(nostack, readonly, preserves_flags)) };
    // SAFETY: see above.
    unsafe { &*m }
}

/// The running goroutine (null on g0).
#[inline]
pub fn getg() -> *mut G {
    percpu::curg_raw() as *mut G
}

#[inline]
pub(super) fn p_of(mp: &M) -> &'static P {
    let p = mp.p.load(Ordering::Relaxed);
    if p.is_null() {
        no_p();
    }
    // SAFETY: Ps are leaked at creation and never freed.
    unsafe { &*p }
}

pub(super) fn allp(i: u32) -> &'static P {
    // SAFETY: as in `p_of`; callers index below gomaxprocs, all created.
    unsafe { &*ALLP[i as usize].load(Ordering::Acquire) }
}

fn m_by_id(id: usize) -> &'static M {
    // SAFETY: Ms are created for every online core in schedinit, leaked.
    unsafe { &*ALLM[id].load(Ordering::Acquire) }
}

#[cold]
#[inline(never)]
fn no_p() -> ! {
    super::fatal::throw("no P attached to this M (a goroutine between entersyscall and exitsyscall may not call the scheduler)")
}

/// Go's `casgstatus`: a status transition that must find `old`.
///
/// `#[inline]`, as are the other small functions of the switch paths
/// (`p_of`, `check_no_locks`, `G::status`, `G::id`, `stack::set_live`,
/// `preempt::resume`): the kernel is built in several codegen units, and a
/// call to another unit is not inlined without it. Under TCG a call and its
/// `ret` cost 11 to 21 ns (`bench=insn`, on two days; the `ret` is an
/// indirect jump, a look-up of the next translated block), tens of loads;
/// their failure reports stay out of line.
///
/// A transition *out of* `running` is a load, a check and a store, not a
/// CAS: one locked instruction less on every switch (park, Gosched, exit,
/// entersyscall), about 9 ns at two vCPUs under TCG (`bench=insn`). It is
/// still exact. Only the M running a G takes it out of `running` (with
/// interrupts off, or under a `PreemptGuard`, so not even this core's
/// preemption handler comes between). Every other writer is a CAS that
/// expects some other status (`ready` expects `waiting`, `execute`
/// `runnable`), which cannot succeed while the status reads `running`. So
/// nothing can be written between our load and our store, and a bad
/// transition is caught as before. Every transition *into* `running` or
/// between two other statuses stays a CAS: there two cores can race (two
/// `ready`s of one G, two `execute`s of one G), and the CAS lets only one
/// of them win.
#[inline]
pub fn casgstatus(gp: &G, old: u32, new: u32) {
    if old == G_RUNNING {
        // Relaxed load: we own the G (it runs on this core), so no other
        // core's write to it is ours to see. Release store: pairs with the
        // acquire loads and CASes of whoever handles the G next (`ready`,
        // `execute`, `status()`), so they see what we wrote before it.
        let cur = gp.atomicstatus.load(Ordering::Relaxed);
        if cur != old {
            bad_transition(gp, old, new, cur);
        }
        gp.atomicstatus.store(new, Ordering::Release);
        return;
    }
    // AcqRel: the status is how other cores learn a G's state (e.g. ready()
    // on a waiting G); pairs with the same CAS on the other side.
    if let Err(cur) = gp.atomicstatus.compare_exchange(old, new, Ordering::AcqRel, Ordering::Acquire) {
        bad_transition(gp, old, new, cur);
    }
}

#[cold]
#[inline(never)]
fn bad_transition(gp: &G, old: u32, new: u32, cur: u32) -> ! {
    super::fatal::fatal(format_args!(
        "casgstatus: goroutine {} bad transition {} -> {} (it is {})",
        gp.id(),
        gstatus_name(old),
        gstatus_name(new),
        gstatus_name(cur)
    ))
}

fn rand32(mp: &M) -> u32 {
    // SAFETY: fastrand is owned by this M, and we run on it.
    unsafe { mp.fastrand.get_mut().next_u32() }
}

// ---------------------------------------------------------------------------
// Bootstrap

/// Go's `schedinit`: create the Ms (one per online core) and the Ps.
pub fn schedinit(ncpu: usize) {
    NCPU.store(ncpu as u32, Ordering::Relaxed);
    let params = crate::boot::params();
    SCHEDRANDOM.store(params.schedrandom, Ordering::Relaxed);
    for id in 0..ncpu {
        // With a guard page below it (mem::kstack).
        let top = crate::mem::kstack::alloc(G0_STACK_SIZE);
        let m = Box::leak(Box::new(M {
            g0_stack_top: top,
            id,
            apic_id: crate::boot::apic_id(id),
            curg: AtomicPtr::new(null_mut()),
            p: AtomicPtr::new(null_mut()),
            nextp: AtomicPtr::new(null_mut()),
            oldp: AtomicPtr::new(null_mut()),
            spinning: AtomicBool::new(false),
            lockedg: AtomicPtr::new(null_mut()),
            park: Note { key: AtomicU32::new(0), halted: AtomicU32::new(0) },
            waitunlockf: OwnerCell::new(None),
            waitlock: OwnerCell::new(null_mut()),
            // `seed=S` (the test runner's --seed) replaces the TSC, so that
            // the random choices start from the same state on every run.
            fastrand: OwnerCell::new(gmp_core::rand::FastRand::new(gmp_core::rand::mix64(
                params.seed.unwrap_or_else(time::rdtsc) ^ ((id as u64 + 1) << 32),
            ))),
            steal_order: OwnerCell::new(gmp_core::order::RandomOrder::new()),
            steal_order_count: OwnerCell::new(0),
            steals: AtomicU64::new(0),
            ngcreated: AtomicU64::new(0),
            parks: AtomicU64::new(0),
            wakeups: AtomicU64::new(0),
            poll_window_ns: AtomicU64::new(gmp_core::haltpoll::GROW_START_NS),
        }));
        ALLM[id].store(m, Ordering::Release);
        percpu::CPUS[id].m.store(m as *mut M as *mut u8, Ordering::Release);
    }
    let procs = params.gomaxprocs.unwrap_or(ncpu as u32).min(ncpu as u32).max(1);
    let mut sched = SCHED.lock.lock();
    let runnable = procresize(&mut sched, procs);
    debug_assert!(runnable.is_empty());
}

pub(super) fn new_p(id: u32) -> &'static P {
    Box::leak(Box::new(P {
        id,
        status: AtomicU32::new(P_GCSTOP),
        link: core::cell::Cell::new(None),
        schedtick: AtomicU32::new(0),
        slicestart: AtomicU64::new(0),
        syscalltick: AtomicU32::new(0),
        m: AtomicPtr::new(null_mut()),
        runq: RunQueue::new(),
        gfree: OwnerCell::new(GList::new()),
        goidcache: OwnerCell::new(0),
        goidcacheend: OwnerCell::new(0),
        preempt: AtomicBool::new(false),
        timers: super::time::PTimers::new(),
        sysmontick: super::preempt::SysmonTick::new(),
    }))
}

/// The boot core: create goroutine 1 running `main`, then become m0.
pub fn mstart0(main: fn()) -> ! {
    // Wait (bounded) until the APs have parked, so that the first wakep
    // finds them on midle.
    let want = NCPU.load(Ordering::Relaxed) - 1;
    let deadline = time::nanotime() + 2_000_000_000;
    while SCHED.nmidle.load(Ordering::Acquire) < want && time::nanotime() < deadline {
        core::hint::spin_loop();
    }
    newproc_main(main);
    mstart()
}

fn newproc_main(main: fn()) {
    let _pg = PreemptGuard::new();
    let mp = getm();
    let pp = p_of(mp);
    let gp = newproc1(
        move || {
            MAIN_STARTED.store(true, Ordering::Release);
            main();
            super::trace::at_exit();
            super::tracer::dump(super::tracer::END_EXIT);
            super::profiler::dump();
            crate::arch::x86_64::exit::exit_success();
        },
        pp,
        0,
    );
    runqput(pp, gp, true);
}

/// Every core: switch to this M's g0 stack and enter the scheduler.
pub fn mstart() -> ! {
    let mp = getm();
    extern "C" fn mstart1(_: *mut u8) {
        let mp = getm();
        super::irq::start_ticks();
        x86_64::instructions::interrupts::enable();
        if mp.p.load(Ordering::Relaxed).is_null() {
            // No P for us yet: park until startm hands us one.
            let mut sched = SCHED.lock.lock();
            mput(&mut sched, mp);
            drop(sched);
            mpark(mp);
        }
        schedule()
    }
    // SAFETY: g0_stack_top is the top of this M's own g0 stack, unused
    // until now; mstart1 never returns.
    unsafe { switch::call_on_stack(null_mut(), mstart1, mp.g0_stack_top) };
    unreachable!()
}

// ---------------------------------------------------------------------------
// Note: parking a core (Go's notesleep/notewakeup on a futex)
//
// The sleeper announces it may halt (`halted = 1`) and only then checks
// `key`; the waker sets `key` and only then checks `halted`. Both are SeqCst,
// so at least one side sees the other's store: either the sleeper sees the
// key and does not halt, or the waker sees `halted` and sends the IPI. The
// sleeper checks with interrupts off and halts with `sti; hlt`, which takes
// a pending interrupt only once `hlt` has begun: an IPI that arrives between
// the check and the halt ends the halt instead of being lost.
//
// Halt polling (`haltpoll=1`, Linux's cpuidle-haltpoll; lab 8): before any of
// that, the sleeper reads `key` for its core's poll window
// (`gmp_core::haltpoll`), announcing nothing. A waker that comes within the
// window sees `halted == 0` and sends no IPI: its key store is all the
// wake-up there is, and the poll sees it (it reads `key` up to the window's
// end). A key stored after the poll's last read meets the Dekker pair above,
// which runs unchanged after the poll. The poll never outlasts this core's
// `wake_deadline` (its timers). After the wake-up the window adapts to the
// sleep's length (`Window::after_wake`).

/// Halt-poll statistics of every core, for lab 8's test (Relaxed counters;
/// nothing synchronizes through them). Counted in both modes, so that
/// `haltpoll=0` is the reference.
pub struct HaltpollStats {
    /// `notewakeup` calls on a parked core's note (not the stop-the-world's
    /// note): the wake-ups whose cost the other counters measure.
    pub wakes: AtomicU64,
    /// Wake-up IPIs `notewakeup` sent (the sleeper had announced `halted`).
    pub ipis: AtomicU64,
    /// `sti; hlt` executed by a parked core.
    pub halts: AtomicU64,
    /// Parks that ended during the poll (no halt, no IPI).
    pub poll_hits: AtomicU64,
    /// Time spent polling by polls that saw no key, ns.
    pub poll_wasted_ns: AtomicU64,
    /// Time spent polling by every poll, ns.
    pub poll_ns: AtomicU64,
    /// Polls that lasted longer than twice the largest window (`2 * haltpoll::MAX_NS`): a
    /// poll that ignores its window, or a vCPU descheduled by the host mid-poll.
    pub long_polls: AtomicU64,
}

pub static HALTPOLL: HaltpollStats = HaltpollStats {
    wakes: AtomicU64::new(0),
    ipis: AtomicU64::new(0),
    halts: AtomicU64::new(0),
    poll_hits: AtomicU64::new(0),
    poll_wasted_ns: AtomicU64::new(0),
    poll_ns: AtomicU64::new(0),
    long_polls: AtomicU64::new(0),
};

/// Sleep until woken (true) or until this core's `wake_deadline` passes
/// (false). With `haltpoll=1`, poll first for `window` (this core's
/// `M::poll_window_ns`) and adapt it.
fn notesleep(n: &Note, window: &AtomicU64) -> bool {
    if !crate::boot::params().haltpoll {
        return notesleep_halt(n);
    }
    let mut w = gmp_core::haltpoll::Window::from_ns(window.load(Ordering::Relaxed));
    let t0 = time::nanotime();
    // The timers of the P this core released are due at `wake_deadline`: no
    // poll past it.
    let d = percpu::this().wake_deadline.load(Ordering::Relaxed);
    let limit = if d != 0 { w.window_ns().min(d.saturating_sub(t0)) } else { w.window_ns() };
    let polled = gmp_core::haltpoll::poll(&n.key, limit, time::nanotime);
    let polled_ns = time::nanotime().saturating_sub(t0);
    HALTPOLL.poll_ns.fetch_add(polled_ns, Ordering::Relaxed);
    if polled_ns > 2 * gmp_core::haltpoll::MAX_NS {
        HALTPOLL.long_polls.fetch_add(1, Ordering::Relaxed);
    }
    let woken = if polled {
        HALTPOLL.poll_hits.fetch_add(1, Ordering::Relaxed);
        true
    } else {
        HALTPOLL.poll_wasted_ns.fetch_add(polled_ns, Ordering::Relaxed);
        notesleep_halt(n)
    };
    w.after_wake(polled, time::nanotime().saturating_sub(t0));
    window.store(w.window_ns(), Ordering::Relaxed);
    woken
}

/// The halting part of `notesleep` (all of it with `haltpoll=0`).
fn notesleep_halt(n: &Note) -> bool {
    loop {
        x86_64::instructions::interrupts::disable();
        if spinning::note_sleep_check(&n.key, &n.halted) {
            x86_64::instructions::interrupts::enable();
            return true;
        }
        let d = percpu::this().wake_deadline.load(Ordering::Relaxed);
        if d != 0 {
            let now = time::nanotime();
            if now >= d {
                n.halted.store(0, Ordering::Relaxed);
                x86_64::instructions::interrupts::enable();
                return false;
            }
            if d - now <= super::irq::timer_advance() {
                // The deadline is nearer than a halt's late wake-up (the timer advance,
                // `irq.rs`): poll the note and the clock instead. With `halted` cleared a
                // waker sends no IPI; its key store is what the poll reads, and a key stored
                // after the last read is seen by the next notesleep (mpark sleeps again).
                n.halted.store(0, Ordering::Relaxed);
                x86_64::instructions::interrupts::enable();
                return poll_until(n, d);
            }
        }
        super::irq::before_halt();
        HALTPOLL.halts.fetch_add(1, Ordering::Relaxed);
        x86_64::instructions::interrupts::enable_and_hlt();
        n.halted.store(0, Ordering::Relaxed);
        super::irq::after_halt();
    }
}

/// Read the note until it is set (true) or the clock reaches `deadline` (false).
/// (`gmp_core::haltpoll::poll` does the same, but it is a lab 8 region: a student's
/// unfinished poll must not break the timer advance.)
fn poll_until(n: &Note, deadline: u64) -> bool {
    loop {
        // SeqCst: the sleeper's read of the note's Dekker pair (notewakeup stores it SeqCst).
        if n.key.load(Ordering::SeqCst) != 0 {
            return true;
        }
        if time::nanotime() >= deadline {
            return false;
        }
        core::hint::spin_loop();
    }
}

pub(super) fn noteclear(n: &Note) {
    n.key.store(0, Ordering::SeqCst);
}

pub(super) fn notewakeup(n: &Note, apic_id: u32) {
    if apic_id != u32::MAX {
        HALTPOLL.wakes.fetch_add(1, Ordering::Relaxed);
    }
    spinning::notewakeup(&n.key, &n.halted, || {
        if apic_id != u32::MAX {
            HALTPOLL.ipis.fetch_add(1, Ordering::Relaxed);
            super::tracer::ipi_send(apic_id, apic::WAKE_VECTOR);
            apic::send_ipi(apic_id, apic::WAKE_VECTOR);
        }
    });
}

/// Park this M until someone `startm`s it; then take the P it was given.
/// If this core's `wake_deadline` (a timer of the P it released) passes
/// first, take an idle P itself and return to run the timer.
fn mpark(mp: &M) {
    let _trace = super::tracer::park_scope(mp);
    mp.parks.fetch_add(1, Ordering::Relaxed);
    loop {
        if notesleep(&mp.park, &mp.poll_window_ns) {
            // Clear the note *before* looking at nextp: a waker stores nextp,
            // then sets the note. Cleared first, either we see its nextp, or
            // its note comes after our clear and the next sleep returns at
            // once. (Looking first and clearing after could erase a wake-up
            // that arrived in between, and sleep forever with a P in hand.)
            noteclear(&mp.park);
            if !mp.nextp.load(Ordering::Acquire).is_null() {
                break;
            }
            // No P came with the wake-up. Either it was meant for a wait
            // that is over, or our locked goroutine became runnable while a
            // stop-the-world had taken our P (ready_locked): then we need a
            // P to run it. Take an idle one, or ask for the next P that goes
            // idle (LOCKEDM_NEEDP, served in find_runnable).
            let lg = mp.lockedg.load(Ordering::Relaxed);
            // SAFETY: Gs are never freed.
            if !lg.is_null() && unsafe { (*lg).status() } == G_RUNNABLE && take_idle_p(mp, true) {
                return;
            }
            continue;
        }
        super::time::clear_idle_deadline();
        // Every P busy: their Ms will run the timers.
        if take_idle_p(mp, false) {
            return;
        }
        // else: startm took us off midle and is waking us; the note is set.
    }
    super::time::clear_idle_deadline();
    noteclear(&mp.park);
    LOCKEDM_NEEDP.clear(mp.id as usize, Ordering::SeqCst);
    let pp = mp.nextp.swap(null_mut(), Ordering::Acquire);
    if pp.is_null() {
        super::fatal::throw("mpark: woken without a P");
    }
    // SAFETY: Ps are never freed.
    acquirep(mp, unsafe { &*pp });
}

/// Parked Ms whose locked goroutine is runnable but who have no P (only
/// after a stop-the-world took it): the next M to give up a P hands it to
/// one of them (find_runnable), as Go's startlockedm would.
static LOCKEDM_NEEDP: PMask = PMask::new();

/// The Ms waiting in `LOCKEDM_NEEDP` (for schedtrace).
pub fn lockedm_needp() -> Mask {
    LOCKEDM_NEEDP.snapshot(Ordering::Relaxed)
}

/// A parked M that woke without a P asks for one itself: if it is still on
/// midle (nobody is handing it a P), leave midle and take any idle P. If
/// there is none, go back on midle; with `need_for_locked`, also ask for
/// the next P that goes idle (LOCKEDM_NEEDP). False: sleep on.
fn take_idle_p(mp: &M, need_for_locked: bool) -> bool {
    let mut s = SCHED.lock.lock();
    if !munlink(&mut s, mp) {
        return false; // startm took us off midle: its wake-up brings a P
    }
    if let Some(pp) = pidleget(&mut s) {
        drop(s);
        acquirep(mp, pp);
        return true;
    }
    if need_for_locked {
        LOCKEDM_NEEDP.set(mp.id as usize, Ordering::SeqCst);
    }
    mput(&mut s, mp);
    false
}

/// Has goroutine 1 started?
pub fn scheduler_started() -> bool {
    MAIN_STARTED.load(Ordering::Relaxed)
}

// ---------------------------------------------------------------------------
// M and P lists (sched.lock held)

/// Put `mp` on the idle M list (Go's `mput`), then `checkdead`.
fn mput(s: &mut SchedLocked, mp: &M) {
    s.midle.set(mp.id as usize);
    SCHED.nmidle.fetch_add(1, Ordering::Relaxed);
    checkdead(s);
}

/// Take an idle M (Go's `mget`).
///
/// Never an M with a locked goroutine: such an M runs nothing else, and in
/// Go it is never on the idle list at all (`stoplockedm` parks it
/// privately). Here it can be, when a stop-the-world took its P
/// (`gcstopm` → `stopm`) or its goroutine left a syscall to find no P
/// (`exitsyscall0`); it gets a P back through `take_idle_p` or
/// `LOCKEDM_NEEDP`, when its goroutine is runnable. Handing it a P from
/// `startm` would let it run its locked goroutine with that P while
/// counted as spinning, leaking `nmspinning` (and no other core would ever
/// be woken again).
pub(super) fn mget(s: &mut SchedLocked) -> Option<&'static M> {
    // M ids are CPU indices: only the words below the cores in use.
    let id = s.midle.find_below(percpu::in_use(), |id| m_by_id(id).lockedg.load(Ordering::Relaxed).is_null())?;
    s.midle.clear(id);
    SCHED.nmidle.fetch_sub(1, Ordering::Relaxed);
    Some(m_by_id(id))
}

/// Take `mp` off the idle list if it is still there.
fn munlink(s: &mut SchedLocked, mp: &M) -> bool {
    if s.midle.clear(mp.id as usize) {
        SCHED.nmidle.fetch_sub(1, Ordering::Relaxed);
        true
    } else {
        false
    }
}

/// Put `pp` on the idle P list (Go's `pidleput`). Its run queue must be empty.
///
/// While a stop-the-world is waiting (`gcwaiting`), a P that comes back
/// goes to the stop instead (`_Pgcstop`, `stopwait -= 1`): stop-the-world
/// counted the idle list once, under this lock, when it began, so a P that
/// was *in flight* then (taken off the idle list by `wakep`, or out of
/// `_Psyscall` by `retake`/`entersyscallblock`, on its way to `startm` or
/// `handoffp`) and comes back now would otherwise sit on the idle list
/// uncounted, and the stop would wait for it forever. Putting the check
/// here covers every path that returns a P. (Go needs no such check in
/// `startm`: it can always create an M for the P, which then stops in
/// `gcstopm`.) Only `procresize`, which runs with the world stopped, uses
/// [`pidleput_raw`].
///
/// Otherwise, a core whose locked goroutine is runnable but has no P
/// (`LOCKEDM_NEEDP`) gets it first (Go's `startlockedm`). Returns true if
/// the P went onto the idle list.
fn pidleput(s: &mut SchedLocked, pp: &'static P) -> bool {
    if !pp.runq.stealer().is_empty() {
        super::fatal::throw("pidleput: P has non-empty run queue");
    }
    if SCHED.gcwaiting.load(Ordering::SeqCst) {
        pp.status.store(P_GCSTOP, Ordering::Release);
        stopwait_done(s);
        return false;
    }
    while let Some(lid) = LOCKEDM_NEEDP.take_first(percpu::in_use(), Ordering::SeqCst) {
        let lmp = m_by_id(lid);
        // Only if it still sleeps on midle (it may have found a P itself).
        if munlink(s, lmp) {
            pp.status.store(P_IDLE, Ordering::Release);
            // Release: pairs with the acquire swap in mpark().
            lmp.nextp.store(pp as *const P as *mut P, Ordering::Release);
            notewakeup(&lmp.park, lmp.apic_id);
            return false;
        }
    }
    pidleput_raw(s, pp);
    true
}

/// One more P has stopped for the stop-the-world; the last one wakes it.
pub(super) fn stopwait_done(s: &mut SchedLocked) {
    if s.stopwait == 0 {
        super::fatal::throw("stopTheWorld: a P stopped twice (stopwait underflow)");
    }
    s.stopwait -= 1;
    if s.stopwait == 0 {
        notewakeup(&SCHED.stopnote, u32::MAX);
    }
}

pub(super) fn pidleput_raw(s: &mut SchedLocked, pp: &'static P) {
    if !pp.runq.stealer().is_empty() {
        super::fatal::throw("pidleput: P has non-empty run queue");
    }
    pp.status.store(P_IDLE, Ordering::Release);
    pp.link.set(s.pidle);
    s.pidle = Some(NonNull::from(pp));
    // SeqCst: read by stealWork without the lock; part of the
    // submit/check protocol with nmspinning.
    SCHED.idlepmask.set(pp.id as usize, Ordering::SeqCst);
    SCHED.npidle.fetch_add(1, Ordering::SeqCst);
}

/// Take an idle P (Go's `pidleget`).
pub(super) fn pidleget(s: &mut SchedLocked) -> Option<&'static P> {
    let pp = s.pidle?;
    // SAFETY: Ps are never freed.
    let pp: &'static P = unsafe { &*pp.as_ptr() };
    s.pidle = pp.link.get();
    SCHED.idlepmask.clear(pp.id as usize, Ordering::SeqCst);
    SCHED.npidle.fetch_sub(1, Ordering::SeqCst);
    Some(pp)
}

/// Go 1.21's `pidlegetSpinning`: as pidleget, but remember that a spinning
/// M was wanted and none could start.
fn pidleget_spinning(s: &mut SchedLocked) -> Option<&'static P> {
    let pp = pidleget(s);
    if pp.is_none() {
        SCHED.needspinning.store(1, Ordering::SeqCst);
    }
    pp
}

pub(super) fn acquirep(mp: &M, pp: &'static P) {
    if !pp.m.load(Ordering::Relaxed).is_null() {
        super::fatal::fatal(format_args!("acquirep: P{} already has an M", pp.id));
    }
    pp.m.store(mp as *const M as *mut M, Ordering::Relaxed);
    pp.status.store(P_RUNNING, Ordering::Release);
    super::tracer::proc_start(pp);
    // Release: pairs with the acquire load in p_of() users on this core
    // (same core: program order) and the diagnostics in schedtrace.
    mp.p.store(pp as *const P as *mut P, Ordering::Release);
}

fn releasep(mp: &M) -> &'static P {
    let pp = p_of(mp);
    super::tracer::proc_stop(pp);
    pp.m.store(null_mut(), Ordering::Relaxed);
    mp.p.store(null_mut(), Ordering::Release);
    pp
}

// ---------------------------------------------------------------------------
// Creating goroutines

/// The entry of every goroutine: read the closure from the top of the stack
/// (newproc1 put it there) and run it. Returning "returns" into goexit.
extern "C" fn goentry<F: FnOnce()>(ctxt: *mut F) {
    // SAFETY: newproc1 wrote an F at ctxt and nothing else reads it.
    let f = unsafe { core::ptr::read(ctxt) };
    f();
}

/// Go's `malg`: a new G with a reserved stack.
fn malg() -> NonNull<G> {
    let st = crate::mem::stack::alloc();
    let gp = NonNull::from(Box::leak(Box::new(G::new(st.lo, st.hi))));
    ALLGS.lock().push(GPtr(gp));
    gp
}

/// Go's `newproc1`: a runnable G that will run `f`.
pub fn newproc1<F: FnOnce() + Send + 'static>(f: F, pp: &'static P, parent: u64) -> NonNull<G> {
    if core::mem::size_of::<F>() > 2048 {
        // Keep big closures off the (lazily mapped) stack top.
        let b = Box::new(f);
        return newproc1_inner(move || (b)(), pp, parent);
    }
    newproc1_inner(f, pp, parent)
}

fn newproc1_inner<F: FnOnce() + Send + 'static>(f: F, pp: &'static P, parent: u64) -> NonNull<G> {
    let gp = gfget(pp).unwrap_or_else(malg);
    // SAFETY: the G is fresh or dead and on no list: we own it.
    let g = unsafe { gp.as_ref() };
    // Before the first write below: a fault in a slot not marked live is a
    // dangling pointer into a dead goroutine's stack (mem::stack).
    crate::mem::stack::set_live(stack_of(gp), true);
    let align = core::mem::align_of::<F>().max(16) as u64;
    let fptr = (g.stack_hi - core::mem::size_of::<F>() as u64) & !(align - 1);
    let sp = (fptr & !15) - 8;
    // SAFETY: [sp, hi) lies inside this G's stack range (mapped on first
    // touch by the page-fault handler); the G is not running.
    unsafe {
        core::ptr::write(fptr as *mut F, f);
        core::ptr::write(sp as *mut u64, switch::goexit as *const () as u64);
    }
    // SAFETY: we own the G (see above), so its owner cells are ours.
    let gm = gp.as_ptr();
    unsafe {
        (*gm).sched.sp = sp;
        (*gm).sched.pc = switch::gostart as *const () as u64;
        (*gm).sched.ret = goentry::<F> as *const () as u64;
        (*gm).sched.ctxt = fptr;
        (*gm).sched.bp = 0;
        (*gm).sched.g = gm as u64;
        g.parent_goid.set(parent);
        g.startpc.set(goentry::<F> as *const () as u64);
        g.startfn.set(core::any::type_name::<F>());
        g.waitreason.set(WaitReason::Zero);
        g.lockcount.set(0);
    }
    g.stackguard0.store(g.stack_lo + super::preempt::STACK_GUARD, Ordering::Relaxed);
    g.preempt.store(false, Ordering::Relaxed);
    g.lockedm.store(null_mut(), Ordering::Relaxed);
    g.param.store(null_mut(), Ordering::Relaxed);
    // goid from this P's cache, refilled 16 at a time.
    // SAFETY: the goid cache is owned by the M holding pp, i.e. us.
    let goid = unsafe {
        if pp.goidcache.get() == pp.goidcacheend.get() {
            let end = SCHED.goidgen.fetch_add(GOID_CACHE_BATCH, Ordering::Relaxed) + GOID_CACHE_BATCH;
            pp.goidcache.set(end - GOID_CACHE_BATCH + 1);
            pp.goidcacheend.set(end + 1);
        }
        let id = pp.goidcache.get();
        pp.goidcache.set(id + 1);
        id
    };
    g.goid.store(goid, Ordering::Relaxed);
    let old = g.status();
    casgstatus(g, old, G_RUNNABLE);
    super::tracer::go_create(parent, g);
    // Single writer (this M; newproc never runs in an interrupt handler,
    // as the goid cache above assumes too): no locked read-modify-write.
    let n = &getm().ngcreated;
    n.store(n.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    gp
}

/// Go's `newproc`: start `f` as a new goroutine on the current P's
/// `runnext`, and wake an idle core if none is spinning.
pub fn newproc<F: FnOnce() + Send + 'static>(f: F) {
    let _pg = PreemptGuard::new();
    let mp = getm();
    let pp = p_of(mp);
    // SAFETY: curg is null or a live G.
    let parent = unsafe { getg().as_ref() }.map(|g| g.id()).unwrap_or(0);
    let gp = newproc1(f, pp, parent);
    runqput(pp, gp, true);
    if MAIN_STARTED.load(Ordering::Relaxed) {
        wakep();
    }
}

// ---------------------------------------------------------------------------
// Free Gs (Go's gfput/gfget)
//
// A dead G goes on its P's gFree list with its stack's top page still
// mapped, ready for the next newproc (Go's `gFree.stack`). At GFREE_MAX the
// P moves half of them to the global `gfree_stack`, still mapped; a P that
// finds no work with GFREE_IDLE_MAX or more moves all but GFREE_BATCH there
// (`gftrim`; every P, when GOMAXPROCS changes: `gftrim_stopped`), where
// other Ps and the scavenger below can reach them. A P that stops existing
// moves all of its free Gs there (`gfpurge`).
//
// Why the local list is long (Go's holds 64). Go moves 32 Gs to the global
// list at 64, so in a loop that spawns rounds of 1000 nearly every G goes
// through the global list each round, and with several Ps spawning, a P
// takes back Gs that another P freed. Such a G's memory (the G, its
// stack's top page) was last written on another core. Under TCG each vCPU
// has its own software TLB and the host its own caches, so the first
// touches of that memory on the new core are a host cache miss and a page
// walk each: `spawn_exit_parallel` at 2 cores measured 62% of new
// goroutines on a G whose last life ran on the other core, and about 440
// ns a goroutine. Holding up to 2048 Gs per P keeps a P's Gs its own (27%
// from the other core: those that its spawner's goroutines ran there) and
// cut the figure to about 260 ns, 0.59x (bench/README.md). The price is
// memory: a busy P may keep up to GFREE_MAX top pages (8 MiB) that the
// scavenger cannot see; an idle one gives them up, and every P does when
// GOMAXPROCS changes (`procresize`: a P that joins would otherwise find no
// free G while another holds hundreds, and make new ones).
//
// Stacks come back through a scavenger, as Go's do through its GC and
// background scavenger rather than at exit: `gfscavenge`, run by a P that
// found no work (findrunnable) and by gfput, at most once per
// GFREE_SCAVENGE_NS. It unmaps the stacks of the global list's low-water
// mark beyond GFREE_STACK_KEEP: the Gs that sat unused for a whole period.
// A program that spawns in a loop reuses its stacks with no page fault (an
// earlier version unmapped every batch beyond the bound at once, and a
// spawn loop of 1000 at a time faulted its stacks in again every round:
// 1875 instructions a spawn instead of 1108, 2.9x the time); after a spawn
// storm the stacks come back within two periods.
//
// Unmapping: `mem::stack::release` unmaps a batch's pages and starts a TLB
// shootdown. Those Gs wait in GFREE_LIMBO until the shootdown has completed
// on every core (no core may still translate their old pages: see
// mem/tlb.rs), then go to the global list with no pages at all (Go's
// `gFree.noStack`); a G taken from there faults its pages in again. A G
// whose stack grew past its top page gives all of it back at once, so a
// goroutine that once recursed deeply does not keep 250 KiB. Nothing here
// waits for another core: `gfreap` moves what is ready, and it runs
// whenever a list is refilled or trimmed.

/// Free Gs that keep their stacks mapped on the global list however long
/// they sit unused (the scavenger's floor).
pub const GFREE_STACK_KEEP: u32 = 256;
/// How often the scavenger looks at the global list (and so how long a
/// stack must sit unused before it is unmapped: one to two periods).
pub const GFREE_SCAVENGE_NS: u64 = 50_000_000;
/// At most this many stacks unmapped per scavenger call (a P that found no
/// work does it before parking: keep that short).
const GFREE_SCAVENGE_MAX: u32 = 1024;
/// When the scavenger last finished a period (nanotime).
static GFREE_SCAVENGE_LAST: AtomicU64 = AtomicU64::new(0);
/// One scavenger at a time (several idle Ps would otherwise each unmap a
/// batch under the same page-table lock).
static GFREE_SCAVENGER_BUSY: AtomicBool = AtomicBool::new(false);
/// Gs the scavenger has taken off the global list and not yet put in
/// GFREE_LIMBO: counted as being freed (`gfree_limbo`) all along, so that
/// nobody sees "no stack being freed" while a batch is in its hands.
static GFREE_SCAVENGING: AtomicU32 = AtomicU32::new(0);

/// Gs whose stacks are being unmapped, each batch with its shootdown.
static GFREE_LIMBO: SpinLock<Vec<(crate::mem::tlb::Shootdown, Vec<GPtr>)>> = SpinLock::new(Vec::new());
/// Gs in GFREE_LIMBO (a lock-free "anything to do?").
static GFREE_LIMBO_N: AtomicU32 = AtomicU32::new(0);

fn stack_of(gp: NonNull<G>) -> crate::mem::stack::Stack {
    // SAFETY: Gs are never freed; stack_lo/hi never change after malg.
    let g = unsafe { gp.as_ref() };
    crate::mem::stack::Stack { lo: g.stack_lo, hi: g.stack_hi }
}

/// Unmap the stacks of dead Gs that are on no list; they reach the global
/// list (pageless) through GFREE_LIMBO once the TLB shootdown is done.
fn gfrelease(gs: Vec<NonNull<G>>) {
    if gs.is_empty() {
        return;
    }
    let sd = crate::mem::stack::release(gs.iter().map(|&g| stack_of(g)));
    let n = gs.len() as u32;
    GFREE_LIMBO.lock().push((sd, gs.into_iter().map(GPtr).collect()));
    GFREE_LIMBO_N.fetch_add(n, Ordering::Release);
}

/// Move the Gs whose shootdown has completed to the global list, and give
/// the frames of completed shootdowns back. Never waits.
pub fn gfreap() {
    crate::mem::stack::reap();
    if GFREE_LIMBO_N.load(Ordering::Acquire) == 0 {
        return;
    }
    let mut ready: Vec<GPtr> = Vec::new();
    if let Some(mut l) = GFREE_LIMBO.try_lock() {
        let mut i = 0;
        while i < l.len() {
            if l[i].0.done() {
                ready.extend(l.swap_remove(i).1);
            } else {
                i += 1;
            }
        }
    }
    if ready.is_empty() {
        return;
    }
    GFREE_LIMBO_N.fetch_sub(ready.len() as u32, Ordering::Relaxed);
    let mut s = SCHED.lock.lock();
    for g in ready {
        // SAFETY: out of limbo, onto exactly one list.
        unsafe { s.gfree.push(g.0) };
    }
}

/// Dead Gs whose stacks are still being given back (tests, statistics).
pub fn gfree_limbo() -> u32 {
    // In this order: a batch moves from SCAVENGING to LIMBO_N (added there
    // first), so reading LIMBO_N second cannot miss it.
    let scavenging = GFREE_SCAVENGING.load(Ordering::Acquire);
    scavenging + GFREE_LIMBO_N.load(Ordering::Acquire)
}

fn gfput(pp: &'static P, gp: NonNull<G>) {
    if crate::mem::stack::grew(stack_of(gp)) {
        gfrelease(alloc::vec![gp]);
        return;
    }
    // SAFETY: the gfree list is owned by the M holding pp (us); gp is dead
    // and on no list.
    let list = unsafe { pp.gfree.get_mut() };
    unsafe { list.push(gp) };
    if list.len() >= GFREE_MAX {
        gfspill(list, GFREE_MAX / 2);
        gfscavenge();
    }
}

/// Move all but `keep` of a P's free Gs (`list`, which the caller owns) to
/// the global `gfree_stack`. The batch is unlinked and linked again outside
/// `sched.lock` and spliced onto the global list in O(1) under it, so the
/// lock is held for a few stores however long the batch.
fn gfspill(list: &mut GList<G>, keep: u32) {
    if list.len() <= keep {
        return;
    }
    let mut batch = gfbatch(list, keep);
    SCHED.lock.lock().gfree_stack.push_all(&mut batch);
}

/// All but `keep` of a P's free Gs (`list`, which the caller owns), off the
/// list and linked as a batch for one splice onto a global list.
fn gfbatch(list: &mut GList<G>, keep: u32) -> GQueue<G> {
    let mut batch = GQueue::new();
    while list.len() > keep {
        // SAFETY: off the caller's list, onto the batch that only we can see.
        unsafe { batch.push_back(list.pop().unwrap()) };
    }
    batch
}

/// A P that found no work applies Go's bound to its free Gs before it
/// parks (at GFREE_IDLE_MAX, down to GFREE_BATCH): an idle P cannot use
/// them, other Ps can, and only on the global list does the scavenger see
/// them, so a burst's stacks come back however its Gs were spread over the
/// Ps. Below the bound this is one comparison.
fn gftrim(pp: &'static P) {
    // SAFETY: the gfree list is owned by the M holding pp (us).
    let list = unsafe { pp.gfree.get_mut() };
    if list.len() >= GFREE_IDLE_MAX {
        gfspill(list, GFREE_BATCH);
    }
}

/// `gftrim` for a P of a stopped world, under `sched.lock` (`s`), which
/// `procresize` holds.
pub(super) fn gftrim_stopped(s: &mut SchedLocked, pp: &'static P) {
    // SAFETY: the world is stopped; nobody else holds pp.
    let list = unsafe { pp.gfree.get_mut() };
    if list.len() >= GFREE_IDLE_MAX {
        s.gfree_stack.push_all(&mut gfbatch(list, GFREE_BATCH));
    }
}

/// The stack scavenger (see the comment above `GFREE_STACK_KEEP`): once per
/// `GFREE_SCAVENGE_NS`, unmap the stacks of the free Gs that stayed on the
/// global list, unused, for the whole period, beyond `GFREE_STACK_KEEP`.
pub(super) fn gfscavenge() {
    let now = time::nanotime();
    // Relaxed: a heuristic; the decision is taken again under the lock.
    if now < GFREE_SCAVENGE_LAST.load(Ordering::Relaxed) + GFREE_SCAVENGE_NS {
        return;
    }
    // Acquire/Release: pairs with the store that ends the previous run.
    if GFREE_SCAVENGER_BUSY.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
        return;
    }
    let mut batch = Vec::new();
    if let Some(mut s) = SCHED.lock.try_lock() {
        if now >= GFREE_SCAVENGE_LAST.load(Ordering::Relaxed) + GFREE_SCAVENGE_NS {
            let excess = s.gfree_stack_low.saturating_sub(GFREE_STACK_KEEP).min(GFREE_SCAVENGE_MAX);
            batch.reserve(excess as usize);
            // Counted before they leave the list (see GFREE_SCAVENGING).
            GFREE_SCAVENGING.fetch_add(excess, Ordering::Relaxed);
            for _ in 0..excess {
                // Off the global list under its lock, into limbo by
                // gfrelease below. low <= len, so the list has them.
                batch.push(s.gfree_stack.pop().unwrap());
            }
            s.gfree_stack_low -= excess;
            if s.gfree_stack_low <= GFREE_STACK_KEEP {
                // This period is done: start the next one from here.
                s.gfree_stack_low = s.gfree_stack.len();
                GFREE_SCAVENGE_LAST.store(now, Ordering::Relaxed);
            }
        }
    }
    let n = batch.len() as u32;
    // gfrelease counts them in GFREE_LIMBO_N before we stop counting them.
    gfrelease(batch);
    GFREE_SCAVENGING.fetch_sub(n, Ordering::Release);
    GFREE_SCAVENGER_BUSY.store(false, Ordering::Release);
    gfreap();
}

/// Whether the free lists hold no more mapped stacks than they keep for
/// good and every unmapped stack's frames are back (tests and benchmarks
/// that measure memory coming back wait for this).
pub fn gfree_settled() -> bool {
    gfreap();
    let kept = SCHED.lock.lock().gfree_stack.len();
    kept <= GFREE_STACK_KEEP && gfree_limbo() == 0 && crate::mem::stack::stats().limbo_batches == 0
}

fn gfget(pp: &'static P) -> Option<NonNull<G>> {
    // SAFETY: as in gfput.
    let list = unsafe { pp.gfree.get_mut() };
    if list.is_empty() {
        gfreap();
        if !SCHED.lock.try_lock().map(|s| s.gfree.is_empty() && s.gfree_stack.is_empty()).unwrap_or(true) {
            let mut s = SCHED.lock.lock();
            while list.len() < GFREE_BATCH {
                // Gs with their stacks first (Go: gFree.stack, then noStack).
                let Some(g) = s.gfree_stack.pop().or_else(|| s.gfree.pop()) else { break };
                // The scavenger's low-water mark (see gfscavenge).
                s.gfree_stack_low = s.gfree_stack_low.min(s.gfree_stack.len());
                // SAFETY: moved from one list to the other under the lock.
                unsafe { list.push(g) };
            }
        }
    }
    list.pop()
}

/// Go's `gfpurge`: a P that stops existing (`procresize`, with the world
/// stopped and `sched.lock` held: `s`) moves its free Gs to the global
/// list, stacks and all, where the next P to need a G takes them (`gfget`)
/// and the scavenger unmaps what sits unused for a period (`gfscavenge`).
///
/// It gave their stacks back at once. Then every GOMAXPROCS change that
/// removed a P unmapped up to GFREE_MAX stacks, and when the P came back,
/// its goroutines faulted them in again: in two boots of `bench=forkjoin`,
/// 5 of the 6 2-P runs (each after a 1-P run) mapped 82 to 151 stack pages
/// (bench/README.md).
pub(super) fn gfpurge(s: &mut SchedLocked, pp: &'static P) {
    // SAFETY: the world is stopped; nobody else holds pp.
    let gfree = unsafe { pp.gfree.get_mut() };
    // Some may have no pages (a refill takes `gfree` once `gfree_stack` is
    // empty): the scavenger's unmapping finds nothing to unmap in theirs.
    s.gfree_stack.push_all(&mut gfbatch(gfree, 0));
}

// ---------------------------------------------------------------------------
// Run queues

/// Go's `runqput` (+ `runqputslow` on overflow). `#[inline]`, so that
/// `goready` (every channel hand-off) pays no call: under TCG a call and
/// its return are two jump-cache look-ups (bench/README.md).
#[inline]
pub fn runqput(pp: &'static P, gp: NonNull<G>, next: bool) {
    let randomize = SCHEDRANDOM.load(Ordering::Relaxed);
    // The random bit only matters with schedrandom=1: don't step the
    // generator otherwise.
    let r = if randomize { rand32(getm()) } else { 1 };
    // SAFETY: we are the M holding pp, with preemption disabled (callers),
    // so this is the only Local for pp's queue.
    let local = unsafe { pp.runq.local() };
    if let Some(batch) = local.put(gp, next, randomize, r) {
        runqputslow(batch);
    }
}

/// The global-queue half of Go's `runqputslow`: the batch `put` took from
/// a full local queue goes to the global one.
#[cold]
#[inline(never)]
fn runqputslow(batch: gmp_core::runq::Overflow<G>) {
    // Link the batch before taking the lock, as Go's runqputslow does, and
    // splice it in under the lock in O(1) (Go's globrunqputbatch). Linking
    // writes each G's schedlink, a cache line per G, possibly last written
    // by another core: done under the lock, it kept every other P that
    // wanted the global queue spinning for all of them.
    let mut q = GQueue::new();
    for g in batch {
        // SAFETY: the batch's Gs were just removed from our ring; they are
        // on no other list, and Gs are never freed.
        unsafe { q.push_back(g) };
    }
    let n = q.len() as i64;
    let mut s = SCHED.lock.lock();
    s.runq.push_back_all(&mut q);
    runqsize_add(&mut s, n);
}

/// `sched.runqsize += d` (d may be negative). Only ever written with
/// sched.lock held (the `_s` argument proves it), so a load and a store
/// suffice; lock-free readers (findRunnable, the parking re-check) read it
/// without the lock.
/// - A growth is a SeqCst store (an XCHG, a full barrier): the submitter's
///   half of the spinning protocol is "publish the G, then load
///   `nmspinning`" (wakep), and the lock's release is a plain store, which
///   that load could pass. Its partner: a spinning M that gives up
///   decrements `nmspinning` (SeqCst), then re-checks this counter
///   (`check_runqs_no_p`); one of the two sees the other.
/// - A shrink is a plain release store: a reader that still sees the old,
///   larger value takes the lock and finds less than it hoped; nobody waits
///   on a shrink. (Go's `sched.runqsize` is a plain int under the lock.)
#[inline]
fn runqsize_add(_s: &mut SchedLocked, d: i64) {
    let v = SCHED.runqsize.load(Ordering::Relaxed) as i64 + d;
    if d > 0 {
        SCHED.runqsize.store(v as u32, Ordering::SeqCst);
    } else {
        SCHED.runqsize.store(v as u32, Ordering::Release);
    }
}

/// Put a G on the global queue (Go's `globrunqput`), lock held.
fn globrunqput(s: &mut SchedLocked, gp: NonNull<G>) {
    // SAFETY: the caller owns gp and hands it to the queue.
    unsafe { s.runq.push_back(gp) };
    // SeqCst: read without the lock by findRunnable; a submitter's store
    // must be visible to a parking M's re-check (see the protocol comment).
    runqsize_add(s, 1);
}

pub(super) fn globrunqputhead(s: &mut SchedLocked, gp: NonNull<G>) {
    // SAFETY: as in globrunqput.
    unsafe { s.runq.push_front(gp) };
    runqsize_add(s, 1);
}

/// Go's `globrunqget`: take a batch from the global queue, run the first,
/// and move the rest to pp's local queue. Lock held.
///
/// `put`: a G that yields, put at the queue's tail in this same lock hold
/// just before the batch is taken (`gosched_fast`). `sched.runqsize` is
/// then written once, with the net change, which is never a growth: the
/// batch takes at least one G.
///
/// `#[inline(always)]`: its call sites are in `findRunnable` and
/// `gosched_fast`, and two yielding goroutines take this path on every
/// other `Gosched`; out of line, the call and its return were two block
/// look-ups under emulation.
#[inline(always)]
fn globrunqget(s: &mut SchedLocked, pp: &'static P, max: u32, put: Option<NonNull<G>>) -> Option<NonNull<G>> {
    let mut put_n: i64 = 0;
    if let Some(gp) = put {
        // SAFETY: the yielding G is ours (runnable, on no queue); we hand it
        // to the queue.
        unsafe { s.runq.push_back(gp) };
        put_n = 1;
    }
    let size = s.runq.len();
    if size == 0 {
        return None;
    }
    let n = globrunqget_count(size, GOMAXPROCS.load(Ordering::Relaxed), max);
    if n == 0 {
        // Unreachable with a G put (size >= 1 gives n >= 1); count it anyway.
        runqsize_add(s, put_n);
        return None;
    }
    let gp = s.runq.pop_front()?;
    let mut moved = 1;
    let mut rest = n - 1;
    // Go's loop (`for ; n > 0; n--`) does nothing when the batch is one G,
    // as it is on every Gosched of a lone goroutine. Skip the call (and its
    // return, a block look-up under emulation) then, not only the loop.
    if rest > 0 {
        // SAFETY: we hold pp (we are its M).
        let local = unsafe { pp.runq.local() };
        let mut it = core::iter::from_fn(|| {
            if rest == 0 {
                return None;
            }
            rest -= 1;
            s.runq.pop_front()
        });
        let mp = getm();
        let randomize = SCHEDRANDOM.load(Ordering::Relaxed);
        // SAFETY: fastrand owned by this M.
        let fr = if randomize { Some(unsafe { mp.fastrand.get_mut() }) } else { None };
        moved += local.put_batch(&mut it, fr);
        // put_batch pulls from `it` only while a slot is free; with n <= 128
        // and our queue empty or nearly so, every G fits. Anything left is
        // still in the global queue (never popped), so nothing can be lost.
    }
    runqsize_add(s, put_n - moved as i64);
    Some(gp)
}

// ---------------------------------------------------------------------------
// Waking Ms

/// Go's `wakep`: make sure some M is spinning if there is an idle P.
///
/// Inlined into its callers (every `ready`, `newproc` and `Gosched`): when
/// every P is busy it is three loads, and a call and its return would cost
/// more than that under emulation (a `ret` is an indirect jump, a lookup of
/// the next translated block). The rest is `wakep_idle_p`. `always`: with
/// `#[inline]`, LLVM kept one copy out of line in `gosched_m`.
#[inline(always)]
pub fn wakep() {
    // No idle P: there is no core to start. Go 1.19 returns here; Go 1.21
    // records under sched.lock that a spinner was wanted (`needspinning`),
    // so that an M about to give up its P spins instead. We record it
    // without the lock: store `needspinning`, then re-read `npidle`. An M
    // giving up its P increments `npidle`, then reads `needspinning`
    // (find_runnable). Both SeqCst: a Dekker pair, so either we see its P
    // and go on to start an M for it, or it sees our flag and spins.
    if SCHED.npidle.load(Ordering::SeqCst) == 0 {
        if SCHED.needspinning.load(Ordering::Relaxed) == 0 {
            SCHED.needspinning.store(1, Ordering::SeqCst);
        }
        if SCHED.npidle.load(Ordering::SeqCst) == 0 {
            return;
        }
    }
    wakep_idle_p();
}

/// `wakep` once an idle P was seen: claim the right to spin, take the P and
/// start an M on it.
#[inline(never)]
fn wakep_idle_p() {
    // Be conservative about spinning threads: only start one if none is.
    // The submitter's half of the protocol (its run queue store precedes
    // this load): gmp_core::spinning.
    if !spinning::wakep_claim(&SCHED.nmspinning) {
        return;
    }
    let _pg = PreemptGuard::new();
    let pp = {
        let mut s = SCHED.lock.lock();
        match pidleget_spinning(&mut s) {
            Some(pp) => pp,
            None => {
                SCHED.nmspinning.fetch_sub(1, Ordering::SeqCst);
                return;
            }
        }
    };
    startm(Some(pp), true);
}

/// Go's `startm`: run `pp` (or an idle P) on an idle M.
pub(super) fn startm(pp: Option<&'static P>, spinning: bool) {
    let mut s = SCHED.lock.lock();
    let pp = match pp.or_else(|| pidleget(&mut s)) {
        Some(pp) => pp,
        None => {
            if spinning {
                SCHED.nmspinning.fetch_sub(1, Ordering::SeqCst);
            }
            return;
        }
    };
    let Some(nmp) = mget(&mut s) else {
        // No idle core (all run Gs, or sit in syscalls): Go would create an
        // M here. We cannot make cores, so the P goes back to the idle list;
        // any local work moves to the global queue where every M looks.
        // SAFETY: the P was handed to us (idle or given), so we own its queue.
        let local = unsafe { pp.runq.local() };
        local.drain(|g| globrunqput(&mut s, g));
        pidleput(&mut s, pp);
        if spinning {
            SCHED.nmspinning.fetch_sub(1, Ordering::SeqCst);
        }
        return;
    };
    drop(s);
    nmp.spinning.store(spinning, Ordering::Relaxed);
    // Release: pairs with the acquire swap in mpark().
    nmp.nextp.store(pp as *const P as *mut P, Ordering::Release);
    nmp.wakeups.fetch_add(1, Ordering::Relaxed);
    notewakeup(&nmp.park, nmp.apic_id);
}

/// Go's `handoffp`: the current M gives up `pp` (syscall, locked G parked).
fn handoffp(pp: &'static P) {
    super::tracer::p_handoff(pp);
    if !pp.runq.stealer().is_empty() || SCHED.runqsize.load(Ordering::SeqCst) != 0 {
        startm(Some(pp), false);
        return;
    }
    if pp.timers.len() > 0 {
        startm(Some(pp), false);
        return;
    }
    if SCHED.nmspinning.load(Ordering::SeqCst) + SCHED.npidle.load(Ordering::SeqCst) == 0
        && SCHED.nmspinning.compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    {
        SCHED.needspinning.store(0, Ordering::SeqCst);
        startm(Some(pp), true);
        return;
    }
    let mut s = SCHED.lock.lock();
    if SCHED.gcwaiting.load(Ordering::SeqCst) {
        pp.status.store(P_GCSTOP, Ordering::Release);
        stopwait_done(&mut s);
        return;
    }
    if s.runq.len() != 0 {
        drop(s);
        startm(Some(pp), false);
        return;
    }
    pidleput(&mut s, pp);
}

fn become_spinning(mp: &M) {
    super::tracer::spin_start();
    mp.spinning.store(true, Ordering::Relaxed);
    SCHED.nmspinning.fetch_add(1, Ordering::SeqCst);
    SCHED.needspinning.store(0, Ordering::SeqCst);
}

/// Go's `resetspinning`: we found work; stop spinning and, since there may
/// be more, make sure another M spins.
fn resetspinning(mp: &M) {
    super::tracer::spin_stop();
    mp.spinning.store(false, Ordering::Relaxed);
    //~ lab4 begin resetspinning: stop counting as spinning (throw if nmspinning was already 0),
    //~ then wakep: a submitter that saw us spinning relied on us, and there may be more work.
    let prev = SCHED.nmspinning.fetch_sub(1, Ordering::SeqCst);
    if prev == 0 {
        super::fatal::throw("findrunnable: negative nmspinning");
    }
    wakep();
    //~ lab4 end
}

// ---------------------------------------------------------------------------
// The scheduler loop

/// Go's `schedule`: find a runnable G and run it. Never returns.
pub extern "C" fn schedule() -> ! {
    let mp = getm();
    if percpu::locks_read() != 0 {
        super::fatal::throw("schedule: holding locks");
    }
    // We arrive from mcall (or an interrupt) with interrupts off. The fast
    // path (a G in the local or global queue) keeps them off until the G
    // runs: every `sti` ends a translated block under emulation, and the
    // switch into the G turns them on anyway. find_runnable turns them on
    // before anything that can take long (stealing, parking).
    let lg = mp.lockedg.load(Ordering::Relaxed);
    // One call of execute (inlined): a second copy for the locked case
    // pushed the fast path across code pages.
    let (gp, inherit) = if !lg.is_null() {
        x86_64::instructions::interrupts::enable();
        // This core runs only its locked goroutine: wait for it.
        locked_wait(mp, lg);
        // SAFETY: Gs are never freed; locked_wait returns once it is runnable.
        (unsafe { NonNull::new_unchecked(lg) }, false)
    } else {
        // Go's `top: pp.preempt = false`: whatever asked this P to enter the
        // scheduler got its way. A request made after this point stays set
        // and preempts the G we pick (irq_dispatch's want_async_preempt).
        // Only a set flag is written back: a plain load costs nothing here.
        // Acquire: pairs with preemptone's release store; a stop-the-world
        // stores gcwaiting before it, so find_runnable below sees the stop.
        let pp = p_of(mp);
        if pp.preempt.load(Ordering::Acquire) {
            pp.preempt.store(false, Ordering::Relaxed);
        }
        let (gp, inherit) = find_runnable(mp);
        if mp.spinning.load(Ordering::Relaxed) {
            resetspinning(mp);
        }
        // SAFETY: Gs are never freed.
        let lm = unsafe { gp.as_ref() }.lockedm.load(Ordering::Relaxed);
        if !lm.is_null() && lm != mp as *const M as *mut M {
            // Locked Gs are never queued (see locked_wait).
            locked_g_queued(gp, lm);
        }
        (gp, inherit)
    };
    execute(mp, gp, inherit)
}

#[cold]
#[inline(never)]
fn locked_g_queued(gp: NonNull<G>, lm: *mut M) -> ! {
    // SAFETY: Gs and Ms are never freed.
    let (g, m) = unsafe { (gp.as_ref(), &*lm) };
    super::fatal::fatal(format_args!("schedule: goroutine {} is locked to M{} but was queued", g.id(), m.id))
}

/// Go's `execute`: run gp on this M. `inherit`: gp came from runnext and
/// shares the current time slice (schedtick is not incremented).
///
/// `#[inline(always)]`: its few callers (`schedule`, `park_m`'s direct
/// hand-off, `exitsyscall0`) each get their own copy, and every switch
/// makes one call fewer (a look-up of the next translated block under
/// emulation; `execute` never returns, so nothing is lost).
#[inline(always)]
fn execute(mp: &M, gp: NonNull<G>, inherit: bool) -> ! {
    // SAFETY: Gs are never freed.
    let g = unsafe { gp.as_ref() };
    let pp = p_of(mp);
    // The invariant at the switch boundary: a G runs on one core at a time.
    // Two checks make a breach fatal:
    // - `on_cpu` still set: the core that ran gp last has not saved its
    //   state yet (dropg). Acquire: pairs with the release store in dropg(),
    //   so once it reads false, gp's saved state is visible here.
    // - two cores that got gp at once both read false here; the status CAS
    //   below lets only one of them take gp from runnable to running, and
    //   the other fails with a bad transition.
    // So a load and a store do, not a locked swap: one locked instruction
    // less on every switch (about 9 ns at two vCPUs under TCG).
    if g.on_cpu.load(Ordering::Acquire) {
        already_running(g);
    }
    g.on_cpu.store(true, Ordering::Relaxed);
    mp.curg.store(gp.as_ptr(), Ordering::Relaxed);
    percpu::this().curg.store(gp.as_ptr() as *mut u8, Ordering::Relaxed);
    casgstatus(g, G_RUNNABLE, G_RUNNING);
    super::tracer::go_start(g, pp);
    g.preempt.store(false, Ordering::Relaxed);
    g.stackguard0.store(g.stack_lo + super::preempt::STACK_GUARD, Ordering::Relaxed);
    // schedtick and nexec have a single writer (the M holding pp, the M
    // running g), so a load and a store do: no locked read-modify-write.
    // sysmon reads schedtick (retake) to see a new slice, and slicestart
    // for when it began.
    if !inherit {
        pp.slicestart.store(time::rdtsc(), Ordering::Relaxed);
        // Release: pairs with the acquire load of schedtick in retake, which
        // then reads slicestart.
        pp.schedtick.store(pp.schedtick.load(Ordering::Relaxed).wrapping_add(1), Ordering::Release);
    }
    g.lastcpu.store(mp.id as u32, Ordering::Relaxed);
    g.nexec.store(g.nexec.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    // SAFETY: gp was runnable, so its gobuf holds a saved (or fresh)
    // context; it is now this core's curg.
    unsafe { super::preempt::resume(gp.as_ptr()) }
}

#[cold]
#[inline(never)]
fn already_running(g: &G) -> ! {
    super::fatal::fatal(format_args!(
        "execute: goroutine {} is already running on cpu{} (a G must never run on two cores)",
        g.id(),
        g.lastcpu.load(Ordering::Relaxed)
    ))
}

/// Go's `dropg`: the current G stops being this M's curg. Its state was
/// saved by mcall (or the preemption path) before we got here.
fn dropg(mp: &M, gp: &G) {
    mp.curg.store(null_mut(), Ordering::Relaxed);
    percpu::this().curg.store(null_mut(), Ordering::Relaxed);
    // Release: pairs with the acquire load of `on_cpu` in execute() on
    // whichever core runs gp next.
    gp.on_cpu.store(false, Ordering::Release);
}

/// Go's `findRunnable`: block until there is a G to run. Returns it and
/// whether it inherits the time slice.
fn find_runnable(mp: &M) -> (NonNull<G>, bool) {
    'top: loop {
        // The fast path below (timers, the local and global queues) runs
        // with interrupts off, as schedule() arrives: its `lock_irqs_off`
        // relies on it. A later pass (after gcstopm, or after
        // find_runnable_slow turned them on and asked to start over) turns
        // them off again; `cli` alone costs
        // next to nothing under TCG (it is `sti` that ends a block).
        x86_64::instructions::interrupts::disable();
        let pp = p_of(mp);
        if SCHED.gcwaiting.load(Ordering::SeqCst) {
            gcstopm(mp);
            continue 'top;
        }
        // Timers that are due (may ready Gs onto our queue).
        super::time::check_timers(pp);

        // Fairness: every 61st schedule, look at the global queue first, so
        // two Gs that keep respawning each other cannot starve it.
        if check_global_first(pp.schedtick.load(Ordering::Relaxed), SCHED.runqsize.load(Ordering::Relaxed)) {
            let mut s = SCHED.lock.lock_irqs_off();
            if let Some(gp) = globrunqget(&mut s, pp, 1, None) {
                return (gp, false);
            }
        }

        // Local run queue.
        // SAFETY: we are pp's M.
        if let Some(x) = unsafe { pp.runq.local() }.get() {
            return x;
        }

        // Global run queue.
        if SCHED.runqsize.load(Ordering::Relaxed) != 0 {
            let mut s = SCHED.lock.lock_irqs_off();
            if let Some(gp) = globrunqget(&mut s, pp, 0, None) {
                return (gp, false);
            }
        }

        // Nothing at hand: the rest of the search is out of line.
        if let Some(found) = find_runnable_slow(mp, pp) {
            return found;
        }
    }
}

/// The slow half of `findRunnable`: steal, then give up the P and park.
/// `None` means "start over" (Go's `goto top`): new work may have come,
/// or this M got a P back. Out of line so that the fast half (the local
/// and global queues), which every switch runs, stays small: under
/// emulation each jump from one code page to another is a look-up.
#[inline(never)]
fn find_runnable_slow(mp: &M, pp: &'static P) -> Option<(NonNull<G>, bool)> {
    // Nothing at hand: from here on the search can take a while.
    x86_64::instructions::interrupts::enable();

    // Steal from other Ps, if not too many Ms are spinning already.
    let procs = GOMAXPROCS.load(Ordering::Relaxed);
    if mp.spinning.load(Ordering::Relaxed)
        || 2 * SCHED.nmspinning.load(Ordering::SeqCst) < procs - SCHED.npidle.load(Ordering::SeqCst)
    {
        if !mp.spinning.load(Ordering::Relaxed) {
            become_spinning(mp);
        }
        match steal_work(mp, pp) {
            StealResult::Found(gp, inherit) => return Some((gp, inherit)),
            StealResult::NewWork => return None,
            StealResult::Nothing => {}
        }
    }

    // Nothing found: our spare Gs to the global list, and a moment for
    // the stack scavenger (at most once per period, as Go's background
    // scavenger runs when there is time).
    gftrim(pp);
    gfscavenge();
    // Give up the P and park, atomically registering on midle (see the
    // module comment).
    let mut s = SCHED.lock.lock();
    if SCHED.gcwaiting.load(Ordering::SeqCst) {
        drop(s);
        return None;
    }
    if let Some(gp) = globrunqget(&mut s, pp, 0, None) {
        return Some((gp, false));
    }
    if !mp.spinning.load(Ordering::Relaxed) && SCHED.needspinning.load(Ordering::SeqCst) == 1 {
        become_spinning(mp);
        drop(s);
        return None;
    }
    // Local work may have been added by an interrupt-free path on this
    // core only; still, never pidleput a P with work.
    if !pp.runq.stealer().is_empty() {
        drop(s);
        return None;
    }
    let pp = releasep(mp);
    // Our P goes idle, or to a core whose locked goroutine waits for
    // one (see pidleput). Either way we park like any M that gave up
    // its P (below), spinning count included.
    let went_idle = pidleput(&mut s, pp);
    mput(&mut s, mp);
    // The other half of wakep's lock-free `needspinning` (npidle was
    // just incremented, SeqCst): a submitter that saw no idle P just
    // before ours became idle asked for a spinner. Be it.
    if went_idle
        && !mp.spinning.load(Ordering::Relaxed)
        && SCHED.needspinning.load(Ordering::SeqCst) == 1
        && munlink(&mut s, mp)
    {
        let pp = pidleget(&mut s).expect("the P we just put");
        drop(s);
        acquirep(mp, pp);
        become_spinning(mp);
        return None;
    }
    drop(s);

    if mp.spinning.load(Ordering::Relaxed) {
        mp.spinning.store(false, Ordering::Relaxed);
        super::tracer::spin_stop();
        // The parking half of the protocol: decrement, fence, then
        // re-check every queue (gmp_core::spinning). The timers are
        // part of the re-check: `wake_netpoller` (a timer added) reads
        // nmspinning after adding, and relies on a spinning M to see
        // its timer when it parks, so the deadline below is read after
        // this decrement.
        let recheck = || check_runqs_no_p() || super::time::any_timer_due();
        let Ok(found) = spinning::drop_spinning_recheck(&SCHED.nmspinning, recheck) else {
            super::fatal::throw("findrunnable: negative nmspinning");
        };
        if found {
            let mut s = SCHED.lock.lock();
            if s.pidle.is_some() && munlink(&mut s, mp) {
                let pp = pidleget(&mut s).unwrap();
                acquirep(mp, pp);
                drop(s);
                super::time::clear_idle_deadline();
                become_spinning(mp);
                return None;
            }
            // Someone already woke us (startm): the note is set and
            // nextp is ours; fall through to collect it.
        }
    }
    // Sleep no later than the earliest timer of *any* P (Go's
    // checkTimersNoP/pollUntil), with a one-shot LAPIC timer, like Go's
    // netpoll(delay) in the idle M. Every M that parks arms for it, and
    // a timer added later that is earlier than every armed deadline
    // wakes a core to re-arm (time::wake_netpoller).
    super::time::set_idle_deadline(super::time::earliest_timer());
    mpark(mp);
    None
}

enum StealResult {
    Found(NonNull<G>, bool),
    NewWork,
    Nothing,
}

/// How long a thief waits before it takes a running P's `runnext` (the last
/// pass of `steal_work`), so that a G just readied by a goroutine that is
/// about to block (a channel hand-off) runs on the victim's core, where the
/// hand-off put it, instead of moving every hop to another core.
///
/// Go writes `usleep(3)` here, about 50 times a native channel operation. But
/// a `usleep(3)` lasts far longer on Linux: the sleep's hrtimer may fire as
/// late as the thread's timer slack allows (50 µs by default), so on the
/// development machine it took 48 µs at least and 85 µs at the median,
/// natively and under qemu-user alike (a C loop of 200 `usleep(3)`s). Our
/// `udelay` waits exactly, and a channel operation under TCG takes about
/// 1.5 µs, so 3 µs let the thief win the race most of the time. 25 µs, still
/// shorter than Go's wait as it runs, cut `token_ring` to 0.72x and
/// `chan_sync` to 0.78x and raised `wake_latency` (whose receiver *is* a
/// stolen runnext) by 1.28x (`bench/README.md`).
const RUNNEXT_STEAL_WAIT_US: u64 = 25;

/// Go's `stealWork`: four passes over all Ps in a random order.
fn steal_work(mp: &M, pp: &'static P) -> StealResult {
    let procs = GOMAXPROCS.load(Ordering::Relaxed);
    // SAFETY: the steal order is owned by this M.
    let order = unsafe { mp.steal_order.get_mut() };
    // SAFETY: as above.
    if unsafe { mp.steal_order_count.get() } != procs {
        order.reset(procs);
        // SAFETY: as above.
        unsafe { mp.steal_order_count.set(procs) };
    }
    for i in 0..STEAL_TRIES {
        let steal_timers_or_runnext = i == STEAL_TRIES - 1;
        let mut e = order.start(rand32(mp));
        while !e.done() {
            if SCHED.gcwaiting.load(Ordering::Relaxed) {
                return StealResult::NewWork;
            }
            let p2 = allp(e.position());
            e.next();
            if core::ptr::eq(p2, pp) {
                continue;
            }
            if steal_timers_or_runnext && p2.timers.len() > 0 {
                // Run the victim's expired timers; if that readied a G onto
                // our queue, go run it.
                if super::time::steal_timers(p2, pp) {
                    // SAFETY: we are pp's M.
                    if let Some((gp, inherit)) = unsafe { pp.runq.local() }.get() {
                        return StealResult::Found(gp, inherit);
                    }
                }
            }
            if SCHED.idlepmask.read(p2.id as usize, Ordering::Relaxed) {
                continue;
            }
            // SAFETY: we are pp's M; p2's queue is stolen through Steal only.
            let dst = unsafe { pp.runq.local() };
            let wait = || {
                if p2.status.load(Ordering::Relaxed) == P_RUNNING {
                    // Give the victim time to run its runnext itself (see
                    // RUNNEXT_STEAL_WAIT_US).
                    time::udelay(RUNNEXT_STEAL_WAIT_US);
                }
            };
            if let Some(gp) = p2.runq.stealer().steal_into(&dst, steal_timers_or_runnext, wait) {
                super::tracer::runq_steal(p2, dst.len());
                mp.steals.fetch_add(1, Ordering::Relaxed);
                return StealResult::Found(gp, false);
            }
        }
    }
    StealResult::Nothing
}

/// Go's `checkRunqsNoP`: after dropping its P, is there work anywhere?
fn check_runqs_no_p() -> bool {
    if SCHED.runqsize.load(Ordering::SeqCst) != 0 {
        return true;
    }
    let procs = GOMAXPROCS.load(Ordering::Relaxed);
    (0..procs).any(|i| !SCHED.idlepmask.read(i as usize, Ordering::SeqCst) && !allp(i).runq.stealer().is_empty())
}

// ---------------------------------------------------------------------------
// Stopping Ms: stop-the-world, locked Gs

/// Go's `stopm`: park this M (which holds no P) until given one.
fn stopm(mp: &M) {
    let mut s = SCHED.lock.lock();
    mput(&mut s, mp);
    drop(s);
    mpark(mp);
}

/// Go's `gcstopm`: a stop-the-world is pending; stop our P and park.
fn gcstopm(mp: &M) {
    if mp.spinning.load(Ordering::Relaxed) {
        mp.spinning.store(false, Ordering::Relaxed);
        SCHED.nmspinning.fetch_sub(1, Ordering::SeqCst);
    }
    let pp = releasep(mp);
    let mut s = SCHED.lock.lock();
    pp.status.store(P_GCSTOP, Ordering::Release);
    stopwait_done(&mut s);
    drop(s);
    stopm(mp);
}

/// Our locked goroutine cannot run now (Go's `stoplockedm`).
///
/// ## LockOSThread on bare metal
///
/// Go hands the P of a blocked locked thread to another M and parks the
/// thread. Here an M is a core and the rule is stronger: while a goroutine
/// is locked, its core (and the P it holds) runs only that goroutine. So the
/// locked M keeps its P and waits: other Gs queued on the P move to the
/// global queue (and `wakep` finds them a core), the P's timers keep firing
/// here (the locked G's own `sleep` lives there), and whoever readies the
/// locked G does not queue it but wakes this M (`ready_locked`). GOMAXPROCS
/// is effectively one less while a goroutine is locked, as it would be
/// with a thread pinned to a CPU.
///
/// `#[inline(never)]`: schedule() calls it only on a core with a locked
/// goroutine; inlined, it pushed schedule's fast path across code pages.
#[inline(never)]
fn locked_wait(mp: &M, lg: *mut G) {
    // SAFETY: Gs are never freed.
    let g = unsafe { &*lg };
    loop {
        if SCHED.gcwaiting.load(Ordering::SeqCst) {
            gcstopm(mp);
            continue;
        }
        let pp = p_of(mp);
        super::time::check_timers(pp);
        if g.status() == G_RUNNABLE {
            return;
        }
        if !pp.runq.stealer().is_empty() {
            // SAFETY: we are pp's M.
            let local = unsafe { pp.runq.local() };
            let mut s = SCHED.lock.lock();
            local.drain(|x| globrunqput(&mut s, x));
            drop(s);
            wakep();
        }
        {
            let mut s = SCHED.lock.lock();
            s.nmidlelocked += 1;
            checkdead(&mut s);
        }
        super::time::set_private_deadline(pp.timers.next_when());
        // SeqCst pairs with ready_locked: it stores the status, then wakes
        // us; we publish that we sleep (inside notesleep) and re-check.
        if g.status() != G_RUNNABLE {
            notesleep(&mp.park, &mp.poll_window_ns);
        }
        noteclear(&mp.park);
        super::time::clear_idle_deadline();
        SCHED.lock.lock().nmidlelocked -= 1;
    }
}

/// `ready` for a goroutine locked to an M: make it runnable and wake its M,
/// which runs nothing else (see `locked_wait`). It is never queued.
fn ready_locked(g: &G, lmp: &M) {
    casgstatus(g, G_WAITING, G_RUNNABLE);
    notewakeup(&lmp.park, lmp.apic_id);
}

/// Go's `checkdead`: with every M idle, is any goroutine able to run ever
/// again? Called with sched.lock held whenever an M goes idle.
fn checkdead(s: &mut SchedLocked) {
    let mcount = NCPU.load(Ordering::Relaxed);
    // An M in a syscall (nmsys) is running: it will come back with work.
    let idle = SCHED.nmidle.load(Ordering::Relaxed) + s.nmidlelocked;
    if idle < mcount {
        return;
    }
    if idle > mcount {
        super::fatal::fatal(format_args!(
            "checkdead: inconsistent counts: {} idle Ms + {} locked > {} Ms",
            SCHED.nmidle.load(Ordering::Relaxed),
            s.nmidlelocked,
            mcount
        ));
    }
    if MAIN_STARTED.load(Ordering::Relaxed) == false {
        return;
    }
    // A pending timer will wake an idle M: not dead (Go: "Maybe jump time
    // forward for playground", then "There are no goroutines running, so we
    // can look at the P's timers").
    if super::time::any_timer_pending() {
        return;
    }
    if s.runq.len() != 0 {
        if s.nmidlelocked > 0 {
            // Runnable Gs, but every core is locked to a goroutine that
            // waits for them: nothing can ever run.
            super::fatal::deadlock_locked_cores(s.nmidlelocked);
        }
        super::fatal::throw("checkdead: all Ms idle but the global run queue is not empty");
    }
    if SCHED.nmsys.load(Ordering::SeqCst) > 0 {
        return;
    }
    // Go throws "checkdead: runnable g" here. With locked goroutines a
    // runnable G can legitimately be on its way to a core that was just
    // woken for it (ready_locked) but has not left its sleep yet, and
    // still counts as idle: that is progress, not a deadlock.
    let mut runnable = false;
    for_each_g(|g| {
        let st = g.status();
        runnable |= st == G_RUNNABLE || st == G_RUNNING || st == G_SYSCALL;
    });
    if runnable {
        return;
    }
    // Go: with no goroutine left at all (not even a waiting one), main
    // must have called Goexit: say so instead of "all asleep".
    let mut waiting = false;
    for_each_g(|g| waiting |= g.status() == G_WAITING);
    if !waiting {
        super::fatal::fatal(format_args!("no goroutines (main called runtime.Goexit) - deadlock!"));
    }
    super::fatal::deadlock();
}

// ---------------------------------------------------------------------------
// Goroutine transitions (on g0, through mcall)

/// Go's `goexit1`: the running goroutine's function returned.
pub extern "C" fn goexit1() -> ! {
    check_no_locks("goexit");
    // SAFETY: on a goroutine stack; no locks held (checked).
    unsafe { mcall(goexit0) };
    unreachable!()
}

extern "C" fn goexit0(gp: *mut G) -> ! {
    let mp = getm();
    // SAFETY: gp is the G that just called mcall: live, ours.
    let g = unsafe { &*gp };
    casgstatus(g, G_RUNNING, G_DEAD);
    super::tracer::go_exit(g);
    if !g.lockedm.load(Ordering::Relaxed).is_null() {
        g.lockedm.store(null_mut(), Ordering::Relaxed);
        mp.lockedg.store(null_mut(), Ordering::Relaxed);
    }
    dropg(mp, g);
    // We are on g0: nothing touches the dead goroutine's stack from here
    // until newproc1 marks it live again.
    // SAFETY: gp is non-null.
    let gp = unsafe { NonNull::new_unchecked(gp) };
    crate::mem::stack::set_live(stack_of(gp), false);
    gfput(p_of(mp), gp);
    schedule()
}

#[inline]
fn check_no_locks(what: &str) {
    let n = percpu::locks_read();
    if n != 0 {
        holding_locks(what, n);
    }
}

#[cold]
#[inline(never)]
fn holding_locks(what: &str, n: u32) -> ! {
    super::fatal::fatal(format_args!("{what}: called while holding {n} runtime lock(s) or preempt guard(s)"))
}

/// Go's `Gosched`: yield the processor; the G goes to the global queue.
#[inline]
pub fn gosched() {
    check_no_locks("gosched");
    // SAFETY: on a goroutine stack with no locks (checked above).
    unsafe { mcall(gosched_m) };
}

extern "C" fn gosched_m(gp: *mut G) -> ! {
    goschedimpl_inline(gp, false)
}

/// Shared by Gosched and preemption (Go's `goschedImpl`).
pub fn goschedimpl(gp: *mut G, preempted: bool) -> ! {
    if !preempted {
        // The yield's copy, with its fast path (gosched_fast).
        gosched_m(gp)
    }
    goschedimpl_inline(gp, true)
}

/// The body of `goschedimpl`, inlined into `gosched_m` (every `Gosched`)
/// so that a yield makes one call fewer, a look-up of the next translated
/// block under emulation. Runs on g0 with interrupts off: `mcall` turned
/// them off, and so did the interrupt that preempts asynchronously.
#[inline(always)]
fn goschedimpl_inline(gp: *mut G, preempted: bool) -> ! {
    let mp = getm();
    // SAFETY: gp is the G that called mcall (or was interrupted): live.
    let g = unsafe { &*gp };
    casgstatus(g, G_RUNNING, G_RUNNABLE);
    super::tracer::go_stop(g, preempted);
    dropg(mp, g);
    if preempted {
        // SAFETY: owner cell of a G we own (it is between queues).
        unsafe { g.waitreason.set(WaitReason::Preempted) };
    }
    if g.lockedm.load(Ordering::Relaxed) == mp as *const M as *mut M {
        // A locked G yields to nothing but the scheduler's own checks
        // (timers, stop-the-world); schedule() runs it again.
        schedule()
    }
    if !preempted {
        // SAFETY: gp is non-null.
        gosched_fast(mp, unsafe { NonNull::new_unchecked(gp) });
    }
    {
        let mut s = SCHED.lock.lock_irqs_off();
        // SAFETY: gp is non-null.
        globrunqput(&mut s, unsafe { NonNull::new_unchecked(gp) });
    }
    if MAIN_STARTED.load(Ordering::Relaxed) {
        wakep();
    }
    schedule()
}

/// The fast path of a yield: `goschedImpl`'s `globrunqput` and
/// `findRunnable`'s `globrunqget` in one hold of `sched.lock`. Returns
/// (having changed nothing but `pp.preempt` and due timers) when the yield
/// must take the ordinary path: put, `wakep`, `schedule`.
///
/// Go's yield puts the G at the tail of the global queue under
/// `sched.lock`, drops the lock, and calls `schedule`; `findRunnable` then
/// checks (in this order) for a stop-the-world, due timers, its 1-in-61
/// fairness turn, and the local queue, and only then takes the lock again
/// for a batch from the global queue, which the G just joined. With two
/// goroutines on one P, every other yield goes that whole way. Here those
/// checks come first, and when each of them says "the global queue is
/// next", the put and the take share one lock hold: one lock round trip
/// and one `runqsize` XCHG fewer (the barrier of a growth, which the net
/// change here never is: the batch takes at least the G that was put, so a
/// spinning M that reads the count without the lock sees the old count or
/// the new one, and if the G is still queued, both are non-zero). What
/// runs next is what `schedule` would have chosen.
///
/// Not for a preempted G: preemption is rare, and its copy of
/// `goschedImpl` stays small.
#[inline(always)]
fn gosched_fast(mp: &M, gp: NonNull<G>) {
    let pp = p_of(mp);
    // schedule's `pp.preempt = false` (see there).
    if pp.preempt.load(Ordering::Acquire) {
        pp.preempt.store(false, Ordering::Relaxed);
    }
    if SCHED.gcwaiting.load(Ordering::SeqCst) {
        return;
    }
    super::time::check_timers(pp);
    // The fairness turn counts our G, which Go's has put already.
    if check_global_first(pp.schedtick.load(Ordering::Relaxed), SCHED.runqsize.load(Ordering::Relaxed) + 1) {
        return;
    }
    // SAFETY: we are pp's M.
    if !unsafe { pp.runq.local() }.is_empty() {
        return;
    }
    let next = {
        let mut s = SCHED.lock.lock_irqs_off();
        globrunqget(&mut s, pp, 0, Some(gp))
    };
    let Some(next) = next else {
        // A batch from a queue we just put a G on is never empty.
        super::fatal::throw("gosched: the global queue lost the yielding goroutine")
    };
    if MAIN_STARTED.load(Ordering::Relaxed) {
        wakep();
    }
    // SAFETY: Gs are never freed.
    let lm = unsafe { next.as_ref() }.lockedm.load(Ordering::Relaxed);
    if !lm.is_null() && lm != mp as *const M as *mut M {
        locked_g_queued(next, lm);
    }
    execute(mp, next, false)
}

/// Go's `goyield`: like `gosched`, but the G goes to the tail of this P's
/// *local* run queue (not `runnext`, not the global queue), so it runs again
/// on this P soon, after the Gs already queued here. The mutex's and the
/// semaphore's direct hand-off use it to let the woken waiter (in
/// `runnext`) run at once without sending the releaser to the back of the
/// global queue.
pub fn goyield() {
    check_no_locks("goyield");
    // SAFETY: on a goroutine stack with no locks (checked above).
    unsafe { mcall(goyield_m) };
}

extern "C" fn goyield_m(gp: *mut G) -> ! {
    let mp = getm();
    // SAFETY: gp is the G that called mcall: live, ours.
    let g = unsafe { &*gp };
    casgstatus(g, G_RUNNING, G_RUNNABLE);
    super::tracer::go_stop(g, false);
    dropg(mp, g);
    if g.lockedm.load(Ordering::Relaxed) == mp as *const M as *mut M {
        // As in goschedimpl: a locked G is never queued.
        schedule()
    }
    // SAFETY: gp is non-null; we hold our P (on its g0).
    runqput(p_of(mp), unsafe { NonNull::new_unchecked(gp) }, false);
    schedule()
}

/// Go's `goparkunlock`: park, and release `lock` once the G is marked
/// waiting. The caller holds `lock` through a `mem::forget`-ten guard. Channel
/// and semaphore waits park this way.
pub(crate) fn goparkunlock(lock: &super::lock::RuntimeLock<()>, reason: WaitReason) {
    gopark(Some(parkunlock_c), lock as *const super::lock::RuntimeLock<()> as *mut u8, reason);
}

/// Go's `parkunlock_c`, the commit function of `goparkunlock`.
///
/// `park_m` recognises it by its address and makes a direct call, which
/// LLVM inlines: under TCG every indirect call and every return looks its
/// target up in the vCPU's jump cache, and the return into `park_m` shared
/// an entry with `park_m`'s own entry in every layout of one build (a
/// colliding look-up on every park; `bench/README.md`). If the comparison
/// ever misses (the same function at two addresses), the indirect call
/// runs this same code.
#[inline(always)]
fn parkunlock_c(_gp: *mut G, lock: *mut u8) -> bool {
    // SAFETY: goparkunlock's contract: `lock` is a RuntimeLock this core
    // holds through a forgotten guard, and it outlives the park (a channel
    // or semaphore root that the parked goroutine keeps alive).
    unsafe { (*(lock as *const super::lock::RuntimeLock<()>)).unlock_forgotten() };
    true
}

/// Go's `gopark`: block the current goroutine. `unlockf(gp, arg)` runs on
/// g0 after the G is marked waiting; if it returns false, the park is
/// cancelled and the G continues at once.
///
/// The caller may hold spin locks (with forgotten guards) if `unlockf`
/// releases them: that is how a channel's lock is held until the G is
/// safely waiting. `schedule` checks that none is left.
pub fn gopark(unlockf: Option<fn(*mut G, *mut u8) -> bool>, arg: *mut u8, reason: WaitReason) {
    if unlockf.is_none() {
        check_no_locks("gopark");
    }
    // The unlock function is handed to park_m through this M. A preemption
    // between these stores and mcall would move the G to another core and
    // leave them behind, so preemption is off from here until park_m (which
    // drops this guard's count by hand, on the same core).
    let pg = PreemptGuard::new();
    let mp = getm();
    let gp = getg();
    // SAFETY: this M and the running G own these cells.
    unsafe {
        mp.waitunlockf.set(unlockf);
        mp.waitlock.set(arg);
        (*gp).waitreason.set(reason);
    }
    core::mem::forget(pg);
    // SAFETY: on a goroutine stack; locks still held are released by unlockf.
    unsafe { mcall(park_m) };
}

extern "C" fn park_m(gp: *mut G) -> ! {
    // The PreemptGuard forgotten in gopark.
    percpu::locks_dec();
    let mp = getm();
    // SAFETY: gp is the G that called mcall.
    let g = unsafe { &*gp };
    casgstatus(g, G_RUNNING, G_WAITING);
    super::tracer::go_block(g);
    dropg(mp, g);
    // SAFETY: owned by this M.
    let f = unsafe { mp.waitunlockf.get() };
    if let Some(f) = f {
        // SAFETY: as above.
        let arg = unsafe { mp.waitlock.get() };
        unsafe {
            mp.waitunlockf.set(None);
            mp.waitlock.set(null_mut());
        }
        let committed = if core::ptr::fn_addr_eq(f, parkunlock_c as fn(*mut G, *mut u8) -> bool) {
            parkunlock_c(gp, arg)
        } else {
            f(gp, arg)
        };
        if !committed {
            casgstatus(g, G_WAITING, G_RUNNABLE);
            super::tracer::go_unblock(g);
            // SAFETY: gp non-null.
            execute(mp, unsafe { NonNull::new_unchecked(gp) }, true);
        }
    }
    schedule()
}

/// Go's `ready`/`goready`: make a waiting G runnable, in our P's runnext.
pub fn goready(gp: *mut G) {
    let _pg = PreemptGuard::new();
    // SAFETY: the caller passes a G it took from a wait structure.
    let g = unsafe { &*gp };
    super::tracer::go_unblock(g);
    let lm = g.lockedm.load(Ordering::Relaxed);
    if !lm.is_null() {
        // SAFETY: Ms are never freed.
        return ready_locked(g, unsafe { &*lm });
    }
    casgstatus(g, G_WAITING, G_RUNNABLE);
    let mp = getm();
    // SAFETY: non-null.
    runqput(p_of(mp), unsafe { NonNull::new_unchecked(gp) }, true);
    wakep();
}

/// `ready` from g0 (timers, in findRunnable): same, without the guard.
pub fn ready_from_g0(pp: &'static P, gp: *mut G) {
    // SAFETY: as in goready.
    let g = unsafe { &*gp };
    super::tracer::go_unblock(g);
    let lm = g.lockedm.load(Ordering::Relaxed);
    if !lm.is_null() {
        // SAFETY: Ms are never freed.
        return ready_locked(g, unsafe { &*lm });
    }
    casgstatus(g, G_WAITING, G_RUNNABLE);
    // SAFETY: non-null.
    runqput(pp, unsafe { NonNull::new_unchecked(gp) }, true);
    wakep();
}

// ---------------------------------------------------------------------------
// LockOSThread

pub fn lock_os_thread() {
    let _pg = PreemptGuard::new();
    let gp = getg();
    if gp.is_null() {
        return;
    }
    let mp = getm();
    // SAFETY: the running G owns its lockcount.
    let g = unsafe { &*gp };
    unsafe { g.lockcount.set(g.lockcount.get() + 1) };
    g.lockedm.store(mp as *const M as *mut M, Ordering::Relaxed);
    mp.lockedg.store(gp, Ordering::Relaxed);
}

pub fn unlock_os_thread() {
    let _pg = PreemptGuard::new();
    let gp = getg();
    if gp.is_null() {
        return;
    }
    let mp = getm();
    // SAFETY: as in lock_os_thread.
    let g = unsafe { &*gp };
    let n = unsafe { g.lockcount.get() };
    if n == 0 {
        return;
    }
    unsafe { g.lockcount.set(n - 1) };
    if n == 1 {
        g.lockedm.store(null_mut(), Ordering::Relaxed);
        mp.lockedg.store(null_mut(), Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------
// Stop the world and GOMAXPROCS: runtime/stw.rs

pub use super::stw::{gomaxprocs, GomaxprocsError};
use super::stw::procresize;

// ---------------------------------------------------------------------------
// Introspection

/// Call `f` on every G (for tracebacks and schedtrace).
pub fn for_each_g(mut f: impl FnMut(&G)) {
    let gs = ALLGS.lock();
    for g in gs.iter() {
        // SAFETY: Gs are never freed.
        f(unsafe { g.0.as_ref() });
    }
}

/// As `for_each_g`, without the lock (fatal paths only).
pub fn for_each_g_unlocked(mut f: impl FnMut(&G)) {
    // SAFETY: best effort while dying.
    let gs = unsafe { ALLGS.data_unlocked() };
    for g in gs.iter() {
        // SAFETY: Gs are never freed.
        f(unsafe { g.0.as_ref() });
    }
}

pub fn allp_slice() -> impl Iterator<Item = &'static P> {
    (0..GOMAXPROCS.load(Ordering::Relaxed)).map(allp)
}

pub fn allm_slice() -> impl Iterator<Item = &'static M> {
    (0..NCPU.load(Ordering::Relaxed) as usize).map(m_by_id)
}

pub fn global_runq_len() -> u32 {
    SCHED.runqsize.load(Ordering::Relaxed)
}

pub fn midle_count() -> u32 {
    SCHED.nmidle.load(Ordering::Relaxed)
}

/// Go's `gopreempt_m`, entered from a safe point: the G goes to the global
/// queue and the scheduler runs.
pub fn gopreempt() {
    check_no_locks("gopreempt");
    // SAFETY: on a goroutine stack with no locks.
    unsafe { mcall(gopreempt_m) };
}

extern "C" fn gopreempt_m(gp: *mut G) -> ! {
    goschedimpl(gp, true)
}

/// The id of the P the caller runs on. Only meaningful while preemption
/// is disabled (hold a PreemptGuard), e.g. to index per-P caches.
pub fn current_p_id() -> u32 {
    p_of(getm()).id
}

/// The P the caller runs on. Only meaningful while preemption is disabled
/// (hold a PreemptGuard); used by tests that poke at per-P state.
pub fn current_p() -> &'static P {
    p_of(getm())
}

/// (stack.lo, goid) of the running goroutine (tests).
pub fn current_stack_lo() -> (u64, u64) {
    // SAFETY: called on a goroutine; curg is live.
    let g = unsafe { &*getg() };
    (g.stack_lo, g.id())
}

// ---------------------------------------------------------------------------
// System calls: entersyscall / exitsyscall / handoff
//
// A "system call" here is a long non-preemptible section that keeps its core
// busy without running Go code (polled device I/O, a firmware call). As in
// Go, the goroutine keeps its M but lets its P go: the P is left in
// `_Psyscall`; if the section is short, `exitsyscall` simply takes it back
// (`exitsyscallfast`); if it lasts past one sysmon tick, sysmon's `retake`
// moves the P to `_Pidle` and `handoffp`s it to a parked core, so the other
// goroutines keep running. On exit the goroutine takes its old P back if it
// can, any idle P otherwise, or goes to the global queue while its M parks.

/// Go's `entersyscall`.
pub fn entersyscall() {
    let _pg = PreemptGuard::new();
    let mp = getm();
    let gp = getg();
    // SAFETY: the running G.
    let g = unsafe { &*gp };
    if g.status() != G_RUNNING {
        super::fatal::fatal(format_args!(
            "entersyscall: goroutine {} must be running, not already in a syscall",
            g.id()
        ));
    }
    casgstatus(g, G_RUNNING, G_SYSCALL);
    let pp = p_of(mp);
    super::tracer::syscall_enter(g, pp);
    pp.syscalltick.fetch_add(1, Ordering::Relaxed);
    pp.sysmontick.syscallwhen.store(time::nanotime(), Ordering::Relaxed);
    mp.oldp.store(pp as *const P as *mut P, Ordering::Relaxed);
    pp.m.store(null_mut(), Ordering::Relaxed);
    mp.p.store(null_mut(), Ordering::Release);
    // No sched.lock here (Go takes none either): the spin lock is unfair,
    // and a goroutine looping on syscalls could be starved by it.
    SCHED.nmsys.fetch_add(1, Ordering::SeqCst);
    // Release: pairs with the CAS in retake/stop_the_world that takes it.
    pp.status.store(P_SYSCALL, Ordering::Release);
    if SCHED.gcwaiting.load(Ordering::SeqCst) {
        entersyscall_gcwait(pp);
    }
}

/// Go's `entersyscall_gcwait`: a stop-the-world is waiting, so give it our
/// P now rather than make it wait for sysmon or the CAS in its own loop.
///
/// Under `sched.lock`, and only while a stop still waits (`stopwait > 0`).
/// The `gcwaiting` we read may be stale: this core can stall here (an
/// interrupt, or the host descheduling a vCPU) while the stop takes the P
/// itself (its CAS), finishes and restarts the world, and another M runs the
/// same P into a syscall of its own. A CAS made then succeeds on that P (ABA)
/// and, with no stop in progress, counted it off a `stopwait` of 0 ("a P
/// stopped twice"; regress::stw_entersyscall_aba). With the lock held and
/// `stopwait > 0`, a stop is in progress and has not counted this P (it is
/// still `_Psyscall`), so giving it is right whichever M's syscall it is in.
fn entersyscall_gcwait(pp: &'static P) {
    let mut s = SCHED.lock.lock();
    if s.stopwait > 0 && pp.status.compare_exchange(P_SYSCALL, P_GCSTOP, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
        pp.syscalltick.fetch_add(1, Ordering::Relaxed);
        stopwait_done(&mut s);
    }
}

/// Go's `entersyscallblock`: the section is known to block, so hand the P
/// off at once instead of waiting for sysmon.
pub fn entersyscallblock() {
    entersyscall();
    let _pg = PreemptGuard::new();
    let mp = getm();
    let pp = mp.oldp.load(Ordering::Relaxed);
    // SAFETY: Ps are never freed.
    let pp = unsafe { &*pp };
    if pp.status.compare_exchange(P_SYSCALL, P_IDLE, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
        handoffp(pp);
    }
}

/// Go's `exitsyscall`: get a P back, or queue the goroutine and park.
pub fn exitsyscall() {
    let pg = PreemptGuard::new();
    let mp = getm();
    let gp = getg();
    // SAFETY: the running G.
    let g = unsafe { &*gp };
    if g.status() != G_SYSCALL {
        super::fatal::fatal(format_args!("exitsyscall: goroutine {} is not in a syscall (entersyscall first)", g.id()));
    }
    SCHED.nmsys.fetch_sub(1, Ordering::SeqCst);
    let oldp = mp.oldp.swap(null_mut(), Ordering::Relaxed);
    // exitsyscallfast: our old P, if sysmon did not take it.
    // SAFETY: Ps are never freed.
    if let Some(pp) = unsafe { oldp.as_ref() } {
        if pp.status.compare_exchange(P_SYSCALL, P_RUNNING, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            pp.m.store(mp as *const M as *mut M, Ordering::Relaxed);
            mp.p.store(pp as *const P as *mut P, Ordering::Release);
            pp.syscalltick.fetch_add(1, Ordering::Relaxed);
            casgstatus(g, G_SYSCALL, G_RUNNING);
            super::preempt::restore_preempt_request(g);
            super::tracer::syscall_exit(g);
            return;
        }
    }
    // Any idle P.
    let pp = {
        let mut s = SCHED.lock.lock();
        if SCHED.gcwaiting.load(Ordering::SeqCst) { None } else { pidleget(&mut s) }
    };
    if let Some(pp) = pp {
        acquirep(mp, pp);
        casgstatus(g, G_SYSCALL, G_RUNNING);
        super::preempt::restore_preempt_request(g);
        super::tracer::syscall_exit(g);
        return;
    }
    // None: queue ourselves and park this M (Go's exitsyscall0).
    drop(pg);
    // SAFETY: on a goroutine stack; no locks held.
    unsafe { mcall(exitsyscall0) };
}

extern "C" fn exitsyscall0(gp: *mut G) -> ! {
    let mp = getm();
    // SAFETY: gp is the G that called mcall.
    let g = unsafe { &*gp };
    casgstatus(g, G_SYSCALL, G_RUNNABLE);
    super::tracer::go_stop_syscall(g);
    dropg(mp, g);
    // A locked goroutine is never queued: its core waits for a P and then
    // runs it (Go's exitsyscall0 → stoplockedm → execute), asking for the
    // next P that goes idle (LOCKEDM_NEEDP, served by pidleput).
    let locked = g.lockedm.load(Ordering::Relaxed) == mp as *const M as *mut M;
    // Take an idle P and run gp, else queue gp (or ask for a P) and put this
    // M on midle: all under one hold of sched.lock, as find_runnable gives
    // up its P and parks. Not queue, unlock, then `stopm` (this did, with a
    // wakep in between): in that gap this M had no P and was not on midle,
    // so a `startm` there (another M's `handoffp` entering a syscall) found
    // no idle M and left its P idle with work on the global queue, and this
    // M then parked beside it. Go's `startm` would make a new M; we cannot,
    // so no M may be missing from midle while it looks. Seen as
    // `preempt::syscall_handoff` (one P, two cores, the tracer on) making
    // no progress for the whole 100 ms of a blocking syscall, once in a CI
    // run, with this core's vCPU thread presumably descheduled in the gap.
    let mut s = SCHED.lock.lock();
    // SAFETY: non-null: mcall passes the G that called it.
    let gp = unsafe { NonNull::new_unchecked(gp) };
    if !SCHED.gcwaiting.load(Ordering::SeqCst) {
        if let Some(pp) = pidleget(&mut s) {
            drop(s);
            acquirep(mp, pp);
            if locked {
                // schedule() runs our locked goroutine (locked_wait).
                schedule()
            }
            execute(mp, gp, false)
        }
    }
    if locked {
        LOCKEDM_NEEDP.set(mp.id as usize, Ordering::SeqCst);
    } else {
        globrunqput(&mut s, gp);
    }
    mput(&mut s, mp);
    drop(s);
    mpark(mp);
    // We hold a P; schedule() runs the global queue's goroutines or, for a
    // locked one, our goroutine (locked_wait).
    schedule()
}

/// sysmon's half of the syscall protocol (Go's `retake`, `_Psyscall` case):
/// `gmp_core::retake::decide` found the P in the same syscall for a whole
/// sysmon period and worth taking: take it, unless exitsyscall got it back
/// first.
pub fn retake_syscall(pp: &'static P) {
    if pp.status.compare_exchange(P_SYSCALL, P_IDLE, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
        pp.syscalltick.fetch_add(1, Ordering::Relaxed);
        SYSCALL_HANDOFFS.fetch_add(1, Ordering::Relaxed);
        handoffp(pp);
    }
}

/// `sched.nmspinning + sched.npidle` for retake's keep-the-P rule.
pub fn nmspinning_npidle() -> u32 {
    SCHED.nmspinning.load(Ordering::SeqCst) + SCHED.npidle.load(Ordering::SeqCst)
}

/// Ps taken from syscalls by sysmon (statistics).
pub static SYSCALL_HANDOFFS: AtomicU64 = AtomicU64::new(0);
