//! The kernel heap: a `linked_list_allocator` over a region mapped at boot,
//! sized by the `heap=` boot parameter.
//!
//! Running out is reported as Go reports it (`fatal error: out of memory`)
//! with the request size and the heap's state, then QEMU exits with a
//! failure status. An allocation never returns null to code that would
//! dereference it.
use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};
use linked_list_allocator::Heap;
use spin::Mutex;
use x86_64::structures::paging::PageTableFlags as Flags;

pub struct KernelHeap {
    heap: Mutex<Heap>,
}

static SIZE: AtomicUsize = AtomicUsize::new(0);

#[global_allocator]
pub static ALLOCATOR: KernelHeap = KernelHeap { heap: Mutex::new(Heap::empty()) };

// SAFETY: the inner Heap is only touched under its lock, with interrupts off
// so that an interrupt handler on the same core cannot deadlock on it.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let r = x86_64::instructions::interrupts::without_interrupts(|| self.heap.lock().allocate_first_fit(layout));
        match r {
            Ok(p) => p.as_ptr(),
            Err(()) => {
                let (used, free) = x86_64::instructions::interrupts::without_interrupts(|| {
                    let h = self.heap.lock();
                    (h.used(), h.free())
                });
                crate::runtime::fatal::fatal(format_args!(
                    "out of memory: kernel heap cannot allocate {} bytes (align {}); {} used, {} free of {} (raise heap=)",
                    layout.size(),
                    layout.align(),
                    used,
                    free,
                    SIZE.load(Ordering::Relaxed)
                ))
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        x86_64::instructions::interrupts::without_interrupts(|| {
            // SAFETY: `ptr` came from `alloc` with this layout (GlobalAlloc contract).
            unsafe { self.heap.lock().deallocate(core::ptr::NonNull::new_unchecked(ptr), layout) }
        })
    }
}

/// Map `size` bytes at a fresh level-4 slot and hand them to the allocator.
pub fn init(size: usize) {
    let base = super::claim_l4_slot();
    let pages = size.div_ceil(4096) as u64;
    super::map_fresh(base, pages, Flags::PRESENT | Flags::WRITABLE | Flags::NO_EXECUTE);
    SIZE.store(size, Ordering::Relaxed);
    // SAFETY: [base, base+size) was just mapped, is unused, and is handed to
    // the allocator exactly once.
    unsafe { ALLOCATOR.heap.lock().init(base as *mut u8, pages as usize * 4096) };
}

/// (used, size) bytes.
pub fn stats() -> (usize, usize) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let h = ALLOCATOR.heap.lock();
        (h.used(), h.size())
    })
}
