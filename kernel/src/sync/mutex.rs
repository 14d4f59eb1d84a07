//! `sync.Mutex`: Go's `sync/mutex.go`, as [`RawMutex`] (lock/unlock, like
//! Go's) and [`Mutex<T>`] (the Rust shape: the data inside, a guard).
//!
//! ## The mutex protocol
//!
//! The whole state is one `i32`:
//!
//! ```text
//!   bit 0  MUTEX_LOCKED    someone holds it
//!   bit 1  MUTEX_WOKEN     a waiter was woken (or a spinner is about to take
//!                          it): unlock need not wake another one
//!   bit 2  MUTEX_STARVING  starvation mode
//!   3..    waiters         goroutines asleep on `sema` (or about to be)
//! ```
//!
//! **Normal mode.** `lock` is a CAS `0 -> LOCKED`. If that fails, the
//! goroutine spins a little while the holder runs on another core (at most
//! 4 rounds of 30 `pause`s, only with several Ps busy and nothing else to
//! run here, Go's `runtime_canSpin`), setting `WOKEN` so that an unlock
//! does not also wake a sleeper. Then it adds itself to the waiter count and
//! sleeps on the semaphore. `unlock` clears `LOCKED`; if there are waiters
//! and nobody is `WOKEN`, it decrements the count, sets `WOKEN` and wakes
//! one. The woken waiter does *not* own the mutex: it competes with
//! goroutines that are arriving right now (and are already on a core, so
//! they usually win). A loser goes back to sleep at the *front* of the queue
//! (LIFO requeue).
//!
//! **Starvation mode.** A waiter that has waited more than 1 ms sets
//! `STARVING` when it next fails. Then `unlock` hands the mutex directly to
//! the first waiter (semaphore hand-off), newcomers do not try to take it or
//! spin, they queue at the back. The woken waiter owns the mutex as it
//! wakes: it clears `STARVING` if it is the last waiter or waited less than
//! 1 ms, and takes `LOCKED` and its own waiter slot in one atomic add.
//!
//! Normal mode is much faster (a goroutine can take the mutex many times in
//! a row without a switch); starvation mode bounds the tail latency.
//!
//! **Fast paths.** `lock` and `unlock` are inlined into their callers and
//! call out of line only when there is something to wait for or someone to
//! wake. Go's `Lock` inlines only the CAS `0 -> LOCKED` and its `Unlock`
//! only a state of 0 after the unlock; anything else goes to `lockSlow` /
//! `unlockSlow`. But under contention the state is seldom 0 even while the
//! mutex is free: a woken waiter leaves `WOKEN` set until it runs, which
//! may be a whole time slice later, and every goroutine parked on the
//! semaphore is counted. So here `lock` also takes a free mutex that has
//! waiters or `WOKEN` (the CAS that `lock_slow`'s first round would make,
//! Go's `TryLock`), and `unlock` returns at once if there is nobody to wake
//! or one is already woken (the test `unlock_slow` makes first). Both are
//! the slow paths' own first steps, so the state machine is Go's, step for
//! step. In `mutex_contended` (8 goroutines on 2 cores) the share of `lock`
//! calls that reached `lock_slow` fell from about 85% to 3 to 10%
//! (`bench/README.md`).
use super::sema::{semacquire1, semrelease1};
use crate::WaitReason;
use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};

const MUTEX_LOCKED: i32 = 1;
const MUTEX_WOKEN: i32 = 2;
const MUTEX_STARVING: i32 = 4;
const MUTEX_WAITER_SHIFT: u32 = 3;
/// Waiting longer than this switches the mutex to starvation mode (Go's
/// `starvationThresholdNs`).
const STARVATION_THRESHOLD_NS: u64 = 1_000_000;
/// Go's `active_spin` (`active_spin_cnt` is the runtime lock's:
/// [`crate::runtime::lock::ACTIVE_SPIN_CNT`]).
const ACTIVE_SPIN: u32 = 4;

/// Go's `sync.Mutex`: no data, `lock()`/`unlock()` in any goroutine.
/// Unlocking an unlocked mutex is a fatal error, as in Go.
pub struct RawMutex {
    state: AtomicI32,
    sema: AtomicU32,
}

impl Default for RawMutex {
    fn default() -> Self {
        Self::new()
    }
}

/// Go's `runtime_canSpin`: spinning only pays if the holder is running on
/// another core and nobody else needs this one.
fn can_spin(iter: u32) -> bool {
    use crate::runtime::proc::{ALLP, SCHED};
    if iter >= ACTIVE_SPIN || crate::num_cpu() <= 1 {
        return false;
    }
    // Relaxed: heuristics only; stale values just spin a little more or less.
    let idle = SCHED.npidle.load(Ordering::Relaxed) + SCHED.nmspinning.load(Ordering::Relaxed);
    if crate::current_gomaxprocs() <= idle + 1 {
        return false;
    }
    let _pg = crate::PreemptGuard::new();
    let id = crate::runtime::proc::current_p_id() as usize;
    // Acquire: pairs with the release store of the P in procresize.
    let pp = ALLP[id].load(Ordering::Acquire);
    // SAFETY: the P we run on (preemption is off), never freed.
    unsafe { &*pp }.runq.stealer().is_empty()
}

/// Go's `runtime_doSpin` (`procyield(30)`).
fn do_spin() {
    crate::runtime::lock::procyield(crate::runtime::lock::ACTIVE_SPIN_CNT);
}

impl RawMutex {
    pub const fn new() -> Self {
        RawMutex { state: AtomicI32::new(0), sema: AtomicU32::new(0) }
    }

    /// Lock, sleeping if needed.
    #[inline]
    pub fn lock(&self) {
        self.lock_with(WaitReason::SyncMutexLock);
    }

    #[inline]
    pub(crate) fn lock_with(&self, reason: WaitReason) {
        // Fast path: unlocked, no waiters, not starving. Inlined into the
        // caller, as Go's `Lock` is (the slow path stays out of line), so a
        // short critical section has no call or return in it (module
        // comment, "Fast paths").
        // Acquire: pairs with the release in unlock, so the previous
        // critical section is visible.
        match self.state.compare_exchange(0, MUTEX_LOCKED, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => return,
            // Free, but with waiters counted or a woken waiter on its way:
            // take it with the CAS that `lock_slow`'s first round would
            // make (Go's `TryLock`). Go goes to `lockSlow` for this; doing
            // it here keeps a contended mutex off the slow path while a
            // woken waiter waits for its P (`MUTEX_WOKEN` stays set until
            // it runs). Acquire: as above.
            Err(old)
                if old & (MUTEX_LOCKED | MUTEX_STARVING) == 0
                    && self
                        .state
                        .compare_exchange(old, old | MUTEX_LOCKED, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok() =>
            {
                return
            }
            Err(_) => {}
        }
        self.lock_slow(reason);
    }

    /// Go's `TryLock`: take it only if that needs no waiting.
    pub fn try_lock(&self) -> bool {
        // Relaxed: just a hint before the CAS.
        let old = self.state.load(Ordering::Relaxed);
        if old & (MUTEX_LOCKED | MUTEX_STARVING) != 0 {
            return false;
        }
        // Acquire: as in lock.
        self.state.compare_exchange(old, old | MUTEX_LOCKED, Ordering::Acquire, Ordering::Relaxed).is_ok()
    }

    /// Is it locked right now? (A snapshot, for assertions.)
    pub fn is_locked(&self) -> bool {
        // Relaxed: a snapshot.
        self.state.load(Ordering::Relaxed) & MUTEX_LOCKED != 0
    }

    #[inline(never)]
    fn lock_slow(&self, reason: WaitReason) {
        let mut wait_start: u64 = 0;
        let mut starving = false;
        let mut awoke = false;
        let mut iter = 0;
        // Relaxed: every decision below is confirmed by a CAS.
        let mut old = self.state.load(Ordering::Relaxed);
        loop {
            // Spin only in normal mode while it is held (in starvation mode
            // the owner hands it to a waiter: spinning cannot win).
            if old & (MUTEX_LOCKED | MUTEX_STARVING) == MUTEX_LOCKED && can_spin(iter) {
                // Tell unlock not to wake a sleeper: we are about to take it.
                if !awoke
                    && old & MUTEX_WOKEN == 0
                    && old >> MUTEX_WAITER_SHIFT != 0
                    // Relaxed: sets a hint bit only; no data is published.
                    && self.state.compare_exchange(old, old | MUTEX_WOKEN, Ordering::Relaxed, Ordering::Relaxed).is_ok()
                {
                    awoke = true;
                }
                do_spin();
                iter += 1;
                // Relaxed: as above.
                old = self.state.load(Ordering::Relaxed);
                continue;
            }
            let mut new = old;
            // Do not try to take a starving mutex: it goes to a waiter.
            if old & MUTEX_STARVING == 0 {
                new |= MUTEX_LOCKED;
            }
            if old & (MUTEX_LOCKED | MUTEX_STARVING) != 0 {
                new += 1 << MUTEX_WAITER_SHIFT;
            }
            // Switch to starvation mode, but only if it is still locked
            // (unlock expects waiters in starvation mode).
            if starving && old & MUTEX_LOCKED != 0 {
                new |= MUTEX_STARVING;
            }
            if awoke {
                // We were woken (or set WOKEN while spinning): clear it.
                if new & MUTEX_WOKEN == 0 {
                    crate::runtime::fatal::throw("sync: inconsistent mutex state");
                }
                new &= !MUTEX_WOKEN;
            }
            // Acquire: when this takes the lock (old had it clear), pairs
            // with the release in unlock; otherwise harmless.
            match self.state.compare_exchange(old, new, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => {
                    if old & (MUTEX_LOCKED | MUTEX_STARVING) == 0 {
                        return; // locked with the CAS
                    }
                    // Requeue at the front if we had already waited.
                    let lifo = wait_start != 0;
                    if wait_start == 0 {
                        wait_start = crate::nanotime();
                    }
                    semacquire1(&self.sema, lifo, reason);
                    starving = starving || crate::nanotime() - wait_start > STARVATION_THRESHOLD_NS;
                    // Acquire: in starvation mode the mutex was handed to us;
                    // pairs with the release of the unlocking goroutine.
                    old = self.state.load(Ordering::Acquire);
                    if old & MUTEX_STARVING != 0 {
                        // Handed to us. The state still counts us as a
                        // waiter and LOCKED is clear (unlock did not set it).
                        if old & (MUTEX_LOCKED | MUTEX_WOKEN) != 0 || old >> MUTEX_WAITER_SHIFT == 0 {
                            crate::runtime::fatal::throw("sync: inconsistent mutex state");
                        }
                        let mut delta = MUTEX_LOCKED - (1 << MUTEX_WAITER_SHIFT);
                        if !starving || old >> MUTEX_WAITER_SHIFT == 1 {
                            // Leave starvation mode: we did not wait long, or
                            // we are the last waiter.
                            delta -= MUTEX_STARVING;
                        }
                        // Acquire: pairs with unlock's release (we own it now).
                        self.state.fetch_add(delta, Ordering::Acquire);
                        return;
                    }
                    awoke = true;
                    iter = 0;
                }
                Err(cur) => old = cur,
            }
        }
    }

    /// Unlock. A fatal error if it is not locked (Go's behaviour). Any
    /// goroutine may unlock, not only the one that locked.
    #[inline]
    pub fn unlock(&self) {
        // Release: pairs with the acquiring CASes in lock, publishing the
        // critical section to the next holder.
        let new = self.state.fetch_sub(MUTEX_LOCKED, Ordering::Release) - MUTEX_LOCKED;
        // Nothing more to do (checked inline, where Go calls `unlockSlow`
        // for any `new != 0`): not a double unlock (that sets LOCKED by
        // borrowing), not starving, and no waiter to wake or one already
        // woken. `unlock_slow` makes the same test in its first round.
        if new & (MUTEX_LOCKED | MUTEX_STARVING) == 0 && (new >> MUTEX_WAITER_SHIFT == 0 || new & MUTEX_WOKEN != 0) {
            return;
        }
        self.unlock_slow(new);
    }

    #[cold]
    #[inline(never)]
    fn unlock_slow(&self, new: i32) {
        if (new + MUTEX_LOCKED) & MUTEX_LOCKED == 0 {
            crate::runtime::fatal::fatal(format_args!("sync: unlock of unlocked mutex"));
        }
        if new & MUTEX_STARVING == 0 {
            let mut old = new;
            loop {
                // Nobody to wake, or someone is already awake / took it /
                // it went starving (then that path owns the wake-up).
                if old >> MUTEX_WAITER_SHIFT == 0 || old & (MUTEX_LOCKED | MUTEX_WOKEN | MUTEX_STARVING) != 0 {
                    return;
                }
                let new = (old - (1 << MUTEX_WAITER_SHIFT)) | MUTEX_WOKEN;
                // Relaxed: only claims the right to wake one waiter; the
                // semaphore orders the wake-up.
                match self.state.compare_exchange(old, new, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => {
                        semrelease1(&self.sema, false);
                        return;
                    }
                    Err(cur) => old = cur,
                }
            }
        } else {
            // Starvation mode: hand the mutex to the first waiter and yield
            // to it. LOCKED stays clear; the waiter sets it. Newcomers see
            // STARVING and queue behind.
            semrelease1(&self.sema, true);
        }
    }
}

/// A mutual-exclusion lock holding its data, Rust style: [`Mutex::lock`]
/// returns a guard that unlocks when dropped. Waiters sleep (they do not
/// spin for long), so critical sections may block, e.g. on a channel.
pub struct Mutex<T: ?Sized> {
    raw: RawMutex,
    data: UnsafeCell<T>,
}

// SAFETY: the data is reached only through a guard, one at a time; T moves
// between goroutines with the lock, hence T: Send.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

/// The proof of holding a [`Mutex`].
pub struct MutexGuard<'a, T: ?Sized> {
    m: &'a Mutex<T>,
}

// SAFETY: sharing the guard shares &T.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<T> Mutex<T> {
    pub const fn new(v: T) -> Self {
        Mutex { raw: RawMutex::new(), data: UnsafeCell::new(v) }
    }

    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.raw.lock();
        MutexGuard { m: self }
    }

    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        // `then`, not `then_some`: a guard built eagerly and dropped on
        // failure would unlock the holder's mutex.
        self.raw.try_lock().then(|| MutexGuard { m: self })
    }

    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// The underlying Go-style mutex.
    pub fn raw(&self) -> &RawMutex {
        &self.raw
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves the mutex is held.
        unsafe { &*self.m.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves the mutex is held, exclusively.
        unsafe { &mut *self.m.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.m.raw.unlock();
    }
}
