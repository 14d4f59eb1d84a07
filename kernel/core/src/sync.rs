//! The atomics the lock-free code uses, chosen at build time.
//!
//! Normally these are `core::sync::atomic`. With `RUSTFLAGS="--cfg loom"` they
//! are loom's instrumented atomics, so that loom can run every interleaving
//! (and every value a weak load is allowed to return) of a small model.
//! Nothing else in the crate names `core::sync::atomic` directly.

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{fence, AtomicPtr, AtomicU32, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicPtr, AtomicU32, Ordering};

/// Called in every loop that retries because it read an inconsistent
/// snapshot (not after a failed CAS, which already means someone else made
/// progress). On hardware it is `pause`; under loom it tells the model
/// checker to run another thread, otherwise loom would explore a spinning
/// thread forever.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(not(loom))]
    core::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}
