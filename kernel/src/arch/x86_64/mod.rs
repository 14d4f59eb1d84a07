//! x86_64 support: serial console, descriptor tables, the local APIC, the PIT,
//! fw_cfg boot parameters, the AP trampoline, per-CPU data and the context switch.
//!
//! All of the kernel's inline assembly lives under this directory.
pub mod apic;
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
