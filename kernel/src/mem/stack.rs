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
//! Stacks are never unmapped: a dead G keeps its stack on the gFree lists
//! and the next G reuses it, pages and all, so no TLB shootdown is ever needed.
use core::sync::atomic::{AtomicU64, Ordering};
use x86_64::structures::paging::PageTableFlags as Flags;

/// Virtual size of one stack slot, guard page included.
pub const STACK_SLOT: u64 = 256 * 1024;
pub const PAGE: u64 = 4096;
/// Usable bytes of a stack.
pub const STACK_SIZE: u64 = STACK_SLOT - PAGE;

static REGION: AtomicU64 = AtomicU64::new(0);
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
    if i >= super::SLOT_SIZE / STACK_SLOT {
        crate::runtime::fatal::fatal(format_args!("out of memory: goroutine stack address space exhausted"));
    }
    let base = REGION.load(Ordering::Acquire) + i * STACK_SLOT;
    Stack { lo: base + PAGE, hi: base + STACK_SLOT }
}

/// What a faulting address means for the stack region.
pub enum Fault {
    /// Not in the stack region at all.
    NotStack,
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
    let page = addr & !(PAGE - 1);
    let frame = super::frame::alloc_zeroed().unwrap_or_else(|| super::frame::out_of_frames("growing a goroutine stack"));
    match super::map_page(page, frame, Flags::PRESENT | Flags::WRITABLE | Flags::NO_EXECUTE) {
        Ok(()) => {}
        // Two cores cannot fault on the same stack at once (a G runs on one
        // core), but be robust: someone mapped it, give the frame back.
        Err(_) => super::frame::free(frame),
    }
    PAGES_MAPPED.fetch_add(1, Ordering::Relaxed);
    Fault::Grown
}

pub fn pages_mapped() -> u64 {
    PAGES_MAPPED.load(Ordering::Relaxed)
}

pub fn slots_reserved() -> u64 {
    NEXT_SLOT.load(Ordering::Relaxed)
}
