//! The kernel heap: a `linked_list_allocator` over a region mapped at boot.
//!
//! Without a `heap=` boot parameter the heap starts at
//! [`HEAP_INITIAL`](gmp_core::bootparam::HEAP_INITIAL) and grows: an
//! allocation that does not fit maps fresh frames right after the heap's end
//! and hands them to the allocator (`Heap::extend`), at least a quarter of
//! the heap's size at a time, so a 256-core machine (more Ps, Ms, per-P
//! buffers and goroutines) gets the heap it needs from the guest's memory
//! rather than a size fixed for a small one. The heap has a level-4 slot
//! (512 GiB of address space) to itself, so it can grow in place. It never
//! shrinks: freed blocks are reused, as Go's heap reuses spans.
//!
//! With `heap=SIZE` the heap is fixed at that size, for tests of running out.
//!
//! Running out (of a fixed heap, or of physical memory while growing) is
//! reported as Go reports it (`fatal error: out of memory`) with the request
//! size and the heap's state, then QEMU exits with a failure status. An
//! allocation never returns null to code that would dereference it.
use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use linked_list_allocator::Heap;
use spin::Mutex;
use x86_64::structures::paging::PageTableFlags as Flags;

pub struct KernelHeap {
    heap: Mutex<Heap>,
}

/// The heap's current size in bytes (grows; written under `GROW`).
static SIZE: AtomicUsize = AtomicUsize::new(0);
/// Where the heap's address range starts.
static BASE: AtomicU64 = AtomicU64::new(0);
/// `heap=` was given: never grow.
static FIXED: AtomicBool = AtomicBool::new(true);
/// Times the heap grew (statistics, and the tests' evidence).
static GROWTHS: AtomicU64 = AtomicU64::new(0);
/// Serialises growing, so that two cores that both ran out map one chunk
/// each after the other rather than two chunks at the same address. Taken
/// without the heap lock held (growing maps pages, which allocates page
/// tables from the frame allocator, never from this heap).
static GROW: Mutex<()> = Mutex::new(());

#[global_allocator]
pub static ALLOCATOR: KernelHeap = KernelHeap { heap: Mutex::new(Heap::empty()) };

impl KernelHeap {
    fn try_alloc(&self, layout: Layout) -> Option<*mut u8> {
        x86_64::instructions::interrupts::without_interrupts(|| self.heap.lock().allocate_first_fit(layout))
            .ok()
            .map(|p| p.as_ptr())
    }

    /// Grow the heap so that `layout` fits, then allocate it. None: the heap
    /// is fixed.
    fn grow_and_alloc(&self, layout: Layout) -> Option<*mut u8> {
        if FIXED.load(Ordering::Relaxed) {
            return None;
        }
        x86_64::instructions::interrupts::without_interrupts(|| {
            let _g = GROW.lock();
            // Another core may have grown it while we waited.
            if let Ok(p) = self.heap.lock().allocate_first_fit(layout) {
                return Some(p.as_ptr());
            }
            let size = SIZE.load(Ordering::Relaxed);
            // Enough for the request wherever its alignment puts it, and at
            // least a quarter of the heap, so that growing is rare; whole
            // 2 MiB pages.
            let want = (layout.size() + layout.align() + 4096).max(size / 4).next_multiple_of(HUGE);
            let end = BASE.load(Ordering::Relaxed) + size as u64;
            let mut req = MapRequest { start: end, bytes: want, failed: None };
            // The page-fault handler that grows goroutine stacks takes the
            // frame and page-table locks, so mapping (which holds them) must
            // not run on a goroutine stack that might fault: it runs on
            // GROW_STACK, ours alone under the GROW lock.
            // SAFETY: GROW_STACK is used only here, under GROW, with
            // interrupts off; its top is 16-byte aligned.
            unsafe {
                crate::arch::x86_64::switch::call_on_stack(
                    &mut req as *mut MapRequest as *mut u8,
                    map_request,
                    GROW_STACK.0.get() as u64 + GROW_STACK_SIZE as u64,
                )
            };
            if let Some(why) = req.failed {
                out_of_memory(layout, why);
            }
            let mut h = self.heap.lock();
            // SAFETY: [end, end + want) was just mapped, directly after the
            // heap's current top, and is used by nothing else.
            unsafe { h.extend(want) };
            SIZE.store(size + want, Ordering::Relaxed);
            GROWTHS.fetch_add(1, Ordering::Relaxed);
            h.allocate_first_fit(layout).ok().map(|p| p.as_ptr())
        })
    }
}

/// 2 MiB: the heap grows in whole huge pages.
const HUGE: usize = 2 << 20;

/// The stack the heap maps new pages on (see `grow_and_alloc`).
const GROW_STACK_SIZE: usize = 16 * 1024;
#[repr(C, align(16))]
struct GrowStack(core::cell::UnsafeCell<[u8; GROW_STACK_SIZE]>);
// SAFETY: only used under the GROW lock (one user at a time).
unsafe impl Sync for GrowStack {}
static GROW_STACK: GrowStack = GrowStack(core::cell::UnsafeCell::new([0; GROW_STACK_SIZE]));

struct MapRequest {
    start: u64,
    bytes: usize,
    failed: Option<&'static str>,
}

extern "C" fn map_request(arg: *mut u8) {
    // SAFETY: `arg` is the `MapRequest` on the caller's stack, alive until
    // call_on_stack returns.
    let req = unsafe { &mut *(arg as *mut MapRequest) };
    if let Err(why) = map_range(req.start, req.bytes) {
        req.failed = Some(why);
    }
}

/// Map `bytes` (a multiple of 2 MiB, at a 2 MiB-aligned `start`) of fresh
/// memory for the heap: 2 MiB pages while the frame allocator has aligned
/// runs, else 4 KiB pages. Not zeroed: the allocator does not promise
/// zeroed memory (`alloc_zeroed` zeroes what it hands out).
fn map_range(start: u64, bytes: usize) -> Result<(), &'static str> {
    let flags = Flags::PRESENT | Flags::WRITABLE | Flags::NO_EXECUTE;
    const NO_TABLE: &str = "no frame for a page table; give QEMU more with --mem";
    for chunk in (start..start + bytes as u64).step_by(HUGE) {
        if let Some(f) = super::frame::alloc_2m() {
            super::map_huge(chunk, f, flags).map_err(|_| NO_TABLE)?;
            continue;
        }
        for page in (chunk..chunk + HUGE as u64).step_by(4096) {
            let f = super::frame::alloc().ok_or("the guest's physical memory is used up; give QEMU more with --mem")?;
            super::map_page(page, f, flags).map_err(|_| NO_TABLE)?;
        }
    }
    Ok(())
}

#[cold]
fn out_of_memory(layout: Layout, advice: &str) -> ! {
    let (used, free) = x86_64::instructions::interrupts::without_interrupts(|| {
        let h = ALLOCATOR.heap.lock();
        (h.used(), h.free())
    });
    crate::runtime::fatal::fatal(format_args!(
        "out of memory: kernel heap cannot allocate {} bytes (align {}); {} used, {} free of {} ({advice})",
        layout.size(),
        layout.align(),
        used,
        free,
        SIZE.load(Ordering::Relaxed)
    ))
}

// SAFETY: the inner Heap is only touched under its lock, with interrupts off
// so that an interrupt handler on the same core cannot deadlock on it.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if let Some(p) = self.try_alloc(layout) {
            return p;
        }
        match self.grow_and_alloc(layout) {
            Some(p) => p,
            None if FIXED.load(Ordering::Relaxed) => out_of_memory(layout, "raise heap="),
            None => out_of_memory(layout, "it does not fit even after growing"),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        x86_64::instructions::interrupts::without_interrupts(|| {
            // SAFETY: `ptr` came from `alloc` with this layout (GlobalAlloc contract).
            unsafe { self.heap.lock().deallocate(core::ptr::NonNull::new_unchecked(ptr), layout) }
        })
    }
}

/// Map the heap at a fresh level-4 slot and hand it to the allocator:
/// `fixed` bytes for good (`heap=`), or else `HEAP_INITIAL` bytes that grow.
pub fn init(fixed: Option<usize>) {
    let size = fixed.unwrap_or(gmp_core::bootparam::HEAP_INITIAL);
    let base = super::claim_l4_slot();
    // Mapped in whole 2 MiB pages; a fixed heap= still gets exactly its size.
    if let Err(why) = map_range(base, size.next_multiple_of(HUGE)) {
        super::frame::out_of_frames(why);
    }
    BASE.store(base, Ordering::Relaxed);
    SIZE.store(size, Ordering::Relaxed);
    FIXED.store(fixed.is_some(), Ordering::Relaxed);
    // SAFETY: [base, base+size) was just mapped, is unused, and is handed to
    // the allocator exactly once.
    unsafe { ALLOCATOR.heap.lock().init(base as *mut u8, size) };
}

/// (used, size) bytes.
pub fn stats() -> (usize, usize) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let h = ALLOCATOR.heap.lock();
        (h.used(), h.size())
    })
}

/// How many times the heap has grown, and whether it may.
pub fn growths() -> (u64, bool) {
    (GROWTHS.load(Ordering::Relaxed), !FIXED.load(Ordering::Relaxed))
}
