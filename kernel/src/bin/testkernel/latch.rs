//! A one-shot countdown latch built on the runtime's park/ready, so a test's
//! main goroutine can wait without holding a P (Go's tests use a channel).
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use kernel::{GoroutineHandle, WaitReason};

pub struct Latch {
    remaining: AtomicU64,
    waiter: AtomicPtr<()>,
}

impl Latch {
    pub const fn new(n: u64) -> Self {
        Latch { remaining: AtomicU64::new(n), waiter: AtomicPtr::new(core::ptr::null_mut()) }
    }

    /// Count down; the last one wakes the waiter.
    ///
    /// `done` and the waiter's `commit` are a Dekker pair: `done` writes `remaining`, then reads
    /// `waiter`; `commit` writes `waiter`, then reads `remaining`. All four are SeqCst, so at
    /// least one side sees the other's write: `done` finds the waiter and readies it, or
    /// `commit` sees zero and does not park. With Release/Acquire (as this was until a lab 4
    /// boot deadlocked), x86 may move `commit`'s read ahead of its write (the store buffer):
    /// both sides saw nothing, and the waiter slept forever.
    pub fn done(&self) {
        // SeqCst: the Dekker pair above (and AcqRel's ordering for the waiter's reads).
        if self.remaining.fetch_sub(1, Ordering::SeqCst) == 1 {
            let h = self.waiter.swap(core::ptr::null_mut(), Ordering::SeqCst);
            if !h.is_null() {
                kernel::ready(unsafe_handle(h));
            }
        }
    }

    /// Block until the count reaches zero.
    pub fn wait(&'static self) {
        while self.remaining.load(Ordering::Acquire) != 0 {
            kernel::park(Some(commit), self as *const Latch as *mut u8, WaitReason::SyncWaitGroupWait);
        }
    }
}

fn unsafe_handle(p: *mut ()) -> GoroutineHandle {
    // SAFETY: p was produced from a GoroutineHandle in `commit`.
    unsafe { core::mem::transmute::<*mut (), GoroutineHandle>(p) }
}

fn commit(h: GoroutineHandle, arg: *mut u8) -> bool {
    // SAFETY: arg is the &'static Latch passed to park.
    let l = unsafe { &*(arg as *const Latch) };
    // SAFETY: GoroutineHandle is a pointer-sized newtype.
    let p = unsafe { core::mem::transmute::<GoroutineHandle, *mut ()>(h) };
    // SeqCst: the waiter's half of the Dekker pair (see `done`).
    l.waiter.store(p, Ordering::SeqCst);
    if l.remaining.load(Ordering::SeqCst) == 0 {
        // Already done: take the handle back unless done() took it (then it
        // readies us, and we must stay parked until it does).
        return l.waiter.swap(core::ptr::null_mut(), Ordering::AcqRel).is_null();
    }
    true
}
