//! Spin locks and preemption guards for the runtime (Go's `lock`/`unlock`
//! and `acquirem`/`releasem`).
//!
//! [`SpinLock`] disables interrupts while held, so an interrupt handler on
//! the same core never spins on a lock its own core holds, and the holder
//! can never be preempted (the preemption IPI is an interrupt). It also
//! counts in `m.locks`, the counter the preemption code reads.
//!
//! [`RuntimeLock`] is Go's runtime `mutex` as Go uses it: it counts in
//! `m.locks` and leaves interrupts on. The count alone keeps the holder on
//! its core: the preemption handler sees it and leaves the goroutine alone,
//! and the unlock that brings the count to 0 honours a request that came
//! meanwhile (Go's `unlock2` → `releasem`). It is for locks that no
//! interrupt handler ever takes (channels, semaphores): an interrupt that
//! came while the lock is held and spun on it would spin forever. What it
//! saves is the `sti` at every unlock, which under TCG ends the translated
//! block and costs about 23 ns when it turns interrupts back on (`cli`
//! alone is nearly free, `pushf` 3.5 ns; `bench=insn`), two or three per
//! channel hand-off.
//!
//! [`PreemptGuard`] only counts in `m.locks`: interrupts stay on, but the
//! preemption handler sees the count and leaves the goroutine alone (it will
//! try again on a later tick). Runtime code holds one while it uses "the
//! current P": a goroutine moved to another core between reading `m.p` and
//! using it would corrupt a queue only the owner may touch.
//!
//! Spins are bounded in *time*: a lock that stays held for 10 s of emulated
//! time is reported as a deadlock instead of hanging silently.
//!
//! **How a waiter waits** (Go's `lock2` in lock_futex.go, less the futex).
//! A waiter looks at the lock word, and while it is held makes
//! `procyield(ACTIVE_SPIN_CNT)`, 30 PAUSEs, before it looks again; when it
//! sees the word free it tries the CAS. Every look pulls the lock's cache
//! line to the waiter's core, and the holder must pull it back to release
//! the lock, so a waiter that looks after every PAUSE slows the very core
//! it waits for. Under TCG each PAUSE also leaves translated code (about
//! 130 ns, `bench=insn`). With one PAUSE per look, two cores that shared
//! a channel (`chan_prodcons10`: two producers and two consumers) failed
//! their first CAS about 400 000 times in three runs of 200 000 items;
//! with Go's 30 per look, about 21 000, and an item took about half the
//! time (`bench/README.md`, "What each change bought"). The
//! price is unfairness: a core that releases the lock can take it again
//! before a waiter looks, as in Go. Go's waiter then yields the thread and
//! sleeps on a futex; a runtime lock here is held with the M unpreemptible
//! (and [`SpinLock`] with interrupts off), so it keeps spinning.
use crate::arch::x86_64::{percpu, time};
use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, Ordering};

pub struct SpinLock<T> {
    locked: AtomicBool,
    data: UnsafeCell<T>,
}
// SAFETY: the data is only reached through a guard, and only one guard can
// exist at a time (the `locked` flag's acquire/release).
unsafe impl<T: Send> Sync for SpinLock<T> {}
unsafe impl<T: Send> Send for SpinLock<T> {}

pub struct SpinLockGuard<'a, T> {
    lock: &'a SpinLock<T>,
    irq_was_enabled: bool,
}

impl<T> SpinLock<T> {
    pub const fn new(v: T) -> Self {
        SpinLock { locked: AtomicBool::new(false), data: UnsafeCell::new(v) }
    }

    pub fn lock(&self) -> SpinLockGuard<'_, T> {
        let irq = x86_64::instructions::interrupts::are_enabled();
        x86_64::instructions::interrupts::disable();
        percpu::locks_inc();
        acquire(&self.locked);
        SpinLockGuard { lock: self, irq_was_enabled: irq }
    }

    /// `lock` for code that runs with interrupts off already: the
    /// scheduler between `mcall` and `gogo` (`goschedImpl`, the fast path of
    /// `findRunnable`). It neither reads nor changes the interrupt flag
    /// (`pushf` costs about 3.3 ns under TCG, on every one of these
    /// acquisitions), and its guard leaves interrupts off when dropped.
    /// Called with interrupts on, an interrupt handler that takes the same
    /// lock could spin forever on its own core: debug builds check.
    #[inline]
    pub fn lock_irqs_off(&self) -> SpinLockGuard<'_, T> {
        debug_assert!(
            !x86_64::instructions::interrupts::are_enabled(),
            "SpinLock::lock_irqs_off with interrupts on"
        );
        percpu::locks_inc();
        acquire(&self.locked);
        SpinLockGuard { lock: self, irq_was_enabled: false }
    }

    pub fn try_lock(&self) -> Option<SpinLockGuard<'_, T>> {
        let irq = x86_64::instructions::interrupts::are_enabled();
        x86_64::instructions::interrupts::disable();
        // Acquire: as in `lock`.
        if self.locked.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            percpu::locks_inc();
            Some(SpinLockGuard { lock: self, irq_was_enabled: irq })
        } else {
            if irq {
                x86_64::instructions::interrupts::enable();
            }
            None
        }
    }

    /// Release a lock whose guard was `mem::forget`-ten, from the commit
    /// function of [`crate::park`] (Go's `parkunlock`): the lock is held
    /// across the switch to the scheduler stack and released there, after
    /// the goroutine is marked waiting, so a waker cannot miss it. Restores
    /// interrupts (the scheduler runs with them on).
    ///
    /// # Safety
    /// The lock must be held by this core through a forgotten guard.
    pub unsafe fn unlock_forgotten(&self) {
        // Release: as in the guard's Drop.
        self.locked.store(false, Ordering::Release);
        percpu::locks_dec();
        x86_64::instructions::interrupts::enable();
    }

    /// Is it held by anyone? (Diagnostics only.)
    pub fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Relaxed)
    }

    /// Access without locking.
    ///
    /// # Safety
    /// Only on the fatal-error path, when the world is about to end and a
    /// best-effort read is better than a deadlock.
    pub unsafe fn data_unlocked(&self) -> &T {
        // SAFETY: the caller accepts a possibly inconsistent read.
        unsafe { &*self.data.get() }
    }
}

/// Go's `active_spin_cnt`: the PAUSEs a waiter makes between two looks at
/// a held lock (see "How a waiter waits" above). `sync::Mutex`'s spin uses
/// it too.
pub(crate) const ACTIVE_SPIN_CNT: u32 = 30;

/// Go's `procyield(cycles)`: `cycles` PAUSE instructions, which tell the
/// core (or its hyper-thread sibling) that this is a spin-wait.
#[inline(always)]
pub(crate) fn procyield(cycles: u32) {
    for _ in 0..cycles {
        core::hint::spin_loop();
    }
}

/// Take `locked` (false → true), spinning while another core holds it.
/// The caller has already made itself unpreemptible (`m.locks`).
#[inline(always)]
fn acquire(locked: &AtomicBool) {
    // Acquire: pairs with the store-release of every unlock (the guards'
    // Drop, `unlock_forgotten`), so the previous holder's writes to the data
    // are visible.
    if locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
        acquire_slow(locked);
    }
}

#[cold]
#[inline(never)]
fn acquire_slow(locked: &AtomicBool) {
    let mut spins: u32 = 0;
    let mut since = 0;
    // Acquire: as in `acquire`.
    while locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
        while locked.load(Ordering::Relaxed) {
            procyield(ACTIVE_SPIN_CNT);
            spins = spins.wrapping_add(1);
            if spins % 128 == 0 {
                let now = time::nanotime();
                if since == 0 {
                    since = now;
                } else if now - since > 10_000_000_000 {
                    super::fatal::fatal(format_args!("spin lock held for more than 10 s (deadlock)"));
                }
            }
        }
    }
}

impl<T> Deref for SpinLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves we hold the lock.
        unsafe { &*self.lock.data.get() }
    }
}
impl<T> DerefMut for SpinLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves we hold the lock, exclusively.
        unsafe { &mut *self.lock.data.get() }
    }
}
impl<T> Drop for SpinLockGuard<'_, T> {
    fn drop(&mut self) {
        // Release: pairs with the acquire in `lock`.
        self.lock.locked.store(false, Ordering::Release);
        percpu::locks_dec();
        if self.irq_was_enabled {
            x86_64::instructions::interrupts::enable();
        }
    }
}

/// Go's runtime `mutex`: a spin lock that makes its holder unpreemptible
/// through `m.locks` and leaves interrupts as they are (see the module
/// comment). Never take one in an interrupt handler. Nesting either way
/// with a [`SpinLock`] is fine: inside, the `SpinLock` turns interrupts off
/// for its own section; outside, they are already off.
pub struct RuntimeLock<T> {
    locked: AtomicBool,
    data: UnsafeCell<T>,
}
// SAFETY: as for SpinLock: the data is only reached through a guard, and
// only one guard can exist at a time.
unsafe impl<T: Send> Sync for RuntimeLock<T> {}
unsafe impl<T: Send> Send for RuntimeLock<T> {}

pub struct RuntimeLockGuard<'a, T> {
    lock: &'a RuntimeLock<T>,
}

impl<T> RuntimeLock<T> {
    pub const fn new(v: T) -> Self {
        RuntimeLock { locked: AtomicBool::new(false), data: UnsafeCell::new(v) }
    }

    /// Go's `lock`: `m.locks++` (one instruction on this core's count, so
    /// from here the goroutine stays on this core), then take the lock.
    #[inline]
    pub fn lock(&self) -> RuntimeLockGuard<'_, T> {
        percpu::locks_inc();
        acquire(&self.locked);
        RuntimeLockGuard { lock: self }
    }

    /// Release a lock whose guard was `mem::forget`-ten: from a park's
    /// commit function on g0 (Go's `parkunlock`), or from `selunlock`.
    /// Unlike the guard's Drop it does not look for a preemption request:
    /// on g0 there is no goroutine to preempt, and a goroutine's request
    /// waits for the next tick or safe point.
    ///
    /// # Safety
    /// The lock must be held by this core through a forgotten guard.
    #[inline]
    pub unsafe fn unlock_forgotten(&self) {
        // Release: pairs with the acquire in `acquire`.
        self.locked.store(false, Ordering::Release);
        percpu::locks_dec();
    }

    /// Is it held by anyone? (Diagnostics only.)
    pub fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Relaxed)
    }
}

impl<T> Deref for RuntimeLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves we hold the lock.
        unsafe { &*self.lock.data.get() }
    }
}
impl<T> DerefMut for RuntimeLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves we hold the lock, exclusively.
        unsafe { &mut *self.lock.data.get() }
    }
}
impl<T> Drop for RuntimeLockGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // Release: pairs with the acquire in `acquire`.
        self.lock.locked.store(false, Ordering::Release);
        // Go's releasem: a preemption the interrupt handler had to refuse
        // while the lock was held is honoured at this safe point.
        if percpu::locks_dec_read() == 0 {
            super::preempt::check_preempt_at_safe_point();
        }
    }
}

/// Disables preemption of the current goroutine while alive (Go's
/// `acquirem`/`releasem`). The goroutine stays on this core, so per-core
/// state (the current M and P) stays valid.
pub struct PreemptGuard {
    _not_send: core::marker::PhantomData<*mut ()>,
}

impl PreemptGuard {
    #[inline]
    pub fn new() -> Self {
        // Only this core reads its own counter (the preemption handler runs
        // on this core, after the increment in program order).
        percpu::locks_inc();
        PreemptGuard { _not_send: core::marker::PhantomData }
    }
}

impl Default for PreemptGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for PreemptGuard {
    #[inline]
    fn drop(&mut self) {
        let now = percpu::locks_dec_read();
        // A preemption request that arrived while we were non-preemptible is
        // honoured now, at this safe point (Go: releasem restores
        // stackguard0 = stackPreempt when gp.preempt is set).
        if now == 0 {
            super::preempt::check_preempt_at_safe_point();
        }
    }
}

/// Is preemption currently forbidden on this core? (`m.locks != 0`)
pub fn preempt_disabled() -> bool {
    percpu::locks_read() != 0
}
