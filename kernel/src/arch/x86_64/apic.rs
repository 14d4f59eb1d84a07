//! The local APIC, in x2APIC mode (MSRs) when the CPU offers it, else in
//! xAPIC mode (MMIO).
//!
//! - **xAPIC**: the classic 4 KiB register window at the physical address the
//!   MADT gives (0xfee00000), mapped uncached by `mem::map_mmio`. APIC ids
//!   are 8 bits, so at most 255 cores can be addressed. QEMU 7.2's TCG
//!   offers only this.
//! - **x2APIC**: every register is an MSR (`0x800 + offset / 16`), APIC ids
//!   are 32 bits, and the interrupt command register is one 64-bit MSR
//!   (destination in the high half), so an IPI is one `wrmsr` with no
//!   "delivery pending" bit to poll. QEMU 10 (`-cpu max`), KVM and real
//!   machines offer it, and a machine with more than 255 cores needs it.
//!
//! The timer runs periodically for the sysmon tick and one-shot to wake an
//! idle core. Where the CPU has the TSC-deadline mode (KVM, real CPUs; not
//! TCG) a one-shot is an absolute TSC value written to `IA32_TSC_DEADLINE`;
//! elsewhere the LAPIC counts down.
//!
//! The boot core picks the mode once ([`init_mode`], from CPUID leaf 1's
//! x2APIC bit); every core switches its own LAPIC into that mode in
//! [`init_this_cpu`] (an AP wakes up in xAPIC mode). Everything else here
//! reads and writes registers through [`read`]/[`write`], which pick the
//! access for the mode.
//!
//! Why not the `x2apic` crate: its `LocalApic` is a `&mut self` object that
//! enables and programs the timer itself; the kernel sends IPIs from any
//! core and from interrupt handlers (`wakep`, preemption, TLB shootdown), so
//! it would need one such object per core behind interrupt-off access, and
//! INIT/SIPI, the one-shot timer and the mode-independent id still through
//! our own code. The MSR half is a dozen lines; CPUID is read with the
//! `raw-cpuid` crate.
//! Vectors used by the kernel are fixed:
//! - [`TIMER_VECTOR`]: the LAPIC timer (sysmon tick, or a one-shot wake-up of an idle core);
//! - [`WAKE_VECTOR`]: "wake up and look for work" (`wakep`/`startm`), and the IPI tests;
//! - [`PREEMPT_VECTOR`]: `preemptM`, Go's SIGURG;
//! - [`TLB_VECTOR`]: flush this core's TLB (a shootdown, see mem::tlb);
//! - [`BRINGUP_VECTOR`]: "your CPU number is ready", to an AP halted in its bring-up (smp.rs);
//! - [`SPURIOUS_VECTOR`].
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use x86_64::registers::model_specific::Msr;

pub const TIMER_VECTOR: u8 = 0x30;
pub const WAKE_VECTOR: u8 = 0x31;
pub const PREEMPT_VECTOR: u8 = 0x32;
pub const TLB_VECTOR: u8 = 0x33;
pub const BRINGUP_VECTOR: u8 = 0x34;
pub const SPURIOUS_VECTOR: u8 = 0xff;

const REG_ID: usize = 0x20;
const REG_TPR: usize = 0x80;
const REG_EOI: usize = 0xb0;
const REG_SVR: usize = 0xf0;
const REG_ESR: usize = 0x280;
const REG_ICR_LOW: usize = 0x300;
const REG_ICR_HIGH: usize = 0x310;
const REG_LVT_TIMER: usize = 0x320;
const REG_LVT_LINT0: usize = 0x350;
const REG_LVT_LINT1: usize = 0x360;
const REG_LVT_ERROR: usize = 0x370;
const REG_TIMER_INIT: usize = 0x380;
const REG_TIMER_CUR: usize = 0x390;
const REG_TIMER_DIV: usize = 0x3e0;

const LVT_MASKED: u32 = 1 << 16;
const LVT_PERIODIC: u32 = 1 << 17;
/// LVT timer mode 0b10: fire when the TSC reaches `IA32_TSC_DEADLINE`.
const LVT_TSC_DEADLINE: u32 = 2 << 17;
const IA32_TSC_DEADLINE: u32 = 0x6e0;
const ICR_PENDING: u32 = 1 << 12;
/// Divide configuration 0b0011 = divide by 16.
const TIMER_DIV_16: u32 = 0b0011;

/// Virtual address of the xAPIC register window (set once by `set_base`).
static BASE: AtomicU64 = AtomicU64::new(0);
/// The LAPICs run in x2APIC mode (set once by the boot core, before any AP
/// starts; read by every core).
static X2APIC: AtomicBool = AtomicBool::new(false);

/// `IA32_APIC_BASE`: bit 11 enables the LAPIC, bit 10 (EXTD) selects x2APIC.
const IA32_APIC_BASE: u32 = 0x1b;
const APIC_BASE_EN: u64 = 1 << 11;
const APIC_BASE_EXTD: u64 = 1 << 10;
/// The first x2APIC register MSR; register `offset` is `X2APIC_MSR + offset / 16`.
const X2APIC_MSR: u32 = 0x800;

pub fn set_base(virt: u64) {
    BASE.store(virt, Ordering::Release);
}

/// Does this CPU offer x2APIC (CPUID leaf 1, ECX bit 21)?
pub fn cpu_has_x2apic() -> bool {
    raw_cpuid::CpuId::new().get_feature_info().is_some_and(|f| f.has_x2apic())
}

/// Does this CPU's LAPIC timer have the TSC-deadline mode (CPUID leaf 1,
/// ECX bit 24)? KVM and real CPUs do; QEMU's TCG does not.
pub fn cpu_has_tsc_deadline() -> bool {
    raw_cpuid::CpuId::new().get_feature_info().is_some_and(|f| f.has_tsc_deadline())
}

/// One-shot timers use the TSC-deadline mode (set once by the boot core).
static TSC_DEADLINE: AtomicBool = AtomicBool::new(false);

/// Choose the mode for every core: x2APIC if `want` and the CPU has it;
/// TSC-deadline one-shots if the CPU has them. Called once by the boot core
/// before its own `init_this_cpu`.
pub fn init_mode(want: bool) {
    X2APIC.store(want && cpu_has_x2apic(), Ordering::Relaxed);
    TSC_DEADLINE.store(cpu_has_tsc_deadline(), Ordering::Relaxed);
}

/// How one-shot wake-ups are timed, for the boot banner.
pub fn oneshot_name() -> &'static str {
    if TSC_DEADLINE.load(Ordering::Relaxed) { "TSC-deadline" } else { "LAPIC count-down" }
}

/// Are the LAPICs in x2APIC mode?
#[inline]
pub fn is_x2apic() -> bool {
    X2APIC.load(Ordering::Relaxed)
}

/// The mode, for the boot banner.
pub fn mode_name() -> &'static str {
    if is_x2apic() { "x2APIC (MSRs, 32-bit APIC ids)" } else { "xAPIC (MMIO, 8-bit APIC ids)" }
}

/// This core's APIC id as CPUID reports it, without touching the LAPIC: the
/// 32-bit x2APIC id of leaf 0xB when the CPU has that leaf, else the 8-bit
/// initial id of leaf 1.
pub fn cpuid_apic_id() -> u32 {
    let c = raw_cpuid::CpuId::new();
    if let Some(id) = c.get_extended_topology_info().and_then(|mut t| t.next()).map(|l| l.x2apic_id()) {
        return id;
    }
    c.get_feature_info().map_or(0, |f| f.initial_local_apic_id() as u32)
}

#[inline]
fn read(reg: usize) -> u32 {
    if is_x2apic() {
        // SAFETY: in x2APIC mode (this core's EXTD bit is set in
        // `init_this_cpu` before any register access) the register MSRs
        // exist; reading one has no side effect.
        return unsafe { Msr::new(X2APIC_MSR + (reg >> 4) as u32).read() } as u32;
    }
    let p = (BASE.load(Ordering::Relaxed) as usize + reg) as *const u32;
    // SAFETY: BASE maps the 4 KiB LAPIC window uncached (mem::map_mmio) and
    // `reg` is one of the architectural register offsets above.
    unsafe { core::ptr::read_volatile(p) }
}

#[inline]
fn write(reg: usize, v: u32) {
    if is_x2apic() {
        // SAFETY: as in `read`; the registers written here (TPR, EOI, SVR,
        // ESR with 0, the LVTs and the timer) are writable in x2APIC mode.
        unsafe { Msr::new(X2APIC_MSR + (reg >> 4) as u32).write(v as u64) };
        return;
    }
    let p = (BASE.load(Ordering::Relaxed) as usize + reg) as *mut u32;
    // SAFETY: as in `read`.
    unsafe { core::ptr::write_volatile(p, v) }
}

/// Put this core's LAPIC into the chosen mode (x2APIC: set EN and EXTD in
/// `IA32_APIC_BASE`; xAPIC: leave it as firmware and INIT left it). Must
/// run before any other access on this core; `init_this_cpu` calls it.
pub fn enable_mode_this_cpu() {
    if !is_x2apic() {
        return;
    }
    let mut msr = Msr::new(IA32_APIC_BASE);
    // SAFETY: IA32_APIC_BASE exists on every x86_64 CPU; setting EXTD with
    // EN (xAPIC → x2APIC) is the architected transition, and the CPU has
    // x2APIC (checked in init_mode).
    unsafe {
        let v = msr.read();
        if v & APIC_BASE_EXTD == 0 {
            msr.write(v | APIC_BASE_EN | APIC_BASE_EXTD);
        }
    }
}

/// Software-enable this core's LAPIC, mask the legacy LINT pins and the
/// timer, and accept every priority.
pub fn init_this_cpu() {
    enable_mode_this_cpu();
    write(REG_TPR, 0);
    write(REG_LVT_LINT0, LVT_MASKED);
    write(REG_LVT_LINT1, LVT_MASKED);
    write(REG_LVT_ERROR, LVT_MASKED);
    write(REG_LVT_TIMER, LVT_MASKED | TIMER_VECTOR as u32);
    write(REG_SVR, 0x100 | SPURIOUS_VECTOR as u32);
    write(REG_ESR, 0);
    eoi();
}

/// This core's APIC id, from its LAPIC (x2APIC: all 32 bits of the ID
/// register; xAPIC: its top 8 bits).
pub fn id() -> u32 {
    if is_x2apic() { read(REG_ID) } else { read(REG_ID) >> 24 }
}

/// Signal end of interrupt.
#[inline]
pub fn eoi() {
    write(REG_EOI, 0);
}

fn wait_icr_idle() {
    for _ in 0..1_000_000 {
        if read(REG_ICR_LOW) & ICR_PENDING == 0 {
            return;
        }
        core::hint::spin_loop();
    }
}

fn send_icr(apic_id: u32, low: u32) {
    if is_x2apic() {
        // One 64-bit write: destination in the high half. x2APIC has no
        // delivery-status bit to wait on.
        // SAFETY: the ICR MSR (0x830) exists in x2APIC mode; writing it
        // sends the IPI described, which is what the callers ask for.
        unsafe { Msr::new(X2APIC_MSR + (REG_ICR_LOW >> 4) as u32).write(((apic_id as u64) << 32) | low as u64) };
        return;
    }
    // The two ICR writes must not be split by an interrupt handler that sends
    // an IPI of its own, so the pair is done with interrupts off. The wait for
    // the previous IPI's delivery comes before the writes (as Linux's
    // `__default_send_IPI_dest_field` does), not after them too: every send
    // waits for the one before it, and a second wait was one more LAPIC read,
    // about 80 ns under TCG (bench/README.md), on every wake-up IPI.
    x86_64::instructions::interrupts::without_interrupts(|| {
        wait_icr_idle();
        write(REG_ICR_HIGH, apic_id << 24);
        write(REG_ICR_LOW, low);
    });
}

/// A fixed-vector IPI to the core with this APIC id.
pub fn send_ipi(apic_id: u32, vector: u8) {
    send_icr(apic_id, vector as u32);
}

/// INIT (level assert), the first step of INIT-SIPI-SIPI.
pub fn send_init(apic_id: u32) {
    send_icr(apic_id, 0x0000_4500);
}

/// Start-up IPI: the AP begins in real mode at `page * 4096`.
pub fn send_sipi(apic_id: u32, page: u8) {
    send_icr(apic_id, 0x0000_4600 | page as u32);
}

/// Measure this core's LAPIC timer rate (ticks of the /16 clock per ms)
/// against the TSC (itself calibrated against the PIT), store it in the
/// per-CPU data and return it.
pub fn calibrate_timer() -> u64 {
    write(REG_TIMER_DIV, TIMER_DIV_16);
    write(REG_LVT_TIMER, LVT_MASKED | TIMER_VECTOR as u32);
    write(REG_TIMER_INIT, u32::MAX);
    // 5 ms against the TSC, each end read within 10 us: better than 0.5%.
    let ticks = super::time::measure_against_tsc(5, || (u32::MAX - read(REG_TIMER_CUR)) as u64);
    write(REG_TIMER_INIT, 0);
    let per_ms = (ticks / 5).max(1);
    super::percpu::this().lapic_ticks_per_ms.store(per_ms, Ordering::Relaxed);
    per_ms
}

/// Take a timer rate measured on another core (every LAPIC of a machine
/// counts the same clock, so the APs use the boot core's).
pub fn set_timer_rate(per_ms: u64) {
    super::percpu::this().lapic_ticks_per_ms.store(per_ms, Ordering::Relaxed);
}

fn per_ms() -> u64 {
    super::percpu::this().lapic_ticks_per_ms.load(Ordering::Relaxed)
}

/// Run the timer periodically at `hz` interrupts per second.
pub fn timer_periodic(hz: u32) {
    let count = (per_ms() * 1000 / hz as u64).clamp(1, u32::MAX as u64) as u32;
    write(REG_TIMER_DIV, TIMER_DIV_16);
    write(REG_LVT_TIMER, LVT_PERIODIC | TIMER_VECTOR as u32);
    write(REG_TIMER_INIT, count);
}

/// Arm the timer once, `ns` nanoseconds from now (replaces any periodic mode).
///
/// With TSC-deadline mode the wake-up is an absolute TSC value, with no
/// 32-bit count to clamp and no divider; else the LAPIC counts down from
/// `ns` worth of its own ticks.
pub fn timer_oneshot(ns: u64) {
    if TSC_DEADLINE.load(Ordering::Relaxed) {
        let delta = (ns as u128 * super::time::tsc_per_ms() as u128 / 1_000_000).max(1) as u64;
        write(REG_LVT_TIMER, LVT_TSC_DEADLINE | TIMER_VECTOR as u32);
        // The SDM asks for the LVT write (MMIO in xAPIC mode) to be
        // ordered before the WRMSR that arms the deadline (Linux: mfence).
        core::sync::atomic::fence(Ordering::SeqCst);
        // SAFETY: IA32_TSC_DEADLINE exists (CPUID said so in init_mode);
        // writing it arms this core's one-shot timer, which is the intent.
        unsafe { Msr::new(IA32_TSC_DEADLINE).write(super::time::rdtsc().saturating_add(delta)) };
        return;
    }
    let count = ((per_ms() as u128 * ns as u128) / 1_000_000).clamp(1, u32::MAX as u128) as u32;
    write(REG_TIMER_DIV, TIMER_DIV_16);
    write(REG_LVT_TIMER, TIMER_VECTOR as u32);
    write(REG_TIMER_INIT, count);
}

/// Stop the timer.
pub fn timer_stop() {
    write(REG_LVT_TIMER, LVT_MASKED | TIMER_VECTOR as u32);
    if TSC_DEADLINE.load(Ordering::Relaxed) {
        // SAFETY: as in timer_oneshot; 0 disarms the deadline.
        unsafe { Msr::new(IA32_TSC_DEADLINE).write(0) };
    }
    write(REG_TIMER_INIT, 0);
}
