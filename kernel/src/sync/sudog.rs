//! `sudog`: one goroutine waiting in one wait queue (Go's `runtime2.go`),
//! and the per-P caches they come from (Go's `acquireSudog` and
//! `releaseSudog` in `proc.go`).
//!
//! A goroutine can wait on several queues at once (a `select` waits on
//! every channel it names), so the queue entry cannot be the G itself: each
//! wait gets its own small record, the sudog ("pseudo-G"). It says who waits
//! (`g`), where the value goes or comes from (`elem`), and how the wait ended
//! (`success`, `ticket`).
//!
//! ## Who owns a sudog
//!
//! - While it sits in a per-P cache or the central cache: the cache.
//! - From `acquire_sudog` until it is enqueued, and again once it is
//!   dequeued and its goroutine has been woken: the goroutine that acquired
//!   it. It fills the fields in, and reads the result after waking.
//! - While it is on a wait queue: whoever holds that queue's lock (a
//!   channel's lock or a semaphore root's lock). The waker writes the
//!   result fields under that lock, then hands the goroutine to `ready`;
//!   the run queue's release/acquire publishes them to the woken goroutine.
//!
//! Sudogs are allocated on the heap and never freed, only recycled, like
//! Gs: a pointer to one never dangles, which the select protocol relies on.
//!
//! ## The caches
//!
//! Parking is frequent (every blocking channel operation), so sudogs come
//! from a per-P cache of up to [`SUDOG_CACHE`] entries, used only with a
//! [`PreemptGuard`] held (so the goroutine stays on the P that owns the
//! cache). An empty cache refills half of its capacity from the central
//! cache; a full one moves half to it, under [`SUDOG_CENTRAL`]'s lock, so a
//! producer on one P and a consumer on another do not pay a lock per wait.
use crate::runtime::lock::{PreemptGuard, SpinLock};
use crate::runtime::proc::{current_p_id, MAX_PROCS};
use crate::GoroutineHandle;
use alloc::boxed::Box;
use core::cell::UnsafeCell;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicU32, Ordering};
use gmp_core::rand::{mix64, FastRand};

/// Go's `sudog`.
pub(crate) struct Sudog {
    /// The waiting goroutine.
    pub g: GoroutineHandle,
    /// Links in a channel's `WaitQ` or a semaphore root's list.
    pub next: *mut Sudog,
    pub prev: *mut Sudog,
    /// Channels: the value slot on the waiting goroutine's stack (the value
    /// to send, or where to put the received one).
    pub elem: *mut u8,
    /// Channels: the channel this sudog waits on.
    pub c: *const super::chan::HChan,
    /// `select`: the next sudog of the same select, in lock order (Go's
    /// `waitlink`, the list hanging off `g.waiting`).
    pub waitlink: *mut Sudog,
    /// This sudog belongs to a `select`: wakers must first win `select_done`.
    pub is_select: bool,
    /// `select`: the selecting goroutine's "somebody already woke me" flag
    /// (Go's `g.selectDone`), on that goroutine's stack.
    pub select_done: *const AtomicU32,
    /// Channels: true if woken because a value was passed, false if woken
    /// by `close`.
    pub success: bool,
    /// Semaphores: the address waited on.
    pub key: usize,
    /// Semaphores: 1 if the releaser handed the unit straight to us.
    pub ticket: u32,
}

impl Sudog {
    const fn new() -> Self {
        Sudog {
            g: GoroutineHandle(null_mut()),
            next: null_mut(),
            prev: null_mut(),
            elem: null_mut(),
            c: core::ptr::null(),
            waitlink: null_mut(),
            is_select: false,
            select_done: core::ptr::null(),
            success: false,
            key: 0,
            ticket: 0,
        }
    }
}

/// Capacity of a per-P cache (Go: `len(pp.sudogbuf)` = 128).
pub const SUDOG_CACHE: usize = 128;

/// What each P keeps for this module: its sudog cache, and the random
/// source `select` shuffles its cases with (Go uses the M's `cheaprand`; we
/// keep our own so as not to share the scheduler's state).
struct PerP {
    buf: [*mut Sudog; SUDOG_CACHE],
    n: usize,
    rand: FastRand,
    seeded: bool,
}

struct PerPCell(UnsafeCell<PerP>);
// SAFETY: entry i is only touched through `with_p`, by the goroutine that
// runs on P i with preemption disabled: one at a time.
unsafe impl Sync for PerPCell {}

static PERP: [PerPCell; MAX_PROCS] = [const {
    PerPCell(UnsafeCell::new(PerP { buf: [null_mut(); SUDOG_CACHE], n: 0, rand: FastRand::new(0), seeded: false }))
}; MAX_PROCS];

/// The central cache (Go's `sched.sudogcache` under `sched.sudoglock`): a
/// list linked through `next`.
struct Central(*mut Sudog);
// SAFETY: the sudogs on the list are owned by the list, reached only under
// the lock.
unsafe impl Send for Central {}
static SUDOG_CENTRAL: SpinLock<Central> = SpinLock::new(Central(null_mut()));

/// Run `f` on the current P's private state. Preemption is off meanwhile, so
/// the goroutine cannot move to another P, and no other goroutine can run
/// on this one. `f` must not call `with_p` again, nor block. Always
/// inlined: it is a few instructions around `f`, on every park.
#[inline(always)]
fn with_p<R>(f: impl FnOnce(&mut PerP) -> R) -> R {
    let _pg = PreemptGuard::new();
    let id = current_p_id() as usize;
    // SAFETY: see PerPCell: we are the only user of P `id`'s entry until the
    // guard drops, and `f` does not re-enter.
    f(unsafe { &mut *PERP[id].0.get() })
}

/// Go's `acquireSudog`: a clean sudog, from this P's cache if possible.
/// The cache hit is inlined into the channel and semaphore paths (every
/// blocking operation takes one); a refill is out of line.
#[inline]
pub(crate) fn acquire_sudog() -> *mut Sudog {
    with_p(|pp| {
        if pp.n == 0 {
            return acquire_sudog_slow(pp);
        }
        pp.n -= 1;
        pp.buf[pp.n]
    })
}

/// The empty-cache half of `acquire_sudog`: refill half the cache from the
/// central one under one lock, or allocate.
#[cold]
#[inline(never)]
fn acquire_sudog_slow(pp: &mut PerP) -> *mut Sudog {
    let mut central = SUDOG_CENTRAL.lock();
    while pp.n < SUDOG_CACHE / 2 && !central.0.is_null() {
        let s = central.0;
        // SAFETY: s is on the central list, which we hold.
        central.0 = unsafe { (*s).next };
        unsafe { (*s).next = null_mut() };
        pp.buf[pp.n] = s;
        pp.n += 1;
    }
    drop(central);
    if pp.n == 0 {
        return Box::into_raw(Box::new(Sudog::new()));
    }
    pp.n -= 1;
    pp.buf[pp.n]
}

/// Go's `releaseSudog`: give back a sudog that is on no queue any more.
/// Always inlined (LLVM kept it out of line with a plain `#[inline]`, so
/// every wake-up paid a call and a return); a spill of a full cache is out
/// of line.
///
/// # Safety
/// `s` came from `acquire_sudog`, the caller owns it (it is on no queue,
/// and no waker will touch it again), and does not use it afterwards.
#[inline(always)]
pub(crate) unsafe fn release_sudog(s: *mut Sudog) {
    // SAFETY: owned by the caller (see above).
    let sg = unsafe { &mut *s };
    if !sg.next.is_null() || !sg.prev.is_null() || !sg.waitlink.is_null() {
        sudog_still_linked();
    }
    *sg = Sudog::new();
    with_p(|pp| {
        if pp.n == SUDOG_CACHE {
            release_sudog_spill(pp);
        }
        pp.buf[pp.n] = s;
        pp.n += 1;
    })
}

#[cold]
#[inline(never)]
fn sudog_still_linked() -> ! {
    crate::runtime::fatal::throw("runtime: sudog released while still linked")
}

/// The full-cache half of `release_sudog`: move the top half of the cache
/// to the central one in one batch.
#[cold]
#[inline(never)]
fn release_sudog_spill(pp: &mut PerP) {
    let mut first: *mut Sudog = null_mut();
    let mut last: *mut Sudog = null_mut();
    while pp.n > SUDOG_CACHE / 2 {
        pp.n -= 1;
        let p = pp.buf[pp.n];
        // SAFETY: p is cached, so owned by this P's cache (us).
        unsafe { (*p).next = first };
        if last.is_null() {
            last = p;
        }
        first = p;
    }
    let mut central = SUDOG_CENTRAL.lock();
    // SAFETY: `last` is the tail of our private batch.
    unsafe { (*last).next = central.0 };
    central.0 = first;
}

/// A random number in `0..n` from this P's generator (Go's `cheaprandn`).
pub(crate) fn cheaprandn(n: u32) -> u32 {
    with_p(|pp| {
        if !pp.seeded {
            let base = crate::boot::params().seed.unwrap_or_else(crate::nanotime);
            let seed = base ^ ((current_p_id() as u64) << 48) ^ (pp as *mut PerP as u64);
            pp.rand.seed(mix64(seed));
            pp.seeded = true;
        }
        pp.rand.cheaprandn(n)
    })
}

// ---------------------------------------------------------------------------
// g.param: which sudog woke a goroutine.

/// The waker's side: tell `g` which of its sudogs completed (Go: `gp.param =
/// unsafe.Pointer(sg)`). Call before `ready(g)`.
pub(crate) fn set_param(g: GoroutineHandle, sg: *mut Sudog) {
    // SAFETY: Gs are never freed; param is an atomic.
    let gp = unsafe { &*g.0 };
    // Relaxed: the woken goroutine reads it after `ready`, whose run-queue
    // hand-off (release) and `execute` (acquire) order this store before
    // that load; the lock the waker holds orders it against other wakers.
    gp.param.store(sg as *mut u8, Ordering::Relaxed);
}

/// The woken goroutine's side: read and clear its own `param`.
pub(crate) fn take_param() -> *mut Sudog {
    let gp = crate::runtime::proc::getg();
    // SAFETY: the running goroutine is live.
    // Relaxed: see set_param (ordered by the ready/execute hand-off).
    unsafe { &*gp }.param.swap(null_mut(), Ordering::Relaxed) as *mut Sudog
}

/// Clear the current goroutine's `param` before it parks.
pub(crate) fn clear_param() {
    let gp = crate::runtime::proc::getg();
    // SAFETY: the running goroutine is live.
    // Relaxed: only this goroutine and (later, under the queue lock it
    // still holds) its waker touch it; the lock orders the two.
    unsafe { &*gp }.param.store(null_mut(), Ordering::Relaxed);
}
