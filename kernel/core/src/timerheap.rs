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
//! No allocation: the heap is a fixed array of `N` entries. The kernel sizes
//! `N` per P, and treats [`Full`] as "too many timers" (a fatal error or a
//! fall-back path, its choice). Not thread-safe: Go guards `pp.timers` with
//! `pp.timersLock`, and so must the kernel.

use core::fmt;

/// The heap has `N` entries already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

impl fmt::Display for Full {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timer heap is full")
    }
}

/// A 4-ary min-heap of `(when, T)` with room for `N` timers.
#[derive(Clone, Debug)]
pub struct TimerHeap<T: Copy, const N: usize> {
    len: usize,
    /// `slots[..len]` are `Some`, the rest `None`.
    slots: [Option<(u64, T)>; N],
}

impl<T: Copy, const N: usize> Default for TimerHeap<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy, const N: usize> TimerHeap<T, N> {
    /// An empty heap.
    pub const fn new() -> Self {
        TimerHeap { len: 0, slots: [None; N] }
    }

    /// Initialise a heap in place at `p`, without building it on the stack
    /// first (the kernel allocates big heaps directly on its heap).
    ///
    /// # Safety
    /// `p` must be valid for writes and aligned for `Self`; whatever it held
    /// is overwritten without being dropped.
    pub unsafe fn init_in_place(p: *mut Self) {
        // SAFETY: the caller guarantees `p` is writable and aligned; every
        // field is written through raw pointers, never through a reference
        // to uninitialised memory.
        unsafe {
            core::ptr::addr_of_mut!((*p).len).write(0);
            let slots = core::ptr::addr_of_mut!((*p).slots) as *mut Option<(u64, T)>;
            for i in 0..N {
                slots.add(i).write(None);
            }
        }
    }

    /// Number of timers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there is no timer.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// The entry at `i < len`.
    fn at(&self, i: usize) -> (u64, T) {
        self.slots[i].expect("timer heap: slot below len is empty")
    }

    fn when(&self, i: usize) -> u64 {
        self.at(i).0
    }

    /// Adds a timer firing at `when` (nanoseconds). O(log4 n).
    pub fn push(&mut self, when: u64, value: T) -> Result<(), Full> {
        if self.len == N {
            return Err(Full);
        }
        self.slots[self.len] = Some((when, value));
        self.len += 1;
        self.sift_up(self.len - 1);
        Ok(())
    }

    /// The earliest timer (Go keeps its `when` in `pp.timer0When`).
    pub fn peek(&self) -> Option<(u64, &T)> {
        match &self.slots[..self.len] {
            [Some((when, v)), ..] => Some((*when, v)),
            _ => None,
        }
    }

    /// The earliest deadline, if any.
    pub fn next_when(&self) -> Option<u64> {
        self.peek().map(|(w, _)| w)
    }

    /// Removes and returns the earliest timer.
    pub fn pop(&mut self) -> Option<(u64, T)> {
        if self.len == 0 {
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
        let i = (0..self.len).find(|&i| {
            let (w, v) = self.at(i);
            pred(w, &v)
        })?;
        Some(self.remove_at(i))
    }

    /// Iterates over all timers in heap order (not sorted).
    pub fn iter(&self) -> impl Iterator<Item = (u64, &T)> + '_ {
        self.slots[..self.len].iter().flatten().map(|(w, v)| (*w, v))
    }

    /// Removes every timer.
    pub fn clear(&mut self) {
        self.slots[..self.len].fill(None);
        self.len = 0;
    }

    /// Removes element `i`: the last element takes its place and is then
    /// sifted whichever way it needs to go (it may be smaller than `i`'s
    /// parent, or larger than `i`'s children; only one sift will move it).
    fn remove_at(&mut self, i: usize) -> (u64, T) {
        let removed = self.at(i);
        let last = self.len - 1;
        self.slots[i] = self.slots[last];
        self.slots[last] = None;
        self.len = last;
        if i < last {
            self.sift_up(i);
            self.sift_down(i);
        }
        removed
    }

    /// Moves element `i` up while it is earlier than its parent. Instead of
    /// swapping at every level we shift the parents down and write the moving
    /// element once, at its final place.
    fn sift_up(&mut self, mut i: usize) {
        let moving = self.at(i);
        while i > 0 {
            let parent = (i - 1) / 4;
            if moving.0 >= self.when(parent) {
                break;
            }
            self.slots[i] = self.slots[parent];
            i = parent;
        }
        self.slots[i] = Some(moving);
    }

    /// Moves element `i` down while one of its (up to four) children is
    /// earlier, always following the earliest child.
    fn sift_down(&mut self, mut i: usize) {
        let moving = self.at(i);
        loop {
            let first = 4 * i + 1;
            if first >= self.len {
                break;
            }
            let end = (first + 4).min(self.len);
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
        self.slots[i] = Some(moving);
    }

    /// Checks the heap invariant (for tests and debug assertions).
    pub fn is_valid_heap(&self) -> bool {
        self.slots[..self.len].iter().all(Option::is_some)
            && self.slots[self.len..].iter().all(Option::is_none)
            && (1..self.len).all(|i| self.when((i - 1) / 4) <= self.when(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pops_in_deadline_order() {
        let mut h: TimerHeap<u32, 64> = TimerHeap::new();
        assert!(h.is_empty());
        assert_eq!(h.pop(), None);
        assert_eq!(h.peek(), None);
        let whens = [50u64, 10, 40, 10, 99, 0, 7, 7, 1000, 3, 60, 60, 2];
        for (i, &w) in whens.iter().enumerate() {
            h.push(w, i as u32).unwrap();
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
    fn full_heap_rejects_push() {
        let mut h: TimerHeap<(), 3> = TimerHeap::new();
        assert_eq!(h.capacity(), 3);
        for w in [3, 2, 1] {
            h.push(w, ()).unwrap();
        }
        assert_eq!(h.push(0, ()), Err(Full));
        assert_eq!(h.len(), 3);
        assert_eq!(h.next_when(), Some(1));
        assert_eq!(Full.to_string(), "timer heap is full");
        h.pop();
        h.push(0, ()).unwrap();
        assert_eq!(h.next_when(), Some(0));
    }

    #[test]
    fn pop_expired_respects_now() {
        let mut h: TimerHeap<char, 8> = TimerHeap::new();
        h.push(30, 'c').unwrap();
        h.push(10, 'a').unwrap();
        h.push(20, 'b').unwrap();
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
        let mut h: TimerHeap<u32, 32> = TimerHeap::new();
        for i in 0..20u32 {
            h.push(((i * 7919) % 23) as u64, i).unwrap();
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
        let last = h.slots[h.len() - 1].unwrap().1;
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
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u64..64).prop_map(Op::Push),
            2 => Just(Op::Pop),
            1 => (0u64..64).prop_map(Op::PopExpired),
            1 => (0u32..200).prop_map(Op::Remove),
        ]
    }

    proptest! {
        /// Random operations against a plain Vec model: same multiset, same
        /// minimum deadline, heap property after every step.
        #[test]
        fn matches_sorted_model(ops in proptest::collection::vec(op(), 0..300)) {
            let mut h: TimerHeap<u32, 48> = TimerHeap::new();
            let mut model: Vec<(u64, u32)> = Vec::new();
            let mut next_id = 0u32;
            for op in ops {
                match op {
                    Op::Push(w) => {
                        let r = h.push(w, next_id);
                        if model.len() == 48 {
                            prop_assert_eq!(r, Err(Full));
                        } else {
                            prop_assert_eq!(r, Ok(()));
                            model.push((w, next_id));
                        }
                        next_id += 1;
                    }
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
