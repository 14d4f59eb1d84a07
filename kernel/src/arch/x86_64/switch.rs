//! The context switch: Go's `gobuf`, `gogo`, `mcall` and `systemstack`.
//!
//! A voluntary switch happens inside a function call, so the SysV ABI says
//! which registers the caller expects to survive: rbx, rbp, r12-r15, rsp
//! (and the x87/MXCSR control words, which kernel code never changes, and
//! no SSE registers at all: the kernel is built soft-float). `mcall` pushes
//! those six registers on the goroutine's own stack and records `sp`, `pc`
//! (a resume label) and `bp` in the G's [`Gobuf`]; `gogo` loads `sp`/`bp`
//! and jumps to `pc`, where the resume label pops them back and returns
//! from `mcall` into the goroutine.
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
    /// Return value slot (unused by the voluntary path; kept as in Go).
    pub ret: u64,
    pub bp: u64,
}

const SCHED: usize = offset_of!(G, sched);
const GOBUF_SP: usize = SCHED + offset_of!(Gobuf, sp);
const GOBUF_PC: usize = SCHED + offset_of!(Gobuf, pc);
const GOBUF_CTXT: usize = SCHED + offset_of!(Gobuf, ctxt);
const GOBUF_BP: usize = SCHED + offset_of!(Gobuf, bp);
const M_G0_TOP: usize = offset_of!(M, g0_stack_top);
const PERCPU_CURG: usize = super::percpu::CURG_OFFSET;
const PERCPU_M: usize = 24;
const _: () = assert!(offset_of!(Gobuf, sp) == 0 && offset_of!(Gobuf, pc) == 8 && offset_of!(Gobuf, bp) == 40);

/// Switch from the current goroutine to this core's g0 stack and call
/// `f(gp)` there, where `gp` is the goroutine that called `mcall`. `f` must
/// not return: it ends in `schedule()` (which `gogo`s to something) or in a
/// `gogo(gp)` that resumes the caller, which then returns from `mcall`.
///
/// # Safety
/// Must be called on a goroutine stack (not g0), with `gs:[curg]` set to the
/// running G and no spin lock held.
#[unsafe(naked)]
pub unsafe extern "C" fn mcall(f: extern "C" fn(*mut G) -> !) {
    core::arch::naked_asm!(
        "push rbp",
        "push rbx",
        "push r12",
        "push r13",
        "push r14",
        "push r15",
        "mov rax, gs:[{curg}]",
        "mov [rax + {sp}], rsp",
        "lea rcx, [rip + 2f]",
        "mov [rax + {pc}], rcx",
        "mov [rax + {bp}], rbp",
        "mov rsi, rdi",
        "mov rdi, rax",
        "mov rdx, gs:[{m}]",
        "mov rsp, [rdx + {g0top}]",
        "xor ebp, ebp",
        "call rsi",
        "ud2",
        "2:",
        "pop r15",
        "pop r14",
        "pop r13",
        "pop r12",
        "pop rbx",
        "pop rbp",
        "ret",
        curg = const PERCPU_CURG,
        m = const PERCPU_M,
        sp = const GOBUF_SP,
        pc = const GOBUF_PC,
        bp = const GOBUF_BP,
        g0top = const M_G0_TOP,
    )
}

/// Resume `gp` from its gobuf. Loads `ctxt` into rdi for a fresh goroutine's
/// entry function.
///
/// # Safety
/// `gp.sched` must describe a valid suspended context on `gp`'s stack, and
/// the caller must already have made `gp` this core's curg (`execute`).
#[unsafe(naked)]
pub unsafe extern "C" fn gogo(gp: *mut G) -> ! {
    core::arch::naked_asm!(
        "mov rsp, [rdi + {sp}]",
        "mov rbp, [rdi + {bp}]",
        "mov rax, [rdi + {pc}]",
        "mov rdi, [rdi + {ctxt}]",
        "jmp rax",
        sp = const GOBUF_SP,
        bp = const GOBUF_BP,
        pc = const GOBUF_PC,
        ctxt = const GOBUF_CTXT,
    )
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
