//! `sync.WaitGroup`: Go's `sync/waitgroup.go` (Go 1.20+ layout).
//!
//! ## The wait-group protocol
//!
//! One 64-bit atomic holds the counter (high 32 bits) and the number of
//! waiters (low 32 bits), so that "counter reached zero" and "who is
//! waiting" are read in one load:
//!
//! - `add(delta)` adds `delta << 32`. If the counter goes negative: panic.
//!   If it reaches zero with `w` waiters, nobody can legally call `add` or
//!   `wait` concurrently (Go's contract), so it resets the state to 0 and
//!   releases the semaphore `w` times.
//! - `wait` loads the state: counter zero means return at once; otherwise
//!   it CASes `waiters + 1` and sleeps on the semaphore. The CAS fails if
//!   the counter changed meanwhile, which makes "counter is non-zero" and
//!   "I am counted as a waiter" one atomic step: the final `add` either
//!   sees the waiter, or the waiter sees the zero.
use super::sema::{semacquire1, semrelease1};
use crate::WaitReason;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

pub struct WaitGroup {
    state: AtomicU64,
    sema: AtomicU32,
}

impl Default for WaitGroup {
    fn default() -> Self {
        Self::new()
    }
}

impl WaitGroup {
    pub const fn new() -> Self {
        WaitGroup { state: AtomicU64::new(0), sema: AtomicU32::new(0) }
    }

    /// `wg.Add(delta)`. Panics with `sync: negative WaitGroup counter` if
    /// the counter would go below zero.
    #[track_caller]
    pub fn add(&self, delta: i32) {
        let d = ((delta as i64) as u64) << 32;
        // AcqRel: release publishes this goroutine's work to whoever sees
        // the counter reach zero; acquire pairs with the other adders (the
        // last one then releases everything to the waiters).
        let state = self.state.fetch_add(d, Ordering::AcqRel).wrapping_add(d);
        let v = (state >> 32) as i32;
        let w = state as u32;
        if v < 0 {
            panic!("sync: negative WaitGroup counter");
        }
        if w != 0 && delta > 0 && v == delta {
            panic!("sync: WaitGroup misuse: Add called concurrently with Wait");
        }
        if v > 0 || w == 0 {
            return;
        }
        // Counter is zero and there are waiters: nobody may touch the
        // state now but us. Check that, then reset and wake them all.
        // Relaxed: a misuse check; the state cannot legally have changed.
        if self.state.load(Ordering::Relaxed) != state {
            panic!("sync: WaitGroup misuse: Add called concurrently with Wait");
        }
        // Relaxed: the waiters are woken through the semaphore, which
        // orders this store before their reads.
        self.state.store(0, Ordering::Relaxed);
        for _ in 0..w {
            semrelease1(&self.sema, false);
        }
    }

    /// `wg.Done()`.
    #[track_caller]
    pub fn done(&self) {
        self.add(-1);
    }

    /// `wg.Wait()`: block until the counter is zero.
    #[track_caller]
    pub fn wait(&self) {
        // Acquire: pairs with the AcqRel adds, so the work of every
        // goroutine that called done() is visible after we return.
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            if state >> 32 == 0 {
                return;
            }
            // Acquire: as above (on failure we just retry with `cur`).
            match self.state.compare_exchange(state, state + 1, Ordering::Acquire, Ordering::Acquire) {
                Ok(_) => {
                    semacquire1(&self.sema, false, WaitReason::SyncWaitGroupWait);
                    // Relaxed: a misuse check (the semaphore ordered the
                    // reset before our wake-up).
                    if self.state.load(Ordering::Relaxed) != 0 {
                        panic!("sync: WaitGroup is reused before previous Wait has returned");
                    }
                    return;
                }
                Err(cur) => state = cur,
            }
        }
    }

    /// The counter right now (a snapshot, for tests).
    pub fn count(&self) -> i32 {
        // Relaxed: a snapshot.
        (self.state.load(Ordering::Relaxed) >> 32) as i32
    }
}
