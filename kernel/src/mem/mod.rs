//! Memory: physical frames, the page tables, the kernel heap, and the
//! reserved virtual ranges for goroutine stacks and MMIO.
//!
//! ## Address-space layout
//!
//! The bootloader gives us its page tables with the kernel, its boot stack
//! and all of physical memory mapped (at `phys_offset`). We claim four free
//! level-4 slots (512 GiB each) for our own regions:
//!
//! ```text
//!   HEAP    [heap_base, heap_base + size)       mapped at boot, grows (2 MiB pages where it can)
//!   STACKS  goroutine stack slots               mapped lazily, page by page, on first touch
//!   MMIO    LAPIC window                        mapped uncached at boot
//!   KSTACKS interrupt, AP boot and g0 stacks    mapped at boot, a guard page below each
//! ```
//! plus one identity-mapped page at 0x8000 for the AP trampoline.
//!
//! ## Who maps and unmaps pages at run time
//!
//! After bring-up the code that maps pages is the page-fault handler
//! growing a goroutine stack (see `stack`), and the heap growing (see
//! `heap`), which does its mapping on a stack of its own for this reason. It runs on its own IST stack with
//! interrupts off. The only code that unmaps is the scheduler giving dead
//! goroutines' stacks back (`stack::release`, on g0 with interrupts off,
//! then a TLB shootdown, see `tlb`). Neither touches a goroutine stack while
//! it holds the frame or page-table lock, so a page fault can never find
//! those locks held by the code it interrupted.
pub mod frame;
pub mod heap;
pub mod kstack;
pub mod stack;
pub mod tlb;

use core::sync::atomic::{AtomicU64, Ordering};
use spin::Mutex;
use x86_64::structures::paging::{
    mapper::MapToError, Mapper, OffsetPageTable, Page, PageTable, PageTableFlags as Flags, PhysFrame, Size2MiB, Size4KiB,
};
use x86_64::{PhysAddr, VirtAddr};

static PHYS_OFFSET: AtomicU64 = AtomicU64::new(0);
static MAPPER: Mutex<Option<OffsetPageTable<'static>>> = Mutex::new(None);

/// Size of one level-4 slot.
pub const SLOT_SIZE: u64 = 512 << 30;

/// Virtual address of a physical address in the bootloader's linear map.
pub fn phys_to_virt(p: u64) -> u64 {
    p + PHYS_OFFSET.load(Ordering::Relaxed)
}

/// Take over the active page table. `phys_offset` is where the bootloader
/// mapped all of physical memory.
pub fn init(phys_offset: u64) {
    PHYS_OFFSET.store(phys_offset, Ordering::Relaxed);
    let (l4_frame, _) = x86_64::registers::control::Cr3::read();
    let l4 = phys_to_virt(l4_frame.start_address().as_u64()) as *mut PageTable;
    // SAFETY: CR3 points at the live level-4 table, which the bootloader's
    // linear map makes accessible at `phys_offset + phys`; from here on all
    // page-table changes go through MAPPER's lock.
    let table = unsafe { OffsetPageTable::new(&mut *l4, VirtAddr::new(phys_offset)) };
    *MAPPER.lock() = Some(table);
}

/// Claim an unused level-4 slot (never slot 0, which holds low memory and
/// the trampoline) and return its base address.
pub fn claim_l4_slot() -> u64 {
    let mut guard = MAPPER.lock();
    let m = guard.as_mut().expect("mem::init first");
    let l4 = m.level_4_table_mut();
    for i in 1..512 {
        if l4[i].is_unused() {
            // Mark it used by allocating its level-3 table now.
            let frame = frame::alloc_zeroed().expect("no frame for a page table");
            let f = Flags::PRESENT | Flags::WRITABLE;
            l4[i].set_frame(frame, f);
            let base = if i >= 256 { 0xffff_0000_0000_0000 | ((i as u64) << 39) } else { (i as u64) << 39 };
            return base;
        }
    }
    panic!("no free level-4 slot");
}

/// Map one 4 KiB page to `frame`.
pub fn map_page(page: u64, frame: PhysFrame, flags: Flags) -> Result<(), MapToError<Size4KiB>> {
    let mut guard = MAPPER.lock();
    let m = guard.as_mut().expect("mem::init first");
    let page = Page::<Size4KiB>::containing_address(VirtAddr::new(page));
    // SAFETY: the callers map fresh frames into regions this module reserved
    // (heap, stack slots, MMIO, the trampoline page), so no existing Rust
    // reference can alias the new mapping.
    unsafe { m.map_to(page, frame, flags, &mut frame::FrameAllocHandle) }.map(|f| f.flush())
}

/// Map one 2 MiB page (`virt` 2 MiB-aligned).
pub fn map_huge(virt: u64, frame: PhysFrame<Size2MiB>, flags: Flags) -> Result<(), MapToError<Size2MiB>> {
    let mut guard = MAPPER.lock();
    let m = guard.as_mut().expect("mem::init first");
    let page = Page::<Size2MiB>::from_start_address(VirtAddr::new(virt)).expect("map_huge: unaligned address");
    // SAFETY: as in `map_page` (the heap maps fresh frames into its own slot).
    unsafe { m.map_to(page, frame, flags, &mut frame::FrameAllocHandle) }.map(|f| f.flush())
}

/// Is `addr` mapped?
pub fn is_mapped(addr: u64) -> bool {
    use x86_64::structures::paging::Translate;
    let guard = MAPPER.lock();
    guard.as_ref().map(|m| m.translate_addr(VirtAddr::new(addr)).is_some()).unwrap_or(false)
}

/// Map `pages` fresh zeroed frames at `virt`.
pub fn map_fresh(virt: u64, pages: u64, flags: Flags) {
    for i in 0..pages {
        let frame = frame::alloc_zeroed().unwrap_or_else(|| frame::out_of_frames("mapping kernel memory"));
        match map_page(virt + i * 4096, frame, flags) {
            Ok(()) => {}
            // A page table for it could not be had: out of memory, not a
            // double mapping (which is what the message used to say).
            Err(MapToError::FrameAllocationFailed) => frame::out_of_frames("mapping kernel memory (no frame for a page table)"),
            Err(e) => panic!("map_fresh: cannot map {:#x}: {e:?}", virt + i * 4096),
        }
    }
}

/// Map a device's physical window uncached at `virt`.
pub fn map_mmio(virt: u64, phys: u64) {
    let frame = PhysFrame::containing_address(PhysAddr::new(phys));
    let flags = Flags::PRESENT | Flags::WRITABLE | Flags::NO_CACHE | Flags::WRITE_THROUGH | Flags::NO_EXECUTE;
    map_page(virt, frame, flags).expect("map_mmio");
}

/// Identity-map one low physical page (the AP trampoline), executable.
pub fn identity_map_low(phys: u64) {
    let frame = PhysFrame::containing_address(PhysAddr::new(phys));
    match map_page(phys, frame, Flags::PRESENT | Flags::WRITABLE) {
        Ok(()) | Err(MapToError::PageAlreadyMapped(_)) => {}
        Err(e) => panic!("identity map of {phys:#x} failed: {e:?}"),
    }
}

/// Remove the identity mapping of a low page (the AP trampoline, once
/// every AP is up: it need not stay writable and executable for the whole
/// run), and flush it from every core's TLB. The frame is below 1 MiB and
/// never the allocator's, so nothing waits for the shootdown to complete.
pub fn unmap_low(phys: u64) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let mut guard = MAPPER.lock();
        let m = guard.as_mut().expect("mem::init first");
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(phys));
        if let Ok((_, flush)) = m.unmap(page) {
            flush.ignore(); // tlb::start flushes every core, this one included
        }
    });
    let _ = tlb::start();
}

/// Is `addr` mapped? For the fault path: walks the page tables without
/// taking MAPPER's lock (the faulting code may hold it).
pub fn is_mapped_unlocked(addr: u64) -> bool {
    use x86_64::structures::paging::Translate;
    if PHYS_OFFSET.load(Ordering::Relaxed) == 0 {
        return false;
    }
    let (l4_frame, _) = x86_64::registers::control::Cr3::read();
    let l4 = phys_to_virt(l4_frame.start_address().as_u64()) as *mut PageTable;
    // SAFETY: read-only walk of the live tables through the linear map; a
    // concurrent mapping can only turn "unmapped" into "mapped".
    let table = unsafe { OffsetPageTable::new(&mut *l4, VirtAddr::new(PHYS_OFFSET.load(Ordering::Relaxed))) };
    table.translate_addr(VirtAddr::new(addr)).is_some()
}

/// The level-1 page table that maps `addr`, and the level-2 entry that
/// points at it, if both levels exist. Walks the live tables through the
/// linear map without MAPPER's lock: the caller either holds it (to change
/// them) or knows the level-1 table cannot be freed meanwhile (a page of its
/// own stays mapped in it). Level-2 and higher tables are never freed.
///
/// # Safety
/// The returned references alias the live page tables: write through them
/// only while holding MAPPER's lock.
unsafe fn l1_table(addr: u64) -> Option<(&'static mut x86_64::structures::paging::page_table::PageTableEntry, &'static mut PageTable)> {
    let off = PHYS_OFFSET.load(Ordering::Relaxed);
    if off == 0 {
        return None;
    }
    let va = VirtAddr::new(addr);
    let (l4_frame, _) = x86_64::registers::control::Cr3::read();
    let mut table = phys_to_virt(l4_frame.start_address().as_u64()) as *mut PageTable;
    let idx = [va.p4_index(), va.p3_index(), va.p2_index()];
    for (level, i) in idx.iter().enumerate() {
        // SAFETY: `table` is a live page table reached through the linear
        // map (the caller's contract covers the aliasing).
        let e = unsafe { &mut (&mut *table)[*i] };
        if !e.flags().contains(Flags::PRESENT) || e.flags().contains(Flags::HUGE_PAGE) {
            return None;
        }
        let next = phys_to_virt(e.addr().as_u64()) as *mut PageTable;
        if level == 2 {
            // SAFETY: as above; `next` is the level-1 table `e` points at.
            return Some((e, unsafe { &mut *next }));
        }
        table = next;
    }
    None
}
