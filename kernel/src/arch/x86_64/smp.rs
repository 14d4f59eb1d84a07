//! Finding the cores (ACPI MADT) and starting the application processors.
//!
//! ## The AP start-up protocol
//!
//! An AP wakes up in 16-bit real mode at the page the start-up IPI names. We
//! copy a small trampoline (written below in assembly) to physical
//! [`TRAMPOLINE`] (below 1 MiB, identity-mapped in the kernel's page table so
//! it stays reachable when paging comes on) and fill its parameter block:
//! the kernel's CR3, a stack, the Rust entry point and its argument.
//!
//! The trampoline goes straight from real mode to long mode: load a tiny GDT,
//! set CR4.PAE, load CR3, set EFER.LME|NXE, set CR0.PE|PG|WP (and clear the
//! cache-disable bits INIT leaves set) in one write,
//! far-jump into the 64-bit code segment, load the stack and call
//! [`ap_entry`] through an absolute address. Going through 32-bit protected
//! mode is not needed.
//!
//! The boot core starts APs one at a time: fill the block, INIT, 10 ms,
//! SIPI, 200 us, SIPI, then wait (bounded) until the AP sets its `online`
//! flag. One AP at a time means one parameter block suffices. An AP that does
//! not come up in time is sent INIT again (so it cannot wake later and run on
//! a block meant for another core) and is reported by number.
//!
//! CPU numbers are dense (the n-th AP to come up is cpu n), so once an AP has
//! failed, cpu n is no longer the n-th core of the MADT. Each AP therefore
//! reads its own APIC id from its LAPIC and records it in its per-CPU entry
//! (before it sets `online`); IPIs go to that id. The boot core checks it
//! against the id it sent the SIPI to.
//!
//! `skip` (the `skipap` boot parameter) names one MADT position that gets no
//! INIT-SIPI-SIPI at all, so the boot core takes the same path as for an AP
//! that never answers: the full wait, then the report. Tests use it to check
//! that a machine with a dead core still schedules and IPIs correctly.
use super::{apic, percpu, time};
use crate::mem;
use alloc::vec::Vec;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

/// Physical address of the trampoline (page 8: SIPI vector 0x08).
pub const TRAMPOLINE: u64 = 0x8000;
/// Time an AP gets to report in.
const AP_TIMEOUT_US: u64 = 2_000_000;
/// Size of each AP's boot stack (its g0 stack).
pub const AP_STACK_SIZE: usize = 64 * 1024;

core::arch::global_asm!(
    r#"
    .section .text.ap_trampoline, "ax"
    .global ap_trampoline_start
    .global ap_trampoline_end
    .global ap_param_cr3
    .global ap_param_stack
    .global ap_param_entry
    .global ap_param_arg
    .set TBASE, 0x8000
    .code16
ap_trampoline_start:
    cli
    cld
    xorw %ax, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    lgdtl TBASE + (ap_gdtr - ap_trampoline_start)
    movl %cr4, %eax
    orl $((1 << 5) | (1 << 7) | (1 << 9) | (1 << 10)), %eax
    movl %eax, %cr4
    movl TBASE + (ap_param_cr3 - ap_trampoline_start), %eax
    movl %eax, %cr3
    movl $0xC0000080, %ecx
    rdmsr
    orl $((1 << 8) | (1 << 11)), %eax
    wrmsr
    movl %cr0, %eax
    andl $0x9fffffff, %eax
    orl $0x80010001, %eax
    movl %eax, %cr0
    ljmpl $0x08, $(TBASE + (ap_long_mode - ap_trampoline_start))

    .code64
ap_long_mode:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorw %ax, %ax
    movw %ax, %fs
    movw %ax, %gs
    movq TBASE + (ap_param_stack - ap_trampoline_start), %rsp
    movq TBASE + (ap_param_arg - ap_trampoline_start), %rdi
    movq TBASE + (ap_param_entry - ap_trampoline_start), %rax
    xorl %ebp, %ebp
    callq *%rax
1:  cli
    hlt
    jmp 1b

    .balign 8
ap_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF
    .quad 0x00CF92000000FFFF
ap_gdtr:
    .word ap_gdtr - ap_gdt - 1
    .long TBASE + (ap_gdt - ap_trampoline_start)
    .balign 8
ap_param_cr3:   .quad 0
ap_param_stack: .quad 0
ap_param_entry: .quad 0
ap_param_arg:   .quad 0
ap_trampoline_end:
    .text
"#,
    options(att_syntax)
);

extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_end: u8;
    static ap_param_cr3: u8;
    static ap_param_stack: u8;
    static ap_param_entry: u8;
    static ap_param_arg: u8;
}

/// The cores the MADT lists, boot core first: (APIC id).
pub struct CpuList {
    pub apic_ids: Vec<u32>,
    pub lapic_phys: u64,
}

#[derive(Clone, Copy)]
struct PhysHandler;

impl acpi::AcpiHandler for PhysHandler {
    unsafe fn map_physical_region<T>(&self, phys: usize, size: usize) -> acpi::PhysicalMapping<Self, T> {
        let virt = mem::phys_to_virt(phys as u64) as *mut T;
        // SAFETY: the bootloader maps all physical memory at phys_offset, and
        // ACPI tables live in RAM (or the BIOS area), inside that map.
        unsafe { acpi::PhysicalMapping::new(phys, NonNull::new(virt).expect("null ACPI mapping"), size, size, *self) }
    }
    fn unmap_physical_region<T>(_region: &acpi::PhysicalMapping<Self, T>) {}
}

/// Read the CPU list from the MADT. Without ACPI we run on the boot core only.
pub fn discover(rsdp: Option<u64>) -> CpuList {
    let fallback = || CpuList { apic_ids: alloc::vec![apic_id_from_cpuid()], lapic_phys: 0xfee0_0000 };
    let Some(rsdp) = rsdp else {
        crate::println!("smp: no RSDP from the bootloader; running on the boot core only");
        return fallback();
    };
    // SAFETY: the address is the RSDP the bootloader found; PhysHandler maps
    // it through the linear map.
    let tables = match unsafe { acpi::AcpiTables::from_rsdp(PhysHandler, rsdp as usize) } {
        Ok(t) => t,
        Err(e) => {
            crate::println!("smp: ACPI tables unreadable ({e:?}); running on the boot core only");
            return fallback();
        }
    };
    let info = match tables.platform_info() {
        Ok(i) => i,
        Err(e) => {
            crate::println!("smp: no MADT ({e:?}); running on the boot core only");
            return fallback();
        }
    };
    let lapic_phys = match &info.interrupt_model {
        acpi::InterruptModel::Apic(a) => a.local_apic_address,
        _ => 0xfee0_0000,
    };
    let mut apic_ids = Vec::new();
    if let Some(p) = &info.processor_info {
        apic_ids.push(p.boot_processor.local_apic_id);
        for ap in p.application_processors.iter() {
            if ap.state != acpi::platform::ProcessorState::Disabled {
                apic_ids.push(ap.local_apic_id);
            }
        }
    } else {
        apic_ids.push(apic_id_from_cpuid());
    }
    CpuList { apic_ids, lapic_phys }
}

fn apic_id_from_cpuid() -> u32 {
    (core::arch::x86_64::__cpuid(1).ebx >> 24) & 0xff
}

/// The Rust entry of an AP, called by the trampoline with its CPU index.
pub type ApMain = fn(cpu: usize) -> !;
static AP_MAIN: AtomicU64 = AtomicU64::new(0);

extern "C" fn ap_entry(cpu: u64) -> ! {
    // SAFETY: AP_MAIN was stored (release) before the SIPI that started us,
    // and holds a valid `ApMain` function pointer.
    let f: ApMain = unsafe { core::mem::transmute::<u64, ApMain>(AP_MAIN.load(Ordering::Acquire)) };
    f(cpu as usize)
}

fn sym(s: &u8) -> u64 {
    s as *const u8 as u64
}

/// Start every AP in `cpus` (index 0 is the boot core) but the one at list
/// position `skip`, which is treated as a core that does not answer. CPU
/// indices stay dense: the n-th AP to come up is cpu n. Returns (cores
/// online, the list positions of the cores that did not come up).
pub fn start_aps(cpus: &CpuList, main: ApMain, skip: Option<usize>) -> (usize, Vec<usize>) {
    AP_MAIN.store(main as usize as u64, Ordering::Release);
    // SAFETY: the symbols are defined in the global_asm above; we only take
    // their addresses.
    let (start, end, p_cr3, p_stack, p_entry, p_arg) = unsafe {
        (
            sym(&ap_trampoline_start),
            sym(&ap_trampoline_end),
            sym(&ap_param_cr3),
            sym(&ap_param_stack),
            sym(&ap_param_entry),
            sym(&ap_param_arg),
        )
    };
    let len = (end - start) as usize;
    assert!(len <= 4096, "AP trampoline larger than a page");
    mem::identity_map_low(TRAMPOLINE);
    let dst = mem::phys_to_virt(TRAMPOLINE) as *mut u8;
    // SAFETY: physical page 0x8000 is below 1 MiB, which the frame allocator
    // never hands out, so it is ours; the linear map makes it writable.
    unsafe { core::ptr::copy_nonoverlapping(start as *const u8, dst, len) };
    let param = |sym: u64| (dst as u64 + (sym - start)) as *mut u64;
    let (cr3, _) = x86_64::registers::control::Cr3::read();
    let cr3 = cr3.start_address().as_u64();
    assert!(cr3 < (1 << 32), "kernel page table above 4 GiB: the trampoline loads CR3 with 32 bits");

    let mut failed = Vec::new();
    let mut online = 1;
    for (n, &apic_id) in cpus.apic_ids.iter().enumerate().skip(1) {
        let cpu = online;
        if cpu >= percpu::MAX_CPUS {
            crate::println!("smp: core #{n} (apic id {apic_id}) ignored: MAX_CPUS is {}", percpu::MAX_CPUS);
            failed.push(n);
            continue;
        }
        // With a guard page below it (mem::kstack).
        let top = mem::kstack::alloc(AP_STACK_SIZE);
        // SAFETY: the parameter block lies inside the trampoline copy; no AP
        // is running the trampoline now (the previous one reported in or was
        // sent INIT).
        unsafe {
            param(p_cr3).write_volatile(cr3);
            param(p_stack).write_volatile(top);
            param(p_entry).write_volatile(ap_entry as *const () as u64);
            param(p_arg).write_volatile(cpu as u64);
        }
        core::sync::atomic::fence(Ordering::SeqCst);
        let up = || percpu::CPUS[cpu].online.load(Ordering::Acquire);
        if skip == Some(n) {
            crate::println!("smp: core #{n} (apic id {apic_id}) not started (skipap={n}): treated as a core that does not answer");
        } else {
            apic::send_init(apic_id);
            time::udelay(10_000);
            apic::send_sipi(apic_id, (TRAMPOLINE >> 12) as u8);
            time::udelay(200);
            if !up() {
                apic::send_sipi(apic_id, (TRAMPOLINE >> 12) as u8);
            }
        }
        let deadline = time::rdtsc() + AP_TIMEOUT_US * time::tsc_per_ms() / 1000;
        while !up() && time::rdtsc() < deadline {
            core::hint::spin_loop();
        }
        if up() {
            // The AP stored its own APIC id before `online` (release; our
            // load of `online` above was acquire).
            let own = percpu::CPUS[cpu].apic_id.load(Ordering::Relaxed);
            if own != apic_id {
                crate::println!("smp: cpu{cpu} reports apic id {own}, but the MADT entry #{n} it was started as says {apic_id}");
            }
            online += 1;
        } else {
            apic::send_init(apic_id);
            crate::println!("smp: core #{n} (apic id {apic_id}) did not come up within {} ms", AP_TIMEOUT_US / 1000);
            failed.push(n);
        }
    }
    // No AP runs the trampoline any more (each came up or was sent INIT).
    mem::unmap_low(TRAMPOLINE);
    (online, failed)
}
