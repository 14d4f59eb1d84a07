//! Bitmaps with one bit per P (or per M): Go's `pMask`.
//!
//! Go keeps `sched.idlepMask` and `timerpMask` as `[]uint32` sized by
//! GOMAXPROCS, set and cleared with atomic Or/And on one word. The kernel
//! supports up to [`MAX_PROCS`] (256) cores, more bits than any one machine
//! word holds, so a mask is an array of [`WORDS`] 64-bit words and bit `i`
//! lives in word `i / 64`.
//!
//! Two flavours:
//! - [`PMask`]: atomic words, read without a lock (`stealWork` skips idle
//!   Ps by reading `idlepMask` with no lock held). Setting or clearing a bit
//!   is one atomic RMW on one word, as in Go; a reader of several bits sees
//!   each word at some moment, not all words at one moment, which is all Go
//!   promises too (the mask is a hint, re-checked under `sched.lock`).
//! - [`Mask`]: plain words, for sets that live under a lock (`sched.midle`).
//!
//! Finding a set bit costs `O(WORDS)` word loads (4 for 256 Ps), not one
//! load per P, so scanning for an idle M stays cheap on a big machine.
use core::sync::atomic::{AtomicU64, Ordering};

use crate::order::MAX_PROCS;

/// Words in a mask: enough for [`MAX_PROCS`] bits.
pub const WORDS: usize = (MAX_PROCS as usize).div_ceil(64);

/// The number of words that hold bits `0..limit`.
#[inline]
fn words_below(limit: usize) -> usize {
    limit.div_ceil(64).min(WORDS)
}

#[inline]
fn split(i: usize) -> (usize, u64) {
    assert!(i < WORDS * 64, "pmask: bit {i} out of range (at most {} Ps)", WORDS * 64);
    (i / 64, 1u64 << (i % 64))
}

/// An atomic bitmap of P (or M) ids (Go's `pMask`).
pub struct PMask {
    words: [AtomicU64; WORDS],
}

impl Default for PMask {
    fn default() -> Self {
        Self::new()
    }
}

impl PMask {
    /// All bits clear.
    pub const fn new() -> Self {
        PMask { words: [const { AtomicU64::new(0) }; WORDS] }
    }

    /// Set bit `i` (Go's `pMask.set`: `atomic.Or`).
    #[inline]
    pub fn set(&self, i: usize, order: Ordering) {
        let (w, b) = split(i);
        self.words[w].fetch_or(b, order);
    }

    /// Clear bit `i` (Go's `pMask.clear`: `atomic.And`).
    #[inline]
    pub fn clear(&self, i: usize, order: Ordering) {
        let (w, b) = split(i);
        self.words[w].fetch_and(!b, order);
    }

    /// Is bit `i` set (Go's `pMask.read`)?
    #[inline]
    pub fn read(&self, i: usize, order: Ordering) -> bool {
        let (w, b) = split(i);
        self.words[w].load(order) & b != 0
    }

    /// Clear every bit (each word stored with `order`).
    pub fn clear_all(&self, order: Ordering) {
        for w in &self.words {
            w.store(0, order);
        }
    }

    /// The lowest set bit, if any (each word loaded with `order`).
    pub fn first(&self, order: Ordering) -> Option<usize> {
        self.words.iter().enumerate().find_map(|(wi, w)| {
            let v = w.load(order);
            (v != 0).then(|| wi * 64 + v.trailing_zeros() as usize)
        })
    }

    /// Clear the lowest set bit below `limit` and return it. The clear is
    /// one atomic RMW (with `order`; the loads that find a candidate are
    /// relaxed), so two callers never both take the same bit. Only the
    /// words that hold bits below `limit` are looked at: on a machine with
    /// few cores, one word.
    pub fn take_first(&self, limit: usize, order: Ordering) -> Option<usize> {
        for (wi, w) in self.words[..words_below(limit)].iter().enumerate() {
            let mut v = w.load(Ordering::Relaxed);
            while v != 0 {
                let b = v & v.wrapping_neg();
                let old = w.fetch_and(!b, order);
                if old & b != 0 {
                    return Some(wi * 64 + b.trailing_zeros() as usize);
                }
                v = old & !b;
            }
        }
        None
    }

    /// A snapshot (word by word) as a plain [`Mask`].
    pub fn snapshot(&self, order: Ordering) -> Mask {
        let mut m = Mask::new();
        for (d, w) in m.words.iter_mut().zip(&self.words) {
            *d = w.load(order);
        }
        m
    }
}

/// A plain bitmap of P (or M) ids, for sets kept under a lock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mask {
    words: [u64; WORDS],
}

impl Mask {
    /// All bits clear.
    pub const fn new() -> Self {
        Mask { words: [0; WORDS] }
    }

    /// Set bit `i`.
    #[inline]
    pub fn set(&mut self, i: usize) {
        let (w, b) = split(i);
        self.words[w] |= b;
    }

    /// Clear bit `i`; was it set?
    #[inline]
    pub fn clear(&mut self, i: usize) -> bool {
        let (w, b) = split(i);
        let was = self.words[w] & b != 0;
        self.words[w] &= !b;
        was
    }

    /// Is bit `i` set?
    #[inline]
    pub fn get(&self, i: usize) -> bool {
        let (w, b) = split(i);
        self.words[w] & b != 0
    }

    /// Is no bit set?
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// Number of set bits.
    pub fn count(&self) -> u32 {
        self.words.iter().map(|w| w.count_ones()).sum()
    }

    /// The lowest set bit below `limit` (in the words that hold `0..limit`)
    /// for which `pred` holds. A plain loop over the words, as cheap as the
    /// single-word mask it replaced when `limit <= 64` (`mget`'s path).
    #[inline]
    pub fn find_below(&self, limit: usize, mut pred: impl FnMut(usize) -> bool) -> Option<usize> {
        for wi in 0..words_below(limit) {
            let mut w = self.words[wi];
            while w != 0 {
                let i = wi * 64 + w.trailing_zeros() as usize;
                if pred(i) {
                    return Some(i);
                }
                w &= w - 1;
            }
        }
        None
    }

    /// The set bits, lowest first.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.iter_below(WORDS * 64)
    }

    /// The set bits of the words that hold `0..limit`, lowest first (bits
    /// at or above `limit` in the last such word included).
    pub fn iter_below(&self, limit: usize) -> impl Iterator<Item = usize> + '_ {
        self.words[..words_below(limit)].iter().enumerate().flat_map(|(wi, &w)| {
            let mut v = w;
            core::iter::from_fn(move || {
                (v != 0).then(|| {
                    let i = v.trailing_zeros() as usize;
                    v &= v - 1;
                    wi * 64 + i
                })
            })
        })
    }
}

impl core::fmt::LowerHex for Mask {
    /// The whole mask as one hex number (highest word first, leading zero
    /// words left out), as `{:#x}` of a single word used to print.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let top = self.words.iter().rposition(|&w| w != 0).unwrap_or(0);
        if f.alternate() {
            f.write_str("0x")?;
        }
        write!(f, "{:x}", self.words[top])?;
        for w in self.words[..top].iter().rev() {
            write!(f, "{w:016x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    const R: Ordering = Ordering::Relaxed;

    #[test]
    fn bits_across_words() {
        let m = PMask::new();
        for i in [0, 63, 64, 127, 200, 255] {
            m.set(i, R);
        }
        assert!(m.read(64, R) && m.read(255, R) && !m.read(65, R));
        assert_eq!(m.first(R), Some(0));
        m.clear(0, R);
        m.clear(63, R);
        assert_eq!(m.first(R), Some(64));
        assert_eq!(m.snapshot(R).iter().collect::<Vec<_>>(), vec![64, 127, 200, 255]);
        assert_eq!(m.take_first(64, R), None, "bit 64 is past a limit of 64");
        assert_eq!(m.take_first(65, R), Some(64));
        assert_eq!(m.take_first(256, R), Some(127));
        assert_eq!(m.snapshot(R).iter_below(128).collect::<Vec<_>>(), Vec::<usize>::new());
        assert_eq!(m.snapshot(R).iter_below(201).collect::<Vec<_>>(), vec![200, 255]);
        assert_eq!(m.snapshot(R).find_below(256, |i| i > 200), Some(255));
        assert_eq!(m.snapshot(R).find_below(192, |_| true), None);
        m.clear_all(R);
        assert_eq!(m.first(R), None);
        assert_eq!(m.take_first(WORDS * 64, R), None);
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn a_bit_past_the_end_is_refused() {
        Mask::new().set(WORDS * 64);
    }

    #[test]
    fn hex_prints_like_one_number() {
        let mut m = Mask::new();
        assert_eq!(format!("{m:#x}"), "0x0");
        m.set(4);
        assert_eq!(format!("{m:#x}"), "0x10");
        m.set(64);
        assert_eq!(format!("{m:x}"), "10000000000000010");
    }

    #[test]
    fn take_first_hands_each_bit_to_one_thread() {
        let m = std::sync::Arc::new(PMask::new());
        for i in 0..256 {
            m.set(i, R);
        }
        let got: Vec<Vec<usize>> = (0..4)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || std::iter::from_fn(|| m.take_first(256, Ordering::AcqRel)).collect())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        let mut all: Vec<usize> = got.into_iter().flatten().collect();
        all.sort();
        assert_eq!(all, (0..256).collect::<Vec<_>>());
    }

    proptest! {
        /// Both masks behave as a set of integers below 256.
        #[test]
        fn masks_are_sets(ops in proptest::collection::vec((any::<bool>(), 0usize..256), 0..200)) {
            let (a, mut p, mut want) = (PMask::new(), Mask::new(), BTreeSet::new());
            for (set, i) in ops {
                if set {
                    a.set(i, R);
                    p.set(i);
                    want.insert(i);
                } else {
                    a.clear(i, R);
                    prop_assert_eq!(p.clear(i), want.remove(&i));
                }
                prop_assert_eq!(a.read(i, R), want.contains(&i));
                prop_assert_eq!(p.get(i), want.contains(&i));
            }
            prop_assert_eq!(p.iter().collect::<Vec<_>>(), want.iter().copied().collect::<Vec<_>>());
            prop_assert_eq!(a.snapshot(R), p);
            prop_assert_eq!(a.first(R), want.first().copied());
            prop_assert_eq!(p.count() as usize, want.len());
            prop_assert_eq!(p.find_below(256, |i| i % 3 == 0), want.iter().copied().find(|i| i % 3 == 0));
            prop_assert_eq!(p.is_empty(), want.is_empty());
        }
    }
}
