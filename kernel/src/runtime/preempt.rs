//! Preemption: sysmon's `retake`, `preemptone`, the poisoned `stackguard0`,
//! and resuming a goroutine.
//!
//! ## The preemption protocol
//!
//! Go asks a goroutine to stop by poisoning its stack guard: every function
//! prologue compares `sp` with `g.stackguard0`, and `stackPreempt` is larger
//! than any stack address, so the next check fails and the goroutine enters
//! `morestack`, which sees the poison and yields (`gopreempt_m`: the G goes to
//! the global queue). Rust functions have no such prologue, so here the
//! check runs at every runtime call that is a safe point and wherever a
//! program puts [`crate::morestack_check!`] (long loops).
//!
//! 1. sysmon (a timer tick, see irq.rs) runs `retake`: a P whose `schedtick`
//!    has not moved for `forcePreemptNS` has run one G (or one chain of
//!    runnext hand-offs, which inherit the slice) too long: `preemptone`.
//!    The decision is `gmp_core::retake::decide` (`kernel/core/src/retake.rs`).
//!    The slice is measured from the TSC stamp `execute` left in
//!    `pp.slicestart`, not from sysmon's first sight of the new tick (which
//!    comes up to one 1 ms tick late).
//! 2. `preemptone(pp)`: `gp.preempt = true`, `gp.stackguard0 =
//!    STACK_PREEMPT`, `pp.preempt = true`, then `preemptM`: the preemption
//!    IPI to the core running it.
//! 3. At the next safe point the G sees `sp < stackguard0` and yields
//!    (`morestack` → `newstack_preempt` → `gopreempt`).
//! 4. Asynchronously, for loops with no safe point (Go's signal-based
//!    preemption): the preemption IPI, or any tick on that core, enters
//!    `irq_dispatch` on the IRQ IST stack. If the interrupted code is at an
//!    *async-safe point*, the full register file (general registers, rflags,
//!    and the FPU/SSE state with FXSAVE) is copied onto the goroutine's own
//!    stack, its gobuf is pointed at `async_resume`, and the core switches
//!    to g0 and runs `gopreempt_m`. `execute` later resumes it through
//!    `gogo` → `async_resume` → `iretq`, on any core.
//!
//! An async-safe point means all of:
//! - a goroutine is this core's curg, it is `_Grunning`, and its preemption
//!   was requested (`gp.preempt`, or `pp.preempt` for whatever G its P runs:
//!   Go's `wantAsyncPreempt`; `schedule` clears `pp.preempt`);
//! - the interrupted `rsp` lies inside that goroutine's stack (so not g0,
//!   not the scheduler, not another interrupt or fault handler);
//! - `m.locks == 0`: no runtime spin lock is held (those also keep
//!   interrupts off, so the IPI waits) and no `PreemptGuard` is alive;
//! - `asyncpreemptoff=1` was not given.
//! The context switch code itself (`mcall`, `gogo`) runs with interrupts off.
//! If the point is not safe, nothing happens: sysmon asks again on a later
//! tick, and a `PreemptGuard` honours a pending request when it is dropped.
use super::runtime2::{G, P, P_RUNNING, P_SYSCALL};
use crate::arch::x86_64::apic;
use crate::arch::x86_64::switch::{async_resume, call_on_stack, fxsave, AsyncCtx, IrqFrame, ASYNC_CTX_SIZE};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use gmp_core::retake::{PStatus, PSnapshot, Retake};

/// Bytes above `stack.lo` where the software check trips before the guard
/// page would (Go's `_StackGuard`, 928 bytes on linux/amd64; our frames are
/// bigger, so more).
pub const STACK_GUARD: u64 = 16 * 1024;
/// The poison: above every valid stack address (Go: `0xfffffade`, which is
/// above every user-space stack; our stacks live in the upper half, so use
/// the top of the address space).
pub const STACK_PREEMPT: u64 = 0xffff_ffff_ffff_fade;

/// sysmon's per-P memory (Go's `sysmontick`).
pub struct SysmonTick {
    pub schedtick: AtomicU32,
    pub schedwhen: AtomicU64,
    pub syscalltick: AtomicU32,
    pub syscallwhen: AtomicU64,
}

impl SysmonTick {
    pub const fn new() -> Self {
        SysmonTick {
            schedtick: AtomicU32::new(0),
            schedwhen: AtomicU64::new(0),
            syscalltick: AtomicU32::new(0),
            syscallwhen: AtomicU64::new(0),
        }
    }
}

impl Default for SysmonTick {
    fn default() -> Self {
        Self::new()
    }
}

/// Go's `preemptone`: ask the G running on pp to stop.
pub fn preemptone(pp: &P) -> bool {
    let mp = pp.m.load(Ordering::Acquire);
    if mp.is_null() {
        return false;
    }
    // SAFETY: Ms are never freed.
    let m = unsafe { &*mp };
    let gp = m.curg.load(Ordering::Acquire);
    if gp.is_null() {
        return false;
    }
    // SAFETY: Gs are never freed.
    let g = unsafe { &*gp };
    //~ lab5 begin preemptone: ask g to stop: set g.preempt, poison g.stackguard0 with STACK_PREEMPT (the next
    //~ stack check fails), set pp.preempt; if m is another core, send it the preemption IPI
    //~ (apic::PREEMPT_VECTOR to m.apic_id, traced with tracer::ipi_send). Return true.
    // Pairs with the loads at the safe point (check_preempt_at_safe_point,
    // morestack_check) on the G's core.
    g.preempt.store(true, Ordering::Release);
    g.stackguard0.store(STACK_PREEMPT, Ordering::Release);
    pp.preempt.store(true, Ordering::Release);
    if m.id != crate::arch::x86_64::percpu::cpu_id() {
        super::tracer::ipi_send(m.apic_id, crate::arch::x86_64::apic::PREEMPT_VECTOR);
        crate::arch::x86_64::apic::send_ipi(m.apic_id, crate::arch::x86_64::apic::PREEMPT_VECTOR);
    }
    true
    //~ lab5 end
}

/// Go's `retake`: called from sysmon's tick. The decision for each P is
/// `gmp_core::retake::decide` (pure, tested on the host with a fake clock);
/// this loop reads the P for it, keeps sysmon's memory (`pp.sysmontick`),
/// and acts: `preemptone`, or the syscall hand-off (`retake_syscall`).
pub fn retake(now: u64) {
    let limit = crate::boot::params().forcepreemptns;
    for pp in super::proc::allp_slice() {
        let status = match pp.status.load(Ordering::Acquire) {
            P_RUNNING => PStatus::Running,
            P_SYSCALL => PStatus::Syscall,
            _ => continue, // _Pidle, _Pgcstop, _Pdead: nothing to do
        };
        let pd = &pp.sysmontick;
        let mut tick = gmp_core::retake::SysmonTick {
            schedtick: pd.schedtick.load(Ordering::Relaxed),
            schedwhen: pd.schedwhen.load(Ordering::Relaxed),
            syscalltick: pd.syscalltick.load(Ordering::Relaxed),
            syscallwhen: pd.syscallwhen.load(Ordering::Relaxed),
        };
        let seen = tick;
        let syscall = status == PStatus::Syscall;
        // Acquire: pairs with the release store in execute(), made after it
        // stamped slicestart.
        let schedtick = pp.schedtick.load(Ordering::Acquire);
        if status == PStatus::Running && schedtick != tick.schedtick {
            // A new time slice. Go's sysmon remembers when it first saw the
            // tick (decide does, too). Go's sysmon sleeps 20 us when busy, so
            // that is close to the slice's start; ours runs on a 1 ms tick,
            // so its first sight comes up to a tick late, and the slice would
            // end up to a tick after forcePreemptNS. Learn the start that
            // execute stamped instead: decide then finds the tick seen and
            // measures the slice from its start. The stamp read is this
            // slice's or a later one's (see P::slicestart): a slice is never
            // cut short. `min(now)`: another core's TSC may run a little ahead.
            tick.schedtick = schedtick;
            tick.schedwhen = crate::arch::x86_64::time::tsc_to_nanotime(pp.slicestart.load(Ordering::Relaxed)).min(now);
        }
        let snap = PSnapshot {
            status,
            schedtick,
            syscalltick: pp.syscalltick.load(Ordering::Relaxed),
            // Only a P in a syscall needs these (the keep-it-cheap rule).
            runq_empty: syscall && pp.runq.stealer().is_empty(),
            nmspinning_npidle: if syscall { super::proc::nmspinning_npidle() } else { 0 },
        };
        let what = gmp_core::retake::decide(&mut tick, &snap, now, limit);
        // Store back only what sysmon learnt: entersyscall also stamps
        // pd.syscallwhen, and an unchanged field must not overwrite it.
        if tick.schedtick != seen.schedtick || tick.schedwhen != seen.schedwhen {
            pd.schedtick.store(tick.schedtick, Ordering::Relaxed);
            pd.schedwhen.store(tick.schedwhen, Ordering::Relaxed);
        }
        if tick.syscalltick != seen.syscalltick || tick.syscallwhen != seen.syscallwhen {
            pd.syscalltick.store(tick.syscalltick, Ordering::Relaxed);
            pd.syscallwhen.store(tick.syscallwhen, Ordering::Relaxed);
        }
        match what {
            Retake::Nothing => {}
            Retake::Preempt => {
                preemptone(pp);
            }
            Retake::HandOff => super::proc::retake_syscall(pp),
        }
    }
}

/// Go's `canPreemptM` for the running G: no runtime lock or guard held
/// (`m.locks == 0`), and the goroutine runs Go code on a P (`_Grunning`,
/// its M's P `_Prunning`). A goroutine between `entersyscall` and
/// `exitsyscall` has no P (its P is `_Psyscall`, or retaken and running
/// someone else): it must not be preempted there. Its request stays
/// pending (`g.preempt`) and `exitsyscall` re-arms it.
#[inline]
fn can_preempt(g: &G) -> bool {
    if super::lock::preempt_disabled() || g.status() != super::runtime2::G_RUNNING {
        return false;
    }
    let pp = super::proc::getm().p.load(Ordering::Relaxed);
    // SAFETY: Ps are never freed.
    !pp.is_null() && unsafe { (*pp).status.load(Ordering::Relaxed) } == P_RUNNING
}

/// If a preemption was requested for the running G and preemption is
/// allowed here, yield now (Go's `morestack` → `newstack` → `gopreempt_m`).
#[inline]
pub fn check_preempt_at_safe_point() {
    let gp = super::proc::getg();
    if gp.is_null() {
        return;
    }
    // SAFETY: the running G is live.
    let g = unsafe { &*gp };
    if !g.preempt.load(Ordering::Relaxed) || !can_preempt(g) {
        return;
    }
    COOP_PREEMPTS.fetch_add(1, Ordering::Relaxed);
    super::proc::gopreempt();
}

/// After `exitsyscall` got a P back: a preemption request that arrived
/// before or during the syscall, and that the syscall's safe points had to
/// refuse, is armed again (Go's exitsyscall: `if gp.preempt {
/// gp.stackguard0 = stackPreempt }`). The next safe point honours it.
pub fn restore_preempt_request(g: &G) {
    if g.preempt.load(Ordering::Relaxed) {
        g.stackguard0.store(STACK_PREEMPT, Ordering::Relaxed);
    }
}

/// The cooperative stack check with the shape of Go's prologue:
/// `sp < stackguard0` → morestack. Returns after a yield (preemption), or
/// reports a genuine overflow as fatal.
#[inline]
pub fn morestack_check() {
    let gp = super::proc::getg();
    if gp.is_null() {
        return;
    }
    // SAFETY: the running G is live.
    let g = unsafe { &*gp };
    let sp: u64;
    // SAFETY: reading rsp has no side effects.
    unsafe { core::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    let guard = g.stackguard0.load(Ordering::Relaxed);
    if sp < guard {
        morestack(g, sp, guard);
    }
}

/// `guard` is the value the check compared against: decide on that value,
/// not on a fresh read. Between the two an asynchronous preemption may have
/// run the goroutine through `execute`, which resets `stackguard0`; a fresh
/// read would then mistake the old poison for a real overflow.
#[cold]
fn morestack(g: &G, sp: u64, guard: u64) {
    if guard == STACK_PREEMPT {
        newstack_preempt(g);
        return;
    }
    if sp >= g.stack_lo + STACK_GUARD {
        // Not below the real guard: a stale value (see above).
        return;
    }
    super::fatal::fatal(format_args!(
        "stack overflow: goroutine {} sp={sp:#x} is below its stack guard (stack=[{:#x}, {:#x}], {} bytes)",
        g.id(),
        g.stack_lo,
        g.stack_hi,
        crate::mem::stack::STACK_SIZE
    ));
}

/// The preempt branch of Go's `newstack`: the check tripped on the poison,
/// not on a real overflow. Yield if the request still stands and this G may
/// be preempted here (`gopreempt_m`: the G goes to the global queue).
fn newstack_preempt(g: &G) {
    //~ lab5 begin newstack_preempt: g.preempt set and can_preempt(g)? count it in COOP_PREEMPTS and
    //~ proc::gopreempt(). Otherwise, in a syscall (G_SYSCALL): un-poison stackguard0 (stack_lo + STACK_GUARD)
    //~ and keep g.preempt, so the G runs on; exitsyscall re-arms the request.
    if g.preempt.load(Ordering::Relaxed) && can_preempt(g) {
        COOP_PREEMPTS.fetch_add(1, Ordering::Relaxed);
        super::proc::gopreempt();
    } else if g.status() == super::runtime2::G_SYSCALL {
        // Go's newstack when it cannot preempt: un-poison the guard so
        // the goroutine runs on (every check would trip otherwise) and
        // keep `g.preempt`; exitsyscall re-arms the request.
        g.stackguard0.store(g.stack_lo + STACK_GUARD, Ordering::Relaxed);
    }
    //~ lab5 end
}

/// Asynchronous preemptions taken, and requests found unsafe (statistics).
pub static ASYNC_PREEMPTS: AtomicU64 = AtomicU64::new(0);
pub static ASYNC_REFUSED: AtomicU64 = AtomicU64::new(0);
/// Cooperative preemptions (a safe point saw the request).
pub static COOP_PREEMPTS: AtomicU64 = AtomicU64::new(0);

/// Called by the interrupt stubs for the timer and the preemption vector,
/// on the IRQ IST stack, with interrupts off.
pub extern "C" fn irq_dispatch(frame: *mut IrqFrame, vector: u32) {
    super::profiler::on_irq(vector, frame);
    match vector as u8 {
        apic::TIMER_VECTOR => super::irq::on_timer(),
        apic::PREEMPT_VECTOR => super::irq::on_preempt(),
        _ => {}
    }
    apic::eoi();
    // SAFETY: the stub passes a pointer to the frame it built on this stack.
    let f = unsafe { &*frame };
    let gp = super::proc::getg();
    if gp.is_null() {
        return;
    }
    // SAFETY: curg is a live G.
    let g = unsafe { &*gp };
    if !want_async_preempt(g) {
        return;
    }
    let safe = !crate::boot::params().asyncpreemptoff
        && f.rsp > g.stack_lo
        && f.rsp <= g.stack_hi
        && !super::lock::preempt_disabled();
    if !safe {
        ASYNC_REFUSED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    // SAFETY: the conditions above make this an async-safe point.
    unsafe { async_preempt(f, gp) }
}

/// Go's `wantAsyncPreempt`: a preemption was asked for the running G, or
/// for its P (`pp.preempt`, which outlives a request that `execute` cleared
/// from the G it was switching in), and the G is `_Grunning`.
#[inline]
fn want_async_preempt(g: &G) -> bool {
    // Acquire: pairs with the release stores in preemptone.
    let asked = g.preempt.load(Ordering::Acquire) || {
        let pp = super::proc::getm().p.load(Ordering::Relaxed);
        // SAFETY: Ps are never freed.
        !pp.is_null() && unsafe { (*pp).preempt.load(Ordering::Acquire) }
    };
    asked && g.status() == super::runtime2::G_RUNNING
}

/// Save the interrupted goroutine's full state on its own stack and switch
/// to g0 to reschedule.
///
/// # Safety
/// Called only from `irq_dispatch` at an async-safe point; `f` is the
/// interrupted context of `gp`.
unsafe fn async_preempt(f: &IrqFrame, gp: *mut G) -> ! {
    ASYNC_PREEMPTS.fetch_add(1, Ordering::Relaxed);
    let base = (f.rsp - ASYNC_CTX_SIZE) & !63;
    let ctx = base as *mut AsyncCtx;
    // SAFETY: [base, f.rsp) is the free part of gp's stack right below its
    // stack pointer (no red zone in this kernel); pages not yet mapped are
    // mapped by the page-fault handler, the guard page reports an overflow.
    // gp is not running anywhere else (it is curg here), and the FPU/SSE
    // registers still hold its state (kernel code is soft-float).
    unsafe {
        core::ptr::addr_of_mut!((*ctx).frame).write(*f);
        fxsave(core::ptr::addr_of_mut!((*ctx).fx) as *mut u8);
        (*gp).sched.sp = base;
        (*gp).sched.pc = async_resume as *const () as u64;
        (*gp).sched.bp = f.rbp;
    }
    extern "C" fn on_g0(gp: *mut u8) {
        super::proc::goschedimpl(gp as *mut G, true)
    }
    let top = super::proc::getm().g0_stack_top;
    // SAFETY: g0's stack is unused while a goroutine runs (mcall always
    // starts it afresh at the top), and on_g0 never returns; the IST stack
    // we leave is reset by the next interrupt.
    unsafe { call_on_stack(gp as *mut u8, on_g0, top) };
    unreachable!()
}

/// Resume gp, whose context was saved by `mcall` (or by the asynchronous
/// preemption path).
///
/// # Safety
/// gp is runnable-now-running on this core (`execute` made it curg).
#[inline]
pub unsafe fn resume(gp: *mut G) -> ! {
    // SAFETY: forwarded from the caller.
    unsafe { crate::arch::x86_64::switch::gogo(gp) }
}
