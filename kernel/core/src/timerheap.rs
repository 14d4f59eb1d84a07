//! The per-P timer heap: a 4-ary min-heap keyed by deadline, as in Go's
//! `time.go` (`pp.timers`, `siftupTimer`, `siftdownTimer`).
//!
//! # Why 4-ary
//!
//! A timer heap is pushed to often (every `sleep`) and popped in bursts. A
//! 4-ary heap is half as deep as a binary one, so sifting up (push) touches
//! half as many levels, and the four children of a node sit next to each
//! other in memory, so sifting down (pop) compares them within one or two
//! cache lines. Go made the same trade.
//!
//! Layout: element `i` has parent `(i - 1) / 4` and children `4i + 1 ..= 4i + 4`.
//! Invariant: every element's `when` is `>=` its parent's. Equal deadlines may
//! come out in any order.
//!
//! Growable, like Go's slice `pp.timers`: the entries live in a `Vec` that
//! doubles when full, so a P holds as many timers as memory allows (Go has
//! no limit either). [`TimerHeap::try_push`] reports an allocation failure
//! instead of aborting, so that the kernel can name it ("out of memory for
//! timers"); [`TimerHeap::shrink`] gives memory back after a burst. Not
//! thread-safe: Go guards `pp.timers` with `pp.timersLock`, and so must the
//! kernel.

use alloc::collections::TryReserveError;
use alloc::vec::Vec;

/// A growable 4-ary min-heap of `(when, T)`.
#[derive(Clone, Debug)]
pub struct TimerHeap<T: Copy> {
    slots: Vec<(u64, T)>,
}

impl<T: Copy> Default for TimerHeap<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy> TimerHeap<T> {
    /// An empty heap (allocates nothing until the first push).
    pub const fn new() -> Self {
        TimerHeap { slots: Vec::new() }
    }

    /// Number of timers.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when there is no timer.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Timers the heap can hold before it must grow.
    pub fn capacity(&self) -> usize {
        self.slots.capacity()
    }

    fn when(&self, i: usize) -> u64 {
        self.slots[i].0
    }

    /// Adds a timer firing at `when` (nanoseconds). O(log4 n), amortised
    /// (the vector doubles when full). Fails only if memory for the larger
    /// vector cannot be had; the heap is then unchanged.
    pub fn try_push(&mut self, when: u64, value: T) -> Result<(), TryReserveError> {
        self.slots.try_reserve(1)?;
        self.slots.push((when, value));
        self.sift_up(self.slots.len() - 1);
        Ok(())
    }

    /// As [`TimerHeap::try_push`], aborting on allocation failure (the
    /// global allocator's out-of-memory handler).
    pub fn push(&mut self, when: u64, value: T) {
        self.slots.push((when, value));
        self.sift_up(self.slots.len() - 1);
    }

    /// Gives memory back when at most a quarter of the capacity is used
    /// (after a burst of timers), keeping room for twice the current count.
    pub fn shrink(&mut self) {
        let (len, cap) = (self.slots.len(), self.slots.capacity());
        if cap > 64 && len <= cap / 4 {
            self.slots.shrink_to((2 * len).max(64));
        }
    }

    /// The earliest timer (Go keeps its `when` in `pp.timer0When`).
    pub fn peek(&self) -> Option<(u64, &T)> {
        self.slots.first().map(|(w, v)| (*w, v))
    }

    /// The earliest deadline, if any.
    pub fn next_when(&self) -> Option<u64> {
        self.peek().map(|(w, _)| w)
    }

    /// Removes and returns the earliest timer.
    pub fn pop(&mut self) -> Option<(u64, T)> {
        if self.slots.is_empty() {
            return None;
        }
        Some(self.remove_at(0))
    }

    /// Removes and returns the earliest timer if it is due (`when <= now`),
    /// the step `runtimer` repeats in `checkTimers`.
    pub fn pop_expired(&mut self, now: u64) -> Option<(u64, T)> {
        match self.next_when() {
            Some(w) if w <= now => self.pop(),
            _ => None,
        }
    }

    /// Removes the first timer (in heap order) for which `pred(when, &value)`
    /// holds, for cancelling (Go: `deltimer` + `dodeltimer`). O(n) scan, then
    /// one sift.
    pub fn remove_where(&mut self, mut pred: impl FnMut(u64, &T) -> bool) -> Option<(u64, T)> {
        let i = self.slots.iter().position(|(w, v)| pred(*w, v))?;
        Some(self.remove_at(i))
    }

    /// Iterates over all timers in heap order (not sorted).
    pub fn iter(&self) -> impl Iterator<Item = (u64, &T)> + '_ {
        self.slots.iter().map(|(w, v)| (*w, v))
    }

    /// Removes every timer.
    pub fn clear(&mut self) {
        self.slots.clear();
    }

    /// Removes element `i`: the last element takes its place and is then
    /// sifted whichever way it needs to go (it may be smaller than `i`'s
    /// parent, or larger than `i`'s children; only one sift will move it).
    fn remove_at(&mut self, i: usize) -> (u64, T) {
        let removed = self.slots.swap_remove(i);
        if i < self.slots.len() {
            self.sift_up(i);
            self.sift_down(i);
        }
        removed
    }

    /// Moves element `i` up while it is earlier than its parent. Instead of
    /// swapping at every level we shift the parents down and write the moving
    /// element once, at its final place.
    fn sift_up(&mut self, mut i: usize) {
        let moving = self.slots[i];
        while i > 0 {
            let parent = (i - 1) / 4;
            if moving.0 >= self.when(parent) {
                break;
            }
            self.slots[i] = self.slots[parent];
            i = parent;
        }
        self.slots[i] = moving;
    }

    /// Moves element `i` down while one of its (up to four) children is
    /// earlier, always following the earliest child.
    fn sift_down(&mut self, mut i: usize) {
        let moving = self.slots[i];
        let len = self.slots.len();
        loop {
            let first = 4 * i + 1;
            if first >= len {
                break;
            }
            let end = (first + 4).min(len);
            let mut child = first;
            for c in first + 1..end {
                if self.when(c) < self.when(child) {
                    child = c;
                }
            }
            if self.when(child) >= moving.0 {
                break;
            }
            self.slots[i] = self.slots[child];
            i = child;
        }
        self.slots[i] = moving;
    }

    /// Checks the heap invariant (for tests and debug assertions).
    pub fn is_valid_heap(&self) -> bool {
        (1..self.slots.len()).all(|i| self.when((i - 1) / 4) <= self.when(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pops_in_deadline_order() {
        let mut h: TimerHeap<u32> = TimerHeap::new();
        assert!(h.is_empty());
        assert_eq!(h.pop(), None);
        assert_eq!(h.peek(), None);
        let whens = [50u64, 10, 40, 10, 99, 0, 7, 7, 1000, 3, 60, 60, 2];
        for (i, &w) in whens.iter().enumerate() {
            h.push(w, i as u32);
            assert!(h.is_valid_heap());
        }
        assert_eq!(h.len(), whens.len());
        let mut sorted = whens.to_vec();
        sorted.sort_unstable();
        for &w in &sorted {
            let (got, idx) = h.pop().unwrap();
            assert_eq!(got, w);
            assert_eq!(whens[idx as usize], w);
            assert!(h.is_valid_heap());
        }
        assert!(h.is_empty());
    }

    #[test]
    fn grows_past_any_fixed_size_and_shrinks_back() {
        // The old fixed heap held 16 384 timers per P; far more must fit.
        let mut h: TimerHeap<u32> = TimerHeap::new();
        assert_eq!(h.capacity(), 0);
        let n = 100_000u32;
        for i in 0..n {
            // A scrambled order of deadlines, with duplicates.
            h.try_push(((i as u64) * 7919) % 50_000, i).unwrap();
        }
        assert_eq!(h.len(), n as usize);
        assert!(h.is_valid_heap());
        let mut last = 0;
        for _ in 0..n - 10 {
            let (w, _) = h.pop().unwrap();
            assert!(w >= last);
            last = w;
        }
        h.shrink();
        assert!(h.capacity() < 1000, "capacity {} after shrinking to 10 timers", h.capacity());
        assert_eq!(h.len(), 10);
        assert!(h.is_valid_heap());
        for _ in 0..10 {
            let (w, _) = h.pop().unwrap();
            assert!(w >= last);
            last = w;
        }
        assert!(h.is_empty());
    }

    #[test]
    fn pop_expired_respects_now() {
        let mut h: TimerHeap<char> = TimerHeap::new();
        h.push(30, 'c');
        h.push(10, 'a');
        h.push(20, 'b');
        assert_eq!(h.pop_expired(9), None);
        assert_eq!(h.pop_expired(10), Some((10, 'a')));
        assert_eq!(h.pop_expired(25), Some((20, 'b')));
        assert_eq!(h.pop_expired(25), None);
        assert_eq!(h.peek(), Some((30, &'c')));
        assert_eq!(h.pop_expired(u64::MAX), Some((30, 'c')));
        assert_eq!(h.pop_expired(u64::MAX), None);
    }

    #[test]
    fn remove_where_cancels_and_keeps_heap() {
        let mut h: TimerHeap<u32> = TimerHeap::new();
        for i in 0..20u32 {
            h.push(((i * 7919) % 23) as u64, i);
        }
        assert_eq!(h.remove_where(|_, &v| v == 100), None);
        let (w, v) = h.remove_where(|_, &v| v == 5).unwrap();
        assert_eq!((w, v), ((5 * 7919 % 23) as u64, 5));
        assert!(h.is_valid_heap());
        assert_eq!(h.len(), 19);
        assert!(h.iter().all(|(_, &v)| v != 5));
        // Remove the root and the last element too.
        let root = h.peek().map(|(_, &v)| v).unwrap();
        h.remove_where(|_, &v| v == root).unwrap();
        assert!(h.is_valid_heap());
        let last = h.slots[h.len() - 1].1;
        h.remove_where(|_, &v| v == last).unwrap();
        assert!(h.is_valid_heap());
        assert_eq!(h.len(), 17);
        h.clear();
        assert!(h.is_empty() && h.is_valid_heap());
    }

    #[derive(Clone, Debug)]
    enum Op {
        Push(u64),
        Pop,
        PopExpired(u64),
        Remove(u32),
        Shrink,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u64..64).prop_map(Op::Push),
            2 => Just(Op::Pop),
            1 => (0u64..64).prop_map(Op::PopExpired),
            1 => (0u32..200).prop_map(Op::Remove),
            1 => Just(Op::Shrink),
        ]
    }

    proptest! {
        /// Random operations against a plain Vec model: same multiset, same
        /// minimum deadline, heap property after every step.
        #[test]
        fn matches_sorted_model(ops in proptest::collection::vec(op(), 0..600)) {
            let mut h: TimerHeap<u32> = TimerHeap::new();
            let mut model: Vec<(u64, u32)> = Vec::new();
            let mut next_id = 0u32;
            for op in ops {
                match op {
                    Op::Push(w) => {
                        prop_assert!(h.try_push(w, next_id).is_ok());
                        model.push((w, next_id));
                        next_id += 1;
                    }
                    Op::Shrink => h.shrink(),
                    Op::Pop | Op::PopExpired(_) => {
                        let now = if let Op::PopExpired(n) = op { n } else { u64::MAX };
                        let min = model.iter().map(|e| e.0).min();
                        let got = h.pop_expired(now);
                        match min {
                            Some(m) if m <= now => {
                                let (w, v) = got.expect("a due timer was not popped");
                                prop_assert_eq!(w, m);
                                let at = model.iter().position(|e| *e == (w, v));
                                prop_assert!(at.is_some(), "popped an unknown timer");
                                model.swap_remove(at.unwrap());
                            }
                            _ => prop_assert_eq!(got, None),
                        }
                    }
                    Op::Remove(id) => {
                        let got = h.remove_where(|_, &v| v == id);
                        let at = model.iter().position(|e| e.1 == id);
                        prop_assert_eq!(got, at.map(|i| model.swap_remove(i)));
                    }
                }
                prop_assert!(h.is_valid_heap());
                prop_assert_eq!(h.len(), model.len());
                prop_assert_eq!(h.next_when(), model.iter().map(|e| e.0).min());
            }
            let mut rest: Vec<(u64, u32)> = core::iter::from_fn(|| h.pop()).collect();
            let whens: Vec<u64> = rest.iter().map(|e| e.0).collect();
            prop_assert!(whens.windows(2).all(|w| w[0] <= w[1]), "not sorted: {:?}", whens);
            rest.sort_unstable();
            model.sort_unstable();
            prop_assert_eq!(rest, model);
        }
    }
}
