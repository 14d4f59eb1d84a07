//! A tiny per-M pseudo-random generator: Go's `cheaprand` / `cheaprandn`.
//!
//! The scheduler needs randomness in three places: the start and stride of the
//! steal order ([`crate::order`]), the coin flip of `schedrandom=1`, and the
//! shuffles that mode applies to batches. None of it needs to be good, only
//! cheap and different on every core. Go keeps one state word per M and steps
//! it with wyrand (a 64-bit add followed by a 64x64->128 multiply that is
//! folded back to 64 bits); we do the same. Each core owns its own
//! [`FastRand`], so there is no sharing and no atomics.
//!
//! `cheaprandn(n)` maps a 32-bit random value `x` into `0..n` as
//! `(x * n) >> 32` (Lemire's multiply-shift), which avoids a division; its bias
//! is at most `n / 2^32`, irrelevant here.

/// Added to the state on every step (the wyrand increment, an odd constant).
const WY_INC: u64 = 0xa076_1d64_78bd_642f;
/// XORed into one multiplicand (the second wyrand constant).
const WY_XOR: u64 = 0xe703_7ed1_a0b4_28db;

/// Per-M random state (Go: `m.cheaprand`).
#[derive(Clone, Debug)]
pub struct FastRand {
    state: u64,
}

impl FastRand {
    /// A generator seeded with `seed`. Any value is fine, including 0; give
    /// each core a different one (e.g. `mix64(tsc ^ apic_id)`).
    pub const fn new(seed: u64) -> Self {
        FastRand { state: seed }
    }

    /// Reseeds the generator.
    pub fn seed(&mut self, seed: u64) {
        self.state = seed;
    }

    /// 64 random bits (one wyrand step).
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(WY_INC);
        let product = (self.state as u128) * ((self.state ^ WY_XOR) as u128);
        ((product >> 64) as u64) ^ (product as u64)
    }

    /// 32 random bits (Go: `cheaprand()`).
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        let x = self.next_u64();
        (x ^ (x >> 32)) as u32
    }

    /// A value in `0..n` by multiply-shift, no modulo (Go: `cheaprandn(n)`).
    /// Returns 0 when `n == 0`.
    #[inline]
    pub fn cheaprandn(&mut self, n: u32) -> u32 {
        ((self.next_u32() as u64 * n as u64) >> 32) as u32
    }

    /// Shuffles `items` in place (Fisher-Yates, using [`Self::cheaprandn`]).
    /// Used for `schedrandom=1` batches.
    pub fn shuffle<X>(&mut self, items: &mut [X]) {
        for i in (1..items.len()).rev() {
            let j = self.cheaprandn(i as u32 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// A stateless 64-bit mixer (the splitmix64 finaliser). Turns weak seeds (a
/// timestamp, a core number) into well-spread ones for [`FastRand::new`].
pub const fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cheaprandn_stays_in_range() {
        let mut r = FastRand::new(1);
        for n in [1u32, 2, 3, 7, 10, 61, 255, 256, 1000, u32::MAX] {
            for _ in 0..10_000 {
                assert!(r.cheaprandn(n) < n, "n={n}");
            }
        }
        assert_eq!(r.cheaprandn(0), 0);
        for _ in 0..100 {
            assert_eq!(r.cheaprandn(1), 0);
        }
    }

    #[test]
    fn cheaprandn_is_roughly_uniform() {
        // 16 buckets, 160_000 draws: expect 10_000 per bucket; allow 5%.
        let mut r = FastRand::new(mix64(42));
        let mut buckets = [0u32; 16];
        for _ in 0..160_000 {
            buckets[r.cheaprandn(16) as usize] += 1;
        }
        for (i, &b) in buckets.iter().enumerate() {
            assert!((9_500..=10_500).contains(&b), "bucket {i} has {b}");
        }
        // A non-power-of-two bound too.
        let mut buckets = [0u32; 6];
        for _ in 0..60_000 {
            buckets[r.cheaprandn(6) as usize] += 1;
        }
        for (i, &b) in buckets.iter().enumerate() {
            assert!((9_500..=10_500).contains(&b), "bucket {i} has {b}");
        }
    }

    #[test]
    fn bits_are_balanced() {
        let mut r = FastRand::new(0);
        let mut ones = [0u32; 32];
        for _ in 0..20_000 {
            let x = r.next_u32();
            for (b, count) in ones.iter_mut().enumerate() {
                *count += (x >> b) & 1;
            }
        }
        for (b, &c) in ones.iter().enumerate() {
            assert!((9_500..=10_500).contains(&c), "bit {b} set {c} times");
        }
    }

    #[test]
    fn seeding_is_deterministic_and_seeds_differ() {
        let mut a = FastRand::new(7);
        let mut b = FastRand::new(7);
        let mut c = FastRand::new(8);
        let xs: [u64; 4] = core::array::from_fn(|_| a.next_u64());
        let ys: [u64; 4] = core::array::from_fn(|_| b.next_u64());
        let zs: [u64; 4] = core::array::from_fn(|_| c.next_u64());
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
        a.seed(7);
        assert_eq!(a.next_u64(), xs[0]);
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut r = FastRand::new(3);
        let mut v: [u32; 129] = core::array::from_fn(|i| i as u32);
        r.shuffle(&mut v);
        let mut sorted = v;
        sorted.sort_unstable();
        assert!(sorted.iter().enumerate().all(|(i, &x)| x == i as u32));
        assert_ne!(v, sorted, "129 items left in order: shuffle did nothing");
    }
}
