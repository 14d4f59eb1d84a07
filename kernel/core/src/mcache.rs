//! Small-object caches in front of the kernel heap: the shape of Go's
//! `mcache` (a per-P cache of free objects by size class, `mcache.go`) and
//! `mcentral` (the shared pool a cache refills from and gives back to,
//! `mcentral.go`), over a general-purpose allocator instead of spans.
//!
//! ## Why
//!
//! The kernel heap is `linked_list_allocator`: one lock, a first-fit walk of
//! the free list on every allocation and an address-ordered insert on every
//! free. Both are linear in the number of holes, and a workload with
//! thousands of live goroutines leaves thousands of holes: in `spawn_tree`
//! (4095 goroutines, each node two `Arc`s) a third of the profile's samples
//! fell just after the heap's interrupts-off section.
//!
//! ## The protocol
//!
//! - A request of at most [`MAX_SMALL`] bytes and alignment at most
//!   [`CLASS_ALIGN`] gets a *size class* ([`size_class`]): its size rounded
//!   up to a power of two from 16 to 2048. Every block of class `c` is a
//!   heap block of exactly `Layout(class_size(c), CLASS_ALIGN)`, so blocks of
//!   one class are interchangeable and any of them can go back to the heap
//!   with that layout. Larger or more aligned requests go to the heap as
//!   they are.
//! - Each core has an [`MCache`]: per class, a [`FreeList`] (a LIFO linked
//!   through each free block's first word). Allocating pops; freeing
//!   pushes. Only its own core touches it, with interrupts off, so it needs
//!   no lock and no atomic (Go's `mcache` is per P for the same reason; here
//!   a core is both the M and the place interrupts run, and allocations
//!   happen on g0 and in handlers too, so the cache is per core).
//! - An empty list refills with [`batch`]`(c)` blocks: from the class's
//!   central list (one lock for the whole batch) or, when that is empty,
//!   from the heap (one heap lock for the whole batch).
//! - A list that reaches twice the batch gives a batch back to the central
//!   list ([`MCache::free`] returns it). So a core that frees what another
//!   allocates (a goroutine spawned on one core and exiting on another)
//!   moves blocks in batches, and no core keeps more than
//!   `2 * batch(c) * class_size(c)` bytes of a class.
//! - Before the heap grows or reports that it is out of memory, the central
//!   lists and the caller's own cache go back to the heap (the kernel's
//!   `heap.rs`): memory held in caches is never the reason an allocation
//!   fails.
//!
//! This module is the bookkeeping, host-tested; the kernel's `mem/heap.rs`
//! owns the per-core caches, the central lists and the heap.

/// Number of size classes: 16, 32, 64, ..., 2048 bytes.
pub const NUM_CLASSES: usize = 8;
/// The largest request a class serves; larger ones go to the heap.
pub const MAX_SMALL: usize = 16 << (NUM_CLASSES - 1);
/// The alignment of every class block; more aligned requests go to the heap.
pub const CLASS_ALIGN: usize = 16;

/// The class of a request (Go's `size_to_class8`), or None for the heap.
#[inline]
pub fn size_class(size: usize, align: usize) -> Option<usize> {
    if size > MAX_SMALL || align > CLASS_ALIGN {
        return None;
    }
    let rounded = size.max(16).next_power_of_two();
    Some(rounded.trailing_zeros() as usize - 4)
}

/// Bytes in a block of class `c`.
#[inline]
pub const fn class_size(c: usize) -> usize {
    16 << c
}

/// Blocks moved at a time between a cache and the central list or the heap:
/// about 4 KiB, at least 4 and at most 32 blocks.
#[inline]
pub const fn batch(c: usize) -> usize {
    let n = 4096 / class_size(c);
    if n < 4 {
        4
    } else if n > 32 {
        32
    } else {
        n
    }
}

/// A LIFO of free blocks, each holding the address of the next in its first
/// word. The blocks belong to whoever owns the list.
#[derive(Debug)]
pub struct FreeList {
    head: *mut u8,
    len: usize,
}

// SAFETY: a FreeList is a set of free blocks owned by its holder; moving it
// to another core moves that ownership (the central lists are behind locks).
unsafe impl Send for FreeList {}

impl Default for FreeList {
    fn default() -> Self {
        Self::new()
    }
}

impl FreeList {
    /// An empty list.
    pub const fn new() -> Self {
        FreeList { head: core::ptr::null_mut(), len: 0 }
    }

    /// Blocks on the list.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No blocks?
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Add a free block.
    ///
    /// # Safety
    /// `p` is a free block of at least 8 bytes, aligned to 8, that nothing
    /// else uses until it is popped again.
    #[inline]
    pub unsafe fn push(&mut self, p: *mut u8) {
        // SAFETY: the caller gives us the block, which has room for a pointer.
        unsafe { (p as *mut *mut u8).write(self.head) };
        self.head = p;
        self.len += 1;
    }

    /// Take the block freed last.
    #[inline]
    pub fn pop(&mut self) -> Option<*mut u8> {
        if self.head.is_null() {
            return None;
        }
        let p = self.head;
        // SAFETY: every block on the list was pushed with its link written,
        // and is ours until popped.
        self.head = unsafe { (p as *const *mut u8).read() };
        self.len -= 1;
        Some(p)
    }

    /// Move up to `n` blocks from the front of this list to a new one.
    pub fn split_off(&mut self, n: usize) -> FreeList {
        let mut out = FreeList::new();
        let n = n.min(self.len);
        if n == 0 {
            return out;
        }
        // Walk to the n-th block, cut after it.
        let first = self.head;
        let mut last = first;
        for _ in 1..n {
            // SAFETY: the list has at least n linked blocks.
            last = unsafe { (last as *const *mut u8).read() };
        }
        // SAFETY: `last` is a block of this list, so its first word is its link.
        self.head = unsafe { (last as *const *mut u8).read() };
        // SAFETY: as above; it now ends the list we hand out.
        unsafe { (last as *mut *mut u8).write(core::ptr::null_mut()) };
        self.len -= n;
        out.head = first;
        out.len = n;
        out
    }

    /// Move every block of `other` onto this list (walks `other`).
    pub fn append(&mut self, mut other: FreeList) {
        while let Some(p) = other.pop() {
            // SAFETY: p came off a list, so it is a free block we now own.
            unsafe { self.push(p) };
        }
    }
}

/// One core's cache: a free list per class.
#[derive(Debug, Default)]
pub struct MCache {
    lists: [FreeList; NUM_CLASSES],
}

impl MCache {
    /// A cache holding nothing.
    pub const fn new() -> Self {
        MCache { lists: [const { FreeList::new() }; NUM_CLASSES] }
    }

    /// A block of class `c`, if the cache has one (Go's `nextFreeFast`).
    #[inline]
    pub fn alloc(&mut self, c: usize) -> Option<*mut u8> {
        self.lists[c].pop()
    }

    /// Take back a block of class `c`. When the class's list has reached
    /// twice the batch, returns a batch for the central list.
    ///
    /// # Safety
    /// `p` is a free block of class `c` that nothing else uses.
    #[inline]
    pub unsafe fn free(&mut self, c: usize, p: *mut u8) -> Option<FreeList> {
        let l = &mut self.lists[c];
        // SAFETY: forwarded from the caller.
        unsafe { l.push(p) };
        if l.len() >= 2 * batch(c) {
            Some(l.split_off(batch(c)))
        } else {
            None
        }
    }

    /// Put a refill of class `c` into the cache (Go's `mcache.refill`).
    pub fn refill(&mut self, c: usize, blocks: FreeList) {
        self.lists[c].append(blocks);
    }

    /// Empty the cache of class `c` (to give its blocks back to the heap).
    pub fn take_all(&mut self, c: usize) -> FreeList {
        core::mem::take(&mut self.lists[c])
    }

    /// Blocks of class `c` held.
    pub fn len(&self, c: usize) -> usize {
        self.lists[c].len()
    }

    /// Bytes held in all classes.
    pub fn cached_bytes(&self) -> usize {
        (0..NUM_CLASSES).map(|c| self.lists[c].len() * class_size(c)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::alloc::{alloc, dealloc, Layout};
    use std::collections::HashSet;

    #[test]
    fn classes_cover_small_requests() {
        assert_eq!(size_class(0, 1), Some(0));
        assert_eq!(size_class(1, 1), Some(0));
        assert_eq!(size_class(16, 16), Some(0));
        assert_eq!(size_class(17, 8), Some(1));
        assert_eq!(size_class(2048, 8), Some(NUM_CLASSES - 1));
        assert_eq!(size_class(2049, 8), None);
        assert_eq!(size_class(8, 32), None, "over-aligned requests go to the heap");
        assert_eq!(MAX_SMALL, 2048);
        for c in 0..NUM_CLASSES {
            assert_eq!(size_class(class_size(c), CLASS_ALIGN), Some(c));
            assert!((4..=32).contains(&batch(c)));
        }
    }

    proptest! {
        #[test]
        fn a_class_block_fits_its_request(size in 0usize..4096, align_log in 0u32..7) {
            let align = 1usize << align_log;
            match size_class(size, align) {
                Some(c) => {
                    prop_assert!(size <= class_size(c));
                    prop_assert!(align <= CLASS_ALIGN);
                    // The smallest class that fits: no more than twice the request (or 16).
                    prop_assert!(class_size(c) <= (2 * size).max(16));
                }
                None => prop_assert!(size > MAX_SMALL || align > CLASS_ALIGN),
            }
        }
    }

    fn block() -> *mut u8 {
        // SAFETY: a non-zero size.
        unsafe { alloc(Layout::from_size_align(16, 16).unwrap()) }
    }

    fn release(l: &mut FreeList) {
        while let Some(p) = l.pop() {
            // SAFETY: every test block came from `block()`.
            unsafe { dealloc(p, Layout::from_size_align(16, 16).unwrap()) };
        }
    }

    #[test]
    fn free_list_is_lifo() {
        let mut l = FreeList::new();
        let (a, b) = (block(), block());
        unsafe {
            l.push(a);
            l.push(b);
        }
        assert_eq!(l.len(), 2);
        assert_eq!(l.pop(), Some(b));
        assert_eq!(l.pop(), Some(a));
        assert_eq!(l.pop(), None);
        assert!(l.is_empty());
        unsafe { l.push(a) };
        unsafe { l.push(b) };
        release(&mut l);
    }

    #[test]
    fn cache_gives_back_a_batch_at_twice_the_batch() {
        let c = 0;
        let mut m = MCache::new();
        let mut back = Vec::new();
        for _ in 0..2 * batch(c) - 1 {
            assert!(unsafe { m.free(c, block()) }.is_none());
        }
        let b = unsafe { m.free(c, block()) }.expect("the list reached twice the batch");
        assert_eq!(b.len(), batch(c));
        assert_eq!(m.len(c), batch(c));
        assert_eq!(m.cached_bytes(), batch(c) * class_size(c));
        back.push(b);
        let mut rest = m.take_all(c);
        assert_eq!(m.len(c), 0);
        release(&mut rest);
        for mut b in back {
            release(&mut b);
        }
    }

    proptest! {
        /// Random pushes, pops, splits and appends over two lists against a
        /// model: no block is lost or appears twice, lengths always match.
        #[test]
        fn lists_never_lose_or_duplicate_blocks(ops in prop::collection::vec((0u8..5, 0usize..40), 1..300)) {
            let mut lists = [FreeList::new(), FreeList::new()];
            let mut model: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
            for (i, (op, n)) in ops.into_iter().enumerate() {
                let k = i % 2;
                match op {
                    0 | 1 => {
                        let p = block();
                        unsafe { lists[k].push(p) };
                        model[k].push(p as usize);
                    }
                    2 => {
                        let got = lists[k].pop().map(|p| p as usize);
                        prop_assert_eq!(got, model[k].pop());
                        if let Some(p) = got {
                            unsafe { dealloc(p as *mut u8, Layout::from_size_align(16, 16).unwrap()) };
                        }
                    }
                    3 => {
                        let cut = lists[k].split_off(n);
                        let m = n.min(model[k].len());
                        let at = model[k].len() - m;
                        let moved: Vec<usize> = model[k].split_off(at);
                        prop_assert_eq!(cut.len(), moved.len());
                        // The other list takes them: append pops the cut's front first.
                        lists[1 - k].append(cut);
                        for p in moved.into_iter().rev() {
                            model[1 - k].push(p);
                        }
                    }
                    _ => {
                        let all = core::mem::take(&mut lists[k]);
                        lists[1 - k].append(all);
                        let moved = core::mem::take(&mut model[k]);
                        for p in moved.into_iter().rev() {
                            model[1 - k].push(p);
                        }
                    }
                }
                prop_assert_eq!(lists[0].len(), model[0].len());
                prop_assert_eq!(lists[1].len(), model[1].len());
            }
            // Drain both: exactly the model's blocks, in the model's order, each once.
            let mut seen = HashSet::new();
            for k in 0..2 {
                while let Some(p) = lists[k].pop() {
                    prop_assert_eq!(Some(p as usize), model[k].pop());
                    prop_assert!(seen.insert(p as usize));
                    unsafe { dealloc(p, Layout::from_size_align(16, 16).unwrap()) };
                }
                prop_assert!(model[k].is_empty());
            }
        }
    }
}
