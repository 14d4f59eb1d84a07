//! TLB shootdown: making sure no core still translates through a mapping
//! that was removed, before the frames behind it are used again.
//!
//! ## The protocol
//!
//! Every core caches translations (the TLB) and upper-level table entries
//! (the paging-structure caches). Clearing a page-table entry changes only
//! memory; a core that cached the old entry keeps using it until it flushes.
//! So a frame whose mapping was removed may go back to the allocator only
//! once every core that may have cached it has flushed since the removal.
//! Which cores may have cached a goroutine's stack page? Any core that ran
//! the goroutine, and, for a level-1 table we free, any core that walked
//! anywhere in the same 2 MiB: so we ask every online core.
//!
//! We never *wait* for the other cores. A core may be running with
//! interrupts off for a while (the scheduler's fast path, a spin lock, the
//! stop-the-world wait), or be dead after a fatal error; an initiator that
//! waited for it, perhaps while it waits for the initiator, would deadlock.
//! Instead the freed frames (and the goroutines whose stacks they were) wait
//! in limbo, tagged with a generation, and are released by whoever looks
//! next once every target has acknowledged that generation:
//!
//! ```text
//!   initiator (any core, on g0)              target core c (IPI handler, interrupts off)
//!   1. clear the PTEs (under MAPPER)
//!   2. g = GEN.fetch_add(1) + 1   ───────┐
//!   3. flush its own TLB                 │   a. r = GEN.load()      (>= g if the IPI below
//!   4. send TLB_VECTOR to every other    │                           caused this handler run)
//!      online core c; mask |= c  ────────┴─> b. flush the whole TLB (reload CR3)
//!   5. frames go to limbo with (g, mask)     c. FLUSHED[c].fetch_max(r)
//!   ...later, anyone: done when FLUSHED[c] >= g for every c in mask
//! ```
//!
//! Why it is enough: `FLUSHED[c] >= g` means core c read a `GEN` value of at
//! least `g`, i.e. read it after step 2, and then flushed. Step 1 came before
//! step 2 (a locked RMW on x86: nothing moves across it), so that flush came
//! after the entries were cleared, and whatever c walks afterwards sees them
//! cleared. A flush for a later generation covers every earlier one, so
//! `fetch_max` is all the bookkeeping a core needs, and two IPIs that merge
//! in the local APIC (one interrupt for both) are still both answered: the
//! handler reads `GEN` after it was entered, so after both increments.
//!
//! A halted core has interrupts on (`sti; hlt`), takes the IPI, flushes and
//! halts again. A core with interrupts off answers when it turns them on;
//! meanwhile its frames just stay in limbo. Nothing ever waits, so this
//! cannot deadlock; the worst case is memory that comes back later.
//!
//! The atomics and their partners:
//! - `GEN`: incremented by the initiator after clearing the entries (step 2),
//!   read by every target before it flushes (step a).
//! - `FLUSHED[c]`: written by core c after its flush (step c, release), read
//!   by [`Shootdown::done`] (acquire) before frames are reused.
use crate::arch::x86_64::{apic, percpu};
use core::sync::atomic::{AtomicU64, Ordering};
use gmp_core::pmask::Mask;

/// Shootdowns started so far. Partner: the load in [`on_ipi`].
static GEN: AtomicU64 = AtomicU64::new(0);

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);
/// Per core: the newest `GEN` value read before its latest full flush.
/// Partner: the acquire load in [`Shootdown::done`].
static FLUSHED: [AtomicU64; percpu::MAX_CPUS] = [ZERO; percpu::MAX_CPUS];
/// IPIs sent and answered (statistics).
static IPIS_SENT: AtomicU64 = AtomicU64::new(0);
static IPIS_ANSWERED: AtomicU64 = AtomicU64::new(0);

/// One shootdown in flight: complete when every core of `mask` has
/// flushed for generation `gen` or later.
#[derive(Clone, Copy, Debug)]
pub struct Shootdown {
    gen: u64,
    mask: Mask,
}

/// Start a shootdown for entries the caller has just cleared: flush this
/// core now, and ask every other online core to flush. Never waits.
pub fn start() -> Shootdown {
    // Interrupts off: the caller must not move to another core between
    // flushing "this" core and leaving it out of the mask.
    x86_64::instructions::interrupts::without_interrupts(start_here)
}

fn start_here() -> Shootdown {
    let gen = GEN.fetch_add(1, Ordering::SeqCst) + 1;
    let me = percpu::cpu_id();
    x86_64::instructions::tlb::flush_all();
    FLUSHED[me].fetch_max(gen, Ordering::Release);
    let mut mask = Mask::new();
    for c in 0..percpu::in_use() {
        if c == me || !percpu::CPUS[c].online.load(Ordering::Acquire) {
            continue;
        }
        mask.set(c);
        apic::send_ipi(percpu::CPUS[c].apic_id.load(Ordering::Relaxed), apic::TLB_VECTOR);
        IPIS_SENT.fetch_add(1, Ordering::Relaxed);
    }
    Shootdown { gen, mask }
}

impl Shootdown {
    /// Has every target flushed since the entries were cleared?
    pub fn done(&self) -> bool {
        self.mask.iter().all(|c| FLUSHED[c].load(Ordering::Acquire) >= self.gen)
    }
}

/// The `TLB_VECTOR` handler's work (interrupts off, on the IRQ stack).
pub fn on_ipi() {
    let r = GEN.load(Ordering::SeqCst);
    x86_64::instructions::tlb::flush_all();
    FLUSHED[percpu::cpu_id()].fetch_max(r, Ordering::Release);
    IPIS_ANSWERED.fetch_add(1, Ordering::Relaxed);
}

/// (shootdowns started, IPIs sent, IPIs answered).
pub fn stats() -> (u64, u64, u64) {
    (GEN.load(Ordering::Relaxed), IPIS_SENT.load(Ordering::Relaxed), IPIS_ANSWERED.load(Ordering::Relaxed))
}
