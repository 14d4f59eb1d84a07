//! The waiters of one semaphore root, keyed by address: the data structure
//! behind Go's `semaRoot` (`runtime/sema.go`).
//!
//! Go hashes every semaphore address into one of 251 roots. Many addresses
//! can share a root, so a root keeps a *search tree keyed by address* (a
//! treap in Go), and each tree node holds the FIFO list of the goroutines
//! waiting on that one address. Finding an address's waiters is then
//! O(log n) in the number of distinct addresses waited on in the root,
//! whatever the number of waiters: 20 000 goroutines asleep on one address
//! do not slow down a semaphore on another address that hashes to the same
//! root.
//!
//! Here the tree is the standard library's B-tree (`BTreeMap`, balanced,
//! O(log n)), and each node's list is a `VecDeque`. A treap built from the
//! sudogs themselves, as Go does, would allocate nothing. A B-tree allocates
//! a node when it goes from empty to one key and frees it when it empties
//! again, which is every round of a semaphore ping-pong (two goroutines
//! taking turns to sleep on one address each): that doubled the cost of a
//! round. So the first [`SMALL`] addresses with waiters live in a small
//! array, searched linearly, whose room is kept; the tree holds only the
//! addresses beyond those (a root crowded by many distinct addresses). An
//! address's list is allocated the first time it gets a waiter, and a few
//! empty lists are kept aside and reused. In the steady state of a
//! ping-pong or a contended mutex nothing is allocated; lookups stay
//! O(SMALL + log n).
//!
//! Not thread-safe: the kernel guards each root with the root's lock, as Go
//! does with `semaRoot.lock`.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

/// Empty lists kept for reuse.
const SPARE_LISTS: usize = 8;

/// Addresses kept in the small array before the tree is used.
pub const SMALL: usize = 4;

/// The waiters of one root: per address, a FIFO of `W`s.
#[derive(Debug, Default)]
pub struct SemaTree<W> {
    /// Up to [`SMALL`] addresses and their lists, in no order. Its room is
    /// reserved once and never given back.
    small: Vec<(usize, VecDeque<W>)>,
    /// The other addresses. An address is in `small` or here, never both.
    tree: BTreeMap<usize, VecDeque<W>>,
    spare: Vec<VecDeque<W>>,
    waiters: usize,
}

impl<W> SemaTree<W> {
    /// An empty tree (allocates nothing).
    pub const fn new() -> Self {
        SemaTree { small: Vec::new(), tree: BTreeMap::new(), spare: Vec::new(), waiters: 0 }
    }

    fn small_index(&self, addr: usize) -> Option<usize> {
        self.small.iter().position(|(a, _)| *a == addr)
    }

    /// The list of `addr`, if it has waiters.
    fn list(&self, addr: usize) -> Option<&VecDeque<W>> {
        match self.small_index(addr) {
            Some(i) => Some(&self.small[i].1),
            None => self.tree.get(&addr),
        }
    }

    /// Go's `semaRoot.queue`: add `w` as a waiter on `addr`, at the back of
    /// that address's list, or at its front with `lifo` (the mutex requeues
    /// a waiter that was woken and lost the race at the front).
    pub fn queue(&mut self, addr: usize, w: W, lifo: bool) {
        let list = if let Some(i) = self.small_index(addr) {
            &mut self.small[i].1
        } else if self.tree.contains_key(&addr) {
            self.tree.get_mut(&addr).expect("just checked")
        } else {
            let fresh = self.spare.pop().unwrap_or_default();
            if self.small.len() < SMALL {
                // Room for SMALL entries the first time, then never again.
                if self.small.capacity() < SMALL {
                    self.small.reserve_exact(SMALL - self.small.len());
                }
                self.small.push((addr, fresh));
                &mut self.small.last_mut().expect("just pushed").1
            } else {
                self.tree.entry(addr).or_insert(fresh)
            }
        };
        if lifo {
            list.push_front(w);
        } else {
            list.push_back(w);
        }
        self.waiters += 1;
    }

    /// Go's `semaRoot.dequeue`: remove and return the first waiter on
    /// `addr`; an address left with no waiter leaves the tree.
    pub fn dequeue(&mut self, addr: usize) -> Option<W> {
        self.take(addr, |l| l.pop_front())
    }

    /// Remove the first waiter on `addr` for which `pred` holds (a waiter
    /// that gives up, as `notifyList` and timed waits do in Go).
    pub fn remove_where(&mut self, addr: usize, mut pred: impl FnMut(&W) -> bool) -> Option<W> {
        self.take(addr, |l| {
            let i = l.iter().position(&mut pred)?;
            l.remove(i)
        })
    }

    /// Take a waiter from `addr`'s list with `f`; an emptied list leaves.
    fn take(&mut self, addr: usize, f: impl FnOnce(&mut VecDeque<W>) -> Option<W>) -> Option<W> {
        let w;
        if let Some(i) = self.small_index(addr) {
            w = f(&mut self.small[i].1);
            if self.small[i].1.is_empty() {
                let (_, list) = self.small.swap_remove(i);
                self.recycle(list);
            }
        } else {
            let list = self.tree.get_mut(&addr)?;
            w = f(list);
            if list.is_empty() {
                let list = self.tree.remove(&addr).expect("the list just looked at");
                self.recycle(list);
            }
        }
        if w.is_some() {
            self.waiters -= 1;
        }
        w
    }

    fn recycle(&mut self, list: VecDeque<W>) {
        // Keep only small lists: a burst of 20 000 waiters on one address
        // should give its memory back when they are gone.
        if self.spare.len() < SPARE_LISTS && list.capacity() <= 64 {
            self.spare.push(list);
        }
    }

    /// Waiters on `addr`.
    pub fn waiters_on(&self, addr: usize) -> usize {
        self.list(addr).map_or(0, VecDeque::len)
    }

    /// All waiters in the root.
    pub fn len(&self) -> usize {
        self.waiters
    }

    /// No waiter at all?
    pub fn is_empty(&self) -> bool {
        self.waiters == 0
    }

    /// Distinct addresses with waiters.
    pub fn addresses(&self) -> usize {
        self.small.len() + self.tree.len()
    }

    /// Addresses that spilled into the B-tree (beyond [`SMALL`]).
    pub fn tree_addresses(&self) -> usize {
        self.tree.len()
    }

    /// The waiters of `addr`, first to be woken first.
    pub fn iter_addr(&self, addr: usize) -> impl Iterator<Item = &W> + '_ {
        self.list(addr).into_iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn fifo_per_address_and_lifo_at_the_front() {
        let mut t: SemaTree<u32> = SemaTree::new();
        assert!(t.is_empty());
        assert_eq!(t.dequeue(8), None);
        t.queue(8, 1, false);
        t.queue(16, 100, false);
        t.queue(8, 2, false);
        t.queue(8, 0, true);
        assert_eq!((t.len(), t.addresses(), t.waiters_on(8)), (4, 2, 3));
        assert_eq!(t.iter_addr(8).copied().collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(t.dequeue(8), Some(0));
        assert_eq!(t.dequeue(8), Some(1));
        assert_eq!(t.dequeue(16), Some(100));
        assert_eq!(t.addresses(), 1);
        assert_eq!(t.dequeue(16), None);
        assert_eq!(t.remove_where(8, |&w| w == 2), Some(2));
        assert!(t.is_empty() && t.addresses() == 0);
    }

    #[test]
    fn ping_pong_reuses_its_memory() {
        // Two addresses taking turns, as sema_pingpong does: after the
        // first round nothing is allocated (the small array's buffer and
        // the lists stay where they are) and the tree is never used.
        let mut t: SemaTree<u32> = SemaTree::new();
        t.queue(8, 0, false);
        t.dequeue(8);
        let buf = t.small.as_ptr();
        for i in 0..1000 {
            t.queue(8, i, false);
            t.queue(16, i, false);
            assert_eq!(t.dequeue(8), Some(i));
            assert_eq!(t.dequeue(16), Some(i));
            assert_eq!(t.small.as_ptr(), buf);
            assert_eq!(t.tree_addresses(), 0);
        }
        assert!(t.is_empty() && t.addresses() == 0);
        // A fifth address goes to the tree, and leaves it.
        for a in 1..=SMALL + 1 {
            t.queue(a * 8, a as u32, false);
        }
        assert_eq!((t.addresses(), t.tree_addresses()), (SMALL + 1, 1));
        for a in 1..=SMALL + 1 {
            assert_eq!(t.dequeue(a * 8), Some(a as u32));
        }
        assert!(t.is_empty() && t.addresses() == 0);
    }

    #[test]
    fn many_waiters_on_one_address_do_not_hide_another() {
        let mut t: SemaTree<u32> = SemaTree::new();
        for i in 0..20_000 {
            t.queue(0x1000, i, false);
        }
        t.queue(0x2000, 7, false);
        assert_eq!(t.dequeue(0x2000), Some(7));
        assert_eq!(t.waiters_on(0x1000), 20_000);
        for i in 0..20_000 {
            assert_eq!(t.dequeue(0x1000), Some(i));
        }
        assert!(t.is_empty());
        // The big list was not kept aside.
        assert!(t.spare.iter().all(|l| l.capacity() <= 64));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Queue(usize, bool),
        Dequeue(usize),
        Remove(usize, u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            // 12 addresses: more than SMALL, so some spill into the B-tree.
            4 => (0usize..12, any::<bool>()).prop_map(|(a, l)| Op::Queue(a * 8, l)),
            3 => (0usize..12).prop_map(|a| Op::Dequeue(a * 8)),
            1 => (0usize..12, 0u32..300).prop_map(|(a, w)| Op::Remove(a * 8, w)),
        ]
    }

    proptest! {
        /// Random operations against a map of VecDeques: same waiters in
        /// the same order per address, same counts, empty addresses gone.
        #[test]
        fn matches_model(ops in proptest::collection::vec(op(), 0..400)) {
            let mut t: SemaTree<u32> = SemaTree::new();
            let mut model: HashMap<usize, VecDeque<u32>> = HashMap::new();
            let mut next = 0u32;
            for op in ops {
                match op {
                    Op::Queue(a, lifo) => {
                        t.queue(a, next, lifo);
                        let l = model.entry(a).or_default();
                        if lifo { l.push_front(next) } else { l.push_back(next) }
                        next += 1;
                    }
                    Op::Dequeue(a) => {
                        let want = model.get_mut(&a).and_then(|l| l.pop_front());
                        prop_assert_eq!(t.dequeue(a), want);
                    }
                    Op::Remove(a, w) => {
                        let want = model.get_mut(&a).and_then(|l| {
                            let i = l.iter().position(|&x| x == w)?;
                            l.remove(i)
                        });
                        prop_assert_eq!(t.remove_where(a, |&x| x == w), want);
                    }
                }
                model.retain(|_, l| !l.is_empty());
                prop_assert_eq!(t.len(), model.values().map(|l| l.len()).sum::<usize>());
                prop_assert_eq!(t.addresses(), model.len());
                prop_assert!(t.small.len() <= SMALL);
                prop_assert!(t.small.iter().all(|(a, _)| !t.tree.contains_key(a)));
                for (a, l) in &model {
                    prop_assert_eq!(t.iter_addr(*a).copied().collect::<Vec<_>>(), l.iter().copied().collect::<Vec<_>>());
                }
            }
        }
    }
}
