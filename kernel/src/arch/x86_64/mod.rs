//! x86_64 support: serial console, descriptor tables, the local APIC, the PIT,
//! fw_cfg boot parameters, the AP trampoline, per-CPU data and the context switch.
//!
//! All of the kernel's inline assembly lives under this directory.
pub mod apic;
pub mod debugcon;
pub mod exit;
pub mod fwcfg;
pub mod gdt;
pub mod idt;
pub mod percpu;
pub mod pic;
pub mod pit;
pub mod serial;
pub mod smp;
pub mod switch;
pub mod time;

/// Halt this core for good with interrupts off (used after a fatal report
/// when QEMU has not exited yet, e.g. on another core).
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

/// Let goroutines use SSE: CR0.EM off, CR0.MP on, CR4.OSFXSR and
/// CR4.OSXMMEXCPT on. The kernel itself is built soft-float and never
/// touches these registers; asynchronous preemption saves and restores them
/// for the goroutines that do (FXSAVE/FXRSTOR).
pub fn enable_sse() {
    use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};
    // SAFETY: enabling SSE support is architecturally defined and affects
    // only the availability of SSE instructions.
    unsafe {
        Cr0::update(|f| {
            f.remove(Cr0Flags::EMULATE_COPROCESSOR);
            f.insert(Cr0Flags::MONITOR_COPROCESSOR);
        });
        Cr4::update(|f| f.insert(Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE));
    }
}
