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
//!
//! ## Small blocks: per-core caches
//!
//! In front of the heap sit Go's `mcache`/`mcentral` ([`gmp_core::mcache`],
//! whose module comment is the protocol): a request of up to 2 KiB with an
//! alignment of up to 16 is served from this core's free list of its size
//! class, with interrupts off and no lock; an empty list refills a batch at
//! a time from the class's central list or the heap, and a long one gives a
//! batch back to the central list. The heap's own lock and its linear
//! first-fit walk are paid once a batch, not once a block. Before the heap
//! grows or reports running out, the central lists and this core's cache go
//! back to it ([`flush_caches`]). [`stats`] counts cached blocks as free.
use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use gmp_core::mcache::{self, FreeList, MCache, NUM_CLASSES};
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

/// One core's cache (Go's `p.mcache`), padded to its own cache lines.
#[repr(align(64))]
struct CoreCache {
    /// Touched only by its own core, with interrupts off.
    cache: UnsafeCell<MCache>,
    /// Bytes in `cache`: stored (not added to) by the owner after each
    /// change, read by [`stats`] on any core. Partner: the load in `stats`.
    bytes: AtomicUsize,
}

// SAFETY: `cache` is only used by the core whose index it has, with
// interrupts off (`with_cache`); `bytes` is atomic.
unsafe impl Sync for CoreCache {}

static CACHES: [CoreCache; crate::arch::x86_64::percpu::MAX_CPUS] =
    [const { CoreCache { cache: UnsafeCell::new(MCache::new()), bytes: AtomicUsize::new(0) } };
        crate::arch::x86_64::percpu::MAX_CPUS];

/// Per class, the blocks cores gave back (Go's `mcentral`), and their bytes
/// (changed under the class's lock; read by `stats`).
static CENTRAL: [Mutex<FreeList>; NUM_CLASSES] = [const { Mutex::new(FreeList::new()) }; NUM_CLASSES];
static CENTRAL_BYTES: AtomicUsize = AtomicUsize::new(0);

/// Run `f` on this core's cache. Interrupts must be off: nothing else on
/// this core can then reach the cache, and the caller cannot move to
/// another core while it holds the reference.
fn with_cache<R>(f: impl FnOnce(&mut MCache) -> R) -> R {
    debug_assert!(!x86_64::instructions::interrupts::are_enabled());
    let me = &CACHES[crate::arch::x86_64::percpu::cpu_id()];
    // SAFETY: see above: only this core uses its entry, and with interrupts
    // off no handler on this core can re-enter here while `f` runs.
    let r = f(unsafe { &mut *me.cache.get() });
    // SAFETY: as above; a shared read of our own cache.
    me.bytes.store(unsafe { (*me.cache.get()).cached_bytes() }, Ordering::Relaxed);
    r
}

/// The heap layout of every block of class `c`.
fn class_layout(c: usize) -> Layout {
    // A power of two up to 2048 with alignment 16: always valid.
    Layout::from_size_align(mcache::class_size(c), mcache::CLASS_ALIGN).unwrap()
}

/// Give `blocks` of class `c` back to the heap. Interrupts off.
fn release_to_heap(h: &mut Heap, c: usize, mut blocks: FreeList) {
    while let Some(p) = blocks.pop() {
        // SAFETY: every class-c block was allocated from this heap with
        // `class_layout(c)` (`small_alloc`), and is free.
        unsafe { h.deallocate(core::ptr::NonNull::new_unchecked(p), class_layout(c)) };
    }
}

/// Give the central lists and this core's cache back to the heap: before
/// growing it or reporting that it is out of memory. (Other cores' caches,
/// at most a few KiB per class each, stay where they are.) Interrupts off.
fn flush_caches(h: &mut Heap) {
    for c in 0..NUM_CLASSES {
        let mine = with_cache(|m| m.take_all(c));
        release_to_heap(h, c, mine);
        let central = core::mem::take(&mut *CENTRAL[c].lock());
        CENTRAL_BYTES.fetch_sub(central.len() * mcache::class_size(c), Ordering::Relaxed);
        release_to_heap(h, c, central);
    }
}

impl KernelHeap {
    /// A block of class `c` (Go's `mallocgc` small path): from this core's
    /// cache, else a batch from the central list, else a batch from the
    /// heap. None: the heap is full (the caller grows it or fails).
    fn small_alloc(&self, c: usize) -> Option<*mut u8> {
        x86_64::instructions::interrupts::without_interrupts(|| {
            if let Some(p) = with_cache(|m| m.alloc(c)) {
                return Some(p);
            }
            let n = mcache::batch(c);
            let mut got = {
                let mut central = CENTRAL[c].lock();
                let got = central.split_off(n);
                CENTRAL_BYTES.fetch_sub(got.len() * mcache::class_size(c), Ordering::Relaxed);
                got
            };
            if got.is_empty() {
                let mut h = self.heap.lock();
                for _ in 0..n {
                    match h.allocate_first_fit(class_layout(c)) {
                        // SAFETY: a fresh heap block of the class's size, ours.
                        Ok(p) => unsafe { got.push(p.as_ptr()) },
                        Err(()) => break,
                    }
                }
            }
            let p = got.pop()?;
            with_cache(|m| m.refill(c, got));
            Some(p)
        })
    }

    fn small_free(&self, c: usize, p: *mut u8) {
        x86_64::instructions::interrupts::without_interrupts(|| {
            // SAFETY: `p` is a block of class c being freed (GlobalAlloc's
            // contract, and `size_class` is the same function alloc used).
            if let Some(back) = with_cache(|m| unsafe { m.free(c, p) }) {
                CENTRAL_BYTES.fetch_add(back.len() * mcache::class_size(c), Ordering::Relaxed);
                CENTRAL[c].lock().append(back);
            }
        })
    }

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
            // Another core may have grown it while we waited; or the blocks
            // the caches hold may be enough.
            {
                let mut h = self.heap.lock();
                if let Ok(p) = h.allocate_first_fit(layout) {
                    return Some(p.as_ptr());
                }
                flush_caches(&mut h);
                if let Ok(p) = h.allocate_first_fit(layout) {
                    return Some(p.as_ptr());
                }
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
        // A small request takes a whole class block, so that it can be
        // freed into the class's cache whatever its exact size.
        let (layout, small) = match mcache::size_class(layout.size(), layout.align()) {
            Some(c) => {
                if let Some(p) = self.small_alloc(c) {
                    return p;
                }
                (class_layout(c), true)
            }
            None => (layout, false),
        };
        if !small {
            if let Some(p) = self.try_alloc(layout) {
                return p;
            }
        }
        if FIXED.load(Ordering::Relaxed) {
            // The blocks the caches hold may be enough.
            let p = x86_64::instructions::interrupts::without_interrupts(|| {
                let mut h = self.heap.lock();
                flush_caches(&mut h);
                h.allocate_first_fit(layout).ok().map(|p| p.as_ptr())
            });
            if let Some(p) = p {
                return p;
            }
        }
        match self.grow_and_alloc(layout) {
            Some(p) => p,
            None if FIXED.load(Ordering::Relaxed) => out_of_memory(layout, "raise heap="),
            None => out_of_memory(layout, "it does not fit even after growing"),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(c) = mcache::size_class(layout.size(), layout.align()) {
            return self.small_free(c, ptr);
        }
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

/// (used, size) bytes. Blocks held in the small-block caches count as
/// free: they are ready for the next allocation.
pub fn stats() -> (usize, usize) {
    let (used, size) = x86_64::instructions::interrupts::without_interrupts(|| {
        let h = ALLOCATOR.heap.lock();
        (h.used(), h.size())
    });
    let cores = crate::arch::x86_64::percpu::in_use();
    let cached: usize = CACHES[..cores].iter().map(|c| c.bytes.load(Ordering::Relaxed)).sum::<usize>()
        + CENTRAL_BYTES.load(Ordering::Relaxed);
    (used.saturating_sub(cached), size)
}

/// How many times the heap has grown, and whether it may.
pub fn growths() -> (u64, bool) {
    (GROWTHS.load(Ordering::Relaxed), !FIXED.load(Ordering::Relaxed))
}
