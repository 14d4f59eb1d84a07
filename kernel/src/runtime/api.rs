//! The public runtime API, Go-like. Everything here is re-exported at the
//! crate root: `kernel::go`, `kernel::gosched`, ...
pub use super::proc::GomaxprocsError;
pub use super::time::{nanotime, sleep};
use core::sync::atomic::Ordering;

/// `go f()`: start a goroutine. It goes into the current P's `runnext`, so
/// it usually runs next on this core, while an idle core is woken to steal.
pub fn go<F: FnOnce() + Send + 'static>(f: F) {
    super::proc::newproc(f);
}

/// `runtime.Gosched()`: yield; the goroutine goes to the global run queue.
///
/// `#[inline]` (as is `proc::gosched`): the caller's code then calls
/// `mcall` itself, one call and one cross-page jump fewer per yield (each a
/// look-up of the next translated block under emulation).
#[inline]
pub fn gosched() {
    super::proc::gosched();
}

/// `runtime.Goexit()`: end the calling goroutine now.
///
/// Unlike Go's, it runs no deferred code: the kernel is built with
/// `panic = "abort"` and cannot unwind a goroutine's stack, so nothing the
/// goroutine owns is dropped. A `MutexGuard` it holds stays locked and a
/// `Once` whose function it is running stays locked. The second case is
/// caught: `goexit` inside `Once::call_once` is a fatal error naming the
/// goroutine, instead of a deadlock later. Return from the goroutine's
/// function instead wherever you can.
pub fn goexit() -> ! {
    crate::sync::once::check_goexit();
    super::proc::goexit1()
}

/// `runtime.GOMAXPROCS(n)`: set the number of Ps (1..=num_cpu()), stopping
/// the world to do it. Returns the previous value. As in Go, `n == 0` only
/// reads the value (no stop-the-world); `n > num_cpu()` is an error.
pub fn gomaxprocs(n: u32) -> Result<u32, GomaxprocsError> {
    if n == 0 {
        return Ok(current_gomaxprocs());
    }
    super::proc::gomaxprocs(n)
}

/// The current GOMAXPROCS (the same as `gomaxprocs(0)`).
pub fn current_gomaxprocs() -> u32 {
    super::proc::GOMAXPROCS.load(Ordering::Relaxed)
}

/// The most cores the kernel drives (size per-core tables with this).
pub const MAX_CPUS: usize = crate::arch::x86_64::percpu::MAX_CPUS;

/// `runtime.NumCPU()`: cores online.
pub fn num_cpu() -> u32 {
    super::proc::NCPU.load(Ordering::Relaxed)
}

/// `runtime.NumGoroutine()`: goroutines that exist (not dead).
pub fn num_goroutine() -> usize {
    let mut n = 0;
    super::proc::for_each_g(|g| {
        let s = g.status();
        if s != super::runtime2::G_DEAD && s != super::runtime2::G_IDLE {
            n += 1;
        }
    });
    n
}

/// `runtime.LockOSThread()`: wire the calling goroutine to this core (M).
/// Until unlocked, it runs only here, and this core runs only it.
pub fn lock_os_thread() {
    super::proc::lock_os_thread();
}

/// `runtime.UnlockOSThread()`.
pub fn unlock_os_thread() {
    super::proc::unlock_os_thread();
}

/// The id of the calling goroutine (0 on a scheduler stack).
pub fn goid() -> u64 {
    // SAFETY: curg is null or a live G.
    unsafe { super::proc::getg().as_ref() }.map(|g| g.id()).unwrap_or(0)
}

/// The core the caller runs on right now (it may move at the next
/// preemption unless the goroutine is locked to its thread).
pub fn cpu_id() -> usize {
    crate::arch::x86_64::percpu::cpu_id()
}

/// A handle to a parked goroutine, for building blocking primitives
/// (channels, semaphores) on [`park`]/[`ready`].
///
/// `repr(transparent)`: a handle has the ABI of the `*mut G` it wraps, so
/// [`park`] can hand a commit function that takes a handle to `gopark`,
/// which calls it with the `*mut G` (see there).
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GoroutineHandle(pub(crate) *mut super::runtime2::G);
// SAFETY: a handle is an address of a never-freed G; using it is governed
// by the park/ready protocol.
unsafe impl Send for GoroutineHandle {}
unsafe impl Sync for GoroutineHandle {}

pub use super::runtime2::WaitReason;

/// `gopark`: block the calling goroutine. `commit(handle, arg)` runs once
/// the goroutine is marked waiting, on the scheduler stack; it publishes the
/// handle to whoever will call [`ready`] (and typically releases a lock).
/// If it returns false, the park is cancelled and the goroutine continues.
pub fn park(commit: Option<fn(GoroutineHandle, *mut u8) -> bool>, arg: *mut u8, reason: WaitReason) {
    // SAFETY: the two function pointer types differ only in the first
    // argument, `GoroutineHandle` against `*mut G`, and the handle is a
    // `repr(transparent)` wrapper of that pointer: the signatures are
    // ABI-compatible (the `fn` primitive's documentation, "ABI
    // compatibility"), so `park_m`'s call through the converted pointer
    // passes the handle the commit function expects. (It went through a
    // trampoline that wrapped the pointer; under TCG every indirect call
    // and its return cost a jump-cache look-up, two more a park.)
    let commit = commit.map(|f| unsafe {
        core::mem::transmute::<fn(GoroutineHandle, *mut u8) -> bool, fn(*mut super::runtime2::G, *mut u8) -> bool>(f)
    });
    super::proc::gopark(commit, arg, reason);
}

/// `goready`: make a parked goroutine runnable (it runs next on this core).
pub fn ready(g: GoroutineHandle) {
    super::proc::goready(g.0);
}

/// The handle of the calling goroutine.
pub fn current() -> GoroutineHandle {
    GoroutineHandle(super::proc::getg())
}

/// The cooperative preemption check for long loops: Go's function-prologue
/// stack check. If sysmon asked this goroutine to yield (it poisoned
/// `stackguard0`), yield now; if the stack is really nearly exhausted,
/// report a stack overflow.
#[macro_export]
macro_rules! morestack_check {
    () => {
        $crate::runtime::preempt::morestack_check()
    };
}

/// A guard that keeps the current goroutine from being preempted (and from
/// moving to another core) while alive.
pub use super::lock::PreemptGuard;

/// Go's `entersyscall`: the calling goroutine starts a long section that
/// keeps its core busy without scheduling (polled I/O, say). Its P is
/// released; if the section outlasts a sysmon tick, sysmon hands the P to an
/// idle core so other goroutines keep running. Call no runtime function
/// that needs a P (go, gosched, sleep, channels) until `exitsyscall`.
pub fn entersyscall() {
    super::proc::entersyscall();
}

/// Go's `entersyscallblock`: as `entersyscall`, for a section known to
/// block, so the P is handed off at once.
pub fn entersyscallblock() {
    super::proc::entersyscallblock();
}

/// Go's `exitsyscall`: the section is over; get a P back (the old one if
/// sysmon did not take it) or wait in the global queue.
pub fn exitsyscall() {
    super::proc::exitsyscall();
}
