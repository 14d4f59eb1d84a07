//! Goroutine stacks: a reserved range per stack, a guard page below it, and
//! pages mapped on first touch.
//!
//! ## The stack and guard layout
//!
//! Go starts every goroutine on a small stack and grows it by copying. We
//! cannot move a stack that Rust code holds pointers into, so instead each
//! goroutine gets a fixed *reservation* of virtual memory, and only the pages
//! it touches cost memory:
//!
//! ```text
//!  slot base                                             slot base + STACK_SLOT
//!  | guard page (never mapped) | ... unmapped until touched ... | mapped | top |
//!  ^                           ^ lo                                          ^ hi
//! ```
//!
//! - A push below a mapped page faults; the page-fault handler (on its own IST
//!   stack) sees the address is inside a stack's `[lo, hi)`, maps a zeroed
//!   frame, and returns: the instruction re-executes. This is Go's `newstack`
//!   growth, done by the MMU. A goroutine that used little stack costs one
//!   page (plus its `g`).
//! - A touch of the guard page is a genuine overflow: the handler reports
//!   `fatal error: stack overflow` naming the goroutine, and the kernel exits.
//! - `stackguard0` (the software check, see runtime::preempt) sits a little
//!   above `lo` so that a cooperative check catches an overflow before the
//!   guard page does, and doubles as the preemption flag.
//!
//! A dead G keeps its stack on its P's gFree list for the next G, top page
//! mapped; the stacks of the Gs beyond the list's bound, and of a dead G
//! that grew past its top page, are unmapped and their frames given back
//! after a TLB shootdown (`release` below, and tlb.rs).
//!
//! - Each slot has a *live* bit ([`set_live`]): set by `newproc1` before it
//!   writes the new goroutine's first frame, cleared by `goexit0` once the
//!   goroutine is dead and off its stack. A fault in a slot whose bit is
//!   clear is a dangling pointer into a dead goroutine's stack (a reference
//!   to a local that outlived its goroutine): the handler reports it instead
//!   of mapping a fresh page under the wild write.
//!
//! ## Slots 65 pages apart
//!
//! A slot is a guard page and 64 stack pages: 65 pages, not a power of two.
//! That is page colouring. A TLB picks where to keep a page's translation
//! from the low bits of its page number:
//! - QEMU's software TLB (TCG), which every guest load and store looks up,
//!   is direct-mapped: 256 entries per vCPU, entry = page number mod 256.
//!   QEMU resizes it only when the guest flushes the whole TLB, and this
//!   kernel, with one address space, rarely does.
//! - A hardware TLB is set-associative, the set picked by the low bits too
//!   (16 sets in a 64-entry, 4-way L1 dTLB).
//!
//! A goroutine's hot page is its top page, where its first frames are. With
//! slots 64 pages apart, every top page had the same page number mod 64, so
//! all the goroutines' top pages fought over 4 of the 256 entries (1 of 16
//! sets). Once more goroutines took turns than those 4 entries and QEMU's
//! 8-entry victim TLB could hold, each switch missed the TLB on the new
//! goroutine's stack, and QEMU walked the guest's page tables for it. With
//! 65 pages (an odd number), 256 slots in a row put their top pages in 256
//! different entries.
//!
//! `token_ring` (503 goroutines) measured this: 0.75x the time with 65-page
//! slots against 320-page ones (which put the top pages in the same 4
//! entries as 64), the same code at the same addresses, 7 interleaved
//! rounds (`bench/README.md`). The price is in `release`: a slot no longer
//! lies inside one 2 MiB block, so a stack may span two level-1 tables.
use super::tlb::Shootdown;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use x86_64::structures::paging::PhysFrame;
use x86_64::structures::paging::mapper::MapToError;
use x86_64::structures::paging::PageTableFlags as Flags;

pub const PAGE: u64 = 4096;
/// Virtual size of one stack slot, guard page included: 65 pages, not 64.
/// See "Slots 65 pages apart" above.
pub const STACK_SLOT: u64 = 65 * PAGE;
/// Usable bytes of a stack (256 KiB).
pub const STACK_SIZE: u64 = STACK_SLOT - PAGE;

static REGION: AtomicU64 = AtomicU64::new(0);
/// Slots the region can hold (a whole number of bitmap words).
const MAX_SLOTS: usize = (super::SLOT_SIZE / STACK_SLOT) as usize / 64 * 64;
/// One bit per slot: does a live goroutine own this stack? (252 KiB.)
static LIVE: [AtomicU64; MAX_SLOTS / 64] = [const { AtomicU64::new(0) }; MAX_SLOTS / 64];
/// One bit per slot: has the fault handler mapped a page of this stack
/// below its top page since the stack was last released? Set by
/// `handle_fault` (on the core running the goroutine), cleared by
/// `release`; read by [`grew`] when the goroutine is dead. So a dead G's
/// check is one bit (Go's `gfput` compares the stack's size), not a walk of
/// its 63 page-table entries (about 550 instructions a goroutine exit).
/// 252 KiB, as LIVE.
static GREW: [AtomicU64; MAX_SLOTS / 64] = [const { AtomicU64::new(0) }; MAX_SLOTS / 64];
static NEXT_SLOT: AtomicU64 = AtomicU64::new(0);
/// Pages mapped by the fault handler so far (statistics).
static PAGES_MAPPED: AtomicU64 = AtomicU64::new(0);

pub fn init() {
    REGION.store(super::claim_l4_slot(), Ordering::Release);
}

/// A stack: `[lo, hi)`; the guard page is `[lo - PAGE, lo)`.
#[derive(Clone, Copy, Debug)]
pub struct Stack {
    pub lo: u64,
    pub hi: u64,
}

/// Reserve a new stack range. Nothing is mapped yet; no lock is taken.
pub fn alloc() -> Stack {
    let i = NEXT_SLOT.fetch_add(1, Ordering::Relaxed);
    if i >= MAX_SLOTS as u64 {
        crate::runtime::fatal::fatal(format_args!("out of memory: goroutine stack address space exhausted"));
    }
    let base = REGION.load(Ordering::Acquire) + i * STACK_SLOT;
    Stack { lo: base + PAGE, hi: base + STACK_SLOT }
}

fn slot_of(addr: u64) -> usize {
    ((addr - REGION.load(Ordering::Relaxed)) / STACK_SLOT) as usize
}

/// Mark `st`'s slot as owned by a live goroutine (`newproc1`, before the
/// first write to the stack) or not (`goexit0`, once the goroutine is dead
/// and off its stack). Release/Acquire: pairs with the load in
/// `handle_fault`; a goroutine reaches another core through a run queue,
/// which orders this store before its first fault there anyway.
#[inline]
pub fn set_live(st: Stack, live: bool) {
    let i = slot_of(st.lo);
    let bit = 1u64 << (i % 64);
    if live {
        LIVE[i / 64].fetch_or(bit, Ordering::Release);
    } else {
        LIVE[i / 64].fetch_and(!bit, Ordering::Release);
    }
}

fn is_live(slot: usize) -> bool {
    // Acquire: pairs with set_live.
    LIVE[slot / 64].load(Ordering::Acquire) & (1 << (slot % 64)) != 0
}

/// What a faulting address means for the stack region.
pub enum Fault {
    /// Not in the stack region at all.
    NotStack,
    /// A page of the stack `[lo, lo + STACK_SIZE)`, whose goroutine is
    /// dead: a dangling pointer. Nothing was mapped.
    Dead { lo: u64 },
    /// The guard page of the stack whose `lo` is given.
    Guard { lo: u64 },
    /// A page of a stack that was not touched before: now mapped.
    Grown,
}

/// Called by the page-fault handler, with interrupts off, on its IST stack.
pub fn handle_fault(addr: u64) -> Fault {
    let region = REGION.load(Ordering::Acquire);
    if region == 0 || addr < region || addr >= region + NEXT_SLOT.load(Ordering::Relaxed) * STACK_SLOT {
        return Fault::NotStack;
    }
    let off = (addr - region) % STACK_SLOT;
    let base = addr - off;
    if off < PAGE {
        return Fault::Guard { lo: base + PAGE };
    }
    if !is_live(slot_of(addr)) {
        return Fault::Dead { lo: base + PAGE };
    }
    let page = addr & !(PAGE - 1);
    if page != base + STACK_SLOT - PAGE {
        // Relaxed: read by `grew` once the goroutine is dead, on the core
        // it died on; it reached that core (if another) through a run
        // queue, whose lock or release/acquire pair orders this store.
        GREW[slot_of(addr) / 64].fetch_or(1 << (slot_of(addr) % 64), Ordering::Relaxed);
    }
    let frame = super::frame::alloc_zeroed().unwrap_or_else(|| super::frame::out_of_frames("growing a goroutine stack"));
    match super::map_page(page, frame, Flags::PRESENT | Flags::WRITABLE | Flags::NO_EXECUTE) {
        Ok(()) => {
            PAGES_MAPPED.fetch_add(1, Ordering::Relaxed);
        }
        // Two cores cannot fault on the same stack at once (a G runs on one
        // core), but be robust: someone mapped it, give the frame back and
        // let the instruction run again. This is the only error that may be
        // retried: any other one would fault again at once, forever.
        Err(MapToError::PageAlreadyMapped(_)) => super::frame::free(frame),
        // The leaf frame was there but a page-table page for it was not:
        // out of memory just the same (it used to loop on the fault).
        Err(MapToError::FrameAllocationFailed) => {
            super::frame::free(frame);
            super::frame::out_of_frames("growing a goroutine stack (no frame for its page table)")
        }
        Err(MapToError::ParentEntryHugePage) => {
            super::frame::free(frame);
            crate::runtime::fatal::fatal(format_args!("stack region at {page:#x} lies under a huge page"))
        }
    }
    Fault::Grown
}


// ---------------------------------------------------------------------------
// Giving stacks back
//
// A dead goroutine keeps its stack reservation for good (its `g` keeps the
// slot), but its pages can go: the scheduler (runtime::proc, gfput) calls
// `release` for the stacks it no longer wants to keep mapped. Their entries
// are cleared at once, and so is every level-1 table left empty (a table
// maps a 2 MiB block: parts of 8 or 9 slots); the frames wait in LIMBO until the
// TLB shootdown that `release` started has completed on every core (see
// tlb.rs), and `reap` then gives them to the frame allocator. A released
// stack is mapped again page by page by the fault handler, like a new one.

/// Frames unmapped from dead stacks, each batch waiting for its shootdown.
static LIMBO: spin::Mutex<Vec<(Shootdown, Vec<PhysFrame>)>> = spin::Mutex::new(Vec::new());
/// Batches in LIMBO (a lock-free "anything to do?" for `reap`).
static LIMBO_BATCHES: AtomicUsize = AtomicUsize::new(0);
static PAGES_UNMAPPED: AtomicU64 = AtomicU64::new(0);
static TABLES_FREED: AtomicU64 = AtomicU64::new(0);

/// What one level-1 page table maps.
const BLOCK: u64 = 2 << 20;

/// Index of `addr`'s entry in its level-1 table.
fn pte_index(addr: u64) -> usize {
    ((addr >> 12) & 511) as usize
}

/// Has this (dead) stack any page mapped below its top one? A goroutine
/// that once recursed deeply keeps those pages until they are released.
pub fn grew(st: Stack) -> bool {
    let i = slot_of(st.lo);
    // Relaxed: see GREW. Only the fault handler maps a stack page and only
    // `release` unmaps one, so the bit says whether any page below the top
    // one is mapped.
    GREW[i / 64].load(Ordering::Relaxed) & (1 << (i % 64)) != 0
}

/// Unmap every page of each stack, free the level-1 tables this leaves
/// empty, and start one TLB shootdown for all of them. The frames go back
/// to the allocator (in `reap`) once the shootdown has completed; the
/// caller must not let anything run on these stacks before
/// `Shootdown::done` either, since a core may still translate through the
/// old entries until then. Never waits for another core.
pub fn release(stacks: impl Iterator<Item = Stack>) -> Shootdown {
    let mut frames: Vec<PhysFrame> = Vec::new();
    let (mut pages, mut tables) = (0, 0);
    x86_64::instructions::interrupts::without_interrupts(|| {
        // The fault handler maps under this lock too: no page of these
        // slots' neighbours is mapped into a table while we decide it is empty.
        let _mapper = super::MAPPER.lock();
        for st in stacks {
            // Relaxed: under MAPPER's lock, as the unmapping below; the
            // stack is dead, so no fault on it sets the bit meanwhile.
            let slot = slot_of(st.lo);
            GREW[slot / 64].fetch_and(!(1 << (slot % 64)), Ordering::Relaxed);
            // A slot is 65 pages, so a stack may straddle two 2 MiB blocks,
            // each mapped by its own level-1 table: clear the stack's part
            // of each.
            let mut lo = st.lo;
            while lo < st.hi {
                let end = ((lo | (BLOCK - 1)) + 1).min(st.hi);
                // SAFETY: we hold MAPPER's lock, so we may change the tables.
                if let Some((l2e, l1)) = unsafe { super::l1_table(lo) } {
                    for i in pte_index(lo)..=pte_index(end - PAGE) {
                        let e = &mut l1[i];
                        if !e.is_unused() {
                            frames.push(PhysFrame::containing_address(e.addr()));
                            e.set_unused();
                            pages += 1;
                        }
                    }
                    if l1.iter().all(|e| e.is_unused()) {
                        frames.push(PhysFrame::containing_address(l2e.addr()));
                        l2e.set_unused();
                        tables += 1;
                    }
                }
                lo = end;
            }
        }
    });
    PAGES_UNMAPPED.fetch_add(pages, Ordering::Relaxed);
    TABLES_FREED.fetch_add(tables, Ordering::Relaxed);
    // After the entries are cleared (tlb.rs, step 2 after step 1).
    let sd = super::tlb::start();
    if !frames.is_empty() {
        x86_64::instructions::interrupts::without_interrupts(|| LIMBO.lock().push((sd, frames)));
        LIMBO_BATCHES.fetch_add(1, Ordering::Release);
    }
    sd
}

/// Give the frames of every completed shootdown back to the allocator.
pub fn reap() {
    if LIMBO_BATCHES.load(Ordering::Acquire) == 0 {
        return;
    }
    let mut ready: Vec<Vec<PhysFrame>> = Vec::new();
    x86_64::instructions::interrupts::without_interrupts(|| {
        let Some(mut l) = LIMBO.try_lock() else { return };
        let mut i = 0;
        while i < l.len() {
            if l[i].0.done() {
                ready.push(l.swap_remove(i).1);
            } else {
                i += 1;
            }
        }
    });
    let n = ready.len();
    for f in ready.into_iter().flatten() {
        super::frame::free(f);
    }
    // Only now: a batch counts as in limbo until its frames are back, so
    // whoever sees no batch left (`proc::gfree_settled`) also sees the
    // frames free. (Counted down under the lock, a batch of a thousand
    // stacks was still being freed when the count said none was.)
    // Release: pairs with the Acquire loads of LIMBO_BATCHES.
    LIMBO_BATCHES.fetch_sub(n, Ordering::Release);
}

/// Memory statistics of the stack region.
#[derive(Clone, Copy, Debug)]
pub struct StackStats {
    /// Pages mapped by the fault handler, ever.
    pub pages_mapped: u64,
    /// Pages unmapped by `release`, ever.
    pub pages_unmapped: u64,
    /// Level-1 page tables freed by `release`, ever.
    pub tables_freed: u64,
    /// Stack slots reserved (one per `g` ever made).
    pub slots: u64,
    /// Shootdown batches whose frames are not back yet.
    pub limbo_batches: usize,
}

pub fn stats() -> StackStats {
    StackStats {
        pages_mapped: PAGES_MAPPED.load(Ordering::Relaxed),
        pages_unmapped: PAGES_UNMAPPED.load(Ordering::Relaxed),
        tables_freed: TABLES_FREED.load(Ordering::Relaxed),
        slots: NEXT_SLOT.load(Ordering::Relaxed),
        limbo_batches: LIMBO_BATCHES.load(Ordering::Acquire),
    }
}
