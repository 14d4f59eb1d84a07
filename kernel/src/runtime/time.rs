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
    /// Deadline of the last timer fired from this heap: timers must fire
    /// in deadline order per P (checked, see TIMER_ORDER_VIOLATIONS).
    last_fired: AtomicU64,
}

/// Timers that fired before an earlier-deadline timer of the same P (a
/// heap bug if ever non-zero; the many-sleepers test asserts it is 0).
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
            last_fired: AtomicU64::new(0),
        }
    }

    pub fn len(&self) -> usize {
        self.count.load(Ordering::Acquire) as usize
    }

    pub fn next_when(&self) -> u64 {
        self.next.load(Ordering::Acquire)
    }

    fn update(&self, h: &TimerHeap<Timer>) {
        // Release: pairs with the acquire loads in next_when()/len().
        self.next.store(h.peek().map(|(w, _)| w).unwrap_or(u64::MAX), Ordering::Release);
        self.count.store(h.len() as u64, Ordering::Release);
    }

    /// Go's `addtimer`.
    pub fn add(&self, when: u64, kind: TimerKind) -> u64 {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        TIMERS_ADDED.fetch_add(1, Ordering::Relaxed);
        let mut g = self.heap.lock();
        push_or_die(&mut g.0, when, Timer { kind, seq });
        self.update(&g.0);
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
                    // Under the lock, so the check sees the true firing order.
                    if t.0 < self.last_fired.load(Ordering::Relaxed) {
                        TIMER_ORDER_VIOLATIONS.fetch_add(1, Ordering::Relaxed);
                    }
                    self.last_fired.store(t.0, Ordering::Relaxed);
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

/// Before parking, remember the deadline to wake up for: the core then
/// halts with a one-shot LAPIC timer for it (irq::before_halt).
pub fn set_idle_deadline(when: u64) {
    percpu::this().wake_deadline.store(if when == u64::MAX { 0 } else { when.max(1) }, Ordering::Relaxed);
}

pub fn clear_idle_deadline() {
    percpu::this().wake_deadline.store(0, Ordering::Relaxed);
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
