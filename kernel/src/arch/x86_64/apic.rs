//! The local APIC in xAPIC mode, over MMIO.
//!
//! QEMU 7.2 under TCG offers neither x2APIC nor the TSC-deadline timer, so
//! this is the classic register window at the physical address the MADT
//! gives (0xfee00000), mapped uncached by `mem::map_mmio`.
//!
//! Vectors used by the kernel are fixed:
//! - [`TIMER_VECTOR`]: the LAPIC timer (sysmon tick, or a one-shot wake-up of an idle core);
//! - [`WAKE_VECTOR`]: "wake up and look for work" (`wakep`/`startm`), and the IPI tests;
//! - [`PREEMPT_VECTOR`]: `preemptM`, Go's SIGURG;
//! - [`TLB_VECTOR`]: flush this core's TLB (a shootdown, see mem::tlb);
//! - [`SPURIOUS_VECTOR`].
use core::sync::atomic::{AtomicU64, Ordering};

pub const TIMER_VECTOR: u8 = 0x30;
pub const WAKE_VECTOR: u8 = 0x31;
pub const PREEMPT_VECTOR: u8 = 0x32;
pub const TLB_VECTOR: u8 = 0x33;
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
const ICR_PENDING: u32 = 1 << 12;
/// Divide configuration 0b0011 = divide by 16.
const TIMER_DIV_16: u32 = 0b0011;

/// Virtual address of the register window (set once by `set_base`).
static BASE: AtomicU64 = AtomicU64::new(0);

pub fn set_base(virt: u64) {
    BASE.store(virt, Ordering::Release);
}

#[inline]
fn read(reg: usize) -> u32 {
    let p = (BASE.load(Ordering::Relaxed) as usize + reg) as *const u32;
    // SAFETY: BASE maps the 4 KiB LAPIC window uncached (mem::map_mmio) and
    // `reg` is one of the architectural register offsets above.
    unsafe { core::ptr::read_volatile(p) }
}

#[inline]
fn write(reg: usize, v: u32) {
    let p = (BASE.load(Ordering::Relaxed) as usize + reg) as *mut u32;
    // SAFETY: as in `read`.
    unsafe { core::ptr::write_volatile(p, v) }
}

/// Software-enable this core's LAPIC, mask the legacy LINT pins and the
/// timer, and accept every priority.
pub fn init_this_cpu() {
    write(REG_TPR, 0);
    write(REG_LVT_LINT0, LVT_MASKED);
    write(REG_LVT_LINT1, LVT_MASKED);
    write(REG_LVT_ERROR, LVT_MASKED);
    write(REG_LVT_TIMER, LVT_MASKED | TIMER_VECTOR as u32);
    write(REG_SVR, 0x100 | SPURIOUS_VECTOR as u32);
    write(REG_ESR, 0);
    eoi();
}

pub fn id() -> u32 {
    read(REG_ID) >> 24
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
    // The two ICR writes must not be split by an interrupt handler that sends
    // an IPI of its own, so the pair is done with interrupts off.
    x86_64::instructions::interrupts::without_interrupts(|| {
        wait_icr_idle();
        write(REG_ICR_HIGH, apic_id << 24);
        write(REG_ICR_LOW, low);
        wait_icr_idle();
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
    let ticks = super::time::measure_against_tsc(10, || (u32::MAX - read(REG_TIMER_CUR)) as u64);
    write(REG_TIMER_INIT, 0);
    let per_ms = (ticks / 10).max(1);
    super::percpu::this().lapic_ticks_per_ms.store(per_ms, Ordering::Relaxed);
    per_ms
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
pub fn timer_oneshot(ns: u64) {
    let count = ((per_ms() as u128 * ns as u128) / 1_000_000).clamp(1, u32::MAX as u128) as u32;
    write(REG_TIMER_DIV, TIMER_DIV_16);
    write(REG_LVT_TIMER, TIMER_VECTOR as u32);
    write(REG_TIMER_INIT, count);
}

/// Stop the timer.
pub fn timer_stop() {
    write(REG_LVT_TIMER, LVT_MASKED | TIMER_VECTOR as u32);
    write(REG_TIMER_INIT, 0);
}
