//! Kernel stacks with guard pages: the per-core interrupt (IST) stacks, the
//! APs' boot stacks and every M's g0 stack.
//!
//! They used to be plain heap allocations, so an overflow ran silently into
//! whatever the heap kept below them. Each now lives in its own range of a
//! dedicated level-4 slot, mapped eagerly (an interrupt stack must never
//! fault to grow), with an unmapped guard page below it:
//!
//! ```text
//!   | guard (never mapped) | stack, mapped at boot | guard | stack | ...
//! ```
//!
//! A touch of a guard page is a page fault the page-fault handler
//! recognises ([`guard_of`]) and reports as a kernel stack overflow. The
//! page-fault handler has its own IST stack, so an overflow of any other
//! stack reaches it on a fresh one; an overflow of the page-fault stack
//! itself re-enters the handler at the top of that same stack, which is
//! harmless here because the report never returns.
use core::sync::atomic::{AtomicU64, Ordering};
use x86_64::structures::paging::PageTableFlags as Flags;

use super::stack::PAGE;

static REGION: AtomicU64 = AtomicU64::new(0);
/// Bytes of the region handed out so far (guards included).
static NEXT: AtomicU64 = AtomicU64::new(0);
static COUNT: AtomicU64 = AtomicU64::new(0);

fn region() -> u64 {
    let r = REGION.load(Ordering::Acquire);
    if r != 0 {
        return r;
    }
    // First use, on the boot core during bring-up (before any AP runs).
    let base = super::claim_l4_slot();
    REGION.store(base, Ordering::Release);
    base
}

/// A new kernel stack of `size` bytes (rounded up to pages), mapped, with
/// an unmapped guard page below; returns its top (16-byte aligned).
pub fn alloc(size: usize) -> u64 {
    let pages = (size as u64).div_ceil(PAGE);
    let base = region();
    let off = NEXT.fetch_add((pages + 1) * PAGE, Ordering::Relaxed);
    if off + (pages + 1) * PAGE > super::SLOT_SIZE {
        crate::runtime::fatal::fatal(format_args!("out of memory: kernel stack address space exhausted"));
    }
    let lo = base + off + PAGE;
    super::map_fresh(lo, pages, Flags::PRESENT | Flags::WRITABLE | Flags::NO_EXECUTE);
    COUNT.fetch_add(1, Ordering::Relaxed);
    lo + pages * PAGE
}

/// If `addr` is in the kernel-stack region but not mapped (a guard page),
/// the guard page's address.
pub fn guard_of(addr: u64) -> Option<u64> {
    let base = REGION.load(Ordering::Acquire);
    if base == 0 || addr < base || addr >= base + NEXT.load(Ordering::Relaxed) {
        return None;
    }
    if super::is_mapped_unlocked(addr) {
        return None;
    }
    Some(addr & !(PAGE - 1))
}

/// Kernel stacks made so far.
pub fn count() -> u64 {
    COUNT.load(Ordering::Relaxed)
}
