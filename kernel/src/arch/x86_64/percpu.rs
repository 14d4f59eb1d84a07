//! Per-CPU data, reached through the GS base.
//!
//! Every core owns one [`PerCpu`] in the static array [`CPUS`]. During
//! bring-up each core writes the address of its own entry into the GS base
//! MSR, so `gs:[0]` is a pointer to "my" entry and `gs:[CURG_OFFSET]` is the
//! goroutine running on this core. A single `mov` from GS is atomic with
//! respect to interrupts, so `getg()` needs no interrupt masking even though
//! a goroutine may be preempted and resumed on another core between two calls.
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use x86_64::registers::model_specific::GsBase;
use x86_64::VirtAddr;

/// The most cores this kernel drives: the scheduler's fixed arrays (allp,
/// allm) and bitmaps (`gmp_core::pmask`) are sized by this. Above 255 cores
/// the APIC ids no longer fit xAPIC's 8 bits, so such a machine needs x2APIC
/// (see `apic`).
pub const MAX_CPUS: usize = gmp_core::order::MAX_PROCS as usize;
const _: () = assert!(MAX_CPUS <= gmp_core::pmask::WORDS * 64);

#[repr(C)]
pub struct PerCpu {
    /// `gs:[0]`: the address of this entry itself.
    self_ptr: AtomicPtr<PerCpu>,
    /// `gs:[8]`: the dense CPU index (0 = the boot core, m0).
    pub cpu_id: AtomicU32,
    /// The local APIC id (the IPI destination for this core).
    pub apic_id: AtomicU32,
    /// `gs:[16]`: the goroutine running on this core, or null while the core
    /// runs on its g0 (scheduler) stack. Written only by this core in
    /// `execute`/`mcall` (runtime::proc); read by this core through `getg()`
    /// and by fault handlers.
    pub curg: AtomicPtr<u8>,
    /// `gs:[24]`: this core's M (runtime::proc::M).
    pub m: AtomicPtr<u8>,
    /// `gs:[32]`: Go's `m.locks`: spin locks held plus `PreemptGuard`s
    /// alive on this core. Asynchronous preemption is refused while it is
    /// non-zero. Changed only by this core, with single `inc`/`dec`
    /// instructions on `gs:[32]` (see `locks_inc`), so that a goroutine
    /// preempted and moved between reading "its" core and updating the
    /// count cannot update another core's count.
    pub locks: AtomicU32,
    /// Set once this core finished bring-up. Store-release by the core itself
    /// in `ap_main`/`bsp`; load-acquire by the boot core waiting in smp.
    pub online: AtomicBool,
    /// Timer interrupts taken by this core (incremented in the tick handler).
    pub ticks: AtomicU64,
    /// TSC at the first and the latest tick (for the timer-rate report).
    pub first_tick_tsc: AtomicU64,
    pub last_tick_tsc: AtomicU64,
    /// LAPIC timer ticks (after the /16 divider) per millisecond, measured
    /// against the PIT on this core at bring-up.
    pub lapic_ticks_per_ms: AtomicU64,
    /// Nesting depth of interrupt handlers on this core.
    pub irq_depth: AtomicU32,
    /// Wake-up IPIs received (statistics).
    pub ipis: AtomicU64,
    /// An idle core's wake-up deadline (ns), or 0: the earliest timer of
    /// the P it released. Programmed one-shot before `hlt`.
    pub wake_deadline: AtomicU64,
    /// When this core's one-shot timer was last armed to fire (ns), or 0:
    /// set before `hlt`, read after it to measure how late the wake-up was.
    pub oneshot_at: AtomicU64,
}

impl PerCpu {
    const fn new() -> Self {
        PerCpu {
            self_ptr: AtomicPtr::new(core::ptr::null_mut()),
            cpu_id: AtomicU32::new(0),
            apic_id: AtomicU32::new(0),
            curg: AtomicPtr::new(core::ptr::null_mut()),
            m: AtomicPtr::new(core::ptr::null_mut()),
            locks: AtomicU32::new(0),
            online: AtomicBool::new(false),
            ticks: AtomicU64::new(0),
            first_tick_tsc: AtomicU64::new(0),
            last_tick_tsc: AtomicU64::new(0),
            lapic_ticks_per_ms: AtomicU64::new(0),
            irq_depth: AtomicU32::new(0),
            ipis: AtomicU64::new(0),
            wake_deadline: AtomicU64::new(0),
            oneshot_at: AtomicU64::new(0),
        }
    }
}

// The asm in `getg`/`cpu_id` reads these fixed offsets.
const _: () = assert!(core::mem::offset_of!(PerCpu, self_ptr) == 0);
const _: () = assert!(core::mem::offset_of!(PerCpu, cpu_id) == 8);
pub const CURG_OFFSET: usize = 16;
const _: () = assert!(core::mem::offset_of!(PerCpu, curg) == CURG_OFFSET);
const _: () = assert!(core::mem::offset_of!(PerCpu, m) == 24);
pub const LOCKS_OFFSET: usize = 32;
const _: () = assert!(core::mem::offset_of!(PerCpu, locks) == LOCKS_OFFSET);

/// `m.locks += 1` on the executing core, as one instruction.
#[inline(always)]
pub fn locks_inc() {
    // SAFETY: gs:[32] is this core's `locks` (see `init`); a single
    // instruction cannot be split by an interrupt or a preemption.
    unsafe { core::arch::asm!("inc dword ptr gs:[32]", options(nostack)) };
}

/// `m.locks` of the executing core, read with one instruction. A goroutine
/// can be preempted and moved between reading `this()` and loading through
/// it, and would then read another core's count: always use this instead.
#[inline(always)]
pub fn locks_read() -> u32 {
    let v: u32;
    // SAFETY: as in `locks_inc`; a single load.
    unsafe { core::arch::asm!("mov {:e}, gs:[32]", out(reg) v, options(nostack, readonly, preserves_flags)) };
    v
}

/// `m.locks -= 1` on the executing core, as one instruction.
#[inline(always)]
pub fn locks_dec() {
    // SAFETY: as in `locks_inc`.
    unsafe { core::arch::asm!("dec dword ptr gs:[32]", options(nostack)) };
}

/// `m.locks -= 1` on the executing core; returns the new value (for an
/// unlock that looks for a preemption request once the count is 0).
#[inline(always)]
pub fn locks_dec_read() -> u32 {
    let v: u32;
    // SAFETY: as in `locks_inc`. The read-back is of the same core's count,
    // which only this core changes; an interrupt between the two
    // instructions leaves it balanced.
    unsafe { core::arch::asm!("dec dword ptr gs:[32]", "mov {:e}, gs:[32]", out(reg) v, options(nostack)) };
    v
}

#[allow(clippy::declare_interior_mutable_const)]
const NEW: PerCpu = PerCpu::new();
/// One entry per possible core, indexed by dense CPU id.
pub static CPUS: [PerCpu; MAX_CPUS] = [NEW; MAX_CPUS];

/// One past the highest CPU index that has an entry in use, so that loops
/// over "every core" look at the cores there are, not at all MAX_CPUS
/// entries (a TLB shootdown on a 4-core machine reads 4 entries, not 256).
static IN_USE: AtomicUsize = AtomicUsize::new(0);

/// The CPU indices `0..n` that have (or had) a per-CPU entry in use; check
/// `online` for each.
pub fn in_use() -> usize {
    IN_USE.load(Ordering::Acquire)
}

/// Point this core's GS base at `CPUS[cpu]`. Called once per core, first
/// thing at bring-up, before anything prints.
pub fn init(cpu: usize, apic_id: u32) {
    IN_USE.fetch_max(cpu + 1, Ordering::AcqRel);
    let me = &CPUS[cpu];
    me.self_ptr.store(me as *const _ as *mut _, Ordering::Relaxed);
    me.cpu_id.store(cpu as u32, Ordering::Relaxed);
    me.apic_id.store(apic_id, Ordering::Relaxed);
    GsBase::write(VirtAddr::from_ptr(me));
}

/// This core's entry.
#[inline(always)]
pub fn this() -> &'static PerCpu {
    let p: *const PerCpu;
    // SAFETY: gs:[0] holds the address of this core's entry of the static
    // `CPUS` array from `init` on (it runs before any other code on the core).
    unsafe { core::arch::asm!("mov {}, gs:[0]", out(reg) p, options(nostack, readonly, preserves_flags)) };
    // SAFETY: the pointer is to a `'static` element of CPUS (see above).
    unsafe { &*p }
}

/// The dense index of the core executing this instruction.
#[inline(always)]
pub fn cpu_id() -> usize {
    let id: u32;
    // SAFETY: see `this`; gs:[8] is `cpu_id`.
    unsafe { core::arch::asm!("mov {:e}, gs:[8]", out(reg) id, options(nostack, readonly, preserves_flags)) };
    id as usize
}

/// The goroutine running on this core (null on g0).
#[inline(always)]
pub fn curg_raw() -> *mut u8 {
    let p: *mut u8;
    // SAFETY: see `this`; gs:[16] is `curg`. One instruction, so it cannot be
    // torn by a preemption that moves the goroutine to another core.
    unsafe { core::arch::asm!("mov {}, gs:[16]", out(reg) p, options(nostack, readonly, preserves_flags)) };
    p
}
