//! The physical frame allocator, built from BootInfo's memory map.
//!
//! A bump pointer walks the usable regions above 1 MiB (below 1 MiB lives
//! the AP trampoline and BIOS data); freed frames go on a free list threaded
//! through the frames themselves (via the linear map).
use bootloader_api::info::{MemoryRegionKind, MemoryRegions};
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Mutex;
use x86_64::structures::paging::{FrameAllocator, PhysFrame, Size2MiB, Size4KiB};
use x86_64::PhysAddr;

const MAX_REGIONS: usize = 64;

struct Frames {
    regions: [(u64, u64); MAX_REGIONS],
    nregions: usize,
    cur: usize,
    next: u64,
    free_list: u64,
}

static FRAMES: Mutex<Frames> =
    Mutex::new(Frames { regions: [(0, 0); MAX_REGIONS], nregions: 0, cur: 0, next: 0, free_list: 0 });
static TOTAL: AtomicU64 = AtomicU64::new(0);
static USED: AtomicU64 = AtomicU64::new(0);

pub fn init(map: &MemoryRegions) {
    let mut f = FRAMES.lock();
    let mut total = 0;
    for r in map.iter() {
        if r.kind != MemoryRegionKind::Usable {
            continue;
        }
        let start = r.start.max(0x10_0000).next_multiple_of(4096);
        let end = r.end & !4095;
        if end <= start || f.nregions == MAX_REGIONS {
            continue;
        }
        let n = f.nregions;
        f.regions[n] = (start, end);
        f.nregions += 1;
        total += (end - start) / 4096;
    }
    f.next = f.regions[0].0;
    TOTAL.store(total, Ordering::Relaxed);
}

/// Allocate one frame, or None when physical memory is exhausted.
pub fn alloc() -> Option<PhysFrame> {
    let mut f = FRAMES.lock();
    let addr = if f.free_list != 0 {
        let a = f.free_list;
        // SAFETY: a frame on the free list holds the next link in its first
        // word, reachable through the linear map.
        f.free_list = unsafe { *(super::phys_to_virt(a) as *const u64) };
        a
    } else {
        loop {
            if f.cur >= f.nregions {
                return None;
            }
            let (_, end) = f.regions[f.cur];
            if f.next < end {
                let a = f.next;
                f.next += 4096;
                break a;
            }
            f.cur += 1;
            if f.cur < f.nregions {
                f.next = f.regions[f.cur].0;
            }
        }
    };
    USED.fetch_add(1, Ordering::Relaxed);
    Some(PhysFrame::containing_address(PhysAddr::new(addr)))
}

/// Allocate 512 contiguous frames starting at a 2 MiB boundary (for one
/// huge page), from the part of the current region not handed out yet; None
/// when it has no such run left (then use 4 KiB frames). The frames skipped
/// to reach the boundary go on the free list.
pub fn alloc_2m() -> Option<PhysFrame<Size2MiB>> {
    const HUGE: u64 = 2 << 20;
    let mut f = FRAMES.lock();
    if f.cur >= f.nregions {
        return None;
    }
    let (_, end) = f.regions[f.cur];
    let start = f.next.next_multiple_of(HUGE);
    if start + HUGE > end {
        return None;
    }
    let mut a = f.next;
    while a < start {
        // SAFETY: never handed out (it lies at or above the bump pointer),
        // so ours; its first word becomes the free-list link.
        unsafe { *(super::phys_to_virt(a) as *mut u64) = f.free_list };
        f.free_list = a;
        a += 4096;
    }
    f.next = start + HUGE;
    USED.fetch_add(512, Ordering::Relaxed);
    Some(PhysFrame::containing_address(PhysAddr::new(start)))
}

/// Allocate a frame and zero it.
pub fn alloc_zeroed() -> Option<PhysFrame> {
    let f = alloc()?;
    let v = super::phys_to_virt(f.start_address().as_u64()) as *mut u8;
    // SAFETY: the frame is ours alone (just allocated) and mapped by the
    // linear map for 4096 bytes.
    unsafe { core::ptr::write_bytes(v, 0, 4096) };
    Some(f)
}

/// Return a frame.
pub fn free(frame: PhysFrame) {
    let mut f = FRAMES.lock();
    let a = frame.start_address().as_u64();
    // SAFETY: the caller gives the frame up; its first word becomes the link.
    unsafe { *(super::phys_to_virt(a) as *mut u64) = f.free_list };
    f.free_list = a;
    USED.fetch_sub(1, Ordering::Relaxed);
}

/// (used, total) frames.
pub fn stats() -> (u64, u64) {
    (USED.load(Ordering::Relaxed), TOTAL.load(Ordering::Relaxed))
}

/// Physical memory is gone: a clear fatal error, never silent corruption.
pub fn out_of_frames(what: &str) -> ! {
    let (used, total) = stats();
    crate::runtime::fatal::fatal(format_args!(
        "out of memory: no physical frame left while {what} ({used} of {total} frames in use; give QEMU more with --mem)"
    ))
}

/// Adapter for the x86_64 crate's mapper (intermediate page tables).
pub struct FrameAllocHandle;
// SAFETY: `alloc_zeroed` returns unused frames, zeroed as page tables need.
unsafe impl FrameAllocator<Size4KiB> for FrameAllocHandle {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        alloc_zeroed()
    }
}
