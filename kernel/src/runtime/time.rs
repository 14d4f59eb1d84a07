//! Timers, Go style: a 4-ary heap per P (gmp_core::timerheap), run by the
//! scheduler in `findRunnable`, stolen on `stealWork`'s last pass, and an
//! idle core that sleeps until its P's earliest timer with the LAPIC timer
//! in one-shot mode (Go's `netpoll(delay)` in the idle M).
use super::lock::SpinLock;
use super::runtime2::{WaitReason, G, P};
use crate::arch::x86_64::{percpu, time};
use core::sync::atomic::{AtomicU64, Ordering};
use gmp_core::timerheap::TimerHeap;

/// What a timer does when it fires.
#[derive(Clone, Copy)]
pub enum TimerKind {
    /// Make this (sleeping) G runnable.
    Ready(*mut G),
    /// Call f(arg, seq) on the scheduler stack, `seq` being the timer's own
    /// id (so a callback can tell a stale arming from the current one).
    /// Must not block.
    Func(fn(usize, u64), usize),
}

#[derive(Clone, Copy)]
pub struct Timer {
    pub kind: TimerKind,
    /// Unique id, for `del_timer`.
    pub seq: u64,
}

/// A P's heap. The raw G pointers inside are handles to never-freed Gs,
/// moved between cores only under the P's timer lock.
struct Heap(TimerHeap<Timer>);
// SAFETY: see above.
unsafe impl Send for Heap {}

/// A P's timers (Go: `pp.timers`, `pp.timersLock`, `pp.numTimers`).
///
/// The heap grows as Go's slice does (there is no per-P limit; running out
/// of kernel heap is the limit, reported as a fatal error naming the
/// count), and shrinks back after a burst.
pub struct PTimers {
    heap: SpinLock<Heap>,
    /// Earliest deadline, or u64::MAX: lets other cores look without the
    /// lock. Written under the lock after every change.
    next: AtomicU64,
    count: AtomicU64,
}

/// Timers that fired while an earlier-deadline timer sat in the same P's
/// heap (a heap bug if ever non-zero; the many-sleepers test asserts 0).
///
/// This is checked at every pop: the timer popped must be no later than
/// every timer left in the heap. That is exact. Comparing with the last
/// deadline fired is not: a timer's deadline is computed before the timer
/// is added (`sleep` computes `now + d`, then parks, and the timer goes in
/// from `park_m`), so a timer can arrive already due with a deadline
/// earlier than one that fired meanwhile; that is not out of order.
pub static TIMER_ORDER_VIOLATIONS: AtomicU64 = AtomicU64::new(0);
/// Timers fired, added and stopped before firing (statistics, and the
/// after()/Timer tests: a select that returns stops its losing timers).
pub static TIMERS_FIRED: AtomicU64 = AtomicU64::new(0);
pub static TIMERS_ADDED: AtomicU64 = AtomicU64::new(0);
pub static TIMERS_STOPPED: AtomicU64 = AtomicU64::new(0);

static SEQ: AtomicU64 = AtomicU64::new(1);

/// Push under the lock; out of memory is fatal with the count.
fn push_or_die(h: &mut TimerHeap<Timer>, when: u64, t: Timer) {
    if h.try_push(when, t).is_err() {
        let n = h.len();
        super::fatal::fatal(format_args!("out of memory for timers ({n} timers on one P)"));
    }
}

impl PTimers {
    pub fn new() -> Self {
        PTimers {
            heap: SpinLock::new(Heap(TimerHeap::new())),
            next: AtomicU64::new(u64::MAX),
            count: AtomicU64::new(0),
        }
    }

    pub fn len(&self) -> usize {
        self.count.load(Ordering::Acquire) as usize
    }

    pub fn next_when(&self) -> u64 {
        // SeqCst: pairs with the SeqCst store in update(); the parking M's
        // read of the timers (earliest_timer) and the adder's read of
        // SLEEP_UNTIL/nmspinning (wake_netpoller) form a Dekker pair.
        self.next.load(Ordering::SeqCst)
    }

    fn update(&self, h: &TimerHeap<Timer>) {
        // SeqCst: see next_when(); also publishes the count for len().
        self.count.store(h.len() as u64, Ordering::Release);
        self.next.store(h.peek().map(|(w, _)| w).unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// Go's `addtimer`.
    pub fn add(&self, when: u64, kind: TimerKind) -> u64 {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        TIMERS_ADDED.fetch_add(1, Ordering::Relaxed);
        let mut g = self.heap.lock();
        push_or_die(&mut g.0, when, Timer { kind, seq });
        self.update(&g.0);
        drop(g);
        wake_netpoller(when);
        seq
    }

    /// Go's `deltimer`: remove timer `seq` if it has not fired, and return
    /// it (its argument may own a reference the caller must release).
    pub fn del(&self, seq: u64) -> Option<Timer> {
        let mut g = self.heap.lock();
        let h = &mut g.0;
        let r = h.remove_where(|_, t| t.seq == seq).map(|(_, t)| t);
        h.shrink();
        self.update(h);
        r
    }

    /// Pop up to `out.len()` expired timers.
    fn pop_expired(&self, now: u64, out: &mut [(u64, Timer)]) -> usize {
        if self.next_when() > now {
            return 0;
        }
        let mut g = self.heap.lock();
        let h = &mut g.0;
        let mut n = 0;
        while n < out.len() {
            match h.pop_expired(now) {
                Some(t) => {
                    // Under the lock: nothing left may be due before it.
                    if h.peek().is_some_and(|(w, _)| w < t.0) {
                        TIMER_ORDER_VIOLATIONS.fetch_add(1, Ordering::Relaxed);
                    }
                    out[n] = t;
                    n += 1;
                }
                None => break,
            }
        }
        h.shrink();
        self.update(h);
        n
    }
}

impl Default for PTimers {
    fn default() -> Self {
        Self::new()
    }
}

/// Nanoseconds of emulated time since boot (Go's `nanotime`).
pub fn nanotime() -> u64 {
    time::nanotime()
}

/// Fire the timers of `from` that are due; Gs become runnable on `to`.
/// Returns how many fired.
fn run_timers(from: &P, to: &'static P) -> usize {
    let now = nanotime();
    let mut total = 0;
    loop {
        let mut buf = [(0u64, Timer { kind: TimerKind::Func(|_, _| {}, 0), seq: 0 }); 32];
        let n = from.timers.pop_expired(now, &mut buf);
        TIMERS_FIRED.fetch_add(n as u64, Ordering::Relaxed);
        super::tracer::timer_fire(n);
        for (_, t) in &buf[..n] {
            match t.kind {
                TimerKind::Ready(gp) => super::proc::ready_from_g0(to, gp),
                TimerKind::Func(f, arg) => f(arg, t.seq),
            }
        }
        total += n;
        if n < buf.len() {
            return total;
        }
    }
}

/// Go's `checkTimers`, for the P we hold (called on g0 by findRunnable).
pub fn check_timers(pp: &'static P) {
    let next = pp.timers.next_when();
    // No timer: skip reading the clock (this runs on every schedule).
    if next != u64::MAX && next <= nanotime() {
        run_timers(pp, pp);
    }
}

/// stealWork's last pass: run p2's expired timers, readying onto pp.
pub fn steal_timers(p2: &P, pp: &'static P) -> bool {
    p2.timers.next_when() <= nanotime() && run_timers(p2, pp) > 0
}

pub fn any_timer_due() -> bool {
    let now = nanotime();
    super::proc::allp_slice().any(|p| p.timers.next_when() <= now)
}

/// The earliest deadline over every P's timers, or u64::MAX.
pub fn earliest_timer() -> u64 {
    super::proc::allp_slice().map(|p| p.timers.next_when()).min().unwrap_or(u64::MAX)
}

pub fn any_timer_pending() -> bool {
    super::proc::allp_slice().any(|p| p.timers.len() > 0)
}

/// Move every timer of a P being destroyed to `to`.
pub fn move_timers(from: &P, to: &P) {
    let mut buf = [(0u64, Timer { kind: TimerKind::Func(|_, _| {}, 0), seq: 0 }); 32];
    loop {
        let n = from.timers.pop_expired(u64::MAX, &mut buf);
        if n == 0 {
            return;
        }
        let mut g = to.timers.heap.lock();
        for (w, t) in &buf[..n] {
            push_or_die(&mut g.0, *w, *t);
        }
        to.timers.update(&g.0);
    }
}

// ---------------------------------------------------------------------------
// Waking a parked core for a new timer (Go's wakeNetPoller)
//
// A parked M halts until the earliest timer of any P (findRunnable arms it).
// A timer added later, on a busy P, may be earlier than every deadline that
// parked Ms armed, and then nobody would wake for it: it would fire only
// when its busy P next reschedules (a whole time slice, or more). Go's
// `wakeNetPoller` wakes the poller, or `wakep`s. We keep `SLEEP_UNTIL`, the
// earliest deadline a parked M has armed (u64::MAX: none). An adder whose
// timer is earlier calls `wakep`: an M starts spinning, finds nothing to
// run yet, and parks again armed for the new earliest timer.
//
// Why no timer is missed:
// - Adder: store the heap's `next` (SeqCst), then load SLEEP_UNTIL and, in
//   wakep, `npidle` and `nmspinning` (SeqCst).
// - Parker: put its P idle (`npidle += 1`) or drop its spinning count
//   (`nmspinning -= 1`), both SeqCst, then read every P's `next`
//   (earliest_timer) to arm its deadline.
// In the single total order of these SeqCst operations, either the parker
// reads the timers after the adder stored it (and arms for it), or the
// adder's loads come after the parker's increment/decrement: it sees the
// idle P and starts an M for it, or sees no spinner and starts one.
// SLEEP_UNTIL may be stale in one direction only (too late, after the M
// that armed the minimum woke; each M resets it on waking if it still holds
// its own deadline): that costs a spare wake-up, never a missed one. An M
// that armed a deadline and wakes at it takes an idle P and runs (or
// steals) the due timers.

/// Earliest deadline armed by a parked M, or u64::MAX.
static SLEEP_UNTIL: AtomicU64 = AtomicU64::new(u64::MAX);

/// A timer at `when` was just added: wake a core if nobody parked will wake
/// for it in time.
fn wake_netpoller(when: u64) {
    if when < SLEEP_UNTIL.load(Ordering::SeqCst) && super::proc::scheduler_started() {
        super::proc::wakep();
    }
}

/// Before parking, remember the deadline to wake up for: the core then
/// halts with a one-shot LAPIC timer for it (irq::before_halt), and is
/// counted on for timers up to then (SLEEP_UNTIL).
pub fn set_idle_deadline(when: u64) {
    if when != u64::MAX {
        SLEEP_UNTIL.fetch_min(when.max(1), Ordering::SeqCst);
    }
    set_private_deadline(when);
}

/// As set_idle_deadline, for a core that will look only at its own P's
/// timers when it wakes (a core waiting for its locked goroutine): it is
/// not counted on for other timers.
pub fn set_private_deadline(when: u64) {
    percpu::this().wake_deadline.store(if when == u64::MAX { 0 } else { when.max(1) }, Ordering::Relaxed);
}

pub fn clear_idle_deadline() {
    let me = percpu::this();
    let d = me.wake_deadline.swap(0, Ordering::Relaxed);
    if d != 0 {
        // If the earliest armed deadline is ours, we no longer stand for it.
        let _ = SLEEP_UNTIL.compare_exchange(d, u64::MAX, Ordering::SeqCst, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------
// sleep

fn sleep_unlockf(gp: *mut G, when: *mut u8) -> bool {
    // On g0 of the M that parked gp, which holds a P: put the timer there.
    // Adding it only now (after gp is marked waiting) means the timer can
    // never fire on a G that is still running (Go: resetForSleep).
    let mp = super::proc::getm();
    let pp = mp.p.load(Ordering::Relaxed);
    // SAFETY: an M in park_m holds its P; Ps are never freed.
    unsafe { &*pp }.timers.add(when as u64, TimerKind::Ready(gp));
    true
}

/// `time.Sleep(d)`: block the goroutine for at least `ns` nanoseconds of
/// emulated time.
pub fn sleep(ns: u64) {
    if ns == 0 {
        return;
    }
    let when = nanotime().saturating_add(ns);
    super::proc::gopark(Some(sleep_unlockf), when as *mut u8, WaitReason::Sleep);
}

/// The id of a timer from [`after_func`]: the P it was added to (a hint:
/// timers move only when a P is destroyed) and its sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerId {
    pub p: u32,
    pub seq: u64,
}

/// Run `f(arg, seq)` on the scheduler stack of some core after `ns` ns
/// (Go's `time.AfterFunc` without a goroutine: f must not block). Returns
/// an id for [`stop_timer`].
pub fn after_func(ns: u64, f: fn(usize, u64), arg: usize) -> TimerId {
    let _pg = super::lock::PreemptGuard::new();
    let mp = super::proc::getm();
    let pp = mp.p.load(Ordering::Relaxed);
    // SAFETY: a running G's M holds a P (never freed).
    let pp = unsafe { &*pp };
    let seq = pp.timers.add(nanotime().saturating_add(ns), TimerKind::Func(f, arg));
    TimerId { p: pp.id, seq }
}

/// Cancel a timer from [`after_func`] if it has not fired (Go's
/// `deltimer`), and return its argument: the caller releases whatever the
/// argument owned, since `f` will not run. None: it fired (or is firing)
/// already. The P that took it is looked at first; a P destroyed by
/// GOMAXPROCS moved its timers elsewhere, so then every P is searched.
pub fn stop_timer(id: TimerId) -> Option<usize> {
    let hint = super::proc::allp_slice().find(|p| p.id == id.p);
    let t = hint
        .and_then(|p| p.timers.del(id.seq))
        .or_else(|| super::proc::allp_slice().filter(|p| p.id != id.p).find_map(|p| p.timers.del(id.seq)))?;
    TIMERS_STOPPED.fetch_add(1, Ordering::Relaxed);
    match t.kind {
        TimerKind::Func(_, arg) => Some(arg),
        TimerKind::Ready(_) => crate::runtime::fatal::throw("stop_timer: a sleep timer"),
    }
}
