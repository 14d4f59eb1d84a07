//! `sync.Once`: Go's `sync/once.go`.
//!
//! ## The once protocol
//!
//! `done` is 0 until the function has *returned*. The fast path is a single
//! acquire load of `done`. The slow path takes a mutex, checks `done` again,
//! runs the function and only then stores `done = 1` (release) and unlocks.
//! So every caller that returns from `call_once`, through either path, sees
//! everything the function did: the fast path through `done`'s
//! release/acquire pair, the slow path through the mutex. (A CAS on `done`
//! before running the function would be wrong: a second caller would
//! return before the function finished.) Goroutines that arrive while the
//! function runs sleep on the mutex, with the wait reason `sync.Once`.
use super::mutex::RawMutex;
use crate::runtime::lock::SpinLock;
use crate::WaitReason;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

/// The goroutines running a `call_once` function right now (by goid), so
/// that [`crate::goexit`] can refuse to end one of them: goexit runs no
/// destructors (the kernel is `panic = "abort"` and cannot unwind), so the
/// Once's mutex would stay locked and every later caller would sleep
/// forever in `[sync.Once]`. Touched only on the slow path, once per Once.
static IN_CALL_ONCE: SpinLock<Vec<u64>> = SpinLock::new(Vec::new());

/// Called by `goexit`: fatal if the calling goroutine is inside a
/// `call_once` function.
pub(crate) fn check_goexit() {
    let id = crate::goid();
    if IN_CALL_ONCE.lock().contains(&id) {
        crate::runtime::fatal::fatal(format_args!(
            "goexit inside Once::call_once: goroutine {id} would leave the Once locked forever (goexit runs no destructors)"
        ));
    }
}

pub struct Once {
    done: AtomicU32,
    m: RawMutex,
}

impl Default for Once {
    fn default() -> Self {
        Self::new()
    }
}

impl Once {
    pub const fn new() -> Self {
        Once { done: AtomicU32::new(0), m: RawMutex::new() }
    }

    /// Go's `once.Do(f)`: run `f` if no call to `call_once` on this Once
    /// has run one yet; in every case, return only once it has finished.
    pub fn call_once<F: FnOnce()>(&self, f: F) {
        // Acquire: pairs with the release store below.
        if self.done.load(Ordering::Acquire) == 0 {
            self.do_slow(f);
        }
    }

    #[cold]
    fn do_slow<F: FnOnce()>(&self, f: F) {
        self.m.lock_with(WaitReason::SyncOnce);
        // Relaxed: under the mutex, which orders it against the store.
        if self.done.load(Ordering::Relaxed) == 0 {
            let id = crate::goid();
            IN_CALL_ONCE.lock().push(id);
            f();
            let mut l = IN_CALL_ONCE.lock();
            if let Some(i) = l.iter().position(|&g| g == id) {
                l.swap_remove(i);
            }
            drop(l);
            // Release: pairs with the fast path's acquire load.
            self.done.store(1, Ordering::Release);
        }
        self.m.unlock();
    }

    /// Has the function run?
    pub fn is_done(&self) -> bool {
        // Acquire: as in call_once.
        self.done.load(Ordering::Acquire) != 0
    }
}
