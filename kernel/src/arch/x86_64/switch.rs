//! The context switch: Go's `gobuf`, `gogo`, `mcall` and `systemstack`.
//!
//! A voluntary switch happens inside a function call, so the SysV ABI says
//! which registers the caller expects to survive: rbx, rbp, r12-r15, rsp
//! (and the x87/MXCSR control words, which kernel code never changes, and
//! no SSE registers at all: the kernel is built soft-float). `mcall` is
//! inline asm in its caller: it tells the compiler that r12-r15 do not
//! survive (the compiler spills what it needs), pushes rbx on the
//! goroutine's own stack and records `sp`, `pc` (a resume label) and `bp`
//! in the G's [`Gobuf`]; `gogo` loads `sp`/`bp` and jumps to `pc`, where
//! the resume label pops rbx and the caller's code goes on.
//!
//! A fresh goroutine's gobuf is built by `gostartcall` (runtime::proc): `pc`
//! is its entry function, `ctxt` its closure (passed in rdi by `gogo`), and
//! the stack holds the address of `goexit` as the return address, so that
//! returning from the entry function "returns" into goexit, as in Go.
//!
//! The asynchronous path (an interrupt switching goroutines) saves the full
//! register file instead; see runtime::preempt.
use crate::runtime::runtime2::{G, M};
use core::mem::offset_of;

/// Go's gobuf: where a goroutine resumes. The field order is used by the asm
/// below through `offset_of!`, so the two cannot drift apart.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Gobuf {
    pub sp: u64,
    pub pc: u64,
    /// The G this buffer belongs to (kept for symmetry with Go; debugging).
    pub g: u64,
    /// Closure context: the entry argument of a fresh goroutine.
    pub ctxt: u64,
    /// Go keeps a return value here; we keep the entry function of a fresh
    /// goroutine, which `gostart` jumps to.
    pub ret: u64,
    pub bp: u64,
}

const SCHED: usize = offset_of!(G, sched);
const GOBUF_SP: usize = SCHED + offset_of!(Gobuf, sp);
const GOBUF_PC: usize = SCHED + offset_of!(Gobuf, pc);
const GOBUF_CTXT: usize = SCHED + offset_of!(Gobuf, ctxt);
const GOBUF_BP: usize = SCHED + offset_of!(Gobuf, bp);
const GOBUF_RET: usize = SCHED + offset_of!(Gobuf, ret);
const M_G0_TOP: usize = offset_of!(M, g0_stack_top);
const PERCPU_CURG: usize = super::percpu::CURG_OFFSET;
const PERCPU_M: usize = 24;
const _: () = assert!(offset_of!(Gobuf, sp) == 0 && offset_of!(Gobuf, pc) == 8 && offset_of!(Gobuf, bp) == 40);

/// Switch from the current goroutine to this core's g0 stack and call
/// `f(gp)` there, where `gp` is the goroutine that called `mcall`. `f` must
/// not return: it ends in `schedule()` (which `gogo`s to something) or in a
/// `gogo(gp)` that resumes the caller, which then returns from `mcall`.
///
/// Not a function of its own but inline asm in each caller, as `gogo` is.
/// The save and the resume point are then in the caller's own code: no
/// `call` into `mcall` and no `ret` out of it, each a look-up of the next
/// translated block under emulation, and only the registers the caller
/// really has live are saved (the compiler sees r12-r15 clobbered and
/// spills what it needs). What the asm saves itself:
/// - rbx, pushed on the goroutine's stack (LLVM reserves it, so it cannot
///   be declared clobbered); `gobuf.sp` is the stack pointer after the
///   push, so the saved rbx sits at `gobuf.sp`;
/// - rbp in `gobuf.bp` (`gogo` reloads it; LLVM reserves it too);
/// - the resume label's address in `gobuf.pc`. The code there is always
///   `pop rbx; sti` (bytes 5b fb): tools/gdb/gmpos.py recognises a
///   goroutine stopped in `mcall` by those two bytes at its saved pc.
///
/// # Safety
/// Must be called on a goroutine stack (not g0), with `gs:[curg]` set to the
/// running G and no spin lock held.
#[inline(always)]
pub unsafe fn mcall(f: extern "C" fn(*mut G) -> !) {
    // SAFETY: the caller's contract: we are on the goroutine's stack and it
    // is this core's curg. Interrupts are off from the first instruction
    // until the g0 function turns them back on, so an asynchronous
    // preemption never sees a half-written gobuf (see runtime::preempt).
    // The asm returns only when `gogo` resumes the gobuf written here, with
    // rsp and rbp as they were at the push and rbx popped back, so the
    // compiled code around it sees every register it did not declare
    // clobbered unchanged. Without `nostack`, the stack pointer is aligned
    // for a call at entry and the asm may push below it (no red zone).
    unsafe {
        core::arch::asm!(
            "cli",
            "push rbx",
            "mov rdi, gs:[{curg}]",
            "mov [rdi + {sp}], rsp",
            "lea rax, [rip + 2f]",
            "mov [rdi + {pc}], rax",
            "mov [rdi + {bp}], rbp",
            "mov rax, gs:[{m}]",
            "mov rsp, [rax + {g0top}]",
            "xor ebp, ebp",
            "call rsi",
            "ud2",
            // Resumed by gogo (which runs with interrupts off): the
            // goroutine runs with them on.
            "2:",
            "pop rbx",
            "sti",
            curg = const PERCPU_CURG,
            m = const PERCPU_M,
            sp = const GOBUF_SP,
            pc = const GOBUF_PC,
            bp = const GOBUF_BP,
            g0top = const M_G0_TOP,
            in("rsi") f,
            out("r12") _,
            out("r13") _,
            out("r14") _,
            out("r15") _,
            clobber_abi("C"),
        )
    }
}

/// Resume `gp` from its gobuf. Loads `ctxt` into rdi for a fresh goroutine's
/// entry function.
///
/// Not a function of its own but inline asm in its caller (`execute`, by
/// way of `preempt::resume`): it never returns, so nothing of the caller's
/// frame is needed after it, and the switch makes one jump fewer to another
/// code page (under emulation, a look-up of the next translated block).
///
/// # Safety
/// `gp.sched` must describe a valid suspended context on `gp`'s stack, and
/// the caller must already have made `gp` this core's curg (`execute`).
#[inline(always)]
pub unsafe fn gogo(gp: *mut G) -> ! {
    // SAFETY: the caller's contract: the gobuf describes a suspended
    // context, so loading its sp/bp and jumping to its pc resumes it. The
    // asm never returns (`noreturn`), so the registers it overwrites (rsp
    // and rbp among them) are never seen by the compiled caller again.
    unsafe {
        core::arch::asm!(
            // From here until the goroutine's own code runs, the stack
            // pointer and the gobuf disagree: no interrupt may look (the
            // resume paths turn interrupts back on: mcall's `pop rbx; sti`,
            // gostart's `sti`, async_resume's `iretq`).
            "cli",
            "mov rsp, [rdi + {sp}]",
            "mov rbp, [rdi + {bp}]",
            "mov rax, [rdi + {pc}]",
            "mov rsi, [rdi + {ret}]",
            "mov rdi, [rdi + {ctxt}]",
            "jmp rax",
            in("rdi") gp,
            sp = const GOBUF_SP,
            bp = const GOBUF_BP,
            pc = const GOBUF_PC,
            ret = const GOBUF_RET,
            ctxt = const GOBUF_CTXT,
            options(noreturn),
        )
    }
}

/// The first instruction of every fresh goroutine: interrupts on, then the
/// entry function (in rsi, from `gobuf.ret`) with its closure (rdi).
#[unsafe(naked)]
pub unsafe extern "C" fn gostart() -> ! {
    core::arch::naked_asm!("sti", "jmp rsi")
}

/// The registers an interrupt stub pushes, then the CPU's interrupt frame:
/// the layout of the IRQ IST stack inside `irq_dispatch`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IrqFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}
const _: () = assert!(core::mem::size_of::<IrqFrame>() == 20 * 8);

/// The full state of an asynchronously preempted goroutine, saved on its
/// own stack below the interrupted `rsp` (the kernel has no red zone):
/// FXSAVE area (x87/MMX/SSE and MXCSR), then the IrqFrame.
#[repr(C, align(64))]
pub struct AsyncCtx {
    pub fx: [u8; 512],
    pub frame: IrqFrame,
}
pub const ASYNC_CTX_SIZE: u64 = core::mem::size_of::<AsyncCtx>() as u64;

macro_rules! irq_stub {
    ($name:ident, $vector:expr) => {
        /// Interrupt entry (on the IRQ IST stack): save the general
        /// registers, call `irq_dispatch(frame, vector)`, restore, `iretq`.
        /// `irq_dispatch` may instead switch to another goroutine and never
        /// come back (asynchronous preemption).
        #[unsafe(naked)]
        pub unsafe extern "C" fn $name() {
            core::arch::naked_asm!(
                "push rax", "push rbx", "push rcx", "push rdx", "push rsi", "push rdi", "push rbp",
                "push r8", "push r9", "push r10", "push r11", "push r12", "push r13", "push r14", "push r15",
                "mov rdi, rsp",
                "mov esi, {vector}",
                "cld",
                "call {dispatch}",
                "pop r15", "pop r14", "pop r13", "pop r12", "pop r11", "pop r10", "pop r9", "pop r8",
                "pop rbp", "pop rdi", "pop rsi", "pop rdx", "pop rcx", "pop rbx", "pop rax",
                "iretq",
                vector = const $vector,
                dispatch = sym crate::runtime::preempt::irq_dispatch,
            )
        }
    };
}
irq_stub!(irq_stub_timer, 0x30);
irq_stub!(irq_stub_preempt, 0x32);
const _: () = assert!(super::apic::TIMER_VECTOR == 0x30 && super::apic::PREEMPT_VECTOR == 0x32);

/// Resume an asynchronously preempted goroutine: `gogo` set rsp to its
/// AsyncCtx; restore the FPU/SSE state and every register, and `iretq`
/// back to the interrupted instruction (restoring rflags, IF included).
#[unsafe(naked)]
pub unsafe extern "C" fn async_resume() -> ! {
    core::arch::naked_asm!(
        "fxrstor64 [rsp]",
        "add rsp, 512",
        "pop r15", "pop r14", "pop r13", "pop r12", "pop r11", "pop r10", "pop r9", "pop r8",
        "pop rbp", "pop rdi", "pop rsi", "pop rdx", "pop rcx", "pop rbx", "pop rax",
        "iretq",
    )
}
const _: () = assert!(core::mem::offset_of!(AsyncCtx, frame) == 512);

/// Save the FPU/SSE state at `area` (64-byte aligned, 512 bytes).
///
/// # Safety
/// `area` must be writable for 512 bytes and 16-byte aligned.
pub unsafe fn fxsave(area: *mut u8) {
    // SAFETY: forwarded from the caller.
    unsafe { core::arch::asm!("fxsave64 [{}]", in(reg) area, options(nostack)) };
}

/// Run `f(arg)` on the stack whose top is `stack_top`, then come back.
///
/// # Safety
/// `stack_top` must be the 16-byte-aligned top of a stack nobody else uses
/// until this returns (this core's g0 stack while a goroutine runs, with
/// preemption disabled).
#[unsafe(naked)]
pub unsafe extern "C" fn call_on_stack(arg: *mut u8, f: extern "C" fn(*mut u8), stack_top: u64) {
    core::arch::naked_asm!(
        "push rbp",
        "mov rbp, rsp",
        "mov rsp, rdx",
        "call rsi",
        "mov rsp, rbp",
        "pop rbp",
        "ret",
    )
}

/// The return address planted at the top of every goroutine stack: the
/// entry function "returns" here. The stack is 16-byte aligned at this point
/// (the return address was popped), as a call requires.
#[unsafe(naked)]
pub unsafe extern "C" fn goexit() -> ! {
    core::arch::naked_asm!(
        "call {goexit1}",
        "ud2",
        goexit1 = sym crate::runtime::proc::goexit1,
    )
}
