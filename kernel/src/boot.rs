//! Bring-up: from the bootloader's hand-off to every core running the
//! scheduler.
//!
//! The boot core (m0):
//! 1. serial console, per-CPU GS base;
//! 2. frames, page tables, boot parameters (fw_cfg), heap;
//! 3. GDT/TSS/IDT, masks the legacy PIC;
//! 4. finds the cores in the ACPI MADT, maps and enables its LAPIC,
//!    calibrates the TSC and its LAPIC timer against the PIT;
//! 5. starts the APs one at a time (arch::x86_64::smp), each of which sets up
//!    its own GDT/TSS/IDT/LAPIC, calibrates its timer and reports online;
//! 6. prints `smp: <online> of <found> cores online in <N> us`;
//! 7. starts the runtime: `schedinit`, `main` as goroutine 1, `mstart` on
//!    every core.
use crate::arch::x86_64::{apic, exit, fwcfg, gdt, idt, percpu, pic, serial, smp, time};
use crate::println;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use gmp_core::bootparam::BootParams;

/// Set by the boot core once the runtime is initialised; APs wait for it
/// (load-acquire) before entering the scheduler. Pairs with the
/// store-release in `kernel_start`.
static RUNTIME_READY: AtomicBool = AtomicBool::new(false);
static ENTRY_TSC: AtomicU64 = AtomicU64::new(0);
/// Where the bootloader loaded our position-independent image (for
/// translating backtrace addresses back to ELF addresses).
pub static KERNEL_IMAGE_OFFSET: AtomicU64 = AtomicU64::new(0);
/// LAPIC register window (virtual), in the MMIO slot.
static LAPIC_VIRT: AtomicU64 = AtomicU64::new(0);

/// Parameters, validated, available to everyone after boot.
pub static PARAMS: spin::Once<BootParams> = spin::Once::new();

pub fn params() -> &'static BootParams {
    PARAMS.get().expect("boot parameters read at boot")
}

fn bad_params(msg: core::fmt::Arguments) -> ! {
    println!("boot parameter error: {msg}");
    println!("known boot parameters (pass them as key=value to the runner, or -fw_cfg name=opt/gmp/KEY,string=VALUE to QEMU):");
    for (k, help) in gmp_core::bootparam::KNOWN {
        println!("  {k:<16} {help}");
    }
    exit::exit_failure()
}

/// Read every `opt/gmp/KEY` file, validating against `ncpu` cores.
fn read_params(ncpu: u32) -> BootParams {
    let mut p = BootParams::default();
    let mut err = None;
    let r = fwcfg::for_each_param(|k, v| {
        if err.is_none() {
            if let Err(e) = p.apply(k, v, ncpu) {
                err = Some(e);
            }
        }
    });
    match r {
        Err(fwcfg::FwCfgError::TooMany) => bad_params(format_args!("too many boot parameters")),
        Err(fwcfg::FwCfgError::TooLong { key, key_len, size }) => bad_params(format_args!(
            "{}: value of {size} bytes is too long (max {})",
            core::str::from_utf8(&key[..key_len]).unwrap_or("?"),
            fwcfg::MAX_VALUE
        )),
        Ok(_) => {}
    }
    if let Some(e) = err {
        bad_params(format_args!("{e}"));
    }
    p
}

pub fn kernel_start(info: &'static mut bootloader_api::BootInfo, main: fn()) -> ! {
    ENTRY_TSC.store(time::rdtsc(), Ordering::Relaxed);
    KERNEL_IMAGE_OFFSET.store(info.kernel_image_offset, Ordering::Relaxed);
    serial::init();
    percpu::init(0, apic::cpuid_apic_id());
    serial::percpu_ready();

    let phys_offset = info.physical_memory_offset.into_option().expect("bootloader must map physical memory");
    crate::mem::init(phys_offset);
    crate::mem::frame::init(&info.memory_regions);

    // First pass: everything but the core count is known; the heap size is
    // needed before anything allocates.
    let early = read_params(percpu::MAX_CPUS as u32);
    crate::mem::heap::init(early.heap_bytes);
    crate::mem::stack::init();

    gdt::init_this_cpu();
    idt::init_this_cpu();
    crate::arch::x86_64::enable_sse();
    pic::disable();

    let cpus = smp::discover(info.rsdp_addr.into_option());
    let mmio = crate::mem::claim_l4_slot();
    crate::mem::map_mmio(mmio, cpus.lapic_phys);
    LAPIC_VIRT.store(mmio, Ordering::Relaxed);
    apic::set_base(mmio);
    apic::init_mode(early.x2apic);
    apic::init_this_cpu();
    // The LAPIC's own view of our id (all 32 bits in x2APIC mode).
    percpu::CPUS[0].apic_id.store(apic::id(), Ordering::Relaxed);
    let why = if !early.x2apic && apic::cpu_has_x2apic() { "; the CPU has x2APIC, x2apic=0 turned it off" } else { "" };
    println!("apic: {}{why}", apic::mode_name());
    time::calibrate();
    let per_ms = apic::calibrate_timer();
    percpu::CPUS[0].online.store(true, Ordering::Release);

    let found = cpus.apic_ids.len();
    if let Err(e) = early.check_skipap(found as u32) {
        bad_params(format_args!("{e}"));
    }
    let skip = (early.skipap != 0).then_some(early.skipap as usize);
    let (online, failed) = smp::start_aps(&cpus, ap_main, skip);
    let us = time::tsc_to_us(time::rdtsc() - ENTRY_TSC.load(Ordering::Relaxed));
    for n in &failed {
        println!("smp: core #{n} (apic id {}) is not used", cpus.apic_ids[*n]);
    }
    if !failed.is_empty() {
        // The dense CPU numbers no longer follow the MADT: say which is which.
        for cpu in 0..online {
            println!("smp: cpu{cpu} is apic id {}", apic_id(cpu));
        }
    }
    println!("smp: {online} of {found} cores online in {us} us");
    println!(
        "time: tsc {} kHz; cpu0 lapic timer {} kHz (/16), used by every core; one-shot wake-ups: {}",
        time::tsc_per_ms(),
        per_ms,
        apic::oneshot_name()
    );

    // Second pass: now gomaxprocs can be checked against the real core count.
    let params = read_params(online as u32);
    PARAMS.call_once(|| params);
    crate::runtime::tracer::init(online);
    crate::runtime::profiler::init(online);

    crate::runtime::proc::schedinit(online);
    RUNTIME_READY.store(true, Ordering::Release);
    for cpu in 1..online {
        apic::send_ipi(apic_id(cpu), apic::WAKE_VECTOR);
    }
    crate::runtime::proc::mstart0(main)
}

/// Where each AP lands after the trampoline, on its own boot stack.
///
/// `cpu` is dense (the n-th AP to come up), so it says nothing about which
/// MADT entry this core is once an earlier AP failed to start: the core reads
/// its own APIC id from its LAPIC (the boot core mapped the register window
/// for everyone) and records that, before it reports online.
fn ap_main(cpu: usize) -> ! {
    // Its GDT, TSS and IDT are loaded, SSE is on and its LAPIC is on, in
    // x2APIC mode where the boot core chose it: smp::ap_entry did all that
    // before it reported in.
    percpu::init(cpu, apic::id());
    apic::set_timer_rate(percpu::CPUS[0].lapic_ticks_per_ms.load(Ordering::Relaxed));
    percpu::CPUS[cpu].online.store(true, Ordering::Release);
    while !RUNTIME_READY.load(Ordering::Acquire) {
        // Not yet: halt until the boot core's wake-up IPI (it sends one to
        // every core once the runtime is ready), re-checking on each wake.
        x86_64::instructions::interrupts::disable();
        if RUNTIME_READY.load(Ordering::Acquire) {
            break;
        }
        x86_64::instructions::interrupts::enable_and_hlt();
    }
    x86_64::instructions::interrupts::enable();
    crate::runtime::proc::mstart()
}

/// APIC id of dense CPU `cpu`.
pub fn apic_id(cpu: usize) -> u32 {
    percpu::CPUS[cpu].apic_id.load(Ordering::Relaxed)
}
