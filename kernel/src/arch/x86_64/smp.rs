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
//! ## Parallel bring-up
//!
//! The boot core starts every AP at once, as Linux does since 6.5, instead of
//! one after the other (INIT, 10 ms, SIPI, wait, next). So the parameter
//! block cannot name one stack: it names a table of [`ApSlot`]s, one per AP
//! started, each with the AP's APIC id and its own boot stack. An AP that
//! reaches long mode reads its APIC id from CPUID (leaf 0xB, the 32-bit
//! x2APIC id, where the CPU has that leaf; else leaf 1's 8-bit id), finds its
//! slot by that id, loads the slot's stack and calls [`ap_entry`] with the
//! slot's index. An AP whose id is in no slot halts.
//!
//! The steps, boot core on the left, each AP on the right:
//!
//! ```text
//!   fill the slots (id, stack), state SENT;
//!   build each slot's GDT and TSS
//!   INIT to every AP; 10 ms (old CPUs only); SIPI to every AP; 200 us;
//!   a 2nd SIPI to those not yet ARRIVED          trampoline → ap_entry(slot):
//!                                                load the slot's GDT and TSS,
//!                                                the IDT; SSE, LAPIC on
//!                                                CAS state SENT → ARRIVED
//!   wait (bounded) until every slot ARRIVED      (failed: it was CLOSED → halt)
//!   a slot still SENT: CAS SENT → CLOSED,        halt until state is GO
//!     send INIT, report it (a late AP halts)       (or CLOSED → halt)
//!   number the ARRIVED slots 1, 2, ... in MADT
//!     order: slot.cpu = n; state = GO (release);
//!     BRINGUP_VECTOR IPI to it                   cpu = slot.cpu (acquire)
//!                                                ap_main(cpu): per-CPU data,
//!                                                timer rate, online = true
//!   wait (bounded) until every numbered cpu is
//!     online
//! ```
//!
//! The numbering waits for the arrivals so that CPU numbers stay dense and in
//! MADT order (cpu n is the n-th core that answered, as before), however the
//! APs raced each other through the trampoline. The APs do not calibrate
//! their LAPIC timers: every LAPIC of a machine counts the same clock, so
//! they take the boot core's rate (as Linux does).
//!
//! An AP waits for its number in `hlt`, woken by the boot core's
//! `BRINGUP_VECTOR` IPI, not in a spin loop. That is why it loads the IDT
//! and turns its LAPIC on before it reports in. Under TCG every vCPU is a
//! host thread, and `pause` does not give the host CPU up: with 31 APs
//! spinning on a 2-core host, the boot core got a time slice every few tens
//! of ms, and so did each AP still in the trampoline. At 32 cores the last
//! AP had arrived 92 ms after the first INIT, the boot core saw it at 96 ms,
//! and its numbering loop (31 stores) ended at 160 ms.
//!
//! CPU numbers are dense, so once an AP has failed, cpu n is no longer the
//! n-th core of the MADT. Each AP therefore reads its own APIC id from its
//! LAPIC and records it in its per-CPU entry (before it sets `online`); IPIs
//! go to that id. The boot core checks it against the id of the slot.
//!
//! `skip` (the `skipap` boot parameter) names one MADT position that gets no
//! INIT-SIPI-SIPI in time, so the boot core takes the same path as for an AP
//! that never answers: the full wait, then the report. Tests use it to check
//! that a machine with a dead core still schedules and IPIs correctly. That
//! core gets its INIT-SIPI-SIPI after all, once the boot core has given up
//! and unmapped the trampoline, as a core stalled past the timeout would
//! take them late: it must halt at the trampoline's first instructions,
//! which the boot core has replaced (`LATE_AP_HALT`). Before that, a late AP
//! under an overloaded host turned paging on, jumped into the unmapped page
//! and triple-faulted the machine.
use super::{apic, gdt, idt, percpu, time};
use crate::mem;
use alloc::vec::Vec;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Physical address of the trampoline (page 8: SIPI vector 0x08).
pub const TRAMPOLINE: u64 = 0x8000;
/// What a late AP runs at the start of the trampoline (real mode):
/// `cli; hlt; jmp short` back to the `hlt`.
const LATE_AP_HALT: [u8; 4] = [0xfa, 0xf4, 0xeb, 0xfd];
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
    .global ap_param_table
    .global ap_param_count
    .global ap_param_entry
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
    # Our APIC id, in r8d: CPUID leaf 0xB (x2APIC id) if the CPU has it,
    # else the initial APIC id of leaf 1.
    xorl %eax, %eax
    cpuid
    cmpl $0xb, %eax
    jb 2f
    movl $0xb, %eax
    xorl %ecx, %ecx
    cpuid
    testl %ebx, %ebx
    jz 2f
    movl %edx, %r8d
    jmp 3f
2:  movl $1, %eax
    cpuid
    shrl $24, %ebx
    movl %ebx, %r8d
    # Find our slot (24 bytes each: apic id at 0, stack top at 8).
3:  movq TBASE + (ap_param_table - ap_trampoline_start), %rsi
    movq TBASE + (ap_param_count - ap_trampoline_start), %rcx
    xorl %edi, %edi
4:  cmpq %rcx, %rdi
    jae 1f
    cmpl %r8d, (%rsi)
    je 5f
    addq $24, %rsi
    incq %rdi
    jmp 4b
5:  movq 8(%rsi), %rsp
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
ap_param_table: .quad 0
ap_param_count: .quad 0
ap_param_entry: .quad 0
ap_trampoline_end:
    .text
"#,
    options(att_syntax)
);

extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_end: u8;
    static ap_param_cr3: u8;
    static ap_param_table: u8;
    static ap_param_count: u8;
    static ap_param_entry: u8;
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
    let fallback = || CpuList { apic_ids: alloc::vec![apic::cpuid_apic_id()], lapic_phys: 0xfee0_0000 };
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
        apic_ids.push(apic::cpuid_apic_id());
    }
    CpuList { apic_ids, lapic_phys }
}

/// The Rust entry of an AP, called with its CPU index.
pub type ApMain = fn(cpu: usize) -> !;
static AP_MAIN: AtomicU64 = AtomicU64::new(0);

/// One AP being started: what the trampoline reads (`apic_id`, `stack`, at
/// the offsets its assembly uses) and the hand-shake with the boot core.
#[repr(C)]
pub struct ApSlot {
    /// Read by the trampoline at offset 0.
    apic_id: u32,
    /// `SENT` → `ARRIVED` (the AP) or → `CLOSED` (the boot core gave up);
    /// `ARRIVED` → `GO` (the boot core, with `cpu` set). The CASes on
    /// SENT decide, once, whether a late AP is in or out.
    state: AtomicU32,
    /// Read by the trampoline at offset 8: the top of the AP's boot stack.
    stack: u64,
    /// The dense CPU number, written before `state = GO` (release).
    cpu: AtomicU32,
}
const _: () = assert!(core::mem::size_of::<ApSlot>() == 24 && core::mem::offset_of!(ApSlot, stack) == 8);

const SENT: u32 = 0;
const ARRIVED: u32 = 1;
const CLOSED: u32 = 2;
const GO: u32 = 3;

/// The table of the bring-up in progress (leaked: a late AP may still read
/// it after the boot core moved on).
static SLOTS: AtomicU64 = AtomicU64::new(0);
static NSLOTS: AtomicU64 = AtomicU64::new(0);
/// One `gdt::CpuTables` per slot, built by the boot core (start_aps).
static AP_TABLES: AtomicU64 = AtomicU64::new(0);

fn slots() -> &'static [ApSlot] {
    let (p, n) = (SLOTS.load(Ordering::Acquire), NSLOTS.load(Ordering::Acquire));
    // SAFETY: SLOTS/NSLOTS describe a leaked, never-freed slice (start_aps
    // stores them before the first SIPI).
    unsafe { core::slice::from_raw_parts(p as *const ApSlot, n as usize) }
}

fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

extern "C" fn ap_entry(slot: u64) -> ! {
    let me = &slots()[slot as usize];
    // The part of our bring-up that needs no CPU number comes before we
    // report in: our GDT and TSS (the boot core built them), the IDT, SSE,
    // and our LAPIC (in x2APIC mode if the boot core chose it), so that the
    // boot core's BRINGUP_VECTOR IPI, which may follow our ARRIVED at once,
    // is accepted.
    // SAFETY: AP_TABLES holds a leaked slice with one entry per slot, stored
    // (release) before the SIPI that started us; entry `slot` is ours alone.
    unsafe { (*(AP_TABLES.load(Ordering::Acquire) as *const gdt::CpuTables).add(slot as usize)).load() };
    idt::init_this_cpu();
    super::enable_sse();
    apic::init_this_cpu();
    if me.state.compare_exchange(SENT, ARRIVED, Ordering::AcqRel, Ordering::Acquire).is_err() {
        // The boot core stopped waiting for us (CLOSED) and sent INIT;
        // counting us in now would break its numbering.
        halt_forever();
    }
    // Wait for our number halted, not spinning: under TCG each vCPU is a
    // host thread and `pause` does not give the host CPU up, so 31 spinning
    // APs on a 2-core host starved the boot core and the APs still in the
    // trampoline (see the module comment). Interrupts are off at each check
    // and `enable_and_hlt` is `sti; hlt`: an IPI that comes after the check
    // is taken by the `hlt` (the `sti` shadow), not lost.
    loop {
        x86_64::instructions::interrupts::disable();
        // Acquire: pairs with the boot core's release store of GO, after
        // it wrote `cpu`.
        match me.state.load(Ordering::Acquire) {
            GO => break,
            CLOSED => halt_forever(),
            _ => x86_64::instructions::interrupts::enable_and_hlt(),
        }
    }
    // SAFETY: AP_MAIN was stored (release) before the SIPI that started us,
    // and holds a valid `ApMain` function pointer.
    let f: ApMain = unsafe { core::mem::transmute::<u64, ApMain>(AP_MAIN.load(Ordering::Acquire)) };
    // Interrupts stay off: ap_main turns them on once we have per-CPU data.
    f(me.cpu.load(Ordering::Relaxed) as usize)
}

/// The wait between INIT and the first SIPI. The MP specification asks for
/// 10 ms; like Linux (`smp_quirk_init_udelay`), skip it on CPUs that do not
/// need it: Intel family 6 and AMD/Hygon family 0xf and later (QEMU's CPU
/// models among them).
fn init_udelay_us() -> u64 {
    let c = raw_cpuid::CpuId::new();
    let family = c.get_feature_info().map_or(0, |f| f.family_id());
    let modern = match c.get_vendor_info() {
        Some(v) if v.as_str() == "GenuineIntel" => family == 6,
        Some(v) if matches!(v.as_str(), "AuthenticAMD" | "HygonGenuine") => family >= 0xf,
        _ => false,
    };
    if modern { 0 } else { 10_000 }
}

fn sym(s: &u8) -> u64 {
    s as *const u8 as u64
}

/// Start every AP in `cpus` (index 0 is the boot core) but the one at list
/// position `skip`, which is treated as a core that does not answer; all at
/// once (see the module comment). CPU indices stay dense and in MADT order:
/// the n-th AP that answered is cpu n. Returns (cores online, the list
/// positions of the cores that did not come up). Cores past MAX_CPUS are
/// named in one line and are in neither.
pub fn start_aps(cpus: &CpuList, main: ApMain, skip: Option<usize>) -> (usize, Vec<usize>) {
    AP_MAIN.store(main as usize as u64, Ordering::Release);
    // SAFETY: the symbols are defined in the global_asm above; we only take
    // their addresses.
    let (start, end, p_cr3, p_table, p_count, p_entry) = unsafe {
        (
            sym(&ap_trampoline_start),
            sym(&ap_trampoline_end),
            sym(&ap_param_cr3),
            sym(&ap_param_table),
            sym(&ap_param_count),
            sym(&ap_param_entry),
        )
    };
    let mut failed = Vec::new();
    // Which MADT positions get a slot.
    let mut started = Vec::new();
    let mut beyond = 0..0;
    for (n, &apic_id) in cpus.apic_ids.iter().enumerate().skip(1) {
        if started.len() + 1 >= percpu::MAX_CPUS {
            // Said once below; they come after every core we use, so the
            // CPU numbers of the others are not disturbed.
            beyond = if beyond.is_empty() { n..n + 1 } else { beyond.start..n + 1 };
        } else if apic_id > 0xfe && !apic::is_x2apic() {
            crate::println!("smp: core #{n} (apic id {apic_id}) ignored: its id does not fit xAPIC's 8 bits (needs x2APIC)");
            failed.push(n);
        } else {
            started.push(n);
        }
    }
    if !beyond.is_empty() {
        crate::println!(
            "smp: {} more cores (MADT #{}..=#{}) not used: the kernel drives at most MAX_CPUS = {}",
            beyond.len(),
            beyond.start,
            beyond.end - 1,
            percpu::MAX_CPUS
        );
    }
    if started.is_empty() {
        return (1, failed);
    }
    let table: &'static [ApSlot] = Vec::leak(
        started
            .iter()
            .map(|&n| ApSlot {
                apic_id: cpus.apic_ids[n],
                state: AtomicU32::new(SENT),
                // With a guard page below it (mem::kstack).
                stack: mem::kstack::alloc(AP_STACK_SIZE),
                cpu: AtomicU32::new(0),
            })
            .collect(),
    );
    // Each AP's GDT and TSS, built here: an AP that built its own took the
    // heap's and the stack allocator's locks while 31 others did the same,
    // and a vCPU the host descheduled while it held one kept the others
    // spinning (one AP's GDT took 55 ms of a 220 ms bring-up at 32 cores).
    let tables: &'static [gdt::CpuTables] = Vec::leak(started.iter().map(|_| gdt::build()).collect());
    AP_TABLES.store(tables.as_ptr() as u64, Ordering::Release);
    SLOTS.store(table.as_ptr() as u64, Ordering::Release);
    NSLOTS.store(table.len() as u64, Ordering::Release);

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
    // SAFETY: the parameter block lies inside the trampoline copy, and no AP
    // runs the trampoline yet (none has had a SIPI).
    unsafe {
        param(p_cr3).write_volatile(cr3);
        param(p_table).write_volatile(table.as_ptr() as u64);
        param(p_count).write_volatile(table.len() as u64);
        param(p_entry).write_volatile(ap_entry as *const () as u64);
    }
    core::sync::atomic::fence(Ordering::SeqCst);

    let skipped = |i: usize| skip == Some(started[i]);
    for (i, &n) in started.iter().enumerate() {
        if skipped(i) {
            crate::println!("smp: core #{n} (apic id {}) not started (skipap={n}): treated as a core that does not answer, and started only after the timeout", table[i].apic_id);
        }
    }
    let arrived = |i: usize| table[i].state.load(Ordering::Acquire) != SENT;
    let each = |f: &dyn Fn(u32)| {
        for (i, slot) in table.iter().enumerate() {
            if !skipped(i) && !arrived(i) {
                f(slot.apic_id);
            }
        }
    };
    each(&|id| apic::send_init(id));
    time::udelay(init_udelay_us());
    each(&|id| apic::send_sipi(id, (TRAMPOLINE >> 12) as u8));
    time::udelay(200);
    each(&|id| apic::send_sipi(id, (TRAMPOLINE >> 12) as u8));

    let timeout = AP_TIMEOUT_US * time::tsc_per_ms() / 1000;
    let deadline = time::rdtsc() + timeout;
    while !(0..table.len()).all(arrived) && time::rdtsc() < deadline {
        core::hint::spin_loop();
    }
    // From here on an AP that starts the trampoline is late: make its first
    // instructions `cli; hlt; jmp .-3`, so that it halts in real mode before
    // it turns paging on. The INIT sent below to a late AP should stop it,
    // but a core can still take a SIPI after that INIT (QEMU keeps INIT and
    // SIPI as two pending bits and, after a long host stall, handles both
    // at once, the INIT first); it would then turn on paging and jump into
    // the trampoline page we unmap below, and fault with no IDT: a triple
    // fault that resets the whole machine. An AP already past these bytes
    // is in the rest of the trampoline, which stays intact, and meets its
    // CLOSED slot in ap_entry.
    // SAFETY: `dst` is our copy of the trampoline (see above); 4 bytes fit.
    unsafe { (dst as *mut [u8; 4]).write_volatile(LATE_AP_HALT) };
    core::sync::atomic::fence(Ordering::SeqCst);
    // Number the arrived APs in MADT order; shut out the rest.
    let mut online = 1;
    let mut numbered = Vec::new();
    for (i, slot) in table.iter().enumerate() {
        let n = started[i];
        if slot.state.compare_exchange(SENT, CLOSED, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            // It never answered: make sure it cannot wake later on our table.
            apic::send_init(slot.apic_id);
            crate::println!("smp: core #{n} (apic id {}) did not come up within {} ms", slot.apic_id, AP_TIMEOUT_US / 1000);
            failed.push(n);
            continue;
        }
        slot.cpu.store(online as u32, Ordering::Relaxed);
        // Release: the AP reads `cpu` after its acquire load of GO.
        slot.state.store(GO, Ordering::Release);
        // It waits halted (ap_entry); its LAPIC was on before its ARRIVED.
        apic::send_ipi(slot.apic_id, apic::BRINGUP_VECTOR);
        numbered.push((online, i));
        online += 1;
    }
    // Every numbered AP finishes its bring-up (its part cannot fail short of
    // a fault, which prints its own report); bounded all the same.
    let deadline = time::rdtsc() + timeout;
    for &(cpu, i) in &numbered {
        while !percpu::CPUS[cpu].online.load(Ordering::Acquire) {
            if time::rdtsc() > deadline {
                panic!(
                    "smp: cpu{cpu} (core #{}, apic id {}) answered but did not finish its bring-up within {} ms",
                    started[i],
                    table[i].apic_id,
                    AP_TIMEOUT_US / 1000
                );
            }
            core::hint::spin_loop();
        }
        // The AP stored its own APIC id before `online` (release; our load
        // of `online` above was acquire).
        let own = percpu::CPUS[cpu].apic_id.load(Ordering::Relaxed);
        if own != table[i].apic_id {
            crate::println!(
                "smp: cpu{cpu} reports apic id {own}, but the MADT entry #{} it was started as says {}",
                started[i],
                table[i].apic_id
            );
        }
    }
    failed.sort_unstable();
    // No AP runs the trampoline any more (each came up or was sent INIT).
    mem::unmap_low(TRAMPOLINE);
    if let Some(i) = (0..table.len()).find(|&i| skipped(i)) {
        // skipap: the skipped core gets its start-up IPIs only now, after
        // the boot core gave up on it, as a core too slow to answer would
        // take them. It must halt in the trampoline's first bytes.
        let id = table[i].apic_id;
        apic::send_init(id);
        time::udelay(init_udelay_us());
        apic::send_sipi(id, (TRAMPOLINE >> 12) as u8);
        time::udelay(200);
        apic::send_sipi(id, (TRAMPOLINE >> 12) as u8);
    }
    (online, failed)
}
