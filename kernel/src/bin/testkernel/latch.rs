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
    pub fn done(&self) {
        // AcqRel: the waiter's reads after waking see our writes.
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            let h = self.waiter.swap(core::ptr::null_mut(), Ordering::AcqRel);
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
    l.waiter.store(p, Ordering::Release);
    if l.remaining.load(Ordering::Acquire) == 0 {
        // Already done: take the handle back unless done() took it (then it
        // readies us, and we must stay parked until it does).
        return l.waiter.swap(core::ptr::null_mut(), Ordering::AcqRel).is_null();
    }
    true
}
