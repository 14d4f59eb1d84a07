//! Halt polling: a parking core polls its note for a short, adaptive window before it halts
//! (Linux's `cpuidle-haltpoll` driver and its `haltpoll` governor, `drivers/cpuidle/`), so a
//! wake-up that comes soon costs neither a halt nor an IPI.
//!
//! Why it helps: waking a halted core takes an IPI from the waker and a halt/resume on the
//! sleeper (in a VM each is an exit to the hypervisor). But `notewakeup` sends the IPI only if
//! the sleeper announced `halted` (the Dekker pair of [`crate::spinning`]). A sleeper that is
//! still polling has not announced it: the waker's key store is all it takes, and the poll sees
//! it. The cost is the CPU time of polls that see nothing (the "wasted" poll time), so the
//! window adapts per core to how long that core's sleeps really last.
//!
//! The protocol, in `notesleep` (`kernel/src/runtime/proc.rs`) with `haltpoll=1`:
//!
//! 1. [`poll`]: read `key` until it is set or the core's [`Window`] has passed. Nothing is
//!    announced: `halted` stays 0, so a waker sends no IPI, and the poll must see its key (it
//!    reads `key` until the very end of the window).
//! 2. If the poll saw nothing, the lab 4 protocol, unchanged: store `halted = 1`, fence, read
//!    `key` ([`crate::spinning::note_sleep_check`]), halt if it is still 0. A key stored after
//!    the poll's last read is seen there or its waker sees `halted` and sends the IPI.
//! 3. After the wake-up, [`Window::after_wake`] with the whole sleep's length (poll included)
//!    adapts the window, as Linux's `adjust_poll_limit`:
//!    - woken during the poll: no change (the window was long enough);
//!    - halted, but woken within [`MAX_NS`] of going idle: a longer window would have caught
//!      this wake-up, so it grows ×[`GROW`] (at least to [`GROW_START_NS`], at most [`MAX_NS`]);
//!    - slept longer than [`MAX_NS`]: no window would have caught it; polling was wasted, so it
//!      shrinks ÷[`SHRINK`] (down to 0: then a short sleep grows it back to [`GROW_START_NS`]).
//!
//! The policy is here, pure, so that it can be tested on the host (`haltpoll/tests.rs`, with
//! a fake clock) and the poll's interplay with the note under loom (`haltpoll/loom_tests.rs`).
use crate::sync::{AtomicU32, Ordering};

/// Linux's `guest_halt_poll_grow_start`: the window a grow starts from (50 µs).
pub const GROW_START_NS: u64 = 50_000;
/// Linux's `guest_halt_poll_ns` (200 µs): the largest window, and the sleep length beyond which
/// polling is judged useless.
pub const MAX_NS: u64 = 200_000;
/// Linux's `guest_halt_poll_grow`.
pub const GROW: u64 = 2;
/// Linux's `guest_halt_poll_shrink`.
pub const SHRINK: u64 = 2;

/// One core's poll window (Linux's `dev->poll_limit_ns`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    ns: u64,
}

impl Default for Window {
    fn default() -> Self {
        Self::new()
    }
}

impl Window {
    /// A core's first window: [`GROW_START_NS`].
    pub const fn new() -> Self {
        Window { ns: GROW_START_NS }
    }

    /// A window of `ns` (clamped to [`MAX_NS`]): the kernel keeps it in an atomic per core.
    pub const fn from_ns(ns: u64) -> Self {
        Window { ns: if ns > MAX_NS { MAX_NS } else { ns } }
    }

    /// How long the next park polls before it halts, in ns.
    pub const fn window_ns(&self) -> u64 {
        self.ns
    }

    /// Adapt the window after a park: `polled_ok` if the poll saw the key (no halt),
    /// `slept_ns` the whole park, from the start of the poll to the wake-up (or to the timer
    /// deadline that ended it).
    pub fn after_wake(&mut self, polled_ok: bool, slept_ns: u64) {
        //~ lab8 begin after_wake: Linux's adjust_poll_limit. Caught by the poll: keep the window.
        //~ Halted but woken within MAX_NS of going idle (and later than the window): grow it
        //~ (×GROW, at least GROW_START_NS, at most MAX_NS). Slept longer than MAX_NS: shrink it
        //~ (÷SHRINK). The window must stay within 0..=MAX_NS.
        if polled_ok {
            return;
        }
        if self.ns < slept_ns && slept_ns <= MAX_NS {
            self.ns = (self.ns * GROW).clamp(GROW_START_NS, MAX_NS);
        } else if slept_ns > MAX_NS {
            self.ns /= SHRINK;
        }
        //~ lab8 end
    }
}

/// The poll (Linux's `poll_idle`): read `key` until it is set (true) or `window_ns` has passed
/// on the clock `now` (false). A window of 0 reads the key once. `key`'s partner is the
/// waker's store in [`crate::spinning::notewakeup`]; the poll announces nothing, so on false
/// the caller must go through [`crate::spinning::note_sleep_check`] before it halts.
pub fn poll(key: &AtomicU32, window_ns: u64, mut now: impl FnMut() -> u64) -> bool {
    //~ lab8 begin poll: read the clock once, then loop: key set (an Acquire load is enough:
    //~ nothing is announced) -> true; window over -> false; else spin_hint(). Check the key
    //~ before the clock, so that a window of 0 still looks once, and keep going until the
    //~ window has passed: a poll that gives up early halts for a wake-up it could have caught.
    let t0 = now();
    loop {
        if key.load(Ordering::Acquire) != 0 {
            return true;
        }
        if now().wrapping_sub(t0) >= window_ns {
            return false;
        }
        crate::sync::spin_hint();
    }
    //~ lab8 end
}

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;
